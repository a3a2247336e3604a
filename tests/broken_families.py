"""Families that each break the interface in one way, as a user's own family file would (named
``tests.broken_families:Class``): ``aebench check-family`` must fail the check meant for each,
with a message that names what broke. Each docstring says which check that is."""

from __future__ import annotations

import torch
from torch import nn

from aebench.models.ae import Autoencoder, DenoisingAutoencoder
from aebench.models.vae import LOG_2PI, VariationalAutoencoder


class DetachedEncoder(Autoencoder):
    """gradients: the decoder reads a detached code, so no gradient reaches the encoder."""

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(self.encoder_input(x, generator)).detach()
        recon = self.reconstruction_nll(self.decode(code), x).mean()
        return {"loss": recon, "recon": recon}


class LogBarrier(Autoencoder):
    """finite loss: a log barrier on the centred code, NaN wherever a unit is below its batch
    mean (half the batch)."""

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(x)
        recon = self.reconstruction_nll(self.decode(code), x).mean()
        log_code = (code - code.mean(0)).log().mean()
        return {"loss": recon + 0.1 * log_code, "recon": recon, "log_code": log_code}


class GlobalNoise(Autoencoder):
    """determinism: the code noise comes from torch.randn_like, the global RNG, not from the
    generator loss_terms is passed."""

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(x)
        noisy = code + 0.1 * torch.randn_like(code)
        recon = self.reconstruction_nll(self.decode(noisy), x).mean()
        return {"loss": recon, "recon": recon}


class LogCodeDecoder(Autoencoder):
    """sampler prior: decodes the log of its sigmoid code, but declares the prior sampler, whose
    N(0, I) draws are half negative: NaN images."""

    samplers = ("prior", "gmm")
    code_activations = ("sigmoid",)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z.log())


class WidePriorSampler(VariationalAutoencoder):
    """prior draws: prior_codes draws from N(0, 9 I) while log_prior says N(0, I)."""

    def prior_codes(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return 3.0 * torch.randn((n, self.spec.latent_dim), generator=generator)


class UnnormalisedPrior(VariationalAutoencoder):
    """prior density: log_prior leaves out the log 2π of N(0, I), so it integrates to (2π)^1.5."""

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * z.pow(2).sum(-1)


class LogStdPosterior(VariationalAutoencoder):
    """posterior: log_posterior reads logvar as a log standard deviation."""

    @staticmethod
    def log_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((z - mu).pow(2) / (2 * logvar).exp() + 2 * logvar + LOG_2PI).sum(-1)


class PerImageTerm(Autoencoder):
    """finite loss: returns the per-image reconstruction, not its batch mean, as a term."""

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        per_image = self.reconstruction_nll(self.decode(self.encode(x)), x)
        return {"loss": per_image.mean(), "recon": per_image}


class EvalOnlyTerm(Autoencoder):
    """loss keys: reports a term in eval mode only (the history CSV needs both passes' keys)."""

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(x, generator)
        if not self.training:
            terms["code_norm"] = self.encode(x).pow(2).sum(1).mean()
        return terms


class UnsavedProjection(Autoencoder):
    """checkpoint: a random input projection kept as a plain tensor attribute (not a registered
    buffer), so a loaded checkpoint draws a new one."""

    def __init__(self, spec, image_shape):
        super().__init__(spec, image_shape)
        self.projection = torch.randn(image_shape[-1], image_shape[-1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x @ self.projection)


class FlatDecoder(Autoencoder):
    """shapes: decode returns flat N×(C·H·W) logits, not N×C×H×W."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).flatten(1)


class NotAnAutoencoder(nn.Module):
    """declaration: not a subclass of aebench.Autoencoder."""

    samplers = ("gmm",)


class ChainWithoutNoise(Autoencoder):
    """declaration: declares the chain sampler but does not denoise (no noise spec to run it)."""

    samplers = ("gmm", "chain")


class FixedDenoiser(DenoisingAutoencoder):
    """A correct external family (a DAE subclass with its own summary): passes every check."""

    summary = "a denoising AE from a user's file"
