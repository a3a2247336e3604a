"""``aebench compare``: classification from hand-made metric dicts, then the CLI on a real repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aebench.cli import main
from aebench.compare import (
    ADDED,
    CHANGED,
    IMPROVEMENT,
    REGRESSION,
    REMOVED,
    UNCHANGED,
    WITHIN_SPREAD,
    CompareError,
    Revision,
    compare_metrics,
    parse_metrics,
    render_comparison,
)

OLD = {
    "d.vae.recon_mse.mean": 0.020,  # lower is better; rises beyond the spread: regression
    "d.vae.recon_mse.std": 0.001,
    "d.vae.recon_ssim.mean": 0.80,  # higher is better; rises beyond the spread: improvement
    "d.vae.recon_ssim.std": 0.01,
    "d.vae.sample_gmm_fd.mean": 10.0,  # moves by less than the std: within spread
    "d.vae.sample_gmm_fd.std": 1.0,
    "d.vae.train_seconds.mean": 30.0,  # a cost: no better direction
    "d.vae.train_seconds.std": 2.0,
    "d.vae.probe_accuracy.mean": 0.90,  # single seed, no std: the spread test is n/a
    "d.vae.nll_iw.mean": 95.0,  # removed
    "d.vae.parameters.mean": 1000.0,  # unchanged
}
NEW = {
    "d.vae.recon_mse.mean": 0.025,
    "d.vae.recon_mse.std": 0.002,
    "d.vae.recon_ssim.mean": 0.85,
    "d.vae.recon_ssim.std": 0.01,
    "d.vae.sample_gmm_fd.mean": 10.5,
    "d.vae.sample_gmm_fd.std": 0.4,
    "d.vae.train_seconds.mean": 60.0,
    "d.vae.train_seconds.std": 2.0,
    "d.vae.probe_accuracy.mean": 0.89,
    "d.vae.parameters.mean": 1000.0,
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
        ("d.vae.sample_gmm_fd", WITHIN_SPREAD),
        ("d.vae.train_seconds", CHANGED),
        ("d.vae.probe_accuracy", REGRESSION),
        ("d.vae.nll_iw", REMOVED),
        ("d.vae.parameters", UNCHANGED),
        ("d.evaluator.test_accuracy", ADDED),
    ],
)
def test_classification(changes, key, kind):
    assert changes[key].kind == kind


def test_numbers_and_spread(changes):
    mse = changes["d.vae.recon_mse"]
    assert mse.delta == pytest.approx(0.005)
    assert mse.percent == pytest.approx(25.0)
    assert mse.spread == pytest.approx(0.002)  # the larger std of the two revisions
    assert mse.beyond_spread is True
    assert changes["d.vae.sample_gmm_fd"].beyond_spread is False
    single_seed = changes["d.vae.probe_accuracy"]
    assert single_seed.spread is None
    assert single_seed.beyond_spread is None


def test_change_equal_to_the_spread_is_within_it():
    old = {"d.v.recon_psnr.mean": 20.0, "d.v.recon_psnr.std": 0.5}
    new = {"d.v.recon_psnr.mean": 19.5, "d.v.recon_psnr.std": 0.25}
    assert compare_metrics(old, new)[0].kind == WITHIN_SPREAD


def test_std_of_one_revision_is_enough():
    old = {"d.v.recon_mse.mean": 0.02}
    new = {"d.v.recon_mse.mean": 0.01, "d.v.recon_mse.std": 0.02}
    assert compare_metrics(old, new)[0].kind == WITHIN_SPREAD


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
        "regression: 2, improvement: 1, within spread: 1, changed: 1, added: 1, removed: 1" in text
    )
    assert "max(std old, std new)" in text
    assert text.index("## Regressions (2)") < text.index("## Improvements (1)")
    assert text.index("## Improvements (1)") < text.index("## Within seed spread (1)")
    assert (
        "| `d.vae.recon_mse` | MSE (per pixel) ↓ | 0.02 | 0.025 | +0.005 | +25% | 0.002 | yes |"
        in (text)
    )
    assert "| n/a | n/a |" in text  # the single-seed metric: no spread, no test
    assert "## Unchanged" not in text
    assert "1 metric(s) unchanged" in text
    assert "## Unchanged (1)" in render_comparison(compare_metrics(OLD, NEW), old, new, True)


def test_parse_rejects_a_nested_file():
    with pytest.raises(CompareError, match="expected a number"):
        parse_metrics(json.dumps({"d": {"vae": 1.0}}), "HEAD")


# --- end to end: the CLI on a temporary git repository ------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _write_metrics(repo: Path, metrics: dict[str, float]) -> None:
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports" / "metrics.json").write_text(json.dumps(metrics, indent=2))


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """Three states: a first commit, a second with a changed file, and an edited working tree."""
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
    _git(tmp_path, "commit", "-q", "-am", "wider latent")
    _write_metrics(tmp_path, {**NEW, "d.vae.recon_mse.mean": 0.010})
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
    regression = out.index("`d.vae.recon_mse` | MSE (per pixel) ↓ | 0.02 | 0.025 | +0.005 | +25%")
    improvement = out.index("`d.vae.recon_ssim` | SSIM ↑ | 0.8 | 0.85 | +0.05 | +6.25%")
    assert regression < improvement


def test_module_entry_point_runs_in_a_subprocess(repo):
    done = subprocess.run(
        [sys.executable, "-m", "aebench.cli", "compare", "HEAD~1", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("## Regressions (2)") < done.stdout.index("## Improvements (1)")


def test_cli_default_is_the_working_tree(repo, capsys):
    status, out, _ = _compare(capsys, "HEAD")
    assert status == 0
    assert "**new:** working tree" in out
    assert "| `d.vae.recon_mse` | MSE (per pixel) ↓ | 0.025 | 0.01 | -0.015 | -60% |" in out
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
