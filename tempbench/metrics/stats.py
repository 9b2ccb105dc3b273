"""Clustered bootstrap confidence intervals and paired tests for metrics that are ratios of per-query sums.

Every tempbench metric is metric_k = sum_i num[i, k] / sum_i den[i, k] (den = 1 for plain means such as R1@0.5
or mIoU; den = "query counts" indicators for QVHighlights mAP, where queries without windows drop out).
Queries of one video are not independent, so resampling is by cluster (video): a resample draws G clusters
with replacement out of G, i.e. multinomial counts c (G,), and metric* = (c @ S_num) / (c @ S_den) with S the
per-cluster sums. Resamples are generated in fixed blocks of 128, each block from its own child of
`numpy.random.SeedSequence(seed)`, so the result depends only on (inputs, n_resamples, seed).

- `bootstrap_ci`: percentile interval of metric* (NaN resamples, where a denominator is 0, are ignored).
- `paired_test`: difference A - B on the same queries. Its CI is the paired clustered bootstrap (the same
  cluster counts applied to both systems); its two-sided p-value is a cluster-level sign-flip permutation
  test: under H0 (A and B exchangeable within a video) every video's A and B values are swapped with
  probability 1/2; p = (1 + #{|d*| >= |d_obs|}) / (1 + n_resamples).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 128  # resamples per random block (fixed: results must not depend on memory settings)


def cluster_codes(clusters, n: int) -> tuple[np.ndarray, int]:
    """Hashable cluster labels (N,) -> (integer codes 0..G-1 (N,), G). None: every query its own cluster."""
    if clusters is None:
        return np.arange(n), n
    arr = np.asarray(clusters)
    if arr.shape != (n,):
        raise ValueError(f"clusters must have shape ({n},), got {arr.shape}")
    if arr.dtype.kind in "iu" and n and arr.min() >= 0 and arr.max() < 4 * n + 16:
        used = np.zeros(int(arr.max()) + 1, dtype=bool)
        used[arr] = True
        remap = np.cumsum(used) - 1
        return remap[arr], int(used.sum())
    if arr.dtype == object:
        _, codes = np.unique(arr.astype(str), return_inverse=True)
    else:
        _, codes = np.unique(arr, return_inverse=True)
    codes = codes.reshape(-1)
    return codes, int(codes.max()) + 1 if n else 0


def _as_2d(x, name: str) -> tuple[np.ndarray, bool]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None], True
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (N,) or (N, K), got {a.shape}")
    return a, False


def _cluster_sums(values: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    out = np.empty((g, values.shape[1]))
    for k in range(values.shape[1]):
        out[:, k] = np.bincount(codes, weights=values[:, k], minlength=g)
    return out


def _blocks(n_resamples: int, seed: int):
    children = np.random.SeedSequence(seed).spawn((n_resamples + BLOCK - 1) // BLOCK)
    for i, child in enumerate(children):
        yield min(BLOCK, n_resamples - i * BLOCK), np.random.default_rng(child)


def _multinomial_counts(rng: np.random.Generator, b: int, g: int) -> np.ndarray:
    """(b, g) float64 counts of g draws with replacement from g clusters, per resample."""
    idx = rng.integers(0, g, size=(b, g), dtype=np.int64)
    idx += (np.arange(b, dtype=np.int64) * g)[:, None]
    counts = np.bincount(idx.ravel(), minlength=b * g).reshape(b, g)
    return counts.astype(np.float64, copy=False)


def bootstrap_distribution(
    numerators, denominators=None, clusters=None, n_resamples: int = 1000, seed: int = 0
):
    """Resampled metric values (n_resamples, K) of sum(num)/sum(den) under the clustered bootstrap."""
    num, _ = _as_2d(numerators, "numerators")
    den = np.ones_like(num) if denominators is None else _as_2d(denominators, "denominators")[0]
    if den.shape != num.shape:
        raise ValueError(f"denominators shape {den.shape} != numerators shape {num.shape}")
    codes, g = cluster_codes(clusters, num.shape[0])
    k = num.shape[1]
    sums = _cluster_sums(np.concatenate([num, den], axis=1), codes, g)  # (G, 2K): one product per block
    out = np.empty((n_resamples, k))
    start = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for b, rng in _blocks(n_resamples, seed):
            r = _multinomial_counts(rng, b, g) @ sums
            out[start : start + b] = r[:, :k] / r[:, k:]
            start += b
    return out


def _percentile(dist: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    alpha = (1 - level) / 2
    finite = np.isfinite(dist)
    low = np.full(dist.shape[1], np.nan)
    high = np.full(dist.shape[1], np.nan)
    for k in range(dist.shape[1]):
        col = dist[finite[:, k], k]
        if col.size:
            low[k], high[k] = np.quantile(col, [alpha, 1 - alpha])
    return low, high


def bootstrap_ci(
    numerators,
    denominators=None,
    clusters=None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI of sum(num[:, k]) / sum(den[:, k]) under a clustered (by video) bootstrap.

    numerators (N, K) (or (N,)), denominators same shape or None (plain means), clusters (N,) hashable labels
    (e.g. video ids) or None (each query its own cluster). Returns (low (K,), high (K,)) (scalars' arrays of
    shape () for 1-D input). Deterministic given the inputs, n_resamples and seed.
    """
    _, one_d = _as_2d(numerators, "numerators")
    dist = bootstrap_distribution(numerators, denominators, clusters, n_resamples, seed)
    low, high = _percentile(dist, level)
    if one_d:
        return low[0], high[0]
    return low, high


