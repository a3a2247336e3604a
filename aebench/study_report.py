"""The studies report: each swept setting as metric-against-value curves with 95% bands, a table
of every point and a finding per study; every point is stated as its difference from the swept
variant's own setting, with its interval and a Holm-adjusted verdict."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import NullLocator
from scipy import stats

from aebench.config import Params, StudySpec
from aebench.data import read_manifest
from aebench.report import figures
from aebench.report.document import BulletList, Cell, Document, Figure, Heading, Paragraph, Table
from aebench.report.glossary import describe
from aebench.report.intervals import (
    ALPHA,
    LEVEL,
    Difference,
    Sample,
    difference,
    estimate_text,
    holm,
    signed_text,
)
from aebench.report.results import PER_IMAGE_FILE, run_path
from aebench.report.tables import format_value
from aebench.studies import run_root

# What every study draws: reconstruction, robustness to each corruption kind, generation (the GMM
# sampler applies to every family) and, for the families with a posterior, the NLL.
STUDY_METRICS = (
    "recon_mse",
    "robust_gaussian_mse_corrupted",
    "robust_masking_mse_corrupted",
    "robust_salt_pepper_mse_corrupted",
    "sample_gmm_fd",
    "nll_iw",
    "gaussian_nll_iw",  # a Gaussian decoder's density (obs_std sweeps)
)
KEY_LABELS = {
    "noise.level": "training noise level",
    "beta": "β (KL weight)",
    "latent_dim": "code size (latent_dim)",
    "train_images": "training images",
}


@dataclass(frozen=True)
class StudyResults:
    """One study's runs on one dataset: a row per (curve, point, seed) with the metrics, and the
    per-image arrays behind them (keyed by variant name and seed)."""

    study: StudySpec
    dataset: str
    runs: pd.DataFrame  # columns: curve, value, variant, seed, *STUDY_METRICS present
    per_image: dict[tuple[str, int], dict[str, np.ndarray]]
    # curve -> what its swept value measures, where curves differ (a noise level is σ for
    # Gaussian noise, a pixel fraction otherwise): each unit gets an x axis of its own
    units: dict[str, str] = field(default_factory=dict)

    def unit(self, curve: str) -> str:
        return self.units.get(curve, KEY_LABELS.get(self.study.key, self.study.key))


def _full_split_size(data_dir: Path) -> int:
    return int(read_manifest(data_dir)["splits"]["train"]["shape"][0])


def gather_study(params: Params, study: StudySpec, dataset: str, data_root: Path) -> StudyResults:
    """Read every point's metrics.json and per_image.npz; a missing run is named."""
    rows, per_image = [], {}
    whole = _full_split_size(data_root / dataset)  # the x of an unset train_images
    for curve in study.curves:
        for value, variant in curve.points:
            x = whole if value is None else value
            for seed in params.run.seeds:
                path = run_path(run_root(params, variant) / "metrics", dataset, variant, seed)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{path} not found: study {study.name!r} needs {variant} seed {seed}; "
                        "run `aebench study`"
                    )
                evaluated = json.loads(path.read_text())
                metrics = evaluated["metrics"]
                row = {"curve": curve.variant, "value": float(x), "variant": variant, "seed": seed}
                row["device"] = evaluated.get("device", "unknown")
                row |= {key: metrics[key] for key in STUDY_METRICS if key in metrics}
                rows.append(row)
                if (variant, seed) in per_image:  # a run on two curves is read once
                    continue
                with np.load(path.parent / PER_IMAGE_FILE) as arrays:
                    per_image[(variant, seed)] = {k: arrays[k] for k in arrays.files}
    return StudyResults(study, dataset, pd.DataFrame(rows), per_image, _units(params, study))


def _units(params: Params, study: StudySpec) -> dict[str, str]:
    """A noise level's unit per curve: σ for Gaussian noise, a fraction of pixels otherwise."""
    if study.key != "noise.level":
        return {}
    units = {}
    for curve in study.curves:
        noise = params.variant(curve.variant).noise
        gaussian = noise is not None and noise.kind == "gaussian"
        units[curve.variant] = (
            "training noise: σ (gaussian)" if gaussian else "training noise: fraction of pixels"
        )
    return units


