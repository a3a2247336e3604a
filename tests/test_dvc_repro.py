"""`python -m aebench.dispatch.dvc_repro`: DVC's repro with dvc.lock written once, and the
worker's trimmed dvc.lock. A three-stage shell pipeline stands in for the real one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from aebench.dispatch import dvc_repro
from aebench.dispatch.lockfile import forget_entries, lock_key, trim_lockfile

PIPELINE = """\
stages:
  one:
    cmd: echo one > one.txt
    outs: [one.txt]
  two:
    cmd: cat one.txt > two.txt && echo two >> two.txt
    deps: [one.txt]
    outs: [two.txt]
  three:
    cmd: {three}
    deps: [two.txt]
    outs: [three.txt]
"""


def _repo(root: Path, three: str = "cat two.txt > three.txt", extra: str = "") -> Path:
    root.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env)
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", "--local", "core.site_cache_dir", str(root / "sc")],
        cwd=root,
        check=True,
        env=env,
    )
    (root / "dvc.yaml").write_text(PIPELINE.format(three=three) + extra)
    return root


def _repro(
    root: Path, module: str, *repro_args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`dvc repro` (module "dvc") or the batched one, with ``repro_args``."""
    args = [sys.executable, "-m", module] + (["repro"] if module == "dvc" else [])
    return subprocess.run(
        [*args, *repro_args],
        cwd=root,
        env={**os.environ, "DVC_NO_ANALYTICS": "1", **(env or {})},
        capture_output=True,
        text=True,
    )


def test_the_lock_file_equals_dvcs_own(tmp_path):
    plain, batched = _repo(tmp_path / "plain"), _repo(tmp_path / "batched")
    assert _repro(plain, "dvc").returncode == 0
    result = _repro(batched, "aebench.dispatch.dvc_repro")
    assert result.returncode == 0, result.stderr
    assert (batched / "dvc.lock").read_text() == (plain / "dvc.lock").read_text()
    again = _repro(batched, "dvc")  # DVC itself finds everything up to date
    assert "Running stage" not in again.stdout


