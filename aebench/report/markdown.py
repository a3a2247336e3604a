"""The Markdown report: per dataset, tables with variants as rows, mean ± std over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from aebench.report.glossary import (
    COST,
    HEADLINE,
    LIKELIHOOD,
    NOISE_KINDS_SHOWN,
    ROBUST_STATS,
    SAMPLE_STATS,
    SAMPLER_MEANING,
    describe,
    glossary_entries,
)

EVALUATOR_ACCURACY_TARGET = 0.97


def format_value(mean: float, std: float = math.nan, count: int = 1) -> str:
    """``mean ± std`` to 4 significant digits; the std only where there are several seeds."""
    if math.isnan(mean):
        return "–"
    big_integer = float(mean).is_integer() and abs(mean) >= 1000
    text = f"{int(mean):,}" if big_integer else f"{mean:.4g}"
    if count < 2 or math.isnan(std):
        return text
    return f"{text} ± {std:.2g}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metric_table(
    summary: pd.DataFrame,
    dataset: str,
    columns: Sequence[str],
    key_for: dict[str, str] | None = None,
    extra_rows: Sequence[Sequence[str]] = (),
) -> str | None:
    """Variants as rows, ``columns`` as columns (``key_for`` maps a column to the metric key, for
    prefixed families). Variants with none of the keys are left out; None if no row is left."""
    key_for = key_for or {c: c for c in columns}
    present = set(summary.columns.get_level_values(0))
    rows = []
    for variant, row in summary.loc[dataset].iterrows():
        keys = [key_for[c] for c in columns]
        if not any(k in present and not math.isnan(row[(k, "mean")]) for k in keys):
            continue
        cells = [
            format_value(row[(k, "mean")], row[(k, "std")], int(row[(k, "count")]))
            if k in present
            else "–"
            for k in keys
        ]
        rows.append([variant, *cells])
    if not rows:
        return None
    header = ["variant", *(describe(key_for[c]).header for c in columns)]
    return _table(header, [*rows, *extra_rows])


def _evaluator_line(dataset: str, evaluator: dict) -> str:
    accuracy = evaluator["test_accuracy"]
    line = (
        f"Sample metrics use the features of a CNN classifier trained on `{dataset}` "
        f"(test accuracy {accuracy:.2%}); they are not Inception-FID numbers."
    )
    if accuracy < EVALUATOR_ACCURACY_TARGET:
        line += (
            f"\n\n> **Warning: the evaluator's test accuracy {accuracy:.2%} is below the "
            f"{EVALUATOR_ACCURACY_TARGET:.0%} target; its class-based metrics are unreliable.**"
        )
    return line


def _section(title: str, table: str | None, intro: str = "") -> list[str]:
    """A titled table, or nothing when no variant has its metrics."""
    if table is None:
        return []
    return [title, "", *([intro, ""] if intro else []), table, ""]


def dataset_section(summary: pd.DataFrame, dataset: str, evaluator: dict) -> list[str]:
    robust_columns = [f"robust_{k}_{s}" for k in NOISE_KINDS_SHOWN for s in ROBUST_STATS]
    parts = [f"## {dataset}", ""]
    parts += _section(
        "### Reconstruction (clean test split) and representation",
        metric_table(summary, dataset, HEADLINE),
    )
    parts += _section(
        "### Noise robustness",
        metric_table(summary, dataset, robust_columns),
        "Normalised area under each curve over the corruption-level grid (the curve's mean).",
    )
    parts += ["### Sample quality", "", _evaluator_line(dataset, evaluator), ""]
    floor = evaluator["floor"]
    floor_row = [
        "*train split (floor)*",
        *(format_value(floor[f"floor_{s}"]) for s in SAMPLE_STATS),
    ]
    for sampler in ("recon", "prior", "gmm", "chain"):
        key_for = {stat: f"sample_{sampler}_{stat}" for stat in SAMPLE_STATS}
        parts += _section(
            f"#### `{sampler}`: {SAMPLER_MEANING[sampler]}",
            metric_table(summary, dataset, list(SAMPLE_STATS), key_for, [floor_row]),
        )
    parts += _section("### Likelihood (VAE family)", metric_table(summary, dataset, LIKELIHOOD))
    parts += _section("### Cost", metric_table(summary, dataset, COST))
    return parts


def render_markdown(
    summary: pd.DataFrame, seeds: tuple[int, ...], evaluators: dict[str, dict], header: str = ""
) -> str:
    parts = ["# aebench results", ""]
    if header:
        parts += [header, ""]
    parts += [
        f"Mean ± standard deviation over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); "
        "↑ higher is better, ↓ lower is better.",
        "",
    ]
    for dataset in summary.index.get_level_values(0).unique():
        parts += dataset_section(summary, dataset, evaluators[dataset])
    parts += ["## Glossary", ""]
    for metric in glossary_entries():
        reference = f" ({metric.reference})" if metric.reference else ""
        parts.append(f"- **{metric.header}**: {metric.meaning}{reference}")
    return "\n".join(parts) + "\n"
