"""The params.yaml schema: load, validate and type every tunable before any stage does work.

Every error is one :class:`ParamsError` whose message names the offending key and what is allowed,
so a typo in params.yaml stops a stage before it writes anything.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DATASETS = ("mnist5k", "digits", "mnist", "fashion_mnist", "kmnist", "cifar10")
DATASET_SIDES = {
    "mnist5k": 28,
    "digits": 8,
    "mnist": 28,
    "fashion_mnist": 28,
    "kmnist": 28,
    "cifar10": 32,
}
VARIANT_NAME = re.compile(r"[A-Za-z0-9_-]+")
FAMILIES = ("ae", "dae", "vae", "dvae", "iwae", "wae", "rae", "cae", "sae")
DENOISING_FAMILIES = ("dae", "dvae")
# An encoder posterior q(z | x): trained on a likelihood bound, scored by importance-sampled NLL.
VARIATIONAL_FAMILIES = ("vae", "dvae", "iwae")
# A prior p(z) the training objective matches the codes to, so decoding prior draws makes sense.
PRIOR_FAMILIES = ("vae", "dvae", "iwae", "wae")
BETA_FAMILIES = ("vae", "dvae")  # a weight on the closed-form KL term
# Each family's own hyperparameters (variant keys) and their defaults. Only that family's variants
# may set them, so a key that would silently do nothing is refused.
FAMILY_PARAMS: dict[str, dict[str, float | int]] = {
    "iwae": {"iw_samples": 5},  # K of the training bound (Burda et al. 2015 used 5 and 50)
    "wae": {"mmd_weight": 10.0},  # lambda (Tolstikhin et al. 2018 used 10 on MNIST)
    "rae": {"code_penalty": 1.0, "decoder_decay": 1e-3},  # beta and lambda (Ghosh et al. 2020)
    "cae": {"contraction_weight": 0.1},  # lambda on ||J||_F^2 (Rifai et al. 2011)
    "sae": {"sparsity_target": 0.05, "sparsity_weight": 1.0},  # rho and its KL weight
}
INTEGER_FAMILY_PARAMS = ("iw_samples",)
FRACTION_FAMILY_PARAMS = ("sparsity_target",)  # strictly between 0 and 1; the rest are >= 0
# What a deterministic code passes through last; variational codes are always linear (mean and
# log-variance), and so is the WAE's, which must be able to match its N(0, I) prior. The sparse
# AE's penalty is a KL towards a firing rate, so its units are sigmoid.
CODE_ACTIVATIONS = ("linear", "relu", "sigmoid")
DEFAULT_CODE_ACTIVATION = {"cae": "sigmoid", "sae": "sigmoid"}
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
NOISE_KINDS = ("gaussian", "masking", "salt_pepper")
DEVICES = ("auto", "cpu", "cuda")
BINARIZE = ("none", "dynamic")
PRECISIONS = ("fp32", "bf16")
SAMPLERS = ("prior", "gmm", "chain")
# Which families each sampler applies to (DESIGN.md: samplers).
SAMPLER_FAMILIES = {
    "prior": PRIOR_FAMILIES,
    "gmm": FAMILIES,
    "chain": DENOISING_FAMILIES,
}
DEFAULT_NOISE_GRID = {
    "gaussian": (0.0, 0.1, 0.2, 0.3, 0.5, 0.75),
    "masking": (0.0, 0.1, 0.25, 0.4, 0.6, 0.8),
    "salt_pepper": (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
}
DEFAULT_HIDDEN = {"mlp": (512, 256), "conv": (32, 64)}
# Allowed corruption level per kind: sigma for gaussian, a pixel fraction for the others.
NOISE_LEVEL_RANGE = {"gaussian": (0.0, 1.0), "masking": (0.0, 1.0), "salt_pepper": (0.0, 1.0)}


class ParamsError(ValueError):
    """A params.yaml value that is missing, mistyped or out of range."""


@dataclass(frozen=True)
class NoiseSpec:
    kind: str
    level: float


@dataclass(frozen=True)
class VariantSpec:
    """One model variant: everything needed to build and train it, by name."""

    name: str
    family: str
    arch: str
    latent_dim: int
    hidden: tuple[int, ...]
    beta: float = 1.0
    likelihood: str = "bernoulli"
    obs_std: float = 0.1
    noise: NoiseSpec | None = None
    binarize: str = "none"
    code_activation: str = "linear"
    decoder_hidden: tuple[int, ...] | None = None  # None: the encoder's widths, reversed
    # the family's own hyperparameters (FAMILY_PARAMS), as sorted (key, value) pairs
    family_params: tuple[tuple[str, float | int], ...] = ()
    # per-variant training overrides (None: train.batch_size / train.max_epochs)
    batch_size: int | None = None
    max_epochs: int | None = None
    # a stratified subset of the training split (None: all of it); the data-size studies' key
    train_images: int | None = None

    def param(self, key: str) -> float | int:
        """One of the family's own hyperparameters (FAMILY_PARAMS), default filled in."""
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
        """Plain types only, so a checkpoint holding it loads with ``weights_only=True``."""
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
        if self.family in BETA_FAMILIES:
            out["beta"] = self.beta
        if self.noise is not None:
            out["noise"] = {"kind": self.noise.kind, "level": self.noise.level}
        if self.family not in VARIATIONAL_FAMILIES:
            out["code_activation"] = self.code_activation
        if self.decoder_hidden is not None:
            out["decoder_hidden"] = list(self.decoder_hidden)
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


