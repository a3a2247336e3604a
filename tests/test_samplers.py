import itertools

import numpy as np
import pytest
import torch

from aebench.config import variant_from_dict
from aebench.models import build_model
from aebench.samplers import (
    applicable_samplers,
    chain_step,
    draw_samples,
    fit_code_mixture,
    sample_chain,
    sample_mixture_codes,
)
from aebench.spec import ChainConfig

SHAPE = (1, 8, 8)


def _model(raw_params: dict, name: str, **changes):
    """A freshly initialised model of the conftest variant ``name`` (changes applied)."""
    torch.manual_seed(0)
    spec = variant_from_dict({"name": name, **raw_params["variants"][name], **changes})
    return build_model(spec, SHAPE).eval()


def _constant_half_decoder(model):
    """Zero the decoder's last layer: logits 0, so the mean of P(X | X~) is 0.5 everywhere."""
    last = [m for m in model.decoder if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return model


def _record_encoder_inputs(model) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    model.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    return seen


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


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
    ("family", "sampler"), [("dvae", "prior"), ("ae", "gmm"), ("dae", "chain"), ("dvae", "chain")]
)
def test_samplers_give_seeded_images_in_range(raw_params, family, sampler):
    model = _model(raw_params, family)
    codes = np.random.default_rng(0).normal(size=(200, 4))
    chain = ChainConfig(chains=10, burn_in=3, thin=2)
    first = draw_samples(model, sampler, 25, 5, codes, 3, chain)
    again = draw_samples(model, sampler, 25, 5, codes, 3, chain)
    assert first.shape == (25, *SHAPE)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again)
    assert not torch.equal(draw_samples(model, sampler, 25, 6, codes, 3, chain), first)


def test_chain_takes_thinned_states_after_burn_in(raw_params):
    model = _model(raw_params, "dae")
    calls: list[int] = []
    model.decoder.register_forward_pre_hook(lambda _, args: calls.append(len(args[0])))
    samples = sample_chain(model, 25, ChainConfig(chains=10, burn_in=4, thin=3), seed=0)
    assert samples.shape == (25, *SHAPE)
    # 3 collections of 10 states are needed for 25 samples: steps 7, 10 and 13
    assert calls == [10] * (4 + 3 * 3)


def test_chain_runs_no_more_chains_than_samples(raw_params):
    model = _model(raw_params, "dae")
    calls: list[int] = []
    model.decoder.register_forward_pre_hook(lambda _, args: calls.append(len(args[0])))
    samples = sample_chain(model, 6, ChainConfig(chains=1000, burn_in=2, thin=3), seed=0)
    assert samples.shape == (6, *SHAPE)
    assert calls == [6] * 5  # one collection, at step 5


def test_bernoulli_chain_state_is_a_binary_draw_not_the_mean(raw_params):
    """The state after a step is a Bernoulli draw from P(X | X~): binary, and not the
    deterministic map's output (the mean), which a mean-only chain would feed back."""
    model = _model(raw_params, "dae")  # Bernoulli decoder, masking noise
    start = torch.rand(200, *SHAPE, generator=torch.Generator().manual_seed(1))
    state, mean = chain_step(model, start, torch.Generator().manual_seed(2))
    assert _is_binary(state)
    assert not _is_binary(mean) and not torch.equal(state, mean)
    # Bernoulli(mean): the share of ones follows the mean, pixel for pixel on average
    assert state.mean().item() == pytest.approx(mean.mean().item(), abs=0.02)
    # what the encoder sees from the second step on is the corrupted binary state
    seen = _record_encoder_inputs(model)
    sample_chain(model, 50, ChainConfig(chains=50, burn_in=3, thin=1), seed=0)
    assert not _is_binary(seen[0])  # the uniform-noise start
    assert all(_is_binary(x) for x in seen[1:])


def test_constant_half_decoder_keeps_drawing_varied_states(raw_params):
    """Mean 0.5 everywhere: the states are fair coin flips at every step (a mean-only chain
    would sit at the constant 0.5 image), and the samples returned are the means, all 0.5."""
    model = _constant_half_decoder(_model(raw_params, "dae"))
    level = model.spec.noise.level  # masking: the encoder sees state * keep
    seen = _record_encoder_inputs(model)
    samples = sample_chain(model, 400, ChainConfig(chains=400, burn_in=4, thin=2), seed=3)
    assert torch.equal(samples, torch.full_like(samples, 0.5))
    drawn = seen[1:]
    assert all(_is_binary(x) for x in drawn)
    pixels = drawn[0].numel()  # 400 × 64: binomial std of a share ~0.003
    for x in drawn:
        assert x.mean().item() == pytest.approx(0.5 * (1 - level), abs=0.015)
    for a, b in itertools.pairwise(drawn):
        # independent fair coins, each kept with probability q = 1 - level: 2 q/2 (1 - q/2)
        changed = (a != b).sum().item() / pixels
        keep = 1 - level
        assert changed == pytest.approx(2 * keep / 2 * (1 - keep / 2), abs=0.02)


