"""The params.yaml schema: load, validate and type every tunable before any stage does work.

Pydantic models declare each section's keys, types, defaults and ranges; a variant's own keys
come from its family class (:mod:`aebench.models.registry`), so a new family needs no edit here.
A validated file becomes the frozen dataclasses of :mod:`aebench.spec`, which the stages and the
checkpoints use. Every error is one :class:`ParamsError` whose message names the offending key
and what is allowed, so a typo in params.yaml stops a stage before it writes anything.
:mod:`aebench.schema` writes the same models as a JSON Schema for editors.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from aebench.datasets import REGISTRY as BUILT_IN_DATASETS
from aebench.errors import ParamsError
from aebench.file_datasets import FORMATS as FILE_FORMATS
from aebench.models.ae import Autoencoder
from aebench.models.registry import BY_NAME, FamilyError, family_class, is_import_path
from aebench.spec import (
    DEFAULT_HIDDEN,
    DEFAULT_NOISE_GRID,
    LIKELIHOODS,
    NOISE_KINDS,
    SAMPLERS,
    DataConfig,
    EvaluateConfig,
    EvaluatorConfig,
    NoiseSpec,
    TrainConfig,
    VariantSpec,
)
from aebench.stage_settings import MixingConfig, mixing_problem

__all__ = ["ParamsError", "VariantSpec", "load_params", "parse_params", "variant_from_dict"]

DATASETS = tuple(BUILT_IN_DATASETS)  # and those params.yaml declares under `datasets`
VARIANT_NAME = re.compile(r"[A-Za-z0-9_-]+")
CODE_ACTIVATIONS = ("linear", "relu", "sigmoid")
HIDDEN_ACTIVATIONS = ("relu", "tanh")
ARCHS = ("mlp", "conv")
DEVICES = ("auto", "cpu", "cuda")
BINARIZE = ("none", "dynamic")
PRECISIONS = ("fp32", "bf16")
# Allowed corruption level per kind: sigma for gaussian, a pixel fraction for the others.
NOISE_LEVEL_RANGE = {"gaussian": (0.0, 1.0), "masking": (0.0, 1.0), "salt_pepper": (0.0, 1.0)}
# The settings a study may sweep: numbers whose meaning does not depend on another setting's.
# Besides these, a study may sweep any numeric key of the swept variant's family's own Params
# (an external family's too).
LR_KEY = "train.lr"  # a study key that is how a variant is trained, not part of its model
CORE_STUDY_KEYS = ("latent_dim", "beta", "noise.level", "train_images", "obs_std", "train.lr")
STUDY_NAME_SEPARATOR = "--"  # <variant>--<key>-<value>: cannot clash with a usual variant name


# --- value types: each words its failure as params.yaml reads, not as Python does -------------


def _says(allowed: str, number: bool = False) -> WrapValidator:
    """Reword any failure of the wrapped type as '<value> is not allowed; <allowed>' (or as
    ``allowed`` itself where it places ``{value}``), a number shown as the float it would be:
    pydantic's own words name Python types ('Input should be a valid integer'), not the range
    or the choices that params.yaml allows."""
    template = allowed if "{value}" in allowed else "{value} is not allowed; " + allowed

    def reword(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            shown = float(value) if number and _is_int(value) else value
            raise ValueError(template.format(value=repr(shown))) from None

    return WrapValidator(reword)


def _integer(minimum: int) -> Any:
    return Annotated[int, Field(ge=minimum), _says(f"expected an integer >= {minimum}")]


def _real(expected: str, **bounds: float) -> Any:
    return Annotated[float, Field(**bounds), _says(f"expected {expected}", number=True)]


def _choice(values: tuple[str, ...], why: str = "") -> Any:
    return Annotated[Literal[values], _says(f"{why}allowed: {', '.join(values)}")]


def _distinct(values: list) -> list:
    """A repeated seed or dataset would run twice; a repeated study value, train twice."""
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate entries in {values}")
    return values


Natural = _integer(0)
Count = _integer(1)
Number = _real("a number")
Positive = _real("a number > 0", gt=0)
NonNegative = _real("a number >= 0", ge=0)
Fraction = _real("a fraction between 0 and 1", gt=0, lt=1)
Unique = (Field(json_schema_extra={"uniqueItems": True}), AfterValidator(_distinct))
Widths = Annotated[
    list[Annotated[int, Field(gt=0)]],
    _says("a list of integers > 0 ([] for an MLP: no hidden layer)"),
]


class _Refusal(ValueError):
    """A rule across keys, broken: reported at ``key`` of the model whose validator raises it
    (pydantic would report it at the model, where no key is named)."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