@dataclass(frozen=True)
class DataConfig:
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    download_timeout_s: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """Adam with early stopping on the validation objective, so models are compared converged.

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


@dataclass(frozen=True)
class RunConfig:
    datasets: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    studies: tuple[str, ...] = ()  # run by `aebench study`, never by the default `dvc repro`


@dataclass(frozen=True)
class StudyCurve:
    """One swept variant: its points as (value, variant name), by value. A point equal to a
    variant of run.variants is that variant (its runs are reused); the others are generated."""

    variant: str
    points: tuple[tuple[float | int | None, str], ...]  # None: train_images unset (all images)


@dataclass(frozen=True)
class StudySpec:
    """One setting (``key``) swept over ``values`` for each of ``variants``, whose own value is
    always a point too."""

    name: str
    key: str
    values: tuple[float | int, ...]
    curves: tuple[StudyCurve, ...]

    @property
    def variant_names(self) -> tuple[str, ...]:
        """Every point's variant, curve by curve: the runs the study's report reads."""
        return tuple(name for curve in self.curves for _, name in curve.points)


@dataclass(frozen=True)
class Params:
    data: DataConfig
    train: TrainConfig
    run: RunConfig
    variants: dict[str, VariantSpec] = field(default_factory=dict)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    studies: dict[str, StudySpec] = field(default_factory=dict)
    # the generated variants of every declared study (the points no run.variants entry equals)
    study_points: dict[str, VariantSpec] = field(default_factory=dict)

    def variant(self, name: str) -> VariantSpec:
        """A variant of 'variants', or a study's generated point."""
        if name in self.variants:
            return self.variants[name]
        if name in self.study_points:
            return self.study_points[name]
        raise ParamsError(
            f"variant {name!r} is not defined in 'variants' nor generated by a study "
            f"(a stale studies/points.yaml? `aebench study` rewrites it); "
            f"defined: {_names(self.variants)}"
        )

    def points_to_run(self) -> tuple[str, ...]:
        """The generated variants of the studies in run.studies, in declaration order."""
        chosen = [self.studies[name] for name in self.run.studies]
        names = [n for study in chosen for n in study.variant_names if n in self.study_points]
        return tuple(dict.fromkeys(names))

    def train_for(self, name: str) -> TrainConfig:
        """``train`` with the variant's own overrides (batch size, epoch cap) applied."""
        spec = self.variant(name)
        return replace(
            self.train,
            batch_size=spec.batch_size or self.train.batch_size,
            max_epochs=spec.max_epochs or self.train.max_epochs,
        )


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ParamsError naming the first bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    try:
        return parse_params(raw)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def parse_params(raw: Any) -> Params:
    """Validate an already-parsed params mapping (see :func:`load_params`)."""
    _refuse_non_finite(raw)
    root = _mapping(raw, "the top level")
    _check_keys(
        root,
        "the top level",
        required=("run", "variants"),
        optional=("data", "train", "evaluate", "evaluator", "studies"),
    )
    variants_raw = _mapping(root["variants"], "variants")
    if not variants_raw:
        raise ParamsError("variants: at least one variant must be defined")
    variants = {name: _parse_variant(str(name), spec) for name, spec in variants_raw.items()}
    run = _parse_run(root["run"], variants)
    studies, points = _parse_studies(root.get("studies", {}), variants_raw, variants, run)
    unknown = [name for name in run.studies if name not in studies]
    if unknown:
        raise ParamsError(
            f"run.studies: {unknown[0]!r} is not declared under 'studies'; "
            f"declared: {_names(studies) or 'none'}"
        )
    return Params(
        data=_parse_data(root.get("data", {})),
        train=_parse_train(root.get("train", {})),
        run=run,
        variants=variants,
        evaluate=_parse_evaluate(root.get("evaluate", {})),
        evaluator=_parse_evaluator(root.get("evaluator", {})),
        studies=studies,
        study_points=points,
    )


