"""The report stage end to end on synthetic evaluation files: no training, a few seconds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torchvision.utils import save_image

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"dae": "dae", "vae": "vae"}
SEEDS = (0, 1)
GRID = {"gaussian": [0.0, 0.3, 0.5], "masking": [0.0, 0.25, 0.5], "salt_pepper": [0.0, 0.1, 0.2]}
STATS = (
    "fd",
    "precision",
    "recall",
    "density",
    "coverage",
    "class_coverage",
    "class_kl",
    "copy_rate",
)
N_IMAGES = 30


def _params() -> dict:
    return {
        "run": {"datasets": ["digits"], "variants": list(VARIANTS), "seeds": list(SEEDS)},
        "variants": {
            "dae": {
                "family": "dae",
                "latent_dim": 4,
                "noise": {"kind": "masking", "level": 0.25},
                "likelihood": "gaussian",  # its training curves get a figure of their own
            },
            "vae": {"family": "vae", "latent_dim": 4, "binarize": "dynamic"},
        },
        "evaluate": {"noise_grid": GRID},
    }


def _per_image(variant: str, seed: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image values as the evaluate stage writes them: float64, test-split order."""
    arrays = {
        "recon_mse": 0.02
        + 0.01 * (variant == "vae")
        + 0.001 * seed
        + rng.uniform(0, 0.01, N_IMAGES),
        "recon_bce": 50.0 + seed + rng.uniform(0, 5, N_IMAGES),
        "recon_psnr": 17.0 - seed + rng.uniform(0, 1, N_IMAGES),
        "recon_ssim": 0.8 + 0.01 * seed + rng.uniform(0, 0.05, N_IMAGES),
        "probe_accuracy": (rng.uniform(0, 1, N_IMAGES) < 0.9).astype(np.float64),
    }
    for kind in GRID:
        for stat in ("mse", "ssim", "probe"):
            arrays[f"robust_{kind}_{stat}_corrupted"] = rng.uniform(0.1, 0.9, N_IMAGES)
    if variant == "vae":
        arrays["nll_iw"] = 90.0 + seed + rng.uniform(0, 2, N_IMAGES)
        arrays["neg_elbo"] = 95.0 + seed + rng.uniform(0, 2, N_IMAGES)
    return arrays


def _metrics(variant: str, seed: int, arrays: dict, rng: np.random.Generator) -> dict:
    samplers = ["recon", "gmm"] + (["prior"] if variant == "vae" else [])
    metrics = {key: float(values.mean()) for key, values in arrays.items()}
    metrics |= {
        "parameters": 12345,
        "best_epoch": 20 + seed,
        "stop_epoch": 30 + seed,
        "stopped_at_cap": 0.0,
        "val_gain_10": 0.3,
        "val_gain_10_rel": 0.003,
    }
    for kind in GRID:
        for stat in ("mse", "ssim", "probe"):
            metrics[f"robust_{kind}_{stat}_degradation"] = float(rng.uniform(-0.5, 2.0))
    for sampler in samplers:
        for stat in STATS:
            metrics[f"sample_{sampler}_{stat}"] = float(rng.uniform(0.1, 0.9))
    if variant == "vae":
        metrics["nll_importance_samples"] = 50
    return metrics


