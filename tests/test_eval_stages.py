"""The evaluator and evaluate stage scripts on the embedded digits set with an untrained model:
the files and keys the shared contract fixes, and no wall-clock value in any result file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from aebench.config import DataConfig, variant_from_dict
from aebench.datasets import fetch
from aebench.io import write_json
from aebench.models import build_model, count_parameters, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
STATS = ("fd", "precision", "recall", "density", "coverage", "class_coverage", "class_kl")
TRAINED = {
    "best_epoch": 3,
    "stop_epoch": 13,
    "stopped_at_cap": False,
    "val_gain_10": 0.4,
    "val_gain_10_rel": 0.004,
    "converged": 0.0,
    "lr_reductions": 2,
    "train_subset_loss": 98.5,
    "val_train_gap": 1.5,
    "device": "cpu",
    "device_name": "cpu",
}
PARAMS = {
    "run": {"datasets": ["digits"], "variants": ["dvae"], "seeds": [0]},
    "train": {"device": "cpu", "threads": 1},
    "evaluator": {"epochs": 1},
    "evaluate": {
        "noise_grid": {"gaussian": [0.0, 0.3], "masking": [0.0, 0.5], "salt_pepper": [0.1, 0.2]},
        "importance_samples": 3,
        "chain": {"chains": 40, "thin": 2, "trace_steps": 8, "window": 2},
        "grid_images": 9,
    },
    "variants": {
        "dvae": {
            "family": "dvae",
            "latent_dim": 3,
            "hidden": [16],
            "noise": {"kind": "masking", "level": 0.25},
        }
    },
}


def _stage(root: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline" / script), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _evaluate(root: Path) -> subprocess.CompletedProcess:
    return _stage(root, "evaluate.py", "--dataset", "digits", "--variant", "dvae", "--seed", "0")


def _keys(tree) -> set[str]:
    """Every mapping key anywhere in a JSON tree."""
    if isinstance(tree, dict):
        return set(tree) | {k for value in tree.values() for k in _keys(value)}
    if isinstance(tree, list):
        return {k for value in tree for k in _keys(value)}
    return set()


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stages")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    fetch("digits", DataConfig(), root / "data" / "digits", root / "downloads")
    torch.manual_seed(0)
    model = build_model(
        variant_from_dict({"name": "dvae", **PARAMS["variants"]["dvae"]}), (1, 8, 8)
    )
    run = root / "models" / "digits" / "dvae" / "0"
    run.mkdir(parents=True)
    save_checkpoint(model, run / "model.pt")
    write_json(run / "train.json", {**TRAINED, "parameters": count_parameters(model)})
    for result in (
        _stage(root, "settings.py"),
        _stage(root, "evaluator.py", "digits"),
        _evaluate(root),
    ):
        assert result.returncode == 0, result.stderr
    return root


def test_evaluator_json_has_the_validation_reference_and_no_wall_clock(staged):
    summary = json.loads((staged / "evaluators" / "digits" / "evaluator.json").read_text())
    manifest = json.loads((staged / "data" / "digits" / "manifest.json").read_text())
    reference = summary["reference"]
    assert set(reference) == {"split", "count", *STATS, "copy_rate"}
    assert reference["split"] == "val"
    assert reference["count"] == manifest["splits"]["val"]["shape"][0]
    assert "floor" not in summary
    assert not [key for key in _keys(summary) if "second" in key]
    info = torch.load(staged / "evaluators" / "digits" / "model.pt", weights_only=True)["info"]
    assert not [key for key in _keys(info) if "second" in key]
    timing = json.loads((staged / "timings" / "evaluator" / "digits.json").read_text())
    assert timing["seconds"] > 0


def test_metrics_json_per_image_npz_and_timings(staged):
    out = staged / "metrics" / "digits" / "dvae" / "0"
    payload = json.loads((out / "metrics.json").read_text())
    metrics = payload["metrics"]
    assert not [key for key in _keys(payload) if "second" in key]
    assert metrics["stop_epoch"] == 13.0 and metrics["stopped_at_cap"] == 0.0
    assert metrics["val_gain_10_rel"] == 0.004 and metrics["parameters"] > 0
    assert payload["environment"] == {"device": "cpu", "device_name": "cpu"}
    n_test = json.loads((staged / "data/digits/manifest.json").read_text())["splits"]["test"]
    with np.load(out / "per_image.npz") as per_image:
        assert "nll_iw" in per_image and "robust_salt_pepper_probe_corrupted" in per_image
        for key in per_image:
            values = per_image[key]
            assert values.dtype == np.float64 and values.shape == (n_test["shape"][0],)
            assert metrics[key] == float(values.mean())  # exact: JSON keeps a float's repr
    assert (out / "robustness.csv").read_text().splitlines()[0] == (
        "kind,level,mse,psnr,ssim,latent_shift,probe_accuracy"
    )
    timing = json.loads((staged / "timings/evaluate/digits/dvae/0.json").read_text())
    assert timing["seconds"] > 0 and timing["run"] == payload["run"]


def test_a_train_record_without_a_copied_key_names_it(staged):
    record = staged / "models" / "digits" / "dvae" / "0" / "train.json"
    saved = record.read_text()
    record.write_text(
        json.dumps({k: v for k, v in json.loads(saved).items() if k != "val_gain_10"})
    )
    try:
        result = _evaluate(staged)
    finally:
        record.write_text(saved)
    assert result.returncode != 0
    assert "has no 'val_gain_10'" in result.stderr
