"""DVC stage evaluator@<dataset>: the per-dataset CNN classifier whose penultimate features
define every sample-quality metric, trained once with a fixed seed, independently of the
autoencoders, on the train split.

Also writes the reference row every sampler is read against: the real VALIDATION images scored
against the test split, exactly as samples are (same scorer, same count, since every sampler
draws as many samples as this split holds). Neither the autoencoders nor the evaluator were
trained on the validation split; it only selected their checkpoints (one choice among epochs, a
far weaker tie than the evaluator's fit to its own training images, which made the old
train-split floor optimistic). evaluator.json and the checkpoint keep no wall-clock time, so a
rerun with the same weights writes identical files; the training time goes to
timings/evaluator/<dataset>.json, which nothing depends on.
"""

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from aebench import settings
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluator import accuracy, save_evaluator, train_evaluator
from aebench.io import atomic_dir, write_json
from aebench.runtime import device_name, make_deterministic, pick_device
from aebench.scoring import SampleScorer, Split
from aebench.stage import run_stage


def reference_row(scorer: SampleScorer, reference: Split, split: str) -> dict[str, Any]:
    """evaluator.json's "reference": the split's name and size and its sample-quality scores
    (fd, precision, recall, density, coverage, class_coverage, class_kl, copy_rate)."""
    return {"split": split, "count": len(reference.labels), **scorer.scores(reference.images)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    args = parser.parse_args()
    cfg, score_batch_size, device_setting = settings.evaluator_config(args.dataset)
    device = pick_device(device_setting)
    # CPU fp32 sums, hence the weights, depend on the thread count: use the recorded setting
    make_deterministic(cfg.seed, cfg.threads)
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "val", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    started = time.perf_counter()
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
    seconds = time.perf_counter() - started
    test = splits["test"]
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])
    scorer = SampleScorer(model, test, n_classes, score_batch_size, splits["train"].images)
    summary = {
        **info,
        "dataset": args.dataset,
        "test_accuracy": accuracy(model, test.images, test.labels),
        "device_name": device_name(device),
        "reference": reference_row(scorer, splits["val"], "val"),
    }
    with atomic_dir(Path("evaluators") / args.dataset) as out:
        save_evaluator(model, out / "model.pt", info)
        write_json(out / "evaluator.json", summary)
    timing = {"dataset": args.dataset, "device_name": device_name(device), "seconds": seconds}
    write_json(Path("timings") / "evaluator" / f"{args.dataset}.json", timing)
    accuracy_shown = f"test accuracy {summary['test_accuracy']:.4f}"
    print(f"{args.dataset} evaluator: {accuracy_shown}, {seconds:.1f} s")


if __name__ == "__main__":
    run_stage(main)
