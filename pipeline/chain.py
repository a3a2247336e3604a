"""DVC stage chain@<dataset>: the DAE Markov chain sampler, scored where it has mixed.

For every denoising variant of the run list, on every seed: the windowed trace, the burn-in the
stationarity rule picks over all of the variant's seeds (aebench/chain_mixing.py), and as many
samples after it as every sampler draws (the validation split's count), scored as the other
samplers' are. Writes
chain/<dataset>/<variant>/<seed>/ (metrics.json, samples_chain.png) and
diagnostics/<dataset>/chain_trace.csv (every window of every trace, committed).
"""

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from aebench import settings
from aebench.chain_mixing import (
    Reference,
    Verdict,
    choose_burn_in,
    sampling_thin,
    state_mismatch,
    trace_windows,
)
from aebench.dataset_scoring import load_dataset_scoring
from aebench.grids import grid_columns
from aebench.io import atomic_dir, atomic_path, write_json
from aebench.models import Autoencoder, load_checkpoint
from aebench.png_grid import save_grid
from aebench.runtime import make_deterministic, pick_device
from aebench.samplers import sample_chain
from aebench.scoring import SampleScorer
from aebench.spec import ChainConfig
from aebench.stage import run_stage
from aebench.stage_settings import MixingConfig, settings_path


def run_metrics(
    model: Autoencoder,
    scorer: SampleScorer,
    test_images: torch.Tensor,
    verdict: Verdict,
    mixing: MixingConfig,
    cfg: dict[str, Any],
    n: int,
) -> tuple[dict[str, float], torch.Tensor]:
    """The chain sampler's metrics for one run (``sample_chain_*``, the verdict, the state
    mismatch) and its ``n`` samples (as many as the reference row's images): the trace's own
    chains after the burn-in, each chain's draws spread over the rest of the trace."""
    thin = sampling_thin(mixing, verdict.burn_in, n)  # refuses chains that give one draw each
    chain = ChainConfig(chains=mixing.chains, burn_in=verdict.burn_in, thin=thin)
    samples = sample_chain(model, n, chain, cfg["seed"])
    mismatch = state_mismatch(model, test_images, cfg["seed"], cfg["batch_size"])
    metrics = {
        **scorer.score(samples, "sample_chain"),
        "chain_mixed": float(verdict.mixed),
        "chain_burn_in": float(verdict.burn_in),
        "chain_sampling_thin": float(thin),
        **{f"chain_{key}": value for key, value in mismatch.items()},
    }
    return metrics, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset")
    parser.add_argument(
        "--root", default=".", help="where models/ are read and chain/, diagnostics/ go"
    )
    args = parser.parse_args()
    root = Path(args.root)
    # a section with its own models (--root full_mnist) has its own settings folder
    spec = settings.read(settings_path("chain", args.dataset, section=root))
    cfg, machine = spec["evaluate"], spec["machine"]
    mixing = MixingConfig(**cfg["chain"])
    make_deterministic(cfg["seed"], machine["threads"])
    device = pick_device(machine["device"])
    loaded = load_dataset_scoring(args.dataset, cfg["batch_size"], device)
    scorer, n = loaded.scorer, loaded.reference_count
    reference = Reference(scorer.test_stats, scorer.test_predictions, loaded.n_classes)

    runs: dict[str, list[int]] = {}
    for run in spec["runs"]:
        runs.setdefault(run["variant"], []).append(run["seed"])
    trace_rows, results = [], {}
    for variant, seeds in runs.items():
        models = {
            seed: load_checkpoint(
                root / "models" / args.dataset / variant / str(seed) / "model.pt", device
            )
            for seed in seeds
        }
        traces = {
            seed: trace_windows(model, scorer.featurize, mixing, cfg["seed"])
            for seed, model in models.items()
        }
        verdict = choose_burn_in(traces, reference, mixing)
        for seed, rows in verdict.rows.items():
            for row, agreed in zip(rows, verdict.agreeing[seed], strict=True):
                trace_rows.append(
                    {"variant": variant, "seed": seed, **row, "agrees_with_last": agreed}
                    | {"halves_agree": verdict.halves_agree.get(seed)}
                    | {"burn_in": verdict.burn_in, "mixed": verdict.mixed, "z": verdict.z}
                )
            results[(variant, seed)] = run_metrics(
                models[seed], scorer, loaded.test.images, verdict, mixing, cfg, n
            )
        state = "mixed" if verdict.mixed else "did NOT mix"
        print(f"{args.dataset}/{variant}: burn-in {verdict.burn_in} steps, {state}")

    with atomic_dir(root / "chain" / args.dataset) as out:
        for (variant, seed), (metrics, samples) in results.items():
            run_dir = out / variant / str(seed)
            run_dir.mkdir(parents=True)
            payload = {
                "run": {"dataset": args.dataset, "variant": variant, "seed": seed},
                "metrics": metrics,
            }
            write_json(run_dir / "metrics.json", payload)
            shown = samples[: cfg["grid_images"]]
            save_grid(shown, run_dir / "samples_chain.png", grid_columns(len(shown)), padding=1)
    frame = pd.DataFrame(trace_rows, columns=TRACE_COLUMNS)
    frame["test_mean_intensity"] = float(loaded.test.images.mean())
    with atomic_path(root / "diagnostics" / args.dataset / "chain_trace.csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


TRACE_COLUMNS = [
    "variant",
    "seed",
    "step",
    "fd",
    "ink",
    "class_kl",
    "fd_se",
    "ink_se",
    "class_kl_se",
    "class_coverage",
    "agrees_with_last",
    "halves_agree",
    "burn_in",
    "mixed",
    "z",
]


if __name__ == "__main__":
    run_stage(main)
