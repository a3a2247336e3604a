"""One training loop for every family: the model supplies its loss terms, the loop does the rest.

Models are early-stopped on validation: training stops when the validation objective has not
improved by more than ``train.min_delta`` nats for ``train.patience`` epochs (``train.max_epochs``
is only a cap, reported when reached), and the checkpoint kept is the one with the lowest
validation objective. Whether that checkpoint had converged is a separate, stated rule
(:func:`convergence_record`), and what early stopping did is measured the same way for every
family: the kept model's objective on a fixed training subset against its validation objective.

Each split lives on the training device as one float tensor and batches are index slices of it, so
no per-sample dataset objects sit on the hot path; the loop makes no host sync inside an epoch. On
CPU the same params, seed and thread count give bit-identical weights: every random draw (weight
init, shuffling, corruption, reparameterisation) comes from generators seeded by the run's seed,
and torch's deterministic algorithms are on.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path

import torch

from aebench.errors import ParamsError
from aebench.io import atomic_path
from aebench.models import Autoencoder, build_model
from aebench.noise import binarize
from aebench.runtime import make_deterministic
from aebench.spec import TrainConfig, VariantSpec

# Validation draws (corruption, reparameterisation noise) use a generator seeded from the run's
# seed plus this offset, identically every epoch, so epochs are compared on the same draws.
VALIDATION_SEED_OFFSET = 1_000_003
# The convergence record: how much the validation objective still fell over this many epochs
# before the best one (a curve that has flattened shows a small gain).
GAIN_WINDOW = 10
# The training images the kept model is re-scored on (as many as the validation split), drawn by
# this fixed seed: the same images for every variant and seed, apart from the training stream.
TRAIN_SUBSET_SEED = 2_000_003


@dataclass(frozen=True)
class Convergence:
    """Where and why a run stopped, as recorded in train.json and the report."""

    best_epoch: int
    best_val_loss: float
    stop_epoch: int
    stop_reason: str  # "patience" (early-stopped) or "cap" (train.max_epochs reached)
    val_gain_10: float  # nats the validation objective fell over the GAIN_WINDOW epochs before best
    val_gain_10_rel: float  # the same, relative to |best validation objective|
    converged: bool  # stopped by patience on a flat curve: val_gain_10 <= GAIN_WINDOW × min_delta
    lr_reductions: int  # times the plateau schedule cut the learning rate before the stop
    train_subset_loss: float = math.nan  # the kept model's objective on the fixed training subset

    def as_dict(self) -> dict[str, float | int | str]:
        return {
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stop_epoch": self.stop_epoch,
            "stop_reason": self.stop_reason,
            "stopped_at_cap": float(self.stop_reason == "cap"),
            "val_gain_10": self.val_gain_10,
            "val_gain_10_rel": self.val_gain_10_rel,
            "converged": float(self.converged),
            "lr_reductions": self.lr_reductions,
            "train_subset_loss": self.train_subset_loss,
            "val_train_gap": self.best_val_loss - self.train_subset_loss,
        }


@dataclass(frozen=True)
class TrainResult:
    history: list[dict[str, float]]
    convergence: Convergence
    seconds: float  # wall clock: goes to timing files only, never into a stage's outputs
    device: str

    @property
    def best_epoch(self) -> int:
        return self.convergence.best_epoch

    @property
    def best_val_loss(self) -> float:
        return self.convergence.best_val_loss


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """Per-epoch losses as CSV, the file DVC plots read."""
    import pandas as pd  # only the stage needs it; keeps `import aebench.train` light

    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False, float_format="%.6g")


def batch_objective(
    model: Autoencoder, images: torch.Tensor, batch_size: int, generator: torch.Generator
) -> dict[str, float]:
    """The training objective's terms averaged over ``images``, without gradients."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    # no_grad, not inference_mode: the contractive AE's objective differentiates its encoder
    # with respect to the input even here, which inference mode forbids
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            for name, value in model.loss_terms(batch, generator).items():
                sums[name] = sums.get(name, 0.0) + value.float() * len(batch)
    return {name: (total / len(images)).item() for name, total in sums.items()}


def convergence_record(
    history: list[dict[str, float]], best_epoch: int, stop_reason: str, min_delta: float
) -> Convergence:
    """Summarise a finished run: best and stop epochs, the validation gain before the best, and
    the stated rule for "converged": stopped by patience, and over the GAIN_WINDOW epochs before
    its best the validation objective fell by at most ``min_delta`` per epoch on average (a
    run stopped early while its curve still fell is "early-stopped", not converged)."""
    val = [row["val_loss"] for row in history]
    best = val[best_epoch - 1]
    before = val[max(0, best_epoch - 1 - GAIN_WINDOW)]
    gain = before - best
    rates = [row["lr"] for row in history]
    return Convergence(
        best_epoch=best_epoch,
        best_val_loss=best,
        stop_epoch=len(history),
        stop_reason=stop_reason,
        val_gain_10=gain,
        val_gain_10_rel=gain / abs(best) if best else math.nan,
        converged=stop_reason == "patience" and gain <= GAIN_WINDOW * min_delta,
        lr_reductions=sum(later < earlier for earlier, later in pairwise(rates)),
    )


