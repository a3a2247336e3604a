"""What the report says: builds the :class:`Document` both renderers turn into pages.

Everything here is derived from the evaluation outputs (per-seed metrics, evaluator summaries,
figures already drawn) — no training, no model code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aebench.config import NOISE_KINDS, SAMPLERS
from aebench.report.document import (
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)
from aebench.report.glossary import (
    COST,
    LIKELIHOOD,
    ROBUST_STATS,
    SAMPLE_STATS,
    SAMPLER_MEANING,
    describe,
    glossary_entries,
)
from aebench.report.stats import ALPHA, best_and_ties, seed_values, welch_pvalue

EVALUATOR_ACCURACY_TARGET = 0.97
HEADLINE = (
    "recon_mse",
    "recon_ssim",
    "robust_gaussian_mse_auc",
    "robust_masking_mse_auc",
    "robust_salt_pepper_mse_auc",
    "sample_gmm_fd",
    "sample_gmm_precision",
    "sample_gmm_recall",
    "probe_accuracy",
    "nll_iw",
)
RECONSTRUCTION = ("recon_mse", "recon_bce", "recon_psnr", "recon_ssim", "probe_accuracy")


@dataclass
class ReportInputs:
    """Everything the report is made of."""

    runs: pd.DataFrame  # one row per (dataset, variant, seed), one column per metric
    evaluators: dict[str, dict]  # dataset -> evaluator.json
    seeds: tuple[int, ...]
    environment: list[str]  # header lines
    figures: dict[str, list[tuple[str, Figure]]] = field(
        default_factory=dict
    )  # dataset -> (section, fig)
    devices: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (dataset, variant) -> device


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


def metric_table(
    runs: pd.DataFrame,
    dataset: str,
    columns: Sequence[str],
    key_for: dict[str, str] | None = None,
    extra_rows: Sequence[tuple[Cell, ...]] = (),
    header_for: dict[str, str] | None = None,
) -> Table | None:
    """Variants as rows, mean ± std over seeds; the best per column bold, ties marked.

    ``key_for`` maps a column to its metric key (for prefixed families). Variants that have none
    of the keys are left out; None when no row is left.
    """
    key_for = key_for or {c: c for c in columns}
    per_column = {c: seed_values(runs, dataset, key_for[c]) for c in columns}
    marks = {
        c: best_and_ties(per_column[c], describe(key_for[c]).higher_is_better) for c in columns
    }
    variants = list(dict.fromkeys(runs[runs.dataset == dataset].variant))
    rows = []
    for variant in variants:
        if not any(len(per_column[c][variant]) for c in columns):
            continue
        cells = [Cell(variant)]
        for c in columns:
            values = per_column[c][variant]
            best, ties = marks[c]
            text = format_value(*_mean_std_count(values)) if len(values) else "–"
            cells.append(Cell(text, best=variant == best, tie=variant in ties))
        rows.append(tuple(cells))
    if not rows:
        return None
    header_for = header_for or {}
    header = ("variant", *(header_for.get(c, describe(key_for[c]).header) for c in columns))
    return Table(header, (*rows, *extra_rows))


def _mean_std_count(values: np.ndarray) -> tuple[float, float, int]:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(np.mean(values)), std, len(values)


def _section(title: str, table: Table | None, intro: str = "") -> list:
    if table is None:
        return []
    return [Heading(3, title), *([Paragraph(intro)] if intro else []), table]


# --- findings: the answer before the tables ---------------------------------------------------


def _compare_best(runs: pd.DataFrame, dataset: str, key: str) -> str | None:
    """One sentence: the best variant on ``key``, its margin over the runner-up, and whether the
    margin exceeds the seed spread (Welch's t-test at 5%)."""
    metric = describe(key)
    values = {k: v for k, v in seed_values(runs, dataset, key).items() if len(v)}
    if len(values) < 2 or metric.higher_is_better is None:
        return None
    sign = 1 if metric.higher_is_better else -1
    ranked = sorted(values, key=lambda k: -sign * values[k].mean())
    best, second = ranked[0], ranked[1]
    a, b = values[best].mean(), values[second].mean()
    relative = abs(a - b) / abs(b) * 100 if b else math.nan
    p = welch_pvalue(values[best], values[second])
    if p is None:
        verdict = "(one seed: no spread to judge the gap by)"
    elif p < ALPHA:
        verdict = f"the gap exceeds the seed spread (Welch p = {p:.2g})"
    else:
        verdict = f"but the gap is within the seed spread (Welch p = {p:.2g})"
    return f"**{best}** ({a:.4g}) beats {second} ({b:.4g}) by {relative:.1f}%; {verdict}."


def findings(runs: pd.DataFrame, dataset: str, evaluator: dict) -> list[str]:
    items = []
    for label, key in (("Reconstruction MSE", "recon_mse"),):
        sentence = _compare_best(runs, dataset, key)
        if sentence:
            items.append(f"{label} (clean test split): {sentence}")
    for kind in NOISE_KINDS:
        sentence = _compare_best(runs, dataset, f"robust_{kind}_mse_auc")
        if sentence:
            items.append(f"Most robust to *{kind}* noise (MSE area): {sentence}")
    best_fd = _best_sampler(runs, dataset)
    if best_fd:
        variant, sampler, value = best_fd
        floor = evaluator["floor"]["floor_fd"]
        items.append(
            f"Best samples: **{variant}** with the `{sampler}` sampler, Fréchet distance "
            f"{value:.4g} (the train split scores {floor:.4g}: a reference floor)."
        )
    sentence = _compare_best(runs, dataset, "nll_iw")
    if sentence:
        items.append(f"Likelihood (importance-sampled NLL): {sentence}")
    sentence = _compare_best(runs, dataset, "probe_accuracy")
    if sentence:
        items.append(f"Linear-probe accuracy of the codes: {sentence}")
    return items


def _best_sampler(runs: pd.DataFrame, dataset: str) -> tuple[str, str, float] | None:
    best = None
    for sampler in SAMPLERS:
        for variant, values in seed_values(runs, dataset, f"sample_{sampler}_fd").items():
            if len(values) and (best is None or values.mean() < best[2]):
                best = (variant, sampler, float(values.mean()))
    return best


# --- the document -----------------------------------------------------------------------------


def _evaluator_blocks(dataset: str, evaluator: dict) -> list:
    accuracy = evaluator["test_accuracy"]
    blocks: list = [
        Paragraph(
            f"Sample metrics are computed in the feature space of a small CNN classifier trained "
            f"on `{dataset}` (test accuracy {accuracy:.2%}); they are **not** Inception-FID "
            "numbers and are comparable only within this dataset. The *train split (floor)* row "
            "scores as many real train images against the test split: what real data achieves "
            "(somewhat optimistic, since the evaluator was trained on those images)."
        )
    ]
    if accuracy < EVALUATOR_ACCURACY_TARGET:
        blocks.append(
            Paragraph(
                f"the evaluator's test accuracy {accuracy:.2%} is below the "
                f"{EVALUATOR_ACCURACY_TARGET:.0%} target: class coverage and class KL are "
                "unreliable, and feature-space metrics less trustworthy.",
                warning=True,
            )
        )
    return blocks


def _floor_row(evaluator: dict) -> tuple[Cell, ...]:
    floor = evaluator["floor"]
    return (
        Cell("*train split (floor)*"),
        *(Cell(format_value(floor[f"floor_{s}"])) for s in SAMPLE_STATS),
    )


def dataset_blocks(inputs: ReportInputs, dataset: str) -> list:
    runs, evaluator = inputs.runs, inputs.evaluators[dataset]
    figures = inputs.figures.get(dataset, [])

    def figures_for(section: str) -> list:
        return [figure for name, figure in figures if name == section]

    blocks: list = [Heading(2, dataset)]
    items = findings(runs, dataset, evaluator)
    if items:
        blocks += [Heading(3, "Findings"), BulletList(tuple(items))]
    blocks += _section(
        "Headline",
        metric_table(runs, dataset, HEADLINE),
        "Key metrics, mean ± std over seeds. Robustness columns are the normalised area under "
        "the MSE-against-corruption-level curve; sample columns use the `gmm` sampler, which "
        "every family has.",
    )
    blocks += figures_for("headline")
    blocks += _section(
        "Reconstruction and representation", metric_table(runs, dataset, RECONSTRUCTION)
    )
    robust = [f"robust_{k}_{s}" for k in NOISE_KINDS for s in ROBUST_STATS]
    blocks += _section(
        "Noise robustness",
        metric_table(runs, dataset, robust),
        "Each model reconstructs the clean test image from a corrupted one, over a grid of "
        "levels per corruption kind, with identical corruption draws for every model. Areas are "
        "normalised by the level range (the curve's mean height).",
    )
    blocks += figures_for("robustness")
    blocks += [Heading(3, "Sample quality"), *_evaluator_blocks(dataset, evaluator)]
    for sampler in ("recon", *SAMPLERS):
        key_for = {stat: f"sample_{sampler}_{stat}" for stat in SAMPLE_STATS}
        table = metric_table(runs, dataset, list(SAMPLE_STATS), key_for, [_floor_row(evaluator)])
        if table:
            blocks += [Heading(4, f"`{sampler}`: {SAMPLER_MEANING[sampler]}"), table]
    blocks += figures_for("samples")
    blocks += _section(
        "Likelihood (VAE family)",
        metric_table(runs, dataset, LIKELIHOOD),
        "Bernoulli decoders: test split binarised once with a fixed seed; Gaussian decoders: "
        "nats on [0, 1] intensities, not comparable with the binarised numbers.",
    )
    training = figures_for("training")
    if training:
        blocks += [Heading(3, "Training"), *training]
    latent = figures_for("latent")
    if latent:
        blocks += [Heading(3, "Latent space"), *latent]
    cost = metric_table(runs, dataset, COST)
    if cost is not None:
        device = {v: d for (ds, v), d in inputs.devices.items() if ds == dataset}
        rows = tuple((*row, Cell(device.get(row[0].text, "?"))) for row in cost.rows)
        blocks += [Heading(3, "Cost"), Table((*cost.header, "device"), rows)]
    return blocks


def glossary_blocks() -> list:
    items = []
    for metric in glossary_entries():
        reference = f" *{metric.reference}*." if metric.reference else ""
        direction = {True: "higher is better", False: "lower is better", None: "no direction"}[
            metric.higher_is_better
        ]
        unit = f"; unit: {metric.unit}" if metric.unit else ""
        items.append(f"**{metric.label}** ({direction}{unit}): {metric.meaning}{reference}")
    return [Heading(2, "Glossary"), BulletList(tuple(items))]


def build_report(inputs: ReportInputs) -> Document:
    doc = Document().add(
        Heading(1, "aebench: VAE vs DAE benchmark"),
        BulletList(tuple(inputs.environment)),
        Paragraph(
            f"Mean ± standard deviation over {len(inputs.seeds)} seed(s) "
            f"({', '.join(map(str, inputs.seeds))}); ↑ higher is better, ↓ lower is better; "
            "**bold** marks the best of a column and † the variants not distinguishable from it "
            "at 95% confidence (Welch's t-test over seeds)."
        ),
    )
    for dataset in dict.fromkeys(inputs.runs.dataset):
        doc.add(*dataset_blocks(inputs, dataset))
    doc.add(*glossary_blocks())
    return doc
