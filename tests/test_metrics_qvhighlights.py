"""Tests of tempbench.metrics.qvhighlights against the official moment_detr scorer's definition and outputs.

- Real prediction files (shared/data/qvhighlights/preds): every number of every metrics json next to a val
  prediction file is reproduced; the other files reproduce the `brief` values that the official
  `standalone_eval.eval.eval_submission` (moment_detr, scikit-learn 1.9.1, numpy 2.4.6, match_number=False)
  printed for them when this test was written.
- Differential tests against slow, literal re-implementations of the official definitions (written here from
  docs/metrics.md / the official algorithm, loops per query) on random inputs full of ties.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared_data
from hypothesis import given, settings
from hypothesis import strategies as st

from tempbench.metrics import qvhighlights as qvh


def _data_dir() -> Path:
    """shared/data/qvhighlights with the released predictions (preds/); skips (fails with TEMPBENCH_REQUIRE_DATA=1)
    when absent (tests/conftest.py)."""
    return require_shared_data("qvhighlights", "preds").parent


# ------------------------------------------------------------------------------------------------ loader


def _load_rows(path: Path) -> list[dict]:
    text = path.read_text()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _score_file(pred: Path, gt: Path, extended: bool = False) -> qvh.QVHighlightsResult:
    """Minimal test loader: JSON lines -> arrays; queries restricted to qids in both (match_number=False)."""
    sub = _load_rows(pred)
    gts = {r["qid"]: r for r in _load_rows(gt)}
    sub = [s for s in sub if s["qid"] in gts]
    g = [gts[s["qid"]] for s in sub]
    pw = (
        [np.asarray(s["pred_relevant_windows"], float) for s in sub]
        if "pred_relevant_windows" in sub[0]
        else None
    )
    ps = (
        [np.asarray(s["pred_saliency_scores"], float) for s in sub]
        if "pred_saliency_scores" in sub[0]
        else None
    )
    return qvh.evaluate(
        [s["qid"] for s in sub],
        [np.asarray(x["relevant_windows"], float) for x in g],
        [x["duration"] for x in g],
        [x["relevant_clip_ids"] for x in g],
        [x["saliency_scores"] for x in g],
        pw,
        ps,
        extended=extended,
    )


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


# --------------------------------------------------------------------------------- real reference files

WITH_METRICS = [
    (
        "moment_detr_sample/sample_val_preds.jsonl",
        "moment_detr_sample/sample_val_preds_metrics_raw.json",
        False,
    ),
    (
        "moment_detr_ckpt/inference_hl_val_test_code_preds.jsonl",
        "moment_detr_ckpt/inference_hl_val_test_code_preds_metrics.json",
        False,
    ),
    ("qd_detr_video/best_hl_val_preds.jsonl", "qd_detr_video/best_hl_val_preds_metrics.json", False),
    # CG-DETR's scorer adds R1@0.3..0.45 and MR-mIoU: extended=True reproduces those too.
    ("cg_detr/best_hl_val_preds.jsonl", "cg_detr/best_hl_val_preds_metrics.json", True),
]


@pytest.mark.parametrize(
    "pred,metrics,extended", WITH_METRICS, ids=[p.split("/")[0] for p, _, _ in WITH_METRICS]
)
def test_reproduces_every_number_of_metrics_file(pred, metrics, extended):
    d = _data_dir()
    res = _score_file(d / "preds" / pred, d / "highlight_val_release.jsonl", extended=extended)
    ref = json.loads((d / "preds" / metrics).read_text())
    assert res.official == ref  # every key, every value, same nesting
    assert list(res.official) == list(ref) and list(res.official["brief"]) == list(ref["brief"])
    if extended:  # the official keys alone, as the official scorer gives them
        plain = _score_file(d / "preds" / pred, d / "highlight_val_release.jsonl").official
        flat_ref, flat = _flatten(ref), _flatten(plain)
        assert set(flat) < set(flat_ref)
        assert all(flat[k] == flat_ref[k] for k in flat)


# brief values printed by the official eval_submission for these files (see module doc)
OFFICIAL_BRIEF = {
    # TimeChat's metrics.json next to this file (26.45, 22.35, ...) was not produced from this prediction file:
    # the official scorer and TimeChat's own copy of it (identical code) both give the values below.
    "timechat_vhd/example_pred_file.json": {"HL-min-Fair-mAP": 28.8, "HL-min-Fair-Hit1": 24.61, "HL-min-Good-mAP": 22.8, "HL-min-Good-Hit1": 23.17, "HL-min-VeryGood-mAP": 13.24, "HL-min-VeryGood-Hit1": 18.87},
    "eatr/best_hl_val_preds.jsonl": {"MR-full-R1@0.5": 60.9, "MR-full-R1@0.7": 46.13, "MR-full-mAP": 41.43, "MR-full-mAP@0.5": 62.01, "MR-full-mAP@0.75": 42.17, "MR-long-mAP": 48.02, "MR-middle-mAP": 42.68, "MR-short-mAP": 9.67, "HL-min-Fair-mAP": 70.22, "HL-min-Fair-Hit1": 69.94, "HL-min-Good-mAP": 59.92, "HL-min-Good-Hit1": 67.94, "HL-min-VeryGood-mAP": 36.9, "HL-min-VeryGood-Hit1": 57.87},
    "tr_detr/best_hl_val_preds.jsonl": {"MR-full-R1@0.5": 67.1, "MR-full-R1@0.7": 51.48, "MR-full-mAP": 45.09, "MR-full-mAP@0.5": 66.27, "MR-full-mAP@0.75": 46.42, "MR-long-mAP": 51.71, "MR-middle-mAP": 46.91, "MR-short-mAP": 9.93, "HL-min-Fair-mAP": 77.12, "HL-min-Fair-Hit1": 78.0, "HL-min-Good-mAP": 65.99, "HL-min-Good-Hit1": 76.26, "HL-min-VeryGood-mAP": 40.55, "HL-min-VeryGood-Hit1": 64.77},
    "cg_detr/hl_test_submission.jsonl": {"MR-full-R1@0.5": 65.43, "MR-full-R1@0.7": 48.38, "MR-full-mAP": 42.86, "MR-full-mAP@0.5": 64.51, "MR-full-mAP@0.75": 42.77, "MR-long-mAP": 47.32, "MR-middle-mAP": 45.23, "MR-short-mAP": 9.61, "HL-min-Fair-mAP": 77.91, "HL-min-Fair-Hit1": 79.9, "HL-min-Good-mAP": 66.62, "HL-min-Good-Hit1": 78.08, "HL-min-VeryGood-mAP": 40.33, "HL-min-VeryGood-Hit1": 66.21},
    "tr_detr/hl_test_submission.jsonl": {"MR-full-R1@0.5": 64.66, "MR-full-R1@0.7": 48.96, "MR-full-mAP": 42.62, "MR-full-mAP@0.5": 63.98, "MR-full-mAP@0.75": 43.73, "MR-long-mAP": 50.8, "MR-middle-mAP": 43.27, "MR-short-mAP": 8.22, "HL-min-Fair-mAP": 76.96, "HL-min-Fair-Hit1": 77.76, "HL-min-Good-mAP": 65.94, "HL-min-Good-Hit1": 76.26, "HL-min-VeryGood-mAP": 39.91, "HL-min-VeryGood-Hit1": 63.42},
}  # fmt: skip


@pytest.mark.parametrize("pred", sorted(OFFICIAL_BRIEF))
def test_other_files_score_as_official(pred):
    d = _data_dir()
    gt = "highlight_test_with_gt.jsonl" if "test_submission" in pred else "highlight_val_release.jsonl"
    res = _score_file(d / "preds" / pred, d / gt)
    assert res.official["brief"] == OFFICIAL_BRIEF[pred]
    flat = _flatten(res.official)
    assert all(isinstance(v, float) and not math.isnan(v) for v in flat.values())
    if pred.startswith("timechat"):
        stale = json.loads((d / "preds" / "timechat_vhd" / "metrics.json").read_text())
        assert stale["brief"] != res.official["brief"]  # documented: that json came from another file
        assert res.mr is None and "full" not in res.official


def test_terms_reproduce_full_precision_values():
    d = _data_dir()
    res = _score_file(
        d / "preds" / "moment_detr_sample" / "sample_val_preds.jsonl", d / "highlight_val_release.jsonl"
    )
    names, num, den = res.terms()
    values = num.sum(0) / den.sum(0)
    fp = res.full_precision
    lookup = dict(fp["brief"])
    for b in ("short", "middle", "long", "full"):
        lookup[f"MR-{b}-mAP"] = fp[b]["MR-mAP"]["average"]
        for k, v in fp[b]["MR-mAP"].items():
            if k != "average":
                lookup[f"MR-{b}-mAP@{k}"] = v
        for k, v in fp[b]["MR-R1"].items():
            lookup[f"MR-{b}-R1@{k}"] = v
    assert set(lookup) <= set(names) | set()
    for n, v in zip(names, values):
        assert v == pytest.approx(lookup[n], rel=1e-12, abs=1e-12), n
    for n, v in res.official["brief"].items():
        assert float(f"{values[names.index(n)]:.2f}") == v
    rec = res.query_details(0)
    json.dumps(rec)
    assert rec["qid"] == int(res.qids[0]) and "hl" in rec and "mr_full" in rec


# ------------------------------------------------------------------------------ literal HL reference


def ref_precision_recall_curve(y: list[float], s: list[float]):
    """scikit-learn precision_recall_curve, literally: thresholds at distinct scores, descending, then
    reversed (recall decreasing) with the final point precision 1 / recall 0 appended."""
    order = sorted(range(len(s)), key=lambda i: -s[i])
    tps, fps = [], []
    tp = fp = 0
    for pos, i in enumerate(order):
        tp += y[i]
        fp += 1 - y[i]
        last = pos == len(order) - 1 or s[order[pos + 1]] != s[i]
        if last:
            tps.append(tp)
            fps.append(fp)
    precision = [t / (t + f) for t, f in zip(tps, fps)]
    recall = [t / tps[-1] for t in tps]
    return precision[::-1] + [1.0], recall[::-1] + [0.0]


def ref_get_ap(y: list[float], s: list[float]) -> float:
    """moment_detr get_ap (interpolate=True, point_11=False), literally."""
    if len(set(y)) == 1:
        return 0.0 if y[0] == 0 else 1.0
    precision, recall = ref_precision_recall_curve(y, s)
    recall = [np.float32(r) for r in recall]
    for i in range(1, len(precision)):
        precision[i] = max(precision[i - 1], precision[i])
    idx = [i for i in range(len(recall) - 1) if recall[i] != recall[i + 1]]
    return float(np.mean([precision[i] for i in idx]))


def ref_voc_ap_of_ranking(y: list[float], s: list[float]) -> float:
    """The VOC recall-weighted sum, for contrast (NOT the HL definition)."""
    p, r = ref_precision_recall_curve(y, s)
    p, r = p[::-1], r[::-1]  # recall increasing
    env = [max(p[i:]) for i in range(len(p))]
    return sum((r[i] - r[i - 1]) * env[i] for i in range(1, len(r)))


def test_hl_ap_tie_example_from_notes():
    y, s = [1, 0, 0, 1, 1, 1, 0], [3, 2, 2, 1, 1, 1, 1]
    assert ref_get_ap(y, s) == pytest.approx(11 / 14, abs=1e-15)  # mean(4/7, 1): 0.786
    assert ref_voc_ap_of_ranking(y, s) == pytest.approx(19 / 28, abs=1e-15)  # .25 * 1 + .75 * 4/7: 0.679
    ap = qvh._hl_ap(np.array([s], float), np.ones((1, 7), bool), np.array([y], float))
    assert ap[0] == pytest.approx(11 / 14, abs=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_hl_ap_matches_literal_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    q, c = 25, int(rng.integers(1, 40))
    n = rng.integers(0, c + 1, size=q)  # clip counts, some 0
    levels = rng.integers(2, 6)
    scores = rng.integers(0, levels, size=(q, c)).astype(float)  # heavy ties
    scores[rng.random((q, c)) < 0.5] = 0.0  # mostly 0, as MLLM answers parsed to saliency
    labels = (rng.random((q, 3, c)) < rng.random((q, 1, 1))).astype(float)
    valid = np.arange(c)[None, :] < n[:, None]
    labels = labels * valid[:, None, :]
    got = qvh._hl_ap(np.where(valid, scores, 0.0), valid, labels)
    for i in range(q):
        for a in range(3):
            if n[i] == 0:
                assert got[i, a] == 0.0
                continue
            want = ref_get_ap(list(labels[i, a, : n[i]]), list(scores[i, : n[i]]))
            assert got[i, a] == pytest.approx(want, rel=1e-12, abs=1e-12)


def ref_hl_query(pred: list[float], duration: float, clip_ids, sal):
    """One query of the official eval_highlight: AP (3 levels, 3 annotators) and Hit1 (3 levels)."""
    n = int(duration / 2)
    full = np.zeros((n, 3))
    for cid, row in zip(clip_ids, sal):
        full[cid] = row
    y_pred = list(pred[:n]) + [0.0] * max(0, n - len(pred))
    ap = np.zeros((3, 3))
    hit = np.zeros(3, bool)
    top = int(np.argmax(pred)) if len(pred) else -1
    for li, m in enumerate((2, 3, 4)):
        binary = (full >= m).astype(float)
        for a in range(3):
            ap[li, a] = ref_get_ap(list(binary[:, a]), y_pred) if n else 0.0
        hit[li] = 0 <= top < n and binary[top].max() > 0
    return ap, hit


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_highlight_detection_matches_literal_reference(seed):
    rng = np.random.default_rng(seed)
    q = 20
    durations = rng.choice([2.0, 7.0, 20.0, 31.5, 60.0], size=q)
    preds, ids, sals = [], [], []
    for i in range(q):
        n = int(durations[i] / 2)
        k = int(rng.integers(0, n + 1))
        ids.append(sorted(rng.choice(n, size=k, replace=False).tolist()) if k else [])
        sals.append(rng.integers(0, 5, size=(k, 3)).tolist())
        length = int(rng.integers(0, n + 8))  # shorter, equal or longer than the clip count; 0 = empty
        p = rng.integers(0, 3, size=length).astype(float)
        preds.append(p)
    det = qvh.highlight_detection(preds, durations, ids, sals)
    for i in range(q):
        ap, hit = ref_hl_query(list(preds[i]), durations[i], ids[i], sals[i])
        np.testing.assert_allclose(det.ap[i], ap, rtol=1e-12, atol=1e-12)
        assert det.hit[i].tolist() == hit.tolist()


def test_hit1_policies():
    # argmax 5 >= 3 clips -> miss; ties -> lowest index; empty vector -> miss (official crashes)
    det = qvh.highlight_detection(
        [np.array([0, 0, 0, 0, 0, 9.0]), np.array([1.0, 1.0, 0.0]), np.array([])],
        [6.0, 6.0, 6.0],
        [[0, 1, 2], [0], [1]],
        [[[4, 4, 4]] * 3, [[4, 4, 4]], [[4, 4, 4]]],
    )
    assert det.hit[:, 0].tolist() == [False, True, False]
    assert det.top_clip.tolist() == [5, 0, -1]
    # empty vector: AP on zero-padded scores (one tie group): 1 positive of 3 clips -> precision 1/3
    assert det.ap[2, 0].tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError, match="relevant_clip_ids"):
        qvh.highlight_detection([np.zeros(3)], [6.0], [[3]], [[[1, 1, 1]]])


# ------------------------------------------------------------------------------ literal MR reference


def ref_iou_true_union(p, g) -> float:
    inter = max(0.0, min(p[1], g[1]) - max(p[0], g[0]))
    union = (p[1] - p[0]) + (g[1] - g[0]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(inter) / np.float64(union))


def ref_query_ap(gts, preds, thresholds) -> list[float]:
    """compute_average_precision_detection for one query, literally (first 10, stable sort by -score,
    GT tried in reversed stable argsort of IoU, VOC-2011 interpolated AP)."""
    preds = sorted(preds[:10], key=lambda w: -w[2])
    m, t_n = len(gts), len(thresholds)
    lock = [[False] * m for _ in range(t_n)]
    tp = [[0] * len(preds) for _ in range(t_n)]
    fp = [[0] * len(preds) for _ in range(t_n)]
    for idx, p in enumerate(preds):
        tiou = np.array([ref_iou_true_union(p, g) for g in gts])
        order = np.argsort(tiou, kind="stable")[::-1]
        for t, thr in enumerate(thresholds):
            for j in order:
                if tiou[j] < thr:
                    fp[t][idx] = 1
                    break
                if lock[t][j]:
                    continue
                tp[t][idx] = 1
                lock[t][j] = True
                break
            if not tp[t][idx] and not fp[t][idx]:
                fp[t][idx] = 1
    out = []
    for t in range(t_n):
        tc = np.cumsum(tp[t]).astype(float)
        fc = np.cumsum(fp[t]).astype(float)
        rec = list(tc / m)
        prec = list(tc / (tc + fc))
        mp = [0.0] + prec + [0.0]
        mr = [0.0] + rec + [1.0]
        for i in range(len(mp) - 2, -1, -1):
            mp[i] = max(mp[i], mp[i + 1])
        out.append(sum((mr[i] - mr[i - 1]) * mp[i] for i in range(1, len(mr)) if mr[i] != mr[i - 1]))
    return out


def ref_query_r1_iou(gts, top) -> float:
    ious = np.array([ref_iou_true_union(top, g) for g in gts])
    g = gts[int(np.argmax(ious))]
    inter = max(0.0, min(top[1], g[1]) - max(top[0], g[0]))
    union = max(top[1], g[1]) - min(top[0], g[0])
    return inter / union if union != 0 else 0.0


def _random_mr(rng, q):
    preds, gts = [], []
    for _ in range(q):
        m = int(rng.integers(1, 5))
        g = []
        for _ in range(m):
            s = 2.0 * rng.integers(0, 70)
            length = 2.0 * rng.choice([0, 1, 2, 4, 5, 8, 15, 16, 20, 40])
            g.append([s, min(150.0, s + max(length, 2.0 if rng.random() < 0.9 else 0.0))])  # some zero-length
        n = int(rng.integers(0, 14))
        p = []
        for _ in range(n):
            if g and rng.random() < 0.4:  # near or exact copies of GT windows -> IoU ties, duplicates
                base = g[int(rng.integers(0, len(g)))]
                jit = 2.0 * rng.integers(-2, 3, size=2)
                s, e = base[0] + jit[0], base[1] + jit[1]
            else:
                s = 2.0 * rng.integers(0, 75)
                e = s + 2.0 * rng.integers(0, 30)
            if e < s:
                s, e = e, s
            p.append([s, e, float(rng.choice([0.1, 0.5, 0.5, 0.9]))])
        preds.append(p)
        gts.append(g)
    return preds, gts


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_mr_matches_literal_reference(seed):
    rng = np.random.default_rng(seed)
    preds, gts = _random_mr(rng, 30)
    res = qvh.evaluate(
        list(range(30)),
        [np.asarray(g, float) for g in gts],
        [150.0] * 30,
        pred_windows=[np.asarray(p, float).reshape(-1, 3) for p in preds],
    )
    thr = list(qvh.MR_THRESHOLDS)
    for name, lo, hi in qvh.LENGTH_BUCKETS:
        d = res.mr[name]
        ap_rows, r1_rows = [], []
        for i in range(30):
            g = gts[i] if name == "full" else [w for w in gts[i] if lo < w[1] - w[0] <= hi]
            assert bool(d.member[i]) == bool(g)
            if not g:
                assert np.isnan(d.ap[i]).all() and np.isnan(d.r1_iou[i])
                continue
            want_r1 = ref_query_r1_iou(g, preds[i][0]) if preds[i] else 0.0  # empty list: miss (policy)
            assert d.r1_iou[i] == pytest.approx(want_r1, abs=1e-15)
            r1_rows.append(want_r1)
            if not preds[i]:
                assert np.isnan(d.ap[i]).all()  # dropped from mAP, as official
                continue
            want = ref_query_ap(g, preds[i], thr)
            np.testing.assert_allclose(d.ap[i], want, rtol=1e-12, atol=1e-12)
            ap_rows.append(want)
        fp = res.full_precision[name]
        if ap_rows:
            mean = np.mean(ap_rows, axis=0)
            assert fp["MR-mAP"]["average"] == pytest.approx(100 * mean.mean(), rel=1e-9)
            assert [fp["MR-mAP"][qvh._key(t)] for t in thr] == pytest.approx(list(100 * mean), rel=1e-9)
        if r1_rows:
            r1 = np.array(r1_rows)
            assert [fp["MR-R1"][qvh._key(t)] for t in thr] == pytest.approx(
                [100 * np.mean(r1 >= t) for t in thr], rel=1e-12
            )


def test_mr_policies_and_official_details():
    gt = [np.array([[0.0, 10.0]]), np.array([[0.0, 10.0]]), np.array([[0.0, 10.0], [20.0, 40.0]])]
    preds = [
        np.zeros((0, 3)),  # empty list: dropped from mAP, R1 miss
        # top-1 is the FIRST in list order, not the best score
        np.array([[0.0, 10.0, 0.1], [50.0, 60.0, 0.9]]),
        np.array([[0.0, 10.0, 0.5], [0.0, 10.0, 0.5], [20.0, 40.0, 0.5]]),  # duplicate -> false positive
    ]
    res = qvh.evaluate([1, 2, 3], gt, [150.0] * 3, pred_windows=preds)
    full = res.mr["full"]
    assert res.has_windows.tolist() == [False, True, True]
    assert full.r1_iou.tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(full.ap[0]).all()
    # query 2: ranked by score: [50,60] (FP), [0,10] (TP) -> AP = 1/2
    assert full.ap[1].tolist() == [0.5] * 10
    # query 3: TP, FP (duplicate), TP -> precision 1, 1/2, 2/3; recall .5, .5, 1 -> AP = .5*1 + .5*(2/3)
    assert full.ap[2] == pytest.approx([0.5 + 0.5 * 2 / 3] * 10)
    assert res.official["full"]["MR-R1"]["0.5"] == pytest.approx(66.67)
    assert res.official["full"]["MR-mAP"]["0.5"] == _r2_ref((0.5 + 0.5 + 1 / 3) / 2)
    assert res.mr["short"].member.tolist() == [True, True, True]
    assert res.mr["middle"].member.tolist() == [False, False, True]
    assert res.mr["long"].member.tolist() == [False, False, False]
    assert math.isnan(res.official["long"]["MR-mAP"]["average"])  # empty bucket -> NaN, as official
    # windows without scores: list order is rank order
    res2 = qvh.evaluate(
        [1], [np.array([[0.0, 10.0]])], [150.0], pred_windows=[np.array([[50.0, 60.0], [0.0, 10.0]])]
    )
    assert res2.mr["full"].ap[0, 0] == 0.5 and res2.mr["full"].r1_iou[0] == 0.0


def _r2_ref(x: float) -> float:
    return float(f"{100 * x:.2f}")


def test_nothing_to_score():
    res = qvh.evaluate([7], [np.array([[0.0, 2.0]])], [10.0])
    assert res.official == {"brief": {}}
    names, num, den = res.terms()
    assert names == [] and num.shape == (1, 0)


def test_bucket_gt_index_maps_back_to_the_original_windows():
    gt = [np.array([[0.0, 40.0], [50.0, 56.0], [60.0, 80.0]])]
    res = qvh.evaluate([1], gt, [150.0], pred_windows=[[[50.0, 56.0, 0.9], [60.0, 80.0, 0.5]]])
    assert res.mr["short"].r1_gt_index.tolist() == [1]  # only [50, 56] is short
    assert res.mr["middle"].r1_gt_index.tolist() == [2]
    assert res.mr["middle"].r1_iou.tolist() == [0.0]  # top-1 [50, 56] vs the middle window [60, 80]
    assert res.mr["middle"].ap[0].tolist() == [0.5] * 10  # ranked 2nd: FP then TP -> precision 1/2
    assert res.mr["full"].r1_gt_index.tolist() == [1]
    assert res.mr["full"].ap[0].tolist() == pytest.approx([2 / 3] * 10)  # 2 of 3 found at precision 1
    # plain lists, and an empty list, are accepted as windows
    res2 = qvh.evaluate([1, 2], gt * 2, [150.0] * 2, pred_windows=[[], [[0.0, 40.0, 1.0]]])
    assert res2.has_windows.tolist() == [False, True]
