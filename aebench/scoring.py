"""Scoring image sets in the evaluator's feature space: what the evaluator stage (its reference
row) and every evaluate stage share. A module of its own so that the evaluator stage depends on
this code only, not on the rest of the evaluation: editing evaluation code must not retrain the
measuring instrument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aebench.evaluator import EvaluatorNet, features_and_predictions
from aebench.metrics.sample_quality import (
    FeatureStats,
    class_coverage,
    class_histogram_kl,
    copy_rate,
    feature_stats,
    frechet_distance_from_stats,
    precision_recall_density_coverage,
)


@dataclass(frozen=True)
class Split:
    """A split as float images in [0, 1] on the evaluation device, and int64 labels (numpy)."""

    images: torch.Tensor
    labels: np.ndarray


class SampleScorer:
    """Scores image sets against the test split in the evaluator's feature space; the train
    split's features serve the memorisation check (``copy_rate``)."""

    def __init__(
        self,
        evaluator: EvaluatorNet,
        test: Split,
        n_classes: int,
        batch_size: int,
        train_images: torch.Tensor,
    ):
        self.evaluator, self.n_classes, self.batch_size = evaluator, n_classes, batch_size
        self.test_features, self.test_predictions = self.featurize(test.images)
        self.test_stats: FeatureStats = feature_stats(self.test_features)
        self.train_features, _ = self.featurize(train_images)

    def featurize(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return features_and_predictions(self.evaluator, images, self.batch_size)

    def scores(self, images: torch.Tensor) -> dict[str, float]:
        """fd, precision, recall, density, coverage, class_coverage, class_kl and copy_rate of
        ``images`` against the test split (copy_rate: against the train split, with the test
        split's nearest-train distances as the yardstick)."""
        features, predictions = self.featurize(images)
        prdc = precision_recall_density_coverage(self.test_features, features, k_pr=3, k_dc=5)
        return {
            "fd": frechet_distance_from_stats(feature_stats(features), self.test_stats),
            **prdc,
            "class_coverage": class_coverage(predictions, self.n_classes),
            "class_kl": class_histogram_kl(predictions, self.test_predictions, self.n_classes),
            "copy_rate": copy_rate(self.train_features, self.test_features, features),
        }

    def score(self, images: torch.Tensor, prefix: str) -> dict[str, float]:
        """:meth:`scores` with keys ``<prefix>_<stat>``."""
        return {f"{prefix}_{name}": value for name, value in self.scores(images).items()}
