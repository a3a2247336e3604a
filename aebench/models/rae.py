"""Regularised autoencoder, RAE-L2 (Ghosh, Sajjadi, Vergari, Black & Schölkopf 2020): a
deterministic AE whose code is kept small by an L2 penalty (β ½||z||², in place of the VAE's KL)
and whose decoder is kept smooth by weight decay (λ ||θ_dec||², in place of the VAE's injected
noise). It has no prior of its own: new images come from the GMM sampler fitted to its codes,
the paper's "ex-post density estimation"."""

from __future__ import annotations

import torch
from pydantic import Field

from aebench.models.ae import Autoencoder, FamilyParams


class RAEParams(FamilyParams):
    code_penalty: float = Field(1.0, ge=0, description="beta on 1/2 ||z||^2")
    decoder_decay: float = Field(1e-3, ge=0, description="lambda on ||decoder weights||^2")


class RegularizedAutoencoder(Autoencoder):
    family = "rae"
    summary = (
        "regularised AE, L2 form (Ghosh et al. 2020): β ½‖z‖² on the code and weight decay on "
        "the decoder; sampled ex post with the GMM"
    )
    Params = RAEParams

    def decoder_weight_norm(self) -> torch.Tensor:
        """||θ_dec||²: sum of squares of every decoder parameter (weights and biases)."""
        return sum(p.pow(2).sum() for p in self.decoder.parameters())

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        code = self.encode(self.encoder_input(x, generator))
        recon = self.reconstruction_nll(self.decode(code), x).mean()
        code_l2 = 0.5 * code.pow(2).sum(1).mean()
        decay = self.decoder_weight_norm()
        loss = (
            recon
            + self.spec.param("code_penalty") * code_l2
            + self.spec.param("decoder_decay") * decay
        )
        return {"loss": loss, "recon": recon, "code_l2": code_l2, "decoder_l2": decay}
