"""The settings stage skips resolving only while everything it read is as it was."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from aebench import fingerprint

DATASETS = {"mine": {"format": "png_folder", "path": "images"}}


@pytest.fixture
def recorded(tmp_path, monkeypatch, request) -> Path:
    """A project folder whose settings were just resolved: params, one module of the user's
    (loaded, under the working directory), one settings file, one dataset from files."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "params.yaml").write_text("run: {}\n")
    (tmp_path / "user_family.py").write_text("WIDTH = 3\n")
    importlib.import_module("user_family")
    request.addfinalizer(lambda: sys.modules.pop("user_family", None))
    (tmp_path / "images" / "a").mkdir(parents=True)
    (tmp_path / "images" / "a" / "0.png").write_bytes(b"pixels")
    out = tmp_path / "settings"
    (out / "train").mkdir(parents=True)
    (out / "train" / "x.json").write_text('{"variant": {}}\n')
    fingerprint.record(out, Path("params.yaml"), DATASETS)
    assert fingerprint.is_current(out)
    return out


def test_the_record_names_what_was_read(recorded):
    record = json.loads((recorded / fingerprint.RECORD).read_text())
    assert {"params.yaml", "user_family.py"} <= set(record["files"])
    assert any(name.endswith("aebench/fingerprint.py") for name in record["files"])
    assert not any("site-packages" in name for name in record["files"])
    assert set(record["outputs"]) == {"settings/train/x.json"}
    assert set(record["datasets"]) == {"images"} and "pydantic" in record["versions"]


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "params.yaml").write_text("run: {seeds: [1]}\n"),
        lambda root: (root / "user_family.py").write_text("WIDTH = 4\n"),
        lambda root: (root / "images" / "a" / "0.png").write_bytes(b"other pixels"),
        lambda root: (root / "images" / "a" / "1.png").write_bytes(b"a new image"),
        lambda root: (root / "settings" / "train" / "x.json").write_text("{}\n"),
        lambda root: (root / "settings" / "train" / "x.json").unlink(),
        lambda root: (root / "settings" / "train" / "y.json").write_text("{}\n"),
        lambda root: (root / "settings" / fingerprint.RECORD).unlink(),
    ],
    ids=["params", "module", "image", "new image", "edited", "deleted", "extra", "no record"],
)
def test_any_change_to_what_was_read_resolves_again(recorded, change):
    change(recorded.parent)
    assert not fingerprint.is_current(recorded)
