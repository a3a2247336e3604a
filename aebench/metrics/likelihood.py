"""Test log-likelihood of the variational families, in nats per image.

``importance_sampled_nll`` is the estimator of Burda, Grosse & Salakhutdinov 2015 (IWAE, eq. 8):
-log p(x) ~= -[logsumexp_k log w_k - log K], w_k = p(x | z_k) p(z_k) / q(z_k | x), z_k ~ q(z | x).
Its expectation is an upper bound on -log p(x) that tightens as K grows; K = 1 is the negative
ELBO in expectation. ``negative_elbo`` is the usual bound with the KL term in closed form.

The math lives in ``iwae_bound`` and ``elbo``, which take plain tensors and a callable for
log p(x | z), so they can be checked against models whose answer is known. The model-level
functions add the decoder, the device and the chunking.

Determinism: noise is drawn image by image (one K × D draw per image, in row order), so the
samples each image gets depend only on the generator's state, never on ``chunk_size``; the chunk
size only regroups the same arithmetic (round-off aside). The model-level functions pick it from
the device (:func:`default_chunk_rows`): small CPU chunks, large GPU ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

DEFAULT_CHUNK_ROWS = 4096
"""Most decoder rows (image × sample pairs) evaluated at once. For a 28 × 28 MLP decoder with
hidden (512, 256) a chunk holds a few tensors of 4096 × 784 float32 (~13 MB each): the measured
peak was ~60 MB above the baseline whatever N and K are. On a 2-core CPU 1024-4096 rows were
equally fast and 8192-16384 slower."""

CUDA_CHUNK_ROWS = 1 << 16
"""Decoder rows per chunk on a GPU. With K = 1000 a 4096-row chunk holds 4 images, so the IWAE
of a 10k-image test split makes 2,500 rounds of small kernel launches, which on a GPU cost more
in launch overhead than in arithmetic; 65,536 rows (65 images a chunk) make 16 times fewer. The
28 × 28 MLP decoder's tensors are then ~200 MB each (an estimate of 1-2 GB at the peak; not
measured on a GPU)."""


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) in nats, closed form, per row; shape N."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


LogLikelihoodFn = Callable[[Tensor], Tensor]
"""log p(x | z) in nats per image: codes k × n × D -> k × n, for the n images being scored."""
LogRatioFn = Callable[[Tensor, Tensor, Tensor], Tensor]
"""log p(z) - log q(z | x) from (z, eps, logvar), summed over the code (see
:func:`log_prior_over_posterior`, the N(0, I) prior's)."""
KLFn = Callable[[Tensor, Tensor], "Tensor | None"]
"""KL(q || p) per row from (mu, logvar) in closed form, or None where there is none."""


def default_chunk_rows(device: torch.device | str) -> int:
    """Most decoder rows per chunk for ``device``: DEFAULT_CHUNK_ROWS on CPU (bigger chunks were
    no faster there), CUDA_CHUNK_ROWS on a GPU (fewer, larger launches)."""
    return CUDA_CHUNK_ROWS if torch.device(device).type == "cuda" else DEFAULT_CHUNK_ROWS


def draw_posterior_noise(
    num_images: int, num_samples: int, dim: int, generator: torch.Generator, like: Tensor
) -> Tensor:
    """Standard normal noise, num_images × K × D, one K × D draw per image in row order.

    Drawing per image keeps each image's samples independent of how the caller chunks images,
    so chunked and unchunked estimates see identical samples.
    """
    shape, device = (num_samples, dim), generator.device
    draws = [
        torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
        for _ in range(num_images)
    ]
    if not draws:
        return like.new_empty((0, num_samples, dim))
    return torch.stack(draws).to(like.device)


def log_prior_over_posterior(z: Tensor, eps: Tensor, logvar: Tensor) -> Tensor:
    """log p(z) - log q(z | x) summed over the last dim, for z = mu + exp(logvar / 2) * eps.

    p = N(0, I), q = N(mu, diag exp(logvar)); the log(2π) terms cancel, and q's density uses the
    noise itself rather than (z - mu) / std, which would lose precision when std is small.
    """
    return 0.5 * (eps.pow(2) - z.pow(2) + logvar).sum(-1)


def _sample_chunks(
    mu: Tensor, logvar: Tensor, num_samples: int, generator: torch.Generator, chunk_size: int
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Yield (z, eps, logvar) with z, eps of shape k × n × D, k samples per chunk.

    k * n <= max(chunk_size, n): all n images are in every chunk, so a caller that needs a hard
    bound passes at most chunk_size rows of mu (``importance_sampled_nll`` does).
    """
    _check_counts(num_samples, chunk_size)
    num_images, dim = mu.shape
    noise = draw_posterior_noise(num_images, num_samples, dim, generator, mu).transpose(0, 1)
    std = (0.5 * logvar).exp()
    per_chunk = max(1, chunk_size // max(num_images, 1))
    for start in range(0, num_samples, per_chunk):
        eps = noise[start : start + per_chunk]
        yield mu + std * eps, eps, logvar


def iwae_bound(
    log_px_given_z: LogLikelihoodFn,
    mu: Tensor,
    logvar: Tensor,
    num_samples: int,
    generator: torch.Generator,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    log_ratio: LogRatioFn = log_prior_over_posterior,
) -> Tensor:
    """Burda et al. 2015 lower bound L_K on log p(x), nats per image; shape N.

    logsumexp_k (log p(x | z_k) + log p(z_k) - log q(z_k | x)) - log K with z_k ~ q = N(mu,
    diag exp(logvar)) and p(z) given by ``log_ratio`` (default N(0, I)). The K samples are taken
    in chunks whose partial logsumexps are merged with logaddexp, exact up to round-off.
    """
    total = torch.full(mu.shape[:1], -math.inf, dtype=mu.dtype, device=mu.device)
    for z, eps, lv in _sample_chunks(mu, logvar, num_samples, generator, chunk_size):
        log_w = log_px_given_z(z) + log_ratio(z, eps, lv)
        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
    return total - math.log(num_samples)


def elbo(
    log_px_given_z: LogLikelihoodFn,
    mu: Tensor,
    logvar: Tensor,
    num_samples: int,
    generator: torch.Generator,
    chunk_size: int = DEFAULT_CHUNK_ROWS,
    log_ratio: LogRatioFn = log_prior_over_posterior,
    kl: KLFn = gaussian_kl,
) -> Tensor:
    """ELBO in nats per image; shape N: mean over K draws of log p(x | z_k), minus the KL.

    The KL(q || p) term is in closed form where ``kl`` has one (N(0, I): Kingma & Welling 2014,
    appendix B), so only the reconstruction term carries Monte Carlo noise; otherwise it is
    estimated from the same draws through ``log_ratio``.
    """
    closed_form = kl(mu, logvar)
    total = torch.zeros(mu.shape[:1], dtype=mu.dtype, device=mu.device)
    for z, eps, lv in _sample_chunks(mu, logvar, num_samples, generator, chunk_size):
        total = total + log_px_given_z(z).sum(0)
        if closed_form is None:
            total = total + log_ratio(z, eps, lv).sum(0)
    if closed_form is None:
        return total / num_samples
    return total / num_samples - closed_form


def decoder_log_likelihood(model: nn.Module, x: Tensor) -> LogLikelihoodFn:
    """log p(x | z) for the images x under ``model``'s decoder: codes k × n × D -> k × n.

    ``model`` needs ``decode(z) -> logits`` and ``reconstruction_nll(logits, x) -> Tensor[N]``;
    each of the k × n codes is decoded once, in a single call.
    """

    def log_likelihood(z: Tensor) -> Tensor:
        k, n, dim = z.shape
        logits = model.decode(z.reshape(k * n, dim))
        target = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        return -model.reconstruction_nll(logits, target).view(k, n)

    return log_likelihood


def importance_sampled_nll(
    model: nn.Module,
    x: Tensor,
    num_samples: int,
    generator: torch.Generator,
    chunk_size: int | None = None,
) -> Tensor:
    """IWAE estimate of -log p(x) in nats per image (Burda et al. 2015); shape N, on x's device.

    ``model`` needs ``posterior(x) -> (mu, logvar)``, ``decode`` and ``reconstruction_nll``
    (a ``VariationalAutoencoder``). Its expectation is an upper bound on the true NLL, tighter as
    K grows. Every encoder and decoder call sees at most ``chunk_size`` rows (default:
    :func:`default_chunk_rows` of the model's device): images go ``max(1, chunk_size // K)`` at
    a time and, when K > chunk_size, their samples in chunks of ``chunk_size``. Deterministic
    given the generator's state; put the model in eval mode first.
    """
    terms = _prior_terms(model, "log_prior_over_posterior")
    return -_per_image_chunks(model, x, num_samples, generator, chunk_size, iwae_bound, terms)


def negative_elbo(
    model: nn.Module,
    x: Tensor,
    num_samples: int,
    generator: torch.Generator,
    chunk_size: int | None = None,
) -> Tensor:
    """-ELBO in nats per image; shape N, on x's device: E_q[-log p(x | z)] over K draws + KL.

    The bound the VAEs train on (with beta = 1); compare with ``importance_sampled_nll`` to see
    how loose it is. Chunked and seeded like ``importance_sampled_nll``.
    """
    terms = _prior_terms(model, "log_prior_over_posterior", "kl_to_prior")
    return -_per_image_chunks(model, x, num_samples, generator, chunk_size, elbo, terms)


PRIOR_TERMS = {"log_prior_over_posterior": "log_ratio", "kl_to_prior": "kl"}
"""The model methods that carry its own prior, and the bound arguments they fill."""


def _prior_terms(model: nn.Module, *methods: str) -> dict[str, Callable]:
    """The model's own prior terms as the bound's keyword arguments; a model without them (a
    test double of the interface) keeps the N(0, I) defaults."""
    return {PRIOR_TERMS[m]: getattr(model, m) for m in methods if hasattr(model, m)}


def _per_image_chunks(
    model: nn.Module,
    x: Tensor,
    num_samples: int,
    generator: torch.Generator,
    chunk_size: int | None,
    bound: Callable[..., Tensor],
    prior_terms: dict[str, Callable],
) -> Tensor:
    """Apply ``bound`` (with the model's ``prior_terms``) to images in chunks of
    max(1, chunk_size // K), under no_grad."""
    device = _device_of(model, x)
    if chunk_size is None:
        chunk_size = default_chunk_rows(device)
    _check_counts(num_samples, chunk_size)
    per_chunk = max(1, chunk_size // num_samples)
    parts = []
    with torch.no_grad():
        for start in range(0, len(x), per_chunk):
            xs = x[start : start + per_chunk].to(device)
            mu, logvar = model.posterior(xs)
            fn = decoder_log_likelihood(model, xs)
            value = bound(fn, mu, logvar, num_samples, generator, chunk_size, **prior_terms)
            parts.append(value.to(x.device))
    if not parts:
        return x.new_empty((0,))
    return torch.cat(parts)


def _device_of(model: nn.Module, fallback: Tensor) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback.device


def _check_counts(num_samples: int, chunk_size: int) -> None:
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
