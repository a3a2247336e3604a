"""Importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2015): the VAE's networks
trained on the K-sample bound L_K = E[log (1/K) sum_k p(x, z_k) / q(z_k | x)] instead of the
ELBO. L_1 is the ELBO (estimated with one draw); L_K tightens towards log p(x) as K grows, and
the encoder is free to be a worse fit to the posterior in exchange for a better decoder."""

from __future__ import annotations

import math

import torch
from pydantic import Field

from aebench.metrics.likelihood import decoder_log_likelihood
from aebench.models.ae import FamilyParams
from aebench.models.vae import VariationalAutoencoder


class IWAEParams(FamilyParams):
    iw_samples: int = Field(5, ge=1, description="K of the training bound (Burda et al.: 5, 50)")


class ImportanceWeightedAutoencoder(VariationalAutoencoder):
    """Same encoder, decoder, prior and evaluation as the VAE; only the training bound differs."""

    family = "iwae"
    summary = (
        "importance-weighted AE (Burda et al. 2015): the VAE's networks trained on the "
        "K-sample bound"
    )
    Params = IWAEParams
    takes_beta = False

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """-L_K in nats per image, K = the variant's ``iw_samples``, reparameterised draws."""
        k = int(self.spec.param("iw_samples"))
        mu, logvar = self.posterior(self.encoder_input(x, generator))
        eps = torch.randn((k, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        log_w = decoder_log_likelihood(self, x)(z) + self.log_prior_over_posterior(z, eps, logvar)
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)
        return {"loss": -bound.mean()}
