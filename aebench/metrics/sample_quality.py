"""Sample-quality estimators computed in a feature space (float64 arrays of shape N x D).

Fréchet distance (Heusel et al. 2017), precision/recall (Kynkäänniemi et al. 2019),
density/coverage (Naeem et al. 2020), two checks on a classifier's predicted labels of the
samples (how many classes appear, and how far their histogram is from the test split's), and a
memorisation check: the share of samples nearer to a training image than held-out images are.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.special import rel_entr
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

FD_EPS = 1e-6
"""Added to both covariance diagonals when sqrtm of their product is not finite (singular)."""

FD_IMAG_TOL = 1e-3
"""Largest |imaginary part| on sqrtm's diagonal, relative to max(1, largest real part), that is
treated as round-off and dropped; anything bigger raises."""

BALL_RTOL = 1e-9
"""k-NN ball radii are multiplied by 1 - BALL_RTOL: far above float64 round-off in distances of
centred features, far below any real gap, so edge ties resolve the same way on every machine."""

DISTANCE_BLOCK_ELEMENTS = 1 << 22
"""Pairwise distances are computed in row blocks of about this many float64 entries (32 MiB)."""

KL_EPS = 1e-6
"""Additive smoothing of class shares before the KL divergence, so an empty class stays finite."""

COPY_QUANTILE = 0.05
"""copy_rate's threshold: this quantile of the held-out images' nearest-train distances, so
held-out real data scores about this share by construction."""


class FeatureStats(NamedTuple):
    """Mean and covariance (ddof=1) of a feature set; compute once for the test split, reuse."""

    mu: np.ndarray
    cov: np.ndarray


def _as_features(feats: np.ndarray, name: str = "features") -> np.ndarray:
    arr = np.asarray(feats, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be N x D, got shape {arr.shape}")
    return arr


def feature_stats(feats: np.ndarray) -> FeatureStats:
    """Mean vector and unbiased covariance matrix of N x D features (N >= 2)."""
    arr = _as_features(feats)
    if len(arr) < 2:
        raise ValueError("need at least two feature vectors for a covariance")
    return FeatureStats(arr.mean(axis=0), np.cov(arr, rowvar=False))


def _sqrtm_of_product(cov_a: np.ndarray, cov_b: np.ndarray, eps: float) -> np.ndarray:
    """Real square root of cov_a @ cov_b, with the usual fixes for scipy's numerical noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = eps * np.eye(len(cov_a))
            root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if not np.isfinite(root).all():
        raise FloatingPointError("sqrtm of the covariance product is not finite even with eps")
    if np.iscomplexobj(root):
        diag = np.diagonal(root)
        scale = max(1.0, float(np.abs(diag.real).max()))
        if np.abs(diag.imag).max() > FD_IMAG_TOL * scale:
            raise ValueError(f"sqrtm has a non-negligible imaginary part {np.abs(root.imag).max()}")
        root = root.real
    return root


def frechet_distance_from_stats(
    stats_a: FeatureStats | tuple[np.ndarray, np.ndarray],
    stats_b: FeatureStats | tuple[np.ndarray, np.ndarray],
    eps: float = FD_EPS,
) -> float:
    """Fréchet distance between N(mu_a, C_a) and N(mu_b, C_b), in squared feature units; lower is
    better.

    ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)). Negative round-off is clipped to 0.
    """
    mu_a, cov_a = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in stats_a)
    mu_b, cov_b = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in stats_b)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != mu_a.shape * 2:
        raise ValueError(f"mismatched statistics: {mu_a.shape}, {cov_a.shape} vs {cov_b.shape}")
    diff = mu_a - mu_b
    root = _sqrtm_of_product(cov_a, cov_b, eps)
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
    return max(float(value), 0.0)


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, eps: float = FD_EPS) -> float:
    """Fréchet distance between Gaussians fitted to two N x D feature sets (FID-style)."""
    return frechet_distance_from_stats(feature_stats(feats_a), feature_stats(feats_b), eps)


