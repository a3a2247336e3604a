"""Wasserstein autoencoder with the MMD penalty (Tolstikhin, Bousquet, Gelly & Schölkopf 2018,
WAE-MMD, their Algorithm 2): a deterministic encoder whose code distribution over the data is
pushed towards the prior N(0, I) by a maximum mean discrepancy, instead of each image's posterior
by a KL. The reconstruction cost is this benchmark's decoder likelihood (the paper's c(x, y) was a
squared error), so prior draws decode to images like every variational family's."""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models.ae import PRIOR_CODE_REASON, Autoencoder, FamilyParams


class WAEParams(FamilyParams):
    mmd_weight: float = Field(10.0, ge=0, description="lambda (Tolstikhin et al.: 10 on MNIST)")


def imq_kernel(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse multiquadratic kernel C / (C + ||a_i - b_j||^2); shape len(a) × len(b)."""
    squared = (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)
    return scale / (scale + squared)


def mmd_imq(codes: torch.Tensor, prior_draws: torch.Tensor, scale: float) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between the codes' and the prior's distributions (U-statistic:
    the within-sample sums leave out i = j). A batch of one row has no within-sample pair, so
    it carries no estimate: 0 (the last batch of a split of N = 1 mod batch size)."""
    n, m = len(codes), len(prior_draws)
    if n < 2 or m < 2:
        return codes.new_zeros(())
    within_q = imq_kernel(codes, codes, scale)
    within_p = imq_kernel(prior_draws, prior_draws, scale)
    return (
        (within_p.sum() - within_p.diagonal().sum()) / (m * (m - 1))
        + (within_q.sum() - within_q.diagonal().sum()) / (n * (n - 1))
        - 2 * imq_kernel(codes, prior_draws, scale).mean()
    )


class WassersteinAutoencoder(Autoencoder):
    """Deterministic code, N(0, I) prior (so it has the ``prior`` sampler), loss recon + λ MMD."""

    family = "wae"
    summary = (
        "Wasserstein AE, MMD form (Tolstikhin et al. 2018): a deterministic code pushed "
        "towards N(0, I) by an inverse-multiquadratic-kernel MMD"
    )
    Params = WAEParams
    samplers = ("prior", "gmm")
    code_activations = ("linear",)
    code_activation_reason = PRIOR_CODE_REASON

    def kernel_scale(self) -> float:
        """C = 2 d sigma^2 with the prior's sigma^2 = 1: the paper's choice for its IMQ kernel."""
        return 2.0 * self.spec.latent_dim

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(self.encoder_input(x, generator))
        recon = self.reconstruction_nll(self.decode(code), x).mean()
        prior = torch.randn(code.shape, generator=generator, device=code.device, dtype=code.dtype)
        mmd = mmd_imq(code, prior, self.kernel_scale())
        return {"loss": recon + self.spec.param("mmd_weight") * mmd, "recon": recon, "mmd": mmd}
