"""Gather the evaluation outputs of a run matrix from disk and draw the report's figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.config import Params
from aebench.grids import denoise_grid_level, denoise_grid_name
from aebench.report import figures
from aebench.report.content import ReportInputs
from aebench.report.document import Figure
from aebench.report.environment import environment_lines
from aebench.report.results import load_per_image, load_runs, run_path
from aebench.spec import LIKELIHOODS, SAMPLERS

ROBUSTNESS_FIGURES = (
    ("mse", "Noise robustness: reconstruction MSE against the clean image"),
    ("probe_accuracy", "Noise robustness: linear-probe accuracy on codes of corrupted inputs"),
    ("latent_shift", "Noise robustness: latent shift of corrupted inputs (in code spreads)"),
)


@dataclass(frozen=True)
class ReportDirs:
    """Where the report reads its inputs and writes its figures."""

    metrics: Path
    evaluators: Path
    history: Path
    figures: Path  # where figures are drawn
    report: Path  # figures are referenced relative to this
    chain: Path | None = None  # the chain stage's runs (chain/<dataset>/<variant>/<seed>/)
    memorisation: Path | None = None  # the memorisation stage's runs and reference.json
    diagnostics: Path | None = None  # chain_trace.csv per dataset, when the chain stage ran
    lock: Path = Path("dvc.lock")  # the pipeline's lock file, fingerprinted in the header


def _per_run_frames(params: Params, path_for) -> pd.DataFrame:
    """One CSV per (variant, seed), concatenated with ``variant`` and ``seed`` columns."""
    frames = []
    for variant in params.run.variants:
        for seed in params.run.seeds:
            frame = pd.read_csv(path_for(variant, seed))
            frames.append(frame.assign(variant=variant, seed=seed))
    return pd.concat(frames, ignore_index=True)


def _tradeoff_points(runs: pd.DataFrame, dataset: str, x: str, y: str) -> pd.DataFrame:
    frame = runs[runs.dataset == dataset]
    grouped = frame.groupby("variant", sort=False)[[x, y]].agg(["mean", "std"])
    return pd.DataFrame(
        {
            "variant": grouped.index,
            "x_mean": grouped[(x, "mean")].to_numpy(),
            "x_std": grouped[(x, "std")].fillna(0).to_numpy(),
            "y_mean": grouped[(y, "mean")].to_numpy(),
            "y_std": grouped[(y, "std")].fillna(0).to_numpy(),
        }
    )


def draw_figures(
    params: Params,
    runs: pd.DataFrame,
    dataset: str,
    dirs: ReportDirs,
) -> list[tuple[str, Figure]]:
    """Every figure of one dataset, as (report section, Figure with a path relative to the
    report directory). Image grids and code projections show the first seed."""
    variants = list(params.run.variants)
    palette = figures.variant_palette(variants)
    seed = params.run.seeds[0]
    drawn: list[tuple[str, Figure]] = []

    def run_dir(variant: str, run_seed: int = seed) -> Path:
        return run_path(dirs.metrics, dataset, variant, run_seed).parent

    def out(name: str) -> Path:
        return dirs.figures / f"{dataset}_{name}.png"

    def add(section: str, path: Path, caption: str) -> None:
        drawn.append((section, Figure(path.relative_to(dirs.report), caption)))

    points = _tradeoff_points(runs, dataset, "recon_mse", "sample_gmm_fd")
    x_label, y_label = "reconstruction MSE per pixel (test)", "Fréchet distance, gmm samples"
    add(
        "headline",
        figures.tradeoff_figure(points, out("tradeoff"), x_label, y_label, palette=palette),
        "Trade-off: reconstruction error against sample quality (gmm sampler), one point per "
        "variant, bars = seed std; lower-left is better.",
    )

    curves = _per_run_frames(params, lambda v, s: run_dir(v, s) / "robustness.csv")
    for metric, caption in ROBUSTNESS_FIGURES:
        path = figures.robustness_figure(curves, out(f"robustness_{metric}"), metric, palette)
        add("robustness", path, f"{caption}; line = mean over seeds, band = ± sd.")

    denoise, columns = {}, []
    for kind, levels in params.evaluate.noise_grid.items():
        level = denoise_grid_level(levels)
        column = f"{kind} ({'σ' if kind == 'gaussian' else 'p'}={level:g})"
        columns.append(column)
        for variant in variants:
            denoise[(variant, column)] = run_dir(variant) / f"{denoise_grid_name(kind, level)}.png"
    title = f"Denoising (seed {seed}): rows of clean | corrupted | output"
    add(
        "robustness",
        figures.image_grid_figure(
            denoise, variants, columns, out("denoising"), title, palette=palette
        ),
        "Reconstructions of corrupted test images (clean | corrupted | output) per corruption "
        "kind, at the middle level of its grid.",
    )

    def sample_grid(variant: str, sampler: str) -> Path:
        """The run's grid of that sampler's samples: the chain stage's for the chain."""
        folder = dirs.chain if sampler == "chain" and dirs.chain is not None else dirs.metrics
        return run_path(folder, dataset, variant, seed).with_name(f"samples_{sampler}.png")

    grids = {(v, s): sample_grid(v, s) for v in variants for s in SAMPLERS}
    samples = {key: path for key, path in grids.items() if path.is_file()}
    title = f"Samples (seed {seed}) per variant and sampler"
    add(
        "samples",
        figures.image_grid_figure(
            samples, variants, list(SAMPLERS), out("samples"), title, palette=palette
        ),
        "Samples per variant × sampler (decoder means); n/a where a sampler does not apply to "
        "the family.",
    )

    trace_path = dirs.diagnostics / dataset / "chain_trace.csv" if dirs.diagnostics else None
    # a run without a denoising family traces no chain: the file then holds no rows
    trace = pd.read_csv(trace_path) if trace_path is not None and trace_path.is_file() else None
    if trace is not None and "variant" in trace and len(trace):
        add(
            "samples",
            figures.chain_trace_figure(trace, out("chain_trace"), palette),
            chain_trace_caption(trace),
        )

    history = _per_run_frames(params, lambda v, s: dirs.history / dataset / v / f"{s}.csv")
    likelihood = history["variant"].map(lambda v: params.variant(v).likelihood)
    for decoder in LIKELIHOODS:  # nats of a mass and of a density share no axis
        part = history[likelihood == decoder]
        if part.empty:
            continue
        name = "training" if decoder == "bernoulli" else f"training_{decoder}"
        add(
            "training",
            figures.training_curves_figure(part, out(name), palette),
            f"Training curves of the {decoder}-decoder variants: the training objective (nats "
            "per image of reconstruction, plus each family's weighted penalty, which keeps its "
            "own unit), and for the variants that log a KL term its reconstruction and KL terms; "
            "mean over seeds with ± sd band.",
        )

    codes = {}
    for variant in variants:
        with np.load(run_dir(variant) / "test_codes.npz") as stored:
            codes[variant] = (stored["codes"], stored["labels"])
    n_classes = 1 + max(int(labels.max()) for _, labels in codes.values())  # stratified test
    add(
        "latent",
        figures.latent_pca_figure(codes, out("latent_pca"), n_classes),
        f"Test-set codes projected on their first two principal components, coloured by class "
        f"(seed {seed}).",
    )
    return drawn


