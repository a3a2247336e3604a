"""Where the DAE Markov chain has mixed: a burn-in chosen by a stated stationarity rule, and the
chain's samples drawn after it.

A fixed burn-in scored the chain in its transient: with as many chains as samples every sample
came from one step (55), while the committed traces kept drifting long after. Here a variant's
chains run a longer trace, cut into windows of ``window`` steps. In each window the thinned means
of P(X | X~) of every chain are scored on three statistics: the Fréchet distance to the test
split, the mean ink and the KL of the predicted-class histogram from the test split's. Each
statistic's standard error comes from a grouped jackknife over the chains (chains are
independent, the draws within one chain are not).

**The rule.** Two windows (or two pooled sets of windows) agree when every statistic differs
by at most ``z`` standard errors of the difference: a paired jackknife, as both come from the
same chains and their errors are correlated. ``z`` is the Bonferroni bound for a family-wise 5%
false alarm over every comparison the rule may make. The burn-in is the start of the earliest
window from which (1) every later window agrees with the trace's last window and (2) the first
and the second half of the windows after it agree (pooled, so a slow drift that no single pair
of windows resolves shows between the halves), on every seed of the variant. The chain is
called *mixed* when such a burn-in lies within the trace's first half. Stationary is not
correct: a chain stuck on a few attractors is stationary, and its sample metrics (class
coverage among them) say how far it is from the data.

**The samples.** ``chains`` chains (fewer than the samples asked for) from the same uniform start
and seed as the trace; after the burn-in each chain contributes a mean every ``thin`` steps until
as many samples as the reference row's images are drawn
(:func:`aebench.samplers.sample_chain`). A chain that did not mix is sampled after the end of
its trace, scored, and reported as not mixed; the report never ranks it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import t

from aebench.metrics.sample_quality import (
    FeatureStats,
    class_coverage,
    class_histogram_kl,
    feature_stats,
    frechet_distance_from_stats,
)
from aebench.models import Autoencoder
from aebench.noise import corrupt
from aebench.samplers import chain_step, draw_observation, reconstruction_mean
from aebench.stage_settings import JACKKNIFE_GROUPS, MixingConfig

STATISTICS = ("fd", "ink", "class_kl")  # what must agree between windows
FAMILY_WISE_ALPHA = 0.05  # false-alarm rate of the whole rule under stationarity


Featurize = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]  # images -> features, classes


@dataclass(frozen=True)
class Reference:
    """The test split as the window statistics see it."""

    stats: FeatureStats
    predictions: np.ndarray
    n_classes: int


@dataclass(frozen=True)
class Jackknifed:
    """:data:`STATISTICS` of a set of draws, and of the same set with each group of chains left
    out in turn (the same groups for every window of a run, so two windows' differences pair)."""

    full: np.ndarray  # (statistics,)
    left_out: np.ndarray  # (groups, statistics)

    def se(self) -> np.ndarray:
        g = len(self.left_out)
        spread = ((self.left_out - self.left_out.mean(axis=0)) ** 2).sum(axis=0)
        return np.sqrt((g - 1) / g * spread)

    def minus(self, other: Jackknifed) -> Jackknifed:
        """The difference of two sets' statistics, group by group: its jackknife standard
        error counts what the two share (the same chains), which their two errors apart do
        not."""
        return Jackknifed(self.full - other.full, self.left_out - other.left_out)


def jackknife(
    features: np.ndarray,
    predictions: np.ndarray,
    ink: np.ndarray,
    chain_of: np.ndarray,
    reference: Reference,
) -> Jackknifed:
    """``fd``, ``ink`` and ``class_kl`` of the draws, whole and with each of
    :data:`JACKKNIFE_GROUPS` groups of chains left out (``chain_of``: each draw's chain)."""

    def values(keep: np.ndarray) -> np.ndarray:
        fd = frechet_distance_from_stats(feature_stats(features[keep]), reference.stats)
        kl = class_histogram_kl(predictions[keep], reference.predictions, reference.n_classes)
        return np.array([fd, float(ink[keep].mean()), kl])

    groups = np.array_split(np.unique(chain_of), JACKKNIFE_GROUPS)
    left_out = np.stack([values(~np.isin(chain_of, group)) for group in groups])
    return Jackknifed(values(np.ones(len(chain_of), dtype=bool)), left_out)


def statistics_row(stats: Jackknifed, predictions: np.ndarray, n_classes: int) -> dict[str, float]:
    """``fd``, ``ink`` and ``class_kl`` with their jackknife standard errors (``<stat>_se``),
    and the draws' class coverage: a row of the trace CSV."""
    row = {name: float(v) for name, v in zip(STATISTICS, stats.full, strict=True)}
    row |= {f"{name}_se": float(e) for name, e in zip(STATISTICS, stats.se(), strict=True)}
    row["class_coverage"] = class_coverage(predictions, n_classes)
    return row


@dataclass(frozen=True)
class Window:
    """One window's draws: each draw's evaluator features, predicted class, ink and chain."""

    step: int  # the window's last step
    features: np.ndarray
    predictions: np.ndarray
    ink: np.ndarray
    chain_of: np.ndarray

    def jackknifed(self, reference: Reference) -> Jackknifed:
        return jackknife(self.features, self.predictions, self.ink, self.chain_of, reference)


def pooled(windows: Sequence[Window]) -> Window:
    """Several windows' draws as one (their chains keep their indices)."""
    return Window(
        windows[-1].step,
        np.concatenate([w.features for w in windows]),
        np.concatenate([w.predictions for w in windows]),
        np.concatenate([w.ink for w in windows]),
        np.concatenate([w.chain_of for w in windows]),
    )


@torch.no_grad()
def trace_windows(
    model: Autoencoder, featurize: Featurize, cfg: MixingConfig, seed: int
) -> list[Window]:
    """The trace's windows: the thinned means of P(X | X~) drawn in each, featurized. The
    chains start as :func:`aebench.samplers.sample_chain`'s do (same seed, same uniform draw),
    so the samples follow the same paths."""
    generator = torch.Generator().manual_seed(seed)
    state = torch.rand((cfg.chains, *model.image_shape), generator=generator)
    windows: list[Window] = []
    drawn: list[torch.Tensor] = []
    for step in range(1, cfg.trace_steps + 1):
        state, mean = chain_step(model, state, generator)
        if step % cfg.thin == 0:
            drawn.append(mean)
        if step % cfg.window == 0:
            images = torch.cat(drawn)  # draw-major: chain index = position % chains
            features, predictions = featurize(images)
            ink = images.flatten(1).mean(dim=1).double().numpy()
            chain_of = np.tile(np.arange(cfg.chains), len(drawn))
            windows.append(Window(step, features, predictions, ink, chain_of))
            drawn = []
    return windows


def agreement_z(n_comparisons: int, alpha: float = FAMILY_WISE_ALPHA) -> float:
    """The two-sided Bonferroni bound on |difference| / se: Student's t with one degree of
    freedom fewer than the jackknife groups, as each error is estimated from that many."""
    return float(t.isf(alpha / (2 * n_comparisons), JACKKNIFE_GROUPS - 1))


def agrees(a: Jackknifed, b: Jackknifed, z: float) -> bool:
    """Whether every statistic of ``a`` lies within ``z`` standard errors of ``b``'s, the
    error being the paired jackknife one of their difference (two sets with no spread agree
    only where they are equal)."""
    difference = a.minus(b)
    return bool((np.abs(difference.full) <= z * difference.se()).all())


@dataclass(frozen=True)
class Verdict:
    """The stationarity rule's outcome for one variant over its traced seeds."""

    burn_in: int  # steps before the first draw kept: the whole trace where it did not mix
    mixed: bool  # the rule held from a burn-in within the trace's first half, on every seed
    z: float  # the agreement bound used
    rows: dict[int, list[dict[str, float]]]  # seed -> per window, its statistics
    agreeing: dict[int, list[bool]]  # seed -> per window, whether it agrees with the last
    halves_agree: dict[int, bool]  # seed -> whether the halves after the burn-in agree


def _halves(windows: Sequence[Window]) -> tuple[Window, Window]:
    """The first and the last half of ``windows`` (the middle one left out of an odd count)."""
    half = len(windows) // 2
    return pooled(windows[:half]), pooled(windows[len(windows) - half :])


def comparisons(cfg: MixingConfig, seeds: int) -> int:
    """How many agreements the rule may test: every window against the last, and the halves
    after each candidate burn-in (0 to half the trace), per statistic and seed."""
    candidates = cfg.windows // 2 + 1
    return len(STATISTICS) * (cfg.windows - 1 + candidates) * seeds


def choose_burn_in(
    traces: dict[int, list[Window]], reference: Reference, cfg: MixingConfig
) -> Verdict:
    """The stationarity rule of the module docstring, applied to every seed's windows."""
    z = agreement_z(comparisons(cfg, len(traces)))
    stats = {seed: [w.jackknifed(reference) for w in windows] for seed, windows in traces.items()}
    rows = {
        seed: [
            {"step": w.step, **statistics_row(one, w.predictions, reference.n_classes)}
            for w, one in zip(traces[seed], jackknifed, strict=True)
        ]
        for seed, jackknifed in stats.items()
    }
    agreeing = {seed: [agrees(one, s[-1], z) for one in s] for seed, s in stats.items()}
    first = 0  # the earliest window from which every later window agrees, on every seed
    for flags in agreeing.values():
        for index in range(len(flags) - 1, -1, -1):
            if not flags[index]:
                first = max(first, index + 1)
                break
    halves_agree: dict[int, bool] = {}
    while first <= cfg.windows // 2:
        halves_agree = {
            seed: agrees(*(half.jackknifed(reference) for half in _halves(windows[first:])), z)
            for seed, windows in traces.items()
        }
        if all(halves_agree.values()):
            return Verdict(first * cfg.window, True, z, rows, agreeing, halves_agree)
        first += 1
    return Verdict(cfg.trace_steps, False, z, rows, agreeing, halves_agree)


def sampling_thin(cfg: MixingConfig, burn_in: int, n: int) -> int:
    """Steps between two draws of one chain for ``n`` samples: spread evenly over what is left
    of the trace after the burn-in (so successive draws of a chain are as far apart as the
    trace allows), a multiple of ``thin`` and never below it. Each chain must give at least two
    draws: with one, every sample would come from a single step of the chains."""
    if n < 2 * cfg.chains:
        raise ValueError(
            f"evaluate.chain.chains ({cfg.chains}) is too many for {n} samples: each chain must "
            f"give at least two draws, so at most {n // 2} chains"
        )
    per_chain = -(-n // cfg.chains)
    spread = (cfg.trace_steps - burn_in) // per_chain
    return max(cfg.thin, spread - spread % cfg.thin)


@torch.no_grad()
def state_mismatch(
    model: Autoencoder, images: torch.Tensor, seed: int, batch_size: int
) -> dict[str, float]:
    """What the chain's states cost the model: its denoising MSE (against the clean image) from
    the corrupted test image, and from a corrupted state drawn as the chain draws one (a
    Bernoulli binarisation for a Bernoulli decoder, a clipped Gaussian draw otherwise) with the
    test image as its mean. A model trained on grey levels and fed binary states pays the
    difference at every chain step."""
    noise = model.spec.noise
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    errors = {"grey": 0.0, "state": 0.0}
    for start in range(0, len(images), batch_size):
        clean = images[start : start + batch_size].cpu()
        inputs = {"grey": clean, "state": draw_observation(clean, model.spec, generator)}
        for name, x in inputs.items():
            corrupted = corrupt(x, noise.kind, noise.level, generator)
            mean = reconstruction_mean(model, corrupted.to(device), generator).cpu()
            errors[name] += float(((mean - clean) ** 2).flatten(1).mean(dim=1).sum())
    n = len(images)
    return {"denoise_mse_grey": errors["grey"] / n, "denoise_mse_state": errors["state"] / n}


__all__ = [
    "STATISTICS",
    "Jackknifed",
    "Reference",
    "Verdict",
    "Window",
    "agreement_z",
    "agrees",
    "choose_burn_in",
    "comparisons",
    "jackknife",
    "pooled",
    "sampling_thin",
    "state_mismatch",
    "statistics_row",
    "trace_windows",
]
