"""Where the DAE Markov chain goes: sample quality and ink at every step of Bengio et al.'s chain.

The chain sampler scores states after a fixed burn-in. Whether that burn-in is long enough, and
whether the chain settles on the data distribution at all, is a question about the whole
trajectory, so this module records it: the same chains the sampler runs (same seed, same number
of chains, same noise), scored at a set of steps with the same scorer.
"""

from __future__ import annotations

import numpy as np
import torch

from aebench.models import Autoencoder
from aebench.samplers import chain_step
from aebench.scoring import SampleScorer

# 55: the first step the default sampler keeps (burn-in 50 + thin 5)
TRACE_STEPS = (1, 2, 5, 10, 20, 30, 40, 50, 55, 60, 80, 100, 125, 150, 200, 250, 300)


@torch.no_grad()
def chain_trace(
    model: Autoencoder,
    scorer: SampleScorer,
    chains: int,
    seed: int,
    steps: tuple[int, ...] = TRACE_STEPS,
) -> list[dict[str, float]]:
    """One row per step in ``steps``: the sample metrics of the chains' means of P(X | X~) at
    that step, and their mean intensity (the test split's is the yardstick for lost ink)."""
    generator = torch.Generator().manual_seed(seed)
    state = torch.rand((chains, *model.image_shape), generator=generator)  # as sample_chain
    device = next(model.parameters()).device
    rows = []
    for step in range(1, max(steps) + 1):
        state, mean = chain_step(model, state, generator)
        if step in steps:
            scores = scorer.scores(mean.to(device))
            rows.append({"step": step, "mean_intensity": float(mean.mean()), **scores})
    return rows


def test_intensity(images: torch.Tensor) -> float:
    """The test split's mean pixel intensity: what a chain that keeps its ink shows."""
    return float(np.mean(images.detach().cpu().numpy()))
