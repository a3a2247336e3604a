"""evaluate_run end to end on a tiny untrained model: the metric keys of the contract, per-image
arrays whose means are the metrics, and samplers that draw the reference split's count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aebench.evaluate as evaluate_module
from aebench.config import EvaluateConfig, variant_from_dict
from aebench.evaluate import evaluate_run
from aebench.evaluator import EvaluatorNet
from aebench.models import build_model
from aebench.scoring import SampleScorer, Split
from aebench.spec import ChainConfig

SHAPE = (1, 8, 8)
GRID = {"gaussian": (0.0, 0.3), "masking": (0.1, 0.5), "salt_pepper": (0.0, 0.1, 0.2)}
CLEAN = {"mse": "recon_mse", "ssim": "recon_ssim", "probe": "probe_accuracy"}
STATS = ("fd", "precision", "recall", "density", "coverage", "class_coverage", "class_kl")
N_TEST, N_REFERENCE = 60, 40
CFG = EvaluateConfig(
    seed=3,
    batch_size=32,
    noise_grid=GRID,
    gmm_components=2,
    chain=ChainConfig(chains=1000, burn_in=2, thin=2),
    importance_samples=4,
    grid_images=9,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _split(n: int, seed: int) -> Split:
    images = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))
    return Split(images, np.arange(n) % 10)


@pytest.fixture(scope="module")
def data() -> dict:
    torch.manual_seed(0)
    return {
        "train": _split(120, 1),
        "test": _split(N_TEST, 2),
        "evaluator": EvaluatorNet(1, num_classes=10).eval(),
    }


def _evaluate(data: dict, spec: dict, monkeypatch: pytest.MonkeyPatch):
    torch.manual_seed(0)
    model = build_model(variant_from_dict({"name": "m", **spec}), SHAPE)
    drawn: list[tuple[str, int]] = []
    original = evaluate_module.draw_samples

    def counting(model, sampler, n, *args):
        drawn.append((sampler, n))
        return original(model, sampler, n, *args)

    monkeypatch.setattr(evaluate_module, "draw_samples", counting)
    result = evaluate_run(
        model, data["train"], data["test"], data["evaluator"], 10, CFG, N_REFERENCE
    )
    return result, drawn


def _expected_per_image(likelihood_keys: tuple[str, ...]) -> set[str]:
    robust = {f"robust_{k}_{s}_corrupted" for k in GRID for s in ("mse", "ssim", "probe")}
    recon = {"recon_mse", "recon_bce", "recon_psnr", "recon_ssim", "probe_accuracy"}
    return recon | robust | set(likelihood_keys)


def test_dvae_metrics_per_image_arrays_and_sample_counts(data, monkeypatch):
    noise = {"kind": "masking", "level": 0.25}
    spec = {"family": "dvae", "latent_dim": 3, "hidden": [16], "noise": noise}
    result, drawn = _evaluate(data, spec, monkeypatch)
    assert set(result.per_image) == _expected_per_image(("nll_iw", "neg_elbo"))
    for key, values in result.per_image.items():
        assert values.shape == (N_TEST,) and values.dtype == np.float64, key
        assert result.metrics[key] == float(values.mean()), key
    assert set(np.unique(result.per_image["probe_accuracy"])) <= {0.0, 1.0}
    metrics = result.metrics
    assert not [key for key in metrics if key.endswith("_auc") or "seconds" in key]
    for kind in GRID:
        for stat, clean in CLEAN.items():
            corrupted = metrics[f"robust_{kind}_{stat}_corrupted"]
            degradation = metrics[f"robust_{kind}_{stat}_degradation"]
            assert degradation == pytest.approx(corrupted / metrics[clean] - 1)
    for sampler in ("recon", "prior", "gmm", "chain"):
        for stat in (*STATS, "copy_rate"):
            assert 0 <= metrics[f"sample_{sampler}_{stat}"] < np.inf
    # every sampler draws the reference split's count, not the test split's
    assert drawn == [("prior", N_REFERENCE), ("gmm", N_REFERENCE), ("chain", N_REFERENCE)]
    assert metrics["nll_importance_samples"] == 4.0
    assert "gaussian_nll_iw" not in metrics
    assert len(result.robustness) == sum(len(levels) for levels in GRID.values())
    assert set(result.seconds) >= {"reconstruction", "robustness", "samples", "likelihood"}


def test_gaussian_decoder_gets_its_own_likelihood_columns(data, monkeypatch):
    spec = {"family": "vae", "latent_dim": 3, "hidden": [16], "likelihood": "gaussian"}
    result, drawn = _evaluate(data, spec, monkeypatch)
    keys = ("gaussian_nll_iw", "gaussian_neg_elbo")
    assert set(result.per_image) == _expected_per_image(keys)
    assert "nll_iw" not in result.metrics and "neg_elbo" not in result.metrics
    for key in keys:
        assert result.metrics[key] == float(result.per_image[key].mean())
    assert drawn == [("prior", N_REFERENCE), ("gmm", N_REFERENCE)]


def test_deterministic_family_has_no_likelihood(data, monkeypatch):
    spec = {"family": "ae", "latent_dim": 3, "hidden": [16]}
    result, drawn = _evaluate(data, spec, monkeypatch)
    assert set(result.per_image) == _expected_per_image(())
    assert "nll_importance_samples" not in result.metrics
    assert drawn == [("gmm", N_REFERENCE)]


def test_sample_scorer_copy_rate_known_answers(data):
    scorer = SampleScorer(data["evaluator"], data["test"], 10, 32, data["train"].images)
    copies = scorer.scores(data["train"].images[:50])
    assert copies["copy_rate"] == 1.0  # exact copies of train images
    # the test split itself: 60 distinct distances, the 5% quantile at index 2.95: 3 below it
    assert scorer.scores(data["test"].images)["copy_rate"] == 3 / 60
    prefixed = scorer.score(data["test"].images, "sample_x")
    assert set(prefixed) == {f"sample_x_{stat}" for stat in (*STATS, "copy_rate")}
