"""One training loop for every family: the model supplies its loss terms, the loop does the rest.

Each split lives on the training device as one float tensor and batches are index slices of it, so
no per-sample dataset objects sit on the hot path. On CPU the same params and seed give
bit-identical weights: every random draw (weight init, shuffling, corruption, reparameterisation)
comes from generators seeded by the run's seed, and torch's deterministic algorithms are on.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from aebench.config import ParamsError, TrainConfig, VariantSpec
from aebench.io import atomic_path
from aebench.models import Autoencoder, build_model
from aebench.noise import binarize
from aebench.runtime import make_deterministic

# Validation draws (corruption, reparameterisation noise) use a generator seeded from the run's
# seed plus this offset, identically every epoch, so epochs are compared on the same draws.
VALIDATION_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class TrainResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    seconds: float
    device: str


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """Per-epoch losses as CSV, the file DVC plots read."""
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")


def batch_objective(
    model: Autoencoder, images: torch.Tensor, batch_size: int, generator: torch.Generator
) -> dict[str, float]:
    """The training objective's terms averaged over ``images``, without gradients."""
    model.eval()
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=images.device))
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            for name, value in model.loss_terms(batch, generator).items():
                sums[name] += value * len(batch)
    return {name: (total / len(images)).item() for name, total in sums.items()}


def train_model(
    spec: VariantSpec,
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
    progress: bool = True,
) -> tuple[Autoencoder, TrainResult]:
    """Train with Adam; return the model at its best validation objective and the history."""
    device = train_images.device
    make_deterministic(seed)
    model = build_model(spec, tuple(train_images.shape[1:])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    generator = torch.Generator(device=device).manual_seed(seed)
    n_train = len(train_images)
    if spec.binarize == "dynamic":  # validation: one fixed binarisation, so epochs compare
        val_images = binarize(val_images, torch.Generator(device=device).manual_seed(seed))
    history: list[dict[str, float]] = []
    best_state, best_epoch, best_val = None, 0, float("inf")
    started = time.perf_counter()
    epochs = tqdm(range(1, cfg.epochs + 1), desc=spec.name, disable=not progress, unit="epoch")
    for epoch in epochs:
        model.train()
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=device))
        order = torch.randperm(n_train, generator=generator, device=device)
        for start in range(0, n_train, cfg.batch_size):
            batch = train_images[order[start : start + cfg.batch_size]]
            if spec.binarize == "dynamic":  # a fresh binarisation per batch (Burda et al. 2015)
                batch = binarize(batch, generator)
            terms = model.loss_terms(batch, generator)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            for name, value in terms.items():
                sums[name] += value.detach() * len(batch)
        val_generator = torch.Generator(device=device).manual_seed(seed + VALIDATION_SEED_OFFSET)
        val_terms = batch_objective(model, val_images, cfg.batch_size, val_generator)
        row = {"epoch": epoch}
        row.update({f"train_{name}": (total / n_train).item() for name, total in sums.items()})
        row.update({f"val_{name}": value for name, value in val_terms.items()})
        history.append(row)
        epochs.set_postfix(train=f"{row['train_loss']:.2f}", val=f"{row['val_loss']:.2f}")
        if val_terms["loss"] < best_val:
            best_val, best_epoch = val_terms["loss"], epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is None:
        raise ParamsError(
            f"train.lr: {cfg.lr} made variant {spec.name!r} diverge (the validation loss was "
            "never finite); allowed: a smaller learning rate"
        )
    model.load_state_dict(best_state)
    model.eval()
    result = TrainResult(
        history=history,
        best_epoch=best_epoch,
        best_val_loss=best_val,
        seconds=time.perf_counter() - started,
        device=str(device),
    )
    return model, result
