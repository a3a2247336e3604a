"""The family interface as an executable contract: ``aebench check-family module:Class``.

A family written outside this repository (``family: my_models.flows:FlowVAE``) meets the
benchmark's stages only through the methods of :class:`aebench.Autoencoder`; a mistake there
(a detached parameter, a global-RNG draw, a prior sampler that disagrees with its density)
shows up hours later as a flat training curve or a wrong NLL. These checks run the interface on
a tiny model (1×8×8 images, an MLP with a 3-dimensional code) in about a second and name what
broke and where, before any stage runs.

Each check returns a :class:`CheckResult`; :func:`check_family` runs every check that applies to
the family's declaration (its samplers, whether it has a posterior) and never raises for a
broken family: an exception inside a check is that check's failure.
"""

from __future__ import annotations

import math
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.distributions import Normal

from aebench.models.ae import Autoencoder
from aebench.models.registry import FamilyError, check_declaration, family_class
from aebench.models.vae import VariationalAutoencoder
from aebench.runtime import make_deterministic
from aebench.spec import ChainConfig, NoiseSpec, VariantSpec

SHAPE = (1, 8, 8)  # small enough that every check runs in milliseconds
BATCH = 16
LATENT_DIM = 3
HIDDEN = (16, 8)
SEED = 0  # make_deterministic's seed for building a model
GENERATOR_SEED = 1  # the seed of the generator every loss and sampler draws from
CHAIN = ChainConfig(chains=4, burn_in=2, thin=1)
GMM_COMPONENTS = 2
MAX_NAMES = 6  # parameters or keys named in one message before "and N more"

# Monte Carlo sizes and tolerances of the posterior and prior checks (fixed seeds: no flakes)
POSTERIOR_DRAWS = 4000  # per image, for log q against torch.distributions and the KL
PRIOR_PROPOSAL_STD = 3.0  # wider than the prior, so the importance weights have finite variance
PRIOR_PROPOSAL_DRAWS = 50_000
PRIOR_DRAWS = 4000  # prior_codes draws for the entropy estimate
ENTROPY_NEIGHBOURS = 4
PRIOR_KL_TOLERANCE = 0.15  # nats; N(0, I) in 3-D: 0.00 to 0.05 (bias 0.02) over 30 seeds
STANDARD_ERRORS = 5.0  # a Monte Carlo estimate passes within this many standard errors


@dataclass(frozen=True)
class CheckResult:
    """One check of one family: its name, whether it passed, and what broke (or what held)."""

    check: str
    passed: bool
    message: str

    def line(self) -> str:
        """The CLI's line: a mark, the check and its message."""
        return f"{'✓' if self.passed else '✗'} {self.check}: {self.message}"


class ContractBroken(Exception):
    """Raised inside a check with the message its failure reports."""


@dataclass(frozen=True)
class Subject:
    """A family under check: its class, the variant spec built for it and a batch of images."""

    cls: type[Autoencoder]
    spec: VariantSpec
    x: torch.Tensor

    def build(self) -> Autoencoder:
        """A fresh model, its weights fixed by the seed (as every training stage seeds it)."""
        make_deterministic(SEED, 1)
        return self.cls(self.spec, SHAPE)


def generator(seed: int = GENERATOR_SEED) -> torch.Generator:
    """The CPU generator every loss and sampler gets: all of a family's randomness."""
    return torch.Generator().manual_seed(seed)


Check = Callable[[Subject], str]  # the message of a pass; raises ContractBroken on a failure


