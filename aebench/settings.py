"""The resolved settings files each stage reads instead of params.yaml.

The ``settings`` stage validates params.yaml and writes, under ``settings/``, one small JSON file
per thing a stage computes: a dataset's split (``data/<dataset>.json``), its evaluator
(``evaluator/<dataset>.json``), a variant's training (``train/<variant>.json``) and evaluation
(``evaluate/<variant>.json``), a dataset's chain trace (``chain_trace/<dataset>.json``) and the
machine settings (``machine.json``). Each holds only the settings that determine its stage's
output, in canonical form, so its bytes change exactly when those settings do: an edit to the
schema's code or to an unrelated key rewrites identical bytes and DVC re-runs nothing
downstream. This module only reads them (no validation: they were validated when written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aebench.spec import (
    ChainConfig,
    DataConfig,
    EvaluateConfig,
    EvaluatorConfig,
    TrainConfig,
    VariantSpec,
    variant_from_dict,
)

SETTINGS_DIR = Path("settings")


def data_path(dataset: str, root: Path = SETTINGS_DIR) -> Path:
    return root / "data" / f"{dataset}.json"


def evaluator_path(dataset: str, root: Path = SETTINGS_DIR) -> Path:
    return root / "evaluator" / f"{dataset}.json"


def train_path(variant: str, root: Path = SETTINGS_DIR) -> Path:
    return root / "train" / f"{variant}.json"


def evaluate_path(variant: str, root: Path = SETTINGS_DIR) -> Path:
    return root / "evaluate" / f"{variant}.json"


def chain_trace_path(dataset: str, root: Path = SETTINGS_DIR) -> Path:
    return root / "chain_trace" / f"{dataset}.json"


def machine_path(root: Path = SETTINGS_DIR) -> Path:
    return root / "machine.json"


def read(path: Path) -> dict[str, Any]:
    """One settings file; a missing one means the settings stage has not run for it."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the settings stage writes it from params.yaml "
            "(`dvc repro settings`, or any `dvc repro`); is the dataset or variant in params.yaml?"
        )
    return json.loads(path.read_text())


def render(payload: dict[str, Any]) -> str:
    """The canonical text of a settings file: sorted keys, so equal settings are equal bytes."""
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def data_config(dataset: str) -> tuple[DataConfig, dict[str, Any]]:
    """The split settings of ``dataset`` (what its loader does not read at its default), and
    its source: ``{"format", "path", "sha256"}`` for a dataset from files, else empty."""
    payload = read(data_path(dataset))
    return DataConfig(**payload["split"]), payload.get("source", {})


def train_settings(variant: str) -> tuple[VariantSpec, TrainConfig, int | None]:
    """A variant's spec, its training settings (its own overrides applied) and the seed of its
    stratified training subset (None: it trains on the whole split)."""
    payload = read(train_path(variant))
    return (
        variant_from_dict(payload["variant"]),
        TrainConfig(**payload["train"]),
        payload.get("subset_seed"),
    )


def evaluate_config(variant: str) -> tuple[EvaluateConfig, dict[str, Any]]:
    """The evaluation settings a variant's evaluation reads (what it does not read is left at
    its default: it is absent from the file so that changing it re-runs nothing), and the
    machine settings."""
    payload = read(evaluate_path(variant))
    return evaluate_from_dict(payload["evaluate"]), payload["machine"]


def evaluate_from_dict(raw: dict[str, Any]) -> EvaluateConfig:
    fields = dict(raw)
    if "noise_grid" in fields:  # [kind, levels] pairs, in the order params.yaml gave
        fields["noise_grid"] = {kind: tuple(levels) for kind, levels in fields["noise_grid"]}
    if "samplers" in fields:
        fields["samplers"] = tuple(fields["samplers"])
    if "chain" in fields:
        fields["chain"] = ChainConfig(**fields["chain"])
    return EvaluateConfig(**fields)


def evaluator_config(dataset: str) -> tuple[EvaluatorConfig, int, str]:
    """The evaluator's settings, the batch size it scores with and the device setting."""
    payload = read(evaluator_path(dataset))
    return EvaluatorConfig(**payload["evaluator"]), payload["batch_size"], payload["device"]


def machine() -> dict[str, Any]:
    """``train.device`` and ``train.threads``: what the hardware record is taken for."""
    return read(machine_path())