def chain_trace_caption(trace: pd.DataFrame) -> str:
    """What the chain's windows show, in numbers: per variant, whether it mixed and its burn-in,
    and its last window's classes and ink (mean over seeds) against the test split's ink."""
    last_step = int(trace["step"].max())
    ink = float(trace["test_mean_intensity"].iloc[0])
    parts = []
    for variant, rows in trace.groupby("variant", sort=False):
        last = rows[rows.step == last_step]
        seeds = rows.seed.nunique()
        if bool(rows.mixed.iloc[0]):
            verdict = f"mixed after {int(rows.burn_in.iloc[0])} steps"
        else:
            verdict = f"did not mix in {last_step} steps (not ranked)"
        parts.append(
            f"{variant}: {verdict}; last window {last.class_coverage.mean() * 10:.0f}/10 "
            f"classes, ink {last.ink.mean():.3f} ({seeds} seeds)"
        )
    z = float(trace["z"].iloc[0])
    return (
        "The DAE Markov chain window by window: each point scores the means of P(X | X~) drawn "
        "in one window of the trace (line: mean over seeds, band: ± sd; dotted: each variant's "
        f"burn-in; dashed: the test split's mean intensity {ink:.3f}). Two windows agree when "
        f"FD, ink and class KL each differ by at most z = {z:.2f} standard errors of the "
        "difference (a paired jackknife over the chains; z bounds the family-wise false alarm "
        "at 5%). The burn-in is the earliest window from which every later window agrees with "
        "the last and the two halves after it agree, on every seed; a chain mixed when that "
        "burn-in lies within the trace's first half, and each chain's scored draws are spread "
        "over the rest of the trace. " + "; ".join(parts) + "."
    )


def gather(params: Params, dirs: ReportDirs) -> ReportInputs:
    """Read the run matrix's evaluations (each run's files once) and draw every figure."""
    joined = [d for d in (dirs.chain, dirs.memorisation) if d is not None]
    runs = load_runs(dirs.metrics, params.run, joined)
    per_image = load_per_image(dirs.metrics, runs)
    evaluators = {
        dataset: json.loads((dirs.evaluators / dataset / "evaluator.json").read_text())
        for dataset in params.run.datasets
    }
    devices = {
        (dataset, variant): ", ".join(sorted(set(group.device)))
        for (dataset, variant), group in runs.groupby(["dataset", "variant"], sort=False)
    }
    figures_by_dataset = {
        dataset: draw_figures(params, runs, dataset, dirs) for dataset in params.run.datasets
    }
    return ReportInputs(
        runs=runs,
        evaluators=evaluators,
        seeds=params.run.seeds,
        environment=environment_lines(params, sorted(set(runs.device)), dirs.lock),
        per_image=per_image,
        binarize={v: params.variant(v).binarize for v in params.run.variants},
        figures=figures_by_dataset,
        devices=devices,
        variants=tuple(params.variant(v) for v in params.run.variants),
        studies=params.run.studies,
        full_mnist=params.full_mnist is not None
        and params.full_mnist.dataset not in runs.dataset.values,
        tuned=tuple(params.tuning.grids) if params.tuning else (),
        memorisation=_memorisation_references(dirs, params.run.datasets),
    )


def _memorisation_references(dirs: ReportDirs, datasets: tuple[str, ...]) -> dict[str, dict]:
    """Each dataset's memorisation/<dataset>/reference.json, where that stage ran."""
    if dirs.memorisation is None:
        return {}
    paths = {d: dirs.memorisation / d / "reference.json" for d in datasets}
    return {d: json.loads(path.read_text()) for d, path in paths.items() if path.is_file()}
