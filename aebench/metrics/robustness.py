"""Noise robustness: reconstruct the clean image from a corrupted test input, over a grid of
corruption kinds × levels, with identical corruption draws for every model."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch

from aebench.metrics.image_quality import mse_per_pixel, psnr_db, ssim
from aebench.noise import corrupt


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


def normalised_area(levels: np.ndarray, values: np.ndarray) -> float:
    """Trapezoidal area under ``values`` over ``levels``, divided by the level range: the curve's
    mean height, comparable across kinds whose level ranges differ."""
    levels, values = np.asarray(levels, float), np.asarray(values, float)
    return float(np.trapezoid(values, levels) / (levels[-1] - levels[0]))


def robustness_curves(
    clean: torch.Tensor,
    reconstruct: Callable[[torch.Tensor], torch.Tensor],
    encode: Callable[[torch.Tensor], np.ndarray],
    probe_accuracy: Callable[[np.ndarray], float],
    grid: dict[str, tuple[float, ...]],
    base_seed: int,
) -> list[dict[str, float | str]]:
    """One row per (kind, level): MSE, PSNR, SSIM against the clean image, latent shift and
    linear-probe accuracy on the codes of the corrupted inputs."""
    clean_codes = encode(clean)
    rows: list[dict[str, float | str]] = []
    for kind, levels in grid.items():
        for level in levels:
            noisy = corrupted_test_set(clean, kind, level, base_seed)
            output = reconstruct(noisy)
            codes = encode(noisy)
            rows.append(
                {
                    "kind": kind,
                    "level": level,
                    "mse": mse_per_pixel(output, clean).mean().item(),
                    "psnr": psnr_db(output, clean).mean().item(),
                    "ssim": ssim(output, clean).mean().item(),
                    "latent_shift": latent_shift(clean_codes, codes),
                    "probe_accuracy": probe_accuracy(codes),
                }
            )
    return rows


def robustness_summary(rows: list[dict[str, float | str]]) -> dict[str, float]:
    """Per kind: normalised areas under the MSE, SSIM and probe-accuracy curves."""
    summary: dict[str, float] = {}
    for kind in dict.fromkeys(row["kind"] for row in rows):
        curve = [row for row in rows if row["kind"] == kind]
        levels = np.array([row["level"] for row in curve])
        summary[f"robust_{kind}_mse_auc"] = normalised_area(levels, [r["mse"] for r in curve])
        summary[f"robust_{kind}_ssim_auc"] = normalised_area(levels, [r["ssim"] for r in curve])
        summary[f"robust_{kind}_probe_auc"] = normalised_area(
            levels, [r["probe_accuracy"] for r in curve]
        )
    return summary
