"""DVC stage settings: validate params.yaml and write the resolved settings files under settings/
that every other stage reads (see aebench/settings.py). It runs on every repro (cheap); a file
whose settings did not change keeps its bytes, so nothing downstream of it re-runs."""

import argparse
from pathlib import Path

from aebench.config import load_params
from aebench.resolve import write_settings
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="settings")
    args = parser.parse_args()
    count = write_settings(load_params(args.params), Path(args.out))
    print(f"settings: {count} files in {args.out}/")


if __name__ == "__main__":
    run_stage(main)
