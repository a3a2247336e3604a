"""Validation scores of one trained run: what a tuning grid selects its settings on.

Selecting on the test split would make the reported test numbers the best of many draws; the
tuning grids select on the validation split instead, with seeds that are not among the reporting
seeds, and the selected settings are then trained anew with the reporting seeds. One score per
task, each lower-is-better:

- reconstruction: MSE per pixel of the validation images' reconstructions;
- generation: Fréchet distance of GMM-prior samples to the validation images, in the evaluator's
  feature space (as many samples as validation images, so every grid point carries the same
  sample-count bias);
- likelihood (families with a posterior): importance-sampled NLL of the validation images, on the
  same binarisation rule as the test NLL.

The validation split is small (500 images on mnist5k): the scores decide between settings, and the
report shows them across each grid rather than only the winner.
"""

from __future__ import annotations

from dataclasses import replace

from aebench.evaluate import batched, likelihood_keys, likelihood_metrics, reconstruction_metrics
from aebench.evaluator import EvaluatorNet
from aebench.models import Autoencoder
from aebench.samplers import applicable_samplers, draw_samples
from aebench.scoring import SampleScorer, Split
from aebench.spec import EvaluateConfig


def validation_scores(
    model: Autoencoder,
    train: Split,
    val: Split,
    evaluator: EvaluatorNet,
    n_classes: int,
    cfg: EvaluateConfig,
    importance_samples: int,
) -> dict[str, float]:
    """The run's score for every task that applies to it (see the module docstring)."""
    model.eval()
    size = cfg.batch_size
    recon = batched(model.reconstruct, val.images, size)
    scores = {"val_recon_mse": float(reconstruction_metrics(recon, val.images)["recon_mse"].mean())}
    if "gmm" in applicable_samplers(model.spec.family, ("gmm",)):
        train_codes = batched(model.encode, train.images, size).cpu().double().numpy()
        samples = draw_samples(
            model, "gmm", len(val.images), cfg.seed, train_codes, cfg.gmm_components, cfg.chain
        )
        scorer = SampleScorer(evaluator, val, n_classes, size, train.images)
        scores["val_sample_gmm_fd"] = scorer.scores(samples)["fd"]
    if model.has_posterior:
        cfg_k = replace(cfg, importance_samples=importance_samples)
        nll_key, _ = likelihood_keys(model.spec.likelihood)
        nll = likelihood_metrics(model, val.images, cfg_k)[nll_key]
        scores[f"val_{nll_key}"] = float(nll.mean())
    return scores
