"""Scoring: annotation records + prediction rows + a profile -> a `Result`. A pure function: no file is read or
written here (`tempbench.api` loads the files once and writes the records).

Matching (`tempbench.predictions`), parsing under a named profile (`tempbench.parsing`), the metrics
(`tempbench.metrics`), clustered bootstrap CIs (`tempbench.metrics.stats`) and per-query details.

Policies (docs/metrics.md): a parse failure, an `error` row or a missing query counts as a miss (IoU 0) and stays
in the denominator; ground truth is used as published; predictions outside the video are counted, never clipped;
reversed given windows are swapped and counted. Kept off this path on purpose: jsonschema per row, torch.
"""

from __future__ import annotations

import math

import numpy as np

from . import __version__
from .errors import TempbenchError
from .predictions import Matched, PredictionRow, Predictions, match_predictions
from .results import (
    Breakdown,
    BreakdownRow,
    CIMethod,
    Comparison,
    ComparisonRow,
    Counts,
    Provenance,
    QueryDetail,
    Result,
    RunConfig,
)
from .tasks import AnnotatedSplit

BY_CHOICES = ("length", "position", "duration")
DETAIL_WINDOWS = 10  # windows kept per query in the details (QVHighlights mAP reads the first 10)
RECALL_K = 5  # R@5: the only metric that reads past the first window of a grounding answer
KEEP_WINDOWS = max(DETAIL_WINDOWS, RECALL_K)  # what scoring keeps of a row's windows (cost follows the input size)


class ScoringWarning(UserWarning):
    """Input that is scored under a documented policy but deserves the user's attention."""


# ---------------------------------------------------------------------------------------------------------------
# grounding


def _parse_rows(records, matched: dict, profile, counts: dict):
    """Per query: (windows | None, status, detail, outside). Failures get None. Only the first `KEEP_WINDOWS` given
    windows are kept (no metric reads further); `outside` (any window, all of them checked, partly outside the
    video) is known here for given windows and None for parsed text."""
    from .parsing import parse_span, round_span

    out = []
    for rec in records:
        row: PredictionRow | None = matched.get(rec["qid"])
        if row is None:
            counts["missing"] += 1
            out.append((None, "missing", "no prediction for this query", None))
        elif row.error is not None:
            counts["errors"] += 1
            out.append((None, "error", row.error, None))
        elif row.windows is not None:
            if not row.windows:
                counts["empty_windows"] += 1
                out.append(([], "failed", "empty window list", None))
                continue
            kept, reversed_any, outside = [], False, False
            duration = rec["duration"]
            for i, w in enumerate(row.windows):
                s, e = w[0], w[1]
                if s > e:
                    s, e = e, s
                    reversed_any = True
                if profile.round_to:
                    s, e = round_span((s, e), profile.round_to)
                if s < 0 or e > duration:
                    outside = True
                if i < KEEP_WINDOWS:
                    kept.append([s, e, *w[2:]])
            if reversed_any:
                counts["reversed_windows"] += 1
            out.append((kept, "repaired" if reversed_any else "ok", "windows given", outside))
        elif row.output is not None:
            parsed = parse_span(row.output, profile.name)
            out.append((None if parsed.span is None else [list(parsed.span)], parsed.status, parsed.detail, None))
        else:
            counts["no_answer"] += 1
            out.append((None, "failed", "row has neither output nor windows", None))
    return out


def _vid_codes(records) -> np.ndarray:
    vids: dict = {}
    return np.fromiter((vids.setdefault(r["vid"], len(vids)) for r in records), dtype=np.int64, count=len(records))


