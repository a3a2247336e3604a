"""Shared fixtures: a minimal valid params mapping that each test bends into what it needs."""

from __future__ import annotations

import copy

import pytest

MINIMAL_PARAMS = {
    "data": {"split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.2},
    "train": {"max_epochs": 2, "batch_size": 64, "lr": 1e-3, "device": "cpu"},
    "run": {"datasets": ["digits"], "variants": ["ae", "vae"], "seeds": [0]},
    "variants": {
        "ae": {"family": "ae", "latent_dim": 4},
        "dae": {"family": "dae", "latent_dim": 4, "noise": {"kind": "masking", "level": 0.25}},
        "vae": {"family": "vae", "latent_dim": 4, "beta": 1.0},
        "dvae": {"family": "dvae", "latent_dim": 4, "noise": {"kind": "gaussian", "level": 0.3}},
        "iwae": {"family": "iwae", "latent_dim": 4, "iw_samples": 3},
        "wae": {"family": "wae", "latent_dim": 4},
        "rae": {"family": "rae", "latent_dim": 4},
        "cae": {"family": "cae", "latent_dim": 4},
        "sae": {"family": "sae", "latent_dim": 6},
    },
}


@pytest.fixture
def raw_params() -> dict:
    return copy.deepcopy(MINIMAL_PARAMS)


# Modules whose tests run DVC (repro, status, the dispatcher), a browser or whole stages: they
# stay out of the quick subset. Every other test not marked slow is `quick` (unit tests, no DVC).
NOT_QUICK_MODULES = {
    "test_browser",  # a headless Chromium
    "test_caching",  # dvc repro twice
    "test_dispatch",  # aebench run workers
    "test_dvc_repro",  # dvc repro on a temporary project
    "test_eval_stages",  # evaluate stages end to end
    "test_pipeline",  # dvc repro and its stage scripts
    "test_report_stage",  # the report stage on trained runs
    "test_stage_deps",  # runs each stage script to record the code it loads
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the quick subset (``pytest -m quick``, see docs/testing.md), and put the modules that
    run DVC first: with one worker per core, a long module started last leaves the other worker
    idle until it ends, while the many short ones fill the gaps wherever they fall."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module not in NOT_QUICK_MODULES and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.quick)
    heavy = {item.module for item in items if item.get_closest_marker("quick") is None}
    items.sort(key=lambda item: item.module not in heavy)  # stable: each module keeps its order
