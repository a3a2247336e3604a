"""Evaluation of one trained run: every number the report shows for it, as one flat dict, plus
the per-image values behind the per-image metrics.

Metric keys are stable names (see :mod:`aebench.report.glossary` for units and directions), so
a run's JSON, ``reports/metrics.json`` and the report tables all say the same thing. Every random
draw here (corruptions, samplers, binarisation) is seeded from ``evaluate.seed`` alone, so every
model is scored on identical inputs. Per-image values come in test-split order, identical for
every model, so runs can be paired image by image; each such metric is the mean of its array.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from aebench.evaluator import EvaluatorNet
from aebench.grids import denoise_grid_level, denoise_grid_name, grid_columns
from aebench.metrics.image_quality import bce_nats_per_image, mse_per_pixel, psnr_db, ssim
from aebench.metrics.likelihood import importance_sampled_nll, negative_elbo
from aebench.metrics.representation import fit_linear_probe
from aebench.metrics.robustness import (
    corrupted_test_set,
    robustness_curves,
    robustness_scores,
    robustness_summary,
)
from aebench.models import Autoencoder, VariationalAutoencoder
from aebench.noise import binarize
from aebench.samplers import applicable_samplers, draw_samples
from aebench.scoring import SampleScorer, Split
from aebench.spec import EvaluateConfig


@dataclass
class Evaluation:
    metrics: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, np.ndarray] = field(default_factory=dict)  # key -> float64, N_test
    robustness: list[dict[str, float | str]] = field(default_factory=list)
    images: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> grid source images
    test_codes: np.ndarray | None = None  # encoder mean codes of the test split (for PCA plots)
    seconds: dict[str, float] = field(default_factory=dict)  # wall-clock per phase (timings only)

    def add_per_image(self, values: dict[str, np.ndarray]) -> None:
        """Keep per-image arrays (as float64) and set each metric to its array's mean, so the
        two can never disagree."""
        for key, array in values.items():
            array = np.asarray(array, dtype=np.float64)
            self.per_image[key] = array
            self.metrics[key] = float(array.mean())

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Record the wall-clock seconds of ``phase`` (kept out of the metrics)."""
        started = time.perf_counter()
        yield
        self.seconds[phase] = time.perf_counter() - started


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int) -> torch.Tensor:
    """``fn`` applied to ``x`` in batches of ``size`` rows, without gradients."""
    with torch.no_grad():
        return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().double().numpy()


def reconstruction_metrics(recon: torch.Tensor, clean: torch.Tensor) -> dict[str, np.ndarray]:
    """Clean test-split reconstruction, per image: MSE per pixel, BCE nats, PSNR dB, SSIM."""
    return {
        "recon_mse": _numpy(mse_per_pixel(recon, clean)),
        "recon_bce": _numpy(bce_nats_per_image(recon, clean)),
        "recon_psnr": _numpy(psnr_db(recon, clean)),
        "recon_ssim": _numpy(ssim(recon, clean)),
    }


def probe_correct(probe: Pipeline, codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1.0 where the linear probe predicts an image's class from its code, else 0.0; its mean
    is the probe accuracy."""
    return (probe.predict(codes) == labels).astype(np.float64)


def likelihood_metrics(
    model: VariationalAutoencoder, test: torch.Tensor, cfg: EvaluateConfig
) -> dict[str, np.ndarray]:
    """Importance-sampled NLL (Burda et al. 2015) and negative ELBO, nats per image, per image.

    Bernoulli decoders are scored on the test split binarised once with ``evaluate.seed``
    (``nll_iw``, ``neg_elbo``); Gaussian decoders on the [0, 1] intensities, a density on grey
    levels that is not comparable with binarised numbers, hence other keys
    (``gaussian_nll_iw``, ``gaussian_neg_elbo``). ``nll_importance_samples`` is not per image:
    see :func:`likelihood_keys`.
    """
    if model.spec.likelihood == "bernoulli":
        test = binarize(test.cpu(), _cpu_generator(cfg.seed, "binarize")).to(test.device)
    k = cfg.importance_samples
    # CPU generators: the same posterior draws whether the model runs on CPU or CUDA
    nll = importance_sampled_nll(model, test, k, _cpu_generator(cfg.seed, "iwae"))
    elbo = negative_elbo(model, test, 1, _cpu_generator(cfg.seed, "elbo"))
    nll_key, elbo_key = likelihood_keys(model.spec.likelihood)
    return {nll_key: _numpy(nll), elbo_key: _numpy(elbo)}


def likelihood_keys(likelihood: str) -> tuple[str, str]:
    """(NLL key, negative-ELBO key) for a decoder likelihood: a Gaussian density on grey levels
    and a Bernoulli probability of binary images never share a column."""
    prefix = "" if likelihood == "bernoulli" else f"{likelihood}_"
    return f"{prefix}nll_iw", f"{prefix}neg_elbo"


def _cpu_generator(seed: int, purpose: str) -> torch.Generator:
    """A generator for one purpose: independent streams for binarisation and posterior draws,
    each fixed by ``evaluate.seed``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(purpose.encode()))


