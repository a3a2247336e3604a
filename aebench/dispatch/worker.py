"""One stage on one Dask worker: `dvc repro STAGE` in the worker's own checkout."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from aebench.dispatch.workspace import create_worktree

# One checkout per worker process: a worker restarted after a crash gets a fresh one.
_WORKTREES: dict[int, Path] = {}


@dataclass(frozen=True)
class Job:
    """What every task needs to know about the run it belongs to."""

    root: Path  # the user's workspace
    commit: str
    cache_dir: Path
    gpus: int  # GPUs on a worker's machine; worker i gets GPU i mod gpus


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    worker: str
    seconds: float
    restored: bool  # DVC found it in the run-cache instead of running it


class StageFailed(Exception):
    """`dvc repro` of a stage failed; the message ends with its log's last lines."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage

    def __reduce__(self):  # pickled between Dask processes with both arguments
        return (StageFailed, (self.stage, str(self)))


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except (ImportError, ValueError):
        return "local"


def _environment(job: Job, worktree: Path, worker: str) -> dict[str, str]:
    # DVC settings that point at the user's workspace stay there; the worktree has its own
    env = {key: value for key, value in os.environ.items() if not key.startswith("DVC_")}
    env["DVC_SITE_CACHE_DIR"] = str(worktree / ".dvc" / "site_cache")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(worktree)  # the commit's aebench, not an editable install's
    env["DVC_NO_ANALYTICS"] = "1"
    env["AEBENCH_DOWNLOADS"] = str(job.root / "downloads")  # one download for all workers
    if job.gpus and worker.isdigit():  # one of the GPUs this run may use, as the user set them
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = (
            [i.strip() for i in visible.split(",")]
            if visible
            else [str(i) for i in range(job.gpus)]
        )
        env["CUDA_VISIBLE_DEVICES"] = ids[int(worker) % len(ids)]
    return env


@functools.lru_cache(maxsize=2)
def _committed_lock(root: Path, commit: str) -> dict | None:
    """The snapshot's dvc.lock, parsed once per worker process (None: the commit has none)."""
    from dvc.utils.serialize import parse_yaml

    shown = subprocess.run(
        ["git", "show", f"{commit}:dvc.lock"], cwd=root, capture_output=True, text=True
    )
    return parse_yaml(shown.stdout, "dvc.lock") if shown.returncode == 0 else None


def trim_lockfile(worktree: Path, lock: dict | None, keep: Collection[str]) -> None:
    """Write the worktree's dvc.lock with only the entries of ``keep`` (the stage and what it
    depends on). DVC rewrites the whole lock file after every stage, 1.7 s for the default
    matrix's 82 entries; the entries of unrelated stages change nothing a `dvc repro STAGE`
    decides, and this lock file is discarded with the worktree."""
    if lock is None:
        return
    from dvc.utils.serialize import dumps_yaml

    stages = lock.get("stages") or {}
    trimmed = {**lock, "stages": {name: entry for name, entry in stages.items() if name in keep}}
    (worktree / "dvc.lock").write_text(dumps_yaml(trimmed))


def reproduce(
    stage: str, job: Job, needs: Collection[str], *upstream: StageOutcome
) -> StageOutcome:
    """Reproduce ``stage`` (and restore what it needs from the run-cache) in this worker's
    checkout. ``needs``: the stage and every stage it depends on, whose dvc.lock entries are
    kept. ``upstream`` only orders the tasks: Dask starts this one after them."""
    worker = _worker_name()
    worktree = _WORKTREES.get(os.getpid())
    if worktree is None or not worktree.is_dir():
        worktree = create_worktree(job.root, job.commit, f"{worker}-{os.getpid()}", job.cache_dir)
        _WORKTREES[os.getpid()] = worktree
    trim_lockfile(worktree, _committed_lock(job.root, job.commit), needs)
    log_path = job.root / ".aebench" / "logs" / f"{stage.replace('/', '_')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    guard = [sys.executable, "-m", "aebench.dispatch.guard", "--parent", str(os.getpid()), "--"]
    with log_path.open("w") as log:
        result = subprocess.run(
            [*guard, sys.executable, "-m", "aebench.dispatch.dvc_repro", stage],
            cwd=worktree,
            env=_environment(job, worktree, worker),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    seconds = time.perf_counter() - started
    output = log_path.read_text()
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise StageFailed(stage, f"{stage} failed on worker {worker} (log: {log_path}):\n{tail}")
    ran = set(re.findall(r"Running stage '([^']+)'", output))
    return StageOutcome(stage=stage, worker=worker, seconds=seconds, restored=stage not in ran)
