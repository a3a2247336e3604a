"""DVC stage evaluate@<dataset>-<variant>-<seed>: score one trained run.

Writes metrics/<dataset>/<variant>/<seed>/: metrics.json (every metric, flat; no wall-clock
values, so an unchanged model re-evaluates to identical bytes), per_image.npz (the per-image
values behind the per-image metrics, float64 in test-split order), robustness.csv (the
noise-robustness curves), test_codes.npz and PNG grids of samples and of denoised inputs.
The evaluation's wall-clock seconds go to timings/evaluate/<dataset>/<variant>/<seed>.json,
which nothing depends on.
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aebench import settings
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluate import Evaluation, evaluate_run
from aebench.evaluator import load_evaluator
from aebench.grids import grid_columns
from aebench.io import atomic_dir, write_json
from aebench.models import load_checkpoint
from aebench.png_grid import save_grid
from aebench.runtime import device_name, make_deterministic, pick_device
from aebench.scoring import Split
from aebench.stage import run_stage

TRAINING_KEYS = (
    "parameters",
    "best_epoch",
    "stop_epoch",
    "stopped_at_cap",
    "val_gain_10",
    "val_gain_10_rel",
    "converged",
    "lr_reductions",
    "train_subset_loss",
    "val_train_gap",
)
"""What metrics.json copies from the run's train.json (the train stage writes them)."""


class StaleTrainRecord(ValueError):
    """A train.json without a key the evaluation copies: written by an older train stage."""


def require_keys(trained: dict[str, Any], keys: tuple[str, ...], path: Path) -> None:
    """Raise :class:`StaleTrainRecord` naming the first of ``keys`` missing from train.json."""
    for key in keys:
        if key not in trained:
            raise StaleTrainRecord(
                f"{path} has no {key!r}, which the evaluate stage copies into metrics.json; "
                "it was written by an older train stage: re-run the train stage for this run"
            )


def training_metrics(trained: dict[str, Any], path: Path) -> dict[str, float]:
    """The TRAINING_KEYS of a run's train.json as floats; a missing key is named."""
    require_keys(trained, TRAINING_KEYS, path)
    return {key: float(trained[key]) for key in TRAINING_KEYS}


def training_environment(trained: dict[str, Any], path: Path) -> dict[str, str]:
    """Where the model was trained (the report's device column)."""
    require_keys(trained, ("device", "device_name"), path)
    return {"device": trained["device"], "device_name": trained["device_name"]}


def reference_count(data_dir: Path) -> int:
    """Images in the validation split: the reference row's count, so every sampler draws as
    many samples as the reference it is read against (the sample metrics depend on the count)."""
    return int(read_manifest(data_dir)["splits"]["val"]["shape"][0])


def write_outputs(out: Path, payload: dict[str, Any], result: Evaluation, test: Split) -> None:
    """Everything of metrics/<run>/ into the (temporary) directory ``out``."""
    write_json(out / "metrics.json", payload)
    np.savez_compressed(  # deterministic bytes: zip members get a fixed 1980 timestamp
        out / "per_image.npz",
        **{key: np.asarray(values, dtype=np.float64) for key, values in result.per_image.items()},
    )
    pd.DataFrame(result.robustness).to_csv(out / "robustness.csv", index=False, float_format="%.6g")
    np.savez_compressed(out / "test_codes.npz", codes=result.test_codes, labels=test.labels)
    for name, images in result.images.items():
        # denoising grids hold three rows (clean | corrupted | output); sample grids are square
        columns = len(images) // 3 if name.startswith("denoise_") else grid_columns(len(images))
        save_grid(images, out / f"{name}.png", columns, padding=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument(
        "--root", default=".", help="where models/ are read, metrics/ and timings/ go (studies)"
    )
    args = parser.parse_args()
    cfg, machine = settings.evaluate_config(args.variant)
    device = pick_device(machine["device"])
    # CPU fp32 sums depend on the thread count: evaluate with the recorded training setting
    make_deterministic(cfg.seed, machine["threads"])
    run = Path(args.dataset) / args.variant / str(args.seed)
    root = Path(args.root)
    model = load_checkpoint(root / "models" / run / "model.pt", device)
    train_json = root / "models" / run / "train.json"
    trained = json.loads(train_json.read_text())
    copied = training_metrics(trained, train_json)
    evaluator = load_evaluator(Path("evaluators") / args.dataset / "model.pt", device)
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])

    started = time.perf_counter()
    result = evaluate_run(
        model,
        splits["train"],
        splits["test"],
        evaluator,
        n_classes,
        cfg,
        reference_count(data_dir),
    )
    seconds = time.perf_counter() - started
    payload = {
        "run": {"dataset": args.dataset, "variant": args.variant, "seed": args.seed},
        "environment": training_environment(trained, train_json),
        "variant": model.spec.to_dict(),
        "metrics": {**result.metrics, **copied},
    }
    with atomic_dir(root / "metrics" / run) as out:
        write_outputs(out, payload, result, splits["test"])
    timing = {
        "run": payload["run"],
        "device": str(device),
        "device_name": device_name(device),
        "seconds": seconds,
        "phases": result.seconds,
    }
    write_json(root / "timings" / "evaluate" / run.with_suffix(".json"), timing)
    shown = ", ".join(f"{key}={value:.4g}" for key, value in result.metrics.items())
    print(f"{run}: {seconds:.1f} s; {shown}")


if __name__ == "__main__":
    run_stage(main, (StaleTrainRecord,))