def check_family(name: str, search: Path | None = None) -> list[CheckResult]:
    """Every check that applies to family ``name`` (built-in or ``module:Class``, imported with
    ``search`` ahead on the path), in order; a family that cannot be resolved or built fails
    the ``declaration`` check alone, since nothing else can run."""
    try:
        cls = family_class(name, search)
        check_declaration(cls, name)  # built-in families are not checked on lookup
    except FamilyError as err:
        return [CheckResult("declaration", False, str(err))]
    except Exception as err:  # an error raised by the module's own code on import
        return [CheckResult("declaration", False, f"importing {name!r} {_raised(err)}")]
    with _isolated_runtime():
        try:
            subject = Subject(cls, variant_for(cls, name), images())
            model = subject.build()
        except Exception as err:
            return [CheckResult("declaration", False, f"building {name!r} {_raised(err)}")]
        declared = CheckResult("declaration", True, _declaration_summary(cls))
        return [declared, *(_run(check, fn, subject) for check, fn in checks_for(model))]


def variant_for(cls: type[Autoencoder], name: str) -> VariantSpec:
    """The smallest variant the family's declaration allows: its Params' defaults, a noise spec
    if it denoises, beta 1 if it takes one, its default code activation if it has no
    posterior."""
    return VariantSpec(
        name="contract",
        family=name,
        arch="mlp",
        latent_dim=LATENT_DIM,
        hidden=HIDDEN,
        beta=1.0 if cls.takes_beta else None,
        noise=NoiseSpec("gaussian", 0.3) if cls.denoises else None,
        code_activation=None if cls.has_posterior else cls.code_activations[0],
        family_params=tuple(sorted(cls.Params().model_dump().items())),
    )


def images(n: int = BATCH) -> torch.Tensor:
    """``n`` random grey images in [0, 1], the same every call."""
    return torch.rand((n, *SHAPE), generator=generator(12345))


def checks_for(model: Autoencoder) -> list[tuple[str, Check]]:
    """The checks that apply to this family: the common ones, one per declared sampler, and
    the density checks of a family with a posterior."""
    checks: list[tuple[str, Check]] = [
        ("shapes", check_shapes),
        ("finite loss", check_loss),
        ("gradients", check_gradients),
        ("determinism", check_determinism),
        ("loss keys", check_loss_keys),
        ("checkpoint", check_checkpoint),
    ]
    checks += [(f"sampler {name}", sampler_check(name)) for name in type(model).samplers]
    if isinstance(model, VariationalAutoencoder) and type(model).has_posterior:
        checks += [
            ("posterior", check_posterior),
            ("prior density", check_prior_density),
            ("prior draws", check_prior_draws),
            ("log ratio", check_log_ratio),
        ]
        if model.standard_prior():
            checks.append(("iwae bound", check_iwae_bound))
    return checks


# --- the common checks ------------------------------------------------------------------------


def check_shapes(subject: Subject) -> str:
    """encode → N×latent_dim, decode → N×C×H×W logits, reconstruct in [0, 1]: the shapes every
    stage and metric assumes."""
    model = subject.build().eval()
    n = len(subject.x)
    with torch.no_grad():
        code = _expect_shape("encode(x)", model.encode(subject.x), (n, LATENT_DIM))
        _expect_shape("decode(encode(x))", model.decode(code), (n, *SHAPE))
        recon = _expect_shape("reconstruct(x)", model.reconstruct(subject.x), (n, *SHAPE))
    _expect_unit_range("reconstruct(x)", recon)
    return (
        f"encode → {_dims((n, LATENT_DIM))}, decode → {_dims((n, *SHAPE))}, reconstruct in [0, 1]"
    )


def check_loss(subject: Subject) -> str:
    """loss_terms in train mode: a dict with "loss" and only finite scalar tensors (the history
    CSV stores each term as one number per epoch)."""
    model = subject.build().train()
    terms = _expect_terms(model.loss_terms(subject.x, generator()), "train")
    bad = {key: value.item() for key, value in terms.items() if not torch.isfinite(value)}
    if bad:
        listed = ", ".join(f"{key}={value}" for key, value in bad.items())
        raise ContractBroken(f"loss_terms in train mode has non-finite terms: {listed}")
    return f"loss_terms → {', '.join(terms)}, finite (loss {terms['loss'].item():.4g})"


