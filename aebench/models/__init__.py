"""Model families behind one interface, and checkpoints that rebuild them from their spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from aebench.io import save_torch
from aebench.models.ae import Autoencoder, FamilyParams
from aebench.models.nets import ImageShape
from aebench.models.registry import family_class
from aebench.models.vae import VariationalAutoencoder
from aebench.spec import VariantSpec, variant_from_dict

__all__ = [
    "Autoencoder",
    "FamilyParams",
    "VariationalAutoencoder",
    "build_model",
    "load_checkpoint",
]


def build_model(spec: VariantSpec, image_shape: ImageShape) -> Autoencoder:
    return family_class(spec.family)(spec, image_shape)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(model: Autoencoder, path: Path, extra: dict[str, Any] | None = None) -> None:
    """state_dict plus the variant config, all plain types (loadable with weights_only=True)."""
    payload = {
        # through JSON: every string its own object, as when the spec came from a file, so
        # that the pickled bytes never depend on where the spec was built (pickle writes a
        # string met twice as a back-reference)
        "variant": json.loads(json.dumps(model.spec.to_dict())),
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
