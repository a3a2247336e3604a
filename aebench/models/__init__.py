"""Model families behind one interface, and checkpoints that rebuild them from their config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aebench.config import FAMILIES, VariantSpec, variant_from_dict
from aebench.io import save_torch
from aebench.models.ae import Autoencoder
from aebench.models.cae import ContractiveAutoencoder
from aebench.models.iwae import ImportanceWeightedAutoencoder
from aebench.models.nets import ImageShape
from aebench.models.rae import RegularizedAutoencoder
from aebench.models.sae import SparseAutoencoder
from aebench.models.vae import VariationalAutoencoder
from aebench.models.wae import WassersteinAutoencoder

FAMILY_CLASSES: dict[str, type[Autoencoder]] = {
    "ae": Autoencoder,
    "dae": Autoencoder,  # corrupts its encoder input: the variant has a noise spec
    "vae": VariationalAutoencoder,
    "dvae": VariationalAutoencoder,
    "iwae": ImportanceWeightedAutoencoder,
    "wae": WassersteinAutoencoder,
    "rae": RegularizedAutoencoder,
    "cae": ContractiveAutoencoder,
    "sae": SparseAutoencoder,
}
assert tuple(FAMILY_CLASSES) == FAMILIES

__all__ = ["Autoencoder", "VariationalAutoencoder", "build_model", "load_checkpoint"]


def build_model(spec: VariantSpec, image_shape: ImageShape) -> Autoencoder:
    return FAMILY_CLASSES[spec.family](spec, image_shape)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(model: Autoencoder, path: Path, extra: dict[str, Any] | None = None) -> None:
    """state_dict plus the variant config, all plain types (loadable with weights_only=True)."""
    payload = {
        "variant": model.spec.to_dict(),
        "image_shape": list(model.image_shape),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    save_torch(payload, Path(path))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Autoencoder:
    payload = torch.load(Path(path), map_location=device, weights_only=True)
    spec = variant_from_dict(payload["variant"])
    model = build_model(spec, tuple(payload["image_shape"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval()