def check_gradients(subject: Subject) -> str:
    """After loss.backward(), every trainable parameter has a finite gradient that is non-zero
    somewhere: a parameter the loss does not reach never trains."""
    model = subject.build().train()
    loss = _expect_terms(model.loss_terms(subject.x, generator()), "train")["loss"]
    if not loss.requires_grad:
        raise ContractBroken("the loss does not depend on any parameter (it has no grad_fn)")
    loss.backward()
    missing, non_finite, zero = [], [], []
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    for name, parameter in trainable:
        if parameter.grad is None:
            missing.append(name)
        elif not torch.isfinite(parameter.grad).all():
            non_finite.append(name)
        elif not parameter.grad.any():
            zero.append(name)
    problems = [
        (
            missing,
            "get no gradient: the loss does not reach them (a .detach(), .item(), "
            "no_grad or a tensor rebuilt from numbers on the way?)",
        ),
        (non_finite, "get a non-finite gradient"),
        (zero, "get an all-zero gradient"),
    ]
    found = [f"{_names(names)} {why}" for names, why in problems if names]
    if found:
        raise ContractBroken("; ".join(found))
    return f"all {len(trainable)} parameter tensors get a finite, non-zero gradient"


def check_determinism(subject: Subject) -> str:
    """Two builds with the same seed give bit-identical weights, and their losses with the same
    generator are bit-identical even when the global RNG is left in different states: every
    random number of a family must come from the generator it is passed."""
    first_weights, first_loss = _seeded_run(subject, global_seed=101)
    second_weights, second_loss = _seeded_run(subject, global_seed=202)
    differ = [k for k in first_weights if not _same_bits(first_weights[k], second_weights[k])]
    if differ or set(first_weights) != set(second_weights):
        raise ContractBroken(
            f"two builds with make_deterministic({SEED}) differ in {_names(differ)}: the "
            "constructor draws from a source the seed does not fix"
        )
    if not _same_bits(first_loss, second_loss):
        raise ContractBroken(
            f"the loss differs between two runs with the same seed and generator "
            f"({first_loss.item():.6g} vs {second_loss.item():.6g}): loss_terms draws from the "
            "global torch RNG (torch.rand/randn/randn_like without generator=) or another "
            "unseeded source; draw every random number from the generator it is passed"
        )
    return "same seed and generator: bit-identical weights and loss"


def check_loss_keys(subject: Subject) -> str:
    """The same loss_terms keys in train and eval mode: the history CSV has one column per key,
    for the training and the validation pass alike."""
    model = subject.build()
    train_keys = list(_expect_terms(model.train().loss_terms(subject.x, generator()), "train"))
    with torch.no_grad():  # as the validation pass runs it
        eval_keys = list(_expect_terms(model.eval().loss_terms(subject.x, generator()), "eval"))
    if set(train_keys) != set(eval_keys):
        only_train = sorted(set(train_keys) - set(eval_keys))
        only_eval = sorted(set(eval_keys) - set(train_keys))
        raise ContractBroken(
            f"loss_terms keys differ between train and eval mode: only in train "
            f"{only_train or 'none'}, only in eval {only_eval or 'none'}"
        )
    return f"train and eval mode both give {', '.join(train_keys)}"


def check_checkpoint(subject: Subject) -> str:
    """save_checkpoint, then load_checkpoint (torch.load with weights_only=True) rebuilds a
    model with bit-identical outputs: the evaluation stages only ever see a loaded model."""
    from aebench.models import load_checkpoint, save_checkpoint

    model = subject.build().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        save_checkpoint(model, path)
        loaded = load_checkpoint(path)
    if type(loaded) is not type(model):
        raise ContractBroken(f"the checkpoint loads as {type(loaded).__name__}")
    before, after = _outputs(model, subject.x), _outputs(loaded, subject.x)
    differ = [key for key in before if not _same_bits(before[key], after[key])]
    if differ:
        raise ContractBroken(
            f"after save_checkpoint/load_checkpoint, {_names(differ)} differ from the saved "
            "model's: part of its state is not in its state_dict (a tensor attribute that "
            "should be a registered buffer or parameter?) or is rebuilt differently from the spec"
        )
    return f"save/load round trip: identical {', '.join(before)}"


