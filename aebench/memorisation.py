"""Calibrating the copy rate: what a memorising model and a copying sampler score on the same
images and threshold.

The copy rate (:func:`aebench.metrics.sample_quality.copy_rate`) counts images nearer to a
training image than 95% of the held-out images are. On its own a rate of 0.01 or 0.08 has no
scale. Two controls give it one:

- **training reconstructions** (a positive control, per run): the model's reconstructions of a
  fixed, seeded subset of training images, as many as every sampler draws. A model that
  memorised its training set reproduces them and scores near the training images' own rate; one
  that generalises scores near its reconstructions of held-out images
  (``sample_recon_copy_rate``, the evaluate stage's). Their MSE beside the test MSE shows the
  same gap in pixels.
- **training images** (per dataset): the rate of a sampler that returns training images
  unchanged: 1 by construction, unless held-out images duplicate training images (the
  threshold is then 0).
"""

from __future__ import annotations

import numpy as np
import torch

from aebench.metrics.sample_quality import copy_rate
from aebench.models import Autoencoder


def control_indices(n_train: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct training-image indices, seeded, in increasing order: the same images for
    every model of a dataset. Uniform, unlike :func:`aebench.data.training_subset`'s stratified
    draw of a smaller training set."""
    if not 0 < n <= n_train:
        raise ValueError(f"cannot draw {n} of {n_train} training images")
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:n])


def training_images_rate(
    train_features: np.ndarray, held_out: np.ndarray, subset: np.ndarray
) -> float:
    """The copy rate of a sampler that returns the ``subset`` of training images unchanged."""
    return copy_rate(train_features, held_out, train_features[subset])


def reconstruction_control(
    model: Autoencoder,
    images: torch.Tensor,
    featurize,
    train_features: np.ndarray,
    held_out: np.ndarray,
    batch_size: int,
) -> dict[str, float]:
    """``recon_train_copy_rate`` and ``recon_train_mse`` of the model's reconstructions of
    ``images`` (training images)."""
    with torch.no_grad():  # batched; evaluate.batched would make evaluation code a dependency
        recon = torch.cat(
            [
                model.reconstruct(images[i : i + batch_size])
                for i in range(0, len(images), batch_size)
            ]
        )
    features, _ = featurize(recon)
    mse = float(((recon - images) ** 2).flatten(1).mean(dim=1).double().mean())
    return {
        "recon_train_copy_rate": copy_rate(train_features, held_out, features),
        "recon_train_mse": mse,
    }
