"""`aebench schema`: the JSON Schema an editor checks params.yaml against as it is typed.

It is checked with the ``jsonschema`` package where that is installed; the project does not
depend on it, so otherwise with :func:`_schema_errors`, which implements exactly the keywords
the schema uses (and fails on any other, rather than let it pass unchecked).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aebench.cli import main
from aebench.config import ParamsError, parse_params
from aebench.schema import DRAFT, params_schema, schema_text

REPO = Path(__file__).resolve().parents[1]
ANNOTATIONS = {"$schema", "$defs", "title", "description", "default"}


def _is(kind: str, value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": number and float(value).is_integer(),
        "number": number,
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def _schema_errors(schema: dict, value: Any, root: dict) -> list[str]:
    """What ``value`` breaks of ``schema``: the draft 2020-12 keywords pydantic writes here."""
    if schema.get("$ref"):
        target = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
        return _schema_errors({**target, **schema, "$ref": None}, value, root)
    errors = []
    for key, rule in schema.items():
        if key in ANNOTATIONS or rule is None:
            continue
        if key == "type":
            ok = _is(rule, value)
        elif key == "anyOf":
            ok = any(not _schema_errors(option, value, root) for option in rule)
        elif key == "enum":
            ok = any(value == v and type(value) is type(v) for v in rule)
        elif key == "const":
            ok = value == rule and type(value) is type(rule)
        elif key in ("minimum", "exclusiveMinimum", "exclusiveMaximum"):
            sign = {"minimum": 1, "exclusiveMinimum": 1, "exclusiveMaximum": -1}[key]
            diff = sign * (value - rule) if _is("number", value) else 1
            ok = diff >= 0 if key == "minimum" else diff > 0
        elif key == "pattern":
            ok = not isinstance(value, str) or re.search(rule, value) is not None
        elif key in ("minItems", "minProperties"):
            ok = not isinstance(value, list | dict) or len(value) >= rule
        elif key in ("maxItems", "maxProperties"):
            ok = not isinstance(value, list | dict) or len(value) <= rule
        elif key == "minLength":
            ok = not isinstance(value, str) or len(value) >= rule
        elif key == "uniqueItems":
            ok = not isinstance(value, list) or len({json.dumps(v) for v in value}) == len(value)
        elif key == "contains":
            ok = not isinstance(value, list) or any(
                not _schema_errors(rule, v, root) for v in value
            )
        elif key == "items":
            errors += [e for v in value for e in _schema_errors(rule, v, root)]
            continue
        elif key == "required":
            ok = all(name in value for name in rule)
        elif key == "propertyNames":
            errors += [e for name in value for e in _schema_errors(rule, name, root)]
            continue
        elif key == "properties":
            for name, sub in rule.items():
                errors += _schema_errors(sub, value[name], root) if name in value else []
            continue
        elif key == "additionalProperties":
            extra = [name for name in value if name not in schema.get("properties", {})]
            if isinstance(rule, bool):
                ok = rule or not extra
            else:
                errors += [e for name in extra for e in _schema_errors(rule, value[name], root)]
                continue
        else:
            raise AssertionError(f"keyword {key!r} is not implemented by this checker")
        if not ok:
            errors.append(f"{value!r} breaks {key}: {rule!r}")
    return errors


def _validator(schema: dict):
    """The errors of an instance: jsonschema's where installed, else :func:`_schema_errors`."""
    try:
        import jsonschema
    except ImportError:
        return lambda instance: _schema_errors(schema, instance, schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator(schema)
    return lambda instance: [error.message for error in checker.iter_errors(instance)]


@pytest.fixture(scope="module")
def written_schema(tmp_path_factory) -> dict:
    """The schema as `aebench schema --out` writes it."""
    path = tmp_path_factory.mktemp("schema") / "params.schema.json"
    main(["schema", "--out", str(path)])
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def committed() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_the_written_schema_is_draft_2020_12_and_validates_the_committed_params(
    written_schema, committed
):
    assert written_schema["$schema"] == DRAFT
    assert written_schema == params_schema()
    assert _validator(written_schema)(committed) == []


def test_schema_goes_to_stdout_without_out(capsys):
    main(["schema"])
    assert capsys.readouterr().out == schema_text()


def _with(raw: dict, dotted: str, value: Any) -> dict:
    """A copy of ``raw`` with ``dotted`` set to ``value`` (None: removed)."""
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.max_epoch", 3),  # a typo'd key in a section
        ("variants.ae.latnet_dim", 16),  # a typo'd key in a variant
        ("variants.vae.beta_weight", 1.0),
        ("train.max_epochs", "many"),  # a wrong type
        ("variants.vae.beta", "high"),
        ("variants.ae.hidden", [512, "256"]),
        ("variants.iwae.iw_samples", 0),  # out of range
        ("variants.ae.arch", "resnet"),
        ("evaluate.samplers", ["prior"]),  # gmm must be among them
        ("run.seeds", [0, 0]),
        ("variants.ae.beta", 2.0),  # a key of another family
        ("variants.wae.iw_samples", 5),
        ("variants.dae_gaussian.noise", None),  # a denoising family without its noise
        ("variants.ae/b", {"family": "ae", "latent_dim": 2}),  # a name that is no path
        ("datasets", {"mnist5k": {"val_images": 100}}),  # no official test split to keep
        ("datasets", {"mnist": {"val_image": 10000}}),  # a typo'd split key
        ("datasets", {"mnist": {"test_fraction": 0.1}}),  # its test split is the official one
        ("datasets", {"mnist": {"format": "npz", "path": "x.npz"}}),  # a built-in name for files
        ("datasets", {"mine": {"val_fraction": 0.2}}),  # files without format and path
        ("tuning.grids.ae.by", {"train.lr": [1e-3], "beta": [1.0]}),  # one by-key at most
    ],
)
def test_a_typo_or_a_wrong_value_fails_the_schema_as_it_fails_validation(
    written_schema, committed, key, value
):
    raw = _with(committed, key, value)
    assert _validator(written_schema)(raw)
    with pytest.raises(ParamsError):
        parse_params(raw)


def test_an_external_family_may_add_its_own_keys(written_schema, committed):
    raw = _with(committed, "variants.flow", {"family": "my_models:Flow", "flow_steps": 4})
    raw["variants"]["flow"]["latent_dim"] = 8
    assert _validator(written_schema)(raw) == []
    raw["variants"]["flow"]["family"] = "Flow"  # neither built-in nor module:Class
    assert _validator(written_schema)(raw)


def test_the_fallback_checker_refuses_what_it_does_not_implement():
    with pytest.raises(AssertionError, match="'if' is not implemented"):
        _schema_errors({"if": {}}, 1, {})


def test_a_datasets_own_split_keys_pass_the_schema(written_schema, committed):
    """What params.yaml's datasets section may hold: a downloaded set's count of validation
    images, an embedded set's seed, and a dataset from files with its own fractions."""
    raw = _with(
        committed,
        "datasets",
        {
            "mnist": {"val_images": 10000},
            "digits": {"split_seed": 3},
            "mine": {"format": "npz", "path": "mine.npz", "test_fraction": 0.3},
        },
    )
    assert _validator(written_schema)(raw) == []
    parse_params(raw)
