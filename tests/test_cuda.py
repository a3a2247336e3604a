"""Training and evaluation on CUDA, run only where a GPU is present.

The pipeline picks CUDA whenever it is there (``train.device: auto``), so a GPU machine runs code
paths a CPU-only CI never does: device-side generators in training, CPU-drawn noise moved to the
device in evaluation, larger likelihood chunks. These tests pin what must hold there: training is
reproducible from its seed (deterministic algorithms on), and a model scores the same on CUDA as
on CPU, because every evaluation draw comes from a CPU generator.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch

from aebench.config import parse_params, variant_from_dict
from aebench.evaluate import evaluate_run
from aebench.evaluator import EvaluatorNet
from aebench.models import build_model
from aebench.runtime import make_deterministic
from aebench.scoring import Split
from aebench.train import train_model

# tests/ is a package (tests/__init__.py): the same module pytest collects, under any runner
from tests.test_eval_run import CFG, N_REFERENCE, SHAPE, _split

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
# Metrics computed from the model's outputs on identical, CPU-drawn inputs and noise: CUDA and
# CPU may differ only by float round-off (kNN counts, probe and classifier decisions may flip).
CLOSE_KEYS = (
    "recon_mse",
    "recon_bce",
    "recon_psnr",
    "nll_iw",
    "neg_elbo",
    *(f"robust_{kind}_mse_corrupted" for kind in CFG.noise_grid),
)
PER_IMAGE_KEYS = ("recon_mse", "nll_iw")


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """Digits-sized train and validation images, on the GPU as the train stage puts them."""
    data = torch.rand(160, *SHAPE, generator=torch.Generator().manual_seed(123)).to(CUDA)
    return data[:128], data[128:]


def _train(raw_params: dict, family: str, images, seed: int):
    """Train ``family`` on CUDA, recording torch's warnings about non-deterministic kernels
    (with ``warn_only=True`` they would otherwise pass silently)."""
    raw_params["train"].update(max_epochs=4, batch_size=32, device="cuda")
    params = parse_params(raw_params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, result = train_model(
            params.variant(family), *images, params.train, seed=seed, progress=False
        )
    nondeterministic = [str(w.message) for w in caught if "determinis" in str(w.message)]
    return model, result, nondeterministic


# every family's own device-side draws: corruption (dae, dvae), reparameterisation (dvae, iwae's
# K samples), the WAE's prior sample, the CAE's Rademacher probes; rae and sae draw none, but
# their penalties run on the device too
@pytest.mark.parametrize("family", ["dae", "dvae", "iwae", "wae", "rae", "cae", "sae"])
def test_cuda_training_is_finite_on_device_and_reproducible(raw_params, images, family):
    first, result, nondeterministic = _train(raw_params, family, images, seed=5)
    second, _, _ = _train(raw_params, family, images, seed=5)
    other, _, _ = _train(raw_params, family, images, seed=6)

    assert result.device.startswith("cuda")
    assert len(result.history) >= 1
    for row in result.history:
        assert all(math.isfinite(value) for value in row.values()), row
    assert math.isfinite(result.best_val_loss)
    weights = first.state_dict()
    assert all(tensor.is_cuda for tensor in weights.values())
    # no kernel on the training path falls back to a non-deterministic implementation ...
    assert not nondeterministic
    # ... so the same seed gives identical weights, and another seed other weights
    again, elsewhere = second.state_dict(), other.state_dict()
    assert all(torch.equal(weights[key], again[key]) for key in weights)
    assert not all(torch.equal(weights[key], elsewhere[key]) for key in weights)


def _on(device: torch.device, split: Split) -> Split:
    return Split(split.images.to(device), split.labels)


def test_cuda_evaluation_matches_cpu_evaluation_of_the_same_weights():
    make_deterministic(CFG.seed)  # as the evaluate stage does
    torch.manual_seed(0)
    spec = variant_from_dict({"name": "m", "family": "vae", "latent_dim": 3, "hidden": [16]})
    model = build_model(spec, SHAPE).eval()
    evaluator = EvaluatorNet(1, num_classes=10).eval()
    train, test = _split(120, 1), _split(60, 2)

    cpu = evaluate_run(model, train, test, evaluator, 10, CFG, N_REFERENCE)
    gpu_model = copy.deepcopy(model).to(CUDA)
    gpu = evaluate_run(
        gpu_model,
        _on(CUDA, train),
        _on(CUDA, test),
        copy.deepcopy(evaluator).to(CUDA),
        10,
        CFG,
        N_REFERENCE,
    )

    assert next(gpu_model.parameters()).is_cuda
    assert gpu.images["samples_prior"].is_cuda  # the samples were decoded on the GPU
    assert set(gpu.metrics) == set(cpu.metrics)
    assert not [key for key, value in gpu.metrics.items() if not math.isfinite(value)]
    for key in CLOSE_KEYS:
        assert gpu.metrics[key] == pytest.approx(cpu.metrics[key], rel=1e-3), key
    for key in PER_IMAGE_KEYS:
        np.testing.assert_allclose(gpu.per_image[key], cpu.per_image[key], rtol=1e-3, err_msg=key)
    assert gpu.metrics["nll_importance_samples"] == cpu.metrics["nll_importance_samples"]