def sampler_check(sampler: str) -> Check:
    """The check of one declared sampler: N images of the model's shape in [0, 1]."""

    def check(subject: Subject) -> str:
        from aebench.samplers import draw_samples

        model = subject.build().eval()
        n = len(subject.x)
        with torch.no_grad():
            codes = model.encode(subject.x).double().cpu().numpy()
            if sampler == "prior":
                _expect_shape("prior_codes(n)", model.prior_codes(n, generator()), (n, LATENT_DIM))
        samples = draw_samples(model, sampler, n, SEED, codes, GMM_COMPONENTS, CHAIN)
        _expect_shape(f"the {sampler} sampler's output", samples, (n, *SHAPE))
        _expect_unit_range(f"the {sampler} sampler's output", samples)
        return f"{n} samples of {_dims(SHAPE)} in [0, 1]"

    check.__doc__ = f"The {sampler} sampler draws images of the right shape in [0, 1]."
    return check


# --- the checks of a family with a posterior --------------------------------------------------


def check_posterior(subject: Subject) -> str:
    """posterior(x) gives N×D mean and log-variance; log_posterior at reparameterised draws
    z = mu + exp(logvar / 2) eps equals torch.distributions.Normal's log_prob summed over the
    code; and kl_to_prior (where closed) equals the Monte Carlo mean of log q - log p."""
    model = subject.build().eval()
    n = len(subject.x)
    with torch.no_grad():
        mu, logvar = model.posterior(subject.x)
        _expect_shape("posterior(x)'s mean", mu, (n, LATENT_DIM))
        _expect_shape("posterior(x)'s log-variance", logvar, (n, LATENT_DIM))
        eps = torch.randn((POSTERIOR_DRAWS, n, LATENT_DIM), generator=generator())
        std = (0.5 * logvar).exp()
        z = mu + std * eps
        ours = model.log_posterior(z, mu, logvar)
        reference = Normal(mu, std).log_prob(z).sum(-1)
        _expect_close("log_posterior(z, mu, logvar)", ours, reference, "Normal(mu, std).log_prob")
        kl = model.kl_to_prior(mu, logvar)
        if kl is None:
            return "log_posterior matches Normal.log_prob (KL not in closed form)"
        _expect_mean("kl_to_prior(mu, logvar)", kl, ours - model.log_prior(z), "log q - log p")
    return "log_posterior matches Normal.log_prob; kl_to_prior matches E_q[log q - log p]"


def check_prior_density(subject: Subject) -> str:
    """log_prior integrates to 1: the mean over z ~ N(0, s² I) of p(z) / N(z; 0, s² I) is 1
    within its Monte Carlo error (s = 3, wider than the prior, so the weights are bounded)."""
    model = subject.build().eval()
    proposal = Normal(0.0, PRIOR_PROPOSAL_STD)
    noise = torch.randn((PRIOR_PROPOSAL_DRAWS, LATENT_DIM), generator=generator())
    z = PRIOR_PROPOSAL_STD * noise
    with torch.no_grad():
        log_p = _expect_shape("log_prior(z)", model.log_prior(z), (PRIOR_PROPOSAL_DRAWS,))
    weights = (log_p.double() - proposal.log_prob(z).sum(-1).double()).exp()
    total, error = weights.mean().item(), _standard_error(weights)
    if not abs(total - 1.0) <= STANDARD_ERRORS * error + 0.01:
        raise ContractBroken(
            f"log_prior integrates to {total:.4g} ± {error:.2g}, not 1 (importance sampling "
            f"from N(0, {PRIOR_PROPOSAL_STD:g}² I)): a missing or wrong normalising constant"
        )
    return f"log_prior integrates to {total:.3f} ± {error:.3f}"


