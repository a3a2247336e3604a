"""Linear probe: how linearly separable the classes are in a model's codes."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def fit_linear_probe(codes: np.ndarray, labels: np.ndarray) -> Pipeline:
    """Standardised multinomial logistic regression on (train) codes; deterministic (lbfgs)."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return probe.fit(codes, labels)


def probe_accuracy(probe: Pipeline, codes: np.ndarray, labels: np.ndarray) -> float:
    """Share of ``codes`` whose class the probe predicts correctly."""
    return float(np.mean(probe.predict(codes) == labels))
