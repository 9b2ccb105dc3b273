"""Tests of tempbench.metrics.grounding: temporal IoU, R1@theta, mIoU, R@k (docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tempbench.metrics.grounding import (
    grounding_metrics,
    grounding_terms,
    hits,
    iou_matrix,
    recall_at_k,
    temporal_iou,
)

coord = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def window(draw, min_len: float = 0.0):
    a = draw(coord)
    length = draw(st.floats(min_value=min_len, max_value=1e4, allow_nan=False))
    return (a, a + length)


def test_known_values():
    pred = np.array([[0, 10], [0, 10], [0, 10], [5, 15], [2, 4], [3, 3], [3, 3], [0, 10], [0, 10]], float)
    gt = np.array([[0, 10], [5, 15], [10, 20], [0, 10], [0, 10], [0, 10], [3, 3], [20, 30], [2, 8]], float)
    expected = [1.0, 5 / 15, 0.0, 5 / 15, 0.2, 0.0, 0.0, 0.0, 0.6]
    np.testing.assert_allclose(temporal_iou(pred, gt), expected, rtol=0, atol=1e-15)


def test_nan_rows_are_zero_and_reversed_windows_do_not_overlap():
    pred = np.array([[np.nan, np.nan], [np.nan, 5.0], [8.0, 2.0]])
    gt = np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 10.0]])
    assert temporal_iou(pred, gt).tolist() == [0.0, 0.0, 0.0]


def test_shape_errors():
    with pytest.raises(ValueError):
        temporal_iou(np.zeros((3, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        temporal_iou(np.zeros((3, 1)), np.zeros((3, 1)))


@settings(max_examples=200, deadline=None)
@given(window(), window())
def test_iou_symmetric_and_bounded(a, b):
    x = temporal_iou([a], [b])[0]
    y = temporal_iou([b], [a])[0]
    assert x == y
    assert 0.0 <= x <= 1.0


@settings(max_examples=200, deadline=None)
@given(window(min_len=1e-3))
def test_iou_identity(a):
    assert temporal_iou([a], [a])[0] == 1.0


@settings(max_examples=200, deadline=None)
@given(
    window(min_len=1e-2),
    window(min_len=1e-2),
    st.floats(min_value=1e-2, max_value=1e2),
    st.floats(min_value=-1e3, max_value=1e3),
)
def test_iou_scale_shift_invariant(a, b, scale, shift):
    x = temporal_iou([a], [b])[0]
    a2 = (a[0] * scale + shift, a[1] * scale + shift)
    b2 = (b[0] * scale + shift, b[1] * scale + shift)
    y = temporal_iou([a2], [b2])[0]
    assert y == pytest.approx(x, rel=1e-6, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(window(min_len=1e-3), window(min_len=1e-3))
def test_iou_equals_true_union_definition(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    assume(union > 0)
    assert temporal_iou([a], [b])[0] == pytest.approx(inter / union, rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(window(), min_size=1, max_size=6), st.lists(window(), min_size=1, max_size=6))
def test_iou_matrix_matches_rowwise(a, b):
    m = iou_matrix(a, b)
    assert m.shape == (len(a), len(b))
    for i, wa in enumerate(a):
        np.testing.assert_array_equal(m[i], temporal_iou([wa] * len(b), b))


def test_grounding_metrics_known():
    ious = np.array([0.9, 0.5, 0.31, 0.0, np.nan, 0.7])  # NaN = unparsed answer, counts as 0
    m = grounding_metrics(ious)
    assert list(m) == ["R1@0.3", "R1@0.5", "R1@0.7", "mIoU"]
    assert m["R1@0.3"] == pytest.approx(100 * 4 / 6)
    assert m["R1@0.5"] == pytest.approx(100 * 3 / 6)
    assert m["R1@0.7"] == pytest.approx(100 * 2 / 6)
    assert m["mIoU"] == pytest.approx(100 * (0.9 + 0.5 + 0.31 + 0.7) / 6)
    strict = grounding_metrics(ious, strict=True)  # Time-R1: IoU > theta
    assert strict["R1@0.5"] == pytest.approx(100 * 2 / 6)
    assert strict["R1@0.7"] == pytest.approx(100 * 1 / 6)
    assert math.isnan(grounding_metrics([])["mIoU"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50), st.randoms())
def test_grounding_invariants(ious, rnd):
    m = grounding_metrics(ious, thresholds=(0.1, 0.3, 0.5, 0.7, 0.9))
    r = [m[k] for k in ("R1@0.1", "R1@0.3", "R1@0.5", "R1@0.7", "R1@0.9")]
    assert all(x >= y for x, y in zip(r, r[1:]))  # monotone in theta
    assert 0 <= m["mIoU"] <= 100 and all(0 <= x <= 100 for x in r)
    s = grounding_metrics(ious, thresholds=(0.1, 0.3, 0.5, 0.7, 0.9), strict=True)
    assert all(s[k] <= m[k] for k in m)
    shuffled = list(ious)
    rnd.shuffle(shuffled)
    m2 = grounding_metrics(shuffled, thresholds=(0.1, 0.3, 0.5, 0.7, 0.9))
    assert all(m2[k] == pytest.approx(m[k]) for k in m)
    # a failure added as IoU 0 can only lower every metric (it stays in the denominator)
    m3 = grounding_metrics(list(ious) + [0.0], thresholds=(0.1, 0.3, 0.5, 0.7, 0.9))
    assert all(m3[k] <= m[k] + 1e-9 for k in m)


def test_terms_means_equal_metrics():
    rng = np.random.default_rng(0)
    ious = rng.random(500)
    names, vals = grounding_terms(ious)
    m = grounding_metrics(ious)
    assert names == list(m)
    np.testing.assert_allclose(vals.mean(0), [m[n] for n in names], rtol=1e-12)
    assert hits(ious).shape == (500, 3)


def test_recall_at_k():
    ious = np.array(
        [
            [0.2, 0.6, np.nan, np.nan, np.nan],
            [0.55, 0.1, 0.9, 0.0, 0.0],
            [np.nan] * 5,  # failure: no windows
            [0.1, 0.2, 0.3, 0.4, 0.71],
        ]
    )
    assert recall_at_k(ious, 1, (0.5,)) == {"R1@0.5": 25.0}
    assert recall_at_k(ious, 5, (0.5, 0.7)) == {"R5@0.5": 75.0, "R5@0.7": 50.0}
    assert recall_at_k(ious, 2, (0.5,)) == {"R2@0.5": 50.0}
    # R@1 agrees with R1@theta of the first column
    assert recall_at_k(ious, 1, (0.3, 0.5, 0.7))["R1@0.5"] == grounding_metrics(ious[:, 0])["R1@0.5"]
    with pytest.raises(ValueError):
        recall_at_k(ious, 0)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 20), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_recall_at_k_monotone_in_k(n, k, seed):
    rng = np.random.default_rng(seed)
    ious = rng.random((n, 6))
    ious[rng.random((n, 6)) < 0.2] = np.nan
    a = recall_at_k(ious, k, (0.5,))[f"R{k}@0.5"]
    b = recall_at_k(ious, k + 1, (0.5,))[f"R{k + 1}@0.5"]
    assert a <= b