class _Section(BaseModel):
    """A mapping of params.yaml. Strict, as YAML types are plain: ``true`` is no integer, and
    ``1e-3`` (a string to YAML, which wants ``1.0e-3``) no number. An empty section (``data:``,
    read as null) takes its defaults."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        """An unknown key, named with the allowed ones (pydantic's extra_forbidden lists none)."""
        if data is None:
            return {}
        for key in data if isinstance(data, dict) else ():
            if key not in cls.model_fields:
                raise ValueError(f"unknown key {key!r}; allowed: {', '.join(cls.model_fields)}")
        return data


# --- the sections -----------------------------------------------------------------------------


class DataModel(_Section):
    split_seed: Natural = DataConfig.split_seed
    val_fraction: Fraction = DataConfig.val_fraction
    test_fraction: Fraction = DataConfig.test_fraction
    download_timeout_s: Positive = DataConfig.download_timeout_s

    @model_validator(mode="after")
    def _leaves_training_data(self) -> Self:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                "val_fraction + test_fraction must be below 1 "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        return self


PlateauFactor = Annotated[
    Annotated[float, Field(gt=0, lt=1)] | None,
    _says("a number between 0 and 1 (exclusive), or null for a fixed learning rate", number=True),
]


class TrainModel(_Section):
    max_epochs: Count = TrainConfig.max_epochs
    patience: Count = TrainConfig.patience
    min_delta: NonNegative = TrainConfig.min_delta
    lr_plateau_factor: PlateauFactor = TrainConfig.lr_plateau_factor
    lr_plateau_patience: Natural = TrainConfig.lr_plateau_patience
    batch_size: Count = TrainConfig.batch_size
    lr: Positive = TrainConfig.lr
    device: _choice(DEVICES) = TrainConfig.device
    threads: Count = TrainConfig.threads
    precision: _choice(PRECISIONS) = TrainConfig.precision

    @model_validator(mode="after")
    def _lowers_before_stopping(self) -> Self:
        if self.lr_plateau_factor is not None and self.lr_plateau_patience >= self.patience:
            raise _Refusal(
                "lr_plateau_patience",
                f"{self.lr_plateau_patience} is not allowed; it must be below train.patience "
                f"({self.patience}), else training stops before the learning rate is ever lowered",
            )
        return self


class ChainModel(_Section):
    """The chain stage's trace and sampling (aebench/chain_mixing.py); its burn-in is chosen by
    the stationarity rule, not set."""

    chains: Count = MixingConfig.chains
    thin: Count = MixingConfig.thin
    trace_steps: Count = MixingConfig.trace_steps
    window: Count = MixingConfig.window

    @model_validator(mode="after")
    def _windows_fit(self) -> Self:
        problem = mixing_problem(self.chains, self.thin, self.trace_steps, self.window)
        if problem is not None:
            raise _Refusal(*problem)
        return self


NoiseKind = Annotated[
    Literal[NOISE_KINDS], _says("unknown key {value}; allowed: " + ", ".join(NOISE_KINDS))
]
NoiseLevels = Annotated[list[float], Field(min_length=2), _says("a list of at least two numbers")]


def _includes_gmm(samplers: list[str]) -> list[str]:
    """gmm is the sampler every family has, which the headline and the trade-off compare."""
    if "gmm" not in samplers:
        raise ValueError("no gmm")
    return _distinct(samplers)


Samplers = Annotated[
    list[Literal[SAMPLERS]],
    Field(json_schema_extra={"uniqueItems": True, "contains": {"const": "gmm"}}),
    AfterValidator(_includes_gmm),
    _says(
        f"a list of distinct entries from {', '.join(SAMPLERS)} that includes gmm (the sampler "
        "every family has, which the headline and trade-off compare)"
    ),
]


class EvaluateModel(_Section):
    seed: Natural = EvaluateConfig.seed
    batch_size: Count = EvaluateConfig.batch_size
    # corruption kind -> levels; a kind left out is not evaluated
    noise_grid: dict[NoiseKind, NoiseLevels] = {k: list(v) for k, v in DEFAULT_NOISE_GRID.items()}
    samplers: Samplers = list(SAMPLERS)
    gmm_components: Count = EvaluateConfig.gmm_components
    chain: ChainModel = ChainModel()
    importance_samples: Count = EvaluateConfig.importance_samples
    grid_images: Count = EvaluateConfig.grid_images

    @field_validator("noise_grid")
    @classmethod
    def _levels_increase(cls, grid: dict[str, list[float]]) -> dict[str, list[float]]:
        for kind, levels in grid.items():
            low, high = NOISE_LEVEL_RANGE[kind]
            if any(not low <= v <= high for v in levels) or sorted(set(levels)) != levels:
                raise _Refusal(
                    kind,
                    f"{levels} is not allowed; levels must be increasing, distinct and within "
                    f"{low} to {high}",
                )
        return grid


class EvaluatorModel(_Section):
    seed: Natural = EvaluatorConfig.seed
    # auto: at least 20 epochs and 800 optimizer steps
    epochs: Annotated[Literal["auto"] | Count, _says("'auto' or an integer >= 1")] = "auto"
    batch_size: Count = EvaluatorConfig.batch_size
    lr: Positive = EvaluatorConfig.lr
    threads: Count = EvaluatorConfig.threads


class RunModel(_Section):
    """What `dvc repro` runs: every dataset × variant × seed (studies: `aebench study`)."""

    datasets: Annotated[list[str], Field(min_length=1), *Unique]
    variants: Annotated[list[str], Field(min_length=1), *Unique]
    seeds: Annotated[list[Natural], Field(min_length=1), *Unique]
    studies: Annotated[
        list[str], _says("expected a list of study names, got {value}"), *Unique
    ] = []


StudyValues = Annotated[
    list[int | float],  # a latent_dim stays an integer
    Field(min_length=1),
    _says("expected numbers (a non-empty list)"),
    *Unique,
]


class StudyModel(_Section):
    """One setting (key) swept over values for each of variants; with ``by``, a grid: one curve
    per value of a second setting (a tuning grid, e.g. beta by train.lr)."""

    variants: Annotated[list[str], Field(min_length=1)]
    key: str  # a core key or one of the swept family's own: checked against each variant
    values: StudyValues
    by: Annotated[
        dict[str, StudyValues] | None,
        Field(min_length=1, max_length=1),
        _says("expected one key mapped to its values, e.g. {{train.lr: [0.0003, 0.001]}}"),
    ] = None

    @model_validator(mode="after")
    def _two_keys(self) -> Self:
        if self.by is not None and self.key in self.by:
            raise _Refusal("by", f"{self.key!r} is the study's key already; name another setting")
        return self


class TuningGridModel(_Section):
    """One variant's tuning grid: a study of that variant alone (key × by)."""

    key: str
    values: StudyValues
    by: Annotated[
        dict[str, StudyValues] | None,
        Field(min_length=1, max_length=1),
        _says("expected one key mapped to its values, e.g. {{train.lr: [0.0003, 0.001]}}"),
    ] = None


class TuningModel(_Section):
    """Equal-budget tuning on the validation split: a grid per variant, trained with selection
    seeds that are not reporting seeds."""

    seeds: Annotated[list[Natural], Field(min_length=1), *Unique]
    importance_samples: Count = 100  # K of the validation NLL
    grids: Annotated[dict[str, TuningGridModel], Field(min_length=1)]


class PublishedModel(_Section):
    """A literature row: the published test NLL its variant is set beside, and where it is from."""

    nll: Positive
    source: Annotated[str, Field(min_length=1)]


class LiteratureModel(_Section):
    """The full-MNIST section's literature table: its rows, evaluated with the paper's K."""

    importance_samples: Count = 5000
    rows: Annotated[dict[str, PublishedModel], Field(min_length=1)]


class FullMnistModel(_Section):
    """The full-MNIST section: its own pipeline (full_mnist/dvc.yaml) and report."""

    dataset: str = "mnist"
    variants: Annotated[list[str], Field(min_length=1), *Unique]
    seeds: Annotated[list[Natural], Field(min_length=1), *Unique]
    literature: LiteratureModel | None = None


# --- a variant: the keys all share, and those its family declares ----------------------------


class NoiseModel(_Section):
    """The corruption a denoising family trains on."""

    kind: _choice(NOISE_KINDS)
    level: Number

    @model_validator(mode="after")
    def _in_range(self) -> Self:
        low, high = NOISE_LEVEL_RANGE[self.kind]
        if not low <= self.level <= high:
            raise _Refusal(
                "level",
                f"{self.level} is out of range for {self.kind!r}; allowed: {low} to {high}",
            )
        return self


class VariantTrainModel(_Section):
    """This variant's own training settings, in place of train.*."""

    batch_size: Count | None = None
    max_epochs: Count | None = None
    lr: Positive | None = None  # a tuning grid's key (studies key train.lr)


class VariantModel(_Section):
    """The keys every variant has; :func:`variant_model` adds its family's."""

    family: str
    arch: _choice(ARCHS) = "mlp"
    latent_dim: Count
    hidden: Widths | None = None  # default: DEFAULT_HIDDEN of the arch
    likelihood: _choice(LIKELIHOODS) = "bernoulli"
    obs_std: Positive = VariantSpec.obs_std
    binarize: _choice(BINARIZE) = "none"
    code_activation: _choice(CODE_ACTIVATIONS) = "linear"
    decoder_hidden: Widths | None = None  # default: hidden reversed
    hidden_activation: _choice(HIDDEN_ACTIVATIONS) = "relu"  # an MLP's hidden layers
    train: VariantTrainModel = VariantTrainModel()
    train_images: _integer(2) | None = None  # default: the whole training split

    @model_validator(mode="after")
    def _keys_agree(self) -> Self:
        if self.arch == "conv" and self.hidden == []:
            raise _Refusal("hidden", "[] is not allowed; a non-empty list of channels for a conv")
        if self.arch != "mlp" and self.decoder_hidden is not None:
            raise _Refusal(
                "decoder_hidden", "a conv decoder mirrors hidden; allowed only with arch: mlp"
            )
        if self.arch != "mlp" and self.hidden_activation != "relu":
            raise _Refusal(
                "hidden_activation", "a conv body uses ReLU; allowed only with arch: mlp"
            )
        if self.likelihood != "gaussian" and "obs_std" in self.model_fields_set:
            raise _Refusal(
                "obs_std",
                "the standard deviation of a Gaussian decoder; allowed only with likelihood: "
                "gaussian",
            )
        if self.binarize == "dynamic" and self.likelihood != "bernoulli":
            raise _Refusal(
                "binarize",
                f"'dynamic' binarisation needs likelihood 'bernoulli', not {self.likelihood!r}",
            )
        return self


@cache
def variant_model(family: str, cls: type[Autoencoder]) -> type[VariantModel]:
    """The keys a variant of ``family`` takes: the shared ones, its code activations, ``beta``
    and ``noise`` where it has them, and its Params fields. One model per family, so that the
    JSON Schema can spell each family's keys out."""
    allowed = cls.code_activations
    why = f"family {family!r} {cls.code_activation_reason}; " if len(allowed) == 1 else ""
    fields: dict[str, Any] = {
        "family": (Literal[family], ...),
        "code_activation": (_choice(allowed, why), allowed[0]),
    }
    if cls.takes_beta:
        fields["beta"] = (Positive, 1.0)
    if cls.denoises:
        fields["noise"] = (NoiseModel, ...)
    own = {key: (info.annotation, info) for key, info in cls.Params.model_fields.items()}
    return create_model(
        f"{cls.__name__}Variant", __base__=VariantModel, __doc__=cls.summary, **fields, **own
    )


_VERBS = {"variants": "defined", "studies": "declared"}
_PATH_SAFE = Field(json_schema_extra={"propertyNames": {"pattern": f"^{VARIANT_NAME.pattern}$"}})


class DatasetModel(_Section):
    """One dataset's own settings: a researcher's image set from files (``format`` and ``path``,
    formats: aebench/file_datasets.py), and split keys in place of data.*'s. ``val_images``
    counts the validation images drawn from a downloaded set's official training split."""

    format: _choice(FILE_FORMATS) | None = None
    path: str | None = None
    split_seed: Natural | None = None
    val_fraction: Fraction | None = None
    test_fraction: Fraction | None = None
    val_images: _integer(1) | None = None

    def split_keys(self) -> dict[str, Any]:
        """The split keys this entry sets (the rest come from data.*)."""
        return {key: getattr(self, key) for key in SPLIT_KEYS if getattr(self, key) is not None}


SPLIT_KEYS = ("split_seed", "val_fraction", "test_fraction", "val_images")


def _check_dataset_entry(name: str, entry: DatasetModel, defaults: DataModel) -> None:
    """datasets.<name>: a built-in dataset's entry holds split keys only, a dataset from files
    names its format and path; val_images only where an official test split leaves val to draw
    (and test_fraction only where there is none); the resolved fractions leave training data."""
    where = f"datasets.{name}"
    built_in = BUILT_IN_DATASETS.get(name)
    downloaded = built_in is not None and not built_in.embedded
    for key in ("format", "path"):
        given = getattr(entry, key) is not None
        if built_in is not None and given:
            raise _Refusal(
                f"{where}.{key}",
                f"{name!r} is a built-in dataset: its entry takes only the split "
                f"keys ({', '.join(split_keys_of(name))}); choose another name for your files",
            )
        if built_in is None and not given:
            raise _Refusal(where, f"missing required key {key!r} (a dataset from files)")
    if entry.val_images is not None and not downloaded:
        raise _Refusal(
            f"{where}.val_images",
            "only a dataset with an official test split takes a count of validation images; "
            f"allowed for: {', '.join(_downloaded())}; use val_fraction for {name}",
        )
    if entry.val_images is not None and entry.val_fraction is not None:
        raise _Refusal(f"{where}.val_images", "give val_images or val_fraction, not both")
    if downloaded and entry.test_fraction is not None:
        raise _Refusal(
            f"{where}.test_fraction",
            f"{name} keeps its official test split; allowed: {', '.join(split_keys_of(name))}",
        )
    val = defaults.val_fraction if entry.val_fraction is None else entry.val_fraction
    test = defaults.test_fraction if entry.test_fraction is None else entry.test_fraction
    if not downloaded and val + test >= 1:
        raise _Refusal(where, f"val_fraction + test_fraction must be below 1 (got {val} + {test})")


def _downloaded() -> tuple[str, ...]:
    return tuple(name for name, entry in BUILT_IN_DATASETS.items() if not entry.embedded)


def split_keys_of(name: str) -> tuple[str, ...]:
    """The split keys dataset ``name``'s entry may set: a downloaded set's test split is
    official, and only such a set counts its validation images (val_images)."""
    if name in _downloaded():
        return tuple(key for key in SPLIT_KEYS if key != "test_fraction")
    return tuple(key for key in SPLIT_KEYS if key != "val_images")


class ParamsModel(_Section):
    """params.yaml. A variant's entry is validated by its family's model (:func:`variant_model`)
    once its family is known, so here it is any mapping; :mod:`aebench.schema` spells it out."""

    run: RunModel
    variants: Annotated[dict[str, Any], Field(min_length=1), _PATH_SAFE]
    data: DataModel = DataModel()
    train: TrainModel = TrainModel()
    evaluate: EvaluateModel = EvaluateModel()
    evaluator: EvaluatorModel = EvaluatorModel()
    studies: Annotated[dict[str, StudyModel], _PATH_SAFE] = {}
    datasets: Annotated[dict[str, DatasetModel], _PATH_SAFE] = {}
    full_mnist: FullMnistModel | None = None
    tuning: TuningModel | None = None

    @field_validator("variants", "studies", "datasets", mode="before")
    @classmethod
    def _path_safe_names(cls, entries: Any) -> Any:
        """A variant's or study's name becomes a directory and a stage name."""
        if not isinstance(entries, dict):
            return {} if entries is None else entries
        for name in entries:
            if not VARIANT_NAME.fullmatch(str(name)):
                raise ValueError(
                    f"name {name!r} is not allowed; letters, digits, '_' and '-' only "
                    "(it becomes a directory and a stage name)"
                )
        return {str(name): entry for name, entry in entries.items()}

    @model_validator(mode="after")
    def _datasets_known(self) -> Self:
        """Named by the list, not by an index into it: the name is what a user looks for."""
        known = (*DATASETS, *(name for name in self.datasets if name not in DATASETS))
        for name in self.run.datasets:
            if name not in known:
                raise _Refusal(
                    "run.datasets", f"unknown dataset {name!r}; allowed: {', '.join(known)}"
                )
        for name, entry in self.datasets.items():
            _check_dataset_entry(name, entry, self.data)
        return self

    @model_validator(mode="after")
    def _names_declared(self) -> Self:
        """run and the studies name only declared variants and studies."""
        for key, names, section in [
            ("run.variants", self.run.variants, "variants"),
            *((f"studies.{n}.variants", s.variants, "variants") for n, s in self.studies.items()),
            ("run.studies", self.run.studies, "studies"),
            *_full_mnist_names(self.full_mnist),
        ]:
            declared, verb = getattr(self, section), _VERBS[section]
            for name in (n for n in names if n not in declared):
                listed = _names(declared) or "none"
                raise _Refusal(key, f"{name!r} is not {verb} under {section!r}; {verb}: {listed}")
        return self

    @model_validator(mode="after")
    def _full_mnist_apart(self) -> Self:
        """The section's dataset has its own fetch and evaluator stages (full_mnist/dvc.yaml):
        the default pipeline may not declare the same outputs."""
        section = self.full_mnist
        if section is None:
            return self
        if section.dataset not in DATASETS:
            raise _Refusal(
                "full_mnist.dataset",
                f"unknown dataset {section.dataset!r}; allowed: {', '.join(DATASETS)}",
            )
        if section.dataset in self.run.datasets:
            raise _Refusal(
                "run.datasets",
                f"{section.dataset!r} is the full-MNIST section's dataset (full_mnist/dvc.yaml, "
                "`aebench full-mnist`); allowed: any other dataset",
            )
        rows = section.literature.rows if section.literature else {}
        for name in rows:
            if name not in section.variants:
                raise _Refusal(
                    f"full_mnist.literature.rows.{name}",
                    f"a literature row must be one of full_mnist.variants: "
                    f"{', '.join(section.variants)}",
                )
        return self


def _full_mnist_names(section: FullMnistModel | None) -> list[tuple[str, list[str], str]]:
    """The full-MNIST section's variant list, checked like run.variants."""
    return [] if section is None else [("full_mnist.variants", section.variants, "variants")]


# --- the resolved settings --------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    datasets: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    studies: tuple[str, ...] = ()  # run by `aebench study`, never by the default `dvc repro`


@dataclass(frozen=True)
class Published:
    """A literature row's published test NLL (nats) and its source."""

    nll: float
    source: str


@dataclass(frozen=True)
class FullMnistConfig:
    """The full-MNIST section: dataset × variants × seeds, and its literature rows."""

    dataset: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    literature: dict[str, Published] = field(default_factory=dict)
    literature_importance_samples: int = 5000


@dataclass(frozen=True)
class TuningConfig:
    """The tuning grids (one study per variant) and how their points are trained and scored."""

    seeds: tuple[int, ...]
    importance_samples: int
    grids: dict[str, StudySpec]  # the grids that are tuned: their variant is in run.variants
    not_run: tuple[str, ...] = ()  # declared grids whose variant is not run: not tuned

    @property
    def points(self) -> tuple[str, ...]:
        """Every grid point, grid by grid: each is trained with every selection seed."""
        names = [n for grid in self.grids.values() for n in grid.variant_names]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class StudyCurve:
    """One swept variant: its points as (value, variant name), by value. A point equal to a
    variant of run.variants is that variant (its runs are reused); the others are generated."""

    variant: str
    points: tuple[tuple[float | int | None, str], ...]  # None: train_images unset (all images)
    by_value: float | int | None = None  # in a grid: the curve's value of the study's by-key


@dataclass(frozen=True)
class StudySpec:
    """One setting (``key``) swept over ``values`` for each of ``variants``, whose own value is
    always a point too."""

    name: str
    key: str
    values: tuple[float | int, ...]
    curves: tuple[StudyCurve, ...]
    by: tuple[str, tuple[float | int, ...]] | None = None  # a grid: one curve per by-value

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
    # datasets from files: name -> {"format", "path"} (path relative to params.yaml's folder)
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)
    # a dataset's own split keys (params.yaml's datasets.<name>), over data.*: see data_for
    dataset_splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    studies: dict[str, StudySpec] = field(default_factory=dict)
    # the generated variants of every declared study (the points no run.variants entry equals)
    study_points: dict[str, VariantSpec] = field(default_factory=dict)
    full_mnist: FullMnistConfig | None = None
    # a variant's (or a generated point's) own learning rate, in place of train.lr: how it is
    # trained, not the model, so it lives beside the specs rather than in them
    variant_lr: dict[str, float] = field(default_factory=dict)
    tuning: TuningConfig | None = None
    # the chain stage's settings (evaluate.chain in params.yaml)
    chain: MixingConfig = field(default_factory=MixingConfig)

    @property
    def datasets_resolved(self) -> tuple[str, ...]:
        """Every dataset a pipeline reads: the default run's and the full-MNIST section's."""
        extra = (self.full_mnist.dataset,) if self.full_mnist else ()
        return (*self.run.datasets, *extra)

    def importance_samples_for(self, name: str) -> int:
        """K of the NLL for variant ``name``: a literature row is evaluated with its paper's K."""
        section = self.full_mnist
        if section and name in section.literature:
            return section.literature_importance_samples
        return self.evaluate.importance_samples

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

    def data_for(self, dataset: str) -> DataConfig:
        """data.* with the dataset's own split keys applied."""
        return replace(self.data, **self.dataset_splits.get(dataset, {}))

    def train_for(self, name: str) -> TrainConfig:
        """``train`` with the variant's own overrides (batch size, epoch cap, learning rate)
        applied."""
        spec = self.variant(name)
        return replace(
            self.train,
            batch_size=spec.batch_size or self.train.batch_size,
            max_epochs=spec.max_epochs or self.train.max_epochs,
            lr=self.variant_lr.get(name, self.train.lr),
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
    model = _validated(ParamsModel, raw)
    variants = {name: _parse_variant(name, node) for name, node in model.variants.items()}
    for name in model.run.variants:
        _check_conv_fits(variants[name], model.run.datasets)
    run = RunConfig(**{key: tuple(names) for key, names in model.run})
    variant_lr = {
        name: lr for name, node in model.variants.items() if (lr := _own_lr(node)) is not None
    }
    studies, points = _parse_studies(
        model.studies, model.variants, variants, run, variant_lr, model.train.lr
    )
    tuning = _parse_tuning(model, variants, run, variant_lr, points)
    evaluate = model.evaluate
    return Params(
        data=DataConfig(**model.data.model_dump()),
        train=TrainConfig(**model.train.model_dump()),
        run=run,
        variants=variants,
        evaluate=EvaluateConfig(
            **evaluate.model_dump(exclude={"noise_grid", "samplers", "chain"}),
            noise_grid={kind: tuple(levels) for kind, levels in evaluate.noise_grid.items()},
            samplers=tuple(evaluate.samplers),
        ),
        chain=MixingConfig(**evaluate.chain.model_dump()),
        evaluator=EvaluatorConfig(
            **model.evaluator.model_dump(exclude={"epochs"}),
            epochs=None if model.evaluator.epochs == "auto" else model.evaluator.epochs,
        ),
        studies=studies,
        study_points=points,
        variant_lr=variant_lr,
        tuning=tuning,
        datasets={
            name: {"format": entry.format, "path": entry.path}
            for name, entry in model.datasets.items()
            if entry.path is not None
        },
        dataset_splits={
            name: entry.split_keys() for name, entry in model.datasets.items() if entry.split_keys()
        },
        full_mnist=_full_mnist(model.full_mnist),
    )


def _full_mnist(section: FullMnistModel | None) -> FullMnistConfig | None:
    if section is None:
        return None
    literature = section.literature
    return FullMnistConfig(
        dataset=section.dataset,
        variants=tuple(section.variants),
        seeds=tuple(section.seeds),
        literature={
            name: Published(row.nll, row.source)
            for name, row in (literature.rows.items() if literature else ())
        },
        literature_importance_samples=literature.importance_samples if literature else 5000,
    )


def variant_from_dict(raw: dict[str, Any]) -> VariantSpec:
    """A variant from a params.yaml-style mapping that also holds its ``name`` (a partial entry,
    or :meth:`VariantSpec.to_dict`), validated and with defaults filled in. Checkpoints and
    settings files, validated when written, are read back by :func:`aebench.spec.
    variant_from_dict` instead."""
    fields = dict(raw)
    return _parse_variant(fields.pop("name"), fields)


def _parse_variant(name: str, raw: Any) -> VariantSpec:
    """A variant, validated by its family's model; ``beta`` None for a family without a KL
    weight, ``code_activation`` None for one with a posterior (its code is a distribution)."""
    where = f"variants.{name}"
    node = {} if raw is None else raw
    cls = _family_of(node, where)
    _check_family_keys(node, where, cls)
    model = _validated(variant_model(node["family"], cls), node, where)
    own = {key: value for key, value in node.items() if key in cls.Params.model_fields}
    noise = getattr(model, "noise", None)
    return VariantSpec(
        name=name,
        family=model.family,
        arch=model.arch,
        latent_dim=model.latent_dim,
        hidden=tuple(DEFAULT_HIDDEN[model.arch] if model.hidden is None else model.hidden),
        beta=getattr(model, "beta", None),
        likelihood=model.likelihood,
        obs_std=model.obs_std,
        noise=None if noise is None else NoiseSpec(noise.kind, noise.level),
        binarize=model.binarize,
        code_activation=None if cls.has_posterior else model.code_activation,
        decoder_hidden=None if model.decoder_hidden is None else tuple(model.decoder_hidden),
        hidden_activation=model.hidden_activation,
        # validated by the family's own Params, which may hold rules across its keys
        family_params=tuple(sorted(_validated(cls.Params, own, where).model_dump().items())),
        batch_size=model.train.batch_size,
        max_epochs=model.train.max_epochs,
        train_images=model.train_images,
    )


def _family_of(node: Any, where: str) -> type[Autoencoder]:
    """The class of the variant's family: it decides which model validates the rest."""
    if not isinstance(node, dict):
        raise ParamsError(f"{where}: expected a mapping, got {type(node).__name__}")
    if "family" not in node:
        raise ParamsError(f"{where}: missing required key 'family'")
    family = node["family"]
    if not isinstance(family, str) or (family not in BY_NAME and not is_import_path(family)):
        raise ParamsError(
            f"{where}.family: {family!r} is not allowed; allowed: {', '.join(BY_NAME)}, "
            "or an import path 'module:Class' of your own family"
        )
    try:
        return family_class(family)
    except FamilyError as err:
        raise ParamsError(f"{where}.family: {err}") from None


def _check_family_keys(node: dict, where: str, cls: type[Autoencoder]) -> None:
    """Refuse a key that another family takes, saying which: 'unknown key' would hide that the
    key is right and the family wrong. A denoising family needs its corruption."""
    family, own = node["family"], tuple(cls.Params.model_fields)
    for other, other_cls in BY_NAME.items():
        for key in other_cls.Params.model_fields:
            if key in node and key not in own:
                takes = f"takes: {', '.join(own)}" if own else "takes none"
                raise ParamsError(
                    f"{where}.{key}: a hyperparameter of family {other!r}, not of {family!r} "
                    f"({family!r} {takes})"
                )
    if "beta" in node and not cls.takes_beta:
        beta_families = [name for name, other in BY_NAME.items() if other.takes_beta]
        raise ParamsError(
            f"{where}.beta: only {', '.join(beta_families)} have a KL weight; family {family!r} "
            "does not"
        )
    if "noise" in node and not cls.denoises:
        raise ParamsError(
            f"{where}.noise: family {family!r} trains on clean input; "
            f"use a denoising family ({', '.join(n for n, c in BY_NAME.items() if c.denoises)}) "
            "for a denoising variant"
        )
    if "noise" not in node and cls.denoises:
        raise ParamsError(
            f"{where}.noise: family {family!r} needs a corruption "
            f"{{kind: {'|'.join(NOISE_KINDS)}, level: number}}"
        )


def _check_conv_fits(spec: VariantSpec, datasets: list[str]) -> None:
    """A conv body halves the image once per layer: the sides must divide evenly."""
    if spec.arch != "conv":
        return
    factor = 2 ** len(spec.hidden)
    for dataset in datasets:
        if dataset not in BUILT_IN_DATASETS:
            continue  # a dataset from files: its size is read from its data by the train stage
        side = BUILT_IN_DATASETS[dataset].side
        if side % factor:
            halvings = (side & -side).bit_length() - 1  # the factors of 2 in side
            raise ParamsError(
                f"variants.{spec.name}.hidden: {len(spec.hidden)} conv layers need image sides "
                f"divisible by {factor}, but {dataset} images are {side}×{side}; allowed: at most "
                f"{halvings} layers for {dataset}, or arch mlp"
            )


# --- studies: each point a variant with one setting changed, validated like any other ---------


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
        return _UNSET if spec.beta is None else spec.beta
    if key == "obs_std":
        return spec.obs_std if spec.likelihood == "gaussian" else _UNSET
    if key == LR_KEY:  # every variant has one; its value is in Params.variant_lr, not the spec
        return None
    return dict(spec.family_params).get(key, _UNSET)


def _own_value(spec: VariantSpec, key: str, where: str) -> float | int | None:
    """The swept variant's own value of ``key`` (None: train_images unset, the whole split)."""
    value = _setting(spec, key)
    if value is _UNSET:
        keys = (*CORE_STUDY_KEYS, *(k for k, _ in spec.family_params))
        sweepable = [k for k in keys if isinstance(_setting(spec, k), int | float | None)]
        raise ParamsError(
            f"{where}: variant {spec.name!r} (family {spec.family}, likelihood "
            f"{spec.likelihood}) has no setting {key!r} to sweep; it has: {', '.join(sweepable)}"
        )
    return value


def _with_value(raw: dict, key: str, value: float | int) -> dict:
    """A copy of a variant's params.yaml entry with ``key`` (dotted) set to ``value`` (a missing
    parent, e.g. ``train`` of ``train.lr``, is created)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    *parents, leaf = key.split(".")
    node = out
    for parent in parents:
        node = node.setdefault(parent, {})
    node[leaf] = value
    return out


def _parse_tuning(
    model: ParamsModel,
    variants: dict[str, VariantSpec],
    run: RunConfig,
    variant_lr: dict[str, float],
    points: dict[str, VariantSpec],
) -> TuningConfig | None:
    """The tuning grids as studies of one variant each. Every grid is checked; the grids of
    variants in run.variants are tuned, and only their generated points join ``points`` (a point
    two grids or a study share is one variant)."""
    section = model.tuning
    if section is None:
        return None
    reused = sorted(set(section.seeds) & set(run.seeds))
    if reused:
        raise ParamsError(
            f"tuning.seeds: {reused[0]} is a reporting seed (run.seeds: {list(run.seeds)}); "
            "selection seeds must differ from them, else the selected setting is scored on the "
            "runs that chose it"
        )
    declared = {}
    for name, grid in section.grids.items():
        if name not in variants:
            raise ParamsError(
                f"tuning.grids: {name!r} is not defined in 'variants'; defined: {_names(variants)}"
            )
        declared[name] = StudyModel(variants=[name], **grid.model_dump())
    grid_lr = dict(variant_lr)  # the run variants' own rates, and the grid points' added
    grids, generated = _parse_studies(
        declared, model.variants, variants, run, grid_lr, model.train.lr, where="tuning.grids"
    )
    sizes = {name: len(grid.variant_names) for name, grid in grids.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in sizes.items())
        raise ParamsError(
            f"tuning.grids: every grid needs the same number of points (an equal budget per "
            f"family); these have {listed} (the variant's own values count as points)"
        )
    # a tuned setting is set beside its variant's default runs, so only the grids of variants
    # that are run are tuned; the others stay declared (and checked) for a run that lists them
    tuned = {name: grid for name, grid in grids.items() if name in run.variants}
    needed = {point for grid in tuned.values() for point in grid.variant_names}
    points.update({name: spec for name, spec in generated.items() if name in needed})
    variant_lr.update({name: grid_lr[name] for name in needed if name in grid_lr})
    not_run = tuple(name for name in grids if name not in tuned)
    return TuningConfig(tuple(section.seeds), section.importance_samples, tuned, not_run)


def _parse_studies(
    declared: dict[str, StudyModel],
    variants_raw: dict[str, Any],
    variants: dict[str, VariantSpec],
    run: RunConfig,
    variant_lr: dict[str, float],
    default_lr: float,
    where: str = "studies",
) -> tuple[dict[str, StudySpec], dict[str, VariantSpec]]:
    """Every declared study, and the variants its points generate (validated like any other).
    A generated point's own learning rate is added to ``variant_lr``."""
    grid = _StudyPoints(variants_raw, variants, run, variant_lr, default_lr)
    studies: dict[str, StudySpec] = {}
    section = where
    for name, study in declared.items():
        where, curves = f"{section}.{name}", []
        by = next(iter(study.by.items())) if study.by else None
        for base in study.variants:
            rows = [(None, base, variants_raw[base])]
            if by is not None:  # a grid: one curve over study.key per value of the by-key
                rows = grid.rows(where, base, by[0], by[1])
            for by_value, row, raw in rows:
                curve = grid.curve(where, study.key, study.values, row, raw)
                curves.append(replace(curve, by_value=by_value))
        spec_by = None if by is None else (by[0], tuple(by[1]))
        studies[name] = StudySpec(name, study.key, tuple(study.values), tuple(curves), spec_by)
    return studies, grid.points


@dataclass
class _StudyPoints:
    """The generated variants of the studies, made one setting at a time."""

    variants_raw: dict[str, Any]
    variants: dict[str, VariantSpec]
    run: RunConfig
    variant_lr: dict[str, float]
    default_lr: float
    points: dict[str, VariantSpec] = field(default_factory=dict)

    def lr_of(self, name: str) -> float:
        return self.variant_lr.get(name, self.default_lr)

    def spec(self, name: str) -> VariantSpec:
        return self.variants[name] if name in self.variants else self.points[name]

    def own(self, where: str, name: str, key: str) -> float | int | None:
        """The variant's own value of ``key``: always a point of its curve."""
        if key == LR_KEY:
            return self.lr_of(name)
        return _own_value(self.spec(name), key, f"{where}.key")

    def point(self, where: str, base: str, key: str, value: float | int, raw: dict) -> str:
        """The variant ``base`` (params.yaml entry ``raw``) with ``key`` at ``value``: a run
        variant equal to it in model and learning rate (whose runs it reuses), or a generated
        one."""
        spec = _study_point(where, base, key, value, raw, self.run)
        own_lr = _own_lr(_with_value(raw, key, value))
        lr = self.default_lr if own_lr is None else own_lr
        same = [
            n
            for n in self.run.variants
            if self.variants[n].same_model(spec) and self.lr_of(n) == lr
        ]
        if same:  # its runs are the point's
            return same[0]
        if spec.name in self.variants:
            raise ParamsError(
                f"{where}: the generated variant {spec.name!r} clashes with a variant of "
                "that name under 'variants'; rename that variant"
            )
        self.points[spec.name] = spec
        if own_lr is not None:
            self.variant_lr[spec.name] = own_lr
        return spec.name

    def curve(
        self, where: str, key: str, values: list[int | float], base: str, raw: dict
    ) -> StudyCurve:
        """``base`` swept over ``values`` of ``key``, its own value included."""
        own = self.own(where, base, key)
        curve = {own: base}
        for value in values:
            if own is not None and float(value) == float(own):
                continue
            curve[value] = self.point(where, base, key, value, raw)
        if base not in self.run.variants and base in self.variants:
            self.points[base] = self.variants[base]
        by_value = sorted(curve.items(), key=lambda kv: math.inf if kv[0] is None else kv[0])
        return StudyCurve(base, tuple(by_value))

    def rows(
        self, where: str, base: str, key: str, values: list[int | float]
    ) -> list[tuple[float | int | None, str, dict]]:
        """A grid's rows: ``base`` at each value of ``key`` (its own value included), each as
        (that value, its variant, the params.yaml entry its points are made from)."""
        raw = self.variants_raw[base]
        own = self.own(where, base, key)
        rows = {own: (own, base, raw)}
        for value in values:
            if own is not None and float(value) == float(own):
                continue
            made = self.point(where, base, key, value, raw)
            rows[value] = (value, made, _with_value(raw, key, value))
        return [rows[v] for v in sorted(rows, key=lambda v: math.inf if v is None else v)]


def _own_lr(node: Any) -> float | None:
    """The learning rate a variant's params.yaml entry sets for itself (``train.lr``), if any;
    the entry was validated before, so the value is a positive number."""
    train = node.get("train") if isinstance(node, dict) else None
    lr = train.get("lr") if isinstance(train, dict) else None
    return None if lr is None else float(lr)


def _study_point(
    where: str, base: str, key: str, value: float | int, raw: dict, run: RunConfig
) -> VariantSpec:
    """The variant ``base`` (its params.yaml entry ``raw``) with ``key`` set to ``value``."""
    point = study_point_name(base, key, value)
    try:
        spec = _parse_variant(point, _with_value(raw, key, value))
    except ParamsError as err:
        raise ParamsError(f"{where}: value {value} for {base!r}: {err}") from None
    _check_conv_fits(spec, run.datasets)
    return spec


# --- pydantic's errors, in params.yaml's terms -------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], raw: Any, where: str = "") -> M:
    """``raw`` validated by ``model``, or a ParamsError for the first failure (at ``where``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(_message(model, err.errors()[0], where)) from None


def _message(model: type[BaseModel], error: ErrorDetails, where: str) -> str:
    """One error as '<key path>: <what is wrong>'. The types and validators above raise errors
    worded for params.yaml; pydantic's own remain for a missing key, a mapping or list of the
    wrong type, and a family's Params (an integer given for a float shown as that float)."""
    loc, value, kind = error["loc"], error["input"], error["type"]
    if kind == "value_error":
        cause = error["ctx"]["error"]
        key = (cause.key,) if isinstance(cause, _Refusal) else ()
        return f"{_path(where, (*loc, *key))}: {cause}"
    if kind == "missing":
        return f"{_path(where, loc[:-1])}: missing required key {loc[-1]!r}"
    path = _path(where, loc)
    if kind in ("model_type", "dict_type"):
        return f"{path}: expected a mapping, got {type(value).__name__}"
    if kind == "too_short" and isinstance(value, dict):
        return f"{path}: at least one entry must be defined"
    if kind in ("list_type", "too_short"):
        return f"{path}: expected a non-empty list, got {value!r}"
    own = model.model_fields.get(loc[0]) if len(loc) == 1 else None
    if own is not None and own.annotation is float and _is_int(value):
        value = float(value)
    if own is not None and own.annotation in (int, float):
        return f"{path}: {value!r} is not allowed; expected {_expected(own)}"
    return f"{path}: {value!r} is not allowed; {error['msg'][0].lower()}{error['msg'][1:]}"


def _expected(field: Any) -> str:
    """A family's numeric key's type and range in params.yaml's words ('an integer >= 1', 'a
    fraction between 0 and 1'), read from its pydantic Field's bounds."""
    signs = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = {
        name: getattr(item, name)
        for item in field.metadata
        for name in signs
        if hasattr(item, name)
    }
    if bounds.get("gt") == 0 and bounds.get("lt") == 1:
        return "a fraction between 0 and 1"
    words = "an integer" if field.annotation is int else "a number"
    limits = [f"{signs[name]} {bound}" for name, bound in bounds.items()]
    return " ".join([words, " and ".join(limits)]).strip()


def _path(where: str, loc: tuple) -> str:
    """A location as params.yaml spells it: ``evaluate.noise_grid.gaussian[1]``. A mapping's key
    that fails (pydantic's ``[key]``) is reported at the mapping."""
    if loc[-1:] == ("[key]",):
        loc = loc[:-2]
    text = where
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "the top level"


def _refuse_non_finite(raw: Any, loc: tuple = ()) -> None:
    """YAML reads ``.nan`` and ``.inf`` as floats, which every range check would let through
    (NaN compares false with everything): refuse them anywhere in the file, naming the key."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ParamsError(f"{_path('', loc)}: {raw} is not allowed; numbers must be finite")
    children = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in children:
        _refuse_non_finite(value, (*loc, key))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names(mapping: dict) -> str:
    return ", ".join(sorted(map(str, mapping)))
