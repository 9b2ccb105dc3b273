"""QVHighlights moment retrieval (MR) and highlight detection (HD) metrics, as the official scorer computes them.

Reproduces every key of moment_detr's `standalone_eval.eval.eval_submission` (including the "brief" block and
the 2-decimal rounding) from already-parsed, in-memory arrays; definitions in docs/metrics.md. Everything is
vectorised over queries (padded to (Q, 10, ...)); Python loops run only over the 10 ranks.

MR, per length bucket (short 0<L<=10, middle 10<L<=30, long 30<L<=150, full = everything, GT windows outside
a bucket's range dropped, a query kept if any GT window is in range):
- R1@t (t = 0.5 .. 0.95): top-1 = FIRST window in list order; its IoU (intersection / (max end - min start))
  with the GT window of highest true-union IoU (first on ties); hit if IoU >= t; mean over queries.
- mAP@t: first 10 windows in list order, stable-sorted by descending score; greedy matching to the unmatched GT
  window of highest IoU (if >= t); VOC-2011 all-point AP with #positives = #GT windows; mean over queries
  that have at least one window.
HD, per level Fair/Good/VeryGood (annotator score >= 2/3/4), 2-second clips, int(duration / 2) clips:
- HL-mAP: mean over queries and the 3 annotators of scikit-learn-precision_recall_curve-based AP (ties form one
  threshold; recall cast to float32; running-max precision; plain mean of precisions where recall changes).
- HL-Hit1: argmax of the saliency vector as given (lowest index on ties) is a hit if it is a clip of the video
  that any annotator marked positive.

Policies where the official code crashes (documented in docs/metrics.md):
- empty window list: dropped from mAP (as official), counted as a miss (IoU 0) in R1;
- empty saliency vector: HL AP computed on all-zero scores (as official's zero padding), Hit1 a miss;
- a video with 0 clips: HL AP 0 and Hit1 a miss.
Input validation (qid sets, finite numbers, clip ids in range, non-empty GT) belongs to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MR_THRESHOLDS = np.array([float(f"{t:.2f}") for t in np.linspace(0.5, 0.95, 10)])
#: R1 thresholds of the modified scorer used by CG-DETR & co. (`extended=True`): 0.3 .. 0.95.
MR_THRESHOLDS_EXTENDED = np.array([float(f"{t:.2f}") for t in np.linspace(0.3, 0.95, 14)])
MAX_PRED_WINDOWS = 10
#: (name, low, high): a GT window of length L is in the bucket when low < L <= high; "full" keeps everything.
LENGTH_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("short", 0.0, 10.0),
    ("middle", 10.0, 30.0),
    ("long", 30.0, 150.0),
    ("full", 0.0, 150.0),
)
HL_LEVELS: tuple[tuple[str, int], ...] = (("Fair", 2), ("Good", 3), ("VeryGood", 4))
CLIP_SECONDS = 2.0


def _key(t: float) -> str:
    return str(float(t))


def _r2(fraction: float) -> float:
    """Official rounding: percent with 2 decimals via string formatting (NaN stays NaN)."""
    return float(f"{100 * fraction:.2f}")


def _pad(rows: Sequence, cols: int | None, fill: float, limit: int | None = None):
    """List of 1-D (n_i,) or 2-D (n_i, cols) arrays -> padded (Q, W[, cols]) float64, lengths (Q,) (capped)."""
    q = len(rows)
    arrs = [np.asarray(r, dtype=np.float64) for r in rows]
    lengths = np.fromiter((a.shape[0] for a in arrs), dtype=np.int64, count=q)
    if limit is not None:
        lengths = np.minimum(lengths, limit)
    width = int(lengths.max()) if q else 0
    shape = (q, width) if cols is None else (q, width, cols)
    out = np.full(shape, fill, dtype=np.float64)
    if q and width:
        if cols is None:
            parts = [a[:n] for a, n in zip(arrs, lengths)]
        else:
            parts = [
                a[:n].reshape(n, -1)[:, :cols] if n else np.empty((0, cols)) for a, n in zip(arrs, lengths)
            ]
        flat = np.concatenate(parts, axis=0)
        row = np.repeat(np.arange(q), lengths)
        pos = np.arange(flat.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[row, pos] = flat
    return out, lengths


@dataclass
class MRBucketDetail:
    """Per-query moment-retrieval results of one length bucket (rows follow the input order)."""

    member: np.ndarray  # (Q,) bool: the query has a GT window in this bucket
    ap: np.ndarray  # (Q, 10) AP per IoU threshold; NaN when not a member or no predicted window
    r1_iou: np.ndarray  # (Q,) IoU of the top-1 window with its best GT window; NaN when not a member
    r1_gt_index: np.ndarray  # (Q,) index (into the query's GT windows) of the GT window R1 compares with; -1


@dataclass
class HLDetail:
    """Per-query highlight-detection results (rows follow the input order)."""

    n_clips: np.ndarray  # (Q,) int(duration / 2)
    ap: np.ndarray  # (Q, 3 levels, 3 annotators) official HL AP
    hit: np.ndarray  # (Q, 3 levels) bool HIT@1
    top_clip: np.ndarray  # (Q,) argmax of the saliency vector as given; -1 when the vector is empty


@dataclass
class QVHighlightsResult:
    """Official QVHighlights metrics plus the per-query arrays behind them."""

    official: dict  # exactly the structure and values of eval_submission (2 dp)
    full_precision: dict  # same structure, unrounded percentages
    qids: np.ndarray
    has_windows: np.ndarray | None  # (Q,) bool: at least one predicted window
    mr: dict[str, MRBucketDetail] | None = None
    hl: HLDetail | None = None
    r1_thresholds: np.ndarray = field(default_factory=lambda: MR_THRESHOLDS.copy())

    def terms(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(names, numerators (Q, K), denominators (Q, K)) with sum(num) / sum(den) == metric in percent.

        Names follow the official flat ("brief") naming: MR-{bucket}-mAP, MR-{bucket}-mAP@{t},
        MR-{bucket}-R1@{t}, HL-min-{level}-mAP, HL-min-{level}-Hit1 (and MR-{bucket}-mIoU when extended).
        Numerators are in percent already. Use with `stats.bootstrap_ci` / `stats.paired_test`.
        """
        names: list[str] = []
        nums: list[np.ndarray] = []
        dens: list[np.ndarray] = []
        if self.mr is not None:
            for name, _, _ in LENGTH_BUCKETS:
                d = self.mr[name]
                in_map = d.member & self.has_windows
                ap = np.where(in_map[:, None], d.ap, 0.0)
                names.append(f"MR-{name}-mAP")
                nums.append(100 * ap.mean(1))
                dens.append(in_map)
                for i, t in enumerate(MR_THRESHOLDS):
                    names.append(f"MR-{name}-mAP@{_key(t)}")
                    nums.append(100 * ap[:, i])
                    dens.append(in_map)
                iou = np.where(d.member, d.r1_iou, 0.0)
                for t in self.r1_thresholds:
                    names.append(f"MR-{name}-R1@{_key(t)}")
                    nums.append(100 * (d.member & (iou >= t)))
                    dens.append(d.member)
                if "MR-mIoU" in self.official.get(name, {}):
                    names.append(f"MR-{name}-mIoU")
                    nums.append(100 * iou)
                    dens.append(d.member)
        if self.hl is not None:
            q = self.hl.hit.shape[0]
            for li, (lvl, _) in enumerate(HL_LEVELS):
                names.append(f"HL-min-{lvl}-mAP")
                nums.append(100 * self.hl.ap[:, li, :].mean(1))
                dens.append(np.ones(q, dtype=bool))
                names.append(f"HL-min-{lvl}-Hit1")
                nums.append(100 * self.hl.hit[:, li])
                dens.append(np.ones(q, dtype=bool))
        if not names:
            return [], np.zeros((len(self.qids), 0)), np.zeros((len(self.qids), 0))
        return names, np.stack(nums, 1).astype(np.float64), np.stack(dens, 1).astype(np.float64)

    def query_details(self, i: int) -> dict:
        """JSON-ready per-query record (row i): per-bucket AP per threshold and R1 IoU, HL AP and hit."""
        out: dict = {"qid": int(self.qids[i])}
        if self.mr is not None:
            out["has_windows"] = bool(self.has_windows[i])
            for name, _, _ in LENGTH_BUCKETS:
                d = self.mr[name]
                if not d.member[i]:
                    continue
                ap = None if np.isnan(d.ap[i, 0]) else [float(x) for x in d.ap[i]]
                out[f"mr_{name}"] = {
                    "ap": ap,
                    "r1_iou": float(d.r1_iou[i]),
                    "r1_gt_index": int(d.r1_gt_index[i]),
                }
        if self.hl is not None:
            out["hl"] = {
                lvl: {"ap": [float(x) for x in self.hl.ap[i, li]], "hit1": bool(self.hl.hit[i, li])}
                for li, (lvl, _) in enumerate(HL_LEVELS)
            }
            out["hl_top_clip"] = int(self.hl.top_clip[i])
            out["n_clips"] = int(self.hl.n_clips[i])
        return out


