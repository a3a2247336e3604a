"""``aebench history``: a throw-away repository with many commits, hardware and settings changes,
a planted regression beyond noise and a change within noise; what the history finds in it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aebench.cli import main
from aebench.compare import IMPROVEMENT, NOT_RESOLVED, REGRESSION, UNCHANGED
from aebench.history.build import read_history
from aebench.history.page import render_page, write_history
from aebench.history.snapshots import UNKNOWN_HARDWARE, hardware_class
from aebench.history.steps import HARDWARE, SETTINGS
from aebench.report.intervals import paired_difference

SEEDS = (0, 1, 2, 3, 4)
INTEL = {
    "cpu_model": "Intel(R) Xeon(R)",
    "cpu_capability": "AVX512",
    "torch_threads": 1,
    "gpu": "none",
    "devices": ["cpu"],
}
AMD = {**INTEL, "cpu_model": "AMD EPYC 9R14", "cpu_capability": "AVX2"}
# Seed-to-seed spread of the fake runs: the planted regression (+0.01 on every seed of `ae`)
# is 5× this, the change within noise moves seeds both ways with a zero mean.
SPREAD = np.array([0.002, -0.001, 0.0, 0.001, -0.002])
WITHIN_NOISE = np.array([0.0015, -0.001, 0.0005, -0.0015, 0.0005])


def _git(repo: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.strip()


@dataclass
class Results:
    """One commit's fake results: per variant, each metric's per-seed values."""

    runs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def shifted(self, variant: str, metric: str, delta: np.ndarray | float) -> Results:
        runs = {v: dict(m) for v, m in self.runs.items()}
        runs[variant][metric] = runs[variant][metric] + delta
        return Results(runs)


def base_results() -> Results:
    return Results(
        {
            "ae": {"recon_mse": 0.02 + SPREAD, "probe_accuracy": 0.9 + SPREAD},
            "vae": {"recon_mse": 0.03 + SPREAD, "probe_accuracy": 0.85 + SPREAD},
        }
    )


@dataclass
class ThrowAwayRepo:
    path: Path
    commits: dict[str, str] = field(default_factory=dict)  # label -> short hash
    anchors: dict[str, str] = field(default_factory=dict)  # label -> the history's row id
    clock: int = 1_700_000_000

    def commit(self, label: str, message: str) -> str:
        self.clock += 3600
        stamp = f"{self.clock} +0000"
        _git(self.path, "add", "-A")
        _git(
            self.path,
            "commit",
            "-q",
            "-m",
            message,
            env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
        )
        self.commits[label] = _git(self.path, "rev-parse", "--short", "HEAD")
        self.anchors[label] = "commit-" + _git(self.path, "rev-parse", "HEAD")[:12]
        return self.commits[label]

    def write(self, path: str, text: str) -> None:
        target = self.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def results(
        self,
        results: Results,
        environment: dict | None,
        runs_csv: bool = True,
        page: str = "",
        extra: dict | None = None,
    ) -> None:
        flat, rows = dict(extra or {}), []
        for variant, metrics in results.runs.items():
            for metric, values in metrics.items():
                key = f"mnist5k.{variant}.{metric}"
                flat |= {
                    f"{key}.mean": float(np.mean(values)),
                    f"{key}.std": float(np.std(values, ddof=1)),
                    f"{key}.count": len(values),
                }
            for i, seed in enumerate(SEEDS):
                rows.append(
                    {
                        "dataset": "mnist5k",
                        "variant": variant,
                        "seed": seed,
                        "device": "cpu",
                        **{m: float(v[i]) for m, v in metrics.items()},
                    }
                )
        self.write("reports/metrics.json", json.dumps(flat, indent=1))
        if runs_csv:
            pd.DataFrame(rows).to_csv(self.path / "reports/runs.csv", index=False)
        elif (self.path / "reports/runs.csv").exists():
            (self.path / "reports/runs.csv").unlink()
        if environment is None:
            (self.path / "reports/environment.json").unlink(missing_ok=True)
        else:
            self.write("reports/environment.json", json.dumps(environment))
        body = page or json.dumps(flat, sort_keys=True)
        self.write(
            "reports/index.html",
            f"<!DOCTYPE html><html><head><title>r</title></head><body><main><h1>Report"
            f"</h1><pre>{body}</pre></main></body></html>",
        )

    def settings(self, variant: str, lr: float) -> None:
        self.write(f"settings/train/{variant}.json", json.dumps({"train": {"lr": lr}}))
        self.write(f"settings/evaluate/{variant}.json", json.dumps({"evaluate": {}}))


def build_repository(path: Path) -> ThrowAwayRepo:
    """Eight commits: see the labels."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.name", "Test")
    _git(path, "config", "user.email", "test@example.com")
    _git(path, "config", "commit.gpgsign", "false")
    repo = ThrowAwayRepo(path)
    repo.write("README.md", "# throw-away\n\nSee [the docs](docs/guide.md#usage).\n")
    repo.write(
        "docs/guide.md",
        "# Guide\n\n## Usage\n\nRun it. Back to [the README](../README.md)."
        "\n\nCode: [cli](../aebench/cli.py). Site: [web](https://example.org).\n",
    )
    repo.settings("ae", 1e-3)
    repo.settings("vae", 1e-3)
    repo.commit("code", "code only, no results")
    results = base_results()
    repo.results(results, None)
    repo.commit("unrecorded", "results before environment.json existed")
    repo.results(results, INTEL)
    repo.commit("baseline", "baseline on Intel")
    repo.results(results, INTEL, page="re-rendered", extra={"mnist5k.evaluator.accuracy": 0.99})
    repo.commit("rerender", "report re-rendered with the evaluator's accuracy, numbers identical")
    noisy = results.shifted("vae", "recon_mse", WITHIN_NOISE)
    repo.results(noisy, INTEL)
    repo.commit("noise", "a change within noise (vae recon_mse)")
    planted = noisy.shifted("ae", "recon_mse", 0.01)
    repo.results(planted, INTEL)
    repo.commit("regression", "planted regression: ae recon_mse +0.01 on every seed")
    repo.write("aebench.txt", "code change without results")
    repo.commit("code2", "another code-only commit")
    repo.results(planted.shifted("ae", "recon_mse", 0.5), AMD)
    repo.commit("hardware", "rerun on AMD (everything moves)")
    repo.settings("vae", 3e-4)
    repo.results(
        planted.shifted("ae", "recon_mse", 0.5).shifted("vae", "probe_accuracy", 0.05), AMD
    )
    repo.commit("settings", "vae at lr 3e-4")
    return repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> ThrowAwayRepo:
    return build_repository(tmp_path_factory.mktemp("history-repo"))


