"""DVC stage chain_trace@<dataset>: the DAE Markov chain's sample quality and ink at every step,
for the first seed of every denoising variant in the run list (diagnostics/<dataset>/)."""

import argparse
from pathlib import Path

import pandas as pd

from aebench.chain_trace import chain_trace, test_intensity
from aebench.config import DENOISING_FAMILIES, load_params
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
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    make_deterministic(params.evaluate.seed, params.train.threads)
    device = pick_device(params.train.device)
    data_dir = Path("data") / args.dataset
    splits = {}
    for name in ("train", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    n_classes = len(read_manifest(data_dir)["splits"]["train"]["class_counts"])
    evaluator = load_evaluator(Path("evaluators") / args.dataset / "model.pt", device)
    scorer = SampleScorer(
        evaluator, splits["test"], n_classes, params.evaluate.batch_size, splits["train"].images
    )
    chains = min(
        params.evaluate.chain.chains, int(read_manifest(data_dir)["splits"]["val"]["shape"][0])
    )
    seed = params.run.seeds[0]
    rows = []
    for variant in params.run.variants:
        if params.variant(variant).family not in DENOISING_FAMILIES:
            continue
        model = load_checkpoint(
            Path("models") / args.dataset / variant / str(seed) / "model.pt", device
        )
        for row in chain_trace(model, scorer, chains, params.evaluate.seed):
            rows.append({"variant": variant, "seed": seed, **row})
        print(f"{args.dataset}/{variant}/{seed}: traced {len(rows)} steps so far")
    frame = pd.DataFrame(rows).assign(test_mean_intensity=test_intensity(splits["test"].images))
    with atomic_path(Path("diagnostics") / args.dataset / "chain_trace.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


if __name__ == "__main__":
    run_stage(main)
