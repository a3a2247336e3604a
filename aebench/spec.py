"""Resolved settings: the typed values a stage computes with, and their plain-dict forms.

Validation lives in :mod:`aebench.config`; this module only holds what it produces, so that the
stages (which read resolved settings files, never params.yaml) do not depend on the schema: a
change to a validation message then re-runs no stage. Every type here round-trips through plain
JSON types (``to_dict`` / ``from_dict``), the form the settings files and checkpoints store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

SAMPLERS = ("prior", "gmm", "chain")
NOISE_KINDS = ("gaussian", "masking", "salt_pepper")
LIKELIHOODS = ("bernoulli", "gaussian")
DEFAULT_NOISE_GRID = {
    "gaussian": (0.0, 0.1, 0.2, 0.3, 0.5, 0.75),
    "masking": (0.0, 0.1, 0.25, 0.4, 0.6, 0.8),
    "salt_pepper": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
}
DEFAULT_HIDDEN = {"mlp": (512, 256), "conv": (32, 64)}

# The keys of a variant that are not its family's own hyperparameters (VariantSpec.to_dict)
CORE_VARIANT_KEYS = (
    "name",
    "family",
    "arch",
    "latent_dim",
    "hidden",
    "likelihood",
    "binarize",
    "obs_std",
    "beta",
    "noise",
    "code_activation",
    "decoder_hidden",
    "hidden_activation",
    "train",
    "train_images",
)


@dataclass(frozen=True)
class NoiseSpec:
    kind: str
    level: float


@dataclass(frozen=True)
class VariantSpec:
    """One model variant: everything needed to build and train it, by name.

    Settings a family does not have are None (``beta`` outside the families with a KL weight,
    ``code_activation`` for the families with a posterior, whose code is a distribution), so the
    spec says by itself what its checkpoint dict holds."""

    name: str
    family: str  # a built-in family's name, or an import path ``module:Class``
    arch: str
    latent_dim: int
    hidden: tuple[int, ...]
    beta: float | None = None
    likelihood: str = "bernoulli"
    obs_std: float = 0.1
    noise: NoiseSpec | None = None
    binarize: str = "none"
    code_activation: str | None = "linear"
    decoder_hidden: tuple[int, ...] | None = None  # None: the encoder's widths, reversed
    hidden_activation: str = "relu"  # of the MLP's hidden layers (Burda et al. 2015: tanh)
    # the family's own hyperparameters (its Params), as sorted (key, value) pairs
    family_params: tuple[tuple[str, Any], ...] = ()
    # per-variant training overrides (None: train.batch_size / train.max_epochs)
    batch_size: int | None = None
    max_epochs: int | None = None
    # a stratified subset of the training split (None: all of it); the data-size studies' key
    train_images: int | None = None

    def param(self, key: str) -> Any:
        """One of the family's own hyperparameters, default filled in."""
        return dict(self.family_params)[key]

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        """The decoder's widths as its builder takes them: an MLP's from the code side (default:
        the encoder's reversed); a conv decoder takes the encoder's channels and mirrors them."""
        if self.arch == "conv":
            return self.hidden
        if self.decoder_hidden is not None:
            return self.decoder_hidden
        return tuple(reversed(self.hidden))

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint holding it loads with ``weights_only=True``. The
        key order is part of every checkpoint's bytes: keep it."""
        out: dict[str, Any] = {
            "name": self.name,
            "family": self.family,
            "arch": self.arch,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "likelihood": self.likelihood,
            "binarize": self.binarize,
        }
        if self.likelihood == "gaussian":
            out["obs_std"] = self.obs_std
        if self.beta is not None:
            out["beta"] = self.beta
        if self.noise is not None:
            out["noise"] = {"kind": self.noise.kind, "level": self.noise.level}
        if self.code_activation is not None:
            out["code_activation"] = self.code_activation
        if self.decoder_hidden is not None:
            out["decoder_hidden"] = list(self.decoder_hidden)
        if self.hidden_activation != "relu":  # the default stays out: older checkpoints' bytes
            out["hidden_activation"] = self.hidden_activation
        out.update(self.family_params)
        overrides = {"batch_size": self.batch_size, "max_epochs": self.max_epochs}
        if any(value is not None for value in overrides.values()):
            out["train"] = {k: v for k, v in overrides.items() if v is not None}
        if self.train_images is not None:
            out["train_images"] = self.train_images
        return out

    def same_model(self, other: VariantSpec) -> bool:
        """Whether the two train the same model (everything but the name is equal)."""
        return replace(self, name="") == replace(other, name="")


