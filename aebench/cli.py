"""Command-line entry points: the ``aebench`` command and the error handling every stage shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from aebench.config import ParamsError, load_params
from aebench.data import DatasetError

# The errors a user can fix by editing params or files: reported in one line, no traceback.
USER_ERRORS = (ParamsError, DatasetError, FileNotFoundError)


def run_stage(stage: Callable[[], None]) -> None:
    """Run a stage body; a user error becomes one message on stderr and exit status 2."""
    try:
        stage()
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aebench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check params.yaml and print the run matrix")
    validate.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    if args.command == "validate":
        run_stage(lambda: _validate(args.params))


def _validate(path: str) -> None:
    params = load_params(path)
    run = params.run
    print(
        f"{path}: ok — {len(run.datasets)} dataset(s) × {len(run.variants)} variant(s) × "
        f"{len(run.seeds)} seed(s) = {len(run.datasets) * len(run.variants) * len(run.seeds)} runs"
    )
