"""Every DVC stage depends on exactly the aebench code it runs: a missing dependency lets a code
change go unnoticed (stale results), an extra one reruns a stage for nothing (and cascades).

"Runs" is what importing the stage script loads, plus the modules a stage imports only on the
path that needs them (LAZY); settings come from the settings stage's files, never params.yaml,
except in the stages that read params.yaml itself (they validate it: the settings stage and the
report stages)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = (
    "settings",
    "hardware",
    "fetch",
    "evaluator",
    "train",
    "evaluate",
    "chain",
    "memorisation",
    "report",
)
# Imported inside a function, on the path that needs it: a dataset from files in fetch; the
# schema and the families in the settings stage when its inputs changed.
LAZY = {"fetch": ("aebench.file_datasets",), "settings": ("aebench.config", "aebench.resolve")}
READS_PARAMS = (
    "settings",
    "report",
    "study_report",
    "full_mnist_report",
    "select_tuning",
    "tuning_report",
)
# studies/dvc.yaml's stages (run from the top level, wdir ..) and the script each runs
STUDY_STAGES = {
    "train_study": "train",
    "evaluate_study": "evaluate",
    "study_report": "study_report",
}
# full_mnist/dvc.yaml's stages (wdir ..) and the script each runs
FULL_MNIST_STAGES = {
    "fetch": "fetch",
    "evaluator": "evaluator",
    "train": "train",
    "evaluate": "evaluate",
    "chain": "chain",
    "memorisation": "memorisation",
    "report": "full_mnist_report",
}
# tuning/dvc.yaml's stages (wdir ..) and the script each runs
TUNING_STAGES = {
    "train_tuning": "train",
    "validate_tuning": "validate",
    "select_tuning": "select_tuning",
    "train_final": "train",
    "evaluate_final": "evaluate",
}
# Imports a stage script as a module (its main() does not run) and the modules it imports lazily
# (argv[2:]), and lists the aebench files loaded.
PROBE = """
import importlib, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("stage", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
for lazy in sys.argv[2:]:
    importlib.import_module(lazy)
print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items())
                        if n.split(".")[0] == "aebench" and getattr(m, "__file__", None))))
"""


def _probe(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            PROBE,
            str(REPO / "pipeline" / f"{script}.py"),
            *LAZY.get(script, ()),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


@functools.cache
def _all_loaded() -> dict[str, frozenset[str]]:
    """Every stage script's loaded code, probed once each and all at once: each probe is a
    Python start-up that imports torch (seconds), and several stages share a script."""
    scripts = sorted(
        {*STAGES, *STUDY_STAGES.values(), *FULL_MNIST_STAGES.values(), *TUNING_STAGES.values()}
        | {"tuning_report"}
    )
    running = {script: _probe(script) for script in scripts}
    loaded = {}
    for script, process in running.items():
        out, _ = process.communicate()
        assert process.returncode == 0, f"probing pipeline/{script}.py failed"
        loaded[script] = frozenset(
            str(Path(path).resolve().relative_to(REPO)) for path in json.loads(out)
        )
    return loaded


def _loaded_code(stage: str) -> frozenset[str]:
    return _all_loaded()[stage]


def _deps(stage: str, pipeline: str = "dvc.yaml") -> list[str]:
    """The stage's deps as written (foreach stages keep theirs under ``do``)."""
    definition = yaml.safe_load((REPO / pipeline).read_text())["stages"][stage]
    return definition.get("do", definition)["deps"]


def _declared_code(stage: str, pipeline: str = "dvc.yaml") -> set[str]:
    deps = _deps(stage, pipeline)
    declared = set()
    for dep in deps:
        path = REPO / dep
        if dep.startswith("aebench"):
            files = path.rglob("*.py") if path.is_dir() else [path]
            declared |= {str(f.relative_to(REPO)) for f in files if "__pycache__" not in f.parts}
    return declared


@pytest.mark.parametrize("stage", STAGES)
def test_stage_depends_on_exactly_the_code_it_loads(stage):
    loaded, declared = _loaded_code(stage), _declared_code(stage)
    assert loaded - declared == set(), f"{stage}: runs code it does not depend on"
    assert declared - loaded == set(), f"{stage}: depends on code it never runs"
    assert f"pipeline/{stage}.py" in _deps(stage)


@pytest.mark.parametrize("stage", STUDY_STAGES)
def test_study_stage_depends_on_exactly_the_code_it_loads(stage):
    script = STUDY_STAGES[stage]
    loaded, declared = _loaded_code(script), _declared_code(stage, "studies/dvc.yaml")
    assert loaded - declared == set(), f"{stage}: runs code it does not depend on"
    assert declared - loaded == set(), f"{stage}: depends on code it never runs"
    assert f"pipeline/{script}.py" in _deps(stage, "studies/dvc.yaml")
    if script != "study_report":  # the same code as the default pipeline's stage
        assert _declared_code(stage, "studies/dvc.yaml") == _declared_code(script)


