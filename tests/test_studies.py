"""Studies: sweeps declared in params.yaml become generated variants, run by their own pipeline
file and drawn as curves with intervals."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from aebench.config import (
    ParamsError,
    StudyCurve,
    StudySpec,
    load_params,
    parse_params,
    study_point_name,
)
from aebench.data import DatasetError, training_subset
from aebench.report.intervals import signed_text
from aebench.resolve import settings_files
from aebench.studies import POINTS_FILE, StaleStudies, check_points, render_points, write_points
from aebench.study_report import (
    StudyResults,
    curve_findings,
    draw_study,
    mean_band,
    sample_of,
    study_changes,
    study_finding,
)

REPO = Path(__file__).resolve().parents[1]


def _with_studies(raw: dict, studies: dict, run_studies: list[str] | None = None) -> dict:
    raw["studies"] = studies
    raw["run"]["studies"] = list(studies) if run_studies is None else run_studies
    return raw


# ---------------------------------------------------------------- declaring a study


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.5, "vae--beta-0p5"), (2.0, "vae--beta-2"), (2, "vae--beta-2"), (0.001, "vae--beta-0p001")],
)
def test_point_names_are_path_and_stage_safe(value, expected):
    assert study_point_name("vae", "beta", value) == expected
    assert re.fullmatch(r"[A-Za-z0-9_-]+", study_point_name("dae", "noise.level", 1e-5))


def test_a_study_generates_variants_with_one_setting_changed(raw_params):
    raw_params["variants"]["beta4"] = {"family": "vae", "latent_dim": 4, "beta": 4.0}
    raw_params["run"]["variants"] = ["ae", "vae", "dae", "beta4"]
    study = {"variants": ["vae"], "key": "beta", "values": [0.5, 4.0]}
    params = parse_params(_with_studies(raw_params, {"b": study}))
    curve = params.studies["b"].curves[0]
    # the variant's own value (1.0) is a point; beta 4 equals a run variant, whose runs it reuses
    assert curve.points == ((0.5, "vae--beta-0p5"), (1.0, "vae"), (4.0, "beta4"))
    assert list(params.study_points) == ["vae--beta-0p5"]
    point = params.variant("vae--beta-0p5")
    assert point.beta == 0.5 and point.latent_dim == params.variants["vae"].latent_dim
    assert params.points_to_run() == ("vae--beta-0p5",)


def test_a_point_equal_to_a_variant_outside_the_run_is_generated(raw_params):
    raw_params["variants"]["beta4"] = {"family": "vae", "latent_dim": 4, "beta": 4.0}
    study = {"variants": ["vae"], "key": "beta", "values": [4.0]}
    params = parse_params(_with_studies(raw_params, {"b": study}))
    assert "vae--beta-4" in params.study_points  # beta4 has no runs to reuse


def test_noise_level_code_size_and_data_size_are_swept(raw_params):
    raw_params["run"]["variants"] = ["ae", "dae"]
    studies = {
        "noise": {"variants": ["dae"], "key": "noise.level", "values": [0.1, 0.5]},
        "size": {"variants": ["ae", "dae"], "key": "latent_dim", "values": [2, 8]},
        "data": {"variants": ["ae"], "key": "train_images", "values": [100, 400]},
    }
    params = parse_params(_with_studies(raw_params, studies))
    assert params.variant("dae--noise_level-0p1").noise.level == 0.1
    assert params.variant("dae--noise_level-0p1").noise.kind == "masking"
    assert params.variant("ae--latent_dim-8").latent_dim == 8
    data = params.studies["data"].curves[0].points
    assert data == ((100, "ae--train_images-100"), (400, "ae--train_images-400"), (None, "ae"))
    assert params.variant("ae--train_images-100").to_dict()["train_images"] == 100
    assert "train_images" not in params.variants["ae"].to_dict()  # old checkpoints unchanged


def test_the_learning_rate_is_a_variant_key_and_a_study_key(raw_params, tmp_path):
    """``train.lr`` (how a variant is trained, not its model) is set per variant and swept by a
    study: each point trains at its own rate, and a point reuses a run variant's runs only when
    their learning rates agree too."""
    raw_params["variants"]["vae_slow"] = {**raw_params["variants"]["vae"], "train": {"lr": 3e-4}}
    raw_params["run"]["variants"] = ["ae", "vae", "vae_slow"]
    study = {"variants": ["vae", "ae"], "key": "train.lr", "values": [3e-4, 1e-3, 3e-3]}
    params = parse_params(_with_studies(raw_params, {"lr": study}))
    assert params.train_for("vae_slow").lr == 3e-4
    assert params.train_for("vae") == params.train  # no override: train.* as it was
    vae, ae = params.studies["lr"].curves
    # 3e-4 for vae equals vae_slow (same model, same rate): its runs are reused
    assert vae.points == ((3e-4, "vae_slow"), (1e-3, "vae"), (3e-3, "vae--train_lr-0p003"))
    assert ae.points == ((3e-4, "ae--train_lr-0p0003"), (1e-3, "ae"), (3e-3, "ae--train_lr-0p003"))
    assert params.train_for("ae--train_lr-0p0003").lr == 3e-4
    assert params.train_for("vae--train_lr-0p003").lr == 3e-3
    # the resolved settings carry the rate the stage trains at; the spec stays the model's
    files = {
        p.relative_to(tmp_path).as_posix(): json.loads(t)
        for p, t in settings_files(params, tmp_path).items()
    }
    assert files["train/ae--train_lr-0p003.json"]["train"]["lr"] == 3e-3
    assert files["train/ae.json"]["train"]["lr"] == params.train.lr
    assert "train" not in files["train/ae--train_lr-0p003.json"]["variant"]
    raw_params["variants"]["vae_slow"]["train"]["lr"] = 0
    with pytest.raises(
        ParamsError, match=r"vae_slow\.train\.lr: 0(\.0)? is not allowed; expected a number > 0"
    ):
        parse_params(raw_params)


def test_a_grid_is_one_curve_per_value_of_its_by_key(raw_params):
    """``by: {train.lr: [...]}``: every (beta, lr) pair is a point; each lr value is a curve over
    beta, the variant's own values included, and a pair equal to a run variant reuses it."""
    raw_params["variants"]["vae_slow"] = {**raw_params["variants"]["vae"], "train": {"lr": 3e-4}}
    raw_params["run"]["variants"] = ["ae", "vae", "vae_slow"]
    study = {"variants": ["vae"], "key": "beta", "values": [0.5, 2.0], "by": {"train.lr": [3e-4]}}
    params = parse_params(_with_studies(raw_params, {"grid": study}))
    spec = params.studies["grid"]
    assert spec.by == ("train.lr", (3e-4,))
    slow, own = spec.curves  # by lr: 3e-4 (vae_slow, a run variant), then vae's own 1e-3
    assert slow.variant == "vae_slow" and own.variant == "vae"
    assert [name for _, name in slow.points] == [
        "vae_slow--beta-0p5",
        "vae_slow",
        "vae_slow--beta-2",
    ]
    assert [name for _, name in own.points] == ["vae--beta-0p5", "vae", "vae--beta-2"]
    assert params.train_for("vae_slow--beta-2").lr == 3e-4
    assert params.variant("vae_slow--beta-2").beta == 2.0
    assert params.train_for("vae--beta-2").lr == params.train.lr
    assert len(params.points_to_run()) == 4  # 3 × 2 grid, two of it run variants
    generated = {"variants": ["ae"], "key": "latent_dim", "values": [2], "by": {"train.lr": [1e-2]}}
    params = parse_params(_with_studies(raw_params, {"g": generated}))
    fast = params.studies["g"].curves[1]
    assert fast.variant == "ae--train_lr-0p01"  # a generated row is its curve's own point
    assert [n for _, n in fast.points] == ["ae--train_lr-0p01--latent_dim-2", "ae--train_lr-0p01"]
    assert params.train_for("ae--train_lr-0p01--latent_dim-2").lr == 1e-2


