"""DVC stage fetch@<dataset>: store one dataset's splits under data/<dataset>/.

Raw downloads go to $AEBENCH_DOWNLOADS/<dataset> (default downloads/<dataset>), kept between runs
and outside DVC's outputs: `aebench run` points every worker at the same directory, so a dataset
is downloaded once (and workers without network reuse it).
"""

import argparse
import os
from pathlib import Path

from aebench import settings
from aebench.datasets import fetch
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    args = parser.parse_args()
    split, source = settings.data_config(args.dataset)
    download_root = Path(os.environ.get("AEBENCH_DOWNLOADS", "downloads")) / args.dataset
    manifest = fetch(args.dataset, split, Path("data") / args.dataset, download_root, source)
    for split, info in manifest["splits"].items():
        print(f"{args.dataset} {split}: {info['shape']}")


if __name__ == "__main__":
    run_stage(main)