@pytest.mark.parametrize("stage", FULL_MNIST_STAGES)
def test_full_mnist_stage_depends_on_exactly_the_code_it_loads(stage):
    script = FULL_MNIST_STAGES[stage]
    pipeline = "full_mnist/dvc.yaml"
    loaded, declared = _loaded_code(script), _declared_code(stage, pipeline)
    assert loaded - declared == set(), f"{stage}: runs code it does not depend on"
    assert declared - loaded == set(), f"{stage}: depends on code it never runs"
    assert f"pipeline/{script}.py" in _deps(stage, pipeline)
    if script != "full_mnist_report":  # the same code as the default pipeline's stage
        assert _declared_code(stage, pipeline) == _declared_code(script)


def test_the_committed_instrument_is_tracked_in_full():
    """The evaluator's outputs live in git (cache: false). If one of them were git-ignored, a
    fresh clone, and every `aebench run` worker's checkout, would miss it and retrain the
    instrument."""
    definition = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluator"]["do"]
    datasets = yaml.safe_load((REPO / "params.yaml").read_text())["run"]["datasets"]
    for dataset in datasets:
        for out in definition["outs"]:
            (template,) = out
            path = template.replace("${item}", dataset)
            assert out[template]["cache"] is False, path
            tracked = subprocess.run(
                ["git", "ls-files", "--error-unmatch", path], cwd=REPO, capture_output=True
            )
            assert tracked.returncode == 0, f"{path} is not in git"


@pytest.mark.parametrize("stage", STAGES)
def test_only_the_validating_stages_read_params(stage):
    """A stage that takes its settings from params.yaml re-runs when the schema or an unrelated
    key changes; the others read settings/ files whose bytes change only with their settings."""
    definition = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    body = definition.get("do", definition)
    reads_params = "aebench/config.py" in _declared_code(stage) or "params" in body
    assert reads_params == (stage in READS_PARAMS), stage
    if stage not in READS_PARAMS and stage != "settings":
        assert any(str(dep).startswith("settings/") for dep in body["deps"]), stage


@pytest.mark.parametrize("stage", TUNING_STAGES)
def test_tuning_stage_depends_on_exactly_the_code_it_loads(stage):
    script = TUNING_STAGES[stage]
    pipeline = "tuning/dvc.yaml"
    loaded, declared = _loaded_code(script), _declared_code(stage, pipeline)
    assert loaded - declared == set(), f"{stage}: runs code it does not depend on"
    assert declared - loaded == set(), f"{stage}: depends on code it never runs"
    assert f"pipeline/{script}.py" in _deps(stage, pipeline)
    if script in ("train", "evaluate"):  # the same code as the default pipeline's stage
        assert _declared_code(stage, pipeline) == _declared_code(script)


def test_tuning_report_stage_depends_on_exactly_the_code_it_loads():
    pipeline = "tuning/report/dvc.yaml"
    loaded = _loaded_code("tuning_report")
    declared = _declared_code("tuning_report", pipeline)
    assert loaded - declared == set(), "tuning_report: runs code it does not depend on"
    assert declared - loaded == set(), "tuning_report: depends on code it never runs"


PIPELINES = (
    "dvc.yaml",
    "studies/dvc.yaml",
    "tuning/dvc.yaml",
    "tuning/report/dvc.yaml",
    "full_mnist/dvc.yaml",
)


def _stage_bodies(pipeline: str):
    """(name, definition) of each stage as written (foreach stages keep theirs under ``do``)."""
    for name, definition in yaml.safe_load((REPO / pipeline).read_text())["stages"].items():
        yield name, definition.get("do", definition)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_params_file_resolves_from_its_stage_wdir(pipeline):
    """DVC reads a stage's params file relative to the stage's wdir, not to dvc.yaml (`vars`
    are relative to dvc.yaml): full_mnist's report once named ../params.yaml from wdir .., which
    DVC refused only when the stage finally ran, hours into the section."""
    for name, body in _stage_bodies(pipeline):
        wdir = (REPO / pipeline).parent / body.get("wdir", ".")
        for entry in body.get("params", []):
            files = list(entry) if isinstance(entry, dict) else ["params.yaml"]
            for file in files:
                assert (wdir / file).resolve().is_file(), f"{pipeline}:{name}: {file}"


# Stages whose outputs are uncached plain `outs` (kept in git, not run-cached): `aebench run`
# runs them in the workspace, serially, not on its workers (aebench/dispatch/plan.py).
IN_PLACE_STAGES = {
    ("dvc.yaml", "settings"),
    ("dvc.yaml", "hardware"),
    ("dvc.yaml", "evaluator"),
    ("dvc.yaml", "report"),
    ("studies/dvc.yaml", "study_report"),
    ("tuning/dvc.yaml", "select_tuning"),
    ("tuning/report/dvc.yaml", "tuning_report"),
    ("full_mnist/dvc.yaml", "evaluator"),
    ("full_mnist/dvc.yaml", "report"),
}


def test_per_run_stages_are_run_cached_so_workers_run_them():
    """An uncached output of a per-run stage must be a metric or a plot: a plain uncached `outs`
    takes the stage off the run-cache, and `aebench run` then runs every such stage in the
    workspace on one core. tuning's validation scores once were: 81 grid points in series."""
    in_place = {
        (pipeline, name)
        for pipeline in PIPELINES
        for name, body in _stage_bodies(pipeline)
        for out in body.get("outs", [])
        if isinstance(out, dict) and next(iter(out.values())).get("cache") is False
    }
    assert in_place == IN_PLACE_STAGES
