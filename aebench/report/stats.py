"""Which variant is best on a metric, and which others are not resolved from it.

The per-seed values (``metrics.json``) and per-image values (``per_image.npz``) of every run are
turned into one :class:`~aebench.report.intervals.Sample` per variant; the best is chosen by the
metric's direction, or, for a metric with a target (density), by the distance of its mean from
the target. Every other variant's difference from the best gets the interval of
:mod:`aebench.report.intervals`; a variant whose interval spans 0 is *not resolved* from the best.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aebench.report.glossary import Metric
from aebench.report.intervals import Difference, Sample, difference
from aebench.report.results import PerImage


@dataclass(frozen=True)
class Evidence:
    """Per-seed values (one row per run) and each run's per-image arrays."""

    runs: pd.DataFrame
    per_image: PerImage = field(default_factory=dict)

    def samples(self, dataset: str, key: str) -> dict[str, Sample]:
        """Per variant with a value (run-list order): its seeds' values of ``key`` and, where
        every one of those seeds has them, the per-image values averaged over the seeds."""
        frame = self.runs[self.runs.dataset == dataset]
        out: dict[str, Sample] = {}
        if key not in frame:
            return out
        for variant, group in frame.groupby("variant", sort=False):
            kept = group[group[key].notna()]
            if kept.empty:
                continue
            runs = [self.per_image.get((dataset, variant, int(s)), {}) for s in kept.seed]
            arrays = [arrays.get(key) for arrays in runs]
            images = None
            if arrays and all(a is not None for a in arrays):
                images = np.mean(np.stack(arrays), axis=0)
            out[str(variant)] = Sample(kept[key].to_numpy(np.float64), images)
        return out


def toward_target(sample: Sample, target: float) -> Sample:
    """The sample on the distance-from-target scale, for ranking (lower is better).

    Each value is reflected through the target on the side where the variant's mean lies:
    ``y = sign(mean − t)·(x − t)``. The mean becomes ``|mean − t|`` and the variances (over seeds
    and over images) are kept, so differences of distances get honest intervals; a reflection
    is linear, so the per-image pairing survives it.
    """
    sign = 1.0 if sample.mean >= target else -1.0
    images = None if sample.images is None else sign * (sample.images - target)
    return Sample(sign * (sample.seeds - target), images)


def ranking_scale(samples: Mapping[str, Sample], metric: Metric) -> dict[str, Sample]:
    """Every sample on a scale where lower is better: negated when higher is better, distance
    from the target when there is one. Unranked metrics give ``{}``."""
    if metric.target is not None:
        return {v: toward_target(s, metric.target) for v, s in samples.items()}
    if metric.higher_is_better is None:
        return {}
    sign = -1.0 if metric.higher_is_better else 1.0
    return {
        v: Sample(sign * s.seeds, None if s.images is None else sign * s.images)
        for v, s in samples.items()
    }


@dataclass(frozen=True)
class Ranking:
    """The best variant of a column and every other variant's difference from it.

    ``differences[v]`` is ``v − best`` on the metric's own scale (on the distance-from-target
    scale for a target metric), so it reads as written in a table note.
    """

    metric: Metric
    best: str | None
    differences: dict[str, Difference]

    @property
    def unresolved(self) -> set[str]:
        """Variants whose difference from the best has no interval excluding 0."""
        return {v for v, d in self.differences.items() if not d.excludes_zero}


def rank(samples: Mapping[str, Sample], metric: Metric) -> Ranking:
    """The best variant by the metric's direction or target, and each other's difference."""
    scaled = ranking_scale(samples, metric)
    if not scaled or _all_identical(scaled):
        return Ranking(metric, None, {})  # nothing to rank: no bold, no marks, no notes
    best = min(scaled, key=lambda v: scaled[v].mean)  # first in run-list order on exact ties
    sign = -1.0 if metric.higher_is_better and metric.target is None else 1.0
    differences = {}
    for variant, sample in scaled.items():
        if variant != best:
            diff = difference(sample, scaled[best])
            differences[variant] = diff.negated() if sign < 0 else diff
    return Ranking(metric, best, differences)


def _all_identical(samples: Mapping[str, Sample]) -> bool:
    """Every seed of every variant has the same value (e.g. all cover every class)."""
    values = np.concatenate([sample.seeds for sample in samples.values()])
    return bool(len(values)) and bool(np.all(values == values[0]))
