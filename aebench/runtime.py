"""Where and how computations run: device choice and the determinism switches every stage sets."""

from __future__ import annotations

import os
import sys

import torch

from aebench.errors import ParamsError


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when asked for or available (``auto``), else CPU."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ParamsError(
            "train.device: 'cuda' was asked for but no CUDA device is available; "
            "allowed here: auto, cpu"
        )
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def device_name(device: torch.device | str) -> str:
    """A human-readable accelerator name for the report (``cpu`` on CPU)."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def make_deterministic(seed: int, threads: int | None = None) -> None:
    """Seed torch, fix the CPU thread count and switch on deterministic kernels (bit-identical
    reruns on CPU: fp32 sums are split across threads, so results depend on their number).

    The count holds for torch and for the BLAS/OpenMP pools numpy, scipy and scikit-learn use
    (the GMM sampler, k-NN metrics, Fréchet distance): left at their default of one thread per
    core, parallel workers would oversubscribe the cores and the results would depend on the
    machine's core count rather than on the recorded setting."""
    if threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(threads)
    # Required by cuBLAS for deterministic matmuls; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    deterministic_kernels()
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)


def deterministic_kernels() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` without its import of
    ``torch._inductor``, which it loads only to set the compiler's own flag: that import took
    1.0 s of every stage's start-up here (81 stages a default run). aebench compiles nothing; if
    the compiler is loaded already, its flag is set as torch would set it."""
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    compiler_config = sys.modules.get("torch._inductor.config")
    if compiler_config is not None:
        compiler_config.deterministic = True
