"""``aebench compare``: classification from hand-made metric dicts, then the CLI on a real repo."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from aebench.cli import main
from aebench.compare import (
    ADDED,
    CHANGED,
    IMPROVEMENT,
    NOT_RESOLVED,
    REGRESSION,
    REMOVED,
    UNCHANGED,
    CompareError,
    Revision,
    compare_metrics,
    environment_note,
    parse_metrics,
    render_comparison,
)

OLD = {
    "d.vae.recon_mse.mean": 0.020,  # lower is better; rises, CI excludes 0: regression
    "d.vae.recon_mse.std": 0.001,
    "d.vae.recon_mse.count": 3,
    "d.vae.recon_ssim.mean": 0.80,  # higher is better; rises, CI excludes 0: improvement
    "d.vae.recon_ssim.std": 0.01,
    "d.vae.recon_ssim.count": 3,
    "d.vae.sample_gmm_fd.mean": 10.0,  # moves well inside its CI: not resolved
    "d.vae.sample_gmm_fd.std": 1.0,
    "d.vae.sample_gmm_fd.count": 3,
    "d.vae.sample_gmm_density.mean": 0.80,  # rises towards 1: improvement
    "d.vae.sample_gmm_density.std": 0.01,
    "d.vae.sample_gmm_density.count": 3,
    "d.vae.sample_prior_density.mean": 1.05,  # rises away from 1: regression, though it rises
    "d.vae.sample_prior_density.std": 0.01,
    "d.vae.sample_prior_density.count": 3,
    "d.vae.sample_gmm_copy_rate.mean": 0.05,  # no better direction: changed
    "d.vae.sample_gmm_copy_rate.std": 0.001,
    "d.vae.sample_gmm_copy_rate.count": 3,
    "d.vae.probe_accuracy.mean": 0.90,  # a single seed: no interval
    "d.vae.probe_accuracy.count": 1,
    "d.vae.nll_iw.mean": 95.0,  # removed
    "d.vae.parameters.mean": 1000.0,  # unchanged
    "d.evaluator.reference_fd": 2.9,  # one evaluator: a single value, no interval
}
NEW = {
    "d.vae.recon_mse.mean": 0.025,
    "d.vae.recon_mse.std": 0.002,
    "d.vae.recon_mse.count": 3,
    "d.vae.recon_ssim.mean": 0.85,
    "d.vae.recon_ssim.std": 0.01,
    "d.vae.recon_ssim.count": 3,
    "d.vae.sample_gmm_fd.mean": 10.5,
    "d.vae.sample_gmm_fd.std": 0.4,
    "d.vae.sample_gmm_fd.count": 3,
    "d.vae.sample_gmm_density.mean": 0.95,
    "d.vae.sample_gmm_density.std": 0.01,
    "d.vae.sample_gmm_density.count": 3,
    "d.vae.sample_prior_density.mean": 1.30,
    "d.vae.sample_prior_density.std": 0.01,
    "d.vae.sample_prior_density.count": 3,
    "d.vae.sample_gmm_copy_rate.mean": 0.20,
    "d.vae.sample_gmm_copy_rate.std": 0.001,
    "d.vae.sample_gmm_copy_rate.count": 3,
    "d.vae.probe_accuracy.mean": 0.89,
    "d.vae.probe_accuracy.count": 1,
    "d.vae.parameters.mean": 1000.0,
    "d.evaluator.reference_fd": 3.5,
    "d.evaluator.test_accuracy": 0.98,  # added
}


@pytest.fixture
def changes():
    return {c.key: c for c in compare_metrics(OLD, NEW)}


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("d.vae.recon_mse", REGRESSION),
        ("d.vae.recon_ssim", IMPROVEMENT),
        ("d.vae.sample_gmm_fd", NOT_RESOLVED),
        ("d.vae.sample_gmm_density", IMPROVEMENT),
        ("d.vae.sample_prior_density", REGRESSION),
        ("d.vae.sample_gmm_copy_rate", CHANGED),
        ("d.vae.probe_accuracy", NOT_RESOLVED),
        ("d.vae.nll_iw", REMOVED),
        ("d.vae.parameters", UNCHANGED),
        ("d.evaluator.reference_fd", NOT_RESOLVED),
        ("d.evaluator.test_accuracy", ADDED),
    ],
)
def test_classification(changes, key, kind):
    assert changes[key].kind == kind


def test_interval_is_welch_from_mean_std_and_count(changes):
    ssim = changes["d.vae.recon_ssim"].diff
    variance = 0.01**2 / 3 + 0.01**2 / 3
    half = stats.t.ppf(0.975, 4) * math.sqrt(variance)  # Welch–Satterthwaite: 4
    assert ssim.estimate == pytest.approx(0.05)
    assert ssim.dof == pytest.approx(4.0)
    assert (ssim.low, ssim.high) == pytest.approx((0.05 - half, 0.05 + half))
    mse = changes["d.vae.recon_mse"].diff
    assert mse.low > 0 and not mse.covers_images  # the seed part only
    fd = changes["d.vae.sample_gmm_fd"]
    assert fd.diff.low < 0 < fd.diff.high and fd.reason == "not resolved with 3 seeds"


def test_no_interval_without_two_seeds_or_a_count(changes):
    single = changes["d.vae.probe_accuracy"]
    assert single.diff.low is None and single.reason == "not resolved with 1 seed"
    scalar = changes["d.evaluator.reference_fd"]
    assert scalar.reason.startswith("a single value")
    old = {"d.v.recon_mse.mean": 0.02, "d.v.recon_mse.std": 0.001}  # written before counts
    new = {"d.v.recon_mse.mean": 0.01, "d.v.recon_mse.std": 0.001, "d.v.recon_mse.count": 3}
    change = compare_metrics(old, new)[0]
    assert change.kind == NOT_RESOLVED and change.reason.startswith("no seed count recorded")


def test_order_puts_regressions_first(changes):
    kinds = [c.kind for c in compare_metrics(OLD, NEW)]
    assert kinds[:3] == [REGRESSION, REGRESSION, IMPROVEMENT]
    assert kinds[-1] == UNCHANGED


def test_render_lists_sections_in_order_and_counts_unchanged():
    old, new = Revision("HEAD~1", "abc1234", "old run", "abc1234" * 5), Revision("working tree")
    text = render_comparison(compare_metrics(OLD, NEW), old, new)
    assert "`HEAD~1` = `abc1234` old run" in text
    assert "working tree" in text
    assert (
        "regression: 2, improvement: 2, not resolved: 3, changed: 1, added: 1, removed: 1" in text
    )
    assert "seed part" in text and "Welch" in text
    assert text.index("## Regressions (2)") < text.index("## Improvements (2)")
    assert text.index("## Improvements (2)") < text.index("## Not resolved")
    row = next(line for line in text.splitlines() if line.startswith("| `d.vae.recon_mse`"))
    assert row.startswith(
        "| `d.vae.recon_mse` | MSE (per pixel) ↓ | 0.02 ± 0.001 (n=3) | 0.025 ± 0.002 (n=3) | "
        "+0.0050 (95% CI 0.0008 to 0.0092) |"
    ), row
    assert "| +0.5 (95% CI −1.6 to 2.6): not resolved with 3 seeds |" in text
    assert "| 0.9 (n=1) | 0.89 (n=1) | −0.01: not resolved with 1 seed |" in text
    assert "| 2.9 | 3.5 | +0.6: a single value (no seeds): no interval |" in text
    assert "%" not in text.replace("95% CI", "")  # changes in the metric's unit, never percent
    assert "## Unchanged" not in text
    assert "1 metric(s) unchanged" in text
    assert "## Unchanged (1)" in render_comparison(compare_metrics(OLD, NEW), old, new, True)
    lowered = text.lower()
    assert "seed spread" not in lowered and " tie" not in lowered


def test_environment_note():
    machine = {"cpu_model": "Xeon", "cpu_capability": "AVX512", "gpu": "none", "torch": "2.14"}
    assert environment_note(machine, dict(machine)).startswith("same CPU model")
    other = machine | {"cpu_model": "EPYC", "cpu_capability": "AVX2"}
    note = environment_note(machine, other)
    assert note.startswith("**differs**: CPU model Xeon → EPYC; torch CPU capability AVX512 → AVX2")
    assert environment_note(None, machine) == (
        "not recorded for the old revision (`reports/environment.json`)"
    )


def test_parse_rejects_a_nested_file():
    with pytest.raises(CompareError, match="expected a number"):
        parse_metrics(json.dumps({"d": {"vae": 1.0}}), "HEAD")


# --- end to end: the CLI on a temporary git repository ------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _write_metrics(repo: Path, metrics: dict[str, float]) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics, indent=2))


def _write_environment(repo: Path, cpu: str) -> None:
    machine = {"cpu_model": cpu, "cpu_capability": "AVX2", "gpu": "none", "torch_threads": 2}
    (repo / "reports" / "environment.json").write_text(json.dumps(machine))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """Three states: a first commit (no environment record), a second with changed results on a
    recorded machine, and an edited working tree from another CPU."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.name", "Test")
    _git(tmp_path, "config", "user.email", "test@example.com")
    _git(tmp_path, "config", "commit.gpgsign", "false")
    (tmp_path / "README.md").write_text("no results yet\n")
    _git(tmp_path, "add", "README.md")
    _git(tmp_path, "commit", "-q", "-m", "no results")
    _write_metrics(tmp_path, OLD)
    _git(tmp_path, "add", "reports/metrics.json")
    _git(tmp_path, "commit", "-q", "-m", "baseline results")
    _write_metrics(tmp_path, NEW)
    _write_environment(tmp_path, "Xeon")
    _git(tmp_path, "add", "reports/environment.json")
    _git(tmp_path, "commit", "-q", "-am", "wider latent")
    _write_metrics(tmp_path, {**NEW, "d.vae.recon_mse.mean": 0.010})
    _write_environment(tmp_path, "EPYC")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _compare(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(["compare", *args])
        status = 0
    except SystemExit as done:
        status = done.code
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_compares_two_commits(repo, capsys):
    status, out, _ = _compare(capsys, "HEAD~1", "HEAD")
    assert status == 0
    assert "wider latent" in out and "baseline results" in out
    assert "- **environment:** not recorded for the old revision" in out
    regression = out.index("| `d.vae.recon_mse` | MSE (per pixel) ↓ | 0.02 ± 0.001 (n=3) |")
    improvement = out.index("| `d.vae.recon_ssim` | SSIM ↑ | 0.8 ± 0.01 (n=3) | 0.85 ± 0.01 (n=3)")
    assert regression < improvement


def test_module_entry_point_runs_in_a_subprocess(repo):
    done = subprocess.run(
        [sys.executable, "-m", "aebench.cli", "compare", "HEAD~1", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("## Regressions (2)") < done.stdout.index("## Improvements (2)")


def test_cli_default_is_the_working_tree(repo, capsys):
    status, out, _ = _compare(capsys, "HEAD")
    assert status == 0
    assert "**new:** working tree" in out
    assert "- **environment:** **differs**: CPU model Xeon → EPYC" in out
    assert (
        "| `d.vae.recon_mse` | MSE (per pixel) ↓ | 0.025 ± 0.002 (n=3) | 0.01 ± 0.002 (n=3) | "
        "−0.0150 (95% CI −0.0195 to −0.0105) |"
    ) in out
    assert "## Improvements (1)" in out and "## Regressions" not in out


def test_cli_writes_out_file_from_a_subdirectory(repo, capsys, monkeypatch):
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    status, out, _ = _compare(capsys, "HEAD~1", "HEAD", "--out", "cmp.md", "--all")
    assert (status, out) == (0, "wrote cmp.md\n")
    text = (repo / "sub" / "cmp.md").read_text()
    assert text.startswith("# Metrics comparison") and "## Unchanged (1)" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no-such-rev",), "unknown revision: 'no-such-rev'"),
        (("HEAD", "no-such-rev"), "unknown revision: 'no-such-rev'"),
        (("--", "-x"), "unknown revision: '-x'"),
        (("HEAD~2",), "reports/metrics.json is missing at revision HEAD~2"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(repo, capsys, args, message):
    status, out, err = _compare(capsys, *args)
    assert status == 2
    assert out == ""
    assert message in err and err.count("\n") == 1
    if "missing" in message:
        assert "dvc repro" in err


def test_cli_missing_working_tree_file(repo, capsys):
    (repo / "reports" / "metrics.json").unlink()
    status, _, err = _compare(capsys, "HEAD")
    assert status == 2
    assert "missing in the working tree" in err and "dvc repro" in err


def test_cli_outside_a_repository(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    status, _, err = _compare(capsys, "HEAD~1")
    assert status == 2
    assert "not a git repository" in err


def _density(mean_old: float, mean_new: float) -> dict:
    old = {"d.v.sample_gmm_density.mean": mean_old, "d.v.sample_gmm_density.std": 0.01}
    new = {"d.v.sample_gmm_density.mean": mean_new, "d.v.sample_gmm_density.std": 0.01}
    for stats_ in (old, new):
        stats_["d.v.sample_gmm_density.count"] = 5
    return {c.key: c for c in compare_metrics(old, new)}["d.v.sample_gmm_density"]


def test_density_is_judged_by_its_distance_from_one():
    # 0.95 -> 0.98: nearer 1 on the same side, resolved
    assert _density(0.95, 0.98).kind == IMPROVEMENT
    assert _density(1.05, 1.10).kind == REGRESSION
    # 0.95 -> 1.04 crosses 1: the raw change is large, the distance barely moves; no verdict
    crossed = _density(0.95, 1.04)
    assert crossed.kind == CHANGED and "crossed the target" in crossed.reason


def test_many_changes_are_screened_for_false_discoveries():
    """Among 40 metrics that barely moved (26 moved at all), one CI that just excludes 0
    (p ≈ 0.045) is what chance gives: Benjamini–Hochberg keeps it from being called a
    regression; a large change stays one."""
    old, new = {}, {}
    for i in range(40):
        key = f"d.v{i}.recon_mse"
        old |= {f"{key}.mean": 0.02, f"{key}.std": 0.001, f"{key}.count": 5}
        new |= {f"{key}.mean": 0.02 + 1e-5 * (i % 3), f"{key}.std": 0.001, f"{key}.count": 5}
    new["d.v1.recon_mse.mean"] = 0.0215  # p ≈ 0.04 alone: excluded 0 before screening
    new["d.v2.recon_mse.mean"] = 0.03  # a real regression
    changes = {c.key: c for c in compare_metrics(old, new)}
    borderline = changes["d.v1.recon_mse"]
    assert borderline.diff.excludes_zero and borderline.kind == NOT_RESOLVED
    assert "not resolved after Benjamini–Hochberg over 26 changes" in borderline.reason
    assert changes["d.v2.recon_mse"].kind == REGRESSION
