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


def lock_key(address: str) -> tuple[str, str]:
    """The lock file and entry name of a stage as the plan addresses it: ``train@x`` lives in
    dvc.lock, ``studies/dvc.yaml:train_study@x`` in studies/dvc.lock as ``train_study@x``."""
    if ":" in address:
        dvcfile, name = address.rsplit(":", 1)
        return str(Path(dvcfile).with_suffix(".lock")), name
    return "dvc.lock", address


def _by_lock_file(addresses: Collection[str]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for address in addresses:
        lock_file, name = lock_key(address)
        grouped.setdefault(lock_file, set()).add(name)
    return grouped


@functools.lru_cache(maxsize=2)
def committed_locks(root: Path, commit: str) -> dict[str, dict]:
    """The snapshot's lock files (every pipeline's), parsed once per worker process."""
    from dvc.utils.serialize import parse_yaml

    listed = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit], cwd=root, capture_output=True, text=True
    )
    locks = {}
    for path in listed.stdout.splitlines():
        if Path(path).name == "dvc.lock":
            shown = subprocess.run(
                ["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, text=True
            )
            if shown.returncode == 0:
                locks[path] = parse_yaml(shown.stdout, path)
    return locks


def trim_lockfile(worktree: Path, locks: dict[str, dict], keep: Collection[str]) -> None:
    """Write the worktree's lock files with only the entries of ``keep`` (stage addresses): the
    stages upstream of the one to run that were not dispatched (up to date in the user's
    workspace, so their outputs are in the cache or in git). Besides letting DVC restore
    dispatched stages from the run-cache, a short lock file is quick to rewrite (1.7 s for the
    default matrix's 82 entries); these are discarded with the worktree. Lock files of the
    worktree that the snapshot has none of are removed."""
    from dvc.utils.serialize import dumps_yaml

    wanted = _by_lock_file(keep)
    for path, lock in locks.items():
        stages = lock.get("stages") or {}
        names = wanted.get(path, set())
        trimmed = {**lock, "stages": {name: e for name, e in stages.items() if name in names}}
        (worktree / path).write_text(dumps_yaml(trimmed))
    # a lock file the snapshot lacks was written by an earlier stage in this reused worktree
    # (the first run of a pipeline): it holds only entries of dispatched stages, so it goes
    for stray in [worktree / "dvc.lock", *worktree.glob("*/dvc.lock")]:
        if stray.is_file() and str(stray.relative_to(worktree)) not in locks:
            stray.unlink()


def forget_entries(root: Path, names: Collection[str]) -> int:
    """Remove the entries of ``names`` (stage addresses) from ``root``'s lock files (one
    rewrite each), so that the closing repro restores those stages from the run-cache and
    records them anew. Returns how many were removed. A repro that stops before restoring them
    leaves them out of date, and the next one restores them."""
    from dvc.utils.serialize import modify_yaml

    removed = 0
    for lock_file, wanted in sorted(_by_lock_file(names).items()):
        path = root / lock_file
        if not path.is_file():
            continue
        with modify_yaml(str(path)) as data:
            stages = data.get("stages") or {}
            dropped = [name for name in wanted if name in stages]
            for name in dropped:
                del stages[name]
        removed += len(dropped)
    return removed
