import math

import numpy as np
import pytest
import torch

from aebench.metrics.representation import fit_linear_probe, probe_accuracy
from aebench.metrics.robustness import (
    corrupted_per_image,
    corrupted_test_set,
    latent_shift,
    relative_change,
    robustness_curves,
    robustness_scores,
    robustness_summary,
)

GRID = {"gaussian": (0.0, 0.2, 0.5), "masking": (0.0, 0.5), "salt_pepper": (0.0, 0.1)}
KEYS = {f"robust_{k}_{s}_corrupted" for k in GRID for s in ("mse", "ssim", "probe")}


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.flatten(1).numpy().astype(float)


def _all_right(codes: np.ndarray) -> np.ndarray:
    return np.ones(len(codes))


def test_corruption_draws_do_not_depend_on_order_or_call():
    x = torch.rand(16, 1, 8, 8)
    first = corrupted_test_set(x, "masking", 0.5, base_seed=7)
    corrupted_test_set(x, "gaussian", 0.2, base_seed=7)  # another entry drawn in between
    assert torch.equal(corrupted_test_set(x, "masking", 0.5, base_seed=7), first)
    assert not torch.equal(corrupted_test_set(x, "masking", 0.4, base_seed=7), first)
    assert not torch.equal(corrupted_test_set(x, "masking", 0.5, base_seed=8), first)


def test_every_model_sees_identical_corrupted_inputs():
    clean = torch.rand(20, 1, 8, 8)
    seen: dict[str, list[torch.Tensor]] = {"a": [], "b": []}

    def model(name, scale):
        def reconstruct(x):
            seen[name].append(x.clone())
            return (x * scale).clamp(0, 1)

        return reconstruct

    for name, scale in (("a", 1.0), ("b", 0.5)):
        robustness_scores(clean, model(name, scale), _flat, _all_right, GRID, base_seed=3)
    assert len(seen["a"]) == sum(len(levels) for levels in GRID.values())
    assert all(torch.equal(a, b) for a, b in zip(seen["a"], seen["b"], strict=True))


def test_identity_model_rows_keep_their_columns_and_grow_with_the_level():
    clean = torch.rand(50, 1, 8, 8)
    scores = robustness_scores(clean, lambda x: x, _flat, _all_right, GRID, base_seed=0)
    rows = robustness_curves(scores)
    columns = ["kind", "level", "mse", "psnr", "ssim", "latent_shift", "probe_accuracy"]
    assert list(rows[0]) == columns
    gaussian = [r for r in rows if r["kind"] == "gaussian"]
    assert gaussian[0]["mse"] == 0.0 and gaussian[0]["latent_shift"] == 0.0
    assert gaussian[0]["ssim"] == pytest.approx(1.0)
    assert gaussian[1]["mse"] < gaussian[2]["mse"]
    assert rows[1]["mse"] == pytest.approx(float(scores[1].mse.mean()))
    assert all(len(s.mse) == len(s.ssim) == len(s.probe) == 50 for s in scores)


def test_halving_model_degrades_by_three_times_the_masked_share():
    """Output x/2 against target x: clean MSE is E[x²]/4. Masking a share p of the pixels makes
    the error x² on those, so the MSE is (1/4 + 3p/4) E[x²] and the relative change is 3p; the
    corrupted summary is the mean over levels > 0 (0.2 and 0.6 here: 0.4), so 3 × 0.4 = 1.2.
    The 0 level is left out: averaging it in would give 0.8."""
    clean = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = {"masking": (0.0, 0.2, 0.6)}
    halve = lambda x: x / 2  # noqa: E731
    scores = robustness_scores(clean, halve, _flat, _all_right, grid, base_seed=1)
    clean_mse = float((clean / 2 - clean).pow(2).mean())
    per_image, metrics = robustness_summary(scores, {"mse": clean_mse, "ssim": 1.0, "probe": 1.0})
    assert metrics["robust_masking_mse_degradation"] == pytest.approx(1.2, rel=0.03)
    expected = clean_mse * (1 + 3 * 0.4)
    assert metrics["robust_masking_mse_corrupted"] == pytest.approx(expected, rel=0.03)
    assert metrics["robust_masking_probe_corrupted"] == 1.0
    assert metrics["robust_masking_probe_degradation"] == 0.0
    # the per-image array is the mean over the two corrupted levels, image by image
    np.testing.assert_allclose(
        per_image["robust_masking_mse_corrupted"], (scores[1].mse + scores[2].mse) / 2
    )


