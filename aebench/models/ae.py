"""The base of every family, and the deterministic autoencoders built on it: ``ae`` (clean input)
and ``dae`` (Vincent et al. 2008: the encoder sees a corrupted input, the loss compares the
output with the clean one).

A family is a subclass of :class:`Autoencoder` (or of
:class:`aebench.models.vae.VariationalAutoencoder` for one with a posterior) whose class
attributes declare what the benchmark may do with it: its own params (a pydantic model), its
samplers, whether it trains on corrupted input. Built-in and external families (``family:
my_models.flows:FlowVAE`` in params.yaml) are read the same way (:mod:`aebench.models.registry`).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from aebench.models.nets import ImageShape, build_decoder, build_encoder
from aebench.noise import corrupt
from aebench.spec import VariantSpec

# why a family whose code must reach an N(0, I) prior (VAE, WAE) allows only a linear code
PRIOR_CODE_REASON = (
    "matches its code to an N(0, I) prior, which a bounded or non-negative code cannot reach"
)


class FamilyParams(BaseModel):
    """A family's own hyperparameters: the variant keys only that family takes, with defaults and
    ranges as pydantic fields. Subclass it beside the family; this empty one takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class Autoencoder(nn.Module):
    """The surface every family shares: encode, decode, reconstruct and a training loss.

    Decoders emit logits; the decoder mean is their sigmoid (in [0, 1]) for both likelihoods.
    Likelihood terms are nats per image averaged over the batch, so every family's reconstruction
    reads in one unit; a family's penalty (MMD, Jacobian norm, sparsity KL, weight norm) keeps its
    own unit and enters the loss through its weight.

    The class attributes are the family's declaration, read before any stage runs.
    """

    family: ClassVar[str] = "ae"  # the name params.yaml uses (external families: module:Class)
    summary: ClassVar[str] = "autoencoder: reconstructs its clean input"  # the report's line
    Params: ClassVar[type[FamilyParams]] = FamilyParams
    samplers: ClassVar[tuple[str, ...]] = ("gmm",)  # of prior, gmm, chain
    denoises: ClassVar[bool] = False  # trains on corrupted input: needs a noise spec; the chain
    has_posterior: ClassVar[bool] = False  # q(z | x) and p(z): the NLL is estimated
    takes_beta: ClassVar[bool] = False  # a weight on a KL term (variant key beta)
    # the activations a deterministic code may end in, the default first, and why if restricted
    code_activations: ClassVar[tuple[str, ...]] = ("linear", "relu", "sigmoid")
    code_activation_reason: ClassVar[str] = ""

    def __init__(self, spec: VariantSpec, image_shape: ImageShape):
        super().__init__()
        self.spec = spec
        self.image_shape = tuple(image_shape)
        self.encoder = build_encoder(
            spec.arch,
            self.image_shape,
            spec.hidden,
            self.code_width(),
            spec.code_activation or "linear",
            spec.hidden_activation,
        )
        self.decoder = build_decoder(
            spec.arch,
            self.image_shape,
            spec.decoder_widths,
            spec.latent_dim,
            spec.hidden_activation,
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

    def prior_codes(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` codes from the family's prior, drawn on the CPU ``generator`` (the ``prior``
        sampler decodes them): N(0, I) here; a family with another prior overrides it."""
        return torch.randn((n, self.spec.latent_dim), generator=generator)

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


class DenoisingAutoencoder(Autoencoder):
    """Vincent et al. 2008: the same networks and loss, the encoder fed a corruption (the
    variant's noise spec) of the image it must reconstruct."""

    family = "dae"
    summary = "denoising AE (Vincent et al. 2008): reconstructs the clean image from a corruption"
    samplers = ("gmm", "chain")
    denoises = True
