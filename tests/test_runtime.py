"""The determinism switches every stage sets, checked in fresh interpreters (they are process-wide
and the test process has set them already)."""

import subprocess
import sys

CHECK = """
import sys, torch
{before}
from aebench.runtime import make_deterministic
make_deterministic(0, threads=1)
print(torch.are_deterministic_algorithms_enabled(),
      torch.is_deterministic_algorithms_warn_only_enabled(),
      "torch._inductor" in sys.modules,
      getattr(sys.modules.get("torch._inductor.config"), "deterministic", None))
"""


def _switches(before: str = "") -> list[str]:
    code = CHECK.format(before=before)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_deterministic_kernels_are_on_in_warn_only_mode_without_loading_the_compiler():
    assert _switches() == ["True", "True", "False", "None"]


def test_a_loaded_compiler_gets_its_deterministic_flag_as_torch_would_set_it():
    assert _switches("import torch._inductor.config") == ["True", "True", "True", "True"]
