"""Metric tables: variants as rows, mean ± std over seeds, the best bold, the unresolved marked.

A † says a variant's difference from the best is not resolved (its 95% interval spans 0, or a
side has one seed); a mark alone would hide how far apart the two are, so every table with a †
carries a note listing each such difference with its interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aebench.report.document import UNRESOLVED_MARK, Cell, Table
from aebench.report.eligibility import PARTNERS, unrankable, unranked_note
from aebench.report.glossary import Metric, describe
from aebench.report.intervals import Sample, signed_text
from aebench.report.stats import Evidence, Ranking, rank


def format_value(mean: float, std: float = math.nan, count: int = 1) -> str:
    """``mean ± std`` to 4 significant digits; the std only where there are several seeds."""
    if math.isnan(mean):
        return "–"
    big_integer = float(mean).is_integer() and abs(mean) >= 1000
    text = f"{int(mean):,}" if big_integer else f"{mean:.4g}"
    if count < 2 or math.isnan(std):
        return text
    if std < 1e-9 * max(1.0, abs(mean)):  # identical seeds, up to float round-off
        std = 0.0
    return f"{text} ± {std:.2g}"


def format_sample(sample: Sample | None) -> str:
    if sample is None:
        return "–"
    values = sample.seeds
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return format_value(float(np.mean(values)), std, len(values))


def column_note(header: str, ranking: Ranking) -> str | None:
    """``† MSE ↓ (best **ae**; variant − ae, …): dae +0.0010 (95% CI …); …`` or None."""
    unresolved = [v for v in ranking.differences if v in ranking.unresolved]
    if not unresolved or ranking.best is None:
        return None
    metric = ranking.metric
    scale = (
        f"distance from {metric.target:g}, variant − {ranking.best}"
        if metric.target is not None
        else f"variant − {ranking.best}"
    )
    covers = {ranking.differences[v].covers_images for v in unresolved}
    scope = (
        "training seeds and test images"
        if covers == {True}
        else "training seeds only, no per-image values"
        if covers == {False}
        else "training seeds, and test images where the metric has per-image values"
    )
    parts = [f"{v} {signed_text(ranking.differences[v])}" for v in unresolved]
    return (
        f"{UNRESOLVED_MARK} {header} (best **{ranking.best}**; {scale}; interval over {scope}): "
        + "; ".join(parts)
    )


def metric_table(
    evidence: Evidence,
    dataset: str,
    columns: Sequence[str],
    key_for: dict[str, str] | None = None,
    extra_rows: Sequence[tuple[Cell, ...]] = (),
    header_for: dict[str, str] | None = None,
    unranked: Sequence[str] = (),
    caption: str = "",
) -> Table | None:
    """Variants as rows, mean ± std over seeds; per ranked column the best bold and every
    variant not resolved from it marked †, with a note listing those differences.

    ``key_for`` maps a column to its metric key (for prefixed families); ``unranked`` columns
    are shown and never marked. Degenerate rows (:mod:`aebench.report.eligibility`: a seed at
    its cap; in a sampler's column, its samples covering under half of the classes) are shown,
    left out of that column's ranking and named in a note. A density or precision column bolds
    its best only where that row is also best or tied on the partner column (coverage,
    recall). Variants that have none of the keys are left out; None when no row is left.
    """
    key_for = key_for or {c: c for c in columns}
    header_for = header_for or {}
    samples = {c: evidence.samples(dataset, key_for[c]) for c in columns}
    metrics: dict[str, Metric] = {c: describe(key_for[c]) for c in columns}
    excluded = {c: unrankable(evidence, dataset, key_for[c]) for c in columns}
    ranked_samples = {
        c: {v: s for v, s in samples[c].items() if v not in excluded[c]} for c in columns
    }
    rankings = {
        c: rank(ranked_samples[c], metrics[c])
        for c in columns
        if c not in unranked and metrics[c].ranked and len(ranked_samples[c]) > 1
    }
    variants = list(dict.fromkeys(evidence.runs[evidence.runs.dataset == dataset].variant))
    rows = []
    for variant in variants:
        if not any(variant in samples[c] for c in columns):
            continue
        cells = [Cell(variant)]
        for c in columns:
            ranking = rankings.get(c)
            cells.append(
                Cell(
                    format_sample(samples[c].get(variant)),
                    best=ranking is not None
                    and ranking.best == variant
                    and _best_or_tied_on_partner(c, variant, key_for, columns, rankings),
                    unresolved=ranking is not None and variant in ranking.unresolved,
                )
            )
        rows.append(tuple(cells))
    if not rows:
        return None
    headers = {c: header_for.get(c, metrics[c].header) for c in columns}
    notes = tuple(
        note for c in columns if c in rankings and (note := column_note(headers[c], rankings[c]))
    )
    shown = {row[0].text for row in rows}
    reasons = {v: why for c in columns if c in rankings for v, why in excluded[c].items()}
    left_out = unranked_note(reasons, shown)
    notes += (left_out,) if left_out else ()
    header = ("variant", *headers.values())
    return Table(header, (*rows, *extra_rows), caption=caption, notes=notes)


def _best_or_tied_on_partner(
    column: str,
    variant: str,
    key_for: dict[str, str],
    columns: Sequence[str],
    rankings: dict[str, Ranking],
) -> bool:
    """A density or precision column's best is bold only where the row is also best or not
    resolved from the best on the partner column of the same table (none there: not bold)."""
    stat = next((s for s in PARTNERS if key_for[column].endswith(s)), None)
    if stat is None:
        return True
    partner_key = key_for[column][: -len(stat)] + PARTNERS[stat]
    partner = next((c for c in columns if key_for[c] == partner_key), None)
    ranking = rankings.get(partner) if partner is not None else None
    if ranking is None or ranking.best is None:
        return False
    return variant == ranking.best or variant in ranking.unresolved