def _distance_blocks(rows: np.ndarray, cols: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (first row index, Euclidean distance block) covering rows x cols in bounded memory."""
    step = max(1, DISTANCE_BLOCK_ELEMENTS // max(1, len(cols)))
    for start in range(0, len(rows), step):
        yield start, pairwise_distances(rows[start : start + step], cols, metric="euclidean")


def knn_radii(feats: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point, for each k: shape N x len(ks).

    Duplicates of a point count as neighbours (at distance 0); only the point itself is skipped.
    """
    arr = _as_features(feats)
    if min(ks) < 1 or max(ks) >= len(arr):
        raise ValueError(f"k must be in [1, {len(arr) - 1}] for {len(arr)} points, got {ks}")
    dist, _ = NearestNeighbors(n_neighbors=max(ks)).fit(arr).kneighbors()  # excludes self
    return dist[:, [k - 1 for k in ks]]


def precision_recall_density_coverage(
    real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5
) -> dict[str, float]:
    """Manifold-based fidelity and diversity of ``fake`` relative to ``real``; all in [0, 1] except
    density (1 = as dense as the real data), higher is better.

    precision: share of fake points inside some real point's k_pr-NN ball; recall: share of real
    points inside some fake point's k_pr-NN ball (Kynkäänniemi et al. 2019). density: mean number
    of real k_dc-NN balls holding a fake point, over k_dc; coverage: share of real points whose
    k_dc-NN ball holds a fake point (Naeem et al. 2020). Balls are open (strict <, as in the
    authors' ``prdc`` package, so identical sets give density 1) and their radii are shrunk by a
    relative BALL_RTOL, so a point exactly on an edge (a duplicate) stays out whatever the
    round-off. Memory stays O(N) beyond one block of distances.
    """
    real = _as_features(real, "real")
    fake = _as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: {real.shape[1]} vs {fake.shape[1]}")
    centre = real.mean(axis=0)  # distances are shift-invariant; centring avoids cancellation
    real, fake = real - centre, fake - centre
    shrink = 1.0 - BALL_RTOL
    real_pr, real_dc = (knn_radii(real, [k_pr, k_dc]) * shrink).T
    fake_pr = knn_radii(fake, [k_pr])[:, 0] * shrink

    precise = np.zeros(len(fake), dtype=bool)
    density_hits = 0
    recalled = np.zeros(len(real), dtype=bool)
    nearest_fake = np.empty(len(real))
    for start, dist in _distance_blocks(real, fake):  # rows: real points, columns: fake points
        stop = start + len(dist)
        precise |= (dist < real_pr[start:stop, None]).any(axis=0)
        density_hits += int((dist < real_dc[start:stop, None]).sum())
        recalled[start:stop] = (dist < fake_pr).any(axis=1)
        nearest_fake[start:stop] = dist.min(axis=1)

    return {
        "precision": float(precise.mean()),
        "recall": float(recalled.mean()),
        "density": density_hits / (k_dc * len(fake)),
        "coverage": float((nearest_fake < real_dc).mean()),
    }


def _class_counts(labels: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be integers in [0, {n_classes})")
    return np.bincount(labels, minlength=n_classes)


def class_coverage(pred_labels: np.ndarray, n_classes: int, min_share: float = 0.01) -> float:
    """Share of the n_classes classes predicted for at least ``min_share`` of the samples.

    A mode-collapse check in [0, 1], higher is better: 1 means every class shows up.
    """
    counts = _class_counts(pred_labels, n_classes)
    return float(np.mean(counts / counts.sum() >= min_share))


def class_histogram_kl(
    pred_fake: np.ndarray, pred_real: np.ndarray, n_classes: int, eps: float = KL_EPS
) -> float:
    """KL(P_fake || P_real) in nats between predicted-class histograms; 0 is best.

    P_fake is the histogram of the samples' predicted labels, P_real the test split's. Each share
    p becomes (p + eps) / (1 + n_classes * eps), so a class absent from the test split costs a
    large but finite amount; eps=0 gives the plain KL (possibly inf).
    """
    shares = []
    for labels in (pred_fake, pred_real):
        counts = _class_counts(labels, n_classes)
        shares.append((counts / counts.sum() + eps) / (1.0 + n_classes * eps))
    return float(rel_entr(shares[0], shares[1]).sum())


def nearest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query to its nearest reference point; shape len(queries).

    Both sets are centred on the reference mean first (distances are shift-invariant), which
    keeps the dot-product form of the distance accurate near 0, where exact copies sit.
    """
    reference = _as_features(reference, "reference")
    queries = _as_features(queries, "queries")
    if reference.shape[1] != queries.shape[1]:
        raise ValueError(f"feature sizes differ: {reference.shape[1]} vs {queries.shape[1]}")
    centre = reference.mean(axis=0)
    dist, _ = NearestNeighbors(n_neighbors=1).fit(reference - centre).kneighbors(queries - centre)
    return dist[:, 0]


def copy_rate(
    train: np.ndarray, held_out: np.ndarray, samples: np.ndarray, quantile: float = COPY_QUANTILE
) -> float:
    """Memorisation: share of ``samples`` whose nearest training image is nearer than the
    ``quantile`` of the held-out images' nearest-training distances (strictly), in [0, 1].

    The threshold says how close a genuinely new image from the data distribution comes to the
    training set; a sampler that reproduces training images falls below it far more often than
    ``quantile``: exact copies score 1.0, held-out real data about ``quantile`` (0.05). Neither
    direction is better on its own: too low means samples avoid the data, too high means
    copying, and the held-out reference row gives the target. Features are N x D (evaluator
    feature space); held-out images that duplicate training images make the threshold 0, and
    then nothing counts as a copy.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    threshold = np.quantile(nearest_distances(train, held_out), quantile)
    return float(np.mean(nearest_distances(train, samples) < threshold))


__all__ = [
    "COPY_QUANTILE",
    "FeatureStats",
    "class_coverage",
    "class_histogram_kl",
    "copy_rate",
    "feature_stats",
    "frechet_distance",
    "frechet_distance_from_stats",
    "knn_radii",
    "nearest_distances",
    "precision_recall_density_coverage",
]
