"""Sparse autoencoder, in the form of Ng's lecture notes (CS294A, 2011): sigmoid code units and a
penalty sum_j KL(ρ || ρ̂_j), where ρ̂_j is unit j's mean activation over the batch and ρ the target
firing rate; a unit that fires more (or less) often than ρ pays for it. (The other common form,
L1 on ReLU activations, has no target rate to state; this one does.)"""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models.ae import Autoencoder, FamilyParams

RATE_FLOOR = 1e-6  # keeps log ρ̂ finite when every unit of a batch saturates


def bernoulli_kl(target: float, rates: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(target) || Bernoulli(rate_j)) summed over units j, in nats."""
    rates = rates.clamp(RATE_FLOOR, 1 - RATE_FLOOR)
    return (
        target * torch.log(target / rates) + (1 - target) * torch.log((1 - target) / (1 - rates))
    ).sum()


class SAEParams(FamilyParams):
    sparsity_target: float = Field(0.05, gt=0, lt=1, description="the firing rate rho")
    sparsity_weight: float = Field(1.0, ge=0, description="the KL's weight")


class SparseAutoencoder(Autoencoder):
    family = "sae"
    summary = (
        "sparse AE (Ng 2011): Σ_j KL(ρ ‖ ρ̂_j) between a target firing rate ρ and each sigmoid "
        "code unit's mean rate ρ̂_j"
    )
    Params = SAEParams
    code_activations = ("sigmoid",)
    code_activation_reason = (
        "has a penalty that is a KL towards a firing rate, so its code units must be sigmoid"
    )

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(self.encoder_input(x, generator))  # sigmoid units, in (0, 1)
        recon = self.reconstruction_nll(self.decode(code), x).mean()
        sparsity = bernoulli_kl(self.spec.param("sparsity_target"), code.mean(0))
        loss = recon + self.spec.param("sparsity_weight") * sparsity
        return {"loss": loss, "recon": recon, "sparsity_kl": sparsity}
