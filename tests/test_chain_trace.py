"""The chain trace follows the sampler's own chains, and its caption reads the numbers right."""

import pandas as pd
import torch

from aebench.chain_trace import chain_trace
from aebench.config import ChainConfig, parse_params
from aebench.models import build_model
from aebench.report.assemble import chain_trace_caption
from aebench.samplers import sample_chain


class _MeanIntensity:
    """A stand-in scorer: reports the mean of what it is given, so the trace can be checked
    against the sampler's own output."""

    def scores(self, images: torch.Tensor) -> dict[str, float]:
        return {"fd": float(images.mean()), "class_coverage": 1.0}


def test_trace_scores_the_same_states_the_sampler_keeps(raw_params):
    model = build_model(parse_params(raw_params).variant("dae"), (1, 8, 8)).eval()
    rows = chain_trace(model, _MeanIntensity(), chains=6, seed=3, steps=(1, 4))
    kept = sample_chain(model, 6, ChainConfig(chains=6, burn_in=3, thin=1), seed=3)
    assert [r["step"] for r in rows] == [1, 4]
    assert rows[1]["fd"] == float(kept.mean())  # step 4 = first kept step after burn-in 3


def test_caption_names_the_chains_that_lose_their_ink():
    trace = pd.DataFrame(
        [
            {"variant": "a", "step": s, "class_coverage": c, "mean_intensity": i, "fd": 1.0}
            for s, c, i in ((1, 0.5, 0.1), (55, 0.1, 0.01), (300, 0.2, 0.02))
        ]
        + [
            {"variant": "b", "step": s, "class_coverage": 1.0, "mean_intensity": 0.12, "fd": 1.0}
            for s in (1, 55, 300)
        ]
    ).assign(test_mean_intensity=0.13, seed=0)
    caption = chain_trace_caption(trace, kept_step=55)
    assert "a: 1/10 classes and ink 0.010 at step 55 (the first step the sampler keeps)" in caption
    assert "seed 0 only" in caption
    assert "most classes 5/10 at step 1" in caption
    assert "The chains of a lose their ink" in caption
    assert "keeps its ink for b." in caption and "Why is not tested here" in caption
