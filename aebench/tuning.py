"""Tuning: the generated runs file tuning/dvc.yaml iterates, and where the grids' runs live.

Every point of every tuning grid (params.yaml's ``tuning.grids``) is trained with each selection
seed (``tuning.seeds``, never a reporting seed) under ``tuning/`` and scored on the validation
split by the validate stage; the selection reads those scores. As for the studies, DVC cannot
expand the grids itself, so ``tuning/points.yaml`` is generated (and committed), and a copy
that no longer matches params.yaml is refused.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from aebench.config import Params, StudySpec
from aebench.io import write_text

POINTS_FILE = Path("tuning/points.yaml")
FINAL_FILE = Path("tuning/final.yaml")  # the selected settings' runs with the reporting seeds
SELECTED_FILE = Path("tuning/selected.json")
TUNING_ROOT = Path("tuning")  # models/, history/, timings/, validation/ of the grids' runs
SELECT_STAGE = "tuning/dvc.yaml:select_tuning"
# the first pass's stage groups, whose outputs `aebench tune --from-validation` takes as the
# workspace holds them: the committed scores select, the grid's models are never needed again
GRID_STAGES = frozenset(
    {"tuning/dvc.yaml:train_tuning", "tuning/dvc.yaml:validate_tuning", SELECT_STAGE}
)
HEADER = (
    "# Generated from params.yaml (tuning, run.datasets): the runs tuning/dvc.yaml iterates.\n"
    "# Do not edit; a stale copy is refused.\n"
)


class StaleTuning(RuntimeError):
    """tuning/points.yaml no longer matches params.yaml."""


def tuning_runs(params: Params) -> dict[str, dict[str, str | int]]:
    """Every (dataset, grid point, selection seed), keyed by the stage-name suffix DVC shows."""
    tuning = params.tuning
    if tuning is None:
        return {}
    return {
        key: entry
        for dataset in params.run.datasets
        for point in tuning.points
        for key, entry in _runs_of(dataset, point, tuning.seeds).items()
    }


def _runs_of(dataset: str, point: str, seeds: tuple[int, ...]) -> dict[str, dict[str, str | int]]:
    """One point's runs, keyed by the stage-name suffix DVC shows (``<dataset>-<point>-<seed>``)."""
    return {
        f"{dataset}-{point}-{seed}": {"dataset": dataset, "variant": point, "seed": seed}
        for seed in seeds
    }


def render_points(params: Params) -> str:
    """The text of tuning/points.yaml for ``params`` (deterministic: sorted keys)."""
    k = params.tuning.importance_samples if params.tuning else 0
    body = {"runs": tuning_runs(params), "importance_samples": k}
    return HEADER + yaml.safe_dump(body, sort_keys=True, width=100)


def _rewrite(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds it; returns whether it changed."""
    if path.is_file() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def write_points(params: Params, root: Path = Path()) -> bool:
    """Rewrite tuning/points.yaml if it differs; returns whether it changed."""
    return _rewrite(root / POINTS_FILE, render_points(params))


def check_points(params: Params, root: Path = Path()) -> None:
    """Raise :class:`StaleTuning` unless tuning/points.yaml matches params.yaml."""
    path = root / POINTS_FILE
    if not path.is_file() or path.read_text() != render_points(params):
        raise StaleTuning(
            f"{path} does not match params.yaml's tuning (or run.datasets): run "
            "`aebench tune` to rewrite it"
        )


# --- selection ---------------------------------------------------------------------------------

TASK_SCORES = {
    "reconstruction": ("val_recon_mse",),
    "generation": ("val_sample_gmm_fd",),
    "likelihood": ("val_nll_iw", "val_gaussian_nll_iw"),  # by the decoder's likelihood
}
"""Each tuning task and the validation scores (lower is better) it may select on: the first
that every point of a grid has. Each is its test metric's name with ``val_`` in front."""


def task_score(task: str, points: dict[str, dict[str, float]]) -> str | None:
    """The validation score ``task`` selects on in a grid whose points scored ``points`` (None
    where the task does not apply, e.g. likelihood without a posterior)."""
    return next((key for key in TASK_SCORES[task] if all(key in s for s in points.values())), None)


class SelectionError(ValueError):
    """No grid point has a finite score for the task."""


def select_point(scores: dict[str, float], score: str) -> str:
    """The grid point with the lowest validation ``score`` (``scores``: point -> score, in the
    grid's declared order). NaN scores (a diverged run) never win; a tie goes to the point
    declared first, so the choice does not depend on dictionary order elsewhere."""
    finite = {point: s for point, s in scores.items() if not math.isnan(s)}
    if not finite:
        raise SelectionError(
            f"no grid point has a finite {score} to select on "
            f"({len(scores)} point(s), all NaN or none)"
        )
    best = min(finite.values())
    return next(point for point, s in finite.items() if s == best)


def validation_path(root: Path, dataset: str, point: str, seed: int) -> Path:
    return root / "validation" / dataset / point / f"{seed}.json"


def _validation_payloads(
    params: Params, dataset: str, root: Path = TUNING_ROOT
) -> dict[str, dict[str, list[dict]]]:
    """Per grid (variant) and point, the validate stage's payload of each selection seed; a
    missing run is named."""
    tuning = params.tuning
    assert tuning is not None
    out: dict[str, dict[str, list[dict]]] = {}
    for variant, grid in tuning.grids.items():
        out[variant] = {}
        for point in grid.variant_names:
            per_seed = []
            for seed in tuning.seeds:
                path = validation_path(root, dataset, point, seed)
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{path} not found: grid {variant!r} needs {point} seed {seed}; "
                        "run `aebench tune`"
                    )
                per_seed.append(json.loads(path.read_text()))
            out[variant][point] = per_seed
    return out