def variant_from_dict(raw: dict[str, Any]) -> VariantSpec:
    """The inverse of :meth:`VariantSpec.to_dict` (a checkpoint's or a settings file's spec),
    without validation: what it reads was validated when it was written."""
    noise = raw.get("noise")
    train = raw.get("train", {})
    decoder_hidden = raw.get("decoder_hidden")
    own = {key: value for key, value in raw.items() if key not in CORE_VARIANT_KEYS}
    return VariantSpec(
        name=raw["name"],
        family=raw["family"],
        arch=raw["arch"],
        latent_dim=raw["latent_dim"],
        hidden=tuple(raw["hidden"]),
        beta=raw.get("beta"),
        likelihood=raw["likelihood"],
        obs_std=raw.get("obs_std", 0.1),
        noise=None if noise is None else NoiseSpec(noise["kind"], noise["level"]),
        binarize=raw["binarize"],
        code_activation=raw.get("code_activation"),
        decoder_hidden=None if decoder_hidden is None else tuple(decoder_hidden),
        hidden_activation=raw.get("hidden_activation", "relu"),
        family_params=tuple(sorted(own.items())),
        batch_size=train.get("batch_size"),
        max_epochs=train.get("max_epochs"),
        train_images=raw.get("train_images"),
    )


@dataclass(frozen=True)
class DataConfig:
    """How one dataset is split. ``val_images`` (a dataset with an official test split only)
    draws that many validation images from the training images, in place of ``val_fraction``:
    MNIST's literature splits 50,000/10,000, a count no fraction states exactly."""

    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    download_timeout_s: float = 10.0
    val_images: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Adam with early stopping on the validation objective.

    Training stops after ``patience`` epochs without the validation objective falling more than
    ``min_delta`` nats below its best; ``max_epochs`` is only a cap, and a run that reaches it is
    reported as not converged. ``lr_plateau_factor`` (None: off) multiplies the learning rate
    after ``lr_plateau_patience`` epochs without such an improvement.
    """

    max_epochs: int = 500
    patience: int = 10
    min_delta: float = 0.01
    lr_plateau_factor: float | None = 0.5
    lr_plateau_patience: int = 4
    batch_size: int = 100
    lr: float = 1e-3
    device: str = "auto"
    threads: int = 1  # torch CPU threads: fp32 sums, hence results, depend on it
    precision: str = "fp32"


@dataclass(frozen=True)
class ChainConfig:
    """DAE Markov chain sampler (Bengio et al. 2013): parallel chains from uniform noise, each
    step a corruption and a draw from P(X | X~) (see :func:`aebench.samplers.sample_chain`).

    As many chains as samples (one state each after burn-in) keeps the samples independent, so the
    sample metrics mean the same as for the other samplers; fewer chains take several thinned
    states from each. ``chains`` is a cap: no more chains run than samples are asked for."""

    chains: int = 1000
    burn_in: int = 50
    thin: int = 5


@dataclass(frozen=True)
class EvaluateConfig:
    seed: int = 1234  # corruption draws, samplers, binarisation: identical for every model
    batch_size: int = 500
    noise_grid: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: dict(DEFAULT_NOISE_GRID)
    )
    samplers: tuple[str, ...] = SAMPLERS
    gmm_components: int = 10
    chain: ChainConfig = field(default_factory=ChainConfig)
    importance_samples: int = 1000
    grid_images: int = 64


@dataclass(frozen=True)
class EvaluatorConfig:
    """The per-dataset CNN classifier whose features define sample-quality metrics."""

    seed: int = 0
    epochs: int | None = None  # None ("auto"): at least 20, and >= 800 optimizer steps
    batch_size: int = 64
    lr: float = 2e-3
    threads: int = 2  # its weights, hence every sample metric, depend on the thread count
