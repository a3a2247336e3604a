"""The difference between two variants on one metric, with a 95% interval over both noise sources.

A benchmark number moves for two reasons, and an interval that ignores either overstates what the
data show:

- **training noise**: another seed gives another model. Seeds of different variants are
  independent, so this part is Welch's: ``s_A² / n_A + s_B² / n_B`` over the per-seed values.
- **the finite test set**: every model is scored on the same N test images (and the same
  corruption draws), so a second test set would move both variants together. That part is
  *paired*: with ``d_i`` = (A's value on image i, mean over A's seeds) − (the same for B), it is
  ``var(d) / N``. Ignoring the pairing would add each variant's image-to-image variance instead,
  which for two models that find the same images hard is far larger than the variance of their
  difference.

The two parts add; the degrees of freedom come from Welch–Satterthwaite over the three
components (``n_A − 1``, ``n_B − 1``, ``N − 1``) and the quantile from Student's t. The image part
slightly double-counts the image-by-seed interaction that the seed part already holds, so the
interval errs wide, never narrow.

Metrics without per-image values (sample-set statistics, class metrics, copy rate) use the seed
part alone, and say so. A side with one seed has no variance over seeds to measure training noise
by: no interval is claimed (:attr:`Difference.resolvable` is False).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
LEVEL = 1 - ALPHA  # the confidence level of every interval in the report


@dataclass(frozen=True)
class Sample:
    """One variant's evidence on a metric: its per-seed values and, where the metric has them,
    its per-image values averaged over the same seeds (length N, test-split order)."""

    seeds: np.ndarray
    images: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def mean(self) -> float:
        return float(np.mean(self.seeds))


@dataclass(frozen=True)
class Difference:
    """``mean_A − mean_B`` with its Welch interval; see the module docstring for the formula."""

    estimate: float
    n_a: int
    n_b: int
    seed_var: float | None  # s_A²/n_A + s_B²/n_B; None when a side has one seed
    image_var: float | None = None  # var(d)/N; None without per-image values
    n_images: int | None = None
    dof: float | None = None  # Welch–Satterthwaite; inf when the variance is exactly 0
    low: float | None = None
    high: float | None = None
    p: float | None = None  # two-sided, from the same t statistic and dof as the interval

    @property
    def resolvable(self) -> bool:
        """Whether an interval covering training noise exists (both sides have two seeds)."""
        return self.seed_var is not None

    @property
    def excludes_zero(self) -> bool:
        """The 95% interval lies entirely on one side of 0 (False where there is none)."""
        if self.low is None or self.high is None:
            return False
        return self.low > 0 or self.high < 0

    @property
    def covers_images(self) -> bool:
        return self.image_var is not None

    @property
    def seeds_text(self) -> str:
        """``3 seeds`` or ``3 and 2 seeds``: how many seeds the verdict rests on."""
        low, high = sorted((self.n_a, self.n_b))
        if low == high:
            return f"{low} seed" + ("s" if low != 1 else "")
        return f"{high} and {low} seeds" if low > 1 else f"{low} seed"

    def negated(self) -> Difference:
        """The same comparison read the other way round (``B − A``)."""
        return Difference(
            estimate=-self.estimate,
            n_a=self.n_b,
            n_b=self.n_a,
            seed_var=self.seed_var,
            image_var=self.image_var,
            n_images=self.n_images,
            dof=self.dof,
            low=None if self.high is None else -self.high,
            high=None if self.low is None else -self.low,
            p=self.p,
        )


def welch_satterthwaite(components: Sequence[tuple[float, int]]) -> float:
    """Degrees of freedom of a sum of variance components ``(v_k, dof_k)``.

    ``(Σ v_k)² / Σ (v_k² / dof_k)``; components with zero variance carry no weight. ``inf`` when
    every component is zero (the sum is known exactly).
    """
    total = sum(v for v, _ in components)
    denominator = sum(v * v / dof for v, dof in components if v > 0)
    if denominator == 0:
        return math.inf
    return total * total / denominator


def _interval(
    estimate: float,
    components: list[tuple[float, int]],
) -> tuple[float, float, float, float]:
    """(dof, low, high, p) for an estimate whose variance is the sum of ``components``."""
    variance = sum(v for v, _ in components)
    dof = welch_satterthwaite(components)
    if variance == 0:  # identical values everywhere: the difference is known exactly
        return dof, estimate, estimate, (1.0 if estimate == 0 else 0.0)
    se = math.sqrt(variance)
    half = float(stats.t.ppf(1 - ALPHA / 2, dof)) * se
    p = float(2 * stats.t.sf(abs(estimate) / se, dof))
    return dof, estimate - half, estimate + half, p


def difference_from_moments(
    mean_a: float,
    var_a: float | None,
    n_a: int,
    mean_b: float,
    var_b: float | None,
    n_b: int,
    paired_images: np.ndarray | None = None,
) -> Difference:
    """``mean_A − mean_B`` from each side's mean, sample variance over seeds and seed count.

    ``paired_images``: the per-image differences ``d_i`` (A's seed-mean minus B's), adding the
    test-set part ``var(d)/N`` with ``N − 1`` degrees of freedom. ``var_a``/``var_b`` of None or
    a count below 2 means one seed: the estimate alone, no interval.
    """
    estimate = mean_a - mean_b
    image_var, n_images = None, None
    if paired_images is not None:
        d = np.asarray(paired_images, dtype=np.float64)
        n_images = len(d)
        if n_images >= 2:
            image_var = float(np.var(d, ddof=1)) / n_images
    if n_a < 2 or n_b < 2 or var_a is None or var_b is None:
        return Difference(estimate, n_a, n_b, None, image_var, n_images)
    components = [(var_a / n_a, n_a - 1), (var_b / n_b, n_b - 1)]
    seed_var = components[0][0] + components[1][0]
    if image_var is not None:
        components.append((image_var, n_images - 1))
    dof, low, high, p = _interval(estimate, components)
    return Difference(estimate, n_a, n_b, seed_var, image_var, n_images, dof, low, high, p)


def difference(a: Sample, b: Sample) -> Difference:
    """A − B over both noise sources where both sides have per-image values, else seeds only."""
    a_seeds = np.asarray(a.seeds, dtype=np.float64)
    b_seeds = np.asarray(b.seeds, dtype=np.float64)
    paired = None
    if a.images is not None and b.images is not None:
        if len(a.images) != len(b.images):
            raise ValueError(
                f"per-image values of different lengths ({len(a.images)} vs {len(b.images)}): "
                "every model must be scored on the same test images"
            )
        paired = np.asarray(a.images, np.float64) - np.asarray(b.images, np.float64)
    var_a = float(np.var(a_seeds, ddof=1)) if len(a_seeds) > 1 else None
    var_b = float(np.var(b_seeds, ddof=1)) if len(b_seeds) > 1 else None
    return difference_from_moments(
        float(np.mean(a_seeds)),
        var_a,
        len(a_seeds),
        float(np.mean(b_seeds)),
        var_b,
        len(b_seeds),
        paired,
    )


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input order.

    The k-th smallest p (k from 0) is multiplied by ``m − k``, then made non-decreasing in that
    order and capped at 1: rejecting where the adjusted p < α controls the family-wise error
    rate at α over the m comparisons, under any dependence between them.
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


# --- text --------------------------------------------------------------------------------------


def decimals_for(*values: float | None, spread: float | None = None) -> int:
    """Decimals that show ``spread`` (an interval's half-width) to two significant digits, or,
    without one, the values to four."""
    if spread is not None and spread > 0 and math.isfinite(spread):
        return max(0, min(12, 1 - math.floor(math.log10(spread))))
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return 4
    return max(0, min(12, 3 - math.floor(math.log10(max(finite)))))


def estimate_decimals(estimate: float, decimals: int) -> int:
    """Decimals for an estimate shown beside an interval printed with ``decimals``: the same,
    or up to two more so that an estimate smaller than the interval's precision keeps one
    significant digit instead of reading as 0."""
    if estimate == 0 or not math.isfinite(estimate):
        return decimals
    return max(decimals, min(decimals + 2, -math.floor(math.log10(abs(estimate)))))


def fixed(value: float, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, a true minus sign, and no ``-0``."""
    text = f"{value:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def interval_text(diff: Difference, decimals: int | None = None) -> str:
    """``95% CI low to high`` (no verdict); ``""`` where there is no interval."""
    if diff.low is None or diff.high is None:
        return ""
    if decimals is None:
        decimals = decimals_for(diff.estimate, spread=(diff.high - diff.low) / 2)
    return f"{LEVEL:.0%} CI {fixed(diff.low, decimals)} to {fixed(diff.high, decimals)}"


def estimate_text(diff: Difference) -> tuple[str, int]:
    """The signed estimate (``+0.0010``) at the precision its interval supports, and the
    interval's number of decimals."""
    half = None if diff.low is None else (diff.high - diff.low) / 2
    decimals = decimals_for(diff.estimate, spread=half)
    if half is None:  # no interval to set the precision: four significant digits
        value = f"{diff.estimate:.4g}".replace("-", "−")
    else:
        value = fixed(diff.estimate, estimate_decimals(diff.estimate, decimals))
    return (value if value.startswith("−") else "+" + value), decimals


def signed_text(diff: Difference) -> str:
    """``+0.0010 (95% CI −0.0002 to 0.0022)``, or ``+0.0010: not resolved with 1 seed``.

    For table notes and comparisons, where the difference is read as written (this variant
    minus the best; new minus old).
    """
    value, decimals = estimate_text(diff)
    if not diff.resolvable:
        return f"{value}: not resolved with {diff.seeds_text}"
    return f"{value} ({interval_text(diff, decimals)})"


def paired_difference(new: Sequence[float], old: Sequence[float]) -> Difference:
    """``mean(new − old)`` over values paired by seed, with the paired t interval.

    Where both sides ran the same seeds on the same hardware, a change that moves every seed
    alike is real however small; the independent-sample interval would bury it under the
    seed-to-seed spread. Identical differences on every seed give a zero-width interval.
    """
    d = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
    n = len(d)
    estimate = float(np.mean(d))
    if n < 2:
        return Difference(estimate, n, n, None)
    variance = float(np.var(d, ddof=1)) / n
    dof, low, high, p = _interval(estimate, [(variance, n - 1)])
    return Difference(estimate, n, n, variance, dof=dof, low=low, high=high, p=p)


def mean_interval(mean: float, std: float | None, n: int | None) -> tuple[float, float] | None:
    """The 95% Student-t interval of a mean over ``n`` seeds with sample std ``std``; None with
    fewer than two seeds (no spread to measure) or no recorded std."""
    if std is None or n is None or n < 2 or not math.isfinite(std):
        return None
    low, high = stats.t.interval(LEVEL, n - 1, loc=mean, scale=std / math.sqrt(n))
    return float(low), float(high)
