"""The JSON Schema (draft 2020-12) of params.yaml, for editors: completion, hover text and
squiggles under a wrong key or value as you type, before ``aebench validate`` runs.

It is pydantic's ``model_json_schema()`` of the validation models of :mod:`aebench.config`, with
one addition. There a variant's entry is validated by its family's model once its family is
known; here every entry is one of: a built-in family's model (``family`` fixed to its name, its
own Params keys with their defaults and ranges, ``beta`` or ``noise`` only where the family has
them, and no other key: ``additionalProperties`` false, so a typo'd key is flagged), or an
external family's (``family: module:Class``), whose own keys only its class knows: there
``additionalProperties`` is true. Rules across keys (obs_std only with a gaussian likelihood,
conv depth against the image side, the studies' points) are left to ``aebench validate``.
Likewise a ``datasets`` entry: a built-in dataset's name takes its own split keys only (val_images
only where the set has an official test split), any other name a dataset from files.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from aebench.config import (
    DatasetModel,
    NoiseModel,
    ParamsModel,
    Positive,
    VariantModel,
    split_keys_of,
    variant_model,
)
from aebench.datasets import REGISTRY
from aebench.file_datasets import FORMATS as FILE_FORMATS
from aebench.models.registry import BY_NAME

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class ExternalVariant(VariantModel):
    """A variant of an external family (``family: module:Class``): the shared keys, and the
    keys its Params declare, which only its class knows."""

    model_config = ConfigDict(extra="allow")

    family: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")]
    beta: Positive | None = None
    noise: NoiseModel | None = None


def _entry(name: str, keys: tuple[str, ...], doc: str, **required: Any) -> type[BaseModel]:
    """A ``datasets`` entry's model: ``keys`` of :class:`DatasetModel` (and the fields in
    ``required``), no other key."""
    fields = {key: (DatasetModel.model_fields[key].annotation, None) for key in keys}
    return create_model(
        name, __config__=ConfigDict(extra="forbid"), __doc__=doc, **required, **fields
    )


FileDataset = _entry(
    "FileDataset",
    split_keys_of(""),
    "A researcher's own image set from files (formats: aebench/file_datasets.py), and its own "
    "split keys in place of data.*'s.",
    format=(Literal[FILE_FORMATS], ...),
    path=(str, ...),
)


class _Datasets(BaseModel):
    """Each dataset's own settings. A built-in dataset's entry holds split keys only (in place
    of data.*'s); any other name is a dataset from files."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, FileDataset]


def _datasets_model() -> type[BaseModel]:
    """The ``datasets`` section: one entry model per built-in name, which says which split keys
    it takes (val_images only with an official test split), then any name from files."""
    entries = {}
    for name, entry in REGISTRY.items():
        official = "keeps its official test split; val_images: how many validation images to "
        official += "draw from its training images, in place of val_fraction"
        doc = f"{name}'s own split keys, in place of data.*'s. " + (
            "An embedded dataset: split three ways." if entry.embedded else f"{name} {official}."
        )
        model = _entry(f"{name.title().replace('_', '')}Splits", split_keys_of(name), doc)
        entries[name] = (model | None, None)
    return create_model("Datasets", __base__=_Datasets, __doc__=_Datasets.__doc__, **entries)


def params_schema() -> dict[str, Any]:
    """The schema as a JSON-ready dict, ``$schema`` naming its draft."""
    families = tuple(variant_model(name, cls) for name, cls in BY_NAME.items())
    entry = Union[(*families, ExternalVariant)]  # built at run time: no `|` form
    model = create_model(
        "Params",
        __base__=ParamsModel,
        __doc__="aebench's params.yaml: every tunable of the benchmark.",
        variants=(dict[str, entry], ParamsModel.model_fields["variants"]),
        datasets=(_datasets_model(), ParamsModel.model_fields["datasets"]),
    )
    return {"$schema": DRAFT, **model.model_json_schema()}


def schema_text() -> str:
    """The schema as the text ``aebench schema`` writes."""
    return json.dumps(params_schema(), indent=2, ensure_ascii=False) + "\n"