def check_prior_draws(subject: Subject) -> str:
    """prior_codes draws have the density log_prior states: over the draws, the cross-entropy
    E[-log_prior(z)] minus their k-nearest-neighbour entropy estimate is KL(draws || p) >= 0,
    which is 0 only when they agree (a sampler for one prior and a density for another)."""
    model = subject.build().eval()
    with torch.no_grad():
        draws = model.prior_codes(PRIOR_DRAWS, generator())
        _expect_shape("prior_codes(n)", draws, (PRIOR_DRAWS, LATENT_DIM))
        cross_entropy = -model.log_prior(draws).double().mean().item()
    entropy = knn_entropy(draws.double())
    divergence = cross_entropy - entropy
    if not abs(divergence) <= PRIOR_KL_TOLERANCE:
        raise ContractBroken(
            f"prior_codes draws do not follow log_prior: E[-log_prior(z)] over them is "
            f"{cross_entropy:.3f} nats but their entropy is {entropy:.3f} nats (KL ≈ "
            f"{divergence:.3f}, tolerance {PRIOR_KL_TOLERANCE}): the prior sampler and the "
            "prior density describe different distributions"
        )
    return f"prior_codes draws follow log_prior (KL estimate {divergence:+.3f} nats)"


def check_log_ratio(subject: Subject) -> str:
    """log_prior_over_posterior(z, eps, logvar) equals log_prior(z) - log_posterior(z, mu,
    logvar): the IWAE bound and the NLL use the first, the densities' checks the second."""
    model = subject.build().eval()
    with torch.no_grad():
        mu, logvar = model.posterior(subject.x)
        eps = torch.randn((4, *mu.shape), generator=generator())
        z = mu + (0.5 * logvar).exp() * eps
        ratio = model.log_prior_over_posterior(z, eps, logvar)
        reference = model.log_prior(z) - model.log_posterior(z, mu, logvar)
    _expect_close("log_prior_over_posterior", ratio, reference, "log_prior - log_posterior")
    return "log_prior_over_posterior = log_prior - log_posterior"


def check_iwae_bound(subject: Subject) -> str:
    """With the exact posterior of a linear-Gaussian model (p(z) = N(0, 1), p(x | z) =
    N(a z, σ²)) every importance weight equals p(x), so the IWAE bound is log N(x; 0, a² + σ²)
    for any K: checked for iwae_bound and for the family's log_prior_over_posterior."""
    from aebench.metrics.likelihood import iwae_bound

    model = subject.build().eval()
    slope, noise = 1.5, 0.5
    x = torch.tensor([-2.0, -0.3, 0.0, 1.1, 2.5], dtype=torch.float64)
    truth = Normal(0.0, math.sqrt(slope**2 + noise**2)).log_prob(x)
    mu = (slope * x / (slope**2 + noise**2)).unsqueeze(1)
    logvar = torch.full_like(mu, math.log(noise**2 / (slope**2 + noise**2)))

    def log_px_given_z(z: torch.Tensor) -> torch.Tensor:
        return Normal(slope * z[..., 0], noise).log_prob(x)

    for k in (1, 5, 50):
        bound = iwae_bound(log_px_given_z, mu, logvar, k, generator(k))
        _expect_close(f"iwae_bound (K={k})", bound, truth, "log N(x; 0, a² + σ²)", atol=1e-6)
        ratio = model.log_prior_over_posterior
        with torch.no_grad():
            family_bound = iwae_bound(log_px_given_z, mu, logvar, k, generator(k), log_ratio=ratio)
        name = f"the bound from the family's log_prior_over_posterior (K={k})"
        _expect_close(name, family_bound, truth, "log N(x; 0, a² + σ²)", atol=1e-6)
    return "IWAE bound with the exact posterior = log p(x) of a linear-Gaussian model, K = 1, 5, 50"