def _write_chain_run(run: Path, rng: np.random.Generator) -> None:
    run.mkdir(parents=True)
    metrics = {f"sample_chain_{stat}": float(rng.uniform(0.1, 0.9)) for stat in STATS}
    metrics |= {"chain_mixed": 1.0, "chain_burn_in": 100.0}
    metrics |= {"chain_denoise_mse_grey": 0.02, "chain_denoise_mse_state": 0.05}
    (run / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    save_image(torch.rand(16, 1, 8, 8), run / "samples_chain.png", nrow=4)


def _write_inputs(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "params.yaml").write_text(yaml.safe_dump(_params()))
    for variant in VARIANTS:
        for seed in SEEDS:
            run = root / "metrics" / "digits" / variant / str(seed)
            run.mkdir(parents=True)
            arrays = _per_image(variant, seed, rng)
            payload = {
                "environment": {"device_name": "cpu"},
                "metrics": _metrics(variant, seed, arrays, rng),
            }
            (run / "metrics.json").write_text(json.dumps(payload))
            np.savez_compressed(run / "per_image.npz", **arrays)
            rows = [
                {
                    "kind": kind,
                    "level": level,
                    "mse": 0.02 + level / 10,
                    "psnr": 20 - level,
                    "ssim": 0.9 - level,
                    "latent_shift": level,
                    "probe_accuracy": 0.9 - level,
                }
                for kind, levels in GRID.items()
                for level in levels
            ]
            pd.DataFrame(rows).to_csv(run / "robustness.csv", index=False)
            labels = np.arange(100) % 10
            codes = rng.normal(size=(100, 4)) + labels[:, None]
            np.savez_compressed(run / "test_codes.npz", codes=codes, labels=labels)
            for sampler in ("gmm", "prior") if variant == "vae" else ("gmm",):
                save_image(torch.rand(16, 1, 8, 8), run / f"samples_{sampler}.png", nrow=4)
            if variant == "dae":  # the chain stage's files
                _write_chain_run(root / "chain" / "digits" / variant / str(seed), rng)
            control = {"recon_train_copy_rate": 0.3 + 0.01 * seed, "recon_train_mse": 0.01}
            memorised = root / "memorisation" / "digits" / variant / str(seed) / "metrics.json"
            memorised.parent.mkdir(parents=True)
            memorised.write_text(json.dumps({"metrics": control}))
            for kind, levels in GRID.items():
                save_image(
                    torch.rand(12, 1, 8, 8), run / f"denoise_{kind}_{levels[1]:g}.png", nrow=4
                )
            history = root / "history" / "digits" / variant / f"{seed}.csv"
            history.parent.mkdir(parents=True, exist_ok=True)
            frame = pd.DataFrame(
                {
                    "epoch": [1, 2, 3],
                    "train_loss": [3.0, 2.0, 1.5],
                    "train_recon": [3.0, 2.0, 1.5],
                    "val_loss": [3.1, 2.2, 1.7],
                    "val_recon": [3.1, 2.2, 1.7],
                }
            )
            if variant == "vae":
                frame = frame.assign(train_kl=[1.0, 2.0, 2.5], val_kl=[1.0, 2.1, 2.4])
            frame.to_csv(history, index=False)
    trace = [
        {"variant": "dae", "seed": seed, "step": step, "fd": 10.0 / step, "ink": 0.1}
        | {"class_kl": 0.1, "fd_se": 0.1, "ink_se": 0.01, "class_kl_se": 0.01}
        | {"class_coverage": 0.9, "agrees_with_last": step > 100, "burn_in": 100}
        | {"mixed": True, "z": 3.3, "test_mean_intensity": 0.13}
        for seed in SEEDS
        for step in (100, 200, 300, 400)
    ]
    (root / "diagnostics" / "digits").mkdir(parents=True)
    pd.DataFrame(trace).to_csv(root / "diagnostics" / "digits" / "chain_trace.csv", index=False)
    reference = {"training_images_copy_rate": 1.0, "images": 100}
    (root / "memorisation" / "digits" / "reference.json").write_text(json.dumps(reference))
    evaluator = root / "evaluators" / "digits"
    evaluator.mkdir(parents=True)
    reference = {"split": "val", "count": 100} | {stat: 0.5 for stat in STATS}
    payload = {"test_accuracy": 0.99, "reference": reference}
    (evaluator / "evaluator.json").write_text(json.dumps(payload))


def _report(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "report.py"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    _write_inputs(root)
    result = _report(root)
    assert result.returncode == 0, result.stderr
    return root


def test_every_figure_is_referenced_inline_and_present(rendered):
    reports = rendered / "reports"
    html = (reports / "index.html").read_text(encoding="utf-8")
    markdown = (reports / "README.md").read_text(encoding="utf-8")
    figures = sorted(p.name for p in (reports / "figures").glob("*.png"))
    # tradeoff, 3 robustness, denoising, samples, the chain's windows, latent, and training
    # curves per decoder likelihood (nats of a mass and of a density share no axis)
    assert len(figures) == 10
    assert "digits_chain_trace.png" in figures
    assert {"digits_training.png", "digits_training_gaussian.png"} <= set(figures)
    linked = re.findall(r"!\[[^\]]*\]\(figures/([^)]+)\)", markdown)
    assert sorted(linked) == figures
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "http://" not in html and "https://" not in html
    assert not list(reports.glob(".*"))  # no staging left behind


def test_report_contents(rendered):
    markdown = (rendered / "reports" / "README.md").read_text(encoding="utf-8")
    for section in (
        "### Findings",
        "### Headline",
        "### Noise robustness",
        "#### `chain`",
        "### The DAE chain",
        "### Memorisation",
        "### Likelihood (the families with a posterior",
        "### What early stopping did",
        "### Cost",
        "## Glossary",
    ):
        assert section in markdown
    assert "evaluate.noise_grid.gaussian: [0.0, 0.3, 0.5]" in markdown  # changed from default
    assert "*validation split (reference, n=100)*" in markdown
    assert "binarised (dynamic, Burda et al. 2015 protocol" in markdown
    metrics = json.loads((rendered / "reports" / "metrics.json").read_text())
    assert metrics["digits.vae.nll_iw.mean"] == pytest.approx(91.0, abs=1.0)
    assert metrics["digits.vae.nll_iw.count"] == 2.0
    assert metrics["digits.evaluator.reference_count"] == 100.0
    assert metrics["digits.dae.stop_epoch.mean"] == pytest.approx(30.5)
    assert "digits.dae.nll_iw.mean" not in metrics
    assert all(isinstance(value, int | float) for value in metrics.values())  # DVC metrics


def test_environment_is_named_without_a_clock(rendered):
    markdown = (rendered / "reports" / "README.md").read_text(encoding="utf-8")
    header = markdown.split("\n\n", 2)[1]
    assert "rendered" not in header and "UTC" not in header
    assert "torch CPU capability" in header and "(`train.threads`)" in header
    environment = json.loads((rendered / "reports" / "environment.json").read_text())
    assert {"cpu_model", "cpu_capability", "torch_threads", "gpu", "devices"} <= set(environment)
    assert environment["devices"] == ["cpu"]
    assert environment["cpu_model"] and environment["cpu_model"] in header


def test_rendering_twice_gives_identical_bytes(rendered):
    """No clock, no randomness: unchanged inputs give byte-identical reports (figures too)."""
    result = _report(rendered, "--out", "again")
    assert result.returncode == 0, result.stderr

    def files(root: Path) -> dict[str, bytes]:
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    first, second = files(rendered / "reports"), files(rendered / "again")
    assert sorted(first) == sorted(second)
    assert {"README.md", "index.html", "metrics.json", "environment.json"} <= set(first)
    assert [name for name in first if first[name] != second[name]] == []


def test_a_failed_report_keeps_the_previous_one(rendered):
    before = {p.name: p.read_bytes() for p in (rendered / "reports").rglob("*") if p.is_file()}
    assert "environment.json" in before
    broken = rendered / "metrics" / "digits" / "vae" / "1" / "metrics.json"
    saved = broken.read_text()
    broken.unlink()
    try:
        result = _report(rendered)
    finally:
        broken.write_text(saved)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {Path('metrics/digits/vae/1/metrics.json')} not found: "
        "evaluate@digits-vae-1 has not run"
    ]
    after = {p.name: p.read_bytes() for p in (rendered / "reports").rglob("*") if p.is_file()}
    assert after == before


def test_the_full_mnist_report_stage_renders_the_section_beside_the_quick_run(tmp_path):
    """The section's report stage on the same synthetic runs filed as the section's (under
    full_mnist/, dataset mnist): the literature table first, then the cross-dataset list
    (nothing disagrees: the runs are the same numbers), then the section's own tables."""
    import shutil

    _write_inputs(tmp_path)
    params = _params() | {
        "full_mnist": {
            "dataset": "mnist",
            "variants": list(VARIANTS),
            "seeds": list(SEEDS),
            "literature": {"rows": {"vae": {"nll": 86.76, "source": "a paper, Table 1"}}},
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for kind in ("metrics", "history"):
        shutil.copytree(tmp_path / kind / "digits", tmp_path / "full_mnist" / kind / "mnist")
    shutil.copytree(tmp_path / "evaluators" / "digits", tmp_path / "evaluators" / "mnist")
    result = subprocess.run(
        [sys.executable, str(REPO / "pipeline" / "full_mnist_report.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = tmp_path / "reports" / "full_mnist"
    markdown = (out / "README.md").read_text(encoding="utf-8")
    order = [
        "# aebench: the full MNIST",
        "## The literature protocol, side by side",
        "## Where the two datasets disagree",
        "None: every comparison agrees in sign where resolved.",
        "## mnist",
        "### What early stopping did",
    ]
    positions = [markdown.index(text) for text in order]
    assert positions == sorted(positions)
    assert "| `vae` |" in markdown and "86.76" in markdown
    assert json.loads((out / "metrics.json").read_text())["mnist.vae.nll_iw.mean"] > 0
    assert (out / "index.html").is_file()


def test_the_per_run_table_holds_every_run_and_agrees_with_the_means(rendered):
    """reports/runs.csv: one row per run, every metric; its per-variant means are the ones
    metrics.json (and the tables) show, to the last bit."""
    runs = pd.read_csv(rendered / "reports" / "runs.csv")
    flat = json.loads((rendered / "reports" / "metrics.json").read_text())
    assert len(runs) == len(VARIANTS) * len(SEEDS)
    assert list(runs.columns[:4]) == ["dataset", "variant", "seed", "device"]
    checked = 0
    for (dataset, variant), group in runs.groupby(["dataset", "variant"]):
        for metric in runs.columns[4:]:
            values = group[metric].dropna()
            if values.empty:
                continue
            assert flat[f"{dataset}.{variant}.{metric}.mean"] == values.mean(), metric
            assert flat[f"{dataset}.{variant}.{metric}.count"] == len(values)
            checked += 1
    assert checked > 50


def test_memorisation_sets_each_copy_rate_beside_its_controls(rendered):
    markdown = (rendered / "reports" / "README.md").read_text(encoding="utf-8")
    table = markdown.split("### Memorisation", 1)[1].split("\n### ", 1)[0]
    assert "| variant | Copy rate: training recon. | Copy rate: test recon. |" in table
    assert "training images, n=100 (a sampler that copies)* | 1 |" in table
    held_out = next(line for line in table.splitlines() if "held-out images*" in line)
    assert [c.strip() for c in held_out.strip("|").split("|")][1:3] == ["", "0.5"]
    assert "0.305 ± 0.007" in table  # dae and vae: 0.30, 0.31 over the two seeds
    assert "**" not in table and "†" not in table  # nothing is ranked
