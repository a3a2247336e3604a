"""`dvc repro` that writes dvc.lock in batches instead of after every stage.

DVC rewrites the whole dvc.lock after each stage it runs or restores: a round-trip YAML parse
and dump that takes 1.7 s for the default matrix's 82-stage lock file (Intel Xeon, AVX-512), so
restoring the matrix from the run-cache spent 149 s on 81 rewrites. Here the entries DVC hands
to `Lockfile.dump_stages` are queued and written

- just before a stage's command starts (a stage script may read dvc.lock: the report's results
  fingerprint does), so only run-cache restores are batched;
- at the end of the repro, inside DVC's repository lock, also when a stage failed or the run
  was interrupted (Ctrl-C); a SIGKILL loses the queued entries of restored stages, which the
  next repro restores again;

and not at all when no entry changed (a no-op repro's always-run `hardware` stage). SIGINT and
SIGTERM are held back while the file is written, so it is never left half-written. Nothing else
of DVC changes: which stages run, the run-cache, the outputs.

The always-changed ``hardware`` stage is also skipped when ``hardware.json`` already holds the
record this machine would write and its deps are unchanged, and so is the always-changed
``settings`` stage in a worker's checkout, whose settings the dispatcher wrote before the
snapshot (see ``always_changed_trusted``).

Usage: ``python -m aebench.dispatch.dvc_repro [dvc repro arguments]``.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _Queue:
    """Lock entries DVC asked to write, per lock file, in the order it asked."""

    def __init__(self, write) -> None:
        self._write = write  # DVC's own Lockfile.dump_stages
        self._pending: dict[str, tuple[object, list]] = {}

    def add(self, lockfile, stages: list) -> None:
        self._pending.setdefault(lockfile.path, (lockfile, []))[1].extend(stages)

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        held = {signal.SIGINT, signal.SIGTERM}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for lockfile, stages in pending.values():
                changed = _changed_entries(lockfile, stages)
                if changed:
                    self._write(lockfile, changed)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _changed_entries(lockfile, stages: list) -> list:
    """The stages whose entry differs from the file's (DVC's own test of a modified entry; DVC
    then rewrites the file whether or not any is). A C-parsed read takes ~0.2 s."""
    from dvc.stage.serialize import to_lockfile
    from dvc.utils.serialize import parse_yaml

    path = Path(lockfile.path)
    data = parse_yaml(path.read_text(), str(path)) if path.is_file() else {}
    recorded = data.get("stages") or {}
    return [
        stage for stage in stages if to_lockfile(stage) != {stage.name: recorded.get(stage.name)}
    ]


@contextmanager
def lockfile_batched() -> Iterator[None]:
    """Within the block, DVC's dvc.lock writes are batched as the module docstring says.
    Patches three names of dvc 3.x (pinned): `Lockfile.dump_stages`, `dvc.stage.run.
    unlocked_repo` (called just before a stage's command runs, while the repository is still
    locked) and `dvc.repo.reproduce._reproduce` (the stage loop, inside the lock)."""
    import dvc.repo.reproduce as reproduce_module
    import dvc.stage.run as run_module
    from dvc.dvcfile import Lockfile

    original_dump = Lockfile.dump_stages
    original_unlocked = run_module.unlocked_repo
    original_loop = reproduce_module._reproduce
    queue = _Queue(original_dump)

    def queued_dump(self, stages, **kwargs):
        if kwargs:  # a call this module does not know how to batch: DVC's own behaviour
            return original_dump(self, stages, **kwargs)
        queue.add(self, stages)

    def flushed_before_command(func):
        queue.flush()
        return original_unlocked(func)

    def flushed_after_loop(*args, **kwargs):
        try:
            return original_loop(*args, **kwargs)
        finally:
            queue.flush()

    Lockfile.dump_stages = queued_dump
    run_module.unlocked_repo = flushed_before_command
    reproduce_module._reproduce = flushed_after_loop
    try:
        yield
    finally:
        Lockfile.dump_stages = original_dump
        run_module.unlocked_repo = original_unlocked
        reproduce_module._reproduce = original_loop
        queue.flush()  # normally empty: the loop's own flush ran


HARDWARE_STAGE = "hardware"  # dvc.yaml's always-changed record of the hardware class
SETTINGS_STAGE = "settings"  # dvc.yaml's always-changed resolution of params.yaml
# Set by `aebench run` for its workers: the snapshot holds settings/ as the dispatcher wrote them
# from that very snapshot's params and code (it runs the settings stage before snapshotting).
SETTINGS_CURRENT = "AEBENCH_SETTINGS_CURRENT"


def hardware_record_is_current(root: Path = Path()) -> bool:
    """Whether ``hardware.json`` holds exactly what the ``hardware`` stage would write here from
    the machine settings it reads. Any doubt (no file, one it cannot read) answers no, and the
    stage runs as DVC would run it. (The settings stage runs first: if it rewrites the machine
    settings, DVC sees the hardware stage's dependency change and runs it.)"""
    import json

    from aebench.hardware import record_text
    from aebench.settings import machine_path

    path = root / "hardware.json"
    try:
        machine = json.loads((root / machine_path()).read_text())
        return path.read_text() == record_text(machine["device"], machine["threads"])
    except (OSError, ValueError, KeyError):
        return False


@contextmanager
def always_changed_trusted() -> Iterator[None]:
    """Within the block, DVC checks the ``hardware`` stage's deps and outputs like any other
    stage's instead of running it on every repro, when its record is current; and the
    ``settings`` stage's in a worker's checkout (``SETTINGS_CURRENT``). Running them costs a
    process start plus DVC's bookkeeping (0.45 s for the record, ~3 s for the settings, which
    import the families) before every stage a worker reproduces. A record from other hardware,
    an edited ``hardware.json``, changed params or code, or ``--force`` still run them. Patches
    ``Stage.changed_deps`` of dvc 3.x (pinned)."""
    import os

    from dvc.stage import Stage

    original = Stage.changed_deps
    trusted = set()
    if hardware_record_is_current():
        trusted.add(HARDWARE_STAGE)
    if os.environ.get(SETTINGS_CURRENT) == "1":
        trusted.add(SETTINGS_STAGE)

    def changed_deps(self, allow_missing: bool = False, upstream: list | None = None) -> bool:
        if self.name in trusted and self.always_changed and not self.frozen:
            return self._changed_deps(allow_missing=allow_missing, upstream=upstream)
        return original(self, allow_missing=allow_missing, upstream=upstream)

    Stage.changed_deps = changed_deps
    try:
        yield
    finally:
        Stage.changed_deps = original


def main(argv: list[str]) -> int:
    from dvc.cli import main as dvc_main

    with lockfile_batched(), always_changed_trusted():
        return dvc_main(["repro", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