# ----------------------------------------------------------------------------------------------------------
# moment retrieval


def _cross_iou_true_union(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """IoU with the true union, in the official operation order (0/0 -> NaN, as the official code gives).

    p (..., P, 2), g (..., G, 2) -> (..., P, G).
    """
    a1 = p[..., 1] - p[..., 0]
    a2 = g[..., 1] - g[..., 0]
    left = np.maximum(p[..., :, None, 0], g[..., None, :, 0])
    right = np.minimum(p[..., :, None, 1], g[..., None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = a1[..., :, None] + a2[..., None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / union


def _voc_ap(tp: np.ndarray, valid: np.ndarray, npos: np.ndarray) -> np.ndarray:
    """VOC-2011 all-point AP of ranked TP flags. tp (Q, T, R) bool, valid (Q, R), npos (Q,) -> (Q, T).

    Precision envelope over [0, p_1..p_n, 0] against recall [0, r_1..r_n, 1], summed over recall steps.
    Padded ranks (beyond n) repeat the last point, which adds nothing.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return _voc_ap_impl(tp, valid, npos)


def _voc_ap_impl(tp: np.ndarray, valid: np.ndarray, npos: np.ndarray) -> np.ndarray:
    fp = valid[:, None, :] & ~tp
    tp_c = np.cumsum(tp, axis=-1, dtype=np.float64)
    fp_c = np.cumsum(fp, axis=-1, dtype=np.float64)
    rec = tp_c / npos[:, None, None]
    prec = tp_c / (tp_c + fp_c)
    q, t, _ = tp.shape
    zeros = np.zeros((q, t, 1))
    mprec = np.concatenate([zeros, prec, zeros], axis=-1)
    mrec = np.concatenate([zeros, rec, np.ones((q, t, 1))], axis=-1)
    env = np.maximum.accumulate(mprec[..., ::-1], axis=-1)[..., ::-1]
    ap = np.zeros((q, t))
    for i in range(1, mrec.shape[-1]):  # sequential sum over recall steps; no-change steps add exactly 0
        step = mrec[..., i] - mrec[..., i - 1]
        ap = ap + np.where(step != 0, step * env[..., i], 0.0)
    return ap


def _match(iou: np.ndarray, pvalid: np.ndarray, gmask: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Greedy matching of score-ranked predictions to GT windows, per threshold -> TP flags (Q, T, R).

    Each prediction, in rank order, takes the not-yet-matched GT window with the highest IoU if that IoU
    >= t (official order: NaN first, ties to the highest GT index, as a reversed stable argsort), else it is a
    false positive.
    """
    q, r, m = iou.shape
    t = thresholds.shape[0]
    # work on the GT axis reversed, so that argmax's "first maximum" is the highest original index
    key = np.where(np.isnan(iou), np.inf, iou)[..., ::-1]
    key = np.ascontiguousarray(np.where(gmask[:, None, ::-1], key, -np.inf))
    lock = np.zeros((q, t, m), dtype=bool)
    tp = np.zeros((q, t, r), dtype=bool)
    qi = np.arange(q)[:, None]
    ti = np.arange(t)[None, :]
    th = thresholds[None, :, None]
    for k in range(r):
        kr = key[:, k, None, :]  # (Q, 1, M)
        elig = ~lock & (kr >= th)
        if m == 1:
            hit = elig[..., 0] & pvalid[:, k, None]
            lock[..., 0] |= hit
        else:
            j = np.argmax(np.where(elig, kr, -np.inf), axis=-1)
            hit = elig.any(-1) & pvalid[:, k, None]
            lock[qi, ti, j] |= hit
        tp[:, :, k] = hit
    return tp


def _r1_iou(top: np.ndarray, gw: np.ndarray, gmask: np.ndarray, has_pred: np.ndarray):
    """R1 IoU of the top-1 window (Q, 2) with its best GT window -> (iou (Q,), gt index (Q,))."""
    tu = _cross_iou_true_union(top[:, None, :], gw)[:, 0, :]  # (Q, M)
    key = np.where(np.isnan(tu), np.inf, tu)  # np.argmax picks the first NaN, as in the official code
    key = np.where(gmask, key, -np.inf)
    j = np.argmax(key, axis=1)
    g = gw[np.arange(gw.shape[0]), j]
    inter = np.maximum(0, np.minimum(top[:, 1], g[:, 1]) - np.maximum(top[:, 0], g[:, 0]))
    union = np.maximum(top[:, 1], g[:, 1]) - np.minimum(top[:, 0], g[:, 0])
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union != 0)
    iou = np.where(has_pred, iou, 0.0)
    return iou, np.where(gmask.any(1), j, -1)


def _with_scores(w) -> np.ndarray:
    """(n, 3) as given; (n, 2) windows without scores get scores -rank, i.e. list order is rank order."""
    a = np.asarray(w, dtype=np.float64)
    if a.ndim == 2 and a.shape[1] == 2:
        return np.concatenate([a, -np.arange(a.shape[0], dtype=np.float64)[:, None]], axis=1)
    return a.reshape(-1, 3) if a.size == 0 else a


def _width_groups(counts: np.ndarray):
    """Split rows by their number of GT windows into padded widths 1, 2, 4, 8, ... (less padding work)."""
    lo = 0
    w = 1
    top = int(counts.max()) if counts.size else 0
    while lo < top:
        rows = np.flatnonzero((counts > lo) & (counts <= w))
        if rows.size:
            yield rows, min(w, top)
        lo, w = w, 2 * w


def moment_retrieval(pred_windows: Sequence, gt_windows: Sequence):
    """Per-query MR results for every length bucket -> (has_windows (Q,), {bucket: MRBucketDetail}).

    Per bucket, the in-range GT windows of each member query are moved to the front (order kept, so the
    official tie rules still apply) and queries are processed in groups of similar GT counts.
    """
    pred_windows = [_with_scores(w[:MAX_PRED_WINDOWS]) for w in pred_windows]  # all mAP reads (list order)
    pw, n = _pad(pred_windows, 3, np.nan, limit=MAX_PRED_WINDOWS)
    if pw.shape[1] == 0:
        pw = np.full((len(pred_windows), 1, 3), np.nan)
    q, r = pw.shape[0], pw.shape[1]
    pvalid = np.arange(r)[None, :] < n[:, None]
    has = n > 0
    sort_key = np.where(pvalid, -pw[..., 2], np.inf)
    order = np.argsort(sort_key, axis=1, kind="stable")
    ps = np.take_along_axis(pw, order[..., None], axis=1)
    gw, gn = _pad(gt_windows, 2, np.nan)
    if gw.shape[1] == 0:
        gw = np.full((q, 1, 2), np.nan)
    gvalid = np.arange(gw.shape[1])[None, :] < gn[:, None]
    glen = gw[..., 1] - gw[..., 0]
    top = np.where(has[:, None], pw[:, 0, :2], 0.0)
    out = {}
    for name, lo, hi in LENGTH_BUCKETS:
        if name == "full":
            gmask = gvalid
        else:
            with np.errstate(invalid="ignore"):
                gmask = gvalid & (glen > lo) & (glen <= hi)
        count = gmask.sum(1)
        member = count > 0
        front = np.argsort(~gmask, axis=1, kind="stable")  # in-range windows first, original order kept
        gc = np.take_along_axis(gw, front[..., None], axis=1)
        ap = np.full((q, len(MR_THRESHOLDS)), np.nan)
        r1 = np.full(q, np.nan)
        j = np.full(q, -1, dtype=np.int64)
        for rows, w in _width_groups(count):
            gm = np.arange(w)[None, :] < count[rows, None]
            g = gc[rows, :w]
            iou = _cross_iou_true_union(ps[rows, :, :2], g)  # (rows, R, w)
            tp = _match(iou, pvalid[rows], gm, MR_THRESHOLDS)
            ap[rows] = _voc_ap(tp, pvalid[rows], count[rows].astype(np.float64))
            r1[rows], jj = _r1_iou(top[rows], g, gm, has[rows])
            j[rows] = front[rows, jj]
        ap[~has] = np.nan
        out[name] = MRBucketDetail(member=member, ap=ap, r1_iou=r1, r1_gt_index=j)
    return has, out


# ----------------------------------------------------------------------------------------------------------
# highlight detection


def _hl_ap(scores: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Official HL AP (moment_detr `get_ap` on scikit-learn's precision_recall_curve), vectorised.

    scores (Q, C) with valid (Q, C) marking the first n_clips positions; labels (Q, ..., C) in {0, 1}.
    Curve points are the distinct scores (ties form one threshold); precision = TP / #retrieved;
    recall = TP / #positives cast to float32; precision replaced by its maximum over all points of higher or
    equal recall (the running max in scikit-learn's order); AP = plain mean of those precisions at the points
    whose recall differs from the next-higher threshold's (equivalently: each distinct non-zero recall once).
    All-negative -> 0, all-positive -> 1, no clips -> 0.
    """
    q, c = scores.shape
    extra = labels.ndim - 2
    sort_key = np.where(valid, -scores, np.inf)
    order = np.argsort(sort_key, axis=1, kind="stable")
    s = np.take_along_axis(scores, order, axis=1)
    v = np.take_along_axis(valid, order, axis=1)
    nxt_same = np.zeros((q, c), dtype=bool)
    nxt_same[:, :-1] = v[:, 1:] & (s[:, 1:] == s[:, :-1])
    ends = v & ~nxt_same  # last position of each tie group
    shape = (q,) + (1,) * extra + (c,)
    y = np.take_along_axis(labels, order.reshape(shape), axis=-1).astype(np.float64)
    tps = np.cumsum(y, axis=-1)
    npos = tps[..., -1:]
    nclip = valid.sum(1).reshape((q,) + (1,) * extra)
    prec = tps / np.arange(1, c + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rec32 = (tps / npos).astype(np.float32)
    e = ends.reshape(shape)
    env = np.where(e, prec, -np.inf)
    env = np.maximum.accumulate(env[..., ::-1], axis=-1)[..., ::-1]
    r_end = np.where(e, rec32, np.float32(0))
    prev = np.concatenate([np.zeros(r_end.shape[:-1] + (1,), np.float32), r_end[..., :-1]], axis=-1)
    prev = np.maximum.accumulate(prev, axis=-1)
    inc = e & (rec32 != prev)
    cnt = inc.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ap = np.where(inc, env, 0.0).sum(-1) / cnt
    npos = npos[..., 0]
    ap = np.where(npos == 0, 0.0, np.where(npos == nclip, 1.0, ap))
    return np.where(nclip == 0, 0.0, ap)


def highlight_detection(
    pred_saliency: Sequence, durations, gt_clip_ids: Sequence, gt_saliency: Sequence,
    clip_seconds: float = CLIP_SECONDS,
) -> HLDetail:
    """Per-query HL AP (Q, 3 levels, 3 annotators) and HIT@1 (Q, 3 levels); see `_hl_ap` and the module doc.
    `clip_seconds`: the saliency clip length (QVHighlights: 2 s, from its task card)."""
    q = len(pred_saliency)
    dur = np.asarray(durations, dtype=np.float64)
    n_clips = np.floor(dur / clip_seconds).astype(np.int64)  # int(duration / 2) for durations >= 0
    c = max(int(n_clips.max()) if q else 0, 1)
    ids, k = _pad([np.asarray(x, dtype=np.float64) for x in gt_clip_ids], None, -1)
    sal, _ = _pad(gt_saliency, 3, 0.0)
    gt = np.zeros((q, c, 3))
    if ids.shape[1]:
        kv = np.arange(ids.shape[1])[None, :] < k[:, None]
        rows = np.broadcast_to(np.arange(q)[:, None], ids.shape)[kv]
        cols = ids[kv].astype(np.int64)
        if cols.size and (cols.min() < 0 or (cols >= n_clips[rows]).any()):
            bad = int(rows[(cols < 0) | (cols >= n_clips[rows])][0])
            raise ValueError(f"row {bad}: relevant_clip_ids outside 0..int(duration/2)-1")
        gt[rows, cols] = sal[:, : ids.shape[1]][kv]
    levels = np.array([m for _, m in HL_LEVELS], dtype=np.float64)
    labels = (gt[:, None, :, :] >= levels[None, :, None, None]).transpose(0, 1, 3, 2)  # (Q, L, A, C)
    # HIT@1 reads the argmax of the whole vector as given; AP reads the first n_clips scores (zero-padded): each
    # row is truncated to the longest clip count, so the cost follows the input, not its longest row x queries
    rows = [np.asarray(x, dtype=np.float64).reshape(-1) for x in pred_saliency]
    top = np.fromiter((int(np.argmax(a)) if a.size else -1 for a in rows), dtype=np.int64, count=q)
    fixed, _ = _pad([a[:c] for a in rows], None, 0.0)
    if fixed.shape[1] < c:
        fixed = np.concatenate([fixed, np.zeros((q, c - fixed.shape[1]))], axis=1)
    valid = np.arange(c)[None, :] < n_clips[:, None]
    fixed = np.where(valid, fixed, 0.0)
    ap = _hl_ap(fixed, valid, labels)
    ok = (top >= 0) & (top < n_clips)
    any_pos = labels.any(axis=2)  # (Q, L, C)
    hit = np.take_along_axis(any_pos, np.clip(top, 0, c - 1)[:, None, None], axis=2)[..., 0] & ok[:, None]
    return HLDetail(n_clips=n_clips, ap=ap, hit=hit, top_clip=top)


# ----------------------------------------------------------------------------------------------------------
# official output


def _mean_rows(x: np.ndarray) -> np.ndarray:
    if x.shape[0] == 0:
        return np.full(x.shape[1:], np.nan)
    return x.mean(0)


def evaluate(
    qids,
    gt_windows: Sequence,
    durations,
    gt_clip_ids: Sequence | None = None,
    gt_saliency: Sequence | None = None,
    pred_windows: Sequence | None = None,
    pred_saliency: Sequence | None = None,
    extended: bool = False,
    clip_seconds: float = CLIP_SECONDS,
) -> QVHighlightsResult:
    """All official QVHighlights metrics from parsed arrays (one entry per query, same order in every argument).

    gt_windows: (m_i, 2) GT windows; durations: (Q,) seconds; gt_clip_ids: (k_i,) relevant clip ids and
    gt_saliency: (k_i, 3) annotator scores (needed for HD); pred_windows: (n_i, 3) [start, end, score] in list
    order (None: no MR, as a submission without `pred_relevant_windows`); pred_saliency: (c_i,) scores (None:
    no HD). `extended=True` adds R1@0.3..0.45 and MR-mIoU per bucket (the modified scorer of CG-DETR & co.).
    Returns a QVHighlightsResult whose `.official` equals eval_submission's output on valid input.
    """
    qids = np.asarray(qids)
    metrics: dict = {}
    full: dict = {}
    brief_mr: dict = {}
    brief_mr_full: dict = {}
    has = mr = hl = None
    r1_th = MR_THRESHOLDS_EXTENDED if extended else MR_THRESHOLDS
    if pred_windows is not None:
        has, mr = moment_retrieval(pred_windows, gt_windows)
        for name, _, _ in LENGTH_BUCKETS:
            d = mr[name]
            ap_rows = d.ap[d.member & has]
            ap_thds = _mean_rows(ap_rows)
            avg = float(np.mean(ap_thds))
            iou = d.r1_iou[d.member]
            r1 = {_key(t): (float(np.mean(iou >= t)) if iou.size else float("nan")) for t in r1_th}
            ap_d = {_key(t): float(v) for t, v in zip(MR_THRESHOLDS, ap_thds)}
            ap_d["average"] = avg
            entry_full: dict = {}
            entry: dict = {}
            if extended:
                miou = float(np.mean(iou)) if iou.size else float("nan")
                entry_full["MR-mIoU"] = 100 * miou
                entry["MR-mIoU"] = _r2(miou)
            entry_full["MR-mAP"] = {k: 100 * v for k, v in ap_d.items()}
            entry_full["MR-R1"] = {k: 100 * v for k, v in r1.items()}
            entry["MR-mAP"] = {k: _r2(v) for k, v in ap_d.items()}
            entry["MR-R1"] = {k: _r2(v) for k, v in r1.items()}
            metrics[name] = entry
            full[name] = entry_full
        for src, dst in ((metrics, brief_mr), (full, brief_mr_full)):
            b = {
                "MR-full-mAP": src["full"]["MR-mAP"]["average"],
                "MR-full-mAP@0.5": src["full"]["MR-mAP"]["0.5"],
                "MR-full-mAP@0.75": src["full"]["MR-mAP"]["0.75"],
                "MR-short-mAP": src["short"]["MR-mAP"]["average"],
                "MR-middle-mAP": src["middle"]["MR-mAP"]["average"],
                "MR-long-mAP": src["long"]["MR-mAP"]["average"],
                "MR-full-R1@0.5": src["full"]["MR-R1"]["0.5"],
                "MR-full-R1@0.7": src["full"]["MR-R1"]["0.7"],
            }
            if extended:
                b["MR-full-R1@0.3"] = src["full"]["MR-R1"]["0.3"]
                b["MR-full-mIoU"] = src["full"]["MR-mIoU"]
            dst.update(sorted(b.items()))
    brief = dict(brief_mr)
    brief_full = dict(brief_mr_full)
    if pred_saliency is not None:
        if gt_clip_ids is None or gt_saliency is None:
            raise ValueError("highlight detection needs gt_clip_ids and gt_saliency")
        hl = highlight_detection(pred_saliency, durations, gt_clip_ids, gt_saliency, clip_seconds)
        for li, (lvl, _) in enumerate(HL_LEVELS):
            if hl.ap.shape[0]:
                m_ap = float(np.mean(np.ascontiguousarray(hl.ap[:, li, :])))
                hit1 = float(np.mean(hl.hit[:, li]))
            else:
                m_ap = hit1 = float("nan")
            metrics[f"HL-min-{lvl}"] = {"HL-mAP": _r2(m_ap), "HL-Hit1": _r2(hit1)}
            full[f"HL-min-{lvl}"] = {"HL-mAP": 100 * m_ap, "HL-Hit1": 100 * hit1}
            for src, dst in ((metrics, brief), (full, brief_full)):
                dst[f"HL-min-{lvl}-mAP"] = src[f"HL-min-{lvl}"]["HL-mAP"]
                dst[f"HL-min-{lvl}-Hit1"] = src[f"HL-min-{lvl}"]["HL-Hit1"]
    official = {"brief": brief, **dict(sorted(metrics.items()))}
    full_precision = {"brief": brief_full, **dict(sorted(full.items()))}
    return QVHighlightsResult(
        official=official,
        full_precision=full_precision,
        qids=qids,
        has_windows=has,
        mr=mr,
        hl=hl,
        r1_thresholds=r1_th.copy(),
    )
