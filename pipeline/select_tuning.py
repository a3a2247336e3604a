"""DVC stage tuning/dvc.yaml:select_tuning: per dataset, grid and task, the grid point with the
lowest mean validation score over the selection seeds (aebench/tuning.py), with every point's
setting and scores, into tuning/selected.json.

Nothing written depends on the clock: re-selecting from unchanged scores gives identical bytes."""

import argparse
from pathlib import Path

from aebench.config import ParamsError, load_params
from aebench.io import write_json
from aebench.stage import run_stage
from aebench.tuning import SelectionError, StaleTuning, check_points, select_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="tuning/selected.json")
    args = parser.parse_args()
    params = load_params(args.params)
    if params.tuning is None:
        raise ParamsError("params.yaml has no tuning section: nothing to select")
    check_points(params)  # the runs DVC just scored are the ones params.yaml declares
    selected = select_settings(params)
    write_json(Path(args.out), selected)
    for dataset, grids in selected.items():
        for variant, grid in grids.items():
            chosen = ", ".join(f"{task}: {point}" for task, point in grid["selected"].items())
            print(f"{dataset} {variant}: {chosen}")


if __name__ == "__main__":
    run_stage(main, (StaleTuning, SelectionError))
