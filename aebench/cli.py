"""Command-line entry points: the ``aebench`` command and the error handling every stage shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aebench.compare import CompareError, comparison_report
from aebench.config import ParamsError, load_params
from aebench.data import DatasetError
from aebench.io import write_text

# The errors a user can fix by editing params or files: reported in one line, no traceback.
USER_ERRORS = (ParamsError, DatasetError, FileNotFoundError, CompareError)


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
    _add_compare(commands)
    args = parser.parse_args(argv)
    if args.command == "validate":
        run_stage(lambda: _validate(args.params))
    elif args.command == "compare":
        run_stage(lambda: _compare(args.rev_a, args.rev_b, args.out, args.all))


def _validate(path: str) -> None:
    params = load_params(path)
    run = params.run
    print(
        f"{path}: ok — {len(run.datasets)} dataset(s) × {len(run.variants)} variant(s) × "
        f"{len(run.seeds)} seed(s) = {len(run.datasets) * len(run.variants) * len(run.seeds)} runs"
    )


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="Markdown comparison of reports/metrics.json between two git revisions",
        description="Compare the committed results (reports/metrics.json) of two git revisions: "
        "regressions and improvements beyond the seed spread first. No retraining.",
    )
    compare.add_argument("rev_a", metavar="REV_A", help="the old revision, e.g. HEAD~1")
    compare.add_argument(
        "rev_b",
        metavar="REV_B",
        nargs="?",
        default=None,
        help="the new one (default: working tree)",
    )
    compare.add_argument("--out", metavar="FILE", help="write the Markdown here, not to stdout")
    compare.add_argument("--all", action="store_true", help="also list unchanged metrics")


def _compare(rev_a: str, rev_b: str | None, out: str | None, show_all: bool) -> None:
    report = comparison_report(rev_a, rev_b, Path.cwd(), show_all)
    if out is None:
        print(report, end="")
        return
    write_text(Path(out), report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