def _parse_data(raw: Any) -> DataConfig:
    node = _mapping(raw, "data")
    _check_keys(node, "data", optional=tuple(DataConfig.__dataclass_fields__))
    default = DataConfig()
    val = _fraction(node, "data.val_fraction", default.val_fraction)
    test = _fraction(node, "data.test_fraction", default.test_fraction)
    if val + test >= 1:
        raise ParamsError(
            f"data.val_fraction + data.test_fraction must be below 1 (got {val} + {test})"
        )
    return DataConfig(
        split_seed=_int(node, "data.split_seed", default.split_seed, minimum=0),
        val_fraction=val,
        test_fraction=test,
        download_timeout_s=_positive_float(
            node, "data.download_timeout_s", default.download_timeout_s
        ),
    )


def _parse_train(raw: Any) -> TrainConfig:
    node = _mapping(raw, "train")
    _check_keys(node, "train", optional=tuple(TrainConfig.__dataclass_fields__))
    default = TrainConfig()
    factor = node.get("lr_plateau_factor", default.lr_plateau_factor)
    if factor is not None:
        factor = _number(node, "train.lr_plateau_factor", default.lr_plateau_factor)
        if not 0 < factor < 1:
            raise ParamsError(
                f"train.lr_plateau_factor: {factor} is not allowed; a number between 0 and 1 "
                "(exclusive), or null to keep the learning rate fixed"
            )
    cfg = TrainConfig(
        max_epochs=_int(node, "train.max_epochs", default.max_epochs, minimum=1),
        patience=_int(node, "train.patience", default.patience, minimum=1),
        min_delta=_non_negative_float(node, "train.min_delta", default.min_delta),
        lr_plateau_factor=factor,
        lr_plateau_patience=_int(
            node, "train.lr_plateau_patience", default.lr_plateau_patience, minimum=0
        ),
        batch_size=_int(node, "train.batch_size", default.batch_size, minimum=1),
        lr=_positive_float(node, "train.lr", default.lr),
        device=_choice(node, "train.device", DEVICES, default.device),
        threads=_int(node, "train.threads", default.threads, minimum=1),
        precision=_choice(node, "train.precision", PRECISIONS, default.precision),
    )
    if factor is not None and cfg.lr_plateau_patience >= cfg.patience:
        raise ParamsError(
            f"train.lr_plateau_patience: {cfg.lr_plateau_patience} is not allowed; it must be "
            f"below train.patience ({cfg.patience}), else training stops before the learning "
            "rate is ever lowered"
        )
    return cfg


