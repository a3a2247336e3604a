"""Per-image reconstruction metrics for images in [0, 1] with shape N x C x H x W.

Every function returns one value per image (a tensor of shape N), so callers can average, take
confidence intervals or pair images across models as they see fit.
"""

from __future__ import annotations

import torch
from torch import Tensor

BCE_CLAMP = 1e-6
"""Reconstruction probabilities are clamped to [BCE_CLAMP, 1 - BCE_CLAMP] before taking logs,
so one saturated pixel costs at most -log(1e-6) ~= 13.8 nats instead of infinity."""

PSNR_MSE_FLOOR = 1e-10
"""MSE floor for PSNR: a perfect reconstruction scores 100 dB instead of +inf, so a mean over
the test split stays finite. 8-bit images cannot get near it (one grey level off in one pixel of
a 28 x 28 image is already ~77 dB)."""

SSIM_SIGMA = 1.5
SSIM_MAX_WINDOW = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f"expected two N x C x H x W tensors alike, got {x.shape}, {y.shape}")


def mse_per_pixel(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error per pixel (mean over C, H, W), one value per image; lower is better."""
    _check_pair(x, y)
    return (x - y).pow(2).flatten(1).mean(dim=1)


def bce_nats_per_image(recon: Tensor, target: Tensor) -> Tensor:
    """Bernoulli negative log-likelihood of ``target`` under pixel probabilities ``recon``.

    Summed over C, H, W, so the unit is nats per image (lower is better); this is the
    reconstruction term of a Bernoulli-decoder VAE's ELBO. ``recon`` holds probabilities (not
    logits), clamped to [BCE_CLAMP, 1 - BCE_CLAMP]. ``target`` may be grey-level in [0, 1]; then
    the minimum is the target's own entropy rather than 0.
    """
    _check_pair(recon, target)
    p = recon.clamp(BCE_CLAMP, 1.0 - BCE_CLAMP)
    nll = -(target * torch.log(p) + (1.0 - target) * torch.log1p(-p))
    return nll.flatten(1).sum(dim=1)


def psnr_db(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio in dB with data range 1: 10 log10(1 / MSE); higher is better.

    MSE is floored at PSNR_MSE_FLOOR, so identical images give 100 dB, never +inf.
    """
    mse = mse_per_pixel(x, y).clamp_min(PSNR_MSE_FLOOR)
    return -10.0 * torch.log10(mse)


def ssim_window(height: int, width: int) -> int:
    """SSIM window side: 11 (Wang et al. 2004) if it fits, else the largest odd size that fits.

    8 x 8 images get 7. Images smaller than 3 x 3 are rejected: a 1-pixel window has no variance.
    """
    side = min(height, width, SSIM_MAX_WINDOW)
    window = side if side % 2 == 1 else side - 1
    if window < 3:
        raise ValueError(f"SSIM needs images of at least 3 x 3 pixels, got {height} x {width}")
    return window


def _gaussian_taps(window: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    offsets = torch.arange(window, dtype=dtype, device=device) - (window - 1) / 2
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _valid_filter_matrix(size: int, taps: Tensor) -> Tensor:
    """(size - window + 1) x size matrix whose row i holds ``taps`` at columns i..i + window - 1:
    multiplying by it filters one axis over the 'valid' positions."""
    window = taps.numel()
    matrix = taps.new_zeros(size - window + 1, size)
    for row in range(size - window + 1):
        matrix[row, row : row + window] = taps
    return matrix


def _local_mean(maps: Tensor, taps: Tensor) -> Tensor:
    """Separable Gaussian mean over 'valid' positions only (no padding): M x 1 x H' x W'.

    Two matrix products rather than two float64 conv2d calls: torch has no fast float64
    convolution on the CPU. On the robustness grid (18 x 1000 MNIST images, one thread, Intel
    Xeon AVX-512) SSIM went from 4.3 s to 0.9 s per evaluation, values equal to ~1e-16.
    """
    m, _, h, w = maps.shape
    across = maps.reshape(m * h, w) @ _valid_filter_matrix(w, taps).T  # (M·H) x W'
    down = across.reshape(m, h, -1).transpose(1, 2).reshape(-1, h)  # (M·W') x H
    filtered = down @ _valid_filter_matrix(h, taps).T  # (M·W') x H'
    return filtered.reshape(m, -1, filtered.shape[-1]).transpose(1, 2).unsqueeze(1)


def ssim(x: Tensor, y: Tensor, sigma: float = SSIM_SIGMA, window: int | None = None) -> Tensor:
    """Mean structural similarity (Wang et al. 2004) per image, data range 1; higher is better.

    Gaussian window (sigma 1.5, side ``ssim_window(H, W)`` unless given, truncated and
    renormalised), population (co)variances, K1 = 0.01, K2 = 0.03. The SSIM map is averaged over
    the positions where the whole window lies inside the image and then over channels; this is
    what Wang et al.'s reference code and ``skimage.metrics.structural_similarity(
    gaussian_weights=True, use_sample_covariance=False)`` do. Computed in float64, returned in
    the input dtype.

    Not torchmetrics: its Gaussian SSIM ignores ``kernel_size`` (the window is always
    2 * int(3.5 * sigma + 0.5) + 1 = 11 for sigma 1.5, so 8 x 8 images cannot get the 7 window)
    and it averages over the whole reflect-padded map, which on 28 x 28 images differs from the
    valid-region value by ~0.01 (see tests/test_image_quality.py).
    """
    _check_pair(x, y)
    n, c, h, w = x.shape
    window = ssim_window(h, w) if window is None else window
    if window % 2 == 0 or window > min(h, w):
        raise ValueError(f"SSIM window must be odd and fit in {h} x {w}, got {window}")
    a = x.to(torch.float64).reshape(n * c, 1, h, w)
    b = y.to(torch.float64).reshape(n * c, 1, h, w)
    taps = _gaussian_taps(window, sigma, torch.float64, a.device)
    moments = _local_mean(torch.cat([a, b, a * a, b * b, a * b]), taps)
    mu_a, mu_b, e_aa, e_bb, e_ab = moments.chunk(5)
    var_a = e_aa - mu_a**2
    var_b = e_bb - mu_b**2
    cov_ab = e_ab - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim_map.reshape(n, -1).mean(dim=1).to(x.dtype)


__all__ = [
    "bce_nats_per_image",
    "mse_per_pixel",
    "psnr_db",
    "ssim",
    "ssim_window",
]
