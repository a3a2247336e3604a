"""DVC stage evaluate@<dataset>-<variant>-<seed>: score one trained run.

Writes metrics/<dataset>/<variant>/<seed>/: metrics.json (every metric, flat), robustness.csv
(the noise-robustness curves) and PNG grids of samples and of denoised inputs.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from torchvision.utils import save_image

from aebench.cli import run_stage
from aebench.config import load_params
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluate import Split, evaluate_run, grid_columns
from aebench.evaluator import load_evaluator
from aebench.io import atomic_dir, write_json
from aebench.models import load_checkpoint
from aebench.runtime import pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    params.variant(args.variant)
    device = pick_device(params.train.device)
    run = Path(args.dataset) / args.variant / str(args.seed)
    model = load_checkpoint(Path("models") / run / "model.pt", device)
    trained = json.loads((Path("models") / run / "train.json").read_text())
    evaluator = load_evaluator(Path("evaluators") / args.dataset / "model.pt", device)
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])

    started = time.perf_counter()
    result = evaluate_run(
        model, splits["train"], splits["test"], evaluator, n_classes, params.evaluate
    )
    metrics = {
        **result.metrics,
        "eval_seconds": time.perf_counter() - started,
        "train_seconds": trained["train_seconds"],
        "parameters": trained["parameters"],
    }
    payload = {
        "run": {"dataset": args.dataset, "variant": args.variant, "seed": args.seed},
        "environment": {"device": trained["device"], "device_name": trained["device_name"]},
        "variant": model.spec.to_dict(),
        "metrics": metrics,
    }
    with atomic_dir(Path("metrics") / run) as out:
        write_json(out / "metrics.json", payload)
        pd.DataFrame(result.robustness).to_csv(
            out / "robustness.csv", index=False, float_format="%.6g"
        )
        np.savez_compressed(
            out / "test_codes.npz", codes=result.test_codes, labels=splits["test"].labels
        )
        for name, images in result.images.items():
            # denoising grids hold three rows (clean | corrupted | output); sample grids are square
            columns = len(images) // 3 if name.startswith("denoise_") else grid_columns(len(images))
            save_image(images.cpu(), out / f"{name}.png", nrow=columns, padding=1)
    print(f"{run}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


if __name__ == "__main__":
    run_stage(main)
