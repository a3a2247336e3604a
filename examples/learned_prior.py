"""An external family: a VAE whose prior is learned, a mixture of Gaussians over the code.

The worked example of README's "Benchmark your own model": one file beside params.yaml, named
in a variant as ``family: examples.learned_prior:LearnedPriorVAE``. It keeps the VAE's encoder,
decoder and diagonal-Gaussian posterior and replaces the N(0, I) prior with
p(z) = 1/K sum_k N(z; m_k, diag exp(v_k)), whose means and log-variances train with the model
(the idea of Tomczak & Welling 2018's VampPrior, with free components instead of pseudo-inputs).
Because it declares its own ``log_prior`` and ``prior_codes``, the benchmark's likelihood
(importance-sampled NLL), its ELBO and its ``prior`` sampler use this prior, not N(0, I); the KL
has no closed form, so training estimates it from the same draw as the reconstruction.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from aebench import FamilyParams, VariationalAutoencoder


class LearnedPriorParams(FamilyParams):
    prior_components: int = Field(4, ge=1, description="K, the mixture's number of Gaussians")


class LearnedPriorVAE(VariationalAutoencoder):
    family = "examples.learned_prior:LearnedPriorVAE"
    summary = "VAE with a learned mixture-of-Gaussians prior (example of an external family)"
    Params = LearnedPriorParams

    def __init__(self, spec, image_shape):
        super().__init__(spec, image_shape)
        components, dim = spec.param("prior_components"), spec.latent_dim
        # spread start, so the components do not begin as one Gaussian (seeded by the run)
        self.prior_means = nn.Parameter(torch.randn(components, dim))
        self.prior_logvars = nn.Parameter(torch.zeros(components, dim))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the mixture, summed over the code; z has any leading shape."""
        diff = z.unsqueeze(-2) - self.prior_means  # ... × K × D
        per_dim = -0.5 * (diff.pow(2) / self.prior_logvars.exp() + self.prior_logvars)
        per_component = per_dim.sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
        return torch.logsumexp(per_component, dim=-1) - math.log(len(self.prior_means))

    @torch.no_grad()
    def prior_codes(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draws from the mixture: a component each, then its Gaussian (CPU generator)."""
        means, logvars = self.prior_means.detach().cpu(), self.prior_logvars.detach().cpu()
        picks = torch.randint(len(means), (n,), generator=generator)
        noise = torch.randn((n, means.shape[1]), generator=generator)
        return means[picks] + (0.5 * logvars[picks]).exp() * noise
