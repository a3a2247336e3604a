"""Whether the settings stage's inputs are unchanged since it last wrote settings/.

The stage runs on every repro, and resolving the settings imports every family (hence torch:
~2.5 s of a ~2.8 s stage). When nothing it read has changed, the files it would write are the
ones already there, so it can stop before that import. What it read is recorded beside them in
``settings/inputs.json``: the params file, every Python file it loaded from the working
directory or from aebench itself (an external family's module included), the digest of each
dataset from files, the versions of the distributions that shape the result (pydantic, an
installed family's), and the settings files themselves (an edited or deleted one is rewritten).
Any doubt (no record, a missing or changed file) answers no, and the stage resolves in full.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from aebench.errors import DatasetError
from aebench.io import sha256_file, write_text

RECORD = "inputs.json"
VERSIONED = ("pydantic",)  # the schema's semantics; torch and numpy do not shape settings


def _loaded_sources() -> list[Path]:
    """The Python files loaded so far from the working directory or from aebench."""
    here = Path.cwd().resolve()
    environments = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    found = set()
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        if not path.is_file():  # a module made in memory names a file that is not there
            continue
        installed = any(path.is_relative_to(prefix) for prefix in environments)
        if name.split(".")[0] == "aebench" or (path.is_relative_to(here) and not installed):
            found.add(path)  # a virtual environment inside the project is not its code
    return sorted(found)


def _name(path: Path) -> str:
    """A path as recorded: relative to the working directory where it lies inside it."""
    here = Path.cwd().resolve()
    path = path.resolve()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def _versions(sources: list[dict[str, str]]) -> dict[str, str]:
    names = [*VERSIONED, *(source["package"] for source in sources if "package" in source)]
    return {name: importlib.metadata.version(name) for name in names}


def _dataset_digests(paths: list[str]) -> dict[str, str]:
    from aebench.file_datasets import source_digest

    return {path: source_digest(Path(path)) for path in paths}


def _settings_files(out: Path) -> list[Path]:
    return sorted(path for path in out.rglob("*.json") if path.name != RECORD)


def record(out: Path, params_file: Path, datasets: dict[str, dict[str, str]]) -> None:
    """After a full resolution: write ``out/inputs.json`` (see the module docstring)."""
    outputs, sources = {}, []
    for path in _settings_files(out):
        outputs[_name(path)] = sha256_file(path)
        payload = json.loads(path.read_text())
        for entry in (payload, *payload.get("runs", [])):
            if "family_source" in entry:
                sources.append(entry["family_source"])
    files = {_name(path): sha256_file(path) for path in [params_file, *_loaded_sources()]}
    payload: dict[str, Any] = {
        "files": files,
        "datasets": _dataset_digests([entry["path"] for entry in datasets.values()]),
        "versions": _versions(sources),
        "outputs": outputs,
    }
    write_text(out / RECORD, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def is_current(out: Path) -> bool:
    """Whether everything ``out/inputs.json`` lists is as it was recorded."""
    try:
        recorded = json.loads((out / RECORD).read_text())
        for group in ("files", "outputs"):
            for name, digest in recorded[group].items():
                if sha256_file(Path(name)) != digest:
                    return False
        for name, version in recorded["versions"].items():
            if importlib.metadata.version(name) != version:
                return False
        if {_name(path) for path in _settings_files(out)} != set(recorded["outputs"]):
            return False
        digests = recorded["datasets"]
        return not digests or _dataset_digests(list(digests)) == digests
    except (OSError, ValueError, KeyError, DatasetError, importlib.metadata.PackageNotFoundError):
        return False
