import pytest
import torch

from aebench.noise import corrupt

SHAPE = (200, 1, 28, 28)  # 156,800 pixels: sampling error of a fraction is about 0.001


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_has_requested_std_before_clipping():
    x = torch.full(SHAPE, 0.5)
    out = corrupt(x, "gaussian", 0.1, _generator())  # 0.5 ± 5 sigma never clips
    assert out.sub(x).std().item() == pytest.approx(0.1, rel=0.02)
    assert out.sub(x).mean().item() == pytest.approx(0.0, abs=0.002)


def test_gaussian_noise_is_clipped_to_image_range():
    out = corrupt(torch.rand(SHAPE), "gaussian", 0.75, _generator())
    assert out.min().item() == 0.0 and out.max().item() == 1.0


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.6])
def test_masking_zeroes_the_requested_fraction(fraction):
    x = torch.full(SHAPE, 0.7)
    out = corrupt(x, "masking", fraction, _generator())
    assert (out == 0).float().mean().item() == pytest.approx(fraction, abs=0.005)
    assert torch.equal(out[out != 0], x[out != 0])


@pytest.mark.parametrize("fraction", [0.05, 0.3])
def test_salt_pepper_replaces_the_fraction_with_zeros_and_ones_equally(fraction):
    x = torch.full(SHAPE, 0.5)
    out = corrupt(x, "salt_pepper", fraction, _generator())
    salt, pepper = (out == 1).float().mean().item(), (out == 0).float().mean().item()
    assert salt + pepper == pytest.approx(fraction, abs=0.005)
    assert salt == pytest.approx(fraction / 2, abs=0.004)
    assert ((out == 0.5) | (out == 0) | (out == 1)).all()


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_same_generator_seed_gives_identical_draws(kind):
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(corrupt(x, kind, 0.3, _generator(7)), corrupt(x, kind, 0.3, _generator(7)))
    assert not torch.equal(
        corrupt(x, kind, 0.3, _generator(7)), corrupt(x, kind, 0.3, _generator(8))
    )


@pytest.mark.parametrize("kind", ["gaussian", "masking", "salt_pepper"])
def test_level_zero_leaves_the_image_unchanged(kind):
    x = torch.rand(8, 1, 8, 8)
    assert torch.equal(corrupt(x, kind, 0.0, _generator()), x)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown corruption 'blur'; allowed: gaussian"):
        corrupt(torch.rand(1, 1, 2, 2), "blur", 0.1, _generator())