def knn_entropy(points: torch.Tensor, k: int = ENTROPY_NEIGHBOURS) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy (nats) of the distribution
    ``points`` (M×D) were drawn from, from each point's distance to its k-th neighbour; it
    reads only the draws, never a density, so it can check one."""
    from scipy.spatial import cKDTree
    from scipy.special import digamma, gammaln

    m, d = points.shape
    data = points.numpy()
    distances, _ = cKDTree(data).query(data, k=k + 1)  # the nearest is the point itself
    radius = torch.as_tensor(distances[:, k])
    log_unit_ball = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return float(digamma(m) - digamma(k) + log_unit_ball + d * radius.log().mean().item())


# --- helpers --------------------------------------------------------------------------------


def _run(check: str, fn: Check, subject: Subject) -> CheckResult:
    """One check's result: its pass message, its ContractBroken message, or what it raised."""
    try:
        return CheckResult(check, True, fn(subject))
    except ContractBroken as broken:
        return CheckResult(check, False, str(broken))
    except Exception as err:
        return CheckResult(check, False, _raised(err))


def _raised(err: BaseException) -> str:
    """What an exception says and where it was raised: the innermost frame outside torch and
    the standard library, which is in the family or in the aebench code it called."""
    frames = [
        frame
        for frame in traceback.extract_tb(err.__traceback__)
        if f"{os.sep}torch{os.sep}" not in frame.filename
        and "site-packages" not in frame.filename
        and "python3." not in frame.filename
    ]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" at {_short_path(frame.filename)}:{frame.lineno} in {frame.name}"
    return f"raised {type(err).__name__}: {err}{where}"


def _short_path(filename: str) -> str:
    """``filename`` relative to the working directory when it is under it."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return filename


def _declaration_summary(cls: type[Autoencoder]) -> str:
    """What the class declares, in one line."""
    traits = [name for name in ("has_posterior", "denoises", "takes_beta") if getattr(cls, name)]
    own = ", ".join(cls.Params.model_fields) or "none"
    return (
        f"{cls.__module__}.{cls.__qualname__}: samplers {', '.join(cls.samplers)}; "
        f"params {own}{'; ' + ', '.join(traits) if traits else ''}"
    )


def _seeded_run(subject: Subject, global_seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Weights after a seeded build and the train-mode loss with a fresh generator, with the
    global RNG reseeded to ``global_seed`` in between (a family must not read it)."""
    model = subject.build().train()
    weights = {key: value.detach().clone() for key, value in model.state_dict().items()}
    torch.manual_seed(global_seed)
    loss = _expect_terms(model.loss_terms(subject.x, generator()), "train")["loss"]
    return weights, loss.detach()