@pytest.mark.parametrize(
    ("study", "message"),
    [
        (
            {"variants": ["ae"], "key": "beta", "values": [2]},
            "has no setting 'beta' to sweep; it has: latent_dim, train_images, train.lr",
        ),
        (
            {"variants": ["ae"], "key": "hidden", "values": [2]},
            "has no setting 'hidden' to sweep; it has: latent_dim",
        ),
        ({"variants": ["nope"], "key": "beta", "values": [2]}, "'nope' is not defined"),
        ({"variants": ["ae"], "key": "latent_dim", "values": [2.5]}, "value 2.5 for 'ae'"),
        ({"variants": ["dae"], "key": "noise.level", "values": [1.5]}, "out of range"),
        ({"variants": ["vae"], "key": "beta", "values": [2, 2]}, "duplicate"),
        ({"variants": ["vae"], "key": "beta", "values": ["x"]}, "expected numbers"),
        ({"variants": ["vae"], "key": "beta"}, "missing required key 'values'"),
        (
            {"variants": ["vae"], "key": "beta", "values": [2], "by": {"beta": [1]}},
            "'beta' is the study's key already",
        ),
        (
            {"variants": ["vae"], "key": "beta", "values": [2], "by": {"a": [1], "b": [2]}},
            "expected one key mapped to its values",
        ),
    ],
)
def test_a_bad_study_is_one_message_naming_it(raw_params, study, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        parse_params(_with_studies(raw_params, {"s": study}))


def test_run_studies_names_declared_studies_only(raw_params):
    raw_params["run"]["studies"] = ["missing"]
    with pytest.raises(ParamsError, match=r"run\.studies: 'missing' is not declared"):
        parse_params(raw_params)
    raw_params["run"]["studies"] = [["nested"]]
    with pytest.raises(ParamsError, match=r"run\.studies: expected a list of study names"):
        parse_params(raw_params)


def test_the_repository_points_file_matches_its_params():
    params = load_params(REPO / "params.yaml")
    check_points(params, REPO)  # a stale committed points.yaml would run the wrong sweep
    runs = yaml.safe_load((REPO / POINTS_FILE).read_text())["runs"]
    expected = len(params.points_to_run()) * len(params.run.seeds) * len(params.run.datasets)
    assert len(runs) == expected > 0


def test_a_stale_points_file_is_refused_and_rewritten(raw_params, tmp_path):
    study = {"variants": ["vae"], "key": "beta", "values": [0.5]}
    params = parse_params(_with_studies(raw_params, {"b": study}))
    with pytest.raises(StaleStudies, match="aebench study"):
        check_points(params, tmp_path)
    assert write_points(params, tmp_path) and not write_points(params, tmp_path)
    check_points(params, tmp_path)
    runs = yaml.safe_load(render_points(params).split("\n", 2)[2])["runs"]
    assert runs == {
        "digits-vae--beta-0p5-0": {
            "base": "vae",
            "dataset": "digits",
            "seed": 0,
            "variant": "vae--beta-0p5",
        }
    }
    raw_params["studies"]["b"]["values"] = [0.25]
    with pytest.raises(StaleStudies):
        check_points(parse_params(raw_params), tmp_path)


# ---------------------------------------------------------------- the data-size setting


def test_a_training_subset_keeps_class_shares_and_ignores_the_training_seed():
    labels = np.repeat(np.arange(4), [100, 200, 300, 400])
    images = np.arange(len(labels))[:, None]
    kept, kept_labels = training_subset(images, labels, 100, seed=0)
    assert np.bincount(kept_labels).tolist() == [10, 20, 30, 40]
    assert np.array_equal(labels[kept[:, 0]], kept_labels)  # images stay with their labels
    again, _ = training_subset(images, labels, 100, seed=0)
    other, _ = training_subset(images, labels, 100, seed=1)
    assert np.array_equal(kept, again) and not np.array_equal(kept, other)
    for count in (1000, 997, 3):  # a stratified split keeps one image per class on each side
        with pytest.raises(DatasetError, match="1000 images in 4 classes, so allowed: 4 to 996"):
            training_subset(images, labels, count, seed=0)
    assert len(training_subset(images, labels, 996, seed=0)[0]) == 996
    rare = np.repeat(np.arange(4), [2, 3, 300, 695])  # two classes too rare for 10 images
    with pytest.raises(DatasetError, match="leave 2 of the 4 classes out"):
        training_subset(rare[:, None], rare, 10, seed=0)


# ---------------------------------------------------------------- the curves and findings


def _results(rng: np.random.Generator, per_image: bool = True) -> StudyResults:
    """One curve of variant v (own beta 1) with points at 2 (+0.002 MSE) and 4 (+0.01 MSE);
    five seeds each. Without per-image values the intervals are seeds-only Welch."""
    points = ((1.0, "v"), (2.0, "v--beta-2"), (4.0, "v--beta-4"))
    study = StudySpec("s", "beta", (2.0, 4.0), (StudyCurve("v", points),))
    centres = {"v": 0.02, "v--beta-2": 0.022, "v--beta-4": 0.03}
    rows, arrays = [], {}
    for value, variant in points:
        for seed in range(5):
            images = centres[variant] + rng.normal(0, 0.005, 50) + rng.normal(0, 0.002)
            row = {"curve": "v", "value": value, "variant": variant, "seed": seed}
            rows.append(row | {"recon_mse": float(images.mean())})
            arrays[(variant, seed)] = {"recon_mse": images} if per_image else {}
    return StudyResults(study, "digits", pd.DataFrame(rows), arrays)


def test_the_band_is_the_t_interval_of_the_mean():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    mean, low, high = mean_band(values)
    expected = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected) and mean == 3.5
    assert mean_band(np.array([2.0])) == (2.0, 2.0, 2.0)


