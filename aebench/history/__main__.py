"""``python -m aebench.history {history,publish} ...``: the two commands without the model code."""

import argparse
import sys

from aebench.compare import CompareError
from aebench.history.commands import add_history_commands, run_command


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m aebench.history", description=__doc__)
    add_history_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    try:
        run_command(args)
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