def _breakdown(by, records, values, names) -> Breakdown:
    """Metrics per ground-truth bucket: moment length (s), relative position (thirds), video duration (s)."""
    gt = np.array([r["windows"][0] if r["windows"] else [np.nan, np.nan] for r in records], dtype=float)
    dur = np.array([r["duration"] for r in records], dtype=float)
    if by == "length":
        edges, labels, x = [0, 5, 10, 20, 40, np.inf], ["<5s", "5-10s", "10-20s", "20-40s", ">=40s"], gt[:, 1] - gt[:, 0]
    elif by == "position":
        centre = (gt[:, 0] + gt[:, 1]) / 2 / dur
        edges, labels, x = [-np.inf, 1 / 3, 2 / 3, np.inf], ["start third", "middle third", "end third"], centre
    else:
        edges, labels, x = [0, 30, 60, 120, np.inf], ["<30s", "30-60s", "60-120s", ">=120s"], dur
    groups = np.digitize(x, edges[1:-1], right=False)
    rows = []
    for g, label in enumerate(labels):
        mask = (groups == g) & ~np.isnan(x)
        if mask.any():
            m = values[mask].mean(0)
            rows.append(BreakdownRow(label, int(mask.sum()), {n: float(v) for n, v in zip(names, m)}))
    return Breakdown(by, tuple(rows))


def _score_grounding(records, parsed, profile, thresholds, counts):
    from .metrics.grounding import grounding_terms, iou_matrix, recall_at_k

    n = len(records)
    ious = np.zeros(n)
    ranked_any = any(len(w) > 1 for w, _, _, _ in parsed if w)  # R@5 is reported when some answer ranks windows
    ranked = np.full((n, RECALL_K if ranked_any else 1), np.nan)  # the first k windows: all R@k reads
    windows_kept: list = []
    outside = 0
    for i, ((wins, _status, _, out_flag), rec) in enumerate(zip(parsed, records)):
        if not wins:
            windows_kept.append(None)
            continue
        arr = np.asarray([w[:2] for w in wins], dtype=float)
        if out_flag if out_flag is not None else bool((arr < 0).any() or (arr > rec["duration"]).any()):
            outside += 1
        gt = np.asarray(rec["windows"], dtype=float).reshape(-1, 2)
        top = arr[: ranked.shape[1]]
        m = iou_matrix(top, gt).max(axis=1) if len(gt) else np.zeros(len(top))
        ranked[i, : len(top)] = m
        ious[i] = m[0]
        windows_kept.append([[float(x) for x in w[:2]] for w in arr[:DETAIL_WINDOWS]])
    counts["outside_video"] = outside
    names, values = grounding_terms(ious, thresholds, strict=profile.strict_threshold)
    metrics = {k: float(v) for k, v in zip(names, values.mean(0))} if n else dict.fromkeys(names, 0.0)
    if ranked_any:
        metrics.update(recall_at_k(ranked, RECALL_K, thresholds, strict=profile.strict_threshold))
    details = [QueryDetail(qid=rec["qid"], vid=rec["vid"], status=parsed[i][1], detail=parsed[i][2],
                           windows=windows_kept[i], iou=float(ious[i]),
                           scores={name: float(values[i, j]) for j, name in enumerate(names)})
               for i, rec in enumerate(records)]
    content = [[rec["qid"], w[0] if w else None] for rec, w in zip(records, windows_kept)]
    return metrics, names, values, details, content


# ---------------------------------------------------------------------------------------------------------------
# QVHighlights


