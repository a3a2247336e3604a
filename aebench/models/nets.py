"""Encoder and decoder bodies: ``mlp`` and ``conv``, for any C×H×W image shape they can halve.

Encoders map an image to ``out_features`` numbers (a code, or mean and log-variance); decoders map
a code to per-pixel logits of the image's shape. The family decides what those numbers mean.
"""

from __future__ import annotations

import math
from itertools import pairwise

from torch import nn

from aebench.errors import ParamsError

ImageShape = tuple[int, int, int]


CODE_ACTIVATION_LAYERS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
# an MLP's hidden units: ReLU by default; tanh is Burda et al.'s (2015) MNIST architecture
HIDDEN_ACTIVATION_LAYERS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def build_encoder(
    arch: str,
    shape: ImageShape,
    hidden: tuple[int, ...],
    out_features: int,
    code_activation: str = "linear",
    hidden_activation: str = "relu",
):
    """Image (N×C×H×W) -> N×out_features, through ``code_activation`` (linear: none); an
    MLP's hidden layers end in ``hidden_activation``."""
    body = _encoder_body(arch, shape, hidden, out_features, hidden_activation)
    if code_activation == "linear":
        return body
    return nn.Sequential(*body, CODE_ACTIVATION_LAYERS[code_activation]())


def _encoder_body(
    arch: str, shape: ImageShape, hidden: tuple[int, ...], out_features: int, activation: str
):
    if arch == "mlp":
        widths = [math.prod(shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), HIDDEN_ACTIVATION_LAYERS[activation]()]
        return nn.Sequential(*layers, nn.Linear(widths[-1], out_features))
    if arch == "conv":
        channels = shape[0]
        bottom_h, bottom_w = _conv_bottom(shape, hidden)
        widths = [channels, *hidden]
        layers = []
        for width_in, width_out in pairwise(widths):
            # kernel 4, stride 2, padding 1 halves an even side exactly
            layers += [nn.Conv2d(width_in, width_out, 4, stride=2, padding=1), nn.ReLU()]
        flat = hidden[-1] * bottom_h * bottom_w
        return nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, out_features))
    raise ValueError(f"unknown architecture {arch!r}; allowed: mlp, conv")


def build_decoder(
    arch: str,
    shape: ImageShape,
    hidden: tuple[int, ...],
    latent_dim: int,
    hidden_activation: str = "relu",
):
    """Code (N×latent_dim) -> logits N×C×H×W. ``hidden``: the MLP's widths from the code side
    (empty: one linear map), each ending in ``hidden_activation``; a conv decoder mirrors the
    encoder's channels ``hidden``."""
    if arch == "mlp":
        widths = [latent_dim, *hidden]
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [
                nn.Linear(width_in, width_out),
                HIDDEN_ACTIVATION_LAYERS[hidden_activation](),
            ]
        layers += [nn.Linear(widths[-1], math.prod(shape)), nn.Unflatten(1, shape)]
        return nn.Sequential(*layers)
    if arch == "conv":
        bottom_h, bottom_w = _conv_bottom(shape, hidden)
        layers = [
            nn.Linear(latent_dim, hidden[-1] * bottom_h * bottom_w),
            nn.ReLU(),
            nn.Unflatten(1, (hidden[-1], bottom_h, bottom_w)),
        ]
        widths = [*reversed(hidden), shape[0]]
        for index, (width_in, width_out) in enumerate(pairwise(widths)):
            layers.append(nn.ConvTranspose2d(width_in, width_out, 4, stride=2, padding=1))
            if index < len(widths) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)
    raise ValueError(f"unknown architecture {arch!r}; allowed: mlp, conv")


def _conv_bottom(shape: ImageShape, hidden: tuple[int, ...]) -> tuple[int, int]:
    """Spatial size after one halving per conv layer; refuses sides that do not halve evenly."""
    factor = 2 ** len(hidden)
    _, height, width = shape
    if height % factor or width % factor:
        raise ParamsError(
            f"conv with {len(hidden)} layers needs height and width divisible by {factor}; "
            f"got {height}×{width}: use fewer hidden layers or arch mlp"
        )
    return height // factor, width // factor