@pytest.fixture(scope="module")
def history(repo):
    return read_history(repo.path)


def test_reads_only_commits_that_changed_results(repo, history):
    shown = [c.short for c in history.commits]
    expected = ["unrecorded", "baseline", "rerender", "noise", "regression", "hardware", "settings"]
    assert shown == [repo.commits[label] for label in expected]
    assert history.problems == []


def test_the_planted_regression_is_listed_and_the_noise_is_not(repo, history):
    resolved = [(s.new.commit.short, ".".join(s.key), s.change.kind) for s in history.resolved]
    assert resolved == [(repo.commits["regression"], "mnist5k.ae.recon_mse", REGRESSION)]
    step = history.resolved[0]
    assert step.paired and step.change.diff.estimate == pytest.approx(0.01)
    noise = [
        s
        for s in history.steps
        if s.new.commit.short == repo.commits["noise"] and s.key == ("mnist5k", "vae", "recon_mse")
    ]
    assert len(noise) == 1 and noise[0].change.kind == NOT_RESOLVED and noise[0].paired


def test_identical_numbers_are_unchanged(repo, history):
    kinds = {s.change.kind for s in history.steps if s.new.commit.short == repo.commits["rerender"]}
    assert kinds == {UNCHANGED}


def test_hardware_and_settings_changes_break_the_series(repo, history):
    by_commit = {}
    for item in history.breaks:
        by_commit.setdefault(item.new.commit.short, set()).add((item.variant, item.cause))
    assert by_commit[repo.commits["baseline"]] == {("ae", HARDWARE), ("vae", HARDWARE)}
    assert by_commit[repo.commits["hardware"]] == {("ae", HARDWARE), ("vae", HARDWARE)}
    assert by_commit[repo.commits["settings"]] == {("vae", SETTINGS)}
    # ae's settings did not change: it is compared across that commit, and is unchanged
    across = [s for s in history.steps if s.new.commit.short == repo.commits["settings"]]
    assert {s.key[1] for s in across} == {"ae"}
    assert {s.change.kind for s in across} == {UNCHANGED}
    # nothing is tested across a hardware change, however much it moved
    assert not any(s.new.commit.short == repo.commits["hardware"] for s in history.steps)


