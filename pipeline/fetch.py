"""DVC stage fetch@<dataset>: store one dataset's splits under data/<dataset>/.

Raw downloads go to $AEBENCH_DOWNLOADS/<dataset> (default downloads/<dataset>), kept between runs
and outside DVC's outputs: `aebench run` points every worker at the same directory, so a dataset
is downloaded once (and workers without network reuse it).
"""

import argparse
import os
from pathlib import Path

from aebench.config import load_params
from aebench.data import fetch
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    download_root = Path(os.environ.get("AEBENCH_DOWNLOADS", "downloads")) / args.dataset
    manifest = fetch(args.dataset, params.data, Path("data") / args.dataset, download_root)
    for split, info in manifest["splits"].items():
        print(f"{args.dataset} {split}: {info['shape']}")


if __name__ == "__main__":
    run_stage(main)