def test_restores_from_the_run_cache_are_written_once(tmp_path, monkeypatch):
    root = _repo(tmp_path / "repo")
    assert _repro(root, "dvc").returncode == 0  # fills the run-cache
    for name in ("one.txt", "two.txt", "three.txt", "dvc.lock"):
        (root / name).unlink()
    from dvc.dvcfile import Lockfile

    writes = []
    original = Lockfile.dump_stages
    monkeypatch.setattr(
        Lockfile,
        "dump_stages",
        lambda self, stages, **kw: (writes.append(len(stages)), original(self, stages, **kw)),
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    assert dvc_repro.main([]) == 0
    assert writes == [3]  # DVC alone: [1, 1, 1]
    assert (root / "three.txt").read_text() == "one\ntwo\n"


def test_a_stage_command_sees_the_entries_of_the_stages_before_it(tmp_path):
    """The report reads dvc.lock (its results fingerprint): queued entries are written before
    a stage's command starts."""
    root = _repo(tmp_path / "repo", three="cp dvc.lock three.txt")
    assert _repro(root, "aebench.dispatch.dvc_repro").returncode == 0
    seen = yaml.safe_load((root / "three.txt").read_text())["stages"]
    assert sorted(seen) == ["one", "two"]


def test_a_failed_stage_keeps_the_lock_entries_of_those_before_it(tmp_path):
    root = _repo(tmp_path / "repo", three="exit 3")
    result = _repro(root, "aebench.dispatch.dvc_repro")
    assert result.returncode != 0
    recorded = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert sorted(recorded) == ["one", "two"]
    rerun = _repro(root, "dvc")  # what was recorded holds: only the failed stage runs again
    assert rerun.stdout.count("Running stage") == 1 and "'three'" in rerun.stdout


def _always_run(name: str, text: str) -> str:
    """An always-changed stage ``name`` that writes ``text`` to ``<name>.txt`` (uncached)."""
    return f"""\
  {name}:
    cmd: echo {text} > {name}.txt
    always_changed: true
    outs:
      - {name}.txt:
          cache: false
"""


ALWAYS_RUN = _always_run("record", "same")


def test_a_no_op_repro_leaves_the_lock_file_alone(tmp_path):
    """An always-run stage that writes the same output changes no lock entry: DVC itself
    rewrites dvc.lock anyway, the batched repro does not touch it."""
    root = _repo(tmp_path / "repo", extra=ALWAYS_RUN)
    assert _repro(root, "aebench.dispatch.dvc_repro").returncode == 0
    lock = root / "dvc.lock"
    before = lock.stat().st_mtime_ns
    result = _repro(root, "aebench.dispatch.dvc_repro")
    assert result.returncode == 0 and "Running stage 'record'" in result.stdout
    assert lock.stat().st_mtime_ns == before
    assert _repro(root, "dvc").returncode == 0
    assert lock.stat().st_mtime_ns != before  # DVC's own repro does rewrite it


def test_the_worker_lock_keeps_only_the_listed_entries(tmp_path):
    lock = {"schema": "2.0", "stages": {name: {"cmd": name} for name in ("a", "b", "c")}}
    study = {"schema": "2.0", "stages": {name: {"cmd": name} for name in ("a", "s")}}
    (tmp_path / "studies").mkdir()
    keep = ["a", "c", "not-in-the-lock", "studies/dvc.yaml:s"]
    trim_lockfile(tmp_path, {"dvc.lock": lock, "studies/dvc.lock": study}, keep)
    written = yaml.safe_load((tmp_path / "dvc.lock").read_text())
    assert written == {"schema": "2.0", "stages": {"a": {"cmd": "a"}, "c": {"cmd": "c"}}}
    assert sorted(lock["stages"]) == ["a", "b", "c"]  # the cached parse stays whole
    # the studies pipeline's entries are addressed through their file; its "a" is not dvc.lock's
    written = yaml.safe_load((tmp_path / "studies" / "dvc.lock").read_text())
    assert written == {"schema": "2.0", "stages": {"s": {"cmd": "s"}}}


def test_a_lock_file_the_commit_lacks_is_removed_from_the_worktree(tmp_path):
    """A reused worktree's earlier stage wrote studies/dvc.lock, which the snapshot has none of:
    only entries of dispatched stages can be in it, and none of them may stay."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "dvc.lock").write_text("schema: '2.0'\nstages: {s: {cmd: s}}\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("not a lock file")
    trim_lockfile(tmp_path, {}, ["studies/dvc.yaml:s"])
    assert not (tmp_path / "dvc.lock").exists()
    assert not (tmp_path / "studies" / "dvc.lock").exists()
    assert (tmp_path / "data" / "keep.txt").exists()


def test_lock_entries_are_found_in_their_pipelines_lock_file():
    assert lock_key("train@digits-vae-0") == ("dvc.lock", "train@digits-vae-0")
    assert lock_key("studies/dvc.yaml:study_report") == ("studies/dvc.lock", "study_report")


def test_forgotten_entries_are_restored_from_the_run_cache_not_rerun(tmp_path):
    """A committed dvc.lock whose outputs are not in the cache (a fresh clone's: the train
    stage's timing file differs on every run) makes DVC rerun a stage although the run-cache
    holds a result for it; without the entry, DVC restores that result."""
    root = _repo(tmp_path / "repo", three="date +%N > three.txt")  # new bytes on every run
    assert _repro(root, "dvc").returncode == 0
    committed = (root / "dvc.lock").read_text()
    recorded = yaml.safe_load(committed)["stages"]["three"]["outs"][0]["md5"]
    rerun = _repro(root, "dvc", "-f", "three")  # the run-cache gets a newer result
    assert rerun.returncode == 0, rerun.stderr

    def fresh_clone_state() -> None:
        (root / "dvc.lock").write_text(committed)
        (root / "three.txt").unlink()
        (root / ".dvc" / "cache" / "files" / "md5" / recorded[:2] / recorded[2:]).unlink(
            missing_ok=True
        )

    fresh_clone_state()
    assert "Running stage 'three'" in _repro(root, "dvc").stdout  # DVC's own behaviour
    fresh_clone_state()
    assert forget_entries(root, ["three", "not-a-stage"]) == 1
    restored = _repro(root, "dvc")
    assert "Running stage" not in restored.stdout, restored.stdout
    assert "Stage 'three' is cached" in restored.stdout
    assert "three" in yaml.safe_load((root / "dvc.lock").read_text())["stages"]


PROJECT = Path(__file__).resolve().parents[1]
HARDWARE = f"""\
  hardware:
    cmd: {sys.executable} {PROJECT / "pipeline" / "hardware.py"}
    always_changed: true
    outs:
      - hardware.json:
          cache: false
"""


def test_a_current_hardware_record_is_not_rewritten_and_any_other_is(tmp_path):
    """The always-changed `hardware` stage runs once; then, while hardware.json holds what this
    machine would write, the batched repro skips it (plain DVC runs it every time). A record
    from other hardware (here: edited to claim AVX2) runs it again and is corrected."""
    root = _repo(tmp_path / "repo", extra=HARDWARE)
    (root / "settings").mkdir()
    (root / "settings" / "machine.json").write_text('{"device": "auto", "threads": 1}\n')
    record = root / "hardware.json"

    first = _repro(root, "aebench.dispatch.dvc_repro")
    assert first.returncode == 0 and "Running stage 'hardware'" in first.stdout, first.stderr
    written = record.read_text()
    assert dvc_repro.hardware_record_is_current(root)
    again = _repro(root, "aebench.dispatch.dvc_repro")
    assert again.returncode == 0 and "Running stage" not in again.stdout

    record.write_text(written.replace('"cpu_capability": "', '"cpu_capability": "AVX2-'))
    assert not dvc_repro.hardware_record_is_current(root)
    corrected = _repro(root, "aebench.dispatch.dvc_repro")
    assert "Running stage 'hardware'" in corrected.stdout and record.read_text() == written
    assert "Running stage 'hardware'" in _repro(root, "dvc").stdout  # DVC's own behaviour


SETTINGS = _always_run("settings", "resolved")


def test_a_worker_trusts_the_settings_the_dispatcher_wrote(tmp_path):
    """In a worker's checkout (SETTINGS_CURRENT set by `aebench run`) the always-changed
    settings stage is checked like any other and, unchanged, not run; anywhere else it runs on
    every repro, as DVC would run it."""
    root = _repo(tmp_path / "repo", extra=SETTINGS)
    assert "Running stage 'settings'" in _repro(root, "aebench.dispatch.dvc_repro").stdout
    worker = {dvc_repro.SETTINGS_CURRENT: "1"}
    trusted = _repro(root, "aebench.dispatch.dvc_repro", "settings", env=worker)
    assert trusted.returncode == 0 and "Running stage" not in trusted.stdout, trusted.stdout
    again = _repro(root, "aebench.dispatch.dvc_repro", "settings")
    assert "Running stage 'settings'" in again.stdout