@dataclass
class PairedResult:
    """A - B: point difference, paired clustered bootstrap CI, sign-flip permutation p-value (arrays (K,))."""

    difference: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray


def paired_test(
    num_a,
    num_b,
    den=None,
    clusters=None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedResult:
    """Paired comparison of two systems scored on the same queries (rows aligned).

    num_a, num_b (N, K); den: None (plain means), one (N, K) array shared by both, or a pair (den_a, den_b)
    when the denominators differ (QVHighlights mAP: a system without windows for a query drops it).
    difference = metric(A) - metric(B); [low, high] = percentile CI of the paired clustered bootstrap;
    p_value = two-sided cluster-level sign-flip permutation test (see module doc).
    """
    a, one_d = _as_2d(num_a, "num_a")
    b, _ = _as_2d(num_b, "num_b")
    if a.shape != b.shape:
        raise ValueError(f"num_a shape {a.shape} != num_b shape {b.shape}")
    if den is None:
        da = db = np.ones_like(a)
    elif isinstance(den, tuple | list):
        da, db = (_as_2d(d, "den")[0] for d in den)
    else:
        da = db = _as_2d(den, "den")[0]
    if da.shape != a.shape or db.shape != a.shape:
        raise ValueError("denominators must have the numerators' shape")
    codes, g = cluster_codes(clusters, a.shape[0])
    sa, sb = _cluster_sums(a, codes, g), _cluster_sums(b, codes, g)
    sda, sdb = _cluster_sums(da, codes, g), _cluster_sums(db, codes, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = sa.sum(0) / sda.sum(0) - sb.sum(0) / sdb.sum(0)
    boot = np.empty((n_resamples, a.shape[1]))
    perm = np.empty((n_resamples, a.shape[1]))
    ta, tb, tda, tdb = sa.sum(0), sb.sum(0), sda.sum(0), sdb.sum(0)
    start = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, rng in _blocks(n_resamples, seed):
            c = _multinomial_counts(rng, n, g)
            boot[start : start + n] = (c @ sa) / (c @ sda) - (c @ sb) / (c @ sdb)
            s = rng.integers(0, 2, size=(n, g)).astype(np.float64)  # 1 = swap A and B in this cluster
            pa = (ta + s @ (sb - sa)) / (tda + s @ (sdb - sda))
            pb = (tb + s @ (sa - sb)) / (tdb + s @ (sda - sdb))
            perm[start : start + n] = pa - pb
            start += n
    low, high = _percentile(boot, level)
    tol = 1e-12 * np.maximum(1.0, np.abs(diff))
    extreme = (np.abs(perm) >= np.abs(diff) - tol) | ~np.isfinite(perm)
    p = (1 + extreme.sum(0)) / (1 + n_resamples)
    p = np.where(np.isfinite(diff), p, np.nan)
    if one_d:
        return PairedResult(diff[0], low[0], high[0], p[0])
    return PairedResult(diff, low, high, p)
