import numpy as np
import pytest
import torch

from aebench.config import ChainConfig, parse_params
from aebench.models import build_model
from aebench.samplers import (
    applicable_samplers,
    draw_samples,
    fit_code_mixture,
    sample_chain,
    sample_mixture_codes,
)


def test_gmm_recovers_a_known_mixture():
    rng = np.random.default_rng(0)
    means = np.array([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    weights = np.array([0.5, 0.3, 0.2])
    covs = np.array([[[1.0, 0.5], [0.5, 1.0]], np.eye(2) * 0.5, [[2.0, -0.3], [-0.3, 0.5]]])
    component = rng.choice(3, size=6000, p=weights)
    codes = np.stack([rng.multivariate_normal(means[c], covs[c]) for c in component])
    mixture = fit_code_mixture(codes, components=3, seed=0)
    order = np.argsort(mixture.means_[:, 0])  # match components by their x position
    assert np.allclose(mixture.means_[order], means, atol=0.1)
    assert np.allclose(mixture.weights_[order], weights, atol=0.02)
    assert np.allclose(mixture.covariances_[order], covs, atol=0.15)
    drawn = sample_mixture_codes(mixture, 20000, seed=1)
    assert drawn.mean(0) == pytest.approx(weights @ means, abs=0.1)
    # shuffled: the first samples are not all from one component
    assert len({int(np.argmin(np.abs(drawn[i, 0] - means[:, 0]))) for i in range(30)}) > 1


def test_samplers_apply_to_the_right_families():
    requested = ("prior", "gmm", "chain")
    assert applicable_samplers("ae", requested) == ("gmm",)
    assert applicable_samplers("dae", requested) == ("gmm", "chain")
    assert applicable_samplers("vae", requested) == ("prior", "gmm")
    assert applicable_samplers("dvae", requested) == ("prior", "gmm", "chain")


@pytest.mark.parametrize(
    ("family", "sampler"), [("dvae", "prior"), ("ae", "gmm"), ("dae", "chain")]
)
def test_samplers_give_seeded_images_in_range(raw_params, family, sampler):
    model = build_model(parse_params(raw_params).variant(family), (1, 8, 8)).eval()
    codes = np.random.default_rng(0).normal(size=(200, 4))
    chain = ChainConfig(chains=10, burn_in=3, thin=2)
    first = draw_samples(model, sampler, 25, 5, codes, 3, chain)
    again = draw_samples(model, sampler, 25, 5, codes, 3, chain)
    assert first.shape == (25, 1, 8, 8)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again)


def test_chain_takes_thinned_states_after_burn_in(raw_params):
    model = build_model(parse_params(raw_params).variant("dae"), (1, 8, 8)).eval()
    calls = []
    original = model.reconstruct

    def counting(x):
        calls.append(len(x))
        return original(x)

    model.reconstruct = counting
    samples = sample_chain(model, 25, ChainConfig(chains=10, burn_in=4, thin=3), seed=0)
    assert samples.shape == (25, 1, 8, 8)
    # 3 collections of 10 states are needed for 25 samples: steps 7, 10 and 13
    assert len(calls) == 4 + 3 * 3
