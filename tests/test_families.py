"""The families beyond AE/DAE/VAE: each loss against a value computed another way, one that a
wrong loss would miss."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from aebench.config import parse_params
from aebench.models import build_model
from aebench.models.cae import jacobian_frobenius_sq
from aebench.models.sae import bernoulli_kl
from aebench.models.wae import imq_kernel, mmd_imq
from aebench.samplers import applicable_samplers

SHAPE = (1, 8, 8)


def _model(raw_params, name, **changes):
    raw_params["variants"][name].update(changes)
    torch.manual_seed(0)
    return build_model(parse_params(raw_params).variant(name), SHAPE)


def _images(n=16, seed=1):
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


# --- IWAE -------------------------------------------------------------------------------------


def test_iwae_bound_with_one_sample_is_the_single_draw_elbo(raw_params):
    model = _model(raw_params, "iwae", iw_samples=1)
    x = (_images() > 0.5).float()
    loss = model.loss_terms(x, torch.Generator().manual_seed(3))["loss"]
    # the same noise, drawn as the VAE draws it, scored with torch.distributions
    mu, logvar = model.posterior(x)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    std = (0.5 * logvar).exp()
    z = mu + std * eps
    log_px = Bernoulli(logits=model.decode(z).flatten(1)).log_prob(x.flatten(1)).sum(1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(1)
    log_qz = Normal(mu, std).log_prob(z).sum(1)
    assert loss.item() == pytest.approx(-(log_px + log_pz - log_qz).mean().item(), rel=1e-5)


def test_iwae_bound_with_k_samples_is_a_log_mean_of_importance_weights(raw_params):
    model = _model(raw_params, "iwae", iw_samples=3)
    x = (_images() > 0.5).float()
    loss = model.loss_terms(x, torch.Generator().manual_seed(4))["loss"]
    mu, logvar = model.posterior(x)
    eps = torch.randn((3, *mu.shape), generator=torch.Generator().manual_seed(4))
    std = (0.5 * logvar).exp()
    log_w = []
    for k in range(3):
        z = mu + std * eps[k]
        log_px = Bernoulli(logits=model.decode(z).flatten(1)).log_prob(x.flatten(1)).sum(1)
        log_w.append(
            log_px + Normal(0.0, 1.0).log_prob(z).sum(1) - Normal(mu, std).log_prob(z).sum(1)
        )
    # log of the MEAN weight: logsumexp - log K (dropping log K would shift it by log 3)
    bound = torch.logsumexp(torch.stack(log_w), dim=0) - math.log(3)
    assert loss.item() == pytest.approx(-bound.mean().item(), rel=1e-5)


def test_iwae_bound_tightens_with_more_samples(raw_params):
    x = (_images(64) > 0.5).float()
    losses = {}
    for k in (1, 50):
        model = _model(raw_params, "iwae", iw_samples=k)
        with torch.no_grad():
            losses[k] = model.loss_terms(x, torch.Generator().manual_seed(0))["loss"].item()
    assert losses[50] < losses[1] - 0.05  # -L_50 < -L_1: a tighter bound on -log p(x)


# --- WAE-MMD ----------------------------------------------------------------------------------


def test_imq_mmd_matches_a_hand_computation():
    codes = torch.tensor([[0.0], [1.0]])
    prior = torch.tensor([[0.0], [2.0], [3.0]])
    scale = 2.0

    def k(a, b):
        return scale / (scale + (a - b) ** 2)

    qs, ps = [0.0, 1.0], [0.0, 2.0, 3.0]
    within_q = 2 * k(0, 1) / (2 * 1)
    within_p = 2 * (k(0, 2) + k(0, 3) + k(2, 3)) / (3 * 2)
    cross = sum(k(a, b) for a in qs for b in ps) / 6
    expected = within_q + within_p - 2 * cross
    assert imq_kernel(codes, prior, scale)[1, 2].item() == pytest.approx(k(1, 3))
    assert mmd_imq(codes, prior, scale).item() == pytest.approx(expected, rel=1e-6)


def test_mmd_separates_distributions_and_is_near_zero_for_equal_ones():
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn((400, 4), generator=generator) for _ in range(3))
    same = mmd_imq(a, b, scale=8.0).item()
    shifted = mmd_imq(a, c + 1.5, scale=8.0).item()
    assert abs(same) < 0.01
    assert shifted > 0.1 > 10 * abs(same)


def test_wae_loss_is_recon_plus_weighted_mmd_against_prior_draws(raw_params):
    model = _model(raw_params, "wae", mmd_weight=3.0)
    x = _images()
    terms = model.loss_terms(x, torch.Generator().manual_seed(5))
    code = model.encode(x)
    generator = torch.Generator().manual_seed(5)
    prior = torch.randn(code.shape, generator=generator)
    mmd = mmd_imq(code, prior, 2.0 * 4)  # C = 2 d for the N(0, I) prior, d = 4
    assert terms["mmd"].item() == pytest.approx(mmd.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 3.0 * mmd).item(), rel=1e-6)
    assert "prior" in applicable_samplers("wae", ("prior", "gmm", "chain"))


# --- RAE --------------------------------------------------------------------------------------


def test_rae_penalises_code_norm_and_decoder_weights(raw_params):
    model = _model(raw_params, "rae", code_penalty=0.5, decoder_decay=0.01)
    x = _images()
    terms = model.loss_terms(x, torch.Generator())
    code = model.encode(x)
    weights = torch.nn.utils.parameters_to_vector(model.decoder.parameters())
    expected = terms["recon"] + 0.5 * 0.5 * (code**2).sum(1).mean() + 0.01 * weights.dot(weights)
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    # the decay covers every decoder parameter and none of the encoder's
    model.zero_grad()
    model.decoder_weight_norm().backward()
    assert all(torch.equal(p.grad, 2 * p.detach()) for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert applicable_samplers("rae", ("prior", "gmm")) == ("gmm",)  # no prior: ex post only


# --- contractive AE ---------------------------------------------------------------------------


def _jacobian_norms(encoder, x):
    """||J||_F² per image from torch.autograd.functional.jacobian, image by image."""
    return torch.stack(
        [
            torch.autograd.functional.jacobian(lambda v: encoder(v.unsqueeze(0))[0], image)
            .pow(2)
            .sum()
            for image in x
        ]
    )


def test_exact_contraction_equals_autograd_jacobian(raw_params):
    model = _model(raw_params, "cae", hidden=[12])
    x = _images(5)
    expected = _jacobian_norms(model.encoder, x)
    assert torch.allclose(jacobian_frobenius_sq(model.encoder, x, 4), expected, rtol=1e-5)
    model.eval()  # the validation objective (eval mode, no gradients) uses the exact norm
    with torch.no_grad():
        terms = model.loss_terms(x, torch.Generator())
    assert terms["contraction"].item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_training_contraction_is_an_unbiased_estimate(raw_params):
    model = _model(raw_params, "cae", hidden=[12])
    x = _images(1).repeat(4000, 1, 1, 1)  # one image, 4000 independent probes
    exact = _jacobian_norms(model.encoder, x[:1])[0].item()
    estimate = model.loss_terms(x, torch.Generator().manual_seed(0))["contraction"].item()
    assert estimate == pytest.approx(exact, rel=0.05)
    assert exact > 0
    one_probe = model.loss_terms(x[:1], torch.Generator().manual_seed(1))["contraction"].item()
    assert one_probe != pytest.approx(exact, rel=1e-3)  # a single probe is noisy, not exact


def test_training_contraction_gradient_matches_the_exact_penalty_gradient(raw_params):
    """The estimate must train the encoder: its gradient averages to the exact norm's."""
    model = _model(raw_params, "cae", hidden=[12])
    weight = model.encoder[1].weight
    image = _images(1)
    (exact,) = torch.autograd.grad(
        jacobian_frobenius_sq(model.encoder, image, 4, create_graph=True).sum(), weight
    )
    terms = model.loss_terms(image.repeat(4000, 1, 1, 1), torch.Generator().manual_seed(2))
    (estimated,) = torch.autograd.grad(terms["contraction"], weight)
    assert exact.abs().sum() > 0
    relative_error = (estimated - exact).norm() / exact.norm()
    assert relative_error < 0.1


