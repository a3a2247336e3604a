"""Run a command in a process group of its own that dies with the guard's parent.

A Dask worker killed with SIGKILL runs no clean-up code, so a `dvc repro` it started, and the
stage script under it, would go on writing into the shared cache. The guard sits between them:
it watches its parent and, once the parent is gone (or on SIGTERM/SIGINT), kills the whole group.

    python -m aebench.dispatch.guard [--parent PID] -- COMMAND [ARG ...]

``--parent`` names the process to watch (default: the guard's parent when it starts); passing it
closes the window in which the worker dies before the guard has looked.
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
    usage = "usage: python -m aebench.dispatch.guard [--parent PID] -- COMMAND [ARG ...]"
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print(usage, file=sys.stderr)
        return 2
    options, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parent = os.getppid()
    if options[:1] == ["--parent"] and len(options) == 2 and options[1].isdigit():
        parent = int(options[1])
    elif options:
        print(usage, file=sys.stderr)
        return 2
    child: subprocess.Popen | None = None

    def stop(signum: int, frame: object) -> None:
        if child is not None:
            _kill_group(child.pid)
        sys.exit(128 + signum)

    # handlers before the child exists: no signal can leave an unwatched group behind
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    child = subprocess.Popen(command, start_new_session=True)
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
