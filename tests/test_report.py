"""The report renders from synthetic evaluation files: no training needed."""

import json
import math

import pytest

from aebench.config import RunConfig
from aebench.report.glossary import describe
from aebench.report.markdown import format_value, render_markdown
from aebench.report.results import aggregate, flat_metrics, load_runs, run_path

RUN = RunConfig(datasets=("digits",), variants=("dae", "vae"), seeds=(0, 1, 2))
FLOOR = {
    f"floor_{s}": 0.5
    for s in ("fd", "precision", "recall", "density", "coverage", "class_coverage", "class_kl")
}
EVALUATORS = {"digits": {"test_accuracy": 0.985, "floor": FLOOR}}


def _write_runs(root, values):
    for (variant, seed), metrics in values.items():
        path = run_path(root, "digits", variant, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"run": {}, "environment": {"device_name": "cpu"}, "metrics": metrics})
        )


@pytest.fixture
def runs(tmp_path):
    values = {}
    for seed, mse in enumerate((0.01, 0.02, 0.03)):
        values[("dae", seed)] = {"recon_mse": mse, "sample_gmm_fd": 10.0 + seed, "parameters": 1000}
        values[("vae", seed)] = {
            "recon_mse": 2 * mse,
            "sample_gmm_fd": 5.0,
            "sample_prior_fd": 7.0,
            "nll_iw": 90.0 + seed,
            "parameters": 1200,
        }
    _write_runs(tmp_path, values)
    return load_runs(tmp_path, RUN)


def test_aggregate_gives_mean_and_sample_std_over_seeds(runs):
    summary = aggregate(runs)
    assert summary.loc[("digits", "dae"), ("recon_mse", "mean")] == pytest.approx(0.02)
    assert summary.loc[("digits", "dae"), ("recon_mse", "std")] == pytest.approx(0.01)  # ddof 1
    assert list(summary.index.get_level_values(1)) == ["dae", "vae"]  # run-list order


def test_flat_metrics_skip_what_a_variant_lacks(runs):
    flat = flat_metrics(aggregate(runs), EVALUATORS)
    assert flat["digits.vae.nll_iw.mean"] == pytest.approx(91.0)
    assert flat["digits.vae.nll_iw.std"] == pytest.approx(1.0)
    assert "digits.dae.nll_iw.mean" not in flat
    assert "digits.dae.sample_prior_fd.mean" not in flat
    assert flat["digits.evaluator.floor_fd"] == 0.5
    assert all(isinstance(v, float) and not math.isnan(v) for v in flat.values())


def test_markdown_has_a_row_per_variant_and_only_applicable_tables(runs):
    text = render_markdown(aggregate(runs), RUN.seeds, EVALUATORS)
    assert "| dae | 0.02 ± 0.01 |" in text
    prior_section = text.split("`prior`")[1].split("####")[0]
    assert "| vae |" in prior_section and "| dae |" not in prior_section
    assert "train split (floor)" in prior_section
    assert "Likelihood (VAE family)" in text
    assert "**FD ↓**" in text  # glossary entry with its direction
    assert "below the 97% target" not in text


def test_low_evaluator_accuracy_is_flagged(runs):
    evaluators = {"digits": {"test_accuracy": 0.9, "floor": FLOOR}}
    assert "below the 97% target" in render_markdown(aggregate(runs), RUN.seeds, evaluators)


def test_missing_run_names_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate@digits-dae-0 has not run"):
        load_runs(tmp_path, RUN)


def test_format_and_describe():
    assert format_value(1234567.0) == "1,234,567"
    assert format_value(0.012345, 0.0011, 3) == "0.01235 ± 0.0011"
    assert format_value(math.nan) == "–"
    assert describe("sample_chain_recall").header == "Recall ↑"
    assert describe("robust_masking_mse_auc").header == "masking MSE area (per pixel) ↓"