def test_corrupted_summary_is_the_mean_of_its_per_image_array():
    clean = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    # the probe is right only for codes whose first pixel is not masked: a per-image 0/1
    probe = lambda codes: (codes[:, 0] > 0).astype(float)  # noqa: E731
    scores = robustness_scores(clean, lambda x: x.clamp(0.1, 0.9), _flat, probe, GRID, 4)
    clean_values = {"mse": 0.01, "ssim": 0.9, "probe": 1.0}
    per_image, metrics = robustness_summary(scores, clean_values)
    assert set(per_image) == KEYS
    assert set(metrics) == KEYS | {k.replace("_corrupted", "_degradation") for k in KEYS}
    for key, values in per_image.items():
        assert values.shape == (30,) and values.dtype == np.float64
        assert metrics[key] == float(values.mean())
        stat = key.split("_")[-2]
        degradation = metrics[key.replace("_corrupted", "_degradation")]
        assert degradation == pytest.approx(metrics[key] / clean_values[stat] - 1)
    masked = next(s for s in scores if s.kind == "masking" and s.level > 0)
    np.testing.assert_array_equal(per_image["robust_masking_probe_corrupted"], masked.probe)
    assert 0 < metrics["robust_masking_probe_corrupted"] < 1


def test_a_grid_without_a_clean_level_still_compares_with_the_clean_value():
    clean = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    grid = {"gaussian": (0.1, 0.3)}
    scores = robustness_scores(clean, lambda x: x, _flat, _all_right, grid, base_seed=0)
    _, metrics = robustness_summary(scores, {"mse": 0.002, "ssim": 1.0, "probe": 0.8})
    expected = (scores[0].mse.mean() + scores[1].mse.mean()) / 2
    assert metrics["robust_gaussian_mse_corrupted"] == pytest.approx(expected)
    assert metrics["robust_gaussian_probe_degradation"] == pytest.approx(1 / 0.8 - 1)
    assert metrics["robust_gaussian_mse_degradation"] == pytest.approx(expected / 0.002 - 1)


def test_a_kind_without_corrupted_levels_is_refused():
    clean = torch.rand(5, 1, 8, 8)
    scores = robustness_scores(clean, lambda x: x, _flat, _all_right, {"masking": (0.0,)}, 0)
    with pytest.raises(ValueError, match="no level > 0"):
        corrupted_per_image(scores)


def test_relative_change():
    assert relative_change(3.0, 2.0) == 0.5
    assert relative_change(1.0, 2.0) == -0.5
    assert math.isnan(relative_change(1.0, 0.0))


def test_latent_shift_of_a_constant_offset_is_its_length_over_the_spread():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(1000, 3))
    spread = np.sqrt(np.mean(np.sum((codes - codes.mean(0)) ** 2, axis=1)))
    offset = np.array([3.0, 4.0, 0.0])  # length 5
    assert latent_shift(codes, codes + offset) == pytest.approx(5.0 / spread)
    assert latent_shift(codes, codes) == 0.0


def test_linear_probe_separates_linearly_separable_codes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    codes = centres[labels] + rng.normal(scale=0.5, size=(300, 2))
    probe = fit_linear_probe(codes[:200], labels[:200])
    assert probe_accuracy(probe, codes[200:], labels[200:]) == 1.0
    assert probe_accuracy(probe, codes[200:], (labels[200:] + 1) % 3) == 0.0