def test_each_point_is_compared_with_the_own_setting_welch_and_holm():
    results = _results(np.random.default_rng(0), per_image=False)
    changes = study_changes(results)
    assert [(c.value, c.own) for c in changes] == [(2.0, 1.0), (4.0, 1.0)]
    runs = results.runs
    pvalues = []
    for change in changes:  # seeds only: scipy's Welch test is the independent reference
        point = runs[runs.value == change.value].recon_mse.to_numpy()
        own = runs[runs.value == 1.0].recon_mse.to_numpy()
        welch = stats.ttest_ind(point, own, equal_var=False)
        interval = welch.confidence_interval(0.95)
        assert change.diff.estimate == pytest.approx(point.mean() - own.mean())
        assert (change.diff.low, change.diff.high) == pytest.approx(
            (interval.low, interval.high), rel=1e-6
        )
        pvalues.append(welch.pvalue)
    # Holm over two: the smaller p doubled, the larger kept (never below the first)
    low, high = sorted(pvalues)
    expected = {low: min(1, 2 * low), high: max(min(1, 2 * low), high)}
    assert [c.adjusted_p for c in changes] == pytest.approx([expected[p] for p in pvalues])
    assert changes[1].resolved and changes[1].verdict == "worse"  # MSE rose: lower is better