def _outputs(model: Autoencoder, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the evaluation reads from a model: codes, logits, reconstructions, the loss (the
    global RNG reseeded first: a family that reads it fails the determinism check, not this)."""
    torch.manual_seed(SEED)
    with torch.no_grad():
        code = model.encode(x)
        return {
            "encode": code,
            "decode": model.decode(code),
            "reconstruct": model.reconstruct(x),
            "eval loss": model.loss_terms(x, generator())["loss"],
        }


def _expect_terms(terms: object, mode: str) -> dict[str, torch.Tensor]:
    """``terms`` as loss_terms must return it: a dict of scalar tensors with a "loss" key."""
    if not isinstance(terms, dict):
        raise ContractBroken(f"loss_terms in {mode} mode returns {type(terms).__name__}, not dict")
    if "loss" not in terms:
        raise ContractBroken(f"loss_terms in {mode} mode has no 'loss' key (has {list(terms)})")
    not_scalar = [
        f"{key} ({_describe(value)})"
        for key, value in terms.items()
        if not (isinstance(value, torch.Tensor) and value.dim() == 0)
    ]
    if not_scalar:
        raise ContractBroken(
            f"loss_terms in {mode} mode has terms that are not scalar tensors: "
            f"{', '.join(not_scalar)} (average them over the batch)"
        )
    return terms


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {_dims(tuple(value.shape))}"
    return type(value).__name__


def _expect_shape(what: str, value: object, shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` as a tensor of ``shape``, or a failure naming ``what``."""
    if not isinstance(value, torch.Tensor):
        raise ContractBroken(f"{what} returns {type(value).__name__}, not a tensor")
    if tuple(value.shape) != shape:
        raise ContractBroken(
            f"{what} has shape {_dims(tuple(value.shape))}, expected {_dims(shape)}"
        )
    return value


def _expect_unit_range(what: str, values: torch.Tensor) -> None:
    """Every value in [0, 1] (a NaN is outside)."""
    outside = ~((values >= 0) & (values <= 1))
    if outside.any():
        rows = outside.flatten(1).any(1).sum().item()
        nan = values.isnan().sum().item()
        raise ContractBroken(
            f"{what}: {rows} of {len(values)} images have values outside [0, 1] "
            f"({nan} NaN; finite range {_finite_range(values)})"
        )


def _finite_range(values: torch.Tensor) -> str:
    finite = values[torch.isfinite(values)]
    if not len(finite):
        return "none"
    return f"{finite.min().item():.4g} to {finite.max().item():.4g}"


def _expect_close(
    what: str, value: torch.Tensor, reference: torch.Tensor, against: str, atol: float = 1e-4
) -> None:
    """``value`` equals ``reference`` to round-off (rtol 1e-5, ``atol``), or a failure giving
    the worst entry."""
    value = _expect_shape(what, value, tuple(reference.shape))
    gap = (value.double() - reference.double()).abs()
    allowed = atol + 1e-5 * reference.double().abs()
    if not (gap <= allowed).all():
        worst = int(torch.nan_to_num(gap - allowed, nan=math.inf).flatten().argmax())
        raise ContractBroken(
            f"{what} = {value.flatten()[worst].item():.6g} where {against} = "
            f"{reference.flatten()[worst].item():.6g} (largest gap {gap.max().item():.3g})"
        )


def _expect_mean(what: str, value: torch.Tensor, draws: torch.Tensor, against: str) -> None:
    """``value`` (one per image) equals the mean of ``draws`` (K × N) within STANDARD_ERRORS
    standard errors (plus 1e-3 for round-off)."""
    value = _expect_shape(what, value, tuple(draws.shape[1:]))
    estimate = draws.double().mean(0)
    error = draws.double().std(0) / math.sqrt(len(draws))
    gap = (value.double() - estimate).abs()
    bad = ~(gap <= STANDARD_ERRORS * error + 1e-3)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise ContractBroken(
            f"{what} = {value[row].item():.5g} for image {row}, but the Monte Carlo mean of "
            f"{against} over {len(draws)} draws of q is {estimate[row].item():.5g} ± "
            f"{error[row].item():.2g}"
        )


def _standard_error(values: torch.Tensor) -> float:
    return (values.std() / math.sqrt(len(values))).item()


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-identical tensors (NaN equal to the same NaN, unlike torch.equal)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a_bits = a.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    b_bits = b.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return torch.equal(a_bits, b_bits)


def _names(names: list[str]) -> str:
    """At most MAX_NAMES names, then how many more."""
    shown = ", ".join(names[:MAX_NAMES])
    more = len(names) - MAX_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(size) for size in shape) or "scalar"


@contextmanager
def _isolated_runtime() -> Iterator[None]:
    """make_deterministic fixes the thread counts, the deterministic-kernel switch and the
    global seed for the whole process; a caller (a test session, a notebook) gets its own back."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng = torch.get_rng_state()
    try:
        with threadpool_limits(limits=None):  # restores the BLAS pools' sizes on exit
            yield
    finally:
        torch.set_num_threads(threads)
        # not torch.use_deterministic_algorithms: it imports torch._inductor (see runtime.py)
        torch._C._set_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng)
