"""Single-moment grounding metrics (Charades-STA, ActivityNet Captions): temporal IoU, R1@theta, mIoU, R@k.

Definitions (docs/metrics.md, "Single-moment grounding"):

- temporal IoU of two intervals = |intersection| / |union|; for overlapping intervals this equals
  intersection / (max end - min start); 0 when disjoint; 0 when the union has zero length (two identical
  zero-length windows) and 0 for any row holding a NaN (an unparsed answer);
- R1@theta = 100 * fraction of ALL queries whose top prediction has IoU >= theta (> theta in `strict` mode,
  the Time-R1 convention); mIoU = 100 * mean IoU over ALL queries. Failures are passed in as IoU 0 by the
  caller, so they stay in the denominator.

Pure numpy, no I/O. Percentages are returned in full precision; rounding is for display only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)


def _as_windows(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, 2), got {arr.shape}")
    return arr[:, :2]


def temporal_iou(pred, gt) -> np.ndarray:
    """Row-wise temporal IoU of `pred` (N, 2) and `gt` (N, 2) as [start, end] seconds -> (N,) in [0, 1].

    intersection = max(0, min(ends) - max(starts)); union = max(ends) - min(starts) when the windows
    overlap (then it equals the true union) and the IoU is 0 when they do not. A row with a NaN, or a zero
    union, gives 0. Reversed windows (start > end) are treated as given, i.e. they have no positive overlap
    with anything and give 0; callers report such input instead of silently fixing it.
    """
    p = _as_windows(pred, "pred")
    g = _as_windows(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt must have the same shape, got {p.shape} and {g.shape}")
    inter = np.minimum(p[:, 1], g[:, 1]) - np.maximum(p[:, 0], g[:, 0])
    union = np.maximum(p[:, 1], g[:, 1]) - np.minimum(p[:, 0], g[:, 0])
    ok = (inter > 0) & (union > 0)  # False for NaN rows
    out = np.zeros(p.shape[0], dtype=np.float64)
    np.divide(inter, union, out=out, where=ok)
    return np.minimum(out, 1.0)


def iou_matrix(a, b) -> np.ndarray:
    """Temporal IoU of every window in `a` (N, 2) with every window in `b` (M, 2) -> (N, M).

    Same definition as `temporal_iou` (0 for disjoint windows, zero unions and NaN rows).
    """
    x = _as_windows(a, "a")
    y = _as_windows(b, "b")
    inter = np.minimum(x[:, None, 1], y[None, :, 1]) - np.maximum(x[:, None, 0], y[None, :, 0])
    union = np.maximum(x[:, None, 1], y[None, :, 1]) - np.minimum(x[:, None, 0], y[None, :, 0])
    ok = (inter > 0) & (union > 0)
    out = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=ok)
    return np.minimum(out, 1.0)


def _clean_ious(ious) -> np.ndarray:
    arr = np.asarray(ious, dtype=np.float64)
    return np.where(np.isnan(arr), 0.0, arr)


def _threshold_name(t: float) -> str:
    return f"{float(t):g}"


def hits(ious, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, strict: bool = False) -> np.ndarray:
    """(N,) IoUs -> (N, T) booleans: IoU >= theta (IoU > theta if `strict`). NaN counts as IoU 0."""
    x = _clean_ious(ious)[:, None]
    th = np.asarray(thresholds, dtype=np.float64)[None, :]
    return x > th if strict else x >= th


def grounding_terms(
    ious, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, strict: bool = False
) -> tuple[list[str], np.ndarray]:
    """Per-query terms whose column means are the grounding metrics (for bootstrap CIs and paired tests).

    Returns (names, values (N, T+1)): column k is 100 * hit@theta_k for `R1@theta_k`, the last column is
    100 * IoU for `mIoU`. `values.mean(0)` equals `grounding_metrics(...)` in the same order.
    """
    x = _clean_ious(ious)
    h = hits(x, thresholds, strict).astype(np.float64) * 100.0
    names = [f"R1@{_threshold_name(t)}" for t in thresholds] + ["mIoU"]
    return names, np.concatenate([h, 100.0 * x[:, None]], axis=1)


def grounding_metrics(
    ious, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, strict: bool = False
) -> dict[str, float]:
    """R1@theta and mIoU in percent (full precision) over ALL queries.

    `ious` (N,) holds the IoU of each query's top prediction; unparsed answers must be passed as 0 (NaN is
    also read as 0). Returns {"R1@0.3": ..., "R1@0.5": ..., "R1@0.7": ..., "mIoU": ...}; NaN values when N = 0.
    """
    names, values = grounding_terms(ious, thresholds, strict)
    if values.shape[0] == 0:
        return {n: float("nan") for n in names}
    means = values.mean(axis=0)
    return {n: float(v) for n, v in zip(names, means)}


def recall_at_k(ious, k: int, thresholds: Sequence[float] = (0.5,), strict: bool = False) -> dict[str, float]:
    """R{k}@theta in percent: share of queries with at least one of the first k ranked predictions at IoU >= theta.

    `ious` (N, K) holds the IoU of each query's ranked predictions, padded with NaN where a query has fewer
    than K (NaN counts as a miss). k larger than K uses all K columns. Over ALL N queries.
    """
    arr = _clean_ious(ious)
    if arr.ndim != 2:
        raise ValueError(f"ious must have shape (N, K), got {arr.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    best = arr[:, :k].max(axis=1) if arr.shape[1] else np.zeros(arr.shape[0])
    h = hits(best, thresholds, strict)
    if arr.shape[0] == 0:
        return {f"R{k}@{_threshold_name(t)}": float("nan") for t in thresholds}
    return {f"R{k}@{_threshold_name(t)}": float(100.0 * h[:, i].mean()) for i, t in enumerate(thresholds)}
