"""DVC stage hardware: record the hardware class the training and evaluation stages depend on."""

import argparse
from pathlib import Path

from aebench.config import load_params
from aebench.hardware import record_text
from aebench.io import write_text
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    record = record_text(params.train.device, params.train.threads)
    write_text(Path("hardware.json"), record)
    print(f"hardware: {' '.join(record.split())}")


if __name__ == "__main__":
    run_stage(main)
