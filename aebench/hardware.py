"""The hardware class a result was computed on, without importing torch.

fp32 results depend on the kernels torch picks (its CPU capability: AVX2, AVX512, ...) or on the
GPU, and on the thread count. Training and evaluation stages depend on ``hardware.json``, which
the ``hardware`` stage rewrites on every run: on the same machine type it is byte-identical, so
nothing re-runs, while a result computed on other hardware never passes for one computed here
(DVC's run-cache keys a stage by the hashes of its dependencies).

Read from the operating system rather than from torch: the stage runs before every stage a
worker reproduces, and importing torch costs seconds.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

# The CPU flags each of torch's kernel paths needs, best first (ATen's cpu capability checks).
CAPABILITY_FLAGS: dict[str, set[str]] = {
    "AVX512": {"avx512f", "avx512bw", "avx512vl", "avx512dq", "fma"},
    "AVX2": {"avx2", "fma"},
}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    if not cpuinfo.is_file():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_vendor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's vendor as Linux lists it (``GenuineIntel``, ``AuthenticAMD``; ``unknown``
    elsewhere). Part of the hardware class: an AMD EPYC with AVX-512 takes the same torch kernel
    path as an Intel Xeon, yet trained other bits (an ae's validation loss differed from epoch 3
    on), because the BLAS underneath picks its own code per vendor."""
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_capability(flags: set[str], override: str | None = None) -> str:
    """The kernel path torch takes on a CPU with these flags; ``override`` is the value of
    ``ATEN_CPU_CAPABILITY`` (torch's own switch), which can only lower it."""
    supported = [name for name, needed in CAPABILITY_FLAGS.items() if needed <= flags]
    if platform.machine().lower() in {"aarch64", "arm64"}:
        supported = []  # torch names ARM paths differently: recorded as DEFAULT (README)
    best = supported[0] if supported else "DEFAULT"
    if override:
        wanted = override.upper()
        order = [*CAPABILITY_FLAGS, "DEFAULT"]
        if wanted in order and order.index(wanted) >= order.index(best):
            return wanted
    return best


def gpu_names() -> list[str]:
    """The NVIDIA GPUs this process may use (CUDA_VISIBLE_DEVICES honoured), by ``nvidia-smi``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in {"", "-1"}:
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = {}
    for line in listing.strip().splitlines():
        index, name = (part.strip() for part in line.split(",", 1))
        gpus[index] = name
    if visible is None:
        return list(gpus.values())
    return [gpus[i.strip()] for i in visible.split(",") if i.strip() in gpus]


def hardware_class(device: str, threads: int) -> dict[str, str | int]:
    """What a stage's fp32 results depend on: the device kind, and on CPU the kernel path, the
    vendor and the thread count, on CUDA the GPU model. ``device`` is ``train.device`` (auto |
    cpu | cuda)."""
    gpus = [] if device == "cpu" else gpu_names()
    if gpus:
        return {"device": "cuda", "gpu": gpus[0]}
    flags = cpu_flags()
    return {
        "device": "cpu",
        "cpu_capability": cpu_capability(flags, os.environ.get("ATEN_CPU_CAPABILITY")),
        "cpu_vendor": cpu_vendor(),
        "threads": threads,
    }


def record_text(device: str, threads: int) -> str:
    """The exact bytes of ``hardware.json`` on this machine: the stage writes them, and
    ``aebench run``'s repro compares them to skip the stage when nothing would change."""
    return json.dumps(hardware_class(device, threads), indent=2, sort_keys=True) + "\n"
