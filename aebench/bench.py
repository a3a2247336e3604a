"""`aebench bench`: how fast training runs here, against the hardware and a textbook loop.

Speeds differ about 2× between the machines this project runs on, so absolute figures mean little
across machines; what is comparable is (a) the ratio to a textbook PyTorch loop of the same model,
timed interleaved with ours in the same process, and (b) the share of the device's measured matmul
peak. Every figure is printed and written with the CPU model (or GPU name) and thread count.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aebench.config import DataConfig, EvaluateConfig, Params, TrainConfig, VariantSpec
from aebench.data import Splits
from aebench.models import Autoencoder, build_model
from aebench.runtime import device_name, make_deterministic, pick_device
from aebench.train import train_model


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux), else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def textbook_train(
    model: Autoencoder,
    train: torch.Tensor,
    val: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> float:
    """The reference loop, kept as written so that the ratio means the same over time: default
    ``torch.optim.Adam``, index-sliced shuffled batches, ``backward``, ``step``, one validation
    pass per epoch. Returns the last validation loss."""
    torch.manual_seed(seed)
    generator = torch.Generator(device=train.device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    val_loss = math.nan
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator, device=train.device)
        for start in range(0, len(train), batch_size):
            batch = train[order[start : start + batch_size]]
            loss = model.loss_terms(batch, generator)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val), batch_size):
                batch = val[start : start + batch_size]
                total += model.loss_terms(batch, generator)["loss"].item() * len(batch)
        val_loss = total / len(val)
    return val_loss


def flops_per_sample(model: Autoencoder) -> float:
    """FLOPs of one training step per sample: the linear and conv layers' multiply-adds, ×2 for
    FLOPs and ×3 for forward plus backward (the usual estimate), counted by hooks on one image."""
    macs = 0

    def count(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, torch.nn.Linear):
            macs += module.in_features * module.out_features
        elif isinstance(module, torch.nn.Conv2d):  # per output position: the whole kernel
            macs += module.weight.numel() * output[0, 0].numel()
        elif isinstance(module, torch.nn.ConvTranspose2d):  # per input position
            macs += module.weight.numel() * inputs[0][0, 0].numel()

    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    try:
        with torch.no_grad():
            model.cpu().decode(model.encode(torch.zeros(1, *model.image_shape)))
    finally:
        for handle in handles:
            handle.remove()
    return 6.0 * macs


def matmul_peak_gflops(device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """Best-of-``repeats`` fp32 GFLOP/s of a square ``torch.mm``: the device's practical peak."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass(frozen=True)
class TrainingBench:
    variant: str
    ours_samples_per_s: float
    textbook_samples_per_s: float
    ratio: float
    share_of_peak: float
    bf16_speedup: float | None


def bench_training(
    spec: VariantSpec,
    train: torch.Tensor,
    val: torch.Tensor,
    cfg: TrainConfig,
    epochs: int,
    repeats: int,
    peak_gflops: float,
    with_bf16: bool,
) -> TrainingBench:
    """Time our loop and the textbook loop, interleaved (A B A B ...), on the same data."""
    fixed = dataclasses.replace(
        cfg, max_epochs=epochs, patience=epochs + 1, lr_plateau_factor=None, precision="fp32"
    )
    samples = epochs * len(train)

    def ours(precision: str = "fp32") -> float:
        run_cfg = dataclasses.replace(fixed, precision=precision)
        return _seconds(lambda: train_model(spec, train, val, run_cfg, seed=0, progress=False))

    def textbook() -> float:
        make_deterministic(0, cfg.threads)
        # as a plain PyTorch program runs: our train_model turns flush-to-zero on for the process
        torch.set_flush_denormal(False)
        model = build_model(spec, tuple(train.shape[1:])).to(train.device)
        return _seconds(
            lambda: textbook_train(model, train, val, epochs, cfg.batch_size, cfg.lr, 0)
        )

    ours(), textbook()  # warm-up: allocator, kernels, lazy imports
    timings: dict[str, list[float]] = {"ours": [], "textbook": [], "bf16": []}
    for _ in range(repeats):
        timings["textbook"].append(textbook())
        timings["ours"].append(ours())
        if with_bf16:
            timings["bf16"].append(ours("bf16"))
    ours_s, textbook_s = statistics.median(timings["ours"]), statistics.median(timings["textbook"])
    model = build_model(spec, tuple(train.shape[1:]))
    achieved = flops_per_sample(model) * samples / ours_s / 1e9
    return TrainingBench(
        variant=spec.name,
        ours_samples_per_s=samples / ours_s,
        textbook_samples_per_s=samples / textbook_s,
        ratio=textbook_s / ours_s,
        share_of_peak=achieved / peak_gflops,
        bf16_speedup=ours_s / statistics.median(timings["bf16"]) if with_bf16 else None,
    )