def test_a_finding_names_the_resolved_differences_with_their_intervals():
    results = _results(np.random.default_rng(0))
    changes = study_changes(results)
    (line,) = curve_findings(results, changes)
    assert line.startswith("**v** · MSE (lower is better), each setting − its own 1: ")
    assert f"4: {signed_text(changes[1].diff)}, worse" in line and "95% CI" in line
    finding = study_finding(results, changes)
    resolved = sum(c.resolved for c in changes)
    assert f"{resolved} of 2 differences are resolved" in finding
    assert "`v` at 4: MSE worse (+0.0" in finding


def test_a_run_on_two_curves_counts_its_seeds_once():
    """vae and beta_vae swept over beta 1 and 4: each curve's other point is the other run."""
    study = StudySpec(
        "s",
        "beta",
        (1.0, 4.0),
        (StudyCurve("a", ((1.0, "a"), (4.0, "b"))), StudyCurve("b", ((1.0, "a"), (4.0, "b")))),
    )
    rows = [
        {"curve": c, "value": v, "variant": n, "seed": s, "recon_mse": 0.02 + 0.001 * s + v / 100}
        for c in ("a", "b")
        for v, n in ((1.0, "a"), (4.0, "b"))
        for s in range(5)
    ]
    results = StudyResults(study, "digits", pd.DataFrame(rows), {})
    changes = study_changes(results)
    assert len(changes) == 2
    assert all(c.diff.n_a == c.diff.n_b == 5 for c in changes)
    assert sample_of(results, "a", "b", "recon_mse").n == 5


