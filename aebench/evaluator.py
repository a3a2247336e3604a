"""A small per-dataset CNN classifier whose feature space the sample-quality metrics live in.

Fréchet distance, precision/recall and density/coverage need an embedding in which "looks like a
real digit" means "is close to real digits"; Inception features are meaningless for 8×8 or 28×28
greyscale images, so each dataset gets its own classifier, trained once with a fixed seed and
independently of the autoencoders. Its penultimate layer gives the features, its predictions the
class-based metrics (e.g. how evenly generated samples cover the classes).

Training follows :mod:`aebench.train`: each split lives on the device as one tensor, batches are
index slices drawn with a seeded ``torch.Generator``, and on CPU the same seed gives bit-identical
weights. Checkpoints are plain dicts that load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from aebench.io import save_torch
from aebench.runtime import make_deterministic

# Defaults settled on by measurement on a 2-core CPU (seeds 0-3): 98.0-98.2% test accuracy on
# mnist5k (20 epochs, 20-27 s) and 98.1-99.7% on digits (40 epochs, 7-9 s). Small training sets
# get more epochs so that every dataset sees at least DEFAULT_MIN_STEPS optimizer steps (digits
# has only 20 batches an epoch).
DEFAULT_EPOCHS = 20
DEFAULT_MIN_STEPS = 800
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 2e-3
SHIFT_PER_28_PIXELS = 2  # ±2 pixels on a 28×28 image; scaled to other sizes, at least 1
FEATURE_DIM = 128
MIN_SIDE = 8  # the first 2× pooling still leaves a 4×4 map
CHECKPOINT_FORMAT = 1


class _PoolIfLarge(nn.Module):
    """2× max-pool, skipped once the map is smaller than ``min_side``: 8×8 digits keep a 4×4 map
    for the last block instead of a 2×2 one, 28×28 and 32×32 images are pooled as usual."""

    def __init__(self, min_side: int = 8) -> None:
        super().__init__()
        self.min_side = min_side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2) if min(x.shape[2:]) >= self.min_side else x


class _GridAvgPool(nn.Module):
    """``F.adaptive_avg_pool2d(x, grid)`` written as two small matmuls with the same bins.

    CUDA's adaptive-average-pool backward is non-deterministic (atomic adds); matmuls are
    deterministic under the cuBLAS workspace setting ``make_deterministic`` sets, so training
    reproduces on GPU as well as on CPU.
    """

    def __init__(self, grid: int) -> None:
        super().__init__()
        self.grid = grid

    def _bins(self, size: int, like: torch.Tensor) -> torch.Tensor:
        weights = torch.zeros(self.grid, size, dtype=like.dtype, device=like.device)
        for i in range(self.grid):
            start, end = (i * size) // self.grid, -(-((i + 1) * size) // self.grid)
            weights[i, start:end] = 1.0 / (end - start)
        return weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self._bins(x.shape[2], x), self._bins(x.shape[3], x)
        return torch.einsum("gh,nchw,kw->ncgk", rows, x, cols)


class EvaluatorNet(nn.Module):
    """Three conv blocks (BatchNorm, ReLU, 2× max-pools), adaptive pooling, a feature layer.

    Adaptive average pooling to a fixed ``grid``×``grid`` map makes the same architecture work
    for any C×H×W with H, W ≥ 8, so 8×8 digits, 28×28 MNIST-likes and 32×32 CIFAR share it.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int = 10,
        feature_dim: int = FEATURE_DIM,
        width: int = 16,
        grid: int = 4,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "in_channels": int(in_channels),
            "num_classes": int(num_classes),
            "feature_dim": int(feature_dim),
            "width": int(width),
            "grid": int(grid),
            "dropout": float(dropout),
        }

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        self.trunk = nn.Sequential(
            *block(in_channels, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            _PoolIfLarge(),
            *block(2 * width, 4 * width),
            _GridAvgPool(grid),
            nn.Flatten(),
            nn.Linear(4 * width * grid * grid, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim, num_classes)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(
                f"expected N×{self.config['in_channels']}×H×W images, got shape {tuple(x.shape)}"
            )
        if min(x.shape[2:]) < MIN_SIDE:
            raise ValueError(f"images must be at least {MIN_SIDE}×{MIN_SIDE}, got {tuple(x.shape)}")
        return self.trunk(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """N×feature_dim penultimate activations; eval mode only, so BatchNorm uses running
        statistics and an image's features do not depend on the rest of its batch."""
        if self.training:
            raise RuntimeError("EvaluatorNet.features needs eval mode: call model.eval() first")
        return self._embed(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N×num_classes)."""
        return self.classifier(self.dropout(self._embed(x)))


def default_epochs(n_train: int, batch_size: int) -> int:
    """At least DEFAULT_EPOCHS, more for small sets so training gets DEFAULT_MIN_STEPS updates."""
    steps_per_epoch = -(-n_train // batch_size)
    return max(DEFAULT_EPOCHS, -(-DEFAULT_MIN_STEPS // steps_per_epoch))


def default_max_shift(height: int, width: int) -> int:
    """±2 pixels at MNIST's 28×28, the same fraction of the side elsewhere (±1 on 8×8 digits,
    where ±2 would move a stroke a quarter of the image and cost accuracy)."""
    return max(1, round(SHIFT_PER_28_PIXELS * min(height, width) / 28))


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random offset in [-max_shift, max_shift]² (zero fill).

    Padding plus a per-image crop, done with one gather so it stays on the images' device and
    draws only from ``generator`` (reproducible). Values are copied, never mixed, so the pixel
    range is kept.
    """
    if max_shift <= 0:
        return images
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=device)
    rows = offsets[0][:, None] + torch.arange(h, device=device)  # N×H
    cols = offsets[1][:, None] + torch.arange(w, device=device)  # N×W
    return padded[
        torch.arange(n, device=device)[:, None, None, None],
        torch.arange(c, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


@torch.no_grad()
def _logits_all(model: EvaluatorNet, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = next(model.parameters()).device
    return torch.cat(
        [model(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
    )


def train_evaluator(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    augment: bool = True,
    progress: bool = False,
    *,
    max_shift: int | None = None,
    num_classes: int | None = None,
    feature_dim: int = FEATURE_DIM,
    width: int = 16,
) -> tuple[EvaluatorNet, dict[str, Any]]:
    """Train the classifier with Adam (cosine-decayed lr); return it at its best validation
    accuracy (ties: lower validation loss) in eval mode, plus a plain-typed info dict with no
    wall-clock value (it goes into the checkpoint and evaluator.json, which must not change
    between reruns; the stage times training itself).

    ``train_x``/``val_x`` are float images in [0, 1] on the training device (as
    :func:`aebench.data.to_float` makes them); labels are int64 tensors. ``epochs`` defaults to
    :func:`default_epochs`. Augmentation shifts each training image by up to ±``max_shift``
    pixels (default :func:`default_max_shift`), which matters for small training sets like
    mnist5k's 3,500 images.
    """
    device = train_x.device
    train_y = torch.as_tensor(train_y, dtype=torch.int64, device=device)
    val_y = torch.as_tensor(val_y, dtype=torch.int64, device=device)
    val_x = val_x.to(device)
    n_train = len(train_x)
    if epochs is None:
        epochs = default_epochs(n_train, batch_size)
    if max_shift is None:
        max_shift = default_max_shift(*train_x.shape[2:])
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be ≥ 1, got {epochs} and {batch_size}")
    if num_classes is None:
        num_classes = int(max(train_y.max().item(), val_y.max().item())) + 1
    make_deterministic(seed)
    model = EvaluatorNet(train_x.shape[1], num_classes, feature_dim, width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-n_train // batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    generator = torch.Generator(device=device).manual_seed(seed)
    history: list[dict[str, float]] = []
    best_state, best_epoch, best_key = None, 0, (-1.0, 0.0)
    bar = tqdm(range(1, epochs + 1), desc="evaluator", disable=not progress, unit="epoch")
    for epoch in bar:
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        order = torch.randperm(n_train, generator=generator, device=device)
        for start in range(0, n_train, batch_size):
            index = order[start : start + batch_size]
            batch, labels = train_x[index], train_y[index]
            if augment:
                batch = random_shift(batch, max_shift, generator)
            logits = model(batch)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.detach() * len(index)
            correct += (logits.detach().argmax(1) == labels).sum()
        model.eval()
        val_logits = _logits_all(model, val_x, 500)
        val_loss = F.cross_entropy(val_logits, val_y).item()
        val_acc = (val_logits.argmax(1) == val_y).sum().item() / len(val_y)
        row = {
            "epoch": epoch,
            "train_loss": (loss_sum / n_train).item(),
            "train_accuracy": (correct.float() / n_train).item(),
            "val_loss": val_loss,
            "val_accuracy": val_acc,
        }
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{val_acc:.4f}")
        if (val_acc, -val_loss) > best_key:
            best_key, best_epoch = (val_acc, -val_loss), epoch
            best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    info = {
        "seed": int(seed),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "augment": bool(augment),
        "max_shift": int(max_shift),
        "image_shape": [int(s) for s in train_x.shape[1:]],
        "n_train": int(n_train),
        "best_epoch": best_epoch,
        "best_val_accuracy": best_key[0],
        "best_val_loss": -best_key[1],
        "device": str(device),
        "history": history,
    }
    return model, info


@torch.no_grad()
def features_and_predictions(
    model: EvaluatorNet, images: torch.Tensor, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features (float64, N×feature_dim) and predicted labels (int64, N), batched so
    large sets of real or generated images fit in memory; float64 because the Fréchet distance
    needs covariance square roots that are unstable in float32."""
    model.eval()
    device = next(model.parameters()).device
    feats, preds = [], []
    for start in range(0, len(images), batch_size):
        f = model.features(images[start : start + batch_size].to(device))
        feats.append(f.double().cpu())
        preds.append(model.classifier(f).argmax(1).cpu())
    if not feats:
        return np.zeros((0, model.config["feature_dim"])), np.zeros(0, dtype=np.int64)
    return torch.cat(feats).numpy(), torch.cat(preds).numpy().astype(np.int64)


def accuracy(
    model: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor | np.ndarray | Sequence[int]
) -> float:
    """Fraction of ``images`` whose predicted class equals ``labels``."""
    _, predicted = features_and_predictions(model, images)
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    return float((predicted == labels).mean())


def save_evaluator(model: EvaluatorNet, path: Path, info: dict[str, Any] | None = None) -> None:
    """state_dict, constructor args and ``info``, all plain types so the checkpoint loads with
    ``weights_only=True``; written atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "info": info or {},
    }
    save_torch(payload, Path(path))


def _read_payload(path: Path) -> dict[str, Any]:
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not an evaluator checkpoint of format {CHECKPOINT_FORMAT}")
    return payload


def load_evaluator(path: Path, device: torch.device | str = "cpu") -> EvaluatorNet:
    """Rebuild a saved evaluator on ``device``, in eval mode."""
    payload = _read_payload(path)
    model = EvaluatorNet(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()


def load_evaluator_info(path: Path) -> dict[str, Any]:
    """The ``info`` dict saved next to an evaluator's weights (training record, accuracies)."""
    return _read_payload(path)["info"]