def test_contraction_weight_scales_the_penalty_in_the_loss(raw_params):
    model = _model(raw_params, "cae", contraction_weight=2.5).eval()
    with torch.no_grad():
        terms = model.loss_terms(_images(), torch.Generator())
    expected = terms["recon"] + 2.5 * terms["contraction"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


# --- sparse AE --------------------------------------------------------------------------------


def test_sparsity_kl_matches_torch_distributions():
    rates = torch.tensor([0.1, 0.5, 0.02])
    expected = kl_divergence(Bernoulli(probs=torch.tensor(0.1)), Bernoulli(probs=rates)).sum()
    assert bernoulli_kl(0.1, rates).item() == pytest.approx(expected.item(), rel=1e-6)
    by_hand = 0.1 * math.log(0.1 / 0.5) + 0.9 * math.log(0.9 / 0.5)
    assert bernoulli_kl(0.1, torch.tensor([0.5])).item() == pytest.approx(by_hand, rel=1e-6)
    assert bernoulli_kl(0.1, torch.tensor([0.1, 0.1])).item() == pytest.approx(0.0, abs=1e-7)


def test_sparse_ae_penalises_mean_firing_rates_of_sigmoid_codes(raw_params):
    model = _model(raw_params, "sae", sparsity_target=0.2, sparsity_weight=4.0)
    x = _images()
    terms = model.loss_terms(x, torch.Generator())
    code = model.encode(x)
    assert code.min() > 0 and code.max() < 1  # sigmoid units
    expected_kl = bernoulli_kl(0.2, code.mean(0))
    assert terms["sparsity_kl"].item() == pytest.approx(expected_kl.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 4 * expected_kl).item())


# --- the founding article's models ------------------------------------------------------------


def test_article_models_have_one_layer_each_way(raw_params):
    raw_params["variants"].update(
        article_dae={
            "family": "dae",
            "latent_dim": 5,
            "hidden": [],
            "decoder_hidden": [],
            "code_activation": "relu",
            "noise": {"kind": "gaussian", "level": 0.3},
        },
        article_vae={"family": "vae", "latent_dim": 5, "hidden": [5], "decoder_hidden": []},
    )
    params = parse_params(raw_params)
    dae = build_model(params.variant("article_dae"), SHAPE)
    linear = [m for m in dae.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 5), (5, 64)]
    x = _images() - 0.5
    assert torch.equal(dae.encode(x), torch.relu(linear[0](x.flatten(1))))  # a ReLU code
    vae = build_model(params.variant("article_vae"), SHAPE)
    linear = [m for m in vae.modules() if isinstance(m, torch.nn.Linear)]
    # 64 -> 5 (ReLU) -> mean and log-variance (2 × 5); the decoder 5 -> 64 (sigmoid mean)
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 5), (5, 10), (5, 64)]