def _score_highlights(records, matched: dict, profile, clip_seconds: float, counts: dict, warn, keep_details: bool):
    from .metrics.qvhighlights import MAX_PRED_WINDOWS, evaluate
    from .parsing import parse_highlights, parse_span

    gt_windows, durations, clip_ids, sal_gt, pred_windows, pred_sal, statuses = [], [], [], [], [], [], []
    outside = 0
    sal_len_mismatch = 0
    miss_window = np.array([[-2.0, -1.0, 0.0]])  # a failed / missing query: matches nothing (AP 0, R1 miss)
    for rec in records:
        n_clips = int(rec["duration"] / clip_seconds)
        bad_clips = [c for c in (rec.get("saliency") or {}).get("clip_ids", []) if not 0 <= c < max(n_clips, 1)]
        if not rec["windows"] or bad_clips:
            raise TempbenchError(f"ground truth of qid {rec['qid']} ({rec['vid']}): "
                                 + ("no relevant window" if not rec["windows"] else
                                    f"clip ids {bad_clips[:3]} outside the video's {n_clips} clips"),
                                 "the QVHighlights metrics need a window and in-range clips for every query; "
                                 "re-import the official file")
        gt_windows.append(np.asarray(rec["windows"], dtype=float).reshape(-1, 2))
        durations.append(rec["duration"])
        sal = rec.get("saliency") or {"clip_ids": [], "scores": []}
        clip_ids.append(np.asarray(sal["clip_ids"], dtype=np.int64))
        sal_gt.append(np.asarray(sal["scores"], dtype=float).reshape(-1, 3))
        row: PredictionRow | None = matched.get(rec["qid"])
        if row is None or row.error is not None:
            counts["missing" if row is None else "errors"] += 1
            pred_windows.append(miss_window)
            pred_sal.append(np.zeros(n_clips))
            statuses.append(("missing", "no prediction") if row is None else ("error", row.error))
            continue
        status, detail = "ok", "windows given"
        wins, sal_pred = row.windows, row.saliency
        if wins is None and sal_pred is None and row.output is not None:
            hl = parse_highlights(row.output, rec["duration"], clip_len=clip_seconds)
            if hl.status != "failed":
                wins = [[*w, 1.0] for w in hl.windows]
                sal_pred = hl.saliency
                status, detail = hl.status, hl.detail
            else:
                span = parse_span(row.output, profile.name)
                if span.span is not None:
                    wins, status, detail = [[*span.span, 1.0]], span.status, span.detail
                else:
                    status, detail = "failed", f"{hl.detail}; {span.detail}"
        if wins is None:
            if status == "ok":
                status, detail = "failed", "no windows in the row"
            pred_windows.append(miss_window)
        elif len(wins) == 0:
            counts["empty_windows"] += 1
            pred_windows.append(np.zeros((0, 3)))
        else:
            arr = np.asarray([w if len(w) == 3 else [w[0], w[1], 1.0] for w in wins], dtype=float)
            rev = arr[:, 0] > arr[:, 1]
            if rev.any():
                counts["reversed_windows"] += 1
                arr[rev, :2] = arr[rev][:, [1, 0]]
                status = "repaired"
            if (arr[:, :2] < 0).any() or (arr[:, :2] > rec["duration"]).any():
                outside += 1
            pred_windows.append(arr[:MAX_PRED_WINDOWS])  # the official mAP reads the first 10 in list order
        if sal_pred is None:
            pred_sal.append(np.zeros(n_clips))
            if status == "ok" and wins is not None:
                counts["no_saliency"] += 1
        else:
            if len(sal_pred) != n_clips:
                sal_len_mismatch += 1
            pred_sal.append(np.asarray(sal_pred, dtype=float))
        statuses.append((status, detail))
    counts["outside_video"] = outside
    counts["saliency_length_mismatch"] = sal_len_mismatch
    if sal_len_mismatch:
        warn(f"{sal_len_mismatch} saliency lists do not have int(duration / {clip_seconds:g}) scores: truncated or "
             "zero-padded as the official scorer does")
    result = evaluate([r["qid"] for r in records], gt_windows, durations, clip_ids, sal_gt, pred_windows, pred_sal,
                      clip_seconds=clip_seconds)
    names, num, den = result.terms()
    content = []
    for i, rec in enumerate(records):
        failed = statuses[i][0] in ("missing", "error") or pred_windows[i] is miss_window
        n_clips = int(rec["duration"] / clip_seconds)
        sal = np.zeros(n_clips)
        sal[: min(n_clips, len(pred_sal[i]))] = pred_sal[i][:n_clips]
        content.append([rec["qid"], None if failed else pred_windows[i][:DETAIL_WINDOWS].tolist(), sal.tolist()])
    details = []
    for i, rec in enumerate(records if keep_details else ()):
        status, detail = statuses[i]
        official = result.query_details(i)
        official.pop("qid", None)
        details.append(QueryDetail(
            qid=rec["qid"], vid=rec["vid"], status=status, detail=detail,
            windows=None if status in ("missing", "error") else
            [[float(x) for x in w] for w in pred_windows[i][:DETAIL_WINDOWS]],
            scores={n: (float(num[i, j]) if den[i, j] else None) for j, n in enumerate(names)},
            official=official))
    return result, names, num, den, details, [s for s, _ in statuses], content


