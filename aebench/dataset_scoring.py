"""What a stage that scores models on a dataset loads before it reads any model: the splits on
the device, their class count, and (for the per-dataset chain and memorisation stages) the
evaluator's scorer built on the train and test splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from aebench.data import load_split, read_manifest, to_float
from aebench.evaluator import load_evaluator
from aebench.scoring import SampleScorer, Split


def load_splits(
    dataset: str, names: Sequence[str], device: torch.device
) -> tuple[dict[str, Split], int]:
    """The named splits of data/<dataset>/ as float images on ``device``, and the class count."""
    data_dir = Path("data") / dataset
    splits = {}
    for name in names:
        images, labels = load_split(data_dir, name)
        splits[name] = Split(to_float(images, device), labels)
    return splits, len(read_manifest(data_dir)["splits"]["train"]["class_counts"])


@dataclass(frozen=True)
class DatasetScoring:
    train: Split
    test: Split
    scorer: SampleScorer
    n_classes: int
    reference_count: int  # images in the validation split: every sampler draws as many


def load_dataset_scoring(dataset: str, batch_size: int, device: torch.device) -> DatasetScoring:
    """The train and test splits of data/<dataset>/ and the scorer of evaluators/<dataset>/."""
    splits, n_classes = load_splits(dataset, ("train", "test"), device)
    evaluator = load_evaluator(Path("evaluators") / dataset / "model.pt", device)
    scorer = SampleScorer(evaluator, splits["test"], n_classes, batch_size, splits["train"].images)
    reference_count = int(read_manifest(Path("data") / dataset)["splits"]["val"]["shape"][0])
    return DatasetScoring(splits["train"], splits["test"], scorer, n_classes, reference_count)
