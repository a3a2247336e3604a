"""Variational autoencoders: ``vae`` (Kingma & Welling 2014, with a beta weight on the KL term,
Higgins et al. 2017) and ``dvae`` (Im et al. 2017: the same objective, corrupted encoder input;
the variant's noise spec switches it on)."""

from __future__ import annotations

import torch

from aebench.metrics.likelihood import gaussian_kl
from aebench.models.ae import Autoencoder


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior with diagonal covariance, N(0, I) prior, reparameterised sampling."""

    def code_width(self) -> int:
        return 2 * self.spec.latent_dim  # mean and log-variance

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Negative beta-ELBO, nats per image: recon + beta * KL."""
        mu, logvar = self.posterior(self.encoder_input(x, generator))
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        recon = self.reconstruction_nll(self.decode(z), x).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": recon + self.spec.beta * kl, "recon": recon, "kl": kl}
