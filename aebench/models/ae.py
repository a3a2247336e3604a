"""Deterministic autoencoders: ``ae`` (clean input) and ``dae`` (Vincent et al. 2008: the encoder
sees a corrupted input, the loss compares the output with the clean one). One class serves both:
the variant's noise spec, present only for denoising families, switches the corruption on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aebench.config import VariantSpec
from aebench.models.nets import ImageShape, build_decoder, build_encoder
from aebench.noise import corrupt


class Autoencoder(nn.Module):
    """The surface every family shares: encode, decode, reconstruct and a training loss.

    Decoders emit logits; the decoder mean is their sigmoid (in [0, 1]) for both likelihoods.
    Likelihood terms are nats per image averaged over the batch, so every family's reconstruction
    reads in one unit; a family's penalty (MMD, Jacobian norm, sparsity KL, weight norm) keeps its
    own unit and enters the loss through its weight.
    """

    def __init__(self, spec: VariantSpec, image_shape: ImageShape):
        super().__init__()
        self.spec = spec
        self.image_shape = tuple(image_shape)
        self.encoder = build_encoder(
            spec.arch, self.image_shape, spec.hidden, self.code_width(), spec.code_activation
        )
        self.decoder = build_decoder(
            spec.arch, self.image_shape, spec.decoder_widths, spec.latent_dim
        )

    def code_width(self) -> int:
        return self.spec.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code of ``x`` (the posterior mean for the variational families)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits of the image decoded from ``z``."""
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder mean of the code of ``x``, in [0, 1]."""
        return torch.sigmoid(self.decode(self.encode(x)))

    def encoder_input(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """What the encoder sees in training: the clean input, or a corruption of it."""
        noise = self.spec.noise
        return x if noise is None else corrupt(x, noise.kind, noise.level, generator)

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) in nats per image under the decoder likelihood; shape N."""
        if self.spec.likelihood == "bernoulli":
            per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            std = self.spec.obs_std
            per_pixel = 0.5 * ((x - torch.sigmoid(logits)) / std) ** 2 + math.log(
                std * math.sqrt(2 * math.pi)
            )
        return per_pixel.flatten(1).sum(1)

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Training objective (``loss``) and its named terms, each a batch mean."""
        logits = self.decode(self.encode(self.encoder_input(x, generator)))
        recon = self.reconstruction_nll(logits, x).mean()
        return {"loss": recon, "recon": recon}