def training_subset_objective(
    model: Autoencoder,
    train_images: torch.Tensor,
    count: int,
    spec: VariantSpec,
    cfg: TrainConfig,
    seed: int,
) -> float:
    """The kept model's objective on ``count`` fixed training images, scored exactly as the
    validation images are (eval mode, the validation draws, one fixed binarisation), so that
    validation − this is the generalisation gap for every family alike; the running training
    mean would mix in corruption, sampling noise and the weights of earlier batches."""
    device = train_images.device
    pick = torch.Generator().manual_seed(TRAIN_SUBSET_SEED)
    order = torch.randperm(len(train_images), generator=pick)[:count].to(device)
    images = train_images[order]
    if spec.binarize == "dynamic":
        images = binarize(images, torch.Generator(device=device).manual_seed(seed))
    generator = torch.Generator(device=device).manual_seed(seed + VALIDATION_SEED_OFFSET)
    with autocast(device, cfg.precision):
        return batch_objective(model, images, cfg.batch_size, generator)["loss"]


class EarlyStopping:
    """Patience on the validation objective: stop after ``patience`` epochs in a row in which it
    did not fall more than ``min_delta`` below the value at the last such improvement. Smaller
    gains still update the kept checkpoint (the lowest value wins) but do not reset patience, so
    a curve that creeps down by less than ``min_delta`` per epoch counts as flat."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.reference, self.stale = math.inf, 0

    def update(self, value: float) -> bool:
        """Record one epoch's validation value; True when training should stop."""
        if value < self.reference - self.min_delta:
            self.reference, self.stale = value, 0
        else:
            self.stale += 1
        return self.stale >= self.patience


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with its fused kernel: one pass over all parameters per step instead of a handful of
    elementwise ops per tensor (measured ~1.2× on CPU at batch 100, where the update costs about
    as much as the matrix products); same update rule, deterministic."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast for the forward pass when asked for; fp32 otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_model(
    spec: VariantSpec,
    train_images: torch.Tensor,
    val_images: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
    progress: bool = True,
) -> tuple[Autoencoder, TrainResult]:
    """Train with Adam until the validation objective stops improving; return the model at its
    best validation objective and the history."""
    device = train_images.device
    make_deterministic(seed, cfg.threads)
    # Subnormal floats take a slow path on x86 CPUs, and Adam's first moments of weights whose
    # gradient stays zero (MNIST's blank border pixels, dead ReLUs) decay into that range: from
    # about epoch 20 an AE's epoch went from 0.21 s to 0.49 s at one thread. Flushed to zero it
    # stays at 0.21 s, and the 40 default checkpoints came out byte-identical.
    torch.set_flush_denormal(True)
    model = build_model(spec, tuple(train_images.shape[1:])).to(device)
    optimizer = make_optimizer(model, cfg)
    plateau = None
    if cfg.lr_plateau_factor is not None:
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            factor=cfg.lr_plateau_factor,
            patience=cfg.lr_plateau_patience,
            threshold=cfg.min_delta,
            threshold_mode="abs",
        )
    generator = torch.Generator(device=device).manual_seed(seed)
    n_train = len(train_images)
    if spec.binarize == "dynamic":  # validation: one fixed binarisation, so epochs compare
        val_images = binarize(val_images, torch.Generator(device=device).manual_seed(seed))
    history: list[dict[str, float]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, best_val = 0, math.inf
    stopping = EarlyStopping(cfg.patience, cfg.min_delta)
    stop_reason = "cap"
    started = time.perf_counter()
    epochs = range(1, cfg.max_epochs + 1)
    if progress:
        from tqdm import tqdm  # only for interactive runs; keeps imports light for tests

        epochs = tqdm(epochs, desc=spec.name, unit="epoch")
    for epoch in epochs:
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]}
        row.update(_train_epoch(model, optimizer, train_images, cfg, spec, generator, n_train))
        val_generator = torch.Generator(device=device).manual_seed(seed + VALIDATION_SEED_OFFSET)
        with autocast(device, cfg.precision):
            val_terms = batch_objective(model, val_images, cfg.batch_size, val_generator)
        row.update({f"val_{name}": value for name, value in val_terms.items()})
        history.append(row)
        val_loss = val_terms["loss"]
        if progress:
            epochs.set_postfix(train=f"{row['train_loss']:.2f}", val=f"{val_loss:.2f}")
        if val_loss < best_val:
            best_val, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if plateau is not None:
            plateau.step(val_loss)
        if stopping.update(val_loss):
            stop_reason = "patience"
            break
    if best_state is None:
        raise ParamsError(
            f"train.lr: {cfg.lr} made variant {spec.name!r} diverge (the validation loss was "
            "never finite); allowed: a smaller learning rate"
        )
    model.load_state_dict(best_state)
    model.eval()
    subset = min(len(val_images), n_train)
    convergence = replace(
        convergence_record(history, best_epoch, stop_reason, cfg.min_delta),
        train_subset_loss=training_subset_objective(model, train_images, subset, spec, cfg, seed),
    )
    result = TrainResult(
        history=history,
        convergence=convergence,
        seconds=time.perf_counter() - started,
        device=str(device),
    )
    return model, result


def _train_epoch(
    model: Autoencoder,
    optimizer: torch.optim.Optimizer,
    train_images: torch.Tensor,
    cfg: TrainConfig,
    spec: VariantSpec,
    generator: torch.Generator,
    n_train: int,
) -> dict[str, float]:
    """One pass over shuffled mini-batches; the loss terms' means over the epoch."""
    model.train()
    device = train_images.device
    sums: dict[str, torch.Tensor] = {}
    order = torch.randperm(n_train, generator=generator, device=device)
    for start in range(0, n_train, cfg.batch_size):
        batch = train_images[order[start : start + cfg.batch_size]]
        if spec.binarize == "dynamic":  # a fresh binarisation per batch (Burda et al. 2015)
            batch = binarize(batch, generator)
        with autocast(device, cfg.precision):
            terms = model.loss_terms(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        with torch.no_grad():
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float() * len(batch)
    return {f"train_{name}": (total / n_train).item() for name, total in sums.items()}
