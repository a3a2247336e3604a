"""Ways to draw new images from a trained model (DESIGN.md: samplers).

- ``prior``: z ~ N(0, I) through the decoder (variational families only);
- ``gmm``: a Gaussian mixture fitted on the training codes, sampled and decoded — "ex-post density
  estimation" (Ghosh et al. 2020), which gives every family, deterministic ones included, a
  generative model;
- ``chain``: the DAE Markov chain of Bengio et al. (2013), alternating the variant's own
  corruption with reconstruction, from uniform noise, after burn-in and with thinning.

Samples are decoder means in [0, 1], N×C×H×W, and depend only on the model and the seed.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from aebench.config import SAMPLER_FAMILIES, ChainConfig
from aebench.models import Autoencoder, VariationalAutoencoder
from aebench.noise import corrupt


def applicable_samplers(family: str, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The requested samplers that make sense for ``family``, in the requested order."""
    return tuple(name for name in requested if family in SAMPLER_FAMILIES[name])


@torch.no_grad()
def sample_prior(model: VariationalAutoencoder, n: int, seed: int) -> torch.Tensor:
    device = next(model.parameters()).device
    z = torch.randn((n, model.spec.latent_dim), generator=torch.Generator().manual_seed(seed))
    return torch.sigmoid(model.decode(z.to(device)))


def fit_code_mixture(codes: np.ndarray, components: int, seed: int) -> GaussianMixture:
    """Full-covariance Gaussian mixture on the training codes (deterministic given ``seed``)."""
    mixture = GaussianMixture(
        n_components=components, covariance_type="full", reg_covar=1e-5, random_state=seed
    )
    return mixture.fit(codes)


def sample_mixture_codes(mixture: GaussianMixture, n: int, seed: int) -> np.ndarray:
    """``n`` codes from the mixture, in random order (sklearn returns them grouped by component,
    which would fill a sample grid with a single component)."""
    codes, _ = mixture.sample(n)
    return codes[np.random.default_rng(seed).permutation(n)]


@torch.no_grad()
def sample_gmm(model: Autoencoder, mixture: GaussianMixture, n: int, seed: int) -> torch.Tensor:
    device = next(model.parameters()).device
    z = torch.as_tensor(sample_mixture_codes(mixture, n, seed), dtype=torch.float32)
    return torch.sigmoid(model.decode(z.to(device)))


@torch.no_grad()
def sample_chain(model: Autoencoder, n: int, chain: ChainConfig, seed: int) -> torch.Tensor:
    """``n`` states of ``chain.chains`` parallel chains, taken every ``thin`` steps after
    ``burn_in`` steps; each step corrupts the state with the variant's noise and reconstructs."""
    noise = model.spec.noise
    if noise is None:
        raise ValueError(f"the chain sampler needs a denoising variant; {model.spec.name} has none")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    state = torch.rand((chain.chains, *model.image_shape), generator=generator)
    kept: list[torch.Tensor] = []
    collected, step = 0, 0
    while collected < n:
        corrupted = corrupt(state, noise.kind, noise.level, generator)  # CPU draws
        state = model.reconstruct(corrupted.to(device)).cpu()
        step += 1
        if step > chain.burn_in and (step - chain.burn_in) % chain.thin == 0:
            kept.append(state)
            collected += len(state)
    return torch.cat(kept)[:n].to(device)


def draw_samples(
    model: Autoencoder,
    sampler: str,
    n: int,
    seed: int,
    train_codes: np.ndarray,
    components: int,
    chain: ChainConfig,
) -> torch.Tensor:
    """``n`` samples from ``sampler`` (one of :data:`aebench.config.SAMPLERS`)."""
    if sampler == "prior":
        return sample_prior(model, n, seed)
    if sampler == "gmm":
        return sample_gmm(model, fit_code_mixture(train_codes, components, seed), n, seed)
    if sampler == "chain":
        return sample_chain(model, n, chain, seed)
    raise ValueError(f"unknown sampler {sampler!r}")
