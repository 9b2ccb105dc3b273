"""Group-relative advantages: GRPO normalisation and TempSamp-R1's controls for the off-policy (ground-truth) row.

A group holds the G rewards of one query; by convention the off-policy ground-truth row, when present, is the
LAST row (`gt_index=-1`). Controls (TempSamp-R1, arXiv 2509.18056, Sec. 3.2 and Tab. 4):

- `none`: plain GRPO over all G rows, A_i = (r_i - mean(r)) / (std(r) + eps), unbiased std (n - 1).
- `downscale`: before normalising, the GT row's reward is set to `downscale` (0.8) x the group's maximum reward.
- `anchor`: mean/std over the on-policy rows only; A_GT = `anchor_scale` (1.2) x max on-policy advantage.
- `shaping`: every row's reward (GT included) goes through the soft-advantage map
  r >= tau: tau + a1 ln(r - tau + 1);  r < tau: tau - (exp(a2 (tau - r)) - 1) / (exp(a2) - 1),
  tau = 0.8, a1 = 0.01, a2 = 1, then plain normalisation.

Pure numpy; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONTROLS = ("none", "downscale", "anchor", "shaping")


@dataclass(frozen=True)
class AdvantageSettings:
    """Settings of the off-policy control (defaults: the paper's values)."""

    control: str = "shaping"
    eps: float = 1e-6  # 1e-6 reproduces the paper's worked example to 2 dp (1e-4 gives -1.19 for -1.20)
    downscale: float = 0.8
    anchor_scale: float = 1.2
    tau: float = 0.8
    alpha1: float = 0.01
    alpha2: float = 1.0


def shape_reward(r: float | np.ndarray, tau: float = 0.8, alpha1: float = 0.01, alpha2: float = 1.0) -> np.ndarray:
    """TempSamp-R1 non-linear reward shaping (soft advantage): compresses rewards above tau (logarithmic) and
    stretches them below (exponential), so that near-perfect on-policy answers are not pushed down by the GT row.
    0 -> 0.0868, 0.5 -> 0.5964, 0.8 -> 0.8, 1.0 -> 0.8018 for the default settings."""
    r = np.asarray(r, dtype=np.float64)
    hi = tau + alpha1 * np.log(np.maximum(r - tau, 0.0) + 1.0)
    lo = tau - (np.exp(alpha2 * np.maximum(tau - r, 0.0)) - 1.0) / (math.exp(alpha2) - 1.0)
    return np.where(r >= tau, hi, lo)


def _std(x: np.ndarray) -> float:
    """Unbiased standard deviation; 0 for fewer than two values."""
    return float(np.std(x, ddof=1)) if x.size > 1 else 0.0


def group_normalise(r: Sequence[float] | np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """GRPO advantages (r - mean(r)) / (std(r) + eps) with the unbiased std."""
    r = np.asarray(r, dtype=np.float64)
    return (r - r.mean()) / (_std(r) + eps)


def group_advantages(
    rewards: Sequence[float] | np.ndarray,
    settings: AdvantageSettings | None = None,
    gt_index: int | None = -1,
    accuracy: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Advantages of one group of G rewards.

    `gt_index` is the position of the off-policy GT row, None for a purely on-policy group (then every control
    but `shaping` is plain GRPO). `accuracy`: the part of each reward that shaping applies to (the IoU); the rest
    (`rewards - accuracy`, e.g. the format reward) is added after shaping. Default: the whole reward.
    """
    s = settings or AdvantageSettings()
    if s.control not in CONTROLS:
        raise ValueError(f"unknown off-policy control {s.control!r}; choose one of {', '.join(CONTROLS)}")
    r = np.asarray(rewards, dtype=np.float64).copy()
    n = r.size
    if n == 0:
        return r
    gi = None if gt_index is None else gt_index % n

    if s.control == "shaping":
        acc = r if accuracy is None else np.asarray(accuracy, dtype=np.float64)
        r = shape_reward(acc, s.tau, s.alpha1, s.alpha2) + (r - acc)
        return group_normalise(r, s.eps)
    if gi is None or s.control == "none":
        return group_normalise(r, s.eps)
    if s.control == "downscale":
        r[gi] = s.downscale * r.max()
        return group_normalise(r, s.eps)
    # anchor
    on = np.delete(r, gi)
    adv = np.empty_like(r)
    if on.size:
        a_on = (on - on.mean()) / (_std(on) + s.eps)
        adv[np.arange(n) != gi] = a_on
        adv[gi] = s.anchor_scale * a_on.max()
    else:
        adv[gi] = 0.0
    return adv


def on_policy_groups(accuracy: Sequence[float] | np.ndarray, row_query: Sequence[int] | np.ndarray,
                     is_gt: Sequence[bool] | np.ndarray) -> tuple[float | None, float | None]:
    """(fraction of groups whose on-policy rows all scored 0, mean over groups of the best on-policy score) of one
    micro-step's rows; `row_query[i]` names row i's group (query), `is_gt[i]` marks the off-policy row (left out).
    A group whose on-policy rows all score 0 gives GRPO no signal (every advantage is 0): the regime where
    TempSamp-R1's ground-truth row is the only guidance. (None, None) when no row is on-policy."""
    acc = np.asarray(accuracy, dtype=np.float64)
    rq = np.asarray(row_query)
    on = ~np.asarray(is_gt, dtype=bool)
    groups = np.unique(rq[on])
    if groups.size == 0:
        return None, None
    best = np.array([acc[on & (rq == q)].max() for q in groups])
    return float(np.mean(best <= 0.0)), float(best.mean())


def skewness(x: Sequence[float] | np.ndarray) -> float:
    """Sample skewness (Fisher-Pearson, biased): mean((x - m)^3) / std^3; 0 for constant input."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2:
        return 0.0
    sd = x.std()
    if sd <= 0:
        return 0.0
    return float(np.mean((x - x.mean()) ** 3) / sd**3)
