import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from aebench.config import parse_params
from aebench.models import build_model, load_checkpoint, save_checkpoint
from aebench.models.vae import gaussian_kl
from aebench.samplers import sample_prior

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
FAMILIES = ["ae", "dae", "vae", "dvae", "iwae", "wae", "rae", "cae", "sae"]


def _spec(raw_params, family, arch, likelihood="bernoulli"):
    """The fixture's variant of ``family`` with another architecture and likelihood."""
    variants = {
        name: dict(v, arch=arch, likelihood=likelihood)
        for name, v in raw_params["variants"].items()
    }
    return parse_params({**raw_params, "variants": variants}).variant(family)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_for_every_family_arch_and_image(raw_params, family, arch, shape):
    spec = _spec(raw_params, family, arch)
    model = build_model(spec, shape)
    x = torch.rand(5, *shape)
    code = model.encode(x)
    assert code.shape == (5, spec.latent_dim)
    assert model.decode(code).shape == (5, *shape)
    recon = model.reconstruct(x)
    assert recon.shape == (5, *shape)
    assert recon.min() >= 0 and recon.max() <= 1
    terms = model.loss_terms(x, torch.Generator().manual_seed(0))
    assert terms["loss"].shape == ()
    assert torch.isfinite(terms["loss"])
    assert ("kl" in terms) == (family in ("vae", "dvae"))
    if family in ("vae", "dvae", "iwae", "wae"):
        assert sample_prior(model, 3, seed=0).shape == (3, *shape)


def test_conv_refuses_a_side_it_cannot_halve(raw_params):
    spec = _spec(raw_params, "ae", "conv")
    with pytest.raises(ValueError, match=r"divisible by 4; got 10×10"):
        build_model(spec, (1, 10, 10))


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    posterior = Normal(mu, (0.5 * logvar).exp())
    prior = Normal(torch.zeros(6, 5), torch.ones(6, 5))
    expected = kl_divergence(posterior, prior).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)


def test_kl_is_zero_at_the_prior():
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max().item() == 0.0


def test_vae_loss_is_recon_plus_beta_kl(raw_params):
    raw_params["variants"]["vae"]["beta"] = 4.0
    spec = _spec(raw_params, "vae", "mlp")
    model = build_model(spec, (1, 8, 8))
    terms = model.loss_terms(torch.rand(4, 1, 8, 8), torch.Generator().manual_seed(0))
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 4.0 * terms["kl"].item())


def test_bernoulli_nll_is_bce_in_nats_per_image(raw_params):
    model = build_model(_spec(raw_params, "ae", "mlp"), (1, 2, 2))
    x = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    logits = torch.zeros_like(x)  # p = 0.5 everywhere: log 2 nats per pixel
    assert model.reconstruction_nll(logits, x).item() == pytest.approx(4 * math.log(2))


def test_gaussian_nll_matches_torch_normal(raw_params):
    model = build_model(_spec(raw_params, "ae", "mlp", likelihood="gaussian"), (1, 2, 2))
    x, logits = torch.rand(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    expected = -Normal(torch.sigmoid(logits), 0.1).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(model.reconstruction_nll(logits, x), expected, atol=1e-4)


def test_dae_corrupts_only_the_encoder_input(raw_params):
    model = build_model(_spec(raw_params, "dae", "mlp"), (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    seen = model.encoder_input(x, torch.Generator().manual_seed(0))
    assert (seen == 0).float().mean() > 0.1  # masking 0.25
    clean = build_model(_spec(raw_params, "ae", "mlp"), (1, 8, 8))
    assert torch.equal(clean.encoder_input(x, torch.Generator()), x)


def test_checkpoint_round_trip_with_weights_only(tmp_path, raw_params):
    spec = _spec(raw_params, "dvae", "conv")
    model = build_model(spec, (1, 28, 28))
    save_checkpoint(model, tmp_path / "model.pt")
    loaded = load_checkpoint(tmp_path / "model.pt")
    assert loaded.spec == spec
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.reconstruct(x), model.eval().reconstruct(x))
    assert not list(tmp_path.glob(".*tmp"))


def test_checkpoint_bytes_depend_only_on_the_weights(tmp_path, raw_params):
    model = build_model(_spec(raw_params, "vae", "mlp"), (1, 8, 8))
    save_checkpoint(model, tmp_path / "a" / "model.pt")
    save_checkpoint(model, tmp_path / "b" / "model.pt")
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_dae_loss_scores_the_clean_input_not_the_corrupted_one(raw_params):
    """Vincent et al. 2008: the output of the corrupted input is compared with the clean image."""
    model = build_model(_spec(raw_params, "dae", "mlp"), (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    corrupted = model.encoder_input(x, torch.Generator().manual_seed(3))
    logits = model.decode(model.encode(corrupted))
    against_clean = model.reconstruction_nll(logits, x).mean()
    against_corrupted = model.reconstruction_nll(logits, corrupted).mean()
    loss = model.loss_terms(x, torch.Generator().manual_seed(3))["loss"]
    assert loss.item() == pytest.approx(against_clean.item(), rel=1e-6)
    assert abs(against_clean.item() - against_corrupted.item()) > 1e-3


@pytest.mark.parametrize("family", ["vae", "dvae"])
def test_vae_decodes_a_reparameterised_draw_not_the_mean(raw_params, family):
    """z = mu + sigma * eps with eps from the generator (Kingma & Welling 2014); z = mu would
    make the reconstruction term independent of the draw."""
    model = build_model(_spec(raw_params, family, "mlp"), (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    generator = torch.Generator().manual_seed(5)
    mu, logvar = model.posterior(model.encoder_input(x, generator))
    eps = torch.randn(mu.shape, generator=generator)
    z = mu + (0.5 * logvar).exp() * eps
    expected = model.reconstruction_nll(model.decode(z), x).mean()
    at_mean = model.reconstruction_nll(model.decode(mu), x).mean()
    terms = model.loss_terms(x, torch.Generator().manual_seed(5))
    assert terms["recon"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert abs(terms["recon"].item() - at_mean.item()) > 1e-4
    posterior = Normal(mu, (0.5 * logvar).exp())
    kl = kl_divergence(posterior, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    assert terms["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-5)
    assert terms["kl"].item() > 0  # a flipped sign would make the KL term negative
