"""Gather per-run evaluation files into one table, and aggregate it over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from aebench.config import RunConfig

RUN_COLUMNS = ("dataset", "variant", "seed", "device")  # not metrics


def run_path(metrics_dir: Path, dataset: str, variant: str, seed: int) -> Path:
    return Path(metrics_dir) / dataset / variant / str(seed) / "metrics.json"


def load_runs(metrics_dir: Path, run: RunConfig) -> pd.DataFrame:
    """One row per (dataset, variant, seed) of the run matrix, one column per metric.

    Only the runs named in params are read, so results of variants since removed from the run
    list never leak into the report.
    """
    rows = []
    for dataset in run.datasets:
        for variant in run.variants:
            for seed in run.seeds:
                path = run_path(metrics_dir, dataset, variant, seed)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{path} not found: evaluate@{dataset}-{variant}-{seed} has not run"
                    )
                result = json.loads(path.read_text())
                device = result["environment"]["device_name"]
                rows.append(
                    {"dataset": dataset, "variant": variant, "seed": seed, "device": device}
                    | result["metrics"]
                )
    return pd.DataFrame(rows)


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample standard deviation and seed count per (dataset, variant) and metric.

    Rows keep the run list's variant order; columns are a (metric, statistic) MultiIndex.
    """
    metric_columns = [c for c in runs.columns if c not in RUN_COLUMNS]
    grouped = runs.groupby(["dataset", "variant"], sort=False)[metric_columns]
    return grouped.agg(["mean", "std", "count"])


def flat_metrics(summary: pd.DataFrame, evaluators: dict[str, dict]) -> dict[str, float]:
    """``{dataset}.{variant}.{metric}.mean|std`` keys, the shape ``dvc metrics diff`` lists best,
    plus ``{dataset}.evaluator.*`` (its accuracy and the train-vs-test floor).

    Metrics a variant does not have (a sampler that does not apply) are left out, and so is the
    std where a single seed gives none.
    """
    flat: dict[str, float] = {}
    for (dataset, variant), row in summary.iterrows():
        for metric in row.index.get_level_values(0).unique():
            if row[(metric, "count")] == 0:
                continue
            prefix = f"{dataset}.{variant}.{metric}"
            flat[f"{prefix}.mean"] = float(row[(metric, "mean")])
            if row[(metric, "count")] > 1:
                flat[f"{prefix}.std"] = float(row[(metric, "std")])
    for dataset, evaluator in evaluators.items():
        flat[f"{dataset}.evaluator.test_accuracy"] = float(evaluator["test_accuracy"])
        for key, value in evaluator["floor"].items():
            flat[f"{dataset}.evaluator.{key}"] = float(value)
    return flat