def sample_of(results: StudyResults, curve: str, variant: str, metric: str) -> Sample | None:
    """A point's per-seed values and, where the metric has them, its seed-averaged per-image
    values (so an interval covers the finite test set too). Read within one curve: a run that
    is a point of two curves must not count its seeds twice."""
    runs = results.runs
    frame = runs[(runs.curve == curve) & (runs.variant == variant)]
    if metric not in frame or frame[metric].isna().any():
        return None
    arrays = [results.per_image.get((variant, seed), {}).get(metric) for seed in frame.seed]
    images = None if any(a is None for a in arrays) else np.mean(arrays, axis=0)
    return Sample(frame[metric].to_numpy(dtype=np.float64), images)


def mean_band(values: np.ndarray) -> tuple[float, float, float]:
    """Mean over seeds and its 95% t-interval (the band the curves draw); no band for one seed."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    low, high = stats.t.interval(LEVEL, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def _metrics_present(results: StudyResults) -> list[str]:
    return [m for m in STUDY_METRICS if m in results.runs and results.runs[m].notna().any()]


def _value_axis(ax, values: np.ndarray) -> None:
    """Ticks at the swept settings only, labelled as written; logarithmic where they span 5×
    or more (code sizes, data sizes), as the default report's trade-off plot."""
    if figures._spans_wide_range(values):
        ax.set_xscale("log")
    ticks = sorted(set(values.tolist()))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ticks, [_value_text(t) for t in ticks], fontsize=8, rotation=45)


