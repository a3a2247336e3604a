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
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Union

from pydantic import ConfigDict, Field, create_model

from aebench.config import NoiseModel, ParamsModel, Positive, VariantModel, variant_model
from aebench.models.registry import BY_NAME

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class ExternalVariant(VariantModel):
    """A variant of an external family (``family: module:Class``): the shared keys, and the
    keys its Params declare, which only its class knows."""

    model_config = ConfigDict(extra="allow")

    family: Annotated[str, Field(pattern=r"^[\w.]+:\w+$")]
    beta: Positive | None = None
    noise: NoiseModel | None = None


def params_schema() -> dict[str, Any]:
    """The schema as a JSON-ready dict, ``$schema`` naming its draft."""
    families = tuple(variant_model(name, cls) for name, cls in BY_NAME.items())
    entry = Union[(*families, ExternalVariant)]  # built at run time: no `|` form
    model = create_model(
        "Params",
        __base__=ParamsModel,
        __doc__="aebench's params.yaml: every tunable of the benchmark.",
        variants=(dict[str, entry], ParamsModel.model_fields["variants"]),
    )
    return {"$schema": DRAFT, **model.model_json_schema()}


def schema_text() -> str:
    """The schema as the text ``aebench schema`` writes."""
    return json.dumps(params_schema(), indent=2, ensure_ascii=False) + "\n"
