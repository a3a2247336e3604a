"""The environment a result was produced in, for the report's header."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import torch

from aebench.config import RunConfig
from aebench.report.results import run_path


def git_state() -> str:
    """``<commit> (dirty)`` of the working tree the report was rendered from, or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}{' (uncommitted changes)' if status else ''}"


def run_devices(metrics_dir: Path, run: RunConfig) -> list[str]:
    """The distinct devices the runs trained on, as recorded in their evaluation files."""
    names = set()
    for dataset in run.datasets:
        for variant in run.variants:
            for seed in run.seeds:
                result = json.loads(run_path(metrics_dir, dataset, variant, seed).read_text())
                names.add(result["environment"]["device_name"])
    return sorted(names)


def environment_header(metrics_dir: Path, run: RunConfig) -> str:
    cuda = torch.version.cuda or "none"
    return "\n".join(
        [
            f"- code: git {git_state()}",
            f"- torch {torch.__version__} (CUDA build: {cuda}), Python {platform.python_version()}",
            f"- training device(s): {', '.join(run_devices(metrics_dir, run))}",
        ]
    )