def _parse_evaluate(raw: Any) -> EvaluateConfig:
    node = _mapping(raw, "evaluate")
    _check_keys(node, "evaluate", optional=tuple(EvaluateConfig.__dataclass_fields__))
    default = EvaluateConfig()
    grid_default = {kind: list(levels) for kind, levels in DEFAULT_NOISE_GRID.items()}
    grid_node = _mapping(node.get("noise_grid", grid_default), "evaluate.noise_grid")
    _check_keys(grid_node, "evaluate.noise_grid", optional=NOISE_KINDS)
    grid = {}
    for kind, levels in grid_node.items():
        key = f"evaluate.noise_grid.{kind}"
        low, high = NOISE_LEVEL_RANGE[kind]
        if (
            not isinstance(levels, list)
            or len(levels) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)
        ):
            raise ParamsError(f"{key}: expected a list of at least two numbers, got {levels!r}")
        if any(not low <= v <= high for v in levels) or sorted(set(levels)) != levels:
            raise ParamsError(
                f"{key}: {levels} is not allowed; levels must be increasing, distinct and "
                f"within {low} to {high}"
            )
        grid[kind] = tuple(float(v) for v in levels)
    samplers = node.get("samplers", list(default.samplers))
    if (
        not isinstance(samplers, list)
        or any(s not in SAMPLERS for s in samplers)
        or len(set(samplers)) != len(samplers)
        or "gmm" not in samplers
    ):
        raise ParamsError(
            f"evaluate.samplers: {samplers!r} is not allowed; a list of distinct entries from "
            f"{', '.join(SAMPLERS)} that includes gmm (the sampler every family has, which the "
            "headline and trade-off compare)"
        )
    chain_node = _mapping(node.get("chain", {}), "evaluate.chain")
    _check_keys(chain_node, "evaluate.chain", optional=tuple(ChainConfig.__dataclass_fields__))
    chain_default = ChainConfig()
    return EvaluateConfig(
        seed=_int(node, "evaluate.seed", default.seed, minimum=0),
        batch_size=_int(node, "evaluate.batch_size", default.batch_size, minimum=1),
        noise_grid=grid,
        samplers=tuple(samplers),
        gmm_components=_int(node, "evaluate.gmm_components", default.gmm_components, minimum=1),
        chain=ChainConfig(
            chains=_int(chain_node, "evaluate.chain.chains", chain_default.chains, minimum=1),
            burn_in=_int(chain_node, "evaluate.chain.burn_in", chain_default.burn_in, minimum=0),
            thin=_int(chain_node, "evaluate.chain.thin", chain_default.thin, minimum=1),
        ),
        importance_samples=_int(
            node, "evaluate.importance_samples", default.importance_samples, minimum=1
        ),
        grid_images=_int(node, "evaluate.grid_images", default.grid_images, minimum=1),
    )


def _parse_evaluator(raw: Any) -> EvaluatorConfig:
    node = _mapping(raw, "evaluator")
    _check_keys(node, "evaluator", optional=tuple(EvaluatorConfig.__dataclass_fields__))
    default = EvaluatorConfig()
    return EvaluatorConfig(
        seed=_int(node, "evaluator.seed", default.seed, minimum=0),
        epochs=None if node.get("epochs", "auto") == "auto" else _evaluator_epochs(node),
        batch_size=_int(node, "evaluator.batch_size", default.batch_size, minimum=1),
        lr=_positive_float(node, "evaluator.lr", default.lr),
        threads=_int(node, "evaluator.threads", default.threads, minimum=1),
    )


