"""The environment a result was produced in, for the report's header.

These are the one place the report stage looks beyond its declared deps (git state, dvc.lock,
the machine): they describe the result, they do not change it. The CPU and GPU are read on the
machine that renders the report, which is the one that ran the pipeline under ``dvc repro``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

from aebench.config import DataConfig, EvaluateConfig, EvaluatorConfig, Params, TrainConfig

OUTPUTS = (":!dvc.lock", ":!reports", ":!history", ":!diagnostics", ":!timings", ":!evaluators")
OUTPUTS += (":!settings",)  # the settings stage's resolved files, rewritten by every run
# the full-MNIST section's own git-tracked outputs (full_mnist/dvc.yaml), likewise
OUTPUTS += (":!full_mnist/dvc.lock", ":!full_mnist/history", ":!full_mnist/diagnostics")


def git_state() -> str:
    """``<commit> (uncommitted changes)`` of the working tree, or ``unknown``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        # the pipeline's own git-tracked outputs change during a run by design
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
    """sha256 of the output hashes dvc.lock records for every stage but ``skip``: a fingerprint
    of the exact data, models and metrics the reported numbers came from. Code and params hashes
    are left out, like the wall-clock ``timings/`` files: an edit that leaves every result
    identical reruns no report, so it must not change the fingerprint either."""
    if not lock_path.is_file():
        return "none (no dvc.lock)"
    lock = yaml.safe_load(lock_path.read_text()) or {}
    outs = {
        out["path"]: out.get("md5")
        for name, stage in (lock.get("stages") or {}).items()
        if name != skip
        for out in stage.get("outs", [])
        if not out["path"].startswith(("timings/", "full_mnist/timings/"))
    }
    canonical = json.dumps(outs, sort_keys=True).encode()
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
    for dataset in params.run.datasets:  # a reported dataset's own split keys
        for key, value in params.dataset_splits.get(dataset, {}).items():
            changed.append(f"`datasets.{dataset}.{key}: {value}` (in place of data.*)")
    return changed


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name: /proc/cpuinfo on Linux, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(params: Params, devices: list[str]) -> dict[str, Any]:
    """What the numbers may depend on beyond code, data and params: CPU model and the SIMD
    kernels torch picks on it, the thread count fp32 sums are split over, the GPU, versions.

    No clock time: the report must read the same when re-rendered from the same inputs.
    """
    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": params.train.threads,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "devices": devices,
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda or "none",
        "python": platform.python_version(),
    }


def environment_lines(
    params: Params, devices: list[str], lock_path: Path = Path("dvc.lock")
) -> list[str]:
    info = machine(params, devices)
    changed = params_differing_from_defaults(params)
    return [
        f"code: git {git_state()}",
        f"results fingerprint (dvc.lock output hashes of every stage before the report): "
        f"`{pipeline_lock_hash(lock_path)}`",
        f"torch {info['torch']} (CUDA build {info['cuda_build']}), Python {info['python']}",
        f"CPU: {info['cpu_model']} (torch CPU capability {info['cpu_capability']}); torch "
        f"threads in training: {info['torch_threads']} (`train.threads`); GPU: {info['gpu']}",
        f"training device(s): {', '.join(devices)}",
        "params changed from the defaults: " + ("; ".join(changed) if changed else "none"),
        *external_family_lines(params),
    ]


def external_family_lines(params: Params) -> list[str]:
    """One line per family from outside aebench that a compared variant uses: its module file's
    sha256 or its installed package's version, so a reader knows which code made the row."""
    from aebench.models.registry import family_source

    families = dict.fromkeys(params.variant(name).family for name in params.run.variants)
    lines = []
    for family in families:
        source = family_source(family)
        if "file" in source:
            lines.append(f"family `{family}`: {source['file']} (sha256 {source['sha256'][:16]})")
        elif source:
            lines.append(f"family `{family}`: package {source['package']} {source['version']}")
    return lines
