"""What every DVC stage script shares: user errors become one line on stderr and exit status 2.

Kept apart from :mod:`aebench.cli` so that a stage imports only what it runs (the ``aebench``
command also pulls in the comparison tool and its statistics).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from aebench.errors import DatasetError, ParamsError

# The errors a user can fix by editing params or files: reported in one line, no traceback.
USER_ERRORS: tuple[type[Exception], ...] = (ParamsError, DatasetError, FileNotFoundError)


def run_stage(stage: Callable[[], None], user_errors: tuple[type[Exception], ...] = ()) -> None:
    """Run a stage body; a user error becomes one message on stderr and exit status 2."""
    try:
        stage()
    except (*USER_ERRORS, *user_errors) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
