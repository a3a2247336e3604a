"""The environment a result was produced in, for the report's header.

These are the one place the report stage looks beyond its declared deps (git state, dvc.lock):
they describe the result, they do not change it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

from aebench.config import DataConfig, EvaluateConfig, EvaluatorConfig, Params, TrainConfig

OUTPUTS = (":!dvc.lock", ":!reports", ":!history")


def git_state() -> str:
    """``<commit> (uncommitted changes)`` of the working tree, or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # the pipeline's own outputs (dvc.lock, reports/, history/) change during a run by design
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *OUTPUTS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout with commits)"
    return f"{commit}{' (with uncommitted changes)' if status else ' (clean)'}"


def pipeline_lock_hash(lock_path: Path = Path("dvc.lock"), skip: str = "report") -> str:
    """sha256 of dvc.lock's entries for every stage but ``skip``: a fingerprint of the exact
    code, params and data hashes the reported numbers came from."""
    if not lock_path.is_file():
        return "none (no dvc.lock)"
    lock = yaml.safe_load(lock_path.read_text()) or {}
    stages = {k: v for k, v in (lock.get("stages") or {}).items() if k != skip}
    canonical = json.dumps(stages, sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(f"{prefix}.{key}", item))
        return out
    if isinstance(value, tuple):
        value = list(value)
    return {prefix: value}


def params_differing_from_defaults(params: Params) -> list[str]:
    """``key: value (default: d)`` for every tunable outside the run matrix that was changed."""
    changed = []
    for section, default in (
        ("data", DataConfig()),
        ("train", TrainConfig()),
        ("evaluator", EvaluatorConfig()),
        ("evaluate", EvaluateConfig()),
    ):
        current = _flatten(section, getattr(params, section))
        defaults = _flatten(section, default)
        for key, value in current.items():
            if defaults.get(key) != value:
                changed.append(f"`{key}: {value}` (default {defaults.get(key)})")
    return changed


def environment_lines(params: Params, devices: list[str]) -> list[str]:
    cuda = torch.version.cuda or "none"
    changed = params_differing_from_defaults(params)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"code: git {git_state()}",
        f"pipeline fingerprint (dvc.lock without the report stage): `{pipeline_lock_hash()}`",
        f"torch {torch.__version__} (CUDA build {cuda}), Python {platform.python_version()}",
        f"training device(s): {', '.join(devices)}",
        f"rendered: {now}",
        "params changed from the defaults: " + ("; ".join(changed) if changed else "none"),
    ]