def test_welch_where_runs_are_not_committed(tmp_path):
    repo = build_repository(tmp_path / "r")
    better = base_results().shifted("vae", "probe_accuracy", 0.05)
    repo.settings("vae", 3e-4)  # back to the same settings as the last commit: no change
    repo.results(better.shifted("ae", "recon_mse", 0.51), AMD, runs_csv=False)
    repo.commit("welch", "no runs.csv")
    history = read_history(repo.path, "HEAD~1..HEAD")
    assert [c.short for c in history.commits] == [repo.commits["welch"]]
    history = read_history(repo.path)
    last = [s for s in history.steps if s.new.commit.short == repo.commits["welch"]]
    assert last and not any(s.paired for s in last)


def test_paired_difference_matches_the_textbook_paired_t():
    from scipy import stats

    old = np.array([1.0, 2.0, 3.0, 4.0])
    new = old + np.array([0.3, 0.1, 0.2, 0.4])
    diff = paired_difference(new, old)
    reference = stats.ttest_rel(new, old)
    low, high = reference.confidence_interval(0.95)
    assert diff.estimate == pytest.approx(0.25)
    assert (diff.low, diff.high) == (pytest.approx(low), pytest.approx(high))
    assert diff.p == pytest.approx(reference.pvalue)
    shift = paired_difference(old + 0.25, old)  # every seed alike: known exactly
    assert shift.low == shift.high == 0.25 and shift.p == 0.0 and shift.excludes_zero


def test_hardware_class():
    assert hardware_class(None) == UNKNOWN_HARDWARE
    assert hardware_class(INTEL) == "CPU Intel AVX512, 1 thread"
    assert hardware_class({**AMD, "torch_threads": 2}) == "CPU AMD AVX2, 2 threads"
    gpu = {**INTEL, "gpu": "NVIDIA H200", "devices": ["cuda"]}
    assert hardware_class(gpu) == "GPU NVIDIA H200"


def test_page_and_csv(repo, history, tmp_path):
    written = write_history(tmp_path / "out", history)
    assert [p.name for p in written] == ["index.html", "history.csv", "changes.csv"]
    page = (tmp_path / "out" / "index.html").read_text()
    changes_part = page.split('id="changes"')[1].split('id="breaks"')[0]
    assert repo.commits["regression"] in changes_part
    assert repo.commits["noise"] not in changes_part
    assert "hardware changed: CPU Intel AVX512, 1 thread → CPU AMD AVX2, 1 thread" in page
    assert "settings changed: another experiment" in page
    # each chart's points link to their commit's row
    assert f'xlink:href="#{repo.anchors["regression"]}"' in page
    assert f'id="{repo.anchors["regression"]}"' in page
    points = pd.read_csv(tmp_path / "out" / "history.csv")
    assert len(points) == 7 * 2 * 2  # commits × variants × metrics
    row = points[
        (points.commit.str.startswith(repo.commits["regression"]))
        & (points.variant == "ae")
        & (points.metric == "recon_mse")
    ].iloc[0]
    assert row["mean"] == pytest.approx(0.03) and row.ci_low < row["mean"] < row.ci_high
    changes = pd.read_csv(tmp_path / "out" / "changes.csv")
    assert set(changes.kind) <= {REGRESSION, IMPROVEMENT, NOT_RESOLVED, UNCHANGED}
    assert (changes.kind == REGRESSION).sum() == 1


