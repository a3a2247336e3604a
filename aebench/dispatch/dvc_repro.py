"""`dvc repro` that writes each dvc.lock once, at the end, instead of after every stage.

DVC rewrites the whole dvc.lock after each stage it runs or restores: a round-trip YAML parse
and dump that takes 1.7 s for the default matrix's 82-stage lock file (Intel Xeon, AVX-512), so
restoring the matrix from the run-cache spent 149 s on 81 rewrites. Here the stages DVC hands
to `Lockfile.dump_stages` are collected and written with one call per lock file, also
when the run fails or is interrupted, so every stage that finished is recorded. Nothing else of
DVC changes: which stages run, the run-cache, the outputs.

Usage: ``python -m aebench.dispatch.dvc_repro [dvc repro arguments]``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def lockfile_written_once() -> Iterator[None]:
    """Within the block, DVC's per-stage dvc.lock updates are queued; on leaving it (also by an
    exception) each lock file is written once with every queued stage, in the order DVC ran
    them. Relies on `dvc.dvcfile.Lockfile.dump_stages` (dvc 3.x; the version is pinned)."""
    from dvc.dvcfile import Lockfile

    queued: dict[str, tuple[Lockfile, list]] = {}
    original = Lockfile.dump_stages

    def queue(self, stages, **kwargs):
        if kwargs:  # a call this module does not know how to batch: DVC's own behaviour
            return original(self, stages, **kwargs)
        queued.setdefault(self.path, (self, []))[1].extend(stages)

    Lockfile.dump_stages = queue
    try:
        yield
    finally:
        Lockfile.dump_stages = original
        for lockfile, stages in queued.values():
            changed = _changed_entries(lockfile, stages)
            if changed:
                original(lockfile, changed)


def _changed_entries(lockfile, stages: list) -> list:
    """The stages whose lock entry differs from the file's. DVC rewrites the file even when
    nothing changed, as after the always-run `hardware` stage of a no-op repro (1.7 s); a
    fast, C-parsed read tells when there is nothing to write."""
    from pathlib import Path

    from dvc.stage.serialize import to_lockfile
    from dvc.utils.serialize import parse_yaml

    path = Path(lockfile.path)
    recorded = (parse_yaml(path.read_text(), str(path)) if path.is_file() else {}).get("stages")
    recorded = recorded or {}
    return [
        stage for stage in stages if to_lockfile(stage) != {stage.name: recorded.get(stage.name)}
    ]


def main(argv: list[str]) -> int:
    from dvc.cli import main as dvc_main

    with lockfile_written_once():
        return dvc_main(["repro", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
