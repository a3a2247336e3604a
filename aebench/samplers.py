"""Ways to draw new images from a trained model (DESIGN.md: samplers).

- ``prior``: z ~ N(0, I) through the decoder (the families trained towards that prior: VAE,
  DVAE, IWAE and WAE);
- ``gmm``: a Gaussian mixture fitted on the training codes, sampled and decoded — "ex-post density
  estimation" (Ghosh et al. 2020), which gives every family, deterministic ones included, a
  generative model;
- ``chain``: the generalised denoising-autoencoder Markov chain of Bengio et al. (2013), from
  uniform noise: each step corrupts the state with the variant's own noise C(X~ | X), then DRAWS
  the next state from the model's reconstruction distribution P(X | X~) (a Bernoulli draw for
  Bernoulli decoders, a clipped Gaussian draw for Gaussian ones; the DVAE first draws
  z ~ q(z | X~)). Bengio et al.'s result that the chain samples the data distribution needs
  these draws and a consistent estimator of P(X | X~); a Bernoulli decoder trained on grey
  levels is not one, so here it is the paper's procedure, not its guarantee. A chain that feeds
  the decoder mean back alternates noise with a denoising map that pulls every state toward a
  few attractors (on mnist5k a 40-epoch DAE's chains changed class between steps 50 and 100 in
  10% of cases with the mean fed back, 53% with draws). The images
  kept (after burn-in, every ``thin`` steps) are the MEANS of P(X | X~) at those steps, so they
  compare with the other samplers' decoder means; the binary or noisy states themselves are
  never scored or shown.

Samples are decoder means in [0, 1], N×C×H×W, and depend only on the model and the seed: every
random draw comes from a CPU ``torch.Generator``, so CPU and CUDA runs draw the same numbers.
The evaluation asks every sampler for as many samples as the reference split holds (see
:func:`aebench.evaluate.evaluate_run`), because the sample metrics are biased by the count.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from aebench.models import Autoencoder, VariationalAutoencoder
from aebench.models.registry import applicable_samplers as applicable_samplers  # its old home
from aebench.noise import corrupt
from aebench.spec import ChainConfig, VariantSpec


@torch.no_grad()
def sample_prior(model: Autoencoder, n: int, seed: int) -> torch.Tensor:
    """Decoded draws from the family's own prior (:meth:`Autoencoder.prior_codes`), on a CPU
    generator seeded with ``seed``."""
    device = next(model.parameters()).device
    z = model.prior_codes(n, torch.Generator().manual_seed(seed))
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


def reconstruction_mean(
    model: Autoencoder, corrupted: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Mean of P(X | X~) for a corrupted batch, on the model's device.

    Deterministic families decode their code of X~. A variational model (the DVAE) decodes a
    z ~ q(z | X~) drawn by reparameterisation with CPU noise, so the chain samples its latent
    as Bengio et al.'s stochastic encoder does; the mean returned is the decoder mean at that z.
    """
    if not isinstance(model, VariationalAutoencoder):
        return torch.sigmoid(model.decode(model.encode(corrupted)))
    mu, logvar = model.posterior(corrupted)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return torch.sigmoid(model.decode(mu + (0.5 * logvar).exp() * eps))


def draw_observation(
    mean: torch.Tensor, spec: VariantSpec, generator: torch.Generator
) -> torch.Tensor:
    """A draw from the decoder's likelihood with the given mean (CPU tensors in [0, 1]).

    Bernoulli decoders: each pixel is 1 with probability ``mean`` (binary states). Gaussian
    decoders: ``mean + obs_std * eps``, eps ~ N(0, I), CLIPPED to [0, 1] so the state stays an
    image the encoder was trained on; the clipping piles the tails' mass onto 0 and 1, so the
    state is a draw from the clipped, not the exact, Gaussian.
    """
    if spec.likelihood == "bernoulli":
        return (torch.rand(mean.shape, generator=generator) < mean).to(mean.dtype)
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
    return (mean + spec.obs_std * noise).clamp_(0.0, 1.0)


@torch.no_grad()
def chain_step(
    model: Autoencoder, state: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One transition of the chain from a CPU ``state``: (next state, mean of P(X | X~)), CPU.

    Corrupt with the variant's own noise, then draw the next state from P(X | X~). Every random
    number comes from the CPU ``generator`` in a fixed order (corruption, latent, observation),
    so CPU and CUDA runs draw the same numbers; they can differ only where a Bernoulli uniform
    falls within float round-off of the mean.
    """
    noise = model.spec.noise
    device = next(model.parameters()).device
    corrupted = corrupt(state, noise.kind, noise.level, generator)
    mean = reconstruction_mean(model, corrupted.to(device), generator).cpu()
    return draw_observation(mean, model.spec, generator), mean


@torch.no_grad()
def sample_chain(model: Autoencoder, n: int, chain: ChainConfig, seed: int) -> torch.Tensor:
    """``n`` samples: means of P(X | X~) of min(``chain.chains``, n) parallel chains from uniform
    noise, taken every ``thin`` steps after ``burn_in`` steps (see the module docstring).

    No more chains than samples run: with at least as many chains as samples, every sample comes
    from its own chain after burn-in (independent samples), and extra chains would be discarded.
    """
    if model.spec.noise is None:
        raise ValueError(f"the chain sampler needs a denoising variant; {model.spec.name} has none")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    state = torch.rand((min(chain.chains, n), *model.image_shape), generator=generator)
    kept: list[torch.Tensor] = []
    collected, step = 0, 0
    while collected < n:
        state, mean = chain_step(model, state, generator)
        step += 1
        if step > chain.burn_in and (step - chain.burn_in) % chain.thin == 0:
            kept.append(mean)
            collected += len(mean)
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
    """``n`` samples from ``sampler`` (one of :data:`aebench.spec.SAMPLERS`)."""
    if sampler == "prior":
        return sample_prior(model, n, seed)
    if sampler == "gmm":
        return sample_gmm(model, fit_code_mixture(train_codes, components, seed), n, seed)
    if sampler == "chain":
        return sample_chain(model, n, chain, seed)
    raise ValueError(f"unknown sampler {sampler!r}")
