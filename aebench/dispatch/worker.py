"""One stage on one Dask worker: `dvc repro STAGE` in the worker's own checkout."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from aebench.dispatch.dvc_repro import SETTINGS_CURRENT
from aebench.dispatch.lockfile import committed_locks, trim_lockfile
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


def checkout_name(worker: str) -> str:
    """The worker's checkout folder: its name made path-safe. A `dask worker` started without
    ``--name`` is named by its address (``tcp://127.0.0.1:40219``), whose ``:`` would split the
    checkout's path in PYTHONPATH, and the stages would import another copy of aebench."""
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', worker)}-{os.getpid()}"


def _environment(job: Job, worktree: Path, worker: str) -> dict[str, str]:
    # DVC settings that point at the user's workspace stay there; the worktree has its own
    env = {key: value for key, value in os.environ.items() if not key.startswith("DVC_")}
    env["DVC_SITE_CACHE_DIR"] = str(worktree / ".dvc" / "site_cache")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(worktree)  # the commit's aebench, not an editable install's
    env["DVC_NO_ANALYTICS"] = "1"
    env["AEBENCH_DOWNLOADS"] = str(job.root / "downloads")  # one download for all workers
    # the snapshot carries the settings the dispatcher wrote from its own params and code
    env[SETTINGS_CURRENT] = "1"
    if job.gpus and worker.isdigit():  # one of the GPUs this run may use, as the user set them
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = (
            [i.strip() for i in visible.split(",")]
            if visible
            else [str(i) for i in range(job.gpus)]
        )
        env["CUDA_VISIBLE_DEVICES"] = ids[int(worker) % len(ids)]
    return env


def reproduce(
    stage: str, job: Job, lock_entries: Collection[str], *upstream: StageOutcome
) -> StageOutcome:
    """Reproduce ``stage`` (and restore what it needs from the run-cache) in this worker's
    checkout. ``lock_entries``: the lock entries it keeps (see ``trim_lockfile``).
    ``upstream`` only orders the tasks: Dask starts this one after them."""
    worker = _worker_name()
    worktree = _WORKTREES.get(os.getpid())
    if worktree is None or not worktree.is_dir():
        worktree = create_worktree(job.root, job.commit, checkout_name(worker), job.cache_dir)
        _WORKTREES[os.getpid()] = worktree
    trim_lockfile(worktree, committed_locks(job.root, job.commit), lock_entries)
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
