"""DVC caching re-runs only what changed, and an unchanged input re-renders to identical bytes.

A code edit must re-run the stages that run that code and stop there: the re-run stages write
byte-identical outputs (no wall-clock value, no date, no random draw outside the run's seeds), so
DVC sees their dependants' inputs unchanged and skips them. A leaked timestamp anywhere in a
stage's outputs would instead cascade to every stage downstream on each run.

One tiny pipeline (digits, two variants, one seed, three epochs) runs once per module; each
scenario works on its own copy of it, DVC cache included, so the scenarios do not interfere.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# pytest puts tests/ on sys.path (no __init__.py): the same module it collects, under any runner
from tests.test_pipeline import _copy_repo, _env

RUN = {"datasets": ["digits"], "variants": ["dae_masking", "vae"], "seeds": [0]}
RUNS = [f"digits-{variant}-{seed}" for variant in RUN["variants"] for seed in RUN["seeds"]]
TRAIN = {f"train@{run}" for run in RUNS}
EVALUATE = {f"evaluate@{run}" for run in RUNS}
# Wall-clock seconds are written here on purpose: no stage depends on these files.
TIMINGS = "timings/"


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``dvc`` in ``root``, running the copy's own library: without PYTHONPATH the stage scripts
    (``python pipeline/x.py``) would import aebench through the editable install, i.e. the
    checkout's code, not the copy's."""
    env = _env(root)
    env["PYTHONPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


ALWAYS_RUN = {"hardware", "settings"}  # by design; each rewrites identical bytes when unchanged


def _repro(root: Path, *args: str) -> set[str]:
    """Run ``dvc repro`` and return the names of the stages it ran, except ``hardware`` and
    ``settings``: they run every time by design and, on one machine and unchanged params,
    rewrite identical bytes (checked here for the hardware record)."""
    record = root / "hardware.json"
    before = record.read_bytes() if record.is_file() else None
    result = _dvc(root, "repro", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout))
    if before is not None:
        assert record.read_bytes() == before
    return ran - ALWAYS_RUN


