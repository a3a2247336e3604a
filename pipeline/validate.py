"""DVC stage tuning/dvc.yaml:validate@<dataset>-<point>-<seed>: one tuning run's validation
scores (aebench/validation.py), the numbers a tuning grid selects its settings on.

Writes <root>/validation/<dataset>/<point>/<seed>.json: the run, the scores (no wall-clock
value, so an unchanged model re-scores to identical bytes). The test split is never read.
"""

import argparse
from pathlib import Path

from aebench import settings
from aebench.dataset_scoring import load_splits
from aebench.evaluator import load_evaluator
from aebench.io import write_json
from aebench.models import load_checkpoint
from aebench.runtime import make_deterministic, pick_device
from aebench.stage import run_stage
from aebench.validation import validation_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--importance-samples", type=int, required=True, help="K of the NLL")
    parser.add_argument("--root", default="tuning", help="where models/ are read, scores go")
    args = parser.parse_args()
    cfg, machine = settings.evaluate_config(args.variant)
    device = pick_device(machine["device"])
    make_deterministic(cfg.seed, machine["threads"])
    run = Path(args.dataset) / args.variant / str(args.seed)
    root = Path(args.root)
    model = load_checkpoint(root / "models" / run / "model.pt", device)
    evaluator = load_evaluator(Path("evaluators") / args.dataset / "model.pt", device)
    splits, n_classes = load_splits(args.dataset, ("train", "val"), device)
    scores = validation_scores(
        model, splits["train"], splits["val"], evaluator, n_classes, cfg, args.importance_samples
    )
    payload = {
        "run": {"dataset": args.dataset, "variant": args.variant, "seed": args.seed},
        "importance_samples": args.importance_samples,
        "validation_images": len(splits["val"].images),
        "scores": scores,
    }
    write_json(root / "validation" / run.with_suffix(".json"), payload)
    print(f"{run}: " + ", ".join(f"{key}={value:.4g}" for key, value in scores.items()))


if __name__ == "__main__":
    run_stage(main)