def _evaluator_epochs(node: dict) -> int:
    value = node["epochs"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamsError(f"evaluator.epochs: {value!r} is not allowed; 'auto' or an integer >= 1")
    return value


def _parse_run(raw: Any, variants: dict[str, VariantSpec]) -> RunConfig:
    node = _mapping(raw, "run")
    _check_keys(node, "run", required=("datasets", "variants", "seeds"), optional=("studies",))
    datasets = _nonempty_list(node, "run.datasets")
    for name in datasets:
        if name not in DATASETS:
            raise ParamsError(
                f"run.datasets: unknown dataset {name!r}; allowed: {', '.join(DATASETS)}"
            )
    names = _nonempty_list(node, "run.variants")
    for name in names:
        if name not in variants:
            raise ParamsError(
                f"run.variants: {name!r} is not defined under 'variants'; "
                f"defined: {_names(variants)}"
            )
    for name in names:
        _check_conv_fits(variants[name], datasets)
    seeds = _nonempty_list(node, "run.seeds")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ParamsError(f"run.seeds: {seed!r} is not allowed; seeds are integers >= 0")
    studies = node.get("studies", [])
    if not isinstance(studies, list) or not all(isinstance(n, str) for n in studies):
        raise ParamsError(f"run.studies: expected a list of study names, got {studies!r}")
    for key, values in (
        ("datasets", datasets),
        ("variants", names),
        ("seeds", seeds),
        ("studies", studies),
    ):
        if len(set(values)) != len(values):
            raise ParamsError(f"run.{key}: duplicate entries in {values}")
    return RunConfig(tuple(datasets), tuple(names), tuple(seeds), tuple(studies))


# The settings a study may sweep: numbers whose meaning does not depend on another setting's.
STUDY_KEYS = (
    "latent_dim",
    "beta",
    "noise.level",
    "train_images",
    "obs_std",
    *sorted({key for params in FAMILY_PARAMS.values() for key in params}),
)
STUDY_NAME_SEPARATOR = "--"  # <variant>--<key>-<value>: cannot clash with a usual variant name


def study_point_name(variant: str, key: str, value: float | int) -> str:
    """The generated variant's name: path- and stage-safe, e.g. ``vae--beta-0p5``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace(".", "p").replace("-", "m").replace("+", "")
    return f"{variant}{STUDY_NAME_SEPARATOR}{key.replace('.', '_')}-{text}"


_UNSET = object()


def _setting(spec: VariantSpec, key: str) -> float | int | object | None:
    """The variant's value of a sweepable ``key``; ``_UNSET`` where it has no such setting."""
    if key == "latent_dim":
        return spec.latent_dim
    if key == "train_images":
        return spec.train_images
    if key == "noise.level":
        return _UNSET if spec.noise is None else spec.noise.level
    if key == "beta":
        return spec.beta if spec.family in BETA_FAMILIES else _UNSET
    if key == "obs_std":
        return spec.obs_std if spec.likelihood == "gaussian" else _UNSET
    own = FAMILY_PARAMS.get(spec.family, {})
    return spec.param(key) if key in own else _UNSET


def _own_value(spec: VariantSpec, key: str, where: str) -> float | int | None:
    """The swept variant's own value of ``key`` (None: train_images unset, the whole split)."""
    value = _setting(spec, key)
    if value is _UNSET:
        sweepable = [k for k in STUDY_KEYS if _setting(spec, k) is not _UNSET]
        raise ParamsError(
            f"{where}: variant {spec.name!r} (family {spec.family}, likelihood "
            f"{spec.likelihood}) has no setting {key!r} to sweep; it has: {', '.join(sweepable)}"
        )
    return value


def _with_value(raw: dict, key: str, value: float | int) -> dict:
    """A copy of a variant's params.yaml entry with ``key`` (dotted) set to ``value``."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    *parents, leaf = key.split(".")
    node = out
    for parent in parents:
        node = node[parent]
    node[leaf] = value
    return out


def _parse_studies(
    raw: Any, variants_raw: dict, variants: dict[str, VariantSpec], run: RunConfig
) -> tuple[dict[str, StudySpec], dict[str, VariantSpec]]:
    """Every declared study, and the variants its points generate (validated like any other)."""
    studies: dict[str, StudySpec] = {}
    points: dict[str, VariantSpec] = {}
    for name, node in _mapping(raw, "studies").items():
        where = f"studies.{name}"
        if not VARIANT_NAME.fullmatch(str(name)):
            raise ParamsError(f"studies: name {name!r} is not allowed; letters, digits, '_', '-'")
        node = _mapping(node, where)
        _check_keys(node, where, required=("variants", "key", "values"))
        key = _choice(node, f"{where}.key", STUDY_KEYS, None)
        values = _nonempty_list(node, f"{where}.values")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamsError(f"{where}.values: {value!r} is not allowed; expected numbers")
        if len(set(values)) != len(values):
            raise ParamsError(f"{where}.values: duplicate entries in {values}")
        curves = []
        for base in _nonempty_list(node, f"{where}.variants"):
            if base not in variants:
                raise ParamsError(
                    f"{where}.variants: {base!r} is not defined under 'variants'; "
                    f"defined: {_names(variants)}"
                )
            own = _own_value(variants[base], key, f"{where}.key")
            curve = {own: base}  # the variant itself is always a point
            for value in values:
                if own is not None and float(value) == float(own):
                    continue
                point = study_point_name(base, key, value)
                try:
                    spec = _parse_variant(point, _with_value(variants_raw[base], key, value))
                except ParamsError as err:
                    raise ParamsError(f"{where}: value {value} for {base!r}: {err}") from None
                _check_conv_fits(spec, list(run.datasets))
                same = [n for n in run.variants if variants[n].same_model(spec)]
                if same:
                    curve[value] = same[0]
                    continue
                if point in variants:
                    raise ParamsError(
                        f"{where}: the generated variant {point!r} clashes with a variant of "
                        "that name under 'variants'; rename that variant"
                    )
                points[point] = spec
                curve[value] = point
            if base not in run.variants:
                points[base] = variants[base]
            by_value = sorted(curve.items(), key=lambda kv: math.inf if kv[0] is None else kv[0])
            curves.append(StudyCurve(base, tuple(by_value)))
        studies[str(name)] = StudySpec(str(name), key, tuple(values), tuple(curves))
    return studies, points


_VARIANT_KEYS = (
    "family",
    "arch",
    "latent_dim",
    "hidden",
    "beta",
    "likelihood",
    "obs_std",
    "noise",
    "binarize",
    "code_activation",
    "decoder_hidden",
    "train",
    "train_images",
    *sorted({key for params in FAMILY_PARAMS.values() for key in params}),
)
VARIANT_TRAIN_KEYS = ("batch_size", "max_epochs")


def _check_conv_fits(spec: VariantSpec, datasets: list[str]) -> None:
    """A conv body halves the image once per layer: the sides must divide evenly."""
    if spec.arch != "conv":
        return
    factor = 2 ** len(spec.hidden)
    for dataset in datasets:
        side = DATASET_SIDES[dataset]
        if side % factor:
            raise ParamsError(
                f"variants.{spec.name}.hidden: {len(spec.hidden)} conv layers need image sides "
                f"divisible by {factor}, but {dataset} images are {side}×{side}; allowed: at most "
                f"{_max_halvings(side)} layers for {dataset}, or arch mlp"
            )


def _max_halvings(side: int) -> int:
    count = 0
    while side % 2 == 0:
        side //= 2
        count += 1
    return count


def _parse_variant(name: str, raw: Any) -> VariantSpec:
    where = f"variants.{name}"
    if not VARIANT_NAME.fullmatch(name):
        raise ParamsError(
            f"variants: name {name!r} is not allowed; letters, digits, '_' and '-' only "
            "(it becomes a directory and a stage name)"
        )
    node = _mapping(raw, where)
    _check_keys(node, where, required=("family",), optional=_VARIANT_KEYS)
    family = _choice(node, f"{where}.family", FAMILIES, None)
    arch = _choice(node, f"{where}.arch", ARCHS, "mlp")
    hidden = _widths(node, f"{where}.hidden", list(DEFAULT_HIDDEN[arch]), arch)
    decoder_hidden = None
    if "decoder_hidden" in node:
        if arch != "mlp":
            raise ParamsError(
                f"{where}.decoder_hidden: a conv decoder mirrors hidden; allowed only with "
                "arch: mlp"
            )
        decoder_hidden = tuple(_widths(node, f"{where}.decoder_hidden", None, arch))
    if family not in BETA_FAMILIES and "beta" in node:
        raise ParamsError(
            f"{where}.beta: only {', '.join(BETA_FAMILIES)} have a KL weight; family {family!r} "
            "does not"
        )
    noise = None
    if family in DENOISING_FAMILIES:
        if "noise" not in node:
            raise ParamsError(
                f"{where}.noise: family {family!r} needs a corruption "
                f"{{kind: {'|'.join(NOISE_KINDS)}, level: number}}"
            )
        noise = _parse_noise(node["noise"], f"{where}.noise")
    elif "noise" in node:
        raise ParamsError(
            f"{where}.noise: family {family!r} trains on clean input; "
            f"use family {'dae' if family == 'ae' else 'dvae'} for a denoising variant"
        )
    likelihood = _choice(node, f"{where}.likelihood", LIKELIHOODS, "bernoulli")
    if likelihood != "gaussian" and "obs_std" in node:
        raise ParamsError(
            f"{where}.obs_std: the standard deviation of a Gaussian decoder; allowed only with "
            "likelihood: gaussian"
        )
    binarize = _choice(node, f"{where}.binarize", BINARIZE, "none")
    if binarize == "dynamic" and likelihood != "bernoulli":
        raise ParamsError(
            f"{where}.binarize: 'dynamic' binarisation needs likelihood 'bernoulli', "
            f"not {likelihood!r}"
        )
    train = _mapping(node.get("train", {}), f"{where}.train")
    _check_keys(train, f"{where}.train", optional=VARIANT_TRAIN_KEYS)
    return VariantSpec(
        name=name,
        family=family,
        arch=arch,
        latent_dim=_int(node, f"{where}.latent_dim", None, minimum=1),
        hidden=tuple(hidden),
        beta=_positive_float(node, f"{where}.beta", 1.0),
        likelihood=likelihood,
        obs_std=_positive_float(node, f"{where}.obs_std", 0.1),
        noise=noise,
        binarize=binarize,
        code_activation=_code_activation(node, where, family),
        decoder_hidden=decoder_hidden,
        family_params=_family_params(node, where, family),
        batch_size=_optional_int(train, f"{where}.train.batch_size", minimum=1),
        max_epochs=_optional_int(train, f"{where}.train.max_epochs", minimum=1),
        train_images=_optional_int(node, f"{where}.train_images", minimum=2),
    )


def _widths(node: dict, key: str, default: list | None, arch: str) -> list[int]:
    """Layer widths: integers > 0; an MLP may have none (one linear map), a conv body may not."""
    widths = node.get(key.rsplit(".", 1)[-1], default)
    if (
        not isinstance(widths, list)
        or (arch == "conv" and not widths)
        or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)
    ):
        allowed = "a non-empty list" if arch == "conv" else "a list (empty: no hidden layer)"
        raise ParamsError(f"{key}: {widths!r} is not allowed; {allowed} of integers > 0")
    return widths


def _code_activation(node: dict, where: str, family: str) -> str:
    default = DEFAULT_CODE_ACTIVATION.get(family, "linear")
    if family in VARIATIONAL_FAMILIES or family in PRIOR_FAMILIES:
        if node.get("code_activation", "linear") != "linear":
            raise ParamsError(
                f"{where}.code_activation: family {family!r} matches its code to an N(0, I) "
                "prior, which a bounded or non-negative code cannot reach; allowed: linear"
            )
        return "linear"
    activation = _choice(node, f"{where}.code_activation", CODE_ACTIVATIONS, default)
    if family == "sae" and activation != "sigmoid":
        raise ParamsError(
            f"{where}.code_activation: the sparse AE's penalty is a KL towards a firing rate, "
            "so its code units must be sigmoid; allowed: sigmoid"
        )
    return activation


def _family_params(node: dict, where: str, family: str) -> tuple[tuple[str, float | int], ...]:
    """The family's own hyperparameters, defaults filled in; another family's keys are refused."""
    own = FAMILY_PARAMS.get(family, {})
    for other, keys in FAMILY_PARAMS.items():
        for key in keys:
            if key in node and key not in own:
                takes = f"takes: {', '.join(own)}" if own else "takes none"
                raise ParamsError(
                    f"{where}.{key}: a hyperparameter of family {other!r}, not of {family!r} "
                    f"({family!r} {takes})"
                )
    values: dict[str, float | int] = {}
    for key, default in own.items():
        if key in INTEGER_FAMILY_PARAMS:
            values[key] = _int(node, f"{where}.{key}", default, minimum=1)
        elif key in FRACTION_FAMILY_PARAMS:
            values[key] = _fraction(node, f"{where}.{key}", default)
        else:
            values[key] = _non_negative_float(node, f"{where}.{key}", default)
    return tuple(sorted(values.items()))


def variant_from_dict(raw: dict[str, Any]) -> VariantSpec:
    """Rebuild a VariantSpec from :meth:`VariantSpec.to_dict` (as stored in a checkpoint)."""
    fields = dict(raw)
    name = fields.pop("name")
    # checkpoints written before to_dict left out the settings a variant cannot have
    if fields["family"] not in BETA_FAMILIES:
        fields.pop("beta", None)
    if fields.get("likelihood", "bernoulli") != "gaussian":
        fields.pop("obs_std", None)
    return _parse_variant(name, fields)


def _parse_noise(raw: Any, where: str) -> NoiseSpec:
    node = _mapping(raw, where)
    _check_keys(node, where, required=("kind", "level"))
    kind = _choice(node, f"{where}.kind", NOISE_KINDS, None)
    level = _number(node, f"{where}.level", None)
    low, high = NOISE_LEVEL_RANGE[kind]
    if not low <= level <= high:
        raise ParamsError(
            f"{where}.level: {level} is out of range for {kind!r}; allowed: {low} to {high}"
        )
    return NoiseSpec(kind, float(level))


# --- small typed readers; each raises ParamsError naming the key ------------------------------


def _refuse_non_finite(raw: Any, where: str = "") -> None:
    """YAML reads ``.nan`` and ``.inf`` as floats, which every range check would let through
    (NaN compares false with everything): refuse them anywhere in the file, naming the key."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ParamsError(
            f"{where or 'the top level'}: {raw} is not allowed; numbers must be finite"
        )
    children = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in children:
        child = (
            f"{where}[{key}]" if isinstance(raw, list) else f"{where}.{key}" if where else str(key)
        )
        _refuse_non_finite(value, child)


