"""Settings of the per-dataset stages that score every run of a dataset at once (``chain``,
``memorisation``): where the settings stage writes them, and the chain's settings
(params.yaml's ``evaluate.chain``). A module of its own, free of torch, so the params schema and
the resolver read it without importing the samplers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

JACKKNIFE_GROUPS = 20  # chains are split into this many groups for the standard errors


@dataclass(frozen=True)
class MixingConfig:
    """How the chain is traced and sampled (see :mod:`aebench.chain_mixing`)."""

    chains: int = 100  # parallel chains: fewer than the samples, each gives several draws
    thin: int = 5  # steps between two draws of one chain
    trace_steps: int = 1000  # the trace the burn-in is chosen on
    window: int = 100  # steps per window of the stationarity rule

    def __post_init__(self) -> None:
        problem = mixing_problem(self.chains, self.thin, self.trace_steps, self.window)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")

    @property
    def windows(self) -> int:
        return self.trace_steps // self.window


def mixing_problem(chains: int, thin: int, trace_steps: int, window: int) -> tuple[str, str] | None:
    """The first chain setting that does not fit the others, and why; None when they fit."""
    if window % thin:
        return "window", f"{window} must be a multiple of thin ({thin})"
    if trace_steps % window:
        return "trace_steps", f"{trace_steps} must be a multiple of window ({window})"
    if trace_steps // window < 4:
        return "trace_steps", (
            f"{trace_steps} must hold at least 4 windows of {window} steps (the rule compares "
            "the second half of the trace with its last window)"
        )
    if chains < 2 * JACKKNIFE_GROUPS:
        return "chains", (
            f"{chains} is too few: at least {2 * JACKKNIFE_GROUPS}, as the standard errors come "
            f"from {JACKKNIFE_GROUPS} groups of chains"
        )
    return None


def settings_path(
    stage: str, dataset: str, section: Path = Path("."), root: Path = Path("settings")
) -> Path:
    """settings/<stage>/<dataset>.json for the default run; settings/<stage>/<section>/
    <dataset>.json for a section with its own models (``full_mnist``)."""
    return root / stage / section / f"{dataset}.json"