CLEAN_REFERENCE = {"mse": "recon_mse", "ssim": "recon_ssim", "probe": "probe_accuracy"}
"""The clean-input metric each robustness stat's degradation is relative to."""


def evaluate_run(
    model: Autoencoder,
    train: Split,
    test: Split,
    evaluator: EvaluatorNet,
    n_classes: int,
    cfg: EvaluateConfig,
    n_samples: int,
) -> Evaluation:
    """Reconstruction, representation, noise robustness, sample quality and (families with a
    posterior) likelihood of one trained model.

    Every sampler draws ``n_samples`` images: pass the size of the reference split (the
    validation split, scored against the test split in evaluator.json), so samples and
    reference carry the same sample-count bias in FD, precision/recall and density/coverage.
    """
    model.eval()
    size = cfg.batch_size
    result = Evaluation()

    with result.timed("reconstruction"):
        recon = batched(model.reconstruct, test.images, size)
        result.add_per_image(reconstruction_metrics(recon, test.images))

    def encode(images: torch.Tensor) -> np.ndarray:
        return batched(model.encode, images, size).cpu().double().numpy()

    with result.timed("probe"):
        train_codes = encode(train.images)
        result.test_codes = encode(test.images)
        probe = fit_linear_probe(train_codes, train.labels)
        result.add_per_image(
            {"probe_accuracy": probe_correct(probe, result.test_codes, test.labels)}
        )

    with result.timed("robustness"):
        scores = robustness_scores(
            test.images,
            lambda x: batched(model.reconstruct, x, size),
            encode,
            lambda codes: probe_correct(probe, codes, test.labels),
            cfg.noise_grid,
            cfg.seed,
        )
        result.robustness = robustness_curves(scores)
        clean = {stat: result.metrics[key] for stat, key in CLEAN_REFERENCE.items()}
        per_image, summary = robustness_summary(scores, clean)
        result.add_per_image(per_image)
        result.metrics.update(summary)

    with result.timed("samples"):
        scorer = SampleScorer(evaluator, test, n_classes, size, train.images)
        result.metrics.update(scorer.score(recon, "sample_recon"))
        for sampler in applicable_samplers(model.spec.family, cfg.samplers):
            samples = draw_samples(
                model, sampler, n_samples, cfg.seed, train_codes, cfg.gmm_components, cfg.chain
            )
            result.metrics.update(scorer.score(samples, f"sample_{sampler}"))
            result.images[f"samples_{sampler}"] = samples[: cfg.grid_images]

    if model.has_posterior:
        with result.timed("likelihood"):
            result.add_per_image(likelihood_metrics(model, test.images, cfg))
            result.metrics["nll_importance_samples"] = float(cfg.importance_samples)

    shown = test.images[: grid_columns(cfg.grid_images)]
    for kind, levels in cfg.noise_grid.items():
        level = denoise_grid_level(levels)
        noisy = corrupted_test_set(test.images, kind, level, cfg.seed)[: len(shown)]
        result.images[denoise_grid_name(kind, level)] = torch.cat(
            [shown, noisy, batched(model.reconstruct, noisy, size)]
        )
    return result
