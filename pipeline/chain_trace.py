"""DVC stage chain_trace@<dataset>: the DAE Markov chain's sample quality and ink at every step,
for the first seed of every denoising variant in the run list (diagnostics/<dataset>/)."""

import argparse
from pathlib import Path

import pandas as pd

from aebench import settings
from aebench.chain_trace import chain_trace, test_intensity
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluator import load_evaluator
from aebench.io import atomic_path
from aebench.models import load_checkpoint
from aebench.runtime import make_deterministic, pick_device
from aebench.scoring import SampleScorer, Split
from aebench.stage import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    args = parser.parse_args()
    trace = settings.read(settings.chain_trace_path(args.dataset))
    cfg, machine = trace["evaluate"], trace["machine"]
    make_deterministic(cfg["seed"], machine["threads"])
    device = pick_device(machine["device"])
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])
    evaluator = load_evaluator(Path("evaluators") / args.dataset / "model.pt", device)
    scorer = SampleScorer(
        evaluator, splits["test"], n_classes, cfg["batch_size"], splits["train"].images
    )
    chains = min(cfg["chains"], int(read_manifest(data_dir)["splits"]["val"]["shape"][0]))
    rows = []
    for run in trace["runs"]:
        variant, seed = run["variant"], run["seed"]
        model = load_checkpoint(
            Path("models") / args.dataset / variant / str(seed) / "model.pt", device
        )
        for row in chain_trace(model, scorer, chains, cfg["seed"]):
            rows.append({"variant": variant, "seed": seed, **row})
        print(f"{args.dataset}/{variant}/{seed}: traced {len(rows)} steps so far")
    frame = pd.DataFrame(rows).assign(test_mean_intensity=test_intensity(splits["test"].images))
    with atomic_path(Path("diagnostics") / args.dataset / "chain_trace.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


if __name__ == "__main__":
    run_stage(main)
