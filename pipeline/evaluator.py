"""DVC stage evaluator@<dataset>: the per-dataset CNN classifier whose penultimate features
define every sample-quality metric, trained once with a fixed seed, independently of the
autoencoders. Also scores real train images against the test split: the reference floor (real
against real; somewhat optimistic, since the evaluator was trained on those images).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from aebench.cli import run_stage
from aebench.config import load_params
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluate import SampleScorer, Split
from aebench.evaluator import accuracy, save_evaluator, train_evaluator
from aebench.io import atomic_dir, write_json
from aebench.runtime import device_name, pick_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.evaluator
    device = pick_device(params.train.device)
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "val", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    model, info = train_evaluator(
        splits["train"].images,
        torch.from_numpy(splits["train"].labels).to(device),
        splits["val"].images,
        torch.from_numpy(splits["val"].labels).to(device),
        seed=cfg.seed,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
    )
    test = splits["test"]
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])
    # The floor: as many train images as the test split holds (the sample metrics are biased by
    # the sample count, so the floor uses the same count as every sampler).
    pick = np.random.default_rng(params.evaluate.seed).permutation(len(splits["train"].labels))
    floor_images = splits["train"].images[pick[: len(test.labels)]]
    scorer = SampleScorer(model, test, n_classes, params.evaluate.batch_size)
    summary = {
        **info,
        "dataset": args.dataset,
        "test_accuracy": accuracy(model, test.images, test.labels),
        "device_name": device_name(device),
        "floor": scorer.score(floor_images, "floor"),
    }
    with atomic_dir(Path("evaluators") / args.dataset) as out:
        # the checkpoint keeps no wall-clock time, so a rerun with the same weights is identical
        save_evaluator(model, out / "model.pt", {k: v for k, v in info.items() if k != "seconds"})
        write_json(out / "evaluator.json", summary)
    print(f"{args.dataset} evaluator: test accuracy {summary['test_accuracy']:.4f}")


if __name__ == "__main__":
    run_stage(main)
