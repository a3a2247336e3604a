"""dvc.lock entries that would stop DVC from restoring a dispatched stage from the run-cache.

DVC restores a stage from its lock entry when the entry's deps match, and from the run-cache
only when they do not (`StageCache.restore`). A lock entry whose outputs are not in the cache
(a fresh clone's committed dvc.lock: the train stage's wall-clock `timings/` file differs on
every run, so its recorded hash is never in a new cache) makes DVC run the stage again instead.
So neither a worker's checkout nor the closing repro may hold the entries of dispatched stages:
without one, DVC finds the result the worker saved in the run-cache.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Collection
from pathlib import Path


@functools.lru_cache(maxsize=2)
def committed_lock(root: Path, commit: str) -> dict | None:
    """The snapshot's dvc.lock, parsed once per worker process (None: the commit has none)."""
    from dvc.utils.serialize import parse_yaml

    shown = subprocess.run(
        ["git", "show", f"{commit}:dvc.lock"], cwd=root, capture_output=True, text=True
    )
    return parse_yaml(shown.stdout, "dvc.lock") if shown.returncode == 0 else None


def trim_lockfile(worktree: Path, lock: dict | None, keep: Collection[str]) -> None:
    """Write the worktree's dvc.lock with only the entries of ``keep``: the stages upstream of
    the one to run that were not dispatched (up to date in the user's workspace, so their
    outputs are in the cache or in git). Besides letting DVC restore dispatched stages from the
    run-cache, a short lock file is quick to rewrite (1.7 s for the default matrix's 82
    entries); this one is discarded with the worktree."""
    if lock is None:
        return
    from dvc.utils.serialize import dumps_yaml

    stages = lock.get("stages") or {}
    trimmed = {**lock, "stages": {name: entry for name, entry in stages.items() if name in keep}}
    (worktree / "dvc.lock").write_text(dumps_yaml(trimmed))


def forget_entries(root: Path, names: Collection[str]) -> int:
    """Remove the entries of ``names`` from ``root``'s dvc.lock (one rewrite), so that the
    closing repro restores those stages from the run-cache and records them anew. Returns how
    many were removed. A repro that stops before restoring them leaves them out of date, and
    the next one restores them."""
    from dvc.utils.serialize import modify_yaml

    path = root / "dvc.lock"
    if not path.is_file():
        return 0
    with modify_yaml(str(path)) as data:
        stages = data.get("stages") or {}
        dropped = [name for name in names if name in stages]
        for name in dropped:
            del stages[name]
    return len(dropped)