def _lock(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


def _outs(lock: dict[str, Any], stage: str) -> dict[str, str]:
    """path -> md5 of a stage's outputs, wall-clock timing files left out."""
    return {
        out["path"]: out["md5"]
        for out in lock[stage]["outs"]
        if not out["path"].startswith(TIMINGS)
    }


def _dep_md5(lock: dict[str, Any], stage: str, path: str) -> str:
    return next(dep["md5"] for dep in lock[stage]["deps"] if dep["path"] == path)


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _keys(value: Any) -> list[str]:
    """Every mapping key anywhere in a parsed JSON value."""
    if isinstance(value, dict):
        return [*value, *(key for item in value.values() for key in _keys(item))]
    if isinstance(value, list):
        return [key for item in value for key in _keys(item)]
    return []


def _clock_keys(path: Path) -> list[str]:
    return [k for k in _keys(json.loads(path.read_text())) if re.search("seconds|time", k, re.I)]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    """The tiny pipeline after its first ``dvc repro`` (read only: scenarios copy it)."""
    root = _copy_repo(tmp_path_factory.mktemp("cached") / "repo", RUN, epochs=3)
    ran = _repro(root)
    assert ran >= TRAIN | EVALUATE | {"fetch@digits", "evaluator@digits", "report"}
    return root


def _copy(pipeline: Path, target: Path) -> Path:
    """An independent copy of the pipeline, outputs and DVC cache included; DVC's state and
    temporary files stay behind (they are keyed to the original's paths and inodes)."""

    def skip(directory: str, names: list[str]) -> set[str]:
        return {"tmp", "site_cache"} & set(names) if Path(directory) == pipeline / ".dvc" else set()

    return Path(shutil.copytree(pipeline, target, symlinks=True, ignore=skip))


def _edit_code(root: Path, module: str) -> None:
    """A change of the file's hash that leaves its behaviour alone."""
    with (root / module).open("a") as handle:
        handle.write("# caching test: a comment changes the hash, not the behaviour\n")


@pytest.mark.slow
def test_evaluation_code_edit_reruns_only_the_evaluations(pipeline, tmp_path):
    root = _copy(pipeline, tmp_path / "repo")
    before, report_before = _lock(root), _snapshot(root / "reports")
    _edit_code(root, "aebench/evaluate.py")
    ran = _repro(root)
    after = _lock(root)
    # every evaluation re-runs; nothing upstream does, and the report sees identical inputs
    assert ran == EVALUATE
    for stage in EVALUATE:
        assert _dep_md5(after, stage, "aebench/evaluate.py") != _dep_md5(
            before, stage, "aebench/evaluate.py"
        )
        assert _outs(after, stage) == _outs(before, stage), stage
    assert after["report"] == before["report"]
    assert _snapshot(root / "reports") == report_before


@pytest.mark.slow
def test_training_code_edit_reruns_only_the_training(pipeline, tmp_path):
    root = _copy(pipeline, tmp_path / "repo")
    before = _lock(root)
    _edit_code(root, "aebench/train.py")
    ran = _repro(root)
    after = _lock(root)
    # identical checkpoints and histories: evaluations and report are not re-run
    assert ran == TRAIN
    for stage in TRAIN:
        assert _dep_md5(after, stage, "aebench/train.py") != _dep_md5(
            before, stage, "aebench/train.py"
        )
        assert _outs(after, stage) == _outs(before, stage), stage
    for stage in (*EVALUATE, "report"):
        assert after[stage] == before[stage], stage


def _edit_params(root: Path, dotted: str, value: Any) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_schema_code_edit_that_changes_no_setting_reruns_no_stage(pipeline, tmp_path):
    """The schema (aebench/config.py) is read only by the settings stage and the report: its
    edit rewrites identical settings files, so no fetch, train or evaluation re-runs."""
    root = _copy(pipeline, tmp_path / "repo")
    before, settings_before = _lock(root), _snapshot(root / "settings")
    _edit_code(root, "aebench/config.py")
    assert _repro(root) == {"report"}
    settings_after = _snapshot(root / "settings")
    # re-resolved (the record of what was read names config.py's new hash), same settings
    assert settings_after.pop("inputs.json") != settings_before.pop("inputs.json")
    assert settings_after == settings_before
    after = _lock(root)
    for stage in (*TRAIN, *EVALUATE, "fetch@digits", "evaluator@digits", "chain@digits"):
        assert after[stage] == before[stage], stage


@pytest.mark.slow
def test_an_evaluate_setting_reruns_only_the_evaluations_that_read_it(pipeline, tmp_path):
    """The importance-sample count is read only by families with a posterior (the VAE here);
    the chain's settings only by the chain stage, not by any evaluation."""
    root = _copy(pipeline, tmp_path / "repo")
    _edit_params(root, "evaluate.importance_samples", 10)
    assert _repro(root) == {"evaluate@digits-vae-0", "report"}
    _edit_params(root, "evaluate.chain.trace_steps", 48)
    assert _repro(root) == {"chain@digits", "report"}


@pytest.mark.slow
def test_forced_report_renders_are_byte_identical(pipeline, tmp_path):
    root = _copy(pipeline, tmp_path / "repo")
    renders = [_snapshot(root / "reports")]
    for _ in range(2):
        assert _repro(root, "-f", "-s", "report") == {"report"}
        renders.append(_snapshot(root / "reports"))
    names = set(renders[0])
    assert {"README.md", "index.html", "metrics.json"} <= names
    assert any(name.startswith("figures/") and name.endswith(".png") for name in names)
    for render in renders[1:]:
        assert set(render) == names
        changed = [name for name in names if render[name] != renders[0][name]]
        assert not changed, f"re-rendering unchanged results changed {changed}"


@pytest.mark.slow
def test_no_wall_clock_value_in_outputs_other_stages_depend_on(pipeline):
    records = [
        path
        for directory in ("models", "metrics", "evaluators")
        for path in sorted((pipeline / directory).rglob("*.json"))
    ]
    # train.json and metrics.json per run, evaluator.json per dataset
    assert len(records) >= 2 * len(RUNS) + 1
    assert {path.relative_to(pipeline).as_posix() for path in records} >= {
        "evaluators/digits/evaluator.json",
        *(f"models/{run.replace('-', '/')}/train.json" for run in RUNS),
        *(f"metrics/{run.replace('-', '/')}/metrics.json" for run in RUNS),
    }
    leaked = {str(path.relative_to(pipeline)): _clock_keys(path) for path in records}
    assert not {path: keys for path, keys in leaked.items() if keys}
    # the check itself finds wall-clock keys where they belong
    assert _clock_keys(pipeline / "timings/train/digits/vae/0.json")

    today = datetime.date.today()
    dates = {today.isoformat(), today.strftime("%d %b %Y"), today.strftime("%B %d, %Y")}
    reports = sorted([*pipeline.glob("reports/*.md"), *pipeline.glob("reports/*.html")])
    assert {path.name for path in reports} >= {"README.md", "index.html"}
    for path in reports:
        text = path.read_text()
        assert not [date for date in dates if date in text], path.name
