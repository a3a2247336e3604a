"""Run a command in a process group of its own that dies with the guard's parent.

A Dask worker killed with SIGKILL runs no clean-up code, so a `dvc repro` it started, and the
stage script under it, would go on writing into the shared cache. The guard sits between them:
it watches its parent and, once the parent is gone (or on SIGTERM/SIGINT), kills the whole group.

    python -m aebench.dispatch.guard -- COMMAND [ARG ...]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

POLL_SECONDS = 0.2


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m aebench.dispatch.guard -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    parent = os.getppid()
    child = subprocess.Popen(command, start_new_session=True)

    def stop(signum: int, frame: object) -> None:
        _kill_group(child.pid)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None:
        if os.getppid() != parent:  # the worker died: nobody waits for this stage any more
            _kill_group(child.pid)
            child.wait()
            return 137
        time.sleep(POLL_SECONDS)
    _kill_group(child.pid)  # anything the command left running in its group
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