def test_the_study_figure_draws_a_band_and_a_line_per_curve():
    import matplotlib.pyplot as plt

    results = _results(np.random.default_rng(1))
    fig = draw_study(results, {"v": (0.1, 0.2, 0.5)})
    try:
        ax = fig.axes[0]
        assert len(ax.collections) == 1  # the band
        line = ax.lines[0]
        means = results.runs.groupby("value").recon_mse.mean()
        assert np.allclose(line.get_ydata(), means.to_numpy())
        assert math.isclose(ax.lines[1].get_xdata()[0], 1.0)  # the variant's own point, ringed
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_aebench_study_runs_only_the_studies_and_reports_their_curves(tmp_path):
    from tests.test_dispatch import _git, _run
    from tests.test_pipeline import _copy_repo

    root = _copy_repo(
        tmp_path / "repo",
        {"datasets": ["digits"], "variants": ["ae", "vae"], "seeds": [0, 1]},
        epochs=2,
    )
    (root / "studies").mkdir()
    (root / "studies" / "dvc.yaml").write_text((REPO / "studies" / "dvc.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["studies"] = {
        "beta": {"variants": ["vae"], "key": "beta", "values": [4.0]},
        "data": {"variants": ["ae"], "key": "train_images", "values": [300]},
    }
    params["run"]["studies"] = ["beta", "data"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "tiny study")
    aebench = [sys.executable, "-m", "aebench.cli"]
    result = _run(root, *aebench, "study", "--workers", "2", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    closing = re.search(r"closing `dvc repro` ran: (.*);", result.stdout).group(1)
    assert "studies/dvc.yaml:study_report" in closing
    assert not (root / "reports" / "README.md").exists()  # the default report is not a study's
    trained = torch_load_spec(root / "studies/models/digits/ae--train_images-300/1/model.pt")
    assert trained["train_images"] == 300
    metrics = json.loads((root / "reports/studies/metrics.json").read_text())
    beta = metrics["beta"]["digits"]
    assert set(beta) == {"vae", "vae--beta-4"}
    assert beta["vae--beta-4"]["nll_iw"] > 0 and "nll_iw" not in metrics["data"]["digits"]["ae"]
    report = (root / "reports/studies/README.md").read_text()
    assert "**vae** · MSE (lower is better), each setting − its own 1: 4: " in report
    assert "95% CI" in report and "**Finding.** Against each variant's own setting" in report
    manifest = json.loads((root / "data/digits/manifest.json").read_text())
    whole = manifest["splits"]["train"]["shape"][0]  # the variant's own point: all of the split
    assert f"**ae** · MSE (lower is better), each setting − its own {whole}: 300: " in report
    assert (root / "reports/studies/figures/digits_beta.png").stat().st_size > 1000
    status = _run(root, sys.executable, "-m", "dvc", "status", "studies/dvc.yaml")
    assert "changed" not in status.stdout, status.stdout
    plain = _run(root, sys.executable, "-m", "dvc", "repro")  # the default run: no study stage
    assert plain.returncode == 0, plain.stderr
    assert "study" not in " ".join(re.findall(r"Running stage '([^']+)'", plain.stdout))
    # a sweep edited without `aebench study`: the report refuses the stale points file
    params["studies"]["beta"]["values"] = [2.0]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stale = _run(root, sys.executable, "pipeline/study_report.py")
    assert stale.returncode == 2 and "run `aebench study`" in stale.stderr
    assert (root / "reports/studies/README.md").read_text() == report  # nothing half-written


def torch_load_spec(path: Path) -> dict:
    import torch

    return torch.load(path, weights_only=True)["variant"]


def test_the_studies_pipeline_has_a_train_and_an_evaluate_stage_per_run():
    import os

    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    listed = subprocess.run(
        [sys.executable, "-m", "dvc", "stage", "list", "studies/dvc.yaml", "--name-only"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    runs = yaml.safe_load((REPO / POINTS_FILE).read_text())["runs"]
    names = set(listed.stdout.split())
    expected = {
        f"studies/dvc.yaml:{stage}@{run}"
        for run in runs
        for stage in ("train_study", "evaluate_study")
    }
    assert names == expected | {"studies/dvc.yaml:study_report"}


def test_the_run_list_names_each_points_own_variant_even_with_the_separator(raw_params):
    """DVC tracks variants.<base> for a point: the base comes from the study, not the name."""
    raw_params["variants"]["my--vae"] = {"family": "vae", "latent_dim": 4}
    raw_params["run"]["variants"] = ["my--vae"]
    study = {"variants": ["my--vae"], "key": "beta", "values": [2.0]}
    params = parse_params(_with_studies(raw_params, {"b": study}))
    runs = yaml.safe_load(render_points(params).split("\n", 2)[2])["runs"]
    assert {run["base"] for run in runs.values()} == {"my--vae"}


def test_a_noise_study_gives_sigma_and_pixel_fractions_an_axis_each():
    """dae_noise sweeps σ for the Gaussian DAE and a fraction of pixels for the others: one
    axis may not carry both units, so the Gaussian curve gets its own (top) x axis."""
    import matplotlib.pyplot as plt

    study = StudySpec(
        "noise",
        "noise.level",
        (0.1, 0.5),
        (
            StudyCurve("g", ((0.1, "g--a"), (0.5, "g"))),
            StudyCurve("m", ((0.1, "m--a"), (0.5, "m"))),
        ),
    )
    rows = [
        {"curve": c, "value": v, "variant": n, "seed": s, "recon_mse": 0.02 + 0.001 * s + v}
        for c, points in (("g", ((0.1, "g--a"), (0.5, "g"))), ("m", ((0.1, "m--a"), (0.5, "m"))))
        for v, n in points
        for s in range(3)
    ]
    units = {"g": "training noise: σ (gaussian)", "m": "training noise: fraction of pixels"}
    results = StudyResults(study, "digits", pd.DataFrame(rows), {}, units)
    fig = draw_study(results, {"g": (0.1, 0.2, 0.5), "m": (0.5, 0.2, 0.1)})
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        labels = sorted(ax.get_xlabel() for ax in visible)
        assert labels == sorted(units.values())  # one panel: its bottom and its top axis
        for ax in visible:  # each axis carries only its own curve
            assert len(ax.lines) == 2  # the line and the ringed own point
    finally:
        plt.close(fig)
