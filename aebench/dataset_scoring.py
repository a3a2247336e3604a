"""What a per-dataset scoring stage (chain, memorisation) loads before it reads any model: the
train and test splits on the device, and the evaluator's scorer built on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from aebench.data import load_split, read_manifest, to_float
from aebench.evaluator import load_evaluator
from aebench.scoring import SampleScorer, Split


@dataclass(frozen=True)
class DatasetScoring:
    train: Split
    test: Split
    scorer: SampleScorer
    n_classes: int
    reference_count: int  # images in the validation split: every sampler draws as many


def load_dataset_scoring(dataset: str, batch_size: int, device: torch.device) -> DatasetScoring:
    """The splits of data/<dataset>/ and the scorer of evaluators/<dataset>/."""
    data_dir = Path("data") / dataset
    splits = {}
    for name in ("train", "test"):
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    manifest = read_manifest(data_dir)
    n_classes = len(manifest["splits"]["train"]["class_counts"])
    evaluator = load_evaluator(Path("evaluators") / dataset / "model.pt", device)
    scorer = SampleScorer(evaluator, splits["test"], n_classes, batch_size, splits["train"].images)
    reference_count = int(manifest["splits"]["val"]["shape"][0])
    return DatasetScoring(splits["train"], splits["test"], scorer, n_classes, reference_count)
