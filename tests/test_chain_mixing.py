"""The chain stage's stationarity rule, its standard errors and its samples, on cases whose answer
is known: a chain whose law is fixed from the first step, and window statistics with a planted
drift."""

import itertools
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
import torch

from aebench.chain_mixing import (
    Reference,
    Window,
    agreement_z,
    choose_burn_in,
    comparisons,
    jackknife,
    sampling_thin,
    state_mismatch,
    statistics_row,
    trace_windows,
)
from aebench.config import parse_params, variant_from_dict
from aebench.errors import ParamsError
from aebench.metrics.sample_quality import feature_stats
from aebench.models import build_model
from aebench.report.assemble import chain_trace_caption
from aebench.report.eligibility import unrankable
from aebench.report.stats import Evidence
from aebench.samplers import sample_chain
from aebench.spec import ChainConfig
from aebench.stage_settings import JACKKNIFE_GROUPS, MixingConfig, mixing_problem

SHAPE = (1, 8, 8)
CFG = MixingConfig(chains=40, thin=2, trace_steps=40, window=4)  # 10 windows of 2 draws


def _dae(raw_params: dict, bias: float = 1.0):
    """A DAE whose decoder ignores its code: P(pixel on) = sigmoid(bias) at every step, so the
    chain's law is known (and stationary) from the first step."""
    torch.manual_seed(0)
    spec = variant_from_dict({"name": "dae", **raw_params["variants"]["dae"]})
    model = build_model(spec, SHAPE).eval()
    last = [m for m in model.decoder if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.constant_(last.bias, bias)
    return model


class _DriftingFeatures:
    """Stand-in evaluator: i.i.d. normal features and uniform classes, shifted by ``drift(k)``
    in window k (counted from 1), so the stationarity rule's answer is known."""

    def __init__(self, drift, classes: int = 4, seed: int = 0):
        self.drift, self.classes, self.calls = drift, classes, 0
        self.rng = np.random.default_rng(seed)

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        features = self.rng.normal(size=(len(images), 3)) + self.drift(self.calls)
        return features, self.rng.integers(0, self.classes, len(images))


def _reference(classes: int = 4) -> Reference:
    rng = np.random.default_rng(1)
    return Reference(
        feature_stats(rng.normal(size=(2000, 3))), rng.integers(0, classes, 2000), classes
    )


def test_jackknife_se_of_a_mean_is_the_se_of_the_group_means():
    """For the ink (a mean over equal groups of chains) the grouped jackknife reduces exactly
    to the standard error of the group means."""
    rng = np.random.default_rng(2)
    chains, draws = 40, 3
    ink = rng.uniform(size=chains * draws)
    chain_of = np.tile(np.arange(chains), draws)
    classes = rng.integers(0, 4, len(ink))
    stats = jackknife(rng.normal(size=(len(ink), 3)), classes, ink, chain_of, _reference())
    row = statistics_row(stats, classes, 4)
    groups = np.array_split(np.arange(40), JACKKNIFE_GROUPS)
    group_means = [ink[np.isin(chain_of, g)].mean() for g in groups]
    assert row["ink"] == pytest.approx(ink.mean())
    expected = np.std(group_means, ddof=1) / np.sqrt(JACKKNIFE_GROUPS)
    assert row["ink_se"] == pytest.approx(expected)
    assert row["fd_se"] > 0 and row["class_kl_se"] > 0


def test_agreement_bound_is_the_bonferroni_t_quantile():
    """Student's t with groups - 1 degrees of freedom (each error is estimated from that many
    jackknife groups), at the Bonferroni level: above the normal quantile, and near it for the
    published 19-df table value (2.093 at two-sided 5%)."""
    assert agreement_z(1) == pytest.approx(2.093, abs=1e-3)
    assert agreement_z(45) > NormalDist().inv_cdf(1 - 0.05 / 90)
    assert agreement_z(45) == pytest.approx(3.837, abs=1e-3)


def test_a_stationary_trace_mixes_from_the_start():
    """No drift: every window agrees with the last, on every seed."""
    traces = {}
    for seed in (1, 2):
        traces[seed] = _trace(_DriftingFeatures(lambda k: 0.0, seed=seed))
    verdict = choose_burn_in(traces, _reference(), CFG)
    assert verdict.mixed and verdict.burn_in == 0
    assert all(all(flags) for flags in verdict.agreeing.values())


def test_the_rule_false_alarms_at_most_at_its_stated_rate():
    """Under stationarity (chains that keep their own ink, noisy draws, nothing drifting) the
    rule sets a burn-in above 0 in at most 5% of traces, by its bound; 200 traces of one seed:
    a rate of 5% would exceed 19 with probability about 1%. With 3 seeds it may not call more
    than 5% of 40 variants unmixed either (at most 5 of 40)."""
    alarms = sum(
        choose_burn_in({0: _persistent_chains(0.0, 100 + i)}, _reference(), CFG).burn_in > 0
        for i in range(200)
    )
    assert alarms <= 19
    unmixed = sum(
        not choose_burn_in(
            {s: _persistent_chains(0.0, 1000 + 3 * i + s) for s in range(3)}, _reference(), CFG
        ).mixed
        for i in range(40)
    )
    assert unmixed <= 5


def test_a_planted_transient_sets_the_burn_in_on_the_slowest_seed():
    """Seed 0 drifts for 2 windows, seed 1 for 4: the burn-in is 4 windows, on every seed."""
    traces = {}
    for seed, transient in ((0, 2), (1, 4)):
        features = _DriftingFeatures(lambda k, t=transient: 5.0 * max(t - k + 1, 0))
        traces[seed] = _trace(features)
    verdict = choose_burn_in(traces, _reference(), CFG)
    assert verdict.burn_in == 4 * CFG.window and verdict.mixed
    assert verdict.agreeing[0][:3] == [False, False, True]
    assert verdict.agreeing[1][:5] == [False, False, False, False, True]


def test_a_chain_drifting_past_the_midpoint_did_not_mix():
    features = _DriftingFeatures(lambda k: 0.5 * k)  # a drift that never stops
    verdict = choose_burn_in({0: _trace(features)}, _reference(), CFG)
    assert not verdict.mixed and verdict.burn_in > CFG.trace_steps // 2


def _window(features: _DriftingFeatures, k: int, ink: float = 0.3) -> Window:
    draws = CFG.window // CFG.thin
    chain_of = np.tile(np.arange(CFG.chains), draws)
    feats, classes = features(torch.zeros(len(chain_of)))
    return Window(k * CFG.window, feats, classes, np.full(len(chain_of), ink), chain_of)


def _trace(features: _DriftingFeatures) -> list[Window]:
    return [_window(features, k) for k in range(1, CFG.windows + 1)]


def test_trace_scores_the_draws_the_sampler_returns(raw_params):
    """The trace's chains are the sampler's: the first window holds exactly the means that
    sample_chain keeps with no burn-in (same seed, same uniform start, same thinning)."""
    torch.manual_seed(0)
    spec = variant_from_dict({"name": "dae", **raw_params["variants"]["dae"]})
    model = build_model(spec, SHAPE).eval()  # untrained: its means vary with the state
    seen: list[torch.Tensor] = []

    def featurize(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        seen.append(images.clone())
        flat = images.flatten(1).double().numpy()
        return flat[:, :3], (flat[:, 0] > 0.5).astype(np.int64)

    windows = trace_windows(model, featurize, CFG, seed=3)
    draws = CFG.window // CFG.thin
    kept = sample_chain(model, CFG.chains * draws, ChainConfig(CFG.chains, 0, CFG.thin), seed=3)
    assert torch.equal(seen[0], kept)
    assert [w.step for w in windows] == list(range(CFG.window, CFG.trace_steps + 1, CFG.window))
    assert first_ink(windows[0]) == pytest.approx(float(kept.double().mean()))
    # the second window holds the draws after one window of burn-in, and only those
    after = sample_chain(
        model, CFG.chains * draws, ChainConfig(CFG.chains, CFG.window, CFG.thin), seed=3
    )
    assert torch.equal(seen[1], after)


def first_ink(window: Window) -> float:
    return float(window.ink.mean())


def test_a_chain_with_a_known_law_mixes_and_keeps_its_ink(raw_params):
    """Constant logits: every mean is sigmoid(1) from the first step, so every window's ink is
    exactly that, with no spread, and the chain mixes with no burn-in."""
    model = _dae(raw_params)
    p = float(torch.sigmoid(torch.tensor(1.0)))

    def featurize(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(len(images))
        return rng.normal(size=(len(images), 3)), rng.integers(0, 4, len(images))

    windows = trace_windows(model, featurize, CFG, seed=0)
    verdict = choose_burn_in({0: windows}, _reference(), CFG)
    rows = verdict.rows[0]
    assert all(r["ink"] == pytest.approx(p) and r["ink_se"] == pytest.approx(0) for r in rows)
    assert verdict.mixed and verdict.burn_in == 0


def test_state_mismatch_of_a_constant_decoder_is_the_same_for_both_inputs(raw_params):
    """A decoder that ignores its input pays the same MSE whatever it is fed: the known answer
    is the mean of (sigmoid(1) - x)^2 over the test images."""
    model = _dae(raw_params)
    images = torch.rand((30, *SHAPE), generator=torch.Generator().manual_seed(5))
    p = torch.sigmoid(torch.tensor(1.0))
    expected = float(((p - images) ** 2).mean())
    mismatch = state_mismatch(model, images, seed=0, batch_size=7)
    assert mismatch["denoise_mse_grey"] == pytest.approx(expected, rel=1e-5)
    assert mismatch["denoise_mse_state"] == pytest.approx(expected, rel=1e-5)


def test_state_mismatch_of_an_identity_denoiser_fed_binary_states(raw_params):
    """A stand-in model that returns its corrupted input, under masking with probability q:
    from grey x it pays q x^2 per pixel; from a Bernoulli(x) state b it pays
    (1 - q) x(1 - x) + q x^2, the binarisation's variance where the pixel is kept."""
    model = _dae(raw_params)
    q = model.spec.noise.level
    model.decode = lambda z: torch.logit(z.clamp(1e-7, 1 - 1e-7))
    model.encode = lambda x: x
    images = torch.rand((400, *SHAPE), generator=torch.Generator().manual_seed(6))
    mismatch = state_mismatch(model, images, seed=0, batch_size=100)
    x = images.double()
    assert mismatch["denoise_mse_grey"] == pytest.approx(float((q * x**2).mean()), rel=0.03)
    expected = float(((1 - q) * x * (1 - x) + q * x**2).mean())
    assert mismatch["denoise_mse_state"] == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize(
    ("chain", "key"),
    [
        ({"window": 7}, "window"),
        ({"trace_steps": 250}, "trace_steps"),
        ({"trace_steps": 300}, "trace_steps"),
        ({"chains": 10}, "chains"),
    ],
)
def test_chain_settings_that_do_not_fit_are_refused_by_name(raw_params, chain, key):
    raw_params["evaluate"] = {"chain": chain}
    with pytest.raises(ParamsError, match=rf"evaluate\.chain\.{key}"):
        parse_params(raw_params)
    assert mixing_problem(**{**vars(MixingConfig()), **chain})[0] == key


def test_caption_says_which_chains_mixed_and_where():
    rows = []
    for (variant, mixed, burn_in), seed, step in itertools.product(
        (("a", True, 300), ("b", False, 1000)), (0, 1), (500, 1000)
    ):
        ink = 0.12 if variant == "a" else 0.01
        rows.append(
            {"variant": variant, "seed": seed, "step": step, "class_coverage": 0.9, "ink": ink}
            | {"fd": 1.0, "burn_in": burn_in, "mixed": mixed, "z": 3.1}
        )
    caption = chain_trace_caption(pd.DataFrame(rows).assign(test_mean_intensity=0.13))
    assert "a: mixed after 300 steps; last window 9/10 classes, ink 0.120 (2 seeds)" in caption
    assert "b: did not mix in 1000 steps (not ranked)" in caption
    assert "z = 3.10 standard errors of the difference" in caption


def test_a_chain_that_did_not_mix_is_never_ranked_on_its_chain_metrics():
    """Its chain metrics are shown, never bolded; its other samplers' are ranked as usual."""
    rows = [
        {"dataset": "d", "variant": v, "seed": s, "chain_mixed": float(mixed)}
        | {"sample_chain_fd": 1.0, "sample_chain_class_coverage": 0.9, "sample_gmm_fd": 2.0}
        for v, s, mixed in (("a", 0, 1), ("a", 1, 1), ("b", 0, 1), ("b", 1, 0))
    ]
    evidence = Evidence(pd.DataFrame(rows))
    assert unrankable(evidence, "d", "sample_chain_fd") == {
        "b": "its chain did not mix by the stationarity rule"
    }
    assert unrankable(evidence, "d", "sample_gmm_fd") == {}


def _persistent_chains(drift: float, seed: int, step_at: int | None = None) -> list[Window]:
    """Each chain keeps its own ink (uniform in 0.05-0.3) for the whole trace, as real chains
    keep their class and stroke width, each draw adding noise (sd 0.02); ``drift`` per window
    moves every chain's ink alike (the seed-0 `dae_gaussian` trace on mnist5k rose from 0.012
    to 0.018 this way), or, with ``step_at``, once from that window index on."""
    rng = np.random.default_rng(seed)
    own_ink = rng.uniform(0.05, 0.3, CFG.chains)
    chain_of = np.tile(np.arange(CFG.chains), CFG.window // CFG.thin)
    windows = []
    for k in range(1, CFG.windows + 1):
        features = rng.normal(size=(len(chain_of), 3))
        classes = rng.integers(0, 4, len(chain_of))
        shift = drift * k if step_at is None else drift * (k - 1 >= step_at)
        ink = own_ink[chain_of] + shift + rng.normal(size=len(chain_of)) * 0.02
        windows.append(Window(k * CFG.window, features, classes, ink, chain_of))
    return windows


def test_a_drift_hidden_by_persistent_chains_is_caught_by_pairing():
    """An ink drift of 0.005 per window is inside each window's own error (the chains'
    own inks dominate it), so windows compared as independent samples agree; paired over the
    same chains they do not, and the chain is not called mixed. Without the drift it is."""
    windows = _persistent_chains(0.005, seed=0)
    first, last = (
        statistics_row(w.jackknifed(_reference()), w.predictions, 4)
        for w in (windows[0], windows[-1])
    )
    z = agreement_z(comparisons(CFG, 1))
    assert abs(first["ink"] - last["ink"]) < z * math.hypot(first["ink_se"], last["ink_se"])
    assert not choose_burn_in({0: windows}, _reference(), CFG).mixed
    assert choose_burn_in({0: _persistent_chains(0.0, seed=0)}, _reference(), CFG).mixed


def test_a_shift_too_small_for_any_window_is_caught_between_the_halves():
    """Ink steps up by 0.008 at the trace's midpoint: no single window resolves it against the
    last, the pooled halves do, so the burn-in moves past the first windows (without the halves
    check it would be 0)."""
    windows = _persistent_chains(0.008, seed=3, step_at=CFG.windows // 2)
    verdict = choose_burn_in({0: windows}, _reference(), CFG)
    assert all(verdict.agreeing[0])
    assert verdict.mixed and verdict.burn_in > 0


def test_sampling_spreads_each_chains_draws_over_the_rest_of_the_trace():
    """40 chains, 80 samples: 2 draws per chain, over the 20 steps after a burn-in of 20 (10
    apart); after a whole trace (not mixed) or with many draws, every thin (2) steps."""
    assert sampling_thin(CFG, burn_in=20, n=80) == 10
    assert sampling_thin(CFG, burn_in=0, n=80) == 20
    assert sampling_thin(CFG, burn_in=40, n=80) == 2
    assert sampling_thin(CFG, burn_in=20, n=400) == 2
    assert sampling_thin(CFG, burn_in=10, n=81) == 10  # 3 per chain: 30 // 3, a multiple of 2


def test_a_chain_never_gives_all_its_samples_from_one_step():
    """As many chains as samples would take every sample at one step (the old sampler's flaw):
    refused, naming the setting and the largest count allowed."""
    with pytest.raises(ValueError, match=r"evaluate\.chain\.chains \(40\) .* at most 39 chains"):
        sampling_thin(CFG, burn_in=0, n=79)
    assert sampling_thin(CFG, burn_in=0, n=80) == 20
