"""The DVC pipeline end to end, and the stage scripts' handling of bad params."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = (
    "aebench",
    "pipeline",
    "examples",
    "dvc.yaml",
    "params.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".gitignore",
    ".dvcignore",
)


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_SITE_CACHE_DIR"] = str(root / ".dvc" / "site_cache")
    # the copy's own aebench, not the editable install's (which points at the repository)
    env["PYTHONPATH"] = str(root)
    return env


def _copy_repo(root: Path, run: dict, epochs: int) -> Path:
    """A throw-away copy of the repository whose params run ``run`` for ``epochs`` epochs."""
    for name in COPIED:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["run"] = run
    params.pop("tuning", None)  # a copy tests the default pipeline; test_tuning.py the grids
    params["train"].update(max_epochs=epochs, patience=2, lr_plateau_patience=1)
    # one epoch, one thread: the instrument only has to exist (tests/test_evaluator.py checks
    # its quality), and a second thread would contend with the other pytest worker
    params["evaluator"].update(epochs=1, threads=1)
    params["evaluate"]["importance_samples"] = 20
    params["evaluate"]["chain"] = {"chains": 40, "thin": 2, "trace_steps": 40, "window": 8}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_dvc_repro_on_a_tiny_configuration(tmp_path):
    root = _copy_repo(
        tmp_path / "repo",
        {"datasets": ["digits"], "variants": ["dae_masking", "vae"], "seeds": [0, 1]},
        epochs=3,
    )
    first = _dvc(root, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "train@digits-vae-1" in first.stdout

    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    for variant in ("dae_masking", "vae"):
        prefix = f"digits.{variant}"
        assert 0 < metrics[f"{prefix}.recon_mse.mean"] < 0.25
        assert metrics[f"{prefix}.recon_mse.std"] >= 0
        assert 0 < metrics[f"{prefix}.recon_bce.mean"] < 64 * 0.7  # < log 2 per pixel
        assert metrics[f"{prefix}.parameters.mean"] > 1000
        assert 0 <= metrics[f"{prefix}.sample_gmm_precision.mean"] <= 1
        assert metrics[f"{prefix}.sample_gmm_fd.mean"] > metrics["digits.evaluator.reference_fd"]
        assert metrics[f"{prefix}.stop_epoch.mean"] <= 3
        for kind in ("gaussian", "masking", "salt_pepper"):
            # more noise cannot make the mean error smaller than on clean input
            assert (
                metrics[f"{prefix}.robust_{kind}_mse_corrupted.mean"]
                >= metrics[f"{prefix}.recon_mse.mean"] * 0.99
            )
    assert "digits.vae.sample_prior_fd.mean" in metrics
    assert "digits.dae_masking.sample_prior_fd.mean" not in metrics  # no prior for a DAE
    assert "digits.dae_masking.sample_chain_fd.mean" in metrics  # from the chain stage
    assert metrics["digits.dae_masking.chain_mixed.mean"] in (0.0, 0.5, 1.0)
    chained = root / "chain/digits/dae_masking/0"
    assert {p.name for p in chained.iterdir()} == {"metrics.json", "samples_chain.png"}
    assert not (root / "metrics/digits/dae_masking/0/samples_chain.png").exists()
    trace = (root / "diagnostics/digits/chain_trace.csv").read_text().splitlines()
    assert len(trace) == 1 + 2 * 5  # two seeds × 5 windows of the one denoising variant
    assert metrics["digits.vae.nll_iw.mean"] <= metrics["digits.vae.neg_elbo.mean"]
    run_dir = root / "metrics/digits/vae/1"
    per_run = json.loads((run_dir / "metrics.json").read_text())
    assert per_run["run"] == {"dataset": "digits", "variant": "vae", "seed": 1}
    assert {p.name for p in run_dir.glob("*.png")} >= {"samples_prior.png", "samples_gmm.png"}
    curves = (run_dir / "robustness.csv").read_text().splitlines()
    assert curves[0] == "kind,level,mse,psnr,ssim,latent_shift,probe_accuracy"
    assert len(curves) == 1 + 18
    report = (root / "reports" / "README.md").read_text()
    assert "| dae_masking |" in report and "| vae |" in report
    assert "validation split (reference" in report
    assert (root / "history/digits/vae/0.csv").read_text().startswith("epoch,lr,train_loss")
    per_image = np.load(run_dir / "per_image.npz")
    assert per_image["recon_mse"].mean() == pytest.approx(per_run["metrics"]["recon_mse"])
    assert not any("seconds" in key for key in per_run["metrics"])  # timings live elsewhere
    assert json.loads((root / "timings/train/digits/vae/1.json").read_text())["train_seconds"] > 0

    second = _dvc(root, "repro")
    assert second.returncode == 0
    # only the two stages that run every time and rewrite the same bytes
    assert re.findall(r"Running stage '([^']+)'", second.stdout) == ["settings", "hardware"]

    shown = _dvc(root, "metrics", "show", "--json")
    assert "digits.vae.recon_mse.mean" in shown.stdout


@pytest.mark.slow
def test_every_further_family_trains_evaluates_and_reports(tmp_path):
    further = ["iwae", "wae", "rae", "cae", "sae", "article_vae", "article_dae"]
    root = _copy_repo(
        tmp_path / "repo", {"datasets": ["digits"], "variants": further, "seeds": [0]}, epochs=2
    )
    result = _dvc(root, "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    for variant in further:
        assert 0 < metrics[f"digits.{variant}.recon_mse.mean"] < 0.25, variant
        assert f"digits.{variant}.sample_gmm_fd.mean" in metrics
        has_prior = f"digits.{variant}.sample_prior_fd.mean" in metrics
        assert has_prior == (variant in ("iwae", "wae", "article_vae")), variant
    assert metrics["digits.iwae.nll_iw.mean"] <= metrics["digits.iwae.neg_elbo.mean"]
    assert "digits.article_vae.gaussian_nll_iw.mean" in metrics  # the article's MSE, made a density
    assert "digits.rae.nll_iw.mean" not in metrics  # no posterior, no likelihood bound
    history = (root / "history/digits/cae/0.csv").read_text().splitlines()[0]
    assert "val_contraction" in history
    trained = json.loads((root / "models/digits/article_dae/0/train.json").read_text())
    assert trained["batch_size"] == 256  # the listing's batch, set on the variant
    report = (root / "reports" / "README.md").read_text()
    assert all(f"| {variant} |" in report for variant in further)


# README's "Benchmark your own model and data": what a user adds to params.yaml
README_EXAMPLE_DATASETS = {"tiny_digits": {"format": "png_folder", "path": "examples/tiny_digits"}}
README_EXAMPLE_VARIANT = {
    "family": "examples.learned_prior:LearnedPriorVAE",
    "latent_dim": 4,
    "hidden": [32],
    "prior_components": 3,
}


@pytest.mark.slow
def test_your_own_model_and_data_join_the_report(tmp_path):
    """README's "Benchmark your own model", as a user follows it: the example family (a VAE with
    a learned prior) and the example folder of PNGs, added in params.yaml only. Its row carries
    every metric its declarations promise; editing its module re-runs only its own stages."""
    root = _copy_repo(
        tmp_path / "repo", {"datasets": ["tiny_digits"], "variants": ["ae"], "seeds": [0]}, 1
    )
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["datasets"] = dict(README_EXAMPLE_DATASETS)
    params["variants"]["learned_prior_vae"] = dict(README_EXAMPLE_VARIANT)
    params["run"]["variants"] = ["learned_prior_vae"]
    params["evaluate"]["gmm_components"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = _dvc(root, "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    row = "tiny_digits.learned_prior_vae"
    for key in ("recon_mse", "sample_prior_fd", "sample_gmm_fd", "nll_iw", "neg_elbo"):
        assert f"{row}.{key}.mean" in metrics, key
    header = (root / "reports" / "README.md").read_text()
    assert "family `examples.learned_prior:LearnedPriorVAE`: examples/learned_prior.py" in header
    manifest = json.loads((root / "data" / "tiny_digits" / "manifest.json").read_text())
    assert manifest["splits"]["train"]["shape"][1:] == [1, 8, 8]

    with (root / "examples" / "learned_prior.py").open("a") as handle:
        handle.write("# an edit of the user's model\n")
    result = _dvc(root, "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = set(re.findall(r"Running stage '([^']+)'", result.stdout)) - {"settings", "hardware"}
    # the report and the per-dataset memorisation stage re-run only where the model's bytes did
    assert ran - {"report", "memorisation@tiny_digits"} == {
        "train@tiny_digits-learned_prior_vae-0",
        "evaluate@tiny_digits-learned_prior_vae-0",
    }, ran


@pytest.mark.parametrize(("stage", "args"), [("settings", []), ("report", [])])
def test_bad_params_stop_a_stage_with_one_message_and_no_output(tmp_path, stage, args):
    """The stages that read params.yaml validate it; the others read settings/ files."""
    root = _copy_repo(
        tmp_path / "repo", {"datasets": ["digits"], "variants": ["vae"], "seeds": [0]}, 1
    )
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"]["vae"]["latent_dim"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    _assert_refused(
        root,
        stage,
        args,
        "error: params.yaml: variants.vae.latent_dim: 0 is not allowed; expected an integer >= 1",
    )


@pytest.mark.parametrize(
    ("stage", "args", "missing"),
    [
        ("fetch", ["digits"], "settings/data/digits.json"),
        ("train", ["--dataset", "digits", "--variant", "vae", "--seed", "0"], "train/vae.json"),
        ("evaluate", ["--dataset", "digits", "--variant", "vae", "--seed", "0"], "vae.json"),
    ],
)
def test_a_stage_without_its_settings_says_so_and_writes_nothing(tmp_path, stage, args, missing):
    root = _copy_repo(
        tmp_path / "repo", {"datasets": ["digits"], "variants": ["vae"], "seeds": [0]}, 1
    )
    shutil.rmtree(root / "settings", ignore_errors=True)
    (stderr,) = _assert_refused(root, stage, args, None)
    assert missing in stderr and "the settings stage writes it" in stderr


def _assert_refused(root: Path, stage: str, args: list[str], message: str | None) -> list[str]:
    """Run one stage script: exit status 2, one line on stderr (``message`` if given), and not
    a file added or removed."""
    before = sorted(p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts)
    result = subprocess.run(
        [sys.executable, f"pipeline/{stage}.py", *args],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    if message is not None:
        assert lines == [message]
    after = sorted(p.relative_to(root) for p in root.rglob("*") if "__pycache__" not in p.parts)
    assert after == before
    return lines
