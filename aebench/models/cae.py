"""Contractive autoencoder (Rifai, Vincent, Muller, Glorot & Bengio 2011): the reconstruction plus
λ ||J_f(x)||_F², the squared Frobenius norm of the encoder's Jacobian at each training image,
which flattens the code along directions the data does not move in. Alain & Bengio (2014) show a
DAE with small Gaussian noise behaves like one. As in the paper the code units are sigmoid.

Training uses an unbiased one-probe estimator of the penalty: for a Rademacher vector u over the
code units, E ||uᵀ J||² = trace(J Jᵀ) = ||J||_F², and uᵀ J is one vector-Jacobian product (one
extra backward pass through the encoder), where the exact norm needs one per code unit (16 in
the default variants). The validation objective, which early stopping and the report read, uses
the exact norm, so it carries no probe noise."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from aebench.models.ae import Autoencoder, FamilyParams


class CAEParams(FamilyParams):
    contraction_weight: float = Field(0.1, ge=0, description="lambda on ||J||_F^2")


def jacobian_frobenius_sq(
    encoder: nn.Module, x: torch.Tensor, width: int, create_graph: bool = False
) -> torch.Tensor:
    """Exact ||d encoder(x_n) / d x_n||_F² per image, for an encoder with ``width`` outputs;
    shape N. One backward pass over the batch repeated ``width`` times: block j of the repeat
    carries row j of every image's Jacobian."""
    n = len(x)
    with torch.enable_grad():
        repeated = x.detach().repeat(width, *([1] * (x.dim() - 1))).requires_grad_(True)
        code = encoder(repeated)
        select = torch.eye(width, device=x.device, dtype=code.dtype).repeat_interleave(n, dim=0)
        (grad,) = torch.autograd.grad(code, repeated, select, create_graph=create_graph)
    return grad.pow(2).flatten(1).sum(1).view(width, n).sum(0)


class ContractiveAutoencoder(Autoencoder):
    family = "cae"
    summary = (
        "contractive AE (Rifai et al. 2011): λ ‖∂z/∂x‖²_F on the encoder's Jacobian (exact in "
        "validation, a one-probe unbiased estimate in training)"
    )
    Params = CAEParams
    code_activations = ("sigmoid", "linear", "relu")  # sigmoid as in the paper

    def loss_terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """recon + λ ||J||_F²: estimated with one probe per image in training mode, exact in
        eval mode (the validation objective); differentiable wherever gradients are on."""
        weight = self.spec.param("contraction_weight")
        if not self.training:
            logits = self.decode(self.encode(x))
            contraction = jacobian_frobenius_sq(
                self.encoder, x, self.code_width(), create_graph=torch.is_grad_enabled()
            ).mean()
        else:
            inputs = x.detach().requires_grad_(True)
            code = self.encoder(inputs)
            logits = self.decode(code)
            probe = torch.randint(0, 2, code.shape, generator=generator, device=code.device)
            probe = probe.to(code.dtype) * 2 - 1  # Rademacher: ±1 with equal odds
            (grad,) = torch.autograd.grad(code, inputs, grad_outputs=probe, create_graph=True)
            contraction = grad.pow(2).flatten(1).sum(1).mean()
        recon = self.reconstruction_nll(logits, x).mean()
        return {"loss": recon + weight * contraction, "recon": recon, "contraction": contraction}
