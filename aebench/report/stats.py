"""Which variant is best on a metric, and which others cannot be told apart from it.

A variant ties with the best when Welch's t-test on the per-seed values does not reject equal
means at the 5% level (two-sided): with few seeds that is a deliberately cautious verdict.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


def welch_pvalue(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided p-value of Welch's t-test for equal means; None without two values a side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return None
    if np.all(a == a[0]) and np.all(b == b[0]):
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # near-constant seeds: scipy warns, the verdict stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def distinguishable(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> bool:
    """True when the means of ``a`` and ``b`` differ at level ``alpha`` (Welch's t-test).

    With fewer than two values on a side there is no spread to judge by: identical means are
    indistinguishable, different ones are taken as different.
    """
    p = welch_pvalue(a, b)
    if p is None:
        return not math.isclose(np.mean(a), np.mean(b))
    return p < alpha


def best_and_ties(
    values: dict[str, np.ndarray], higher_is_better: bool | None
) -> tuple[str | None, set[str]]:
    """The variant with the best mean, and the variants not distinguishable from it."""
    values = {k: v for k, v in values.items() if len(v) and not np.isnan(v).all()}
    if higher_is_better is None or not values:
        return None, set()
    sign = 1 if higher_is_better else -1
    best = max(values, key=lambda k: sign * np.nanmean(values[k]))
    ties = {
        k
        for k, v in values.items()
        if k != best and not distinguishable(values[best][~np.isnan(values[best])], v[~np.isnan(v)])
    }
    return best, ties


def seed_values(runs: pd.DataFrame, dataset: str, key: str) -> dict[str, np.ndarray]:
    """Per variant (run-list order), the per-seed values of ``key`` (empty when absent)."""
    frame = runs[runs.dataset == dataset]
    out = {}
    for variant, group in frame.groupby("variant", sort=False):
        out[variant] = group[key].to_numpy(float) if key in group else np.array([])
        out[variant] = out[variant][~np.isnan(out[variant])]
    return out
