"""The tuned section: each variant's setting selected on the validation split, per task, beside
its untuned default on the test split.

For every grid and task: the selected point and its setting, a heat map of the grid's mean
validation scores (so the reader sees how flat or sharp the optimum is, not only the winner),
and the selected setting's test metric against the default's, as a difference with its 95%
interval (seeds, and the test images where the metric has per-image values; the same interval
as the default report's, Holm-adjusted over the comparisons read together). A selected setting
equal to the default is said to be so, not compared with itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.config import Params, RunConfig
from aebench.report import figures
from aebench.report.document import (
    Block,
    BulletList,
    Cell,
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
)
from aebench.report.eligibility import capped_seeds, unrankable, unranked_note
from aebench.report.findings import NO_INTERVAL, Finding, compare_best, sentences
from aebench.report.glossary import describe
from aebench.report.intervals import ALPHA, Difference, Sample, difference, holm, signed_text
from aebench.report.results import load_per_image, load_runs
from aebench.report.stats import Evidence
from aebench.report.tables import format_sample, metric_table
from aebench.tuning import TASK_SCORES, TUNING_ROOT, task_score


def task_metric(score: str) -> str:
    """The test metric that reports a task selected on validation ``score`` (lower is better,
    like the score): its name without ``val_``."""
    return score.removeprefix("val_")


@dataclass(frozen=True)
class TunedRow:
    """One variant and task: the selected point's test metric against the default's."""

    dataset: str
    variant: str
    task: str
    point: str
    metric: str
    tuned: Sample | None
    default: Sample | None
    diff: Difference | None  # tuned − default; None where the default was selected
    adjusted_p: float = 1.0

    @property
    def resolved(self) -> bool:
        return self.diff is not None and self.diff.resolvable and self.adjusted_p < ALPHA


def gather_evidence(params: Params, selected: dict, root: Path = Path()) -> Evidence:
    """The default runs of every tuned variant (metrics/) and the selected points' reporting
    runs (tuning/metrics/), per seed and per image."""
    frames, per_image = [], {}
    datasets = tuple(selected)
    picked = [
        p
        for grids in selected.values()
        for grid in grids.values()
        for p in grid["selected"].values()
    ]
    # a selected point equal to a run variant (e.g. beta = 4 of vae's grid is beta_vae) is not
    # retrained (final_runs): its reporting runs are the default pipeline's, read from metrics/
    defaults = tuple(
        dict.fromkeys(v for v in (*params.tuning.grids, *picked) if v in params.run.variants)
    )
    chosen = tuple(dict.fromkeys(p for p in picked if p not in params.run.variants))
    for metrics_dir, variants in (
        (root / "metrics", defaults),
        (root / TUNING_ROOT / "metrics", chosen),
    ):
        if not variants:
            continue
        runs = load_runs(metrics_dir, RunConfig(datasets, variants, params.run.seeds))
        frames.append(runs)
        per_image |= load_per_image(metrics_dir, runs)
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Evidence(runs, per_image)


def tuned_rows(params: Params, selected: dict, evidence: Evidence) -> list[TunedRow]:
    """Every (dataset, variant, task) with its difference, Holm-adjusted over all of them."""
    rows = []
    by_metric: dict[tuple[str, str], dict[str, Sample]] = {}  # each read once, not per task
    for dataset, grids in selected.items():
        for variant, grid in grids.items():
            for task, point in grid["selected"].items():
                metric = task_metric(task_score(task, _scores(grid)))
                if (dataset, metric) not in by_metric:
                    found = evidence.samples(dataset, metric) if not evidence.runs.empty else {}
                    by_metric[(dataset, metric)] = found
                samples = by_metric[(dataset, metric)]
                tuned, default = samples.get(point), samples.get(variant)
                diff = None
                if point != variant and tuned is not None and default is not None:
                    diff = difference(tuned, default)
                rows.append(TunedRow(dataset, variant, task, point, metric, tuned, default, diff))
    tested = [i for i, r in enumerate(rows) if r.diff is not None and r.diff.p is not None]
    adjusted = holm([rows[i].diff.p for i in tested]) if tested else []
    for i, p in zip(tested, adjusted, strict=True):
        rows[i] = replace(rows[i], adjusted_p=p)
    return rows


def family_evidence(evidence: Evidence, dataset: str, grids: dict, task: str) -> Evidence:
    """Each family's reporting runs at the point selected for ``task``, labelled by the family
    (the grid's variant), in the grids' declared order: the families compared each at its own
    selected setting. Two grids may select the same point (a run variant): each gets a copy."""
    chosen = {v: g["selected"][task] for v, g in grids.items() if task in g["selected"]}
    runs = evidence.runs[evidence.runs.dataset == dataset]
    frames = [runs[runs.variant == point].assign(variant=v) for v, point in chosen.items()]
    per_image = {
        (dataset, v, seed): arrays
        for v, point in chosen.items()
        for (d, run, seed), arrays in evidence.per_image.items()
        if d == dataset and run == point
    }
    return Evidence(pd.concat(frames, ignore_index=True), per_image)


def _task_metrics(grids: dict) -> list[tuple[str, str, list[str]]]:
    """(task, test metric, the families it compares): one entry per task and metric (a
    likelihood grid scored by a Gaussian decoder is not compared with Bernoulli ones)."""
    out: dict[tuple[str, str], list[str]] = {}
    for task in TASK_SCORES:
        for variant, grid in grids.items():
            if task in grid["selected"]:
                metric = task_metric(task_score(task, _scores(grid)))
                out.setdefault((task, metric), []).append(variant)
    return [(task, metric, variants) for (task, metric), variants in out.items()]


def family_comparison(
    evidence: Evidence, dataset: str, grids: dict
) -> tuple[list[Block], list[Finding]]:
    """Per task, a table of the families at their selected settings (ranked like the main
    report's: the best bold, the unresolved marked, degenerate rows named), each family's
    default value beside it unranked, and the finding naming the best family."""
    blocks: list[Block] = []
    found: list[Finding] = []
    if evidence.runs.empty:
        return blocks, found
    defaults = evidence.samples  # the default runs carry the families' own names
    for task, metric, variants in _task_metrics(grids):
        words = SCORE_WORDS["val_" + metric]
        if len(variants) < 2:
            blocks.append(
                Paragraph(f"{task} ({words}): only `{variants[0]}` is scored; nothing to rank.")
            )
            continue
        tuned = family_evidence(evidence, dataset, grids, task)
        caption = (
            f"{task}: each family at the setting selected for it on validation {words}; mean ± "
            "sd over the reporting seeds on the test split"
        )
        table = metric_table(tuned, dataset, [metric], caption=caption)
        if table is None:
            continue
        settings = {v: _setting(grids[v], grids[v]["selected"][task]) for v in variants}
        default = {v: format_sample(sample) for v, sample in defaults(dataset, metric).items()}
        rows = tuple(
            (label, Cell(settings[label.text]), *cells, Cell(default.get(label.text, "–")))
            for label, *cells in table.rows
        )
        header = (table.header[0], "selected setting", *table.header[1:], "default (not ranked)")
        # named even where too few rows are left to rank (metric_table then names none)
        left_out = unranked_note(unrankable(tuned, dataset, metric), set(variants))
        notes = table.notes + ((left_out,) if left_out and left_out not in table.notes else ())
        blocks.append(Table(header, rows, table.caption, notes))
        claim = f"has the lowest {words} of the families at their tuned settings"
        topic = f"the {words} at the tuned settings"
        finding = compare_best(tuned, dataset, metric, claim, topic=topic)
        if finding is None:
            blocks.append(
                Paragraph(f"{task}: fewer than two families can be ranked; none is named best.")
            )
        else:
            found.append(finding)
    return blocks, found


def heat_map(grid: dict, score: str, chosen: str, title: str, path: Path) -> Path:
    """The grid's mean validation ``score`` as a heat map: the study key across, the by-key
    down (one row without one); the selected cell outlined."""
    import matplotlib.pyplot as plt

    points = grid["points"]
    xs = sorted({e["value"] for e in points.values()}, key=_order)
    ys = sorted({e.get("by_value") for e in points.values()}, key=_order)
    values = np.full((len(ys), len(xs)), np.nan)
    for entry in points.values():
        if score in entry["scores"]:
            values[ys.index(entry.get("by_value")), xs.index(entry["value"])] = entry["scores"][
                score
            ]
    with figures._style():
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(xs), 1.0 + 0.6 * len(ys)))
        image = ax.imshow(values, cmap="viridis_r", aspect="auto")
        for (row, col), value in np.ndenumerate(values):
            if not math.isnan(value):
                ax.text(
                    col, row, f"{value:.4g}", ha="center", va="center", fontsize=7, color="white"
                )
        mark = points[chosen]
        row, col = ys.index(mark.get("by_value")), xs.index(mark["value"])
        ax.add_patch(
            plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)
        )
        ax.set_xticks(range(len(xs)), [_text(x) for x in xs])
        ax.set_yticks(range(len(ys)), [_text(y) for y in ys])
        ax.set_xlabel(grid["key"])
        ax.set_ylabel(grid["by"] or "")
        ax.grid(False)
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
        return figures.save_png(fig, path)


def _order(value: float | int | None) -> float:
    return math.inf if value is None else float(value)


def _text(value: float | int | None) -> str:
    return "all" if value is None else f"{value:g}"


def _cell_sample(sample: Sample | None) -> str:
    if sample is None:
        return "–"
    sd = f" ± {np.std(sample.seeds, ddof=1):.4g}" if sample.n > 1 else ""
    return f"{sample.mean:.4g}{sd} ({sample.n})"


def _setting(grid: dict, point: str) -> str:
    entry = grid["points"][point]
    text = f"{grid['key']} = {_text(entry['value'])}"
    if grid["by"]:
        text += f", {grid['by']} = {_text(entry.get('by_value'))}"
    return text


SCORE_WORDS = {
    "val_recon_mse": "MSE",
    "val_sample_gmm_fd": "FD of GMM samples",
    "val_nll_iw": "NLL",
    "val_gaussian_nll_iw": "NLL (Gaussian decoder)",
}


def _scores(grid: dict) -> dict[str, dict[str, float]]:
    """Each point's mean validation scores, from a grid of tuning/selected.json."""
    return {point: entry["scores"] for point, entry in grid["points"].items()}


def _finding(row: TunedRow, grid: dict, capped: dict[str, str]) -> str:
    """A resolved comparison, verdict first: which is lower, by how much, with its interval;
    a side with seeds at the epoch cap is said to be unfinished."""
    diff = row.diff
    lower = diff.estimate < 0
    low, high = sorted((abs(diff.low), abs(diff.high)))
    label = describe(row.metric).label
    unfinished = [
        f"{side}: {capped[name]}"
        for side, name in (("tuned", row.point), ("default", row.variant))
        if name in capped
    ]
    caveat = f" ({'; '.join(unfinished)}: an unfinished model)" if unfinished else ""
    return (
        f"Tuned `{row.variant}` for {row.task} ({_setting(grid, row.point)}) has "
        f"{'lower' if lower else 'higher'} {label} than its default by {abs(diff.estimate):.4g} "
        f"(95% CI {low:.4g} to {high:.4g}), resolved after Holm{caveat}."
    )


def build_document(
    params: Params,
    selected: dict,
    rows: list[TunedRow],
    evidence: Evidence,
    figures_dir: Path,
    report_dir: Path,
) -> Document:
    """The tuned report: the rule, then per dataset each variant's selected settings against its
    default, the families compared at their selected settings (``evidence``: the runs of both),
    and each grid's heat maps."""
    tuning = params.tuning
    doc = Document()
    doc.add(
        Heading(1, "aebench: tuned on the validation split"),
        Paragraph(
            f"Each variant's grid ({', '.join(f'`{v}`' for v in tuning.grids)}) was trained with "
            f"the selection seed(s) {list(tuning.seeds)}, none of them a reporting seed, and "
            "scored on the validation split; per task the point with the lowest mean validation "
            "score was selected (reconstruction: MSE; generation: FD of GMM samples; likelihood: "
            f"NLL, K = {tuning.importance_samples}) and trained again with the reporting seeds "
            f"{list(params.run.seeds)}. The test metrics below are the reporting runs'. Budget "
            "(grid points × selection seeds): "
            + ", ".join(
                f"`{v}` {len(g.variant_names) * len(tuning.seeds)} runs"
                for v, g in tuning.grids.items()
            )
            + "."
        ),
    )
    if params.full_mnist is not None:
        doc.add(
            Paragraph(
                "Not tuned: the full-MNIST section (`reports/full_mnist/`) runs at the default "
                "settings, since the same grids on its 60,000 training images exceed the tuning "
                "budget (the cost is in docs/studies.md)."
            )
        )
    for dataset, grids in selected.items():
        runs = evidence.runs
        capped = {} if runs.empty else capped_seeds(runs[runs.dataset == dataset])
        shown = [r for r in rows if r.dataset == dataset]
        doc.add(
            Heading(2, dataset),
            _selection_caveat(grids, len(tuning.seeds)),
            Heading(3, "Each variant tuned, against its default"),
            _against_default_table(shown, grids, capped),
        )
        findings = [_finding(r, grids[r.variant], capped) for r in shown if r.resolved]
        doc.add(
            BulletList(
                tuple(findings) or ("No tuned setting is resolved from its default after Holm.",)
            )
        )
        doc.add(*_families_blocks(evidence, dataset, grids))
        doc.add(Heading(3, "The grids' validation scores"))
        for variant, grid in grids.items():
            for task in TASK_SCORES:
                if task not in grid["selected"]:
                    continue
                score = task_score(task, _scores(grid))
                name = f"{dataset}_{variant}_{task}.png"
                chosen = grid["selected"][task]
                title = f"{variant}: mean {score} (selected: outlined)"
                path = heat_map(grid, score, chosen, title, figures_dir / name)
                doc.add(
                    Figure(
                        path.relative_to(report_dir),
                        f"`{variant}`, {task}: mean validation {SCORE_WORDS[score]} over the "
                        "grid (lower is better; the selected setting outlined).",
                    )
                )
    return doc


def _selection_caveat(grids: dict, seeds: int) -> Paragraph:
    """How much a selection can be trusted: the validation split's size and the seed count."""
    counts = {g.get("validation_images") for g in grids.values()}
    size = (
        f"{next(iter(counts)):,} validation images"
        if len(counts) == 1 and None not in counts
        else "a validation split of unrecorded size"
    )
    return Paragraph(
        f"The selection scores each point on {size} with {seeds} training "
        f"seed{'s' if seeds != 1 else ''}: neighbouring settings whose scores differ by less than "
        "that noise are not told apart, so read a selected setting together with its grid's heat "
        "map (below) — a flat map means the choice among its cells is close to arbitrary."
    )


def _against_default_table(shown: list[TunedRow], grids: dict, capped: dict[str, str]) -> Table:
    body = []
    for r in shown:
        grid = grids[r.variant]
        if r.point == r.variant:
            change = "the default was selected"
        elif r.diff is None:
            change = "–"
        else:
            change = signed_text(r.diff) + ("" if r.resolved else " (not resolved)")
        cells = (
            f"`{r.variant}`",
            r.task,
            _setting(grid, r.point),
            describe(r.metric).header,
            _cell_sample(r.default),
            _cell_sample(r.tuned),
            change,
        )
        body.append(tuple(Cell(t) for t in cells))
    header = (
        "variant",
        "task",
        "selected setting",
        "test metric",
        "default",
        "tuned",
        "tuned − default (95% CI)",
    )
    note = _capped_note(shown, grids, capped)
    return Table(
        header,
        tuple(body),
        caption="mean ± sd (seeds) on the test split; a difference is resolved only after "
        "Holm's adjustment over every row with an interval",
        notes=(note,) if note else (),
    )


def _capped_note(shown: list[TunedRow], grids: dict, capped: dict[str, str]) -> str | None:
    """The table's runs with a seed stopped at the epoch cap, named by their setting: their
    numbers describe an unfinished model (a small learning rate can need more epochs)."""
    listed: dict[str, str] = {}
    for r in shown:
        if r.variant in capped:
            listed[f"`{r.variant}` at its default"] = capped[r.variant]
        if r.point != r.variant and r.point in capped:
            listed[f"`{r.variant}` at {_setting(grids[r.variant], r.point)}"] = capped[r.point]
    if not listed:
        return None
    named = "; ".join(f"{who} ({why})" for who, why in listed.items())
    return f"Unfinished models (stopped at the epoch cap): {named}."


def _families_blocks(evidence: Evidence, dataset: str, grids: dict) -> list[Block]:
    """The families compared, each at its selected setting: the tables and their findings,
    resolved under Holm over these findings."""
    tables, found = family_comparison(evidence, dataset, grids)
    if not tables:
        return []
    blocks: list[Block] = [
        Heading(3, "The families at their tuned settings"),
        Paragraph(
            "Each family at the setting selected for the task, so that no family is ranked at a "
            "hand-picked setting; its default's value stands beside it, unranked."
        ),
        *tables,
    ]
    if not found:
        return blocks
    items, tested = sentences(found)
    rule = NO_INTERVAL
    if tested:
        rule = (
            f"A finding is resolved only when its Holm-adjusted p < {ALPHA:g} over the {tested} "
            "findings above that have an interval; it claims the best against every other "
            "family (its p is the largest over those comparisons); the CI shown is against the "
            "runner-up, over the reporting seeds and, where the metric has per-image values, "
            "the test images."
        )
    return [*blocks, BulletList(tuple(items)), Paragraph(rule)]
