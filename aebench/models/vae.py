"""Variational autoencoders: ``vae`` (Kingma & Welling 2014, with a beta weight on the KL term,
Higgins et al. 2017) and ``dvae`` (Im et al. 2017: the same objective, corrupted encoder input).

:class:`VariationalAutoencoder` is also the base of every family with a posterior: it declares
q(z | x) (a diagonal Gaussian from the encoder), the prior p(z) with its own sampler, and the
log-density ratio the importance-sampled NLL needs. A family with another prior (a learned one,
a VampPrior) overrides :meth:`log_prior` and :meth:`prior_codes`; the NLL, the ELBO and the
``prior`` sampler then use its prior, not N(0, I).
"""

from __future__ import annotations

import math

import torch

from aebench.metrics.likelihood import gaussian_kl, log_prior_over_posterior
from aebench.models.ae import PRIOR_CODE_REASON, Autoencoder

LOG_2PI = math.log(2 * math.pi)


class VariationalAutoencoder(Autoencoder):
    """Gaussian posterior with diagonal covariance, N(0, I) prior, reparameterised sampling."""

    family = "vae"
    summary = "variational AE (Kingma & Welling 2014), β weighting the KL (Higgins et al. 2017)"
    samplers = ("prior", "gmm")
    has_posterior = True
    takes_beta = True
    code_activations = ("linear",)
    code_activation_reason = PRIOR_CODE_REASON

    def code_width(self) -> int:
        return 2 * self.spec.latent_dim  # mean and log-variance

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last dim: N(0, I)."""
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)

    @staticmethod
    def log_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """log q(z | x) summed over the last dim, for q = N(mu, diag exp(logvar))."""
        return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(-1)

    def standard_prior(self) -> bool:
        """Whether p(z) is this class's N(0, I) (a subclass may bring its own)."""
        return type(self).log_prior is VariationalAutoencoder.log_prior

    def log_prior_over_posterior(
        self, z: torch.Tensor, eps: torch.Tensor, logvar: torch.Tensor
    ) -> torch.Tensor:
        """log p(z) - log q(z | x) for z = mu + exp(logvar / 2) * eps, summed over the code.

        With the N(0, I) prior the log 2π terms cancel and q's density is read off the noise:
        one expression, exact where (z - mu) / std would lose precision. Another prior takes
        :meth:`log_prior` minus the same density of q."""
        if self.standard_prior():
            return log_prior_over_posterior(z, eps, logvar)
        log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
        return self.log_prior(z) - log_q

    def kl_to_prior(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor | None:
        """KL(q(z | x) || p(z)) per row in closed form, or None where there is none (then the
        bounds estimate it from the same draws as the reconstruction)."""
        return gaussian_kl(mu, logvar) if self.standard_prior() else None

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Negative beta-ELBO, nats per image: recon + beta * KL."""
        mu, logvar = self.posterior(self.encoder_input(x, generator))
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        recon = self.reconstruction_nll(self.decode(z), x).mean()
        kl = self.kl_to_prior(mu, logvar)
        if kl is None:
            kl = -self.log_prior_over_posterior(z, eps, logvar)
        kl = kl.mean()
        beta = 1.0 if self.spec.beta is None else self.spec.beta  # a family without the key
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


class DenoisingVariationalAutoencoder(VariationalAutoencoder):
    """Im et al. 2017: the VAE's bound computed from a corrupted input."""

    family = "dvae"
    summary = "denoising VAE (Im et al. 2017): the VAE's bound computed from a corrupted input"
    samplers = ("prior", "gmm", "chain")
    denoises = True
