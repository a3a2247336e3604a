"""Sample-quality estimators against closed forms, hand-worked cases and reference packages."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from aebench.metrics import sample_quality as sq
from aebench.metrics.sample_quality import (
    FeatureStats,
    class_coverage,
    class_histogram_kl,
    copy_rate,
    feature_stats,
    frechet_distance,
    frechet_distance_from_stats,
    nearest_distances,
    precision_recall_density_coverage,
)


def _random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q


def _samples_with_exact_moments(
    rng: np.random.Generator, n: int, mu: np.ndarray, cov: np.ndarray
) -> np.ndarray:
    """n points whose sample mean and (ddof=1) covariance are exactly mu and cov."""
    z = rng.normal(size=(n, len(mu)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample cov = I
    return z @ np.linalg.cholesky(cov).T + mu


def _fd_via_symmetric_eigs(mu_a, cov_a, mu_b, cov_b) -> float:
    """Independent route: Tr((Ca Cb)^1/2) = sum sqrt(eig(Ca^1/2 Cb Ca^1/2)), all symmetric PSD."""
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eigs = np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(eigs).sum())


# --- Fréchet distance -------------------------------------------------------------------------


def test_fd_diagonal_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    var_a, var_b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    got = frechet_distance_from_stats((mu_a, np.diag(var_a)), (mu_b, np.diag(var_b)))
    assert got == pytest.approx(expected, rel=1e-10)


def test_fd_commuting_covariances_from_exact_samples() -> None:
    # C_a = Q diag(a) Q^T, C_b = Q diag(b) Q^T commute, so FD = |dmu|^2 + sum (sqrt a - sqrt b)^2.
    rng = np.random.default_rng(1)
    dim = 5
    q = _random_rotation(rng, dim)
    var_a, var_b = rng.uniform(0.2, 4, size=dim), rng.uniform(0.2, 4, size=dim)
    mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim) + 1
    feats_a = _samples_with_exact_moments(rng, 400, mu_a, q @ np.diag(var_a) @ q.T)
    feats_b = _samples_with_exact_moments(rng, 300, mu_b, q @ np.diag(var_b) @ q.T)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(feats_a, feats_b) == pytest.approx(expected, rel=1e-8)


def test_fd_identical_sets_is_zero() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(500, 32)) @ rng.normal(size=(32, 32))
    scale = np.trace(np.cov(feats, rowvar=False))
    assert 0.0 <= frechet_distance(feats, feats) <= 1e-9 * scale


def test_fd_general_covariances_match_symmetric_eigen_route() -> None:
    rng = np.random.default_rng(3)
    dim = 20
    mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim)
    cov_a, cov_b = _random_spd(rng, dim), _random_spd(rng, dim)
    got = frechet_distance_from_stats(FeatureStats(mu_a, cov_a), FeatureStats(mu_b, cov_b))
    assert got == pytest.approx(_fd_via_symmetric_eigs(mu_a, cov_a, mu_b, cov_b), rel=1e-9)


@pytest.mark.parametrize(("n_a", "n_b", "dim"), [(2000, 1500, 16), (40, 30, 64)])
def test_fd_matches_pytorch_fid(n_a: int, n_b: int, dim: int) -> None:
    # The second case has fewer samples than dimensions: both covariances are singular.
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(4)
    feats_a = rng.normal(size=(n_a, dim)) @ rng.normal(size=(dim, dim))
    feats_b = rng.normal(size=(n_b, dim)) * 1.3 + 0.2
    stats_a, stats_b = feature_stats(feats_a), feature_stats(feats_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its sqrtm(disp=False) call is deprecated in scipy 1.16+
        ref = fid_score.calculate_frechet_distance(*stats_a, *stats_b)
    got = frechet_distance_from_stats(stats_a, stats_b)
    assert got == pytest.approx(ref, rel=1e-7)
    assert got == pytest.approx(_fd_via_symmetric_eigs(*stats_a, *stats_b), rel=1e-6)


def test_fd_retries_with_eps_when_sqrtm_is_not_finite(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sqrtm = sq.scipy.linalg.sqrtm
    calls = []

    def flaky_sqrtm(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(sq.scipy.linalg, "sqrtm", flaky_sqrtm)
    var_a, var_b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    got = frechet_distance_from_stats((np.zeros(2), np.diag(var_a)), (np.zeros(2), np.diag(var_b)))
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], np.diag((var_a + 1e-6) * (var_b + 1e-6)))
    assert got == pytest.approx((1 - 3) ** 2 + (2 - 1) ** 2, abs=1e-5)


def test_fd_raises_on_large_imaginary_part(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sq.scipy.linalg, "sqrtm", lambda a: a + 0.5j * np.eye(len(a)))
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance_from_stats((np.zeros(2), np.eye(2)), (np.zeros(2), np.eye(2)))


def test_fd_drops_negligible_imaginary_part(monkeypatch: pytest.MonkeyPatch) -> None:
    # Elementwise sqrt is the matrix square root for diagonal matrices; add round-off-sized 1e-9j.
    monkeypatch.setattr(sq.scipy.linalg, "sqrtm", lambda a: np.sqrt(a) + 1e-9j * np.eye(len(a)))
    # Tr(I) + Tr(4I) - 2 Tr(sqrt(4I)) = 2 + 8 - 8 = 2
    got = frechet_distance_from_stats((np.zeros(2), np.eye(2)), (np.zeros(2), 4 * np.eye(2)))
    assert isinstance(got, float)
    assert got == pytest.approx(2.0)


def test_fd_input_validation() -> None:
    with pytest.raises(ValueError):
        feature_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((5, 3)) + np.arange(5)[:, None], np.ones((5, 4)))


# --- precision / recall / density / coverage --------------------------------------------------

REAL_1D = np.array([[0.0], [1.0], [3.0], [6.0]])


@pytest.mark.parametrize(
    ("fake", "k_pr", "k_dc", "expected"),
    [
        # k=1 radii: real [1, 1, 2, 3]; fake [0.5, 2.5, 10, 11] -> [2, 2, 1, 1].
        # precision: 0.5 and 2.5 lie in real balls, 10 and 11 do not (6 + 3 < 10)    -> 2/4
        # recall: 0, 1, 3 lie within 2 of 0.5 or 2.5; 6 is 3.5 / 4 / 5 away          -> 3/4
        # density: 0.5 in balls of 0 and 1, 2.5 in ball of 3, others in none: 3 / (1 * 4)
        # coverage: nearest fakes of 0, 1, 3 are 0.5 away; 6's is 3.5 >= 3            -> 3/4
        ([0.5, 2.5, 10.0, 11.0], 1, 1, (0.5, 0.75, 0.75, 0.75)),
        # k=1 (PR) radii as above; fake [0.5, 0.9, 12, 13] -> [0.4, 0.4, 1, 1].
        # precision: 0.5 (in ball of 0) and 0.9 (in ball of 1)                          -> 2/4
        # recall: only real 1 is within 0.4 of a fake (0.9)                             -> 1/4
        # k=2 (DC) radii: real [3, 2, 3, 5]. density: 0.5 in balls of 0, 1, 3; 0.9 in balls of
        # 0, 1, 3 (2.1 < 3); 12 and 13 are >= 6 from 6: 6 / (2 * 4) = 0.75
        # coverage: 0, 1, 3 have a fake within their radius; 6's nearest is 5.1 >= 5   -> 3/4
        ([0.5, 0.9, 12.0, 13.0], 1, 2, (0.5, 0.25, 0.75, 0.75)),
    ],
)
def test_prdc_hand_computed(fake, k_pr, k_dc, expected) -> None:
    got = precision_recall_density_coverage(REAL_1D, np.array(fake)[:, None], k_pr, k_dc)
    assert (got["precision"], got["recall"], got["density"], got["coverage"]) == pytest.approx(
        expected, abs=1e-12
    )


def test_prdc_identical_sets() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(400, 10))
    fake = real[rng.permutation(len(real))]  # same points, other order, other array
    got = precision_recall_density_coverage(real, fake)
    # density counts, per real ball, the k other points strictly inside + the point itself,
    # minus the k-th neighbour on the edge: exactly k per ball, so exactly 1 overall.
    assert got == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_prdc_disjoint_far_apart_sets() -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(200, 8))
    fake = rng.normal(size=(150, 8)) + 100.0
    got = precision_recall_density_coverage(real, fake)
    assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_matches_reference_package() -> None:
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(7)
    real = rng.normal(size=(600, 16))
    fake = rng.normal(size=(500, 16)) * 1.2 + 0.3
    got = precision_recall_density_coverage(real, fake, k_pr=3, k_dc=5)
    ref_pr = prdc.compute_prdc(real, fake, nearest_k=3)
    ref_dc = prdc.compute_prdc(real, fake, nearest_k=5)
    expected = {
        "precision": ref_pr["precision"],
        "recall": ref_pr["recall"],
        "density": ref_dc["density"],
        "coverage": ref_dc["coverage"],
    }
    assert min(expected.values()) > 0.05 and max(expected.values()) < 0.99  # not a trivial case
    assert got == pytest.approx(expected, abs=1e-12)


def test_prdc_blocking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    real = rng.normal(size=(103, 4))
    fake = rng.normal(size=(97, 4)) + 0.5
    whole = precision_recall_density_coverage(real, fake)
    monkeypatch.setattr(sq, "DISTANCE_BLOCK_ELEMENTS", 7 * len(fake))  # 7-row blocks, ragged end
    assert precision_recall_density_coverage(real, fake) == whole


def test_prdc_rejects_k_too_large() -> None:
    with pytest.raises(ValueError):
        precision_recall_density_coverage(np.zeros((5, 2)), np.ones((10, 2)), k_pr=3, k_dc=5)


# --- class-label checks -----------------------------------------------------------------------


def test_class_coverage_hand_computed() -> None:
    labels = np.array([0] * 50 + [1] * 49 + [2] * 1)  # shares 0.50, 0.49, 0.01, 0.00
    assert class_coverage(labels, n_classes=4, min_share=0.01) == 0.75  # 0.01 counts (>=)
    assert class_coverage(labels, n_classes=4, min_share=0.02) == 0.5
    assert class_coverage(np.arange(10), n_classes=10) == 1.0


def test_class_histogram_kl_hand_computed() -> None:
    fake = np.array([0, 0, 1, 1])  # P = (1/2, 1/2)
    real = np.array([0, 1, 1, 1])  # Q = (1/4, 3/4)
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert class_histogram_kl(fake, real, n_classes=2, eps=0.0) == pytest.approx(expected)
    assert class_histogram_kl(fake, real, n_classes=2) == pytest.approx(expected, abs=1e-5)
    assert class_histogram_kl(real, real, n_classes=2) == pytest.approx(0.0, abs=1e-15)


def test_class_histogram_kl_direction_is_samples_from_test() -> None:
    # KL(P_fake || P_real) is finite (ln 2) when the samples cover only part of the test
    # histogram; the reverse direction would be infinite.
    fake = np.zeros(6, dtype=int)
    real = np.array([0, 1, 0, 1])
    assert class_histogram_kl(fake, real, n_classes=2, eps=0.0) == pytest.approx(math.log(2))
    assert class_histogram_kl(real, fake, n_classes=2, eps=0.0) == math.inf


def test_class_histogram_kl_smoothing_keeps_it_finite() -> None:
    # P = (1, 0), Q = (0, 1) smoothed to ((1+e)/(1+2e), e/(1+2e)) and its mirror image:
    # KL = ln((1 + e) / e) / (1 + 2e).
    eps = 1e-6
    got = class_histogram_kl(np.array([0, 0]), np.array([1, 1, 1]), n_classes=2, eps=eps)
    assert got == pytest.approx(math.log((1 + eps) / eps) / (1 + 2 * eps), rel=1e-9)


def test_class_label_validation() -> None:
    with pytest.raises(ValueError):
        class_coverage(np.array([0, 3]), n_classes=3)
    with pytest.raises(ValueError):
        class_histogram_kl(np.array([0.0, 1.0]), np.array([0, 1]), n_classes=2)


# --- memorisation -----------------------------------------------------------------------------


def test_nearest_distances_hand_computed() -> None:
    train = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
    queries = np.array([[0.0, 0.0], [6.0, 8.0], [10.0, 1.0], [1e6, 0.0]])
    np.testing.assert_allclose(nearest_distances(train, queries), [0.0, 5.0, 1.0, 1e6 - 10.0])


def _train_and_held_out(dim: int = 8) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    return rng, rng.normal(size=(3000, dim)) + 5.0, rng.normal(size=(1000, dim)) + 5.0


def test_copy_rate_of_exact_copies_of_train_points_is_one() -> None:
    rng, train, held_out = _train_and_held_out()
    copies = train[rng.choice(len(train), 500)]
    assert copy_rate(train, held_out, copies) == 1.0


def test_copy_rate_of_the_held_out_set_itself_is_the_quantile() -> None:
    """1000 distinct distances: the 5% quantile lies between the 50th and 51st smallest
    (linear interpolation at index 49.95), so exactly 50 of them, 5%, are strictly below it."""
    _, train, held_out = _train_and_held_out()
    assert copy_rate(train, held_out, held_out) == 0.05
    assert copy_rate(train, held_out, held_out, quantile=0.2) == 0.2


def test_copy_rate_of_fresh_draws_from_the_data_distribution_is_about_the_quantile() -> None:
    """New draws are as close to train as held-out ones: about 5%. Binomial noise of 2000
    samples (std 0.005) plus that of the threshold's quantile from 1000 points (0.007)."""
    rng, train, held_out = _train_and_held_out()
    fresh = rng.normal(size=(2000, 8)) + 5.0
    assert copy_rate(train, held_out, fresh) == pytest.approx(0.05, abs=0.03)
    # half copies, half fresh draws: 0.5 + 0.5 * 0.05
    mixed = np.concatenate([train[:1000], fresh[:1000]])
    assert copy_rate(train, held_out, mixed) == pytest.approx(0.525, abs=0.03)
    assert copy_rate(train, held_out, fresh + 100.0) == 0.0  # far from everything


def test_copy_rate_validation() -> None:
    _, train, held_out = _train_and_held_out()
    with pytest.raises(ValueError, match="quantile"):
        copy_rate(train, held_out, held_out, quantile=0.0)
    with pytest.raises(ValueError, match="feature sizes"):
        copy_rate(train, held_out, held_out[:, :3])