def _names(mapping: dict) -> str:
    return ", ".join(sorted(map(str, mapping)))


def _mapping(raw: Any, where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _check_keys(
    node: dict, where: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> None:
    allowed = required + optional
    for key in node:
        if key not in allowed:
            raise ParamsError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in node:
            raise ParamsError(f"{where}: missing required key {key!r}")


def _choice(node: dict, key: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = node.get(key.rsplit(".", 1)[-1], default)
    if value not in allowed:
        raise ParamsError(f"{key}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _number(node: dict, key: str, default: float | None) -> float:
    value = node.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamsError(f"{key}: {value!r} is not allowed; expected a number")
    if not math.isfinite(value):
        raise ParamsError(f"{key}: {value} is not allowed; expected a finite number")
    return float(value)


def _non_negative_float(node: dict, key: str, default: float) -> float:
    value = _number(node, key, default)
    if value < 0:
        raise ParamsError(f"{key}: {value} is not allowed; expected a number >= 0")
    return value


def _positive_float(node: dict, key: str, default: float) -> float:
    value = _number(node, key, default)
    if value <= 0:
        raise ParamsError(f"{key}: {value} is not allowed; expected a number > 0")
    return value


def _fraction(node: dict, key: str, default: float) -> float:
    value = _number(node, key, default)
    if not 0 < value < 1:
        raise ParamsError(f"{key}: {value} is not allowed; expected a fraction between 0 and 1")
    return value


def _int(node: dict, key: str, default: int | None, minimum: int) -> int:
    value = node.get(key.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamsError(f"{key}: {value!r} is not allowed; expected an integer >= {minimum}")
    if value < minimum:
        raise ParamsError(f"{key}: {value} is not allowed; expected an integer >= {minimum}")
    return value


def _optional_int(node: dict, key: str, minimum: int) -> int | None:
    """An integer setting that may be absent (None: the caller's default applies)."""
    if key.rsplit(".", 1)[-1] not in node:
        return None
    return _int(node, key, None, minimum)


def _nonempty_list(node: dict, key: str) -> list:
    value = node.get(key.rsplit(".", 1)[-1])
    if not isinstance(value, list) or not value:
        raise ParamsError(f"{key}: expected a non-empty list, got {value!r}")
    return value
