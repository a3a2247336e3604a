"""Input corruptions (Vincent et al. 2010), shared by DAE/DVAE training and robustness evaluation.

Every function draws from an explicit ``torch.Generator``: the same generator state gives the same
corruption, which is how every model is evaluated on identical corrupted inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from aebench.spec import NOISE_KINDS


def gaussian(x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Additive N(0, sigma^2) noise, clipped back to the [0, 1] image range."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + sigma * noise).clamp_(0.0, 1.0)


def masking(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Set each pixel to 0 independently with probability ``fraction``."""
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= fraction
    return x * keep


def salt_pepper(x: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each pixel with probability ``fraction`` by 0 or 1, with equal chance."""
    hit = torch.rand(x.shape, generator=generator, device=x.device) < fraction
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def binarize(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each pixel ~ Bernoulli(intensity), as float 0/1 of the images' dtype and device.

    The Bernoulli decoders model binary images: the test split is binarised once with a fixed
    seed, and the IWAE paper's ``dynamic`` protocol draws a fresh binarisation per training batch.
    Uniforms come from ``generator``'s device, so a CPU generator gives the same pixels whatever
    device the images are on.
    """
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("binarize expects intensities in [0, 1]")
    uniform = torch.rand(images.shape, generator=generator, device=generator.device)
    return (uniform.to(images.device) < images).to(images.dtype)


CORRUPTIONS: dict[str, Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_pepper": salt_pepper,
}
assert tuple(CORRUPTIONS) == NOISE_KINDS


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """Apply the corruption ``kind`` at ``level``; level 0 returns an unchanged copy."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {kind!r}; allowed: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[kind](x, level, generator)