def _content_sha256(content: list) -> str:
    """sha256 of what the metrics read, after parsing: a copy of a file with other bytes (another key order, one
    more field, `1` for `1.0`) has the same content."""
    import hashlib
    import json

    text = json.dumps(content, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _json_safe(obj):
    """The official structure with non-finite numbers (an empty length bucket: NaN) as null: strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------------------------------------------
# the entry point


def score(data: AnnotatedSplit, predictions: Predictions, profile: str = "canonical", *, ci: bool = True,
          n_resamples: int = 1000, seed: int = 0, strict: bool = False, by: str | None = None,
          created: str = "", git_revision: str | None = None, run: RunConfig | None = None,
          warn=None, keep_details: bool = True) -> Result:
    """Score `predictions` against a split's records under `profile` and return the `Result` (with details).

    CIs: 95% percentile bootstrap over videos (clustered), `n_resamples` with `seed`. `run` (default: the
    predictions' own run.json) goes into the result's provenance; a run made with `--limit` that covered fewer
    queries is scored on the queries it covered. `warn(message)` is called for input scored under a policy
    (missing queries, saliency lengths); the messages are also the result's notes. `keep_details=False` leaves
    the per-query details out (QVHighlights: they cost as much as the metrics).
    """
    from .parsing import get_profile

    spec, split = data.task, data.split
    try:
        prof = get_profile(profile)
    except ValueError as exc:
        raise TempbenchError(str(exc), "`tempbench score --profile all` scores under every profile") from None
    if by is not None and by not in BY_CHOICES:
        raise TempbenchError(f"unknown breakdown {by!r}", f"use one of {', '.join(BY_CHOICES)}")
    if by is not None and spec.kind != "grounding":
        raise TempbenchError("--by is for grounding tasks (Charades-STA, ActivityNet Captions)",
                             "QVHighlights already reports the official length buckets (MR-short/middle/long-mAP)")
    if n_resamples < 1:
        raise TempbenchError(f"--resamples {n_resamples}: must be at least 1", "e.g. --resamples 1000 (or --no-ci)")
    run = run if run is not None else predictions.run
    records = data.records
    matched: Matched = match_predictions(predictions, records, strict=strict)
    notes: list[str] = []

    def note(message):
        notes.append(message)
        if warn is not None:
            warn(message)

    if run is not None and run.execution.limit and len(matched.rows) < len(records):
        covered = [r for r in records if r["qid"] in matched.rows]
        notes.append(f"partial run (--limit {run.execution.limit}): scored on the {len(covered)} queries it covered")
        records = covered
    elif matched.missing:
        note(f"{len(matched.missing)} of {len(records)} queries have no prediction: counted as failures")
    counts = dict.fromkeys(Counts.__dataclass_fields__, 0)
    counts["predictions"] = len(predictions.rows)
    vid_codes = _vid_codes(records)
    official = None
    breakdown = None
    if spec.kind == "grounding":
        parsed = _parse_rows(records, matched.rows, prof, counts)
        metrics, names, values, details, content = _score_grounding(records, parsed, prof, spec.thresholds,
                                                                     counts)
        statuses = [p[1] for p in parsed]
        num, den = values, None
        if by:
            breakdown = _breakdown(by, records, values, names)
    else:
        result, names, num, den, details, statuses, content = _score_highlights(
            records, matched.rows, prof, spec.clip_seconds, counts, note, keep_details)
        official = _json_safe(result.official)
        metrics = {k: v for k, v in result.official["brief"].items() if math.isfinite(v)}
    for s in statuses:
        if s in ("ok", "repaired", "failed"):
            counts[s] += 1
    final_counts = Counts(**counts)
    if final_counts.outside_video:
        notes.append(f"{final_counts.outside_video} predictions fall (partly) outside the video: scored as given")
    if final_counts.reversed_windows:
        notes.append(f"{final_counts.reversed_windows} given windows had start > end: swapped (counted as repaired)")
    ci95, ci_method = {}, None
    if ci and len(num):
        from .metrics.stats import bootstrap_ci

        low, high = bootstrap_ci(num, den, vid_codes, n_resamples=n_resamples, seed=seed)
        ci95 = {n: [float(lo), float(hi)] for n, lo, hi in zip(names, low, high)
                if n in metrics and math.isfinite(lo) and math.isfinite(hi)}
        ci_method = CIMethod("percentile bootstrap, resampling videos (clustered)", n_resamples, seed, 0.95)
    if spec.kind == "highlights":
        notes.append("QVHighlights metrics are the official scorer's (2 dp). An answer with one window has a much "
                     "lower mAP than a ranked list of 10; tempbench does not invent windows.")
    from .quirks import find_quirks

    split_size = data.split_size
    return Result(
        task=spec.name, split=split, kind=spec.kind, profile=prof.name, n=len(records), split_size=split_size,
        partial=len(records) < split_size, counts=final_counts,
        failure_rate=float(100.0 * final_counts.failures / len(records)) if records else 0.0,
        metrics=metrics, ci95=ci95, ci=ci_method, official=official, breakdown=breakdown,
        quirks={k: v for k, v in find_quirks(records).counts.items() if v}, notes=tuple(notes),
        provenance=Provenance(
            tempbench_version=__version__, git_revision=git_revision, annotation_file=data.annotation_file,
            annotation_sha256=data.annotation_sha256, annotation_verified=data.verified,
            predictions_file=predictions.source, predictions_sha256=predictions.sha256, created=created,
            predictions_content_sha256=_content_sha256(content),
            profile_reference=prof.reference, strict_threshold=prof.strict_threshold, round_to=prof.round_to),
        run=run, details=tuple(details) if keep_details else ())


def compare(a: Result, b: Result, n_resamples: int = 1000, seed: int = 0) -> Comparison:
    """Paired comparison of two results on the queries both scored: per metric, B - A, its 95% CI (paired
    bootstrap over videos) and a two-sided p-value (sign-flip permutation by video), from
    `tempbench.metrics.stats.paired_test`. Both results need their details."""
    from .metrics.stats import paired_test

    if n_resamples < 1:
        raise TempbenchError(f"--resamples {n_resamples}: must be at least 1", "e.g. --resamples 1000")
    if (a.task, a.split) != (b.task, b.split):
        raise TempbenchError(f"{a.provenance.predictions_file} is {a.task}/{a.split} but "
                             f"{b.provenance.predictions_file} is {b.task}/{b.split}",
                             "compare predictions of the same task and split")
    da = {d.qid: d for d in a.details}
    db = {d.qid: d for d in b.details}
    qids = [q for q in da if q in db]
    vids: dict = {}
    clusters = np.array([vids.setdefault(da[q].vid, len(vids)) for q in qids])
    rows = []
    for name in (da[qids[0]].scores if qids else {}):
        if name not in a.metrics or name not in b.metrics:
            continue
        va = [da[q].scores.get(name) for q in qids]
        vb = [db[q].scores.get(name) for q in qids]
        num_a = np.array([0.0 if v is None else v for v in va])
        num_b = np.array([0.0 if v is None else v for v in vb])
        den_a = np.array([v is not None for v in va], dtype=float)
        den_b = np.array([v is not None for v in vb], dtype=float)
        if not den_a.any() or not den_b.any():
            continue
        res = paired_test(num_b, num_a, (den_b, den_a), clusters, n_resamples=n_resamples, seed=seed)
        rows.append(ComparisonRow(name, float(a.metrics[name]), float(b.metrics[name]), float(res.difference),
                                  (float(res.low), float(res.high)), float(res.p_value)))
    return Comparison(task=a.task, split=a.split, profile=a.profile, n=len(qids), a=a.provenance.predictions_file,
                      b=b.provenance.predictions_file, failure_rate_a=a.failure_rate, failure_rate_b=b.failure_rate,
                      rows=tuple(rows))


__all__ = ["BY_CHOICES", "ScoringWarning", "compare", "score"]
