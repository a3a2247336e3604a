"""The report's content and Markdown render from synthetic evaluation files: no training."""

import json
import math

import numpy as np
import pytest

from aebench.config import RunConfig
from aebench.report.content import ReportInputs, build_report, findings, format_value
from aebench.report.glossary import describe
from aebench.report.markdown import render_markdown
from aebench.report.results import aggregate, flat_metrics, load_runs, run_path
from aebench.report.stats import best_and_ties, distinguishable

RUN = RunConfig(datasets=("digits",), variants=("dae", "vae", "ae"), seeds=(0, 1, 2))
STATS = ("fd", "precision", "recall", "density", "coverage", "class_coverage", "class_kl")
FLOOR = {f"floor_{s}": 0.5 for s in STATS}
EVALUATORS = {"digits": {"test_accuracy": 0.985, "floor": FLOOR}}


def _write_runs(root, values):
    for (variant, seed), metrics in values.items():
        path = run_path(root, "digits", variant, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"run": {}, "environment": {"device_name": "cpu"}, "metrics": metrics}
        path.write_text(json.dumps(payload))


@pytest.fixture
def runs(tmp_path):
    values = {}
    for seed, mse in enumerate((0.01, 0.02, 0.03)):
        values[("dae", seed)] = {
            "recon_mse": mse,
            "robust_masking_mse_auc": 0.02 + seed * 1e-4,
            "sample_gmm_fd": 10.0 + seed,
            "parameters": 1000,
        }
        values[("vae", seed)] = {
            "recon_mse": mse + 0.001,  # indistinguishable from dae over these seeds
            "robust_masking_mse_auc": 0.05 + seed * 1e-4,  # clearly worse
            "sample_gmm_fd": 5.0 + seed * 0.1,
            "sample_prior_fd": 7.0,
            "nll_iw": 90.0 + seed,
            "parameters": 1200,
        }
        values[("ae", seed)] = {
            "recon_mse": 0.5 + seed * 0.01,
            "robust_masking_mse_auc": 0.5,
            "sample_gmm_fd": 30.0,
            "parameters": 900,
        }
    _write_runs(tmp_path, values)
    return load_runs(tmp_path, RUN)


def _inputs(runs, evaluators=EVALUATORS):
    return ReportInputs(runs=runs, evaluators=evaluators, seeds=RUN.seeds, environment=["env"])


def test_aggregate_gives_mean_and_sample_std_over_seeds(runs):
    summary = aggregate(runs)
    assert summary.loc[("digits", "dae"), ("recon_mse", "mean")] == pytest.approx(0.02)
    assert summary.loc[("digits", "dae"), ("recon_mse", "std")] == pytest.approx(0.01)  # ddof 1
    assert list(summary.index.get_level_values(1)) == ["dae", "vae", "ae"]  # run-list order


def test_flat_metrics_skip_what_a_variant_lacks(runs):
    flat = flat_metrics(aggregate(runs), EVALUATORS)
    assert flat["digits.vae.nll_iw.mean"] == pytest.approx(91.0)
    assert flat["digits.vae.nll_iw.std"] == pytest.approx(1.0)
    assert "digits.dae.nll_iw.mean" not in flat
    assert "digits.dae.sample_prior_fd.mean" not in flat
    assert flat["digits.evaluator.floor_fd"] == 0.5
    assert all(isinstance(v, float) and not math.isnan(v) for v in flat.values())


def test_welch_ties_and_best():
    assert not distinguishable(np.array([1.0, 2.0, 3.0]), np.array([1.1, 2.1, 3.1]))
    assert distinguishable(np.array([1.0, 1.01, 0.99]), np.array([2.0, 2.01, 1.99]))
    values = {
        "a": np.array([1.0, 2.0, 3.0]),
        "b": np.array([1.2, 2.2, 3.2]),
        "c": np.array([9.0, 9.1, 9.2]),
    }
    assert best_and_ties(values, higher_is_better=False) == ("a", {"b"})
    assert best_and_ties(values, higher_is_better=True) == ("c", set())
    assert best_and_ties(values, higher_is_better=None) == (None, set())


def test_markdown_marks_best_and_ties(runs):
    text = render_markdown(build_report(_inputs(runs)))
    headline = text.split("### Headline")[1].split("###")[0]
    assert "| **0.02 ± 0.01** |" in headline  # dae has the lowest mean MSE
    assert "0.021 ± 0.01 †" in headline  # vae: not distinguishable over 3 seeds
    assert "| ae | 0.51 ± 0.01 |" in headline  # neither best nor tie
    prior = text.split("`prior`")[1].split("####")[0]
    assert "| vae |" in prior and "| dae |" not in prior
    assert "train split (floor)" in prior
    assert "Likelihood (VAE family)" in text
    assert "**FD** (lower is better" in text  # glossary entry with its direction
    assert "below the 97% target" not in text


def test_findings_state_winner_margin_and_significance(runs):
    items = findings(runs, "digits", EVALUATORS["digits"])
    masking = next(i for i in items if "*masking*" in i)
    assert "**dae** (0.0201) beats vae (0.0501)" in masking
    assert "exceeds the seed spread" in masking
    recon = next(i for i in items if i.startswith("Reconstruction MSE"))
    assert "within the seed spread" in recon
    best = next(i for i in items if i.startswith("Best samples"))
    assert "**vae** with the `gmm` sampler" in best


def test_low_evaluator_accuracy_is_flagged(runs):
    evaluators = {"digits": {"test_accuracy": 0.9, "floor": FLOOR}}
    text = render_markdown(build_report(_inputs(runs, evaluators)))
    assert "> **Warning:** the evaluator's test accuracy 90.00% is below the 97% target" in text


def test_missing_run_names_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate@digits-dae-0 has not run"):
        load_runs(tmp_path, RUN)


def test_format_and_describe():
    assert format_value(1234567.0) == "1,234,567"
    assert format_value(0.012345, 0.0011, 3) == "0.01235 ± 0.0011"
    assert format_value(math.nan) == "–"
    assert format_value(0.1, 1.7e-17, 3) == "0.1 ± 0"
    assert describe("sample_chain_recall").header == "Recall ↑"
    assert describe("robust_masking_mse_auc").header == "masking MSE area (per pixel) ↓"
