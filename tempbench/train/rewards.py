"""Rewards of the TempSamp-R1 trainer (arXiv 2509.18056, Sec. 3 and appendix).

- `iou_reward`: temporal IoU of the parsed answer with the ground-truth window, clamped at 0; 0 when the
  answer cannot be parsed (span parsing is `tempbench.parsing.parse_span`, IoU is
  `tempbench.metrics.grounding.temporal_iou`).
- `format_reward`: 1 when the whole output is `<think>...</think>` followed by `<answer>...</answer>`, else 0.
- `highlight_reward`: 0.6 * F2 + 0.4 / (1 + WMSE) for QVHighlights-style answers, with the matching rule
  documented in `highlight_reward` (the paper leaves it open).

Everything here is pure Python + numpy: no torch, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# <think> ... </think> then <answer> ... </answer>, nothing else but whitespace around; think may be empty.
_FORMAT_RE = re.compile(r"^\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)


def format_reward(text: str) -> float:
    """1.0 if `text` is `<think>...</think>` followed by `<answer>...</answer>` (whitespace allowed around and
    between, one of each tag, no other text), else 0.0 (TempSamp-R1's format reward of the CoT phase)."""
    m = _FORMAT_RE.match(text)
    if m is None:
        return 0.0
    inner = m.group("think") + m.group("answer")
    if any(tag in inner for tag in ("<think>", "</think>", "<answer>", "</answer>")):
        return 0.0
    return 1.0


def iou_reward(text: str, window: Sequence[float], profile: str = "canonical") -> float:
    """Temporal IoU of the span parsed from `text` with the ground-truth `window` = (start, end), clamped to
    [0, 1]; 0.0 when no span can be parsed (status "failed")."""
    from tempbench.metrics.grounding import temporal_iou
    from tempbench.parsing import parse_span

    parsed = parse_span(text, profile=profile)
    if parsed.span is None or parsed.status == "failed":
        return 0.0
    iou = float(np.asarray(temporal_iou(tuple(parsed.span), tuple(window))).reshape(-1)[0])
    if not np.isfinite(iou):
        return 0.0
    return min(max(iou, 0.0), 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Highlights (QVHighlights)


CLIP_SECONDS = 2.0


def timestamp_to_clip(t: float) -> int:
    """2-s clip index of a named timestamp: max(0, int((t - 1) / 2)) (the mapping the evaluation uses)."""
    return max(0, int((float(t) - 1.0) / CLIP_SECONDS))


def clip_to_timestamp(clip_id: int) -> float:
    """The timestamp written for clip `clip_id` in a ground-truth answer: its end, 2 * (clip_id + 1) seconds.
    `timestamp_to_clip(clip_to_timestamp(c)) == c` for every c >= 0."""
    return CLIP_SECONDS * (int(clip_id) + 1)


def parse_highlight_answer(text: str, duration: float) -> dict[int, float] | None:
    """Clip -> predicted saliency for the clips the answer names (`tempbench.parsing.parse_highlights`: timestamp t
    names 2-s clip max(0, int((t - 1) / 2)), scores of one clip averaged, clips past the video dropped).
    None when no timestamp inside the video can be read."""
    from tempbench.parsing import parse_highlights

    ph = parse_highlights(text, duration, clip_len=CLIP_SECONDS)
    if ph.status == "failed":
        return None
    named: dict[int, float] = {}
    for start, end in ph.windows:
        first = int(round(start / CLIP_SECONDS))
        last = int(np.ceil(end / CLIP_SECONDS - 1e-9)) - 1
        for c in range(first, last + 1):
            named[c] = float(ph.saliency[c])
    return named or None


def highlight_answer_text(clip_ids: Sequence[int], scores: Sequence[Sequence[float]] | Sequence[float]) -> str:
    """The ground-truth answer body in the prompt's format: timestamps = clip ends (2 * (c + 1)), saliency = mean
    over annotators, one decimal; clips in ascending order."""
    mean = [float(np.mean(s)) if np.ndim(s) else float(s) for s in scores]
    order = np.argsort(np.asarray(clip_ids), kind="stable")
    ts = ", ".join(f"{clip_to_timestamp(clip_ids[i]):g}" for i in order)
    sc = ", ".join(f"{mean[i]:.1f}" for i in order)
    return f"The highlight timestamps are in the {ts} seconds. Their saliency scores are {sc}"


def f_beta(pred: set[int], gt: set[int], beta: float = 2.0) -> float:
    """F-beta of clip sets: (1 + b^2) P R / (b^2 P + R); 0 when either set is empty or they do not meet."""
    hit = len(pred & gt)
    if hit == 0:
        return 0.0
    p, r = hit / len(pred), hit / len(gt)
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r)


def weighted_mse(pred: dict[int, float], gt: dict[int, float]) -> float:
    """Saliency error over the GT clips, weighted by squared GT saliency:
    sum_c w_c (p_c - s_c)^2 / sum_c w_c with w_c = s_c^2, p_c = 0 for a GT clip the answer does not name.
    When every GT saliency is 0 the weights are uniform (plain MSE over the GT clips)."""
    clips = sorted(gt)
    if not clips:
        return 0.0
    s = np.array([gt[c] for c in clips], dtype=np.float64)
    p = np.array([pred.get(c, 0.0) for c in clips], dtype=np.float64)
    w = s**2
    if w.sum() <= 0:
        w = np.ones_like(s)
    return float((w * (p - s) ** 2).sum() / w.sum())


def highlight_reward(
    text: str,
    gt_clip_ids: Sequence[int],
    gt_scores: Sequence[Sequence[float]] | Sequence[float],
    duration: float,
    beta: float = 2.0,
    w_f: float = 0.6,
    w_mse: float = 0.4,
) -> float:
    """TempSamp-R1 highlight reward 0.6 * F2 + 0.4 / (1 + WMSE), with this matching rule (ours):

    - units are the 2-s clips of QVHighlights; a named timestamp t counts for clip max(0, int((t - 1) / 2));
      several timestamps in one clip average their scores (answer parsing: `tempbench.parsing.parse_highlights`);
    - F2: F-beta (beta = 2, recall-weighted) of the set of named clips against the set of GT clips
      (`relevant_clip_ids` / `saliency.clip_ids`);
    - WMSE: over the GT clips, (predicted - GT saliency)^2 weighted by GT saliency squared (GT saliency = mean of
      the annotators' scores, official 0-4 scale; a GT clip not named is predicted 0);
    - an answer with no readable timestamp inside the video (`duration` seconds) gets 0.
    """
    pred = parse_highlight_answer(text, duration)
    if pred is None:
        return 0.0
    gt_mean = {int(c): (float(np.mean(s)) if np.ndim(s) else float(s)) for c, s in zip(gt_clip_ids, gt_scores)}
    f2 = f_beta(set(pred), set(gt_mean), beta)
    wmse = weighted_mse(pred, gt_mean)
    return float(w_f * f2 + w_mse / (1.0 + wmse))


# ---------------------------------------------------------------------------------------------------------------
# One row's reward, as the trainer uses it


@dataclass(frozen=True)
class RewardParts:
    """Parts of one completion's reward: `accuracy` (IoU or highlight reward), `format` (0/1, None when the phase
    has no format reward)."""

    accuracy: float
    format: float | None

    @property
    def total(self) -> float:
        return self.accuracy + (self.format or 0.0)


def score_completion(text: str, record: dict, kind: str, cot: bool, profile: str = "canonical") -> RewardParts:
    """Reward parts of one completion for an annotation `record` (tempbench annotation dict).

    Grounding: accuracy = IoU reward with the first GT window. Highlights: accuracy = highlight reward with
    `record["saliency"]`. `cot` adds the format reward."""
    if kind == "highlights":
        sal = record.get("saliency") or {}
        acc = highlight_reward(text, sal.get("clip_ids", []), sal.get("scores", []), float(record["duration"]))
    else:
        acc = iou_reward(text, record["windows"][0], profile=profile)
    return RewardParts(acc, format_reward(text) if cot else None)
