"""The full-MNIST section: its params, the literature rows' settings, Burda et al.'s architecture,
and the report's literature table and cross-dataset list on runs whose answers are known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from aebench.config import ParamsError, parse_params
from aebench.full_mnist_report import (
    LiteratureRow,
    build_document,
    cross_dataset,
    literature_blocks,
    literature_rows,
    section_params,
)
from aebench.models import build_model
from aebench.report.content import ReportInputs
from aebench.report.document import Table
from aebench.report.intervals import Sample
from aebench.report.markdown import render_markdown
from aebench.report.stats import Evidence
from aebench.resolve import settings_files
from aebench.spec import TrainConfig, variant_from_dict

EVALUATOR = Path(__file__).resolve().parents[1] / "evaluators" / "mnist5k" / "evaluator.json"
BURDA = {
    "family": "vae",
    "latent_dim": 5,
    "hidden": [7, 7],
    "hidden_activation": "tanh",
    "binarize": "dynamic",
}


def _with_section(raw: dict, **section) -> dict:
    raw["variants"]["burda_vae"] = dict(BURDA)
    raw["full_mnist"] = {
        "dataset": "mnist",
        "variants": ["burda_vae", "ae"],
        "seeds": [0, 1, 2],
        "literature": {
            "importance_samples": 5000,
            "rows": {"burda_vae": {"nll": 86.76, "source": "Burda et al. 2015, Table 1"}},
        },
    } | section
    return raw


def test_the_section_resolves_its_dataset_and_the_literature_k(raw_params, tmp_path):
    params = parse_params(_with_section(raw_params, variants=["burda_vae", "ae", "dae"]))
    assert params.datasets_resolved == ("digits", "mnist")
    assert params.importance_samples_for("burda_vae") == 5000
    assert params.importance_samples_for("vae") == params.evaluate.importance_samples
    files = {
        str(p.relative_to(tmp_path)): text for p, text in settings_files(params, tmp_path).items()
    }
    assert '"importance_samples": 5000' in files["evaluate/burda_vae.json"]
    assert "data/mnist.json" in files and "evaluator/mnist.json" in files
    # the section chains its own denoising variants, on its own seeds, from its own models
    section_chain = json.loads(files["chain/full_mnist/mnist.json"])
    assert [(r["variant"], r["seed"]) for r in section_chain["runs"]] == [
        ("dae", 0),
        ("dae", 1),
        ("dae", 2),
    ]
    assert "chain/digits.json" in files


@pytest.mark.parametrize(
    ("section", "where", "allowed"),
    [
        ({"variants": ["burda_vae", "nope"]}, "full_mnist.variants", "'nope' is not defined"),
        ({"dataset": "mnist9"}, "full_mnist.dataset", "unknown dataset 'mnist9'"),
        (
            {"variants": ["ae"]},
            "full_mnist.literature.rows.burda_vae",
            "must be one of full_mnist.variants",
        ),
    ],
)
def test_a_bad_section_is_refused_by_name(raw_params, section, where, allowed):
    with pytest.raises(ParamsError, match=where) as err:
        parse_params(_with_section(raw_params, **section))
    assert allowed in str(err.value)


def test_the_section_dataset_may_not_be_in_the_quick_run(raw_params):
    raw = _with_section(raw_params)
    raw["run"]["datasets"] = ["digits", "mnist"]
    with pytest.raises(ParamsError, match=r"run\.datasets.*full-MNIST section"):
        parse_params(raw)


def test_burdas_architecture_is_built_with_tanh_units(raw_params):
    raw_params["variants"]["burda_vae"] = dict(BURDA)
    spec = parse_params(raw_params).variant("burda_vae")
    model = build_model(spec, (1, 8, 8))
    layers = [type(m).__name__ for m in model.modules()]
    assert layers.count("Tanh") == 4 and "ReLU" not in layers  # two hidden layers each side
    widths = [m.out_features for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert widths == [7, 7, 10]  # mean and log-variance of 5 codes
    # the spec round-trips through a checkpoint's dict; the ReLU default stays out of it
    assert variant_from_dict(spec.to_dict()) == spec
    assert "hidden_activation" not in parse_params(raw_params).variant("vae").to_dict()


def test_tanh_is_refused_for_a_conv_body(raw_params):
    raw_params["variants"]["ae"] |= {"arch": "conv", "hidden_activation": "tanh"}
    with pytest.raises(ParamsError, match=r"hidden_activation.*only with arch: mlp"):
        parse_params(raw_params)


def _runs(values: dict[tuple[str, str], list[float]], key: str = "nll_iw") -> pd.DataFrame:
    rows = []
    for (dataset, variant), seeds in values.items():
        for seed, value in enumerate(seeds):
            rows.append(
                {
                    "dataset": dataset,
                    "variant": variant,
                    "seed": seed,
                    key: value,
                    "val_gain_10": 0.5,
                    "converged": 1.0,
                    "stopped_at_cap": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_the_literature_row_states_our_mean_interval_beside_the_published_value(raw_params):
    params = parse_params(_with_section(raw_params))
    runs = _runs({("mnist", "burda_vae"): [88.0, 89.0, 90.0], ("mnist", "ae"): [1.0, 2.0, 3.0]})
    (row,) = literature_rows(params, Evidence(runs))
    assert (row.variant, row.published, row.converged, row.capped) == ("burda_vae", 86.76, 3, 0)
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd 1 over 3 seeds
    assert row.mean_interval == pytest.approx((89.0 - half, 89.0 + half))
    one_seed = LiteratureRow("x", 1.0, "", Sample(np.array([2.0])), 0.0, 0, 0)
    assert all(math.isnan(v) for v in one_seed.mean_interval)


def test_a_literature_row_without_runs_shows_dashes_not_nan():
    empty = LiteratureRow("burda_iwae", 85.54, "Burda", Sample(np.array([])), math.nan, 0, 0)
    blocks = literature_blocks([empty], 5000, TrainConfig())
    table = next(b for b in blocks if isinstance(b, Table))
    cells = [c.text for c in table.rows[0]]
    assert cells[1] == "– (no runs)" and cells[4] == "–"
    assert not any("nan" in text for text in cells)


def test_the_cross_dataset_list_names_a_resolved_sign_change_and_a_new_best():
    # on the small set ae is clearly best (lowest MSE), on the full set vae; wae in between
    small = Evidence(
        _runs(
            {
                ("s", "ae"): [0.01, 0.011, 0.012],
                ("s", "vae"): [0.05, 0.051, 0.052],
                ("s", "wae"): [0.03, 0.031, 0.032],
            },
            "recon_mse",
        )
    )
    full = Evidence(
        _runs(
            {
                ("f", "ae"): [0.05, 0.051, 0.052],
                ("f", "vae"): [0.01, 0.011, 0.012],
                ("f", "wae"): [0.03, 0.031, 0.032],
            },
            "recon_mse",
        )
    )
    found = cross_dataset(small, "s", full, "f", ["ae", "vae", "wae"])
    assert [item.kind for item in found] == ["best", "sign", "sign"]
    assert all(item.metric == "recon_mse" for item in found)
    best = found[0]
    assert "best on s `ae`, on f `vae`" in best.text and "`vae` − `ae`" in best.text
    assert best.text.count("95% CI") == 2  # the two bests' difference on each dataset
    # the pair whose best changed is listed once, as the best
    assert {frozenset(item.pair) for item in found[1:]} == {
        frozenset(("ae", "wae")),
        frozenset(("vae", "wae")),
    }
    # the same ordering on both: nothing to list
    assert cross_dataset(small, "s", small, "s", ["ae", "vae"]) == []


def test_an_unresolved_change_of_best_or_sign_is_not_listed():
    noisy = {("s", "ae"): [0.0, 1.0, 2.0], ("s", "vae"): [0.9, 1.0, 1.3]}
    flipped = {("f", "ae"): [1.3, 1.0, 0.9], ("f", "vae"): [0.0, 1.0, 2.1]}
    found = cross_dataset(
        Evidence(_runs(noisy, "recon_mse")),
        "s",
        Evidence(_runs(flipped, "recon_mse")),
        "f",
        ["ae", "vae"],
    )
    assert found == []  # the best moved within the noise of both datasets: not a finding


def test_the_document_opens_with_the_literature_table(raw_params):
    params = section_params(parse_params(_with_section(raw_params)))
    runs = _runs({("mnist", "burda_vae"): [88.0, 89.0, 90.0], ("mnist", "ae"): [1.0, 2.0, 3.0]})
    runs["device"] = "cpu"
    inputs = ReportInputs(
        runs=runs,
        evaluators={"mnist": json.loads(EVALUATOR.read_text())},  # a real instrument's record
        seeds=(0, 1, 2),
        environment=["machine: test"],
    )
    text = render_markdown(build_document(params, inputs, None, "digits", []))
    literature = text.index("The literature protocol, side by side")
    assert literature < text.index("## mnist")
    assert "86.76" in text and "+2.24" in text  # ours 89.00 − published 86.76
    assert "Batch size: theirs 20" in text


def test_the_quick_report_links_the_full_mnist_report():
    from aebench.report.content import build_report

    runs = _runs({("digits", "ae"): [1.0, 2.0, 3.0]})
    runs["device"] = "cpu"
    inputs = ReportInputs(
        runs=runs,
        evaluators={"digits": json.loads(EVALUATOR.read_text())},
        seeds=(0, 1, 2),
        environment=["machine: test"],
    )
    assert "reports/full_mnist/" not in render_markdown(build_report(inputs))
    inputs.full_mnist = True
    assert "`reports/full_mnist/`" in render_markdown(build_report(inputs))
    assert "reports/tuning/" not in render_markdown(build_report(inputs))
    inputs.tuned = ("ae", "vae")
    assert "`ae`, `vae` are also tuned" in render_markdown(build_report(inputs))


def test_missing_quick_results_are_named_before_the_section_runs(raw_params, tmp_path, monkeypatch):
    """The section's report compares with the quick run's results: where they are missing,
    `aebench full-mnist` says so when it starts, not after hours of training."""
    from aebench.cli import _quick_results_missing

    params = parse_params(_with_section(raw_params))  # shares ae with the quick run
    monkeypatch.chdir(tmp_path)
    assert _quick_results_missing(params) == [
        "metrics/digits/ae/0/metrics.json",
        "chain/",
        "memorisation/",
    ]
    (tmp_path / "metrics" / "digits" / "ae" / "0").mkdir(parents=True)
    (tmp_path / "metrics" / "digits" / "ae" / "0" / "metrics.json").write_text("{}")
    (tmp_path / "chain").mkdir()
    (tmp_path / "memorisation").mkdir()
    assert _quick_results_missing(params) == []


def test_the_section_header_names_its_dataset_split(raw_params):
    """The full-MNIST report's header lists the dataset's own split keys; the quick report,
    which does not read that dataset, does not."""
    from aebench.report.environment import params_differing_from_defaults

    raw = _with_section(raw_params)
    raw["datasets"] = {"mnist": {"val_images": 10000}}
    params = parse_params(raw)
    assert "`datasets.mnist.val_images: 10000` (in place of data.*)" in (
        params_differing_from_defaults(section_params(params))
    )
    assert not any("datasets.mnist" in line for line in params_differing_from_defaults(params))