def test_gaussian_chain_state_is_a_clipped_gaussian_draw(raw_params):
    model = _model(raw_params, "dae", likelihood="gaussian", obs_std=0.1)
    model = _constant_half_decoder(model)
    start = torch.rand(500, *SHAPE, generator=torch.Generator().manual_seed(1))
    state, mean = chain_step(model, start, torch.Generator().manual_seed(2))
    assert torch.equal(mean, torch.full_like(mean, 0.5))
    residual = state - mean  # 0.5 ± 5 std never reaches the clip
    assert residual.mean().item() == pytest.approx(0.0, abs=0.003)
    assert residual.std().item() == pytest.approx(0.1, rel=0.02)
    wide = _constant_half_decoder(_model(raw_params, "dae", likelihood="gaussian", obs_std=1.0))
    clipped, _ = chain_step(wide, start, torch.Generator().manual_seed(2))
    assert clipped.min() == 0 and clipped.max() == 1
    # P(0.5 + N(0, 1) <= 0) = Phi(-0.5) = 0.3085 of the pixels land on 0
    assert (clipped == 0).float().mean().item() == pytest.approx(0.3085, abs=0.01)


def test_dvae_chain_draws_its_latent_from_the_posterior(raw_params):
    """z = mu + std * eps with eps ~ N(0, I): decode's input is not the posterior mean."""
    model = _model(raw_params, "dvae")
    posteriors: list[torch.Tensor] = []
    codes: list[torch.Tensor] = []
    model.encoder.register_forward_hook(lambda _, __, out: posteriors.append(out.clone()))
    model.decoder.register_forward_pre_hook(lambda _, args: codes.append(args[0].clone()))
    start = torch.rand(1000, *SHAPE, generator=torch.Generator().manual_seed(1))
    chain_step(model, start, torch.Generator().manual_seed(2))
    mu, logvar = posteriors[0].chunk(2, dim=1)
    eps = (codes[0] - mu) / (0.5 * logvar).exp()
    assert eps.mean().item() == pytest.approx(0.0, abs=0.03)  # 4000 draws: std 0.016
    assert eps.std().item() == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("family", ["vae", "iwae", "wae", "dvae"])
def test_prior_sampler_decodes_standard_normal_codes(raw_params, family):
    """The codes the prior sampler decodes are N(0, I): mean 0, variance 1 per dimension,
    uncorrelated, normal by a Kolmogorov–Smirnov test (a N(0, 9·I) draw fails every one)."""
    from scipy import stats

    from aebench.samplers import sample_prior

    model = _model(raw_params, family)
    decoded = []
    model.decoder.register_forward_pre_hook(lambda _, args: decoded.append(args[0].clone()))
    sample_prior(model, 5000, seed=3)
    codes = torch.cat(decoded).double().numpy()
    n, dims = codes.shape
    assert dims == model.spec.latent_dim
    assert np.abs(codes.mean(0)).max() < 4 / np.sqrt(n)  # 4 standard errors
    assert np.abs(codes.var(0) - 1).max() < 4 * np.sqrt(2 / n)
    off_diagonal = np.corrcoef(codes.T)[~np.eye(dims, dtype=bool)]
    assert np.abs(off_diagonal).max() < 4 / np.sqrt(n)
    assert stats.kstest(codes.ravel(), "norm").pvalue > 1e-3


def test_chain_with_a_known_stationary_law_draws_from_it(raw_params):
    """A decoder whose logits are a constant c makes every state a Bernoulli(sigmoid(c)) image,
    whatever came before: the chain's stationary law is known. Its states' ink matches it and
    the kept means are exactly sigmoid(c)."""
    model = _model(raw_params, "dae")
    last = [m for m in model.decoder if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, 1.0)  # P(pixel on) = sigmoid(1) ≈ 0.731
    p = torch.sigmoid(torch.tensor(1.0)).item()
    generator = torch.Generator().manual_seed(0)
    state = torch.rand((500, *SHAPE), generator=generator)
    inks = []
    for _ in range(20):
        state, mean = chain_step(model, state, generator)
        inks.append(state.mean().item())
        assert torch.allclose(mean, torch.full_like(mean, p))
    pixels = 500 * int(np.prod(SHAPE))
    assert abs(np.mean(inks) - p) < 4 * np.sqrt(p * (1 - p) / (20 * pixels))
    kept = sample_chain(model, 300, ChainConfig(chains=100, burn_in=2, thin=2), seed=1)
    assert torch.allclose(kept, torch.full_like(kept, p))