def _seconds(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_evaluation(
    spec: VariantSpec,
    splits: Splits,
    cfg: TrainConfig,
    evaluate_cfg: EvaluateConfig,
    device: torch.device,
    epochs: int,
) -> dict[str, float]:
    """Seconds per metric family of one full evaluation (the evaluate stage's work), for a model
    trained ``epochs`` epochs; the evaluator CNN is untrained, which costs the same time."""
    from aebench.data import to_float
    from aebench.evaluate import evaluate_run
    from aebench.evaluator import EvaluatorNet
    from aebench.scoring import Split

    train = Split(to_float(splits.images["train"], device), splits.labels["train"])
    test = Split(to_float(splits.images["test"], device), splits.labels["test"])
    val = to_float(splits.images["val"], device)
    fixed = dataclasses.replace(cfg, max_epochs=epochs, patience=epochs + 1)
    model, _ = train_model(spec, train.images, val, fixed, seed=0, progress=False)
    n_classes = int(splits.labels["train"].max()) + 1
    evaluator = EvaluatorNet(train.images.shape[1], n_classes).to(device).eval()
    started = time.perf_counter()
    result = evaluate_run(model, train, test, evaluator, n_classes, evaluate_cfg, len(val))
    return {**result.seconds, "total": time.perf_counter() - started}


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off on GPUs and on CPUs with native bf16 (AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run_bench(
    params: Params, variants: list[str], epochs: int, repeats: int, dataset: str = "mnist5k"
) -> dict[str, Any]:
    """Every figure of one benchmark run, ready to print and to write as JSON."""
    from aebench.data import to_float
    from aebench.datasets import build_splits  # only the bench loads raw data

    device = pick_device(params.train.device)
    torch.set_num_threads(params.train.threads)
    splits = build_splits(dataset, DataConfig(), Path("downloads") / dataset)
    train = to_float(splits.images["train"], device)
    val = to_float(splits.images["val"], device)
    peak = matmul_peak_gflops(device)
    with_bf16 = bf16_supported(device)
    evaluation = {
        name: bench_evaluation(
            params.variant(name), splits, params.train_for(name), params.evaluate, device, epochs
        )
        for name in variants
    }
    rows = [
        dataclasses.asdict(
            bench_training(
                params.variant(name),
                train,
                val,
                params.train_for(name),
                epochs,
                repeats,
                peak,
                with_bf16,
            )
        )
        for name in variants
    ]
    return {
        "device": device_name(device) if device.type == "cuda" else cpu_model(),
        "device_type": device.type,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": params.train.threads,
        "torch": torch.__version__,
        "dataset": dataset,
        "epochs": epochs,
        "repeats": repeats,
        "batch_size": params.train.batch_size,
        "matmul_peak_gflops": peak,
        "bf16_supported": with_bf16,
        "training": rows,
        "evaluation_seconds": evaluation,
    }


def markdown_table(result: dict[str, Any]) -> str:
    """The README's table for one benchmark run."""
    # on a GPU the CPU's kernel path and torch's thread count do not bear on the figures
    on_gpu = result.get("device_type") == "cuda"
    where = "CUDA" if on_gpu else f"{result['cpu_capability']}, {result['threads']} threads"
    lines = [
        f"{result['device']} ({where}, torch {result['torch']}; "
        f"matmul peak {result['matmul_peak_gflops']:.0f} GFLOP/s)",
        "",
        "| variant | ours (samples/s) | textbook (samples/s) | ratio | share of matmul peak "
        "| bf16 speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["training"]:
        bf16 = f"{row['bf16_speedup']:.2f}×" if row["bf16_speedup"] else "not supported"
        lines.append(
            f"| {row['variant']} | {row['ours_samples_per_s']:,.0f} | "
            f"{row['textbook_samples_per_s']:,.0f} | {row['ratio']:.2f}× | "
            f"{row['share_of_peak']:.1%} | {bf16} |"
        )
    evaluation = result["evaluation_seconds"]
    phases = sorted({phase for seconds in evaluation.values() for phase in seconds})
    lines += [
        "",
        "Evaluation seconds per metric family (one evaluate stage's work):",
        "",
        "| variant | " + " | ".join(phases) + " |",
        "|---|" + "---|" * len(phases),
    ]
    for name, seconds in evaluation.items():
        cells = [f"{seconds[p]:.1f}" if p in seconds else "–" for p in phases]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
