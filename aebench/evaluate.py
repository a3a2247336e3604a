"""Evaluation of one trained run: every number the report shows for it, as one flat dict.

Metric keys are stable names (see :mod:`aebench.report.glossary` for units and directions), so
a run's JSON, ``reports/metrics.json`` and the report tables all say the same thing. Every random
draw here (corruptions, samplers, binarisation) is seeded from ``evaluate.seed`` alone, so every
model is scored on identical inputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from aebench.config import EvaluateConfig
from aebench.evaluator import EvaluatorNet, features_and_predictions
from aebench.metrics.image_quality import bce_nats_per_image, mse_per_pixel, psnr_db, ssim
from aebench.metrics.likelihood import importance_sampled_nll, negative_elbo
from aebench.metrics.representation import fit_linear_probe, probe_accuracy
from aebench.metrics.robustness import corrupted_test_set, robustness_curves, robustness_summary
from aebench.metrics.sample_quality import (
    FeatureStats,
    class_coverage,
    class_histogram_kl,
    feature_stats,
    frechet_distance_from_stats,
    precision_recall_density_coverage,
)
from aebench.models import Autoencoder, VariationalAutoencoder
from aebench.noise import binarize
from aebench.samplers import applicable_samplers, draw_samples


@dataclass(frozen=True)
class Split:
    """A split as float images in [0, 1] on the evaluation device, and int64 labels (numpy)."""

    images: torch.Tensor
    labels: np.ndarray


@dataclass
class Evaluation:
    metrics: dict[str, float] = field(default_factory=dict)
    robustness: list[dict[str, float | str]] = field(default_factory=list)
    images: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> grid source images
    test_codes: np.ndarray | None = None  # encoder mean codes of the test split (for PCA plots)


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, size: int) -> torch.Tensor:
    """``fn`` applied to ``x`` in batches of ``size`` rows, without gradients."""
    with torch.no_grad():
        return torch.cat([fn(x[i : i + size]) for i in range(0, len(x), size)])


def reconstruction_metrics(recon: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """Clean test-split reconstruction: MSE per pixel, BCE nats/image, PSNR dB, SSIM."""
    return {
        "recon_mse": mse_per_pixel(recon, clean).mean().item(),
        "recon_bce": bce_nats_per_image(recon, clean).mean().item(),
        "recon_psnr": psnr_db(recon, clean).mean().item(),
        "recon_ssim": ssim(recon, clean).mean().item(),
    }


class SampleScorer:
    """Scores image sets against the test split in the evaluator's feature space."""

    def __init__(self, evaluator: EvaluatorNet, test: Split, n_classes: int, batch_size: int):
        self.evaluator, self.n_classes, self.batch_size = evaluator, n_classes, batch_size
        self.test_features, self.test_predictions = self.featurize(test.images)
        self.test_stats: FeatureStats = feature_stats(self.test_features)

    def featurize(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return features_and_predictions(self.evaluator, images, self.batch_size)

    def score(self, images: torch.Tensor, prefix: str) -> dict[str, float]:
        features, predictions = self.featurize(images)
        prdc = precision_recall_density_coverage(self.test_features, features, k_pr=3, k_dc=5)
        return {
            f"{prefix}_fd": frechet_distance_from_stats(feature_stats(features), self.test_stats),
            **{f"{prefix}_{name}": value for name, value in prdc.items()},
            f"{prefix}_class_coverage": class_coverage(predictions, self.n_classes),
            f"{prefix}_class_kl": class_histogram_kl(
                predictions, self.test_predictions, self.n_classes
            ),
        }


def likelihood_metrics(
    model: VariationalAutoencoder, test: torch.Tensor, cfg: EvaluateConfig
) -> dict[str, float]:
    """Importance-sampled NLL (Burda et al. 2015) and negative ELBO, nats per image.

    Bernoulli decoders are scored on the test split binarised once with ``evaluate.seed``;
    Gaussian decoders on the [0, 1] intensities (not comparable with binarised numbers).
    """
    if model.spec.likelihood == "bernoulli":
        test = binarize(test.cpu(), _cpu_generator(cfg.seed, "binarize")).to(test.device)
    k = cfg.importance_samples
    # CPU generators: the same posterior draws whether the model runs on CPU or CUDA
    nll = importance_sampled_nll(model, test, k, _cpu_generator(cfg.seed, "iwae"))
    elbo = negative_elbo(model, test, 1, _cpu_generator(cfg.seed, "elbo"))
    return {
        "nll_iw": nll.mean().item(),
        "neg_elbo": elbo.mean().item(),
        "nll_importance_samples": float(k),
    }


def _cpu_generator(seed: int, purpose: str) -> torch.Generator:
    """A generator for one purpose: independent streams for binarisation and posterior draws,
    each fixed by ``evaluate.seed``."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(purpose.encode()))


def evaluate_run(
    model: Autoencoder,
    train: Split,
    test: Split,
    evaluator: EvaluatorNet,
    n_classes: int,
    cfg: EvaluateConfig,
) -> Evaluation:
    """Reconstruction, representation, noise robustness, sample quality and (VAE family)
    likelihood of one trained model."""
    model.eval()
    size = cfg.batch_size
    result = Evaluation()

    recon = batched(model.reconstruct, test.images, size)
    result.metrics.update(reconstruction_metrics(recon, test.images))

    def encode(images: torch.Tensor) -> np.ndarray:
        return batched(model.encode, images, size).cpu().double().numpy()

    train_codes = encode(train.images)
    result.test_codes = encode(test.images)
    probe = fit_linear_probe(train_codes, train.labels)
    result.metrics["probe_accuracy"] = probe_accuracy(probe, result.test_codes, test.labels)
    result.robustness = robustness_curves(
        test.images,
        lambda x: batched(model.reconstruct, x, size),
        encode,
        lambda codes: probe_accuracy(probe, codes, test.labels),
        cfg.noise_grid,
        cfg.seed,
    )
    result.metrics.update(robustness_summary(result.robustness))

    scorer = SampleScorer(evaluator, test, n_classes, size)
    result.metrics.update(scorer.score(recon, "sample_recon"))
    n = len(test.images)
    for sampler in applicable_samplers(model.spec.family, cfg.samplers):
        samples = draw_samples(
            model, sampler, n, cfg.seed, train_codes, cfg.gmm_components, cfg.chain
        )
        result.metrics.update(scorer.score(samples, f"sample_{sampler}"))
        result.images[f"samples_{sampler}"] = samples[: cfg.grid_images]

    if isinstance(model, VariationalAutoencoder):
        result.metrics.update(likelihood_metrics(model, test.images, cfg))

    shown = test.images[: grid_columns(cfg.grid_images)]
    for kind, levels in cfg.noise_grid.items():
        level = denoise_grid_level(levels)
        noisy = corrupted_test_set(test.images, kind, level, cfg.seed)[: len(shown)]
        result.images[denoise_grid_name(kind, level)] = torch.cat(
            [shown, noisy, batched(model.reconstruct, noisy, size)]
        )
    return result


def denoise_grid_level(levels: tuple[float, ...]) -> float:
    """The grid level the saved denoising example shows: the middle of the kind's grid."""
    return levels[len(levels) // 2]


def denoise_grid_name(kind: str, level: float) -> str:
    """File stem of the saved denoising example (clean | corrupted | output rows)."""
    return f"denoise_{kind}_{level:g}"


def grid_columns(grid_images: int) -> int:
    """Images per row of a square-ish grid holding ``grid_images`` images."""
    return max(1, int(np.ceil(np.sqrt(grid_images))))