def _mean_scores(per_seed: list[dict]) -> dict[str, float]:
    """Each score every seed has, averaged over the seeds (NaN if any seed's is NaN)."""
    scores = [payload["scores"] for payload in per_seed]
    keys = set.intersection(*(set(s) for s in scores))
    return {k: sum(s[k] for s in scores) / len(scores) for k in sorted(keys)}


def _validation_images(points: dict[str, list[dict]]) -> int | None:
    """How many validation images scored a grid (the selection's noise depends on it); None
    where its runs disagree or did not say."""
    counts = {payload.get("validation_images") for runs in points.values() for payload in runs}
    return counts.pop() if len(counts) == 1 else None


def select_settings(params: Params, root: Path = TUNING_ROOT) -> dict:
    """Per dataset and grid: every point's setting and mean scores, and per task the point with
    the lowest mean validation score (:func:`select_point`). A task is
    selected where every point of the grid has its score (the likelihood task: families with a
    posterior)."""
    tuning = params.tuning
    assert tuning is not None
    out: dict = {}
    for dataset in params.run.datasets:
        payloads = _validation_payloads(params, dataset, root)
        for variant, grid in tuning.grids.items():
            settings = _point_settings(grid)
            points = {p: _mean_scores(runs) for p, runs in payloads[variant].items()}
            selected = {}
            for task in TASK_SCORES:
                key = task_score(task, points)
                if key is not None:
                    selected[task] = select_point({p: s[key] for p, s in points.items()}, key)
            out.setdefault(dataset, {})[variant] = {
                "key": grid.key,
                "by": None if grid.by is None else grid.by[0],
                "points": {p: {**settings[p], "scores": points[p]} for p in points},
                "selected": selected,
                "validation_images": _validation_images(payloads[variant]),
            }
    return out


def _point_settings(grid: StudySpec) -> dict[str, dict[str, float | int | None]]:
    """Each point's value of the grid's key and, for a grid with a by-key, of that key."""
    out: dict[str, dict[str, float | int | None]] = {}
    for curve in grid.curves:
        for value, point in curve.points:
            entry: dict[str, float | int | None] = {"value": value}
            if grid.by is not None:
                entry["by_value"] = curve.by_value
            out.setdefault(point, entry)
    return out


# --- the selected settings, trained with the reporting seeds -----------------------------------


def final_runs(params: Params, selected: dict) -> dict[str, dict[str, str | int]]:
    """Every selected point (any task) with every reporting seed, keyed like the grid runs; a
    point that is a variant of run.variants has those runs already (the default pipeline)."""
    runs: dict[str, dict[str, str | int]] = {}
    for dataset, grids in selected.items():
        chosen = [p for grid in grids.values() for p in grid["selected"].values()]
        for point in dict.fromkeys(chosen):
            if point not in params.run.variants:
                runs |= _runs_of(dataset, point, params.run.seeds)
    return runs


def render_final(runs: dict[str, dict[str, str | int]]) -> str:
    header = (
        "# Generated by `aebench tune` from tuning/selected.json: the selected settings' runs\n"
        "# with the reporting seeds (run.seeds). Do not edit.\n"
    )
    return header + yaml.safe_dump({"final_runs": runs}, sort_keys=True, width=100)


def write_final(runs: dict[str, dict[str, str | int]], root: Path = Path()) -> bool:
    """Rewrite tuning/final.yaml if it differs; returns whether it changed."""
    (root / TUNING_ROOT / "metrics").mkdir(parents=True, exist_ok=True)  # the report's dependency
    return _rewrite(root / FINAL_FILE, render_final(runs))
