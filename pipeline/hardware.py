"""DVC stage hardware: record the hardware class the training and evaluation stages depend on."""

import argparse
import json
from pathlib import Path

from aebench.config import load_params
from aebench.hardware import hardware_class
from aebench.io import write_text
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    record = hardware_class(params.train.device, params.train.threads)
    write_text(Path("hardware.json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"hardware: {record}")


if __name__ == "__main__":
    run_stage(main)
