"""Likelihood estimators against cases whose answer is known independently.

The reference is a linear-Gaussian latent model, z ~ N(0, I), x | z ~ N(Wz + b, σ²I), whose
marginal x ~ N(b, WWᵀ + σ²I) is exact (torch.distributions.MultivariateNormal). W has orthogonal
columns, so the exact posterior is a diagonal Gaussian, which q(z | x) can represent.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal, Normal

from aebench.config import parse_params
from aebench.metrics.likelihood import (
    CUDA_CHUNK_ROWS,
    DEFAULT_CHUNK_ROWS,
    default_chunk_rows,
    elbo,
    importance_sampled_nll,
    iwae_bound,
    negative_elbo,
)
from aebench.models import build_model
from aebench.noise import binarize

F64 = torch.float64


class LinearGaussian(nn.Module):
    """z ~ N(0, I), x | z ~ N(Wz + b, σ²I), with the VAE surface the estimators use.

    ``posterior`` is the exact one, or the prior when ``exact_posterior`` is False (a poor q).
    """

    def __init__(self, seed: int = 0, sigma: float = 0.6, scales=(1.5, 0.8), x_dim: int = 3):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        basis, _ = torch.linalg.qr(torch.randn(x_dim, len(scales), generator=gen, dtype=F64))
        self.register_buffer("weight", basis * torch.tensor(scales, dtype=F64))
        self.register_buffer("bias", torch.randn(x_dim, generator=gen, dtype=F64))
        self.sigma = sigma
        self.exact_posterior = True

    @property
    def latent_dim(self) -> int:
        return self.weight.shape[1]

    def sample(self, n: int, seed: int) -> Tensor:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=gen, dtype=F64)
        noise = torch.randn(n, self.weight.shape[0], generator=gen, dtype=F64)
        return z @ self.weight.T + self.bias + self.sigma * noise

    def exact_log_px(self, x: Tensor) -> Tensor:
        eye = torch.eye(self.weight.shape[0], dtype=F64)
        cov = self.weight @ self.weight.T + self.sigma**2 * eye
        return MultivariateNormal(self.bias, cov).log_prob(x)

    def exact_posterior_params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # precision I + WᵀW/σ² is diagonal because W's columns are orthogonal
        var = 1.0 / (1.0 + (self.weight**2).sum(0) / self.sigma**2)
        mu = var * ((x - self.bias) @ self.weight) / self.sigma**2
        return mu, var.log().expand_as(mu)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.exact_posterior:
            return self.exact_posterior_params(x)
        zeros = x.new_zeros(len(x), self.latent_dim)
        return zeros, zeros

    def decode(self, z: Tensor) -> Tensor:
        return z @ self.weight.T + self.bias

    def reconstruction_nll(self, mean: Tensor, x: Tensor) -> Tensor:
        return -Normal(mean, self.sigma).log_prob(x).sum(-1)

    def log_px_given_z(self, x: Tensor):
        """The core estimators' callable: codes k × n × D -> log p(x | z), k × n."""
        return lambda z: -self.reconstruction_nll(self.decode(z), x)

    def closed_form_elbo(self, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """E_q[log p(x | z)] - KL(q || p), both in closed form for a diagonal Gaussian q."""
        resid = x - self.decode(mu)
        spread = (logvar.exp() * (self.weight**2).sum(0)).sum(1)  # tr(W diag(v) Wᵀ)
        d = x.shape[1]
        expected_ll = -0.5 * d * math.log(2 * math.pi * self.sigma**2) - (
            resid.pow(2).sum(1) + spread
        ) / (2 * self.sigma**2)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        return expected_ll - kl

    def prior_weight_relative_variance(self, x: Tensor) -> Tensor:
        """Var(w) / p(x)² for w = p(x | z), z ~ prior.

        E[w²] = (4πσ²)^(-d/2) N(x; b, WWᵀ + σ²I/2), since N(x; m, σ²I)² is a narrower Gaussian.
        """
        d = x.shape[1]
        cov = self.weight @ self.weight.T + 0.5 * self.sigma**2 * torch.eye(d, dtype=F64)
        log_ew2 = -0.5 * d * math.log(4 * math.pi * self.sigma**2)
        log_ew2 = log_ew2 + MultivariateNormal(self.bias, cov).log_prob(x)
        return (log_ew2 - 2 * self.exact_log_px(x)).exp() - 1


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def lg() -> LinearGaussian:
    return LinearGaussian()


# --- the core functions -------------------------------------------------------------------------


def test_closed_form_elbo_at_exact_posterior_is_log_px(lg):
    """Checks the test's own formulas: the ELBO is tight when q is the exact posterior."""
    x = lg.sample(16, seed=1)
    mu, logvar = lg.exact_posterior_params(x)
    assert torch.allclose(lg.closed_form_elbo(x, mu, logvar), lg.exact_log_px(x), atol=1e-12)


@pytest.mark.parametrize("num_samples", [1, 50])
def test_iwae_is_exact_with_the_exact_posterior(lg, num_samples):
    """Every importance weight equals p(x), so any K gives log p(x) to round-off."""
    x = lg.sample(16, seed=1)
    mu, logvar = lg.exact_posterior_params(x)
    bound = iwae_bound(lg.log_px_given_z(x), mu, logvar, num_samples, _gen(2), chunk_size=7)
    assert bound.shape == (16,)
    assert torch.allclose(bound, lg.exact_log_px(x), rtol=0, atol=1e-10)


def test_iwae_with_the_prior_as_q_converges_at_large_k(lg):
    """Delta method: -log(mean of K weights) has bias c²/(2K) and std c/√K, c² = Var(w)/p(x)²,
    known in closed form here. Allow the bias plus 4 standard deviations, per image and for the
    mean over images; the K = 1 error (the whole ELBO gap) is far outside that."""
    x = lg.sample(32, seed=1)
    zeros = x.new_zeros(32, lg.latent_dim)
    k = 5000
    err = -iwae_bound(lg.log_px_given_z(x), zeros, zeros, k, _gen(3)) + lg.exact_log_px(x)
    c2 = lg.prior_weight_relative_variance(x)
    assert (err.abs() <= c2 / (2 * k) + 4 * (c2 / k).sqrt()).all()
    mean_tol = (c2.mean() / (2 * k) + 4 * (c2.sum() / k).sqrt() / len(x)).item()
    assert mean_tol < 0.1
    assert abs(err.mean().item()) <= mean_tol
    gap = lg.exact_log_px(x) - lg.closed_form_elbo(x, zeros, zeros)
    assert gap.mean().item() > 20 * mean_tol


def test_bounds_are_ordered_with_a_poor_q(lg):
    """-ELBO >= IWAE-NLL(10) >= IWAE-NLL(100) >= -log p(x), in expectation. Averaged over 1024
    images, the K = 100 excess over the exact NLL (about c²/(2K) ~ 0.05 nats) stands several
    delta-method standard deviations (√(Σc²/K) / N ~ 0.01) clear of the noise."""
    x = lg.sample(1024, seed=1)
    zeros = x.new_zeros(1024, lg.latent_dim)
    exact_nll = -lg.exact_log_px(x).mean().item()
    neg_elbo = -lg.closed_form_elbo(x, zeros, zeros).mean().item()
    fn = lg.log_px_given_z(x)
    nll_10, nll_100 = (-iwae_bound(fn, zeros, zeros, k, _gen(4)).mean().item() for k in (10, 100))
    assert neg_elbo > nll_10 > nll_100 > exact_nll
    noise_100 = (lg.prior_weight_relative_variance(x).sum() / 100).sqrt().item() / len(x)
    assert nll_100 - exact_nll > 3 * noise_100


def test_elbo_matches_its_closed_form(lg):
    """The Monte Carlo reconstruction term over K draws, within 5 standard errors (estimated from
    independent draws) of the closed form, for the prior and for a shifted, widened q."""
    x = lg.sample(16, seed=1)
    mu_post, logvar_post = lg.exact_posterior_params(x)
    fn = lg.log_px_given_z(x)
    k = 4000
    for mu, logvar in [(torch.zeros_like(mu_post),) * 2, (mu_post + 0.3, logvar_post + 0.5)]:
        z = mu + (0.5 * logvar).exp() * torch.randn((500, *mu.shape), generator=_gen(9), dtype=F64)
        std_err = fn(z).std(0) / math.sqrt(k)
        est = elbo(fn, mu, logvar, k, _gen(5))
        assert ((est - lg.closed_form_elbo(x, mu, logvar)).abs() <= 5 * std_err).all()


def test_chunked_core_matches_unchunked(lg):
    x = lg.sample(6, seed=1)
    zeros = x.new_zeros(6, lg.latent_dim)
    fn = lg.log_px_given_z(x)
    whole = iwae_bound(fn, zeros, zeros, 40, _gen(6), chunk_size=10**6)
    for chunk_size in (1, 7, 13):
        chunked = iwae_bound(fn, zeros, zeros, 40, _gen(6), chunk_size=chunk_size)
        assert torch.allclose(chunked, whole, rtol=0, atol=1e-12)


# --- the model-level functions ------------------------------------------------------------------


def test_model_level_is_exact_with_the_exact_posterior(lg):
    x = lg.sample(16, seed=1)
    for k in (1, 50):
        nll = importance_sampled_nll(lg, x, k, _gen(7), chunk_size=20)
        assert torch.allclose(nll, -lg.exact_log_px(x), rtol=0, atol=1e-10)


def test_model_level_wires_the_core_functions(lg):
    """With one image chunk, the model-level estimates are the core ones on the same samples.

    Equal to round-off, not bit for bit: the model level decodes the k × n codes as one flat
    matrix, the test's callable as a 3-D batch, and BLAS may round those differently (1 ulp
    seen). Other samples would differ by far more than 1e-12."""
    lg.exact_posterior = False
    x = lg.sample(8, seed=1)
    zeros = x.new_zeros(8, lg.latent_dim)
    fn = lg.log_px_given_z(x)
    core = -iwae_bound(fn, zeros, zeros, 30, _gen(8))
    close = dict(rtol=0, atol=1e-12)
    assert torch.allclose(importance_sampled_nll(lg, x, 30, _gen(8)), core, **close)
    core_elbo = -elbo(fn, zeros, zeros, 30, _gen(8))
    assert torch.allclose(negative_elbo(lg, x, 30, _gen(8)), core_elbo, **close)


class RowCounter(nn.Module):
    """Wraps a model and records the most rows any encoder or decoder call received."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.max_rows = 0

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.max_rows = max(self.max_rows, len(x))
        return self.inner.posterior(x)

    def decode(self, z: Tensor) -> Tensor:
        self.max_rows = max(self.max_rows, len(z))
        return self.inner.decode(z)

    def reconstruction_nll(self, logits: Tensor, x: Tensor) -> Tensor:
        return self.inner.reconstruction_nll(logits, x)


@pytest.mark.parametrize("estimator", [importance_sampled_nll, negative_elbo])
def test_chunking_bounds_rows_and_keeps_the_answer(lg, estimator):
    lg.exact_posterior = False
    x = lg.sample(9, seed=1)
    whole = estimator(lg, x, 12, _gen(10), chunk_size=10**6)
    # 30 rows: two images at a time; 5 rows: one image, its samples in chunks of 5
    for chunk_size in (30, 5, 1):
        counter = RowCounter(lg)
        chunked = estimator(counter, x, 12, _gen(10), chunk_size=chunk_size)
        assert 0 < counter.max_rows <= chunk_size
        assert torch.allclose(chunked, whole, rtol=0, atol=1e-12)


def test_chunk_rows_follow_the_device_and_keep_the_answer(lg):
    """GPUs get larger chunks; the samples per image are the same whatever the chunk size, so a
    CPU run with the GPU size agrees to round-off (K = 1000: 4 images a chunk vs all 70)."""
    assert default_chunk_rows("cpu") == DEFAULT_CHUNK_ROWS
    assert default_chunk_rows(torch.device("cuda", 0)) == CUDA_CHUNK_ROWS > DEFAULT_CHUNK_ROWS
    lg.exact_posterior = False
    x = lg.sample(70, seed=1)
    default = importance_sampled_nll(lg, x, 1000, _gen(23))
    assert torch.equal(default, importance_sampled_nll(lg, x, 1000, _gen(23), DEFAULT_CHUNK_ROWS))
    large = importance_sampled_nll(lg, x, 1000, _gen(23), chunk_size=CUDA_CHUNK_ROWS)
    assert torch.allclose(large, default, rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", [importance_sampled_nll, negative_elbo])
def test_same_seed_same_answer_other_seed_other_answer(lg, estimator):
    lg.exact_posterior = False
    x = lg.sample(5, seed=1)
    first = estimator(lg, x, 20, _gen(11))
    assert torch.equal(estimator(lg, x, 20, _gen(11)), first)
    assert not torch.equal(estimator(lg, x, 20, _gen(12)), first)


def test_rejects_bad_counts(lg):
    x = lg.sample(2, seed=1)
    with pytest.raises(ValueError, match="num_samples"):
        importance_sampled_nll(lg, x, 0, _gen(0))
    with pytest.raises(ValueError, match="chunk_size"):
        negative_elbo(lg, x, 3, _gen(0), chunk_size=0)


# --- a real VAE ---------------------------------------------------------------------------------


@pytest.fixture
def tiny_vae(raw_params):
    raw_params["variants"]["vae"].update(latent_dim=4, hidden=[32])
    torch.manual_seed(0)
    return build_model(parse_params(raw_params).variant("vae"), (1, 8, 8)).eval()


def test_real_vae_iwae_is_below_the_elbo(tiny_vae):
    x = binarize(torch.rand(24, 1, 8, 8, generator=_gen(13)), _gen(14))
    nll = importance_sampled_nll(tiny_vae, x, 200, _gen(15))
    neg_elbo = negative_elbo(tiny_vae, x, 200, _gen(15))
    assert nll.shape == neg_elbo.shape == (24,)
    assert torch.isfinite(nll).all() and torch.isfinite(neg_elbo).all()
    assert (nll > 0).all()  # binary images: p(x) <= 1
    assert nll.mean() < neg_elbo.mean()


def test_real_vae_chunking_and_no_grad(tiny_vae):
    x = binarize(torch.rand(10, 1, 8, 8, generator=_gen(16)), _gen(17))
    whole = importance_sampled_nll(tiny_vae, x, 25, _gen(18))
    chunked = importance_sampled_nll(tiny_vae, x, 25, _gen(18), chunk_size=7)
    assert not whole.requires_grad
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=0)


# --- binarize -----------------------------------------------------------------------------------


def test_binarize_is_bernoulli_of_the_intensity():
    levels = torch.tensor([0.0, 0.1, 0.5, 0.93, 1.0])
    images = levels.view(-1, 1, 1, 1).expand(-1, 1, 100, 100).contiguous()
    out = binarize(images, _gen(19))
    assert out.dtype == images.dtype and out.shape == images.shape
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    share = out.flatten(1).mean(1)
    binomial_std = (levels * (1 - levels) / 10_000).sqrt()
    assert ((share - levels).abs() <= 5 * binomial_std).all()  # exact at 0 and 1


def test_binarize_is_seeded():
    images = torch.rand(4, 1, 8, 8, generator=_gen(20))
    first = binarize(images, _gen(21))
    assert torch.equal(binarize(images, _gen(21)), first)
    assert not torch.equal(binarize(images, _gen(22)), first)


def test_binarize_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(torch.tensor([0.5, 1.2]), _gen(0))
