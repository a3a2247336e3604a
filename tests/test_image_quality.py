"""Per-image reconstruction metrics against hand-computed values and scikit-image's SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torchmetrics.functional.image import structural_similarity_index_measure

from aebench.metrics.image_quality import (
    bce_nats_per_image,
    mse_per_pixel,
    psnr_db,
    ssim,
    ssim_window,
)


def _images(n: int, c: int, side: int, seed: int, noise: float) -> tuple[torch.Tensor, ...]:
    """Smooth-ish random images and a noisy copy, both float64 in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, c, side // 2 + 1, side // 2 + 1, generator=gen, dtype=torch.float64)
    x = torch.nn.functional.interpolate(coarse, size=(side, side), mode="bilinear")
    y = (x + noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    return x, y


def _skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Reference for 11 x 11 windows. (skimage fixes truncate=3.5 for Gaussian weights, so it
    always filters with 11 taps and cannot serve as the reference for a 7 x 7 window.)"""
    return np.array(
        [
            structural_similarity(
                a.numpy(),
                b.numpy(),
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
                data_range=1.0,
                channel_axis=0,
            )
            for a, b in zip(x, y, strict=True)
        ]
    )


def _brute_force_ssim(x: np.ndarray, y: np.ndarray, window: int) -> float:
    """Wang et al. 2004 written out window by window for one single-channel image pair."""
    offsets = np.arange(window) - (window - 1) / 2
    g = np.exp(-0.5 * (offsets / 1.5) ** 2)
    weights = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for i in range(x.shape[0] - window + 1):
        for j in range(x.shape[1] - window + 1):
            a = x[i : i + window, j : j + window]
            b = y[i : i + window, j : j + window]
            mu_a, mu_b = (weights * a).sum(), (weights * b).sum()
            var_a = (weights * (a - mu_a) ** 2).sum()
            var_b = (weights * (b - mu_b) ** 2).sum()
            cov = (weights * (a - mu_a) * (b - mu_b)).sum()
            num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
            values.append(num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_mse_per_pixel_hand_computed() -> None:
    x = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    y = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]], [[[1.0, 0.0], [0.0, 0.0]]]], dtype=torch.float64)
    # (0.01 + 0.04 + 0.09 + 0.16) / 4 and 1 / 4
    torch.testing.assert_close(
        mse_per_pixel(x, y), torch.tensor([0.075, 0.25], dtype=torch.float64)
    )


def test_mse_averages_over_channels_too() -> None:
    x = torch.zeros(1, 3, 2, 2)
    y = torch.zeros(1, 3, 2, 2)
    y[0, 1] = 0.5  # one of three channels off by 0.5 -> 0.25 / 3
    assert mse_per_pixel(x, y).item() == pytest.approx(0.25 / 3)


def test_bce_hand_computed() -> None:
    recon = torch.tensor([[[[0.5, 0.25]]]], dtype=torch.float64)
    target = torch.tensor([[[[1.0, 0.0]]]], dtype=torch.float64)
    expected = math.log(2) + math.log(4 / 3)  # -ln 0.5 - ln 0.75
    assert bce_nats_per_image(recon, target).item() == pytest.approx(expected, rel=1e-12)


def test_bce_grey_target_gives_its_entropy_and_sums_pixels() -> None:
    recon = torch.full((1, 1, 3, 3), 0.3, dtype=torch.float64)
    entropy = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    assert bce_nats_per_image(recon, recon.clone()).item() == pytest.approx(9 * entropy)


def test_bce_clamps_saturated_pixels() -> None:
    recon = torch.tensor([[[[1.0, 0.0]]]], dtype=torch.float64)
    target = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    # both pixels confidently wrong: each costs -ln(1e-6) nats, not infinity
    assert bce_nats_per_image(recon, target).item() == pytest.approx(-2 * math.log(1e-6), rel=1e-6)


def test_bce_matches_torch_binary_cross_entropy_away_from_clamp() -> None:
    gen = torch.Generator().manual_seed(0)
    recon = torch.rand(4, 1, 5, 5, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    target = (torch.rand(4, 1, 5, 5, generator=gen, dtype=torch.float64) > 0.5).double()
    expected = torch.stack(
        [
            torch.nn.functional.binary_cross_entropy(r, t, reduction="sum")
            for r, t in zip(recon, target, strict=True)
        ]
    )
    torch.testing.assert_close(bce_nats_per_image(recon, target), expected)


def test_psnr_constant_offset() -> None:
    x = torch.full((2, 1, 4, 4), 0.5, dtype=torch.float64)
    y = x.clone()
    y[0] += 0.1  # MSE 0.01 -> 20 dB
    y[1] -= 0.05  # MSE 0.0025 -> -20 log10(0.05) = 26.0206 dB
    expected = torch.tensor([20.0, -20 * math.log10(0.05)], dtype=torch.float64)
    torch.testing.assert_close(psnr_db(y, x), expected)


def test_psnr_identical_images_is_capped_not_inf() -> None:
    x = torch.rand(3, 1, 8, 8)
    assert torch.all(psnr_db(x, x) == 100.0)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(28, 28, 11), (11, 11, 11), (64, 12, 11), (8, 8, 7), (10, 12, 9), (9, 30, 9), (3, 3, 3)],
)
def test_ssim_window(height: int, width: int, expected: int) -> None:
    assert ssim_window(height, width) == expected


def test_ssim_window_rejects_tiny_images() -> None:
    with pytest.raises(ValueError):
        ssim_window(2, 28)


@pytest.mark.parametrize("side", [28, 8])
def test_ssim_identical_is_one(side: int) -> None:
    x, _ = _images(3, 2, side, seed=1, noise=0.0)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64))


def test_ssim_matches_skimage_on_28x28() -> None:
    # Same definition (normalised 11-tap Gaussian, population moments, valid-region mean), both
    # in float64: only summation order differs, so agreement is at round-off level.
    x, y = _images(6, 1, 28, seed=2, noise=0.15)
    ours = ssim(y, x).numpy()
    ref = _skimage_ssim(y, x)
    assert ref.min() < 0.95  # the images are genuinely different
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("side", "window"), [(8, 7), (9, 9), (14, 11)])
def test_ssim_matches_brute_force_window(side: int, window: int) -> None:
    x, y = _images(3, 1, side, seed=7, noise=0.15)
    ours = ssim(y, x).numpy()
    ref = [_brute_force_ssim(b[0].numpy(), a[0].numpy(), window) for a, b in zip(x, y, strict=True)]
    assert min(ref) < 0.95
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_ssim_8x8_is_not_skimage_win7() -> None:
    # skimage with win_size=7 still filters with 11 taps (reflect-padded) and crops 3 pixels: a
    # different quantity from a 7 x 7 Gaussian window, which is why it is not our 8 x 8 oracle.
    x, y = _images(4, 1, 8, seed=2, noise=0.15)
    skimage_win7 = [
        structural_similarity(
            a[0].numpy(),
            b[0].numpy(),
            gaussian_weights=True,
            sigma=1.5,
            win_size=7,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for a, b in zip(y, x, strict=True)
    ]
    assert np.abs(ssim(y, x).numpy() - skimage_win7).max() > 1e-3


def test_ssim_multichannel_is_mean_over_channels() -> None:
    x, y = _images(2, 3, 28, seed=3, noise=0.1)
    np.testing.assert_allclose(ssim(y, x).numpy(), _skimage_ssim(y, x), atol=1e-9)


def test_ssim_float32_input() -> None:
    # float32 inputs are promoted to float64 inside; the result is rounded back to float32.
    x, y = _images(4, 1, 28, seed=4, noise=0.1)
    ours = ssim(y.float(), x.float())
    assert ours.dtype == torch.float32
    ref = _skimage_ssim(y.float().double(), x.float().double())
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)


def test_ssim_equals_torchmetrics_map_on_valid_region_only() -> None:
    # torchmetrics 1.9 averages its SSIM map over the whole reflect-padded image; cropping the
    # 5-pixel border it pads gives exactly our value, and the uncropped mean is measurably off.
    x, y = _images(4, 1, 28, seed=5, noise=0.2)
    padded_mean, full_map = structural_similarity_index_measure(
        y, x, sigma=1.5, data_range=1.0, reduction="none", return_full_image=True
    )
    cropped = full_map[..., 5:-5, 5:-5].mean(dim=(1, 2, 3))
    torch.testing.assert_close(ssim(y, x), cropped)
    assert (padded_mean - cropped).abs().max() > 1e-3


def test_ssim_decreases_with_noise() -> None:
    x, mild = _images(4, 1, 28, seed=6, noise=0.05)
    _, strong = _images(4, 1, 28, seed=6, noise=0.3)
    assert torch.all(ssim(mild, x) > ssim(strong, x))


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        mse_per_pixel(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError):
        ssim(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))


def test_ssim_matches_brute_force_on_non_square_images() -> None:
    """The separable filter runs one matrix product per axis: a swapped axis would show here
    (10 x 14 images, window 9), not on square ones."""
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(3, 1, 10, 14, generator=gen, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(x.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(x, y).numpy()
    ref = [_brute_force_ssim(a[0].numpy(), b[0].numpy(), 9) for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
