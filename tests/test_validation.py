"""Validation scores, the tuning grids' selection rule: each score against a case whose answer
is known independently, and the choice of a grid point."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import aebench.validation as validation
from aebench.config import EvaluateConfig, variant_from_dict
from aebench.evaluate import likelihood_metrics
from aebench.evaluator import EvaluatorNet
from aebench.metrics.sample_quality import feature_stats, frechet_distance_from_stats
from aebench.models import build_model
from aebench.scoring import SampleScorer, Split
from aebench.spec import ChainConfig
from aebench.tuning import SelectionError, select_point, task_score
from aebench.validation import validation_scores

SHAPE = (1, 8, 8)
CFG = EvaluateConfig(
    seed=3,
    batch_size=32,
    noise_grid={"gaussian": (0.0, 0.3)},
    gmm_components=2,
    chain=ChainConfig(chains=10, burn_in=2, thin=2),
    importance_samples=4,
    grid_images=9,
)


def _split(n: int, seed: int) -> Split:
    images = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))
    return Split(images, np.arange(n) % 10)


@pytest.fixture(scope="module")
def data() -> dict:
    torch.manual_seed(0)
    return {
        "train": _split(80, 1),
        "val": _split(40, 2),
        "evaluator": EvaluatorNet(1, num_classes=10).eval(),
    }


def _model(spec: dict):
    torch.manual_seed(0)
    return build_model(variant_from_dict({"name": "m", **spec}), SHAPE)


def test_reconstruction_score_is_the_validation_mse(data, monkeypatch):
    model = _model({"family": "ae", "latent_dim": 3, "hidden": [16]})
    # a model that reconstructs every image as black: the MSE is the mean squared intensity
    monkeypatch.setattr(model, "reconstruct", lambda x: torch.zeros_like(x))
    scores = validation_scores(
        model, data["train"], data["val"], data["evaluator"], 10, CFG, importance_samples=4
    )
    assert scores["val_recon_mse"] == pytest.approx(float((data["val"].images ** 2).mean()))
    assert "val_nll_iw" not in scores  # no posterior, no likelihood task


def test_generation_score_is_zero_for_the_validation_images_themselves(data, monkeypatch):
    model = _model({"family": "ae", "latent_dim": 3, "hidden": [16]})
    drawn = []

    def the_validation_images(model, sampler, n, *args):
        drawn.append((sampler, n))
        return data["val"].images[:n]

    monkeypatch.setattr(validation, "draw_samples", the_validation_images)
    scores = validation_scores(
        model, data["train"], data["val"], data["evaluator"], 10, CFG, importance_samples=4
    )
    assert drawn == [("gmm", 40)]  # as many samples as validation images
    assert scores["val_sample_gmm_fd"] == pytest.approx(0.0, abs=1e-6)
    # and it is the Fréchet distance in the evaluator's features against the validation split
    shifted = data["train"].images[:40]
    monkeypatch.setattr(validation, "draw_samples", lambda *a: shifted)
    scores = validation_scores(
        model, data["train"], data["val"], data["evaluator"], 10, CFG, importance_samples=4
    )
    scorer = SampleScorer(data["evaluator"], data["val"], 10, 32, data["train"].images)
    expected = frechet_distance_from_stats(
        feature_stats(scorer.featurize(shifted)[0]), scorer.test_stats
    )
    assert scores["val_sample_gmm_fd"] == pytest.approx(expected) and expected > 0


def test_likelihood_score_is_the_validation_nll_at_the_given_k(data):
    model = _model({"family": "vae", "latent_dim": 3, "hidden": [16]})
    scores = validation_scores(
        model, data["train"], data["val"], data["evaluator"], 10, CFG, importance_samples=7
    )
    from dataclasses import replace

    expected = likelihood_metrics(model, data["val"].images, replace(CFG, importance_samples=7))
    assert scores["val_nll_iw"] == pytest.approx(float(expected["nll_iw"].mean()))
    assert set(scores) == {"val_recon_mse", "val_sample_gmm_fd", "val_nll_iw"}


def test_selection_takes_the_lowest_finite_score_first_declared_on_ties():
    scores = {"a": 3.0, "b": 1.0, "c": math.nan, "d": 1.0}
    assert select_point(scores, "val_recon_mse") == "b"
    assert select_point({"x": math.nan, "y": 2.0}, "val_sample_gmm_fd") == "y"
    with pytest.raises(SelectionError, match="no grid point has a finite val_nll_iw"):
        select_point({"x": math.nan}, "val_nll_iw")


def test_the_likelihood_task_selects_on_the_decoders_own_nll():
    bernoulli = {"a": {"val_nll_iw": 90.0}, "b": {"val_nll_iw": 80.0}}
    gaussian = {"a": {"val_gaussian_nll_iw": -900.0}, "b": {"val_gaussian_nll_iw": -800.0}}
    assert task_score("likelihood", bernoulli) == "val_nll_iw"
    assert task_score("likelihood", gaussian) == "val_gaussian_nll_iw"
    assert task_score("likelihood", {"a": {"val_recon_mse": 0.1}}) is None  # no posterior
