"""Which rows may be called best: a degenerate row is shown but never bolded or named best.

A run stopped at its epoch cap did not finish what the protocol asks, so its numbers describe an
unfinished model; a sampler whose samples cover fewer than half of the classes can score a high
precision or density on the few it draws (an `article_dae` chain covering 1 class scored
density 1.08 and precision 1.0). The report says why each such row is left out of the ranking.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from aebench.report.stats import Evidence
from aebench.spec import SAMPLERS

COVERAGE_FLOOR = 0.5  # a sampler's mean class coverage below this is degenerate
# Density and precision reward samples that sit where real images are and say nothing about
# how much of the data they cover: each is ranked only together with its partner.
PARTNERS = {"density": "coverage", "precision": "recall"}
NLL_KEYS = ("nll_iw", "gaussian_nll_iw")  # importance-sampled: their value depends on K


def capped_seeds(frame: pd.DataFrame) -> dict[str, str]:
    """Variant → "k of n seeds stopped at the epoch cap", for the variants with any."""
    if "stopped_at_cap" not in frame:
        return {}
    reasons = {}
    for variant, group in frame.groupby("variant", sort=False):
        capped = int((group.stopped_at_cap == 1).sum())
        if capped:
            reasons[str(variant)] = f"{capped} of {len(group)} seeds stopped at the epoch cap"
    return reasons


def _low_coverage(frame: pd.DataFrame, sampler: str) -> dict[str, str]:
    key = f"sample_{sampler}_class_coverage"
    if key not in frame:
        return {}
    reasons = {}
    for variant, group in frame.groupby("variant", sort=False):
        coverage = float(group[key].mean())
        if coverage < COVERAGE_FLOOR:
            reasons[str(variant)] = (
                f"its `{sampler}` samples cover {coverage:.0%} of the classes (under half)"
            )
    return reasons


def _unmixed(frame: pd.DataFrame) -> dict[str, str]:
    """The chain stage's verdict (aebench/chain_mixing.py): a chain that never settled is
    scored in a transient, so its samples are shown and never ranked."""
    if "chain_mixed" not in frame:
        return {}
    reasons = {}
    for variant, group in frame.groupby("variant", sort=False):
        verdicts = group.chain_mixed.dropna()
        if len(verdicts) and (verdicts == 0).any():
            reasons[str(variant)] = "its chain did not mix by the stationarity rule"
    return reasons


def _other_importance_samples(frame: pd.DataFrame) -> dict[str, str]:
    """The importance-sampled NLL tightens as K grows, so rows estimated with different K are
    not ranked together: the K most variants used is ranked (the larger on a tie), the others
    are shown (e.g. the full-MNIST literature rows at K = 5,000 beside K = 1,000)."""
    if "nll_importance_samples" not in frame:
        return {}
    per_variant = frame.groupby("variant", sort=False).nll_importance_samples.max().dropna()
    if per_variant.nunique() < 2:
        return {}
    counts = per_variant.value_counts()
    ranked_k = max(counts.index, key=lambda k: (counts[k], k))
    return {
        str(variant): f"its NLL uses K = {int(k):,} importance samples, the ranked rows "
        f"K = {int(ranked_k):,}"
        for variant, k in per_variant.items()
        if k != ranked_k
    }


def unrankable(evidence: Evidence, dataset: str, key: str) -> dict[str, str]:
    """Variant → why it is never bolded or named best on metric ``key`` of ``dataset``: a seed
    at its epoch cap (every metric), or, for a sampler's metric, that sampler's samples covering
    under half of the classes, or (the chain) a chain that did not mix, or, for the NLL, another
    number of importance samples than the ranked rows."""
    frame = evidence.runs[evidence.runs.dataset == dataset]
    found = [capped_seeds(frame)]
    if key in NLL_KEYS:
        found.append(_other_importance_samples(frame))
    sampler = _sampler_of(key)
    if sampler is not None:
        found.append(_low_coverage(frame, sampler))
        if sampler == "chain":
            found.append(_unmixed(frame))
    reasons: dict[str, str] = {}
    for more in found:  # a variant barred for several reasons names each, in this order
        for variant, why in more.items():
            reasons[variant] = f"{reasons[variant]}; {why}" if variant in reasons else why
    return reasons


def _sampler_of(key: str) -> str | None:
    """``gmm`` for ``sample_gmm_fd``; None for a metric that is not a sampler's."""
    return next((s for s in SAMPLERS if key.startswith(f"sample_{s}_")), None)


def unranked_note(reasons: Mapping[str, str], shown: set[str]) -> str | None:
    """The table's line naming each row left out of its ranking, and why."""
    listed = [f"{variant} ({reasons[variant]})" for variant in reasons if variant in shown]
    if not listed:
        return None
    return "Not ranked (shown, never bold): " + "; ".join(listed) + "."
