"""DVC stage settings: validate params.yaml and write the resolved settings files under settings/
that every other stage reads (see aebench/settings.py). It runs on every repro; a file whose
settings did not change keeps its bytes, so nothing downstream of it re-runs. When nothing it
read last time has changed (aebench/fingerprint.py) it stops before importing the families."""

import argparse
from pathlib import Path

from aebench import fingerprint
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="settings")
    args = parser.parse_args()
    out, params_file = Path(args.out), Path(args.params)
    if fingerprint.is_current(out):
        print(f"settings: inputs unchanged since {out}/ was written; kept")
        return
    # the schema and the families (torch) load only when the settings must be resolved again
    from aebench.config import load_params
    from aebench.resolve import write_settings

    params = load_params(params_file)
    count = write_settings(params, out)
    fingerprint.record(out, params_file, params.datasets)
    print(f"settings: {count} files in {out}/")


if __name__ == "__main__":
    run_stage(main)
