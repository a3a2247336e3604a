"""Gather per-run evaluation files into one table, and aggregate it over seeds.

Each run directory holds ``metrics.json`` (one number per metric) and ``per_image.npz`` (the
per-image values behind the metrics that have them, in test-split order). Both are read once per
run here; the report's intervals need the per-image values to cover the finite test set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.config import RunConfig

RUN_COLUMNS = ("dataset", "variant", "seed", "device")  # not metrics
PER_IMAGE_FILE = "per_image.npz"
# The mean of a per-image array must equal its metric (contract); float32 round-off allowed.
MEAN_RTOL, MEAN_ATOL = 1e-5, 1e-8

# The chain is scored by its own stage; an evaluation from before that stage existed scored it
# at a fixed step, and those values must never stand in for a missing chain result.
SCORED_ELSEWHERE = ("sample_chain_",)

PerImage = dict[tuple[str, str, int], dict[str, np.ndarray]]  # (dataset, variant, seed) -> arrays


def run_path(metrics_dir: Path, dataset: str, variant: str, seed: int) -> Path:
    """A run's metrics.json under the evaluate stage's folder, or under a per-dataset stage's
    (chain, memorisation), whose metrics join the run's row (:func:`load_runs`)."""
    return Path(metrics_dir) / dataset / variant / str(seed) / "metrics.json"


def _missing(path: Path, dataset: str, variant: str, seed: int) -> FileNotFoundError:
    return FileNotFoundError(f"{path} not found: evaluate@{dataset}-{variant}-{seed} has not run")


def load_runs(metrics_dir: Path, run: RunConfig, joined: Sequence[Path] = ()) -> pd.DataFrame:
    """One row per (dataset, variant, seed) of the run matrix, one column per metric; the
    metrics a per-dataset stage wrote for a run under one of the ``joined`` folders (the chain
    sampler's, the memorisation controls) join its row.

    Only the runs named in params are read, so results of variants since removed from the run
    list never leak into the report.
    """
    rows = []
    for dataset in run.datasets:
        for variant in run.variants:
            for seed in run.seeds:
                path = run_path(metrics_dir, dataset, variant, seed)
                if not path.is_file():
                    raise _missing(path, dataset, variant, seed)
                result = json.loads(path.read_text())
                device = result["environment"]["device_name"]
                row = {"dataset": dataset, "variant": variant, "seed": seed, "device": device}
                row |= {
                    key: value
                    for key, value in result["metrics"].items()
                    if not key.startswith(SCORED_ELSEWHERE)
                }
                for stage_dir in joined:
                    extra = run_path(stage_dir, dataset, variant, seed)
                    if extra.is_file():
                        row |= json.loads(extra.read_text())["metrics"]
                rows.append(row)
    return pd.DataFrame(rows)


def load_per_image(metrics_dir: Path, runs: pd.DataFrame) -> PerImage:
    """Every run's per-image arrays, checked against its metrics.

    Each array must be as long as every other of its dataset (the same test images for every
    model) and its mean must equal the run's value of that metric; a mismatch means the two
    files disagree, and an interval built on them would be wrong, so it stops the report.
    """
    out: PerImage = {}
    lengths: dict[str, tuple[int, Path]] = {}
    for row in runs.to_dict("records"):
        dataset, variant, seed = row["dataset"], row["variant"], int(row["seed"])
        metrics_path = run_path(metrics_dir, dataset, variant, seed)
        path = metrics_path.with_name(PER_IMAGE_FILE)
        if not path.is_file():
            raise _missing(path, dataset, variant, seed)
        with np.load(path) as stored:
            arrays = {key: np.asarray(stored[key], dtype=np.float64) for key in stored.files}
        for key, values in arrays.items():
            if values.ndim != 1:
                raise ValueError(f"{path}: {key} has shape {values.shape}, expected (N,)")
            first = lengths.setdefault(dataset, (len(values), path))
            if len(values) != first[0]:
                raise ValueError(
                    f"{path}: {key} holds {len(values)} images but {first[1]} holds {first[0]}: "
                    "every model must be scored on the same test images"
                )
            metric = row.get(key)
            if metric is None or math.isnan(metric):
                raise ValueError(f"{path}: {key} has no matching metric in {metrics_path.name}")
            if not math.isclose(float(values.mean()), metric, rel_tol=MEAN_RTOL, abs_tol=MEAN_ATOL):
                raise ValueError(
                    f"{path}: the mean of {key} is {values.mean():.8g} but {metrics_path.name} "
                    f"says {metric:.8g}"
                )
        out[(dataset, variant, seed)] = arrays
    return out


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample standard deviation and seed count per (dataset, variant) and metric.

    Rows keep the run list's variant order; columns are a (metric, statistic) MultiIndex.
    """
    metric_columns = [c for c in runs.columns if c not in RUN_COLUMNS]
    grouped = runs.groupby(["dataset", "variant"], sort=False)[metric_columns]
    return grouped.agg(["mean", "std", "count"])


def write_run_table(runs: pd.DataFrame, path: Path) -> None:
    """Every run's every metric (one row per dataset × variant × seed), committed with the
    report: paired comparisons (the same seeds of two variants, or of one variant at two
    commits) need the per-run values, which otherwise live only in the DVC cache of the machine
    that ran them. Shortest round-trip floats, so a value read back is the value computed."""
    from aebench.io import atomic_path

    metric_columns = sorted(c for c in runs.columns if c not in RUN_COLUMNS)
    table = runs[[c for c in RUN_COLUMNS if c in runs.columns] + metric_columns]
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=lambda value: repr(float(value)))


def reference_metrics(evaluator: dict) -> dict[str, float]:
    """The evaluator's reference row (validation split against test) as ``reference_<stat>``
    numbers, its image count included; the split's name is text and stays out."""
    return {
        f"reference_{key}": float(value)
        for key, value in evaluator["reference"].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def flat_metrics(summary: pd.DataFrame, evaluators: dict[str, dict]) -> dict[str, float]:
    """``{dataset}.{variant}.{metric}.mean|std|count`` keys, the shape ``dvc metrics diff`` lists
    best, plus ``{dataset}.evaluator.*`` (its accuracy and the reference row).

    The count (seeds with a value) lets ``aebench compare`` build an interval from this file
    alone. Metrics a variant does not have (a sampler that does not apply) are left out, and so
    is the std where a single seed gives none.
    """
    flat: dict[str, float] = {}
    for (dataset, variant), row in summary.iterrows():
        for metric in row.index.get_level_values(0).unique():
            count = int(row[(metric, "count")])
            if count == 0:
                continue
            prefix = f"{dataset}.{variant}.{metric}"
            flat[f"{prefix}.mean"] = float(row[(metric, "mean")])
            if count > 1:
                flat[f"{prefix}.std"] = float(row[(metric, "std")])
            flat[f"{prefix}.count"] = float(count)
    for dataset, evaluator in evaluators.items():
        flat[f"{dataset}.evaluator.test_accuracy"] = float(evaluator["test_accuracy"])
        for key, value in reference_metrics(evaluator).items():
            flat[f"{dataset}.evaluator.{key}"] = value
    return flat
