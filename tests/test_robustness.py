import numpy as np
import pytest
import torch

from aebench.metrics.representation import fit_linear_probe, probe_accuracy
from aebench.metrics.robustness import (
    corrupted_test_set,
    latent_shift,
    normalised_area,
    robustness_curves,
    robustness_summary,
)

GRID = {"gaussian": (0.0, 0.2, 0.5), "masking": (0.0, 0.5), "salt_pepper": (0.0, 0.1)}


def test_corruption_draws_do_not_depend_on_order_or_call():
    x = torch.rand(16, 1, 8, 8)
    first = corrupted_test_set(x, "masking", 0.5, base_seed=7)
    corrupted_test_set(x, "gaussian", 0.2, base_seed=7)  # another entry drawn in between
    assert torch.equal(corrupted_test_set(x, "masking", 0.5, base_seed=7), first)
    assert not torch.equal(corrupted_test_set(x, "masking", 0.4, base_seed=7), first)
    assert not torch.equal(corrupted_test_set(x, "masking", 0.5, base_seed=8), first)


def test_every_model_sees_identical_corrupted_inputs():
    clean = torch.rand(20, 1, 8, 8)
    labels = np.arange(20) % 2
    seen: dict[str, list[torch.Tensor]] = {"a": [], "b": []}

    def model(name, scale):
        def reconstruct(x):
            seen[name].append(x.clone())
            return (x * scale).clamp(0, 1)

        return reconstruct

    def encode(x):
        return x.flatten(1).numpy().astype(float)

    for name, scale in (("a", 1.0), ("b", 0.5)):
        robustness_curves(clean, model(name, scale), encode, lambda c: 0.5, GRID, base_seed=3)
    assert len(seen["a"]) == sum(len(levels) for levels in GRID.values())
    assert all(torch.equal(a, b) for a, b in zip(seen["a"], seen["b"], strict=True))
    del labels


def test_identity_model_has_zero_error_at_level_zero_and_growing_error():
    clean = torch.rand(50, 1, 8, 8)
    rows = robustness_curves(
        clean, lambda x: x, lambda x: x.flatten(1).numpy(), lambda c: 1.0, GRID, base_seed=0
    )
    gaussian = [r for r in rows if r["kind"] == "gaussian"]
    assert gaussian[0]["mse"] == 0.0 and gaussian[0]["latent_shift"] == 0.0
    assert gaussian[0]["ssim"] == pytest.approx(1.0)
    assert gaussian[1]["mse"] < gaussian[2]["mse"]
    summary = robustness_summary(rows)
    assert set(summary) == {
        f"robust_{k}_{s}" for k in GRID for s in ("mse_auc", "ssim_auc", "probe_auc")
    }
    assert summary["robust_gaussian_probe_auc"] == pytest.approx(1.0)


def test_latent_shift_of_a_constant_offset_is_its_length_over_the_spread():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(1000, 3))
    spread = np.sqrt(np.mean(np.sum((codes - codes.mean(0)) ** 2, axis=1)))
    offset = np.array([3.0, 4.0, 0.0])  # length 5
    assert latent_shift(codes, codes + offset) == pytest.approx(5.0 / spread)
    assert latent_shift(codes, codes) == 0.0


def test_normalised_area_is_the_mean_height():
    levels = np.array([0.0, 0.25, 0.5, 1.0])
    assert normalised_area(levels, 3 * levels) == pytest.approx(1.5)  # line: mean of 0..3
    assert normalised_area(levels, np.full(4, 0.2)) == pytest.approx(0.2)
    assert normalised_area(np.array([0.1, 0.3]), np.array([1.0, 3.0])) == pytest.approx(2.0)


def test_linear_probe_separates_linearly_separable_codes():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    codes = centres[labels] + rng.normal(scale=0.5, size=(300, 2))
    probe = fit_linear_probe(codes[:200], labels[:200])
    assert probe_accuracy(probe, codes[200:], labels[200:]) == 1.0
    assert probe_accuracy(probe, codes[200:], (labels[200:] + 1) % 3) == 0.0
