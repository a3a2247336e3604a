"""Known answers for the report's intervals: seed part + paired test-set part, Holm, ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aebench.report.glossary import describe
from aebench.report.intervals import (
    Sample,
    difference,
    difference_from_moments,
    holm,
    interval_text,
    signed_text,
    welch_satterthwaite,
)
from aebench.report.stats import rank, toward_target


def test_interval_equals_a_hand_computation():
    # A: seeds 1, 2, 3 (mean 2, s² = 1); B: seeds 0.5, 1.5 (mean 1, s² = 0.5); N = 4 images.
    a = Sample(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.5, 1.0, 3.0]))
    b = Sample(np.array([0.5, 1.5]), np.array([0.5, 1.5, 0.5, 1.5]))
    diff = difference(a, b)
    # d = 1, 1, 0.5, 1.5: var(d) = 0.5 / 3, so the test-set part is (1/6) / 4 = 1/24.
    seed_a, seed_b, images = 1 / 3, 0.5 / 2, 1 / 24
    variance = seed_a + seed_b + images
    assert variance == pytest.approx(15 / 24)
    dof = variance**2 / (seed_a**2 / 2 + seed_b**2 / 1 + images**2 / 3)
    half = stats.t.ppf(0.975, dof) * math.sqrt(variance)
    assert diff.estimate == pytest.approx(1.0)
    assert diff.seed_var == pytest.approx(seed_a + seed_b)
    assert diff.image_var == pytest.approx(images)
    assert diff.dof == pytest.approx(dof)
    assert (diff.low, diff.high) == pytest.approx((1.0 - half, 1.0 + half))
    assert diff.p == pytest.approx(2 * stats.t.sf(1.0 / math.sqrt(variance), dof))
    assert diff.covers_images and diff.n_images == 4


def test_seed_part_alone_without_per_image_values():
    a = Sample(np.array([1.0, 2.0, 3.0]))
    b = Sample(np.array([0.5, 1.5]), np.array([0.5, 1.5, 0.5, 1.5]))  # one side has no images
    diff = difference(a, b)
    variance = 1 / 3 + 0.25
    dof = variance**2 / ((1 / 3) ** 2 / 2 + 0.25**2 / 1)
    assert diff.image_var is None and not diff.covers_images
    assert diff.dof == pytest.approx(dof)
    assert diff.high - diff.estimate == pytest.approx(stats.t.ppf(0.975, dof) * variance**0.5)


def _correlated(rng: np.random.Generator, n_images: int = 200) -> tuple[Sample, Sample]:
    """Two models that find the same images hard: per-image values move together, A is 0.01
    higher everywhere, and the seeds barely differ."""
    base = rng.uniform(0.0, 1.0, n_images)  # image difficulty: a large image-to-image variance
    a_images = base + 0.01 + rng.normal(0, 0.001, n_images)
    b_images = base + rng.normal(0, 0.001, n_images)
    a = Sample(a_images.mean() + np.array([-1e-4, 0.0, 1e-4]), a_images)
    b = Sample(b_images.mean() + np.array([-1e-4, 0.0, 1e-4]), b_images)
    return a, b


def test_pairing_over_images_is_what_resolves_a_consistent_gap():
    """Fails if the test-set part ignores the pairing (var(A)/N + var(B)/N instead of
    var(A − B)/N): that interval is wide enough to span 0 here."""
    a, b = _correlated(np.random.default_rng(0))
    paired = difference(a, b)
    n = len(a.images)
    unpaired_var = paired.seed_var + np.var(a.images, ddof=1) / n + np.var(b.images, ddof=1) / n
    unpaired_half = stats.t.ppf(0.975, n - 1) * math.sqrt(unpaired_var)
    assert paired.estimate == pytest.approx(0.01, abs=5e-4)
    assert paired.excludes_zero and paired.low > 0.009
    assert abs(paired.estimate) < unpaired_half  # unpaired: not resolved
    assert (paired.high - paired.low) / 2 < unpaired_half / 20


def test_a_constant_offset_over_images_and_seeds_is_resolved():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, (3, 50))  # B: three seeds × 50 images
    seeds = images.mean(axis=1)
    a = Sample(seeds + 0.2, images.mean(axis=0) + 0.2)
    b = Sample(seeds, images.mean(axis=0))
    diff = difference(a, b)
    assert diff.image_var == pytest.approx(0.0, abs=1e-20)  # d_i = 0.2 for every image
    seed_part = 2 * np.var(seeds, ddof=1) / 3
    half = stats.t.ppf(0.975, 4) * math.sqrt(seed_part)  # Welch–Satterthwaite: 2(n − 1) = 4
    assert diff.dof == pytest.approx(4.0)
    assert (diff.low, diff.high) == pytest.approx((0.2 - half, 0.2 + half))
    assert diff.excludes_zero


def test_identical_seeds_and_images_give_an_exact_difference():
    a = Sample(np.full(3, 1.5), np.full(10, 1.5))
    b = Sample(np.full(3, 1.0), np.full(10, 1.0))
    diff = difference(a, b)
    assert (diff.low, diff.high, diff.p) == (0.5, 0.5, 0.0)
    assert diff.dof == math.inf
    same = difference(b, b)
    assert not same.excludes_zero and same.p == 1.0


def test_one_seed_claims_no_interval():
    diff = difference(Sample(np.array([1.0]), np.ones(5)), Sample(np.array([0.5, 0.7])))
    assert not diff.resolvable and not diff.excludes_zero
    assert diff.low is None and diff.p is None
    assert signed_text(diff) == "+0.4: not resolved with 1 seed"
    assert interval_text(diff) == ""


def test_text_shows_two_significant_digits_of_the_half_width():
    diff = difference_from_moments(0.001, 1e-8, 3, 0.0, 1e-8, 3)
    assert diff.high - diff.estimate == pytest.approx(0.0002267, rel=1e-3)
    assert signed_text(diff) == "+0.00100 (95% CI 0.00077 to 0.00123)"
    negative = diff.negated()
    assert signed_text(negative) == "−0.00100 (95% CI −0.00123 to −0.00077)"


def test_a_small_estimate_keeps_a_significant_digit():
    diff = difference_from_moments(0.04, 0.2, 3, 0.0, 0.2, 3)
    assert signed_text(diff) == "+0.04 (95% CI −1.0 to 1.1)"  # not "+0.0"


def test_welch_satterthwaite_ignores_zero_components():
    assert welch_satterthwaite([(1.0, 2), (0.0, 5)]) == pytest.approx(2.0)
    assert welch_satterthwaite([(0.0, 2)]) == math.inf
    assert welch_satterthwaite([(1.0, 2), (1.0, 2)]) == pytest.approx(4.0)


def test_holm_known_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])  # capped at 1, monotone
    assert holm([]) == []


def test_density_is_ranked_by_its_distance_from_one_not_upward():
    density = describe("sample_gmm_density")
    samples = {
        "crowded": Sample(np.array([1.5, 1.55, 1.6])),  # the largest: must not win
        "matched": Sample(np.array([1.02, 0.98, 1.01])),
        "sparse": Sample(np.array([0.6, 0.62, 0.58])),
    }
    ranking = rank(samples, density)
    assert ranking.best == "matched"
    # differences are distances from 1, variant − best: 0.55 − 0.0033 and 0.4 − 0.0033
    assert ranking.differences["crowded"].estimate == pytest.approx(0.55 - 0.01 / 3)
    assert ranking.differences["sparse"].estimate == pytest.approx(0.4 - 0.01 / 3)
    assert ranking.unresolved == set()


def test_reflection_keeps_the_spread_and_the_pairing():
    sample = Sample(np.array([0.7, 0.8, 0.9]), np.array([0.6, 0.8, 1.0]))
    reflected = toward_target(sample, 1.0)
    assert reflected.mean == pytest.approx(0.2)
    assert np.var(reflected.seeds, ddof=1) == pytest.approx(np.var(sample.seeds, ddof=1))
    assert reflected.images == pytest.approx([0.4, 0.2, 0.0])


@pytest.mark.parametrize(
    ("higher", "values", "best"),
    [(False, (0.1, 0.2), "a"), (True, (0.1, 0.2), "b")],
)
def test_rank_follows_the_direction_and_reads_variant_minus_best(higher, values, best):
    key = "recon_ssim" if higher else "recon_mse"
    samples = {
        "a": Sample(np.array([values[0] - 0.01, values[0], values[0] + 0.01])),
        "b": Sample(np.array([values[1] - 0.01, values[1], values[1] + 0.01])),
    }
    ranking = rank(samples, describe(key))
    other = "b" if best == "a" else "a"
    assert ranking.best == best
    expected = samples[other].mean - samples[best].mean
    assert ranking.differences[other].estimate == pytest.approx(expected)


def test_unranked_metrics_have_no_best():
    samples = {"a": Sample(np.array([0.1, 0.2])), "b": Sample(np.array([0.3, 0.4]))}
    for key in ("sample_gmm_copy_rate", "robust_masking_mse_degradation", "parameters"):
        assert rank(samples, describe(key)).best is None


def test_a_column_where_every_run_ties_is_not_ranked():
    from aebench.report.glossary import describe
    from aebench.report.stats import rank

    everywhere_one = {v: Sample(np.ones(3)) for v in ("a", "b", "c")}
    ranking = rank(everywhere_one, describe("sample_gmm_class_coverage"))
    assert ranking.best is None and ranking.unresolved == set()
    one_differs = dict(everywhere_one, c=Sample(np.array([1.0, 0.9, 1.0])))
    assert rank(one_differs, describe("sample_gmm_class_coverage")).best == "a"