def test_page_renders_without_links_to_elsewhere(history):
    page = render_page(history)
    assert re.findall(r'(?:href|src)="(?!#)[^"]*', page) == []  # links stay on the page
    assert "<script" not in page and "<metadata>" not in page


def test_cli_history(repo, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(repo.path)
    main(["history", "--out", str(tmp_path / "h")])
    out = capsys.readouterr().out
    assert "read 7 commit(s)" in out and "1 resolved" in out
    assert f"{repo.commits['regression']} regression: default mnist5k.ae.recon_mse" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["history", "no-such-branch..HEAD", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "unknown revision range: 'no-such-branch..HEAD'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


# --- what the reviewer of the first version found ------------------------------------------------


def test_pairing_resolves_a_shift_that_welch_cannot(tmp_path):
    """+0.001 on every seed, against a seed spread of about 0.0016: the paired interval (the
    same seeds on the same hardware) resolves it, Welch's over the means does not."""
    for with_runs in (True, False):
        repo = build_repository(tmp_path / f"runs-{with_runs}")
        last = base_results().shifted("vae", "recon_mse", WITHIN_NOISE)
        last = last.shifted("ae", "recon_mse", 0.51).shifted("vae", "probe_accuracy", 0.05)
        if not with_runs:  # the last commit's results as they were, without runs.csv
            repo.results(last, AMD, runs_csv=False)
            repo.commit("before", "runs.csv removed")
        repo.results(last.shifted("vae", "recon_mse", 0.001), AMD, runs_csv=with_runs)
        repo.commit("small", "vae recon_mse +0.001 on every seed")
        # a range's first commit has nothing before it in the range to be compared with
        assert read_history(repo.path, "HEAD~1..HEAD").steps == []
        history = read_history(repo.path)
        step = next(
            s
            for s in history.steps
            if s.new.commit.short == repo.commits["small"] and s.key[1:] == ("vae", "recon_mse")
        )
        assert step.paired is with_runs
        assert step.change.kind == (REGRESSION if with_runs else NOT_RESOLVED)


def test_a_stale_runs_table_is_not_paired(tmp_path):
    repo = build_repository(tmp_path / "r")
    moved = base_results().shifted("ae", "recon_mse", 0.55)
    repo.results(moved, AMD)
    repo.commit("fresh", "runs.csv and metrics agree")
    stale_runs = (repo.path / "reports" / "runs.csv").read_text()
    repo.results(moved.shifted("ae", "recon_mse", 0.05), AMD)
    (repo.path / "reports" / "runs.csv").write_text(stale_runs)  # left behind
    repo.commit("stale", "metrics moved, runs.csv did not")
    step = next(
        s
        for s in read_history(repo.path).steps
        if s.new.commit.short == repo.commits["stale"] and s.key[1:] == ("ae", "recon_mse")
    )
    assert not step.paired and step.change.diff.estimate == pytest.approx(0.05)


def test_merged_branches_are_read_along_the_first_parent(tmp_path):
    repo = build_repository(tmp_path / "r")
    results = base_results().shifted("ae", "recon_mse", 0.5).shifted("vae", "probe_accuracy", 0.05)
    _git(repo.path, "checkout", "-q", "-b", "feature")
    repo.results(results.shifted("ae", "recon_mse", 0.2), AMD)
    repo.commit("feature", "on a branch")
    _git(repo.path, "checkout", "-q", "main")
    repo.results(results.shifted("vae", "recon_mse", 0.2), AMD)
    repo.commit("main", "on main")
    # both sides changed the results: the merge conflicts, and is resolved by a re-run
    subprocess.run(
        ["git", "merge", "-q", "--no-commit", "feature"],
        cwd=repo.path,
        check=False,
        capture_output=True,
    )
    repo.results(results.shifted("ae", "recon_mse", 0.2).shifted("vae", "recon_mse", 0.2), AMD)
    repo.commit("merge", "merge feature")
    history = read_history(repo.path)
    shown = [c.short for c in history.commits]
    assert repo.commits["feature"] not in shown
    assert shown[-2:] == [repo.commits["main"], repo.commits["merge"]]
    moved = {
        s.key[1]
        for s in history.steps
        if s.new.commit.short == repo.commits["merge"] and s.change.kind != UNCHANGED
    }
    assert moved == {"ae"}  # the merge brought the branch's ae change; vae was already there


def test_an_unreadable_commit_is_named_and_left_out(tmp_path):
    repo = build_repository(tmp_path / "r")
    for label, text in [
        ("badkey", '{"mnist5k.recon_mse.mean": 0.1}'),
        ("nan_count", '{"mnist5k.ae.recon_mse.mean": 0.1, "mnist5k.ae.recon_mse.count": NaN}'),
        ("binary", None),
    ]:
        path = repo.path / "reports" / "metrics.json"
        if text is None:
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            path.write_text(text)
        repo.commit(label, f"a malformed file: {label}")
    repo.results(base_results(), AMD)
    repo.commit("good", "readable again")
    history = read_history(repo.path)
    assert [p.split(":")[0] for p in history.problems] == [
        repo.commits[label] for label in ("badkey", "nan_count", "binary")
    ]
    assert "reports/metrics.json or runs.csv at" in history.problems[0]
    assert history.commits[-1].short == repo.commits["good"]


def test_a_variant_name_with_a_space_is_read(tmp_path):
    repo = build_repository(tmp_path / "r")
    results = Results({"my model": base_results().runs["ae"]})
    repo.results(results, AMD)
    repo.commit("space", "a variant whose name holds a space")
    history = read_history(repo.path)
    assert any(key[1] == "my model" for key in history.sections["default"][-1].stats)


def test_the_studies_section_gets_intervals_from_its_runs_table(tmp_path):
    repo = build_repository(tmp_path / "r")
    for label, shift in (("study1", 0.0), ("study2", 0.01)):
        values = 0.05 + SPREAD + shift
        means = {"beta": {"mnist5k": {"vae--beta-2": {"recon_mse": float(values.mean())}}}}
        rows = pd.DataFrame(
            {
                "study": "beta",
                "dataset": "mnist5k",
                "curve": "vae",
                "value": 2.0,
                "variant": "vae--beta-2",
                "seed": list(SEEDS),
                "recon_mse": values,
            }
        )
        repo.write("reports/studies/metrics.json", json.dumps(means))
        rows.to_csv(repo.path / "reports/studies/runs.csv", index=False)
        repo.write("reports/studies/environment.json", json.dumps(AMD))
        repo.commit(label, f"studies {label}")
    history = read_history(repo.path)
    point = history.sections["studies"][0].stats[("mnist5k", "beta: vae--beta-2", "recon_mse")]
    assert point.count == 5 and point.std == pytest.approx(np.std(SPREAD, ddof=1))
    (step,) = [s for s in history.steps if s.section == "studies"]
    assert step.paired and step.change.kind == REGRESSION


def test_a_run_that_became_nan_is_listed(tmp_path):
    repo = build_repository(tmp_path / "r")
    broken = base_results().shifted("ae", "recon_mse", 0.51).shifted("vae", "probe_accuracy", 0.05)
    broken = broken.shifted("vae", "recon_mse", WITHIN_NOISE)
    broken.runs["vae"]["recon_mse"] = np.full(5, np.nan)
    repo.results(broken, AMD)
    repo.commit("nan", "vae diverged")
    history = read_history(repo.path)
    (step,) = [s for s in history.resolved if s.new.commit.short == repo.commits["nan"]]
    assert step.key[1:] == ("vae", "recon_mse") and step.change.kind == REGRESSION
    assert "became NaN" in render_page(history)
