"""How much the sample metrics move between CPU kernel paths, with fixed and with retrained
evaluator weights.

Machines here differ in their vector units (AVX-512/AMX Intel, AVX2 AMD), and torch, MKL and
oneDNN pick kernels by them, so fp32 sums differ in the last bits. This script emulates the AVX2
path on an AVX-512 machine (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, DNNL_MAX_CPU_ISA must be
set before torch loads, so each measurement runs in a child process) and prints, for the reference
row (validation split against test split):
  - `fixed`: the committed evaluator weights, scoring only (what the pipeline does now);
  - `retrained`: an evaluator retrained from scratch under each kernel path (what it did before).
Usage: .venv/bin/python scripts/instrument_drift.py [dataset]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",
}

CHILD = r"""
import json, sys, torch
from pathlib import Path
from aebench.config import load_params
from aebench.data import load_split, read_manifest, to_float
from aebench.evaluator import load_evaluator, train_evaluator
from aebench.runtime import make_deterministic
from aebench.scoring import SampleScorer, Split

dataset, mode = sys.argv[1], sys.argv[2]
params = load_params("params.yaml")
make_deterministic(params.evaluator.seed, params.train.threads)
data = Path("data") / dataset
splits = {name: Split(to_float(load_split(data, name)[0]), load_split(data, name)[1])
          for name in ("train", "val", "test")}
if mode == "fixed":
    model = load_evaluator(Path("evaluators") / dataset / "model.pt")
else:
    cfg = params.evaluator
    model, _ = train_evaluator(
        splits["train"].images, torch.from_numpy(splits["train"].labels),
        splits["val"].images, torch.from_numpy(splits["val"].labels),
        seed=cfg.seed, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr)
n_classes = len(read_manifest(data)["splits"]["train"]["class_counts"])
scorer = SampleScorer(model, splits["test"], n_classes, params.evaluate.batch_size,
                      splits["train"].images)
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(),
                  **scorer.scores(splits["val"].images)}))
"""


def measure(dataset: str, mode: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, dataset, mode],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    dataset = sys.argv[1] if len(sys.argv) > 1 else "mnist5k"
    for mode in ("fixed", "retrained"):
        native, avx2 = measure(dataset, mode, {}), measure(dataset, mode, AVX2)
        print(f"{mode} evaluator weights: {native['capability']} vs {avx2['capability']}")
        for key in ("fd", "precision", "recall", "density", "coverage", "copy_rate"):
            change = avx2[key] - native[key]
            print(f"  {key:10s} {native[key]:.6g}  {avx2[key]:.6g}  diff {change:+.3g}")


if __name__ == "__main__":
    main()
