"""Tuning: the generated runs file tuning/dvc.yaml iterates, and where the grids' runs live.

Every point of every tuning grid (params.yaml's ``tuning.grids``) is trained with each selection
seed (``tuning.seeds``, never a reporting seed) under ``tuning/`` and scored on the validation
split by the validate stage; the selection reads those scores. As for the studies, DVC cannot
expand the grids itself, so ``tuning/points.yaml`` is generated (and committed), and a copy
that no longer matches params.yaml is refused.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aebench.config import Params
from aebench.io import write_text

POINTS_FILE = Path("tuning/points.yaml")
TUNING_ROOT = Path("tuning")  # models/, history/, timings/, validation/ of the grids' runs
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
        f"{dataset}-{point}-{seed}": {"dataset": dataset, "variant": point, "seed": seed}
        for dataset in params.run.datasets
        for point in tuning.points
        for seed in tuning.seeds
    }


def render_points(params: Params) -> str:
    """The text of tuning/points.yaml for ``params`` (deterministic: sorted keys)."""
    k = params.tuning.importance_samples if params.tuning else 0
    body = {"runs": tuning_runs(params), "importance_samples": k}
    return HEADER + yaml.safe_dump(body, sort_keys=True, width=100)


def write_points(params: Params, root: Path = Path()) -> bool:
    """Rewrite tuning/points.yaml if it differs; returns whether it changed."""
    path = root / POINTS_FILE
    text = render_points(params)
    if path.is_file() and path.read_text() == text:
        return False
    write_text(path, text)
    return True


def check_points(params: Params, root: Path = Path()) -> None:
    """Raise :class:`StaleTuning` unless tuning/points.yaml matches params.yaml."""
    path = root / POINTS_FILE
    if not path.is_file() or path.read_text() != render_points(params):
        raise StaleTuning(
            f"{path} does not match params.yaml's tuning (or run.datasets): run "
            "`aebench tune` to rewrite it"
        )
