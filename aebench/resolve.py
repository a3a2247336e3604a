"""Write the resolved settings files (see :mod:`aebench.settings`) from validated params.

Each file holds what its stage's output depends on and nothing more: an evaluation's file
carries the importance-sample count only for a family with a posterior and the samplers the
family has (the chain's settings go to the chain stage's own file); an external family's file
carries its code's identity (module sha256, or installed version), so editing that module re-runs
only its stages.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from aebench import fingerprint, settings, stage_settings
from aebench.config import Params
from aebench.io import write_text
from aebench.models.registry import applicable_samplers, family_class, family_source
from aebench.spec import VariantSpec


def _machine(params: Params) -> dict[str, Any]:
    return {"device": params.train.device, "threads": params.train.threads}


def _with_source(payload: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
    """An external family's code identity, where there is one (built-in families have none)."""
    return {**payload, "family_source": source} if source else payload


def _train(params: Params, name: str, spec: VariantSpec, source: dict) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "variant": spec.to_dict(),
        "train": asdict(params.train_for(name)),
    }
    if spec.train_images is not None:  # the subset is drawn with the split seed
        payload["subset_seed"] = params.data.split_seed
    return _with_source(payload, source)


def _evaluate(params: Params, spec: VariantSpec, source: dict) -> dict[str, Any]:
    cfg = params.evaluate
    # the chain is drawn and scored by its own stage (chain@<dataset>), where it has mixed
    samplers = [s for s in applicable_samplers(spec.family, cfg.samplers) if s != "chain"]
    evaluate: dict[str, Any] = {
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        # pairs, not a mapping: the file's keys are sorted, the grid keeps the order it was given
        "noise_grid": [[kind, list(levels)] for kind, levels in cfg.noise_grid.items()],
        "samplers": samplers,
        "gmm_components": cfg.gmm_components,
        "grid_images": cfg.grid_images,
    }
    if family_class(spec.family).has_posterior:
        evaluate["importance_samples"] = params.importance_samples_for(spec.name)
    return _with_source({"evaluate": evaluate, "machine": _machine(params)}, source)


def _chain(
    params: Params, variants: tuple[str, ...], seeds: tuple[int, ...], sources: dict[str, dict]
) -> dict[str, Any]:
    """The chain stage's runs (every seed of every denoising variant that ``evaluate.samplers``
    lets draw chains) and its settings."""
    runs = []
    for name in variants:
        family = params.variant(name).family
        if "chain" in applicable_samplers(family, params.evaluate.samplers):
            runs.extend(
                _with_source({"variant": name, "seed": seed}, sources[family]) for seed in seeds
            )
    cfg = params.evaluate
    return {
        "runs": runs,
        "evaluate": {
            "seed": cfg.seed,
            "batch_size": cfg.batch_size,
            "grid_images": cfg.grid_images,
            "chain": asdict(params.chain),
        },
        "machine": _machine(params),
    }


def _memorisation(
    params: Params, variants: tuple[str, ...], seeds: tuple[int, ...], sources: dict[str, dict]
) -> dict[str, Any]:
    """The memorisation stage's runs (every run of the list) and what it reads of evaluate."""
    runs = [
        _with_source({"variant": name, "seed": seed}, sources[params.variant(name).family])
        for name in variants
        for seed in seeds
    ]
    cfg = params.evaluate
    return {
        "runs": runs,
        "evaluate": {"seed": cfg.seed, "batch_size": cfg.batch_size},
        "machine": _machine(params),
    }


def _data(params: Params, dataset: str) -> dict[str, Any]:
    """The split settings the dataset's loader reads (data.* with the dataset's own keys over
    them), and a dataset from files' source with its files' digest (so that changing a file
    re-runs its fetch). An unset val_images stays out: the files of the datasets without one
    keep their bytes, and their fetch stages do not re-run."""
    from aebench.datasets import REGISTRY
    from aebench.file_datasets import source_digest

    split = asdict(params.data_for(dataset))
    if split["val_images"] is None:
        split.pop("val_images")
    else:  # the count replaces the fraction
        split.pop("val_fraction")
    if dataset in params.datasets:
        source = dict(params.datasets[dataset])
        source["sha256"] = source_digest(Path(source["path"]))
        split.pop("download_timeout_s")
        return {"split": split, "source": source}
    if REGISTRY[dataset].embedded:
        split.pop("download_timeout_s")
    else:  # downloaded sets keep their official test split
        split.pop("test_fraction")
    return {"split": split}


def settings_files(params: Params, root: Path = settings.SETTINGS_DIR) -> dict[Path, str]:
    """Every settings file's path and text for ``params``."""
    specs = {**params.variants, **params.study_points}
    # an external family's code is hashed once, however many variants use it
    sources = {family: family_source(family) for family in {s.family for s in specs.values()}}
    files: dict[Path, dict[str, Any]] = {settings.machine_path(root): _machine(params)}
    for dataset in params.datasets_resolved:  # the full-MNIST section's dataset too
        files[settings.data_path(dataset, root)] = _data(params, dataset)
        files[settings.evaluator_path(dataset, root)] = {
            "evaluator": asdict(params.evaluator),
            "batch_size": params.evaluate.batch_size,
            "device": params.train.device,
        }
    # the per-dataset stages, for the default run and for the full-MNIST section's own models
    sections = [(Path("."), params.run.datasets, params.run.variants, params.run.seeds)]
    if params.full_mnist is not None:
        section = params.full_mnist
        sections.append((Path("full_mnist"), (section.dataset,), section.variants, section.seeds))
    for folder, datasets, variants, seeds in sections:
        for dataset in datasets:
            path = stage_settings.settings_path("chain", dataset, folder, root)
            files[path] = _chain(params, variants, seeds, sources)
            path = stage_settings.settings_path("memorisation", dataset, folder, root)
            files[path] = _memorisation(params, variants, seeds, sources)
    for name, spec in specs.items():
        files[settings.train_path(name, root)] = _train(params, name, spec, sources[spec.family])
        files[settings.evaluate_path(name, root)] = _evaluate(params, spec, sources[spec.family])
    return {path: settings.render(payload) for path, payload in files.items()}


def write_settings(params: Params, root: Path = settings.SETTINGS_DIR) -> int:
    """Write every settings file under ``root`` (each atomically) and remove the ones params no
    longer asks for; returns how many files there are."""
    files = settings_files(params, root)
    if root.is_dir():
        for stale in root.rglob("*.json"):
            if stale not in files and stale.name != fingerprint.RECORD:
                stale.unlink()
    for path, text in files.items():
        if not path.is_file() or path.read_text() != text:
            write_text(path, text)
    return len(files)