@figures._closes_on_error
def draw_study(results: StudyResults, palette: figures.Palette) -> MplFigure:
    """One panel per metric: mean over seeds against the swept value, a line per swept variant,
    its 95% interval of the mean as a band; the variant's own setting is ringed."""
    metrics = _metrics_present(results)
    columns = 3
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(figures.WIDTH_IN, 2.9 * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    markers = figures.variant_markers(list(palette))
    runs = results.runs
    units = list(dict.fromkeys(results.unit(c.variant) for c in results.study.curves))
    for base, metric in zip(axes.flat, metrics, strict=False):
        # one x axis per unit: the first at the bottom, a second (if any) on top
        unit_axes = {units[0]: base, **{unit: base.twiny() for unit in units[1:]}}
        for curve in results.study.curves:
            ax = unit_axes[results.unit(curve.variant)]
            frame = runs[(runs.curve == curve.variant) & runs[metric].notna()]
            if frame.empty:
                continue
            points = [
                (value, *mean_band(group[metric].to_numpy(dtype=np.float64)))
                for value, group in frame.groupby("value", sort=True)
            ]
            x, mean, low, high = (np.array(column) for column in zip(*points, strict=True))
            colour = palette[curve.variant]
            ax.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
            ax.plot(x, mean, color=colour, marker=markers[curve.variant], markersize=4)
            own = frame[frame.variant == curve.variant]["value"]
            if len(own):
                at = float(own.iloc[0])
                ax.plot(
                    [at],
                    [mean[list(x).index(at)]],
                    marker="o",
                    markersize=10,
                    markerfacecolor="none",
                    color=colour,
                )
        entry = describe(metric)
        # on the top-most axes, so that it sits above a second unit's ticks
        unit_axes[units[-1]].set_title(entry.header, fontsize=9)
        for unit, ax in unit_axes.items():
            curves = [c.variant for c in results.study.curves if results.unit(c.variant) == unit]
            values = runs[runs.curve.isin(curves)]["value"].to_numpy(dtype=np.float64)
            _value_axis(ax, values)
            ax.set_xlabel(unit, fontsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_visible(False)
    n_seeds = results.runs.groupby("variant")["seed"].nunique().min()
    fig.suptitle(
        f"Study {results.study.name} on {results.dataset}: mean over {n_seeds} seeds\n"
        f"band: {LEVEL:.0%} interval of the mean over training seeds only (the verdicts below "
        "also cover the finite test set); ringed: the variant's own setting"
    )
    handles = figures._variant_handles([c.variant for c in results.study.curves], palette, True)
    figures._bottom_legend(fig, handles)
    return fig


def study_figure(results: StudyResults, path: Path) -> Path:
    palette = figures.variant_palette([c.variant for c in results.study.curves])
    with figures._style():
        return figures.save_png(draw_study(results, palette), path)


def _value_text(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Change:
    """One point of a swept variant against the variant's own setting, on one metric."""

    curve: str
    metric: str
    value: float  # the point's setting
    own: float  # the variant's own setting
    diff: Difference  # point − own
    adjusted_p: float  # Holm over every change of the study (1 where no interval exists)

    @property
    def resolved(self) -> bool:
        return self.diff.resolvable and self.adjusted_p < ALPHA

    @property
    def verdict(self) -> str:
        """``better``/``worse`` by the metric's direction (``higher``/``lower`` without one)."""
        higher = self.diff.estimate > 0
        better = describe(self.metric).higher_is_better
        if better is None:
            return "higher" if higher else "lower"
        return "better" if higher == better else "worse"


def study_changes(results: StudyResults) -> list[Change]:
    """Every point ≠ the variant's own setting, on every metric both have, as a difference
    from the own setting with its 95% interval; the verdicts are Holm-adjusted over all of
    them, since a study reads many at once (3 variants × 4 settings × 6 metrics: ~70)."""
    found = []
    for curve in results.study.curves:
        frame = results.runs[results.runs.curve == curve.variant]
        own_rows = frame[frame.variant == curve.variant]
        if own_rows.empty:
            continue
        own_value = float(own_rows["value"].iloc[0])
        points = frame.drop_duplicates("variant").sort_values("value")
        for metric in _metrics_present(results):
            own = sample_of(results, curve.variant, curve.variant, metric)
            for value, variant in zip(points["value"], points["variant"], strict=True):
                sample = sample_of(results, curve.variant, variant, metric)
                if variant == curve.variant or own is None or sample is None:
                    continue
                found.append(
                    (curve.variant, metric, float(value), own_value, difference(sample, own))
                )
    pvalues = [diff.p if diff.p is not None else 1.0 for *_, diff in found]
    return [
        Change(*change, adjusted) for change, adjusted in zip(found, holm(pvalues), strict=True)
    ]


def _direction(metric: str) -> str:
    entry = describe(metric)
    if entry.higher_is_better is None:
        return entry.label
    return f"{entry.label} ({'higher' if entry.higher_is_better else 'lower'} is better)"


def curve_findings(results: StudyResults, changes: list[Change] | None = None) -> list[str]:
    """One line per swept variant and metric: each setting minus the variant's own, with its
    95% interval and the verdict of the Holm-adjusted comparison."""
    changes = study_changes(results) if changes is None else changes
    lines = []
    for curve in results.study.curves:
        for metric in _metrics_present(results):
            mine = [c for c in changes if c.curve == curve.variant and c.metric == metric]
            if not mine:
                continue
            parts = [
                f"{_value_text(c.value)}: {signed_text(c.diff)}, "
                + (c.verdict if c.resolved else "not resolved")
                for c in mine
            ]
            lines.append(
                f"**{curve.variant}** · {_direction(metric)}, each setting − its own "
                f"{_value_text(mine[0].own)}: " + "; ".join(parts)
            )
    return lines


def study_finding(results: StudyResults, changes: list[Change] | None = None) -> str:
    """The study in one paragraph: which settings resolvedly beat or trail each variant's own."""
    changes = study_changes(results) if changes is None else changes
    resolved = [c for c in changes if c.resolved]
    groups: dict[tuple[str, float], list[str]] = {}
    for c in resolved:
        groups.setdefault((c.curve, c.value), []).append(
            f"{describe(c.metric).label} {c.verdict} ({estimate_text(c.diff)[0]})"
        )
    listed = "; ".join(
        f"`{curve}` at {_value_text(value)}: {', '.join(items)}"
        for (curve, value), items in groups.items()
    )
    head = (
        f"**Finding.** Against each variant's own setting, {len(resolved)} of {len(changes)} "
        f"differences are resolved (Holm-adjusted p < {ALPHA:g} over the {len(changes)})"
    )
    return head + (f": {listed}." if resolved else ".")


def study_table(results: StudyResults) -> Table:
    """Every point: mean ± sd over seeds per metric."""
    metrics = _metrics_present(results)
    header = (
        "variant",
        KEY_LABELS.get(results.study.key, results.study.key),
        "run",
        *(describe(m).header for m in metrics),
    )
    rows = []
    for curve in results.study.curves:
        frame = results.runs[results.runs.curve == curve.variant]
        for value, group in frame.groupby("value", sort=True):
            variant = group["variant"].iloc[0]
            cells = [Cell(curve.variant), Cell(_value_text(value)), Cell(f"`{variant}`")]
            for metric in metrics:
                column = group[metric].dropna()
                cells.append(
                    Cell(
                        format_value(float(column.mean()), float(column.std(ddof=1)), len(column))
                        if len(column)
                        else "–"
                    )
                )
            rows.append(tuple(cells))
    return Table(header, tuple(rows), caption="mean ± sd over seeds")


def study_section(results: StudyResults, figure_path: Path, report_dir: Path) -> list:
    """The blocks of one study on one dataset."""
    study = results.study
    label = KEY_LABELS.get(study.key, study.key)
    changes = study_changes(results)
    intro = (
        f"`{study.key}` swept over {', '.join(_value_text(v) for v in study.values)} for "
        f"{', '.join(f'`{c.variant}`' for c in study.curves)}; each variant's own setting is a "
        "point too, and every other point is compared with it: the difference (point − own) "
        f"with its {LEVEL:.0%} interval over training seeds and the paired test images, and a "
        "verdict (better, worse or not resolved) from Holm-adjusted p-values over all of the "
        "study's differences."
    )
    if study.key == "train_images":
        intro += (
            " Each size is one stratified draw of the training split (data.split_seed), the "
            "same for every seed: the intervals hold for that draw, not over draws."
        )
    return [
        Heading(2, f"{study.name} on {results.dataset}"),
        Paragraph(intro),
        Paragraph(study_finding(results, changes)),
        BulletList(tuple(curve_findings(results, changes))),
        Figure(figure_path.relative_to(report_dir), f"Study {study.name}: metrics against {label}"),
        study_table(results),
    ]


def build_document(sections: list[list]) -> Document:
    doc = Document()
    doc.add(
        Heading(1, "aebench studies"),
        Paragraph(
            "Each study sweeps one setting of some variants of the default run; every other "
            "setting, the data, the seeds and the corruption draws stay those of the default "
            "run. Points equal to a default variant reuse its runs. Declared in params.yaml "
            "(`studies`, `run.studies`); run with `aebench study`."
        ),
    )
    for blocks in sections:
        doc.add(*blocks)
    return doc


def write_study_runs(results: list[StudyResults], path: Path) -> None:
    """Every study run's values (one row per study × dataset × curve × point × seed), committed
    so that ``aebench history`` can pair two commits' runs seed by seed. Shortest round-trip
    floats, as the default report's runs.csv."""
    from aebench.io import atomic_path

    tables = [r.runs.assign(study=r.study.name, dataset=r.dataset) for r in results]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    leading = [c for c in ("study", "dataset", "curve", "value", "variant", "seed", "device")]
    table = table[[c for c in leading if c in table] + sorted(c for c in table if c not in leading)]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=lambda value: repr(float(value)))


def study_metrics(results: list[StudyResults]) -> dict:
    """``{study: {dataset: {variant: {metric: mean}}}}`` for `dvc metrics`."""
    out: dict = {}
    for result in results:
        means = result.runs.groupby("variant", sort=False)[_metrics_present(result)].mean()
        out.setdefault(result.study.name, {})[result.dataset] = {
            variant: {k: float(v) for k, v in row.items() if not math.isnan(v)}
            for variant, row in means.iterrows()
        }
    return out
