"""Noise robustness: reconstruct the clean image from a corrupted test input, over a grid of
corruption kinds × levels, with identical corruption draws for every model.

Every (kind, level) is scored per image (:class:`LevelScores`); ``robustness.csv`` keeps one row
of means per grid entry. The headline numbers per kind and stat (mse, ssim, probe) are

- ``robust_<kind>_<stat>_corrupted``: the mean over the grid's levels > 0. The clean level is
  left out, since the clean reconstruction is already scored as ``recon_*``/``probe_accuracy``
  and would dilute the corrupted performance by a share that depends on the grid's length;
- ``robust_<kind>_<stat>_degradation``: corrupted / clean - 1, the relative change from the
  model's own clean value, where "clean" is always the uncorrupted test set (whether or not the
  grid has a 0 level).

An earlier version summarised each curve by its normalised area, which counted the clean level
and weighted levels by their spacing, so one number mixed clean and corrupted performance.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from aebench.metrics.image_quality import mse_per_pixel, psnr_db, ssim
from aebench.noise import corrupt

ROBUST_STATS = ("mse", "ssim", "probe")
"""The per-image statistics summarised per corruption kind."""


def corruption_seed(base_seed: int, kind: str, level: float) -> int:
    """A seed that depends only on (base seed, kind, level): not on the model, the grid's other
    entries or the order of evaluation, so every model sees the very same corrupted images."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{kind}:{level:.6g}".encode())) % 2**63


def corrupted_test_set(
    images: torch.Tensor, kind: str, level: float, base_seed: int
) -> torch.Tensor:
    """``images`` corrupted with draws made on the CPU (identical on CPU and CUDA runs)."""
    generator = torch.Generator().manual_seed(corruption_seed(base_seed, kind, level))
    return corrupt(images.cpu(), kind, level, generator).to(images.device)


def latent_shift(clean_codes: np.ndarray, noisy_codes: np.ndarray) -> float:
    """Mean distance between a clean and a corrupted input's code, in units of the clean codes'
    spread (root mean squared distance to their centroid): 0 = unmoved, 1 = one spread."""
    spread = np.sqrt(np.mean(np.sum((clean_codes - clean_codes.mean(0)) ** 2, axis=1)))
    return float(np.mean(np.linalg.norm(noisy_codes - clean_codes, axis=1)) / spread)


@dataclass(frozen=True)
class LevelScores:
    """Per-image scores (float64, test-split order) of one (kind, level) grid entry."""

    kind: str
    level: float
    mse: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray
    probe: np.ndarray  # 1.0 where the linear probe classifies the corrupted input's code right
    latent_shift: float

    def row(self) -> dict[str, float | str]:
        """The robustness.csv row: the means over the test split."""
        return {
            "kind": self.kind,
            "level": self.level,
            "mse": float(self.mse.mean()),
            "psnr": float(self.psnr.mean()),
            "ssim": float(self.ssim.mean()),
            "latent_shift": self.latent_shift,
            "probe_accuracy": float(self.probe.mean()),
        }


def _per_image(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().double().numpy()


def robustness_scores(
    clean: torch.Tensor,
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    encode: Callable[[torch.Tensor], np.ndarray],
    probe_correct: Callable[[np.ndarray], np.ndarray],
    grid: dict[str, tuple[float, ...]],
    base_seed: int,
) -> list[LevelScores]:
    """One entry per (kind, level), in grid order: per-image MSE, PSNR, SSIM against the clean
    image, per-image linear-probe correctness on the corrupted input's code, and latent shift.

    ``probe_correct`` maps codes (test-split order) to 1.0 (right class) / 0.0 per image.
    """
    clean_codes = encode(clean)
    scores: list[LevelScores] = []
    for kind, levels in grid.items():
        for level in levels:
            noisy = corrupted_test_set(clean, kind, level, base_seed)
            output = reconstruct(noisy)
            codes = encode(noisy)
            scores.append(
                LevelScores(
                    kind=kind,
                    level=level,
                    mse=_per_image(mse_per_pixel(output, clean)),
                    psnr=_per_image(psnr_db(output, clean)),
                    ssim=_per_image(ssim(output, clean)),
                    probe=np.asarray(probe_correct(codes), dtype=np.float64),
                    latent_shift=latent_shift(clean_codes, codes),
                )
            )
    return scores


def robustness_curves(scores: list[LevelScores]) -> list[dict[str, float | str]]:
    """The robustness.csv rows: kind, level, mse, psnr, ssim, latent_shift, probe_accuracy."""
    return [entry.row() for entry in scores]


def corrupted_per_image(scores: list[LevelScores]) -> dict[str, np.ndarray]:
    """``robust_<kind>_<stat>_corrupted`` per image: its mean over the kind's levels > 0."""
    out: dict[str, np.ndarray] = {}
    for kind in dict.fromkeys(entry.kind for entry in scores):
        corrupted = [entry for entry in scores if entry.kind == kind and entry.level > 0]
        if not corrupted:
            raise ValueError(f"noise grid for {kind!r} has no level > 0 to score")
        for stat in ROBUST_STATS:
            stacked = np.stack([getattr(entry, stat) for entry in corrupted])
            out[f"robust_{kind}_{stat}_corrupted"] = stacked.mean(axis=0)
    return out


def relative_change(value: float, reference: float) -> float:
    """value / reference - 1 (0 = unchanged, -0.5 = halved); NaN when reference is 0, where a
    relative change is undefined."""
    return value / reference - 1.0 if reference != 0 else math.nan


def robustness_summary(
    scores: list[LevelScores], clean: dict[str, float]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-image ``_corrupted`` arrays and the flat metrics: each ``_corrupted`` mean and its
    ``_degradation`` against ``clean`` (stat -> the uncorrupted test set's value for mse, ssim,
    probe: ``recon_mse``, ``recon_ssim``, ``probe_accuracy``)."""
    per_image = corrupted_per_image(scores)
    metrics: dict[str, float] = {}
    for key, values in per_image.items():
        stat = key.removesuffix("_corrupted").rsplit("_", 1)[1]
        metrics[key] = float(values.mean())
        metrics[key.replace("_corrupted", "_degradation")] = relative_change(
            metrics[key], clean[stat]
        )
    return per_image, metrics
