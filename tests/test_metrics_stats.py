"""Tests of tempbench.metrics.stats: clustered bootstrap CIs and paired tests."""

from __future__ import annotations

import numpy as np
import pytest

from tempbench.metrics.stats import bootstrap_ci, bootstrap_distribution, cluster_codes, paired_test


def _clustered_bernoulli(rng, n_clusters=150, per=3, p=0.4, rho=0.0):
    """Hits with a per-cluster shared component: with prob rho a cluster's queries all share one draw."""
    shared = rng.random(n_clusters) < p
    own = rng.random((n_clusters, per)) < p
    use_shared = rng.random(n_clusters) < rho
    hits = np.where(use_shared[:, None], shared[:, None], own).ravel().astype(float)
    clusters = np.repeat(np.arange(n_clusters), per)
    return hits, clusters


def test_cluster_codes():
    codes, g = cluster_codes(["b", "a", "b", "c"], 4)
    assert g == 3 and codes.tolist() == [1, 0, 1, 2]
    codes, g = cluster_codes(np.array([10, 3, 10, 7]), 4)
    assert g == 3 and codes.tolist() == [2, 0, 2, 1]
    codes, g = cluster_codes(None, 3)
    assert g == 3 and codes.tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        cluster_codes([1, 2], 3)


def test_deterministic_by_seed_and_shapes():
    rng = np.random.default_rng(1)
    num = rng.random((300, 4))
    den = (rng.random((300, 4)) < 0.8).astype(float)
    clusters = rng.integers(0, 60, 300)
    a = bootstrap_ci(num, den, clusters, n_resamples=300, seed=5)
    b = bootstrap_ci(num, den, clusters, n_resamples=300, seed=5)
    c = bootstrap_ci(num, den, clusters, n_resamples=300, seed=6)
    assert a[0].shape == (4,) and a[1].shape == (4,)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    point = num.sum(0) / den.sum(0)
    assert np.all(a[0] < point) and np.all(point < a[1])
    # 1-D input -> scalar bounds; same numbers as the matching column of a 2-D call
    lo, hi = bootstrap_ci(num[:, 0], den[:, 0], clusters, n_resamples=300, seed=5)
    assert np.ndim(lo) == 0
    dist = bootstrap_distribution(num, den, clusters, n_resamples=300, seed=5)
    assert dist.shape == (300, 4)
    assert lo == pytest.approx(np.quantile(dist[:, 0], 0.025))
    assert hi == pytest.approx(np.quantile(dist[:, 0], 0.975))
    # prefix property: more resamples extend, never reshuffle, the stream
    dist2 = bootstrap_distribution(num, den, clusters, n_resamples=500, seed=5)
    np.testing.assert_array_equal(dist2[:300], dist)


def test_resample_counts_are_a_cluster_bootstrap():
    # one query per cluster, value = cluster index: every resample is a mean of G draws with replacement
    g = 50
    num = np.arange(g, dtype=float)
    dist = bootstrap_distribution(num, None, np.arange(g), n_resamples=2000, seed=0)[:, 0]
    assert dist.mean() == pytest.approx(num.mean(), abs=0.3)
    assert dist.std() == pytest.approx(num.std() / np.sqrt(g), rel=0.1)
    # identical queries inside one cluster move together: a 2-cluster data set has only 3 distinct means
    two = bootstrap_distribution(np.array([0.0, 0.0, 1.0, 1.0]), None, [0, 0, 1, 1], n_resamples=400, seed=0)
    assert set(np.round(two[:, 0], 9)) <= {0.0, 0.5, 1.0}


def test_coverage_sanity():
    """95% CIs cover the true rate in about 95% of simulated data sets (with clustering)."""
    rng = np.random.default_rng(123)
    covered = 0
    trials = 120
    for t in range(trials):
        hits, clusters = _clustered_bernoulli(rng, rho=0.5)
        lo, hi = bootstrap_ci(100 * hits, None, clusters, n_resamples=400, seed=t)
        covered += lo <= 40.0 <= hi
    assert 0.88 <= covered / trials <= 1.0


def test_clustering_widens_intervals_for_correlated_queries():
    rng = np.random.default_rng(7)
    hits, clusters = _clustered_bernoulli(rng, n_clusters=200, per=5, rho=0.9)
    lo_c, hi_c = bootstrap_ci(hits, None, clusters, n_resamples=600, seed=0)
    lo_i, hi_i = bootstrap_ci(hits, None, None, n_resamples=600, seed=0)
    assert (hi_c - lo_c) > 1.5 * (hi_i - lo_i)


def test_paired_test_identical_and_different():
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.5).astype(float)
    clusters = rng.integers(0, 100, 400)
    same = paired_test(a, a, None, clusters, n_resamples=300, seed=0)
    assert same.difference == 0 and same.low == 0 and same.high == 0 and same.p_value == 1.0
    b = np.where(rng.random(400) < 0.3, 1.0, a)  # B better than A on ~15% of queries
    res = paired_test(b, a, None, clusters, n_resamples=500, seed=0)
    assert res.difference == pytest.approx(b.mean() - a.mean())
    assert res.low > 0 and res.p_value < 0.01
    flipped = paired_test(a, b, None, clusters, n_resamples=500, seed=0)
    assert flipped.difference == pytest.approx(-res.difference)
    assert flipped.p_value == pytest.approx(res.p_value)


def test_paired_test_null_calibration():
    """Under H0 (A and B exchangeable), p < 0.05 in roughly 5% of data sets."""
    rng = np.random.default_rng(11)
    rejections = 0
    trials = 100
    for t in range(trials):
        base = rng.random(120)
        a = (rng.random(120) < base).astype(float)
        b = (rng.random(120) < base).astype(float)
        res = paired_test(a, b, None, np.repeat(np.arange(40), 3), n_resamples=200, seed=t)
        rejections += res.p_value < 0.05
    assert rejections <= 12


def test_paired_test_with_different_denominators():
    # QVHighlights mAP: a system without windows for a query drops it from its own mean
    rng = np.random.default_rng(2)
    num_a, num_b = rng.random((100, 2)), rng.random((100, 2))
    den_a = np.ones((100, 2))
    den_b = (rng.random((100, 2)) < 0.9).astype(float)
    num_b = num_b * den_b
    res = paired_test(num_a, num_b, (den_a, den_b), np.arange(100) // 4, n_resamples=200, seed=1)
    want = num_a.sum(0) / den_a.sum(0) - num_b.sum(0) / den_b.sum(0)
    np.testing.assert_allclose(res.difference, want)
    assert res.low.shape == (2,) and np.all(res.low <= res.difference) and np.all(res.difference <= res.high)
    assert np.all((0 < res.p_value) & (res.p_value <= 1))


def test_input_errors():
    with pytest.raises(ValueError):
        bootstrap_ci(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError):
        bootstrap_ci(np.zeros(3), level=1.5)
    with pytest.raises(ValueError):
        paired_test(np.zeros(3), np.zeros(4))
