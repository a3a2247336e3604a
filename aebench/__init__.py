"""aebench: a reproducible benchmark of autoencoders (VAE, DAE and the families between them).

The public API, for a family of your own (``family: my_module:MyClass`` in params.yaml):
:class:`Autoencoder` or :class:`VariationalAutoencoder` to subclass and :class:`FamilyParams`
for its own settings. They are imported on first use, so that importing a light aebench module
(a stage that never builds a model) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Autoencoder": "aebench.models.ae",
    "FamilyParams": "aebench.models.ae",
    "VariationalAutoencoder": "aebench.models.vae",
    "ImageShape": "aebench.models.nets",
    "VariantSpec": "aebench.spec",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'aebench' has no attribute {name!r}")
