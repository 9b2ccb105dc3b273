"""Scoring: predictions + annotations + profile -> a result record (schema `tempbench.result/1`).

Reads a predictions file (tempbench JSONL rows, or the official QVHighlights submission fields), matches rows to
queries by qid (or by (vid, query)), parses free text under a named profile (`tempbench.parsing`), computes the
metrics (`tempbench.metrics`), clustered bootstrap CIs (`tempbench.metrics.stats`) and per-query details.

Policies (docs/scoring.md): a parse failure, an `error` row or a missing query counts as a miss (IoU 0) and stays
in the denominator, unless the profile reproduces an evaluator that drops failures; ground truth is used as
published; predictions outside the video are counted, never clipped; reversed given windows are swapped and
counted. Kept off this path on purpose: pandas, jsonschema per row, torch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .errors import TempbenchError

GROUNDING_THRESHOLDS = (0.3, 0.5, 0.7)
BY_CHOICES = ("length", "position", "duration")


class ScoringWarning(UserWarning):
    """Input that is scored under a documented policy but deserves the user's attention."""


# ---------------------------------------------------------------------------------------------------------------
# reading predictions


def _bad(path, line, field, problem, todo):
    where = f"{path}, line {line}" + (f", field {field!r}" if field else "")
    return TempbenchError(f"{where}: {problem}", todo)


def _as_qid(value, path, line):
    if isinstance(value, bool):
        raise _bad(path, line, "qid", f"{value!r} is not an integer", "qids are integers (strings holding one are accepted)")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None  # matched by (vid, query) if given
    raise _bad(path, line, "qid", f"{value!r} is not an integer", "qids are integers (strings holding one are accepted)")


def _windows(value, path, line, field):
    if not isinstance(value, list):
        raise _bad(path, line, field, f"{type(value).__name__} instead of a list of [start, end(, score)]",
                   "write windows as [[start, end], ...] or [[start, end, score], ...]")
    try:  # fast path: a regular list of numeric rows
        arr = np.asarray(value, dtype=np.float64)
        if value and (arr.ndim != 2 or arr.shape[1] not in (2, 3)) or any(isinstance(w, str) for w in value):
            raise ValueError
    except (TypeError, ValueError):
        for i, w in enumerate(value):
            if not isinstance(w, (list, tuple)) or len(w) not in (2, 3):
                raise _bad(path, line, f"{field}[{i}]", f"{w!r} is not [start, end] or [start, end, score]",
                           "write windows as [[start, end], ...] or [[start, end, score], ...]") from None
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w):
                raise _bad(path, line, f"{field}[{i}]", f"{w!r} holds a value that is not a number",
                           "windows hold numbers (seconds)") from None
        raise _bad(path, line, field, "rows of different lengths", "give every window as [start, end, score]") from None
    if arr.size and not np.isfinite(arr).all():
        i = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise _bad(path, line, f"{field}[{i}]", f"{value[i]!r} holds NaN or infinity",
                   "fix the predictions (a window the model could not produce should be an `error` row)")
    return arr.tolist()


def read_predictions(path: Path) -> list[dict]:
    """Rows of a predictions JSONL file (or a JSON list), each with `_line`; checks JSON and field types."""
    path = Path(path)
    if not path.exists():
        raise TempbenchError(f"{path} does not exist", "give the predictions JSONL file (e.g. runs/.../predictions.jsonl)")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    rows = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _bad(path, exc.lineno, None, f"not valid JSON ({exc.msg})", "give a JSONL file, one object per line") from None
        items = [(i + 1, r) for i, r in enumerate(data)]
    else:
        items = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise _bad(path, lineno, None, f"not valid JSON ({exc.msg})",
                           "each line must be one JSON object; a run killed mid-write is repaired by `tempbench run --resume`") from None
    for lineno, row in items:
        if not isinstance(row, dict):
            raise _bad(path, lineno, None, "not a JSON object", "each line must be one JSON object")
        if "qid" not in row and not ("vid" in row and "query" in row):
            raise _bad(path, lineno, "qid", "missing", "every row needs a qid (or vid and query)")
        out = {"_line": lineno, "qid": _as_qid(row["qid"], path, lineno) if "qid" in row else None}
        for key in ("vid", "query", "output", "error"):
            if key in row and row[key] is not None:
                if not isinstance(row[key], str):
                    raise _bad(path, lineno, key, f"{type(row[key]).__name__} instead of a string", f"{key} is text")
                out[key] = row[key]
        for key, field in (("windows", "windows"), ("pred_relevant_windows", "windows")):
            if key in row and row[key] is not None:
                out[field] = _windows(row[key], path, lineno, key)
        for key in ("saliency", "pred_saliency_scores"):
            if key in row and row[key] is not None:
                sal = row[key]
                try:
                    arr = np.asarray(sal, dtype=np.float64)
                    ok = isinstance(sal, list) and arr.ndim == 1 and not any(isinstance(x, (str, bool)) for x in sal)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise _bad(path, lineno, key, "not a list of numbers", "one score per 2-second clip")
                if not np.isfinite(arr).all():
                    raise _bad(path, lineno, key, "holds NaN or infinity", "one finite score per 2-second clip")
                out["saliency"] = arr
        rows.append(out)
    return rows


def match_predictions(rows: list[dict], records: list[dict], path: Path, strict: bool = False):
    """qid -> row. Unknown or duplicate qids are errors naming the lines; missing ones are returned."""
    from .convert import normalize_query

    by_qid = {r["qid"]: r for r in records}
    by_text = {}
    for r in records:
        by_text.setdefault((r["vid"], normalize_query(r["query"])), r["qid"])
    matched: dict[int, dict] = {}
    for row in rows:
        qid = row["qid"]
        if qid is None or qid not in by_qid:
            key = (row.get("vid"), normalize_query(row.get("query") or ""))
            alt = by_text.get(key)
            if alt is None:
                raise _bad(path, row["_line"], "qid", f"qid {qid!r} is not a query of this split"
                           + (f" and (vid, query) {key!r} is not either" if row.get("vid") else ""),
                           "check --task/--split (or run.json), or remove the row")
            qid = alt
        elif row.get("vid") and row["vid"] != by_qid[qid]["vid"]:
            raise _bad(path, row["_line"], "vid", f"qid {qid} is video {by_qid[qid]['vid']} in the annotations, "
                       f"not {row['vid']}", "the predictions were made for another split or qid numbering")
        if qid in matched:
            raise _bad(path, row["_line"], "qid", f"duplicate qid {qid} (first on line {matched[qid]['_line']})",
                       "keep one row per query")
        matched[qid] = row
    missing = [q for q in by_qid if q not in matched]
    if missing and strict:
        raise TempbenchError(f"{path}: {len(missing)} of {len(records)} queries have no prediction "
                             f"(first qids: {missing[:5]})", "drop --strict to count them as failures")
    return matched, missing


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_revision() -> str | None:
    """The git commit of the tempbench checkout, when installed from one (read from .git, no subprocess)."""
    root = Path(__file__).resolve().parent.parent
    head = root / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = root / ".git" / ref[5:]
            if ref_path.exists():
                return ref_path.read_text().strip()
            packed = root / ".git" / "packed-refs"
            for line in packed.read_text().splitlines():
                if line.endswith(ref[5:]):
                    return line.split()[0]
            return None
        return ref
    except OSError:
        return None


def read_run_json(pred_path: Path) -> dict | None:
    run_json = Path(pred_path).parent / "run.json"
    if run_json.exists():
        try:
            return json.loads(run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TempbenchError(f"{run_json}, line {exc.lineno}: not valid JSON", "fix or remove run.json") from None
    return None


# ---------------------------------------------------------------------------------------------------------------
# grounding


def _parse_rows(records, matched, profile, counts):
    """Per query: (windows list | None, status, detail). Failures get None."""
    from .parsing import parse_span, round_span

    out = []
    for rec in records:
        row = matched.get(rec["qid"])
        if row is None:
            counts["missing"] += 1
            out.append((None, "missing", "no prediction for this query"))
            continue
        if "error" in row:
            counts["errors"] += 1
            out.append((None, "error", row["error"]))
            continue
        if "windows" in row:
            wins = row["windows"]
            if not wins:
                counts["empty_windows"] += 1
                out.append(([], "failed", "empty window list"))
                continue
            fixed, status = [], "ok"
            for w in wins:
                s, e = w[0], w[1]
                if s > e:
                    s, e = e, s
                    status = "repaired"
                if profile.round_to:
                    s, e = round_span((s, e), profile.round_to)
                fixed.append([s, e] + w[2:])
            if status == "repaired":
                counts["reversed_windows"] += 1
            out.append((fixed, status, "windows given"))
            continue
        if "output" in row:
            parsed = parse_span(row["output"], profile.name)
            if parsed.span is None:
                out.append((None, "failed", parsed.detail))
            else:
                out.append(([list(parsed.span)], parsed.status, parsed.detail))
            continue
        counts["no_answer"] += 1
        out.append((None, "failed", "row has neither output nor windows"))
    return out


def _vid_codes(records):
    vids = {}
    return np.fromiter((vids.setdefault(r["vid"], len(vids)) for r in records), dtype=np.int64, count=len(records))


def _breakdown(by, records, values, names, keep):
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
        mask = (groups == g) & keep & ~np.isnan(x)
        if not mask.any():
            continue
        m = values[mask].mean(0)
        rows.append({"bucket": label, "n": int(mask.sum()), **{n: float(v) for n, v in zip(names, m)}})
    return {"by": by, "rows": rows}


def _score_grounding(records, parsed, profile, counts):
    from .metrics.grounding import grounding_terms, iou_matrix, recall_at_k

    n = len(records)
    gt = [np.asarray(r["windows"], dtype=float).reshape(-1, 2) for r in records]
    ious = np.zeros(n)
    kmax = max((len(w) for w, _, _ in parsed if w), default=0)
    ranked = np.full((n, max(kmax, 1)), np.nan)
    failed = np.zeros(n, dtype=bool)
    outside = 0
    spans = []
    for i, ((wins, _status, _), rec) in enumerate(zip(parsed, records)):
        if not wins:
            failed[i] = True
            spans.append(None)
            continue
        arr = np.asarray([w[:2] for w in wins], dtype=float)
        if (arr < 0).any() or (arr > rec["duration"]).any():
            outside += 1
        m = iou_matrix(arr, gt[i]).max(axis=1) if len(gt[i]) else np.zeros(len(arr))
        ranked[i, : len(arr)] = m
        ious[i] = m[0]
        spans.append([float(arr[0, 0]), float(arr[0, 1])])
    counts["outside_video"] = outside
    keep = ~failed if profile.drop_failures else np.ones(n, dtype=bool)
    counts["dropped"] = int((~keep).sum())
    names, values = grounding_terms(ious, GROUNDING_THRESHOLDS, strict=profile.strict_threshold)
    metrics = {k: float(v) for k, v in zip(names, values[keep].mean(0))} if keep.any() else dict.fromkeys(names, 0.0)
    extra = {}
    if kmax > 1:
        extra = recall_at_k(ranked[keep], 5, GROUNDING_THRESHOLDS, strict=profile.strict_threshold)
        metrics.update(extra)
    details = []
    for i, rec in enumerate(records):
        wins, status, detail = parsed[i]
        scores = {name: (float(values[i, j]) if keep[i] else None) for j, name in enumerate(names)}
        details.append({"qid": rec["qid"], "vid": rec["vid"], "status": status, "detail": detail,
                        "span": spans[i], "iou": float(ious[i]), "scores": scores})
    return metrics, names, values, keep, details


# ---------------------------------------------------------------------------------------------------------------
# QVHighlights


def _score_highlights(records, matched, profile, counts, warn, want_details=True):
    from .metrics.qvhighlights import evaluate
    from .parsing import parse_highlights, parse_span

    gt_windows, durations, clip_ids, sal_gt, pred_windows, pred_sal, statuses = [], [], [], [], [], [], []
    outside = 0
    sal_len_mismatch = 0
    for rec in records:
        n_clips = int(rec["duration"] / 2)
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
        row = matched.get(rec["qid"])
        # a failed / missing query: one window that matches nothing (AP 0, R1 miss), flat saliency
        miss_window = np.array([[-2.0, -1.0, 0.0]])
        if row is None or "error" in row:
            counts["missing" if row is None else "errors"] += 1
            pred_windows.append(miss_window)
            pred_sal.append(np.zeros(n_clips))
            statuses.append(("missing" if row is None else "error", "no prediction" if row is None else row["error"]))
            continue
        status, detail = "ok", "windows given"
        wins = row.get("windows")
        sal_pred = row.get("saliency")
        if wins is None and sal_pred is None and "output" in row:
            hl = parse_highlights(row["output"], rec["duration"])
            if hl.status != "failed":
                wins = [w + [1.0] for w in hl.windows]
                sal_pred = hl.saliency
                status, detail = hl.status, hl.detail
            else:
                span = parse_span(row["output"], profile.name)
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
            pred_windows.append(arr)
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
        warn(f"{sal_len_mismatch} saliency lists do not have int(duration / 2) scores: truncated or zero-padded "
             "as the official scorer does")
    result = evaluate([r["qid"] for r in records], gt_windows, durations, clip_ids, sal_gt, pred_windows, pred_sal)
    names, num, den = result.terms()
    details = []
    for i, rec in enumerate(records if want_details else []):
        d = result.query_details(i)
        d.update({"vid": rec["vid"], "status": statuses[i][0], "detail": statuses[i][1],
                  "windows": [[float(x) for x in w] for w in pred_windows[i][:10]]
                  if statuses[i][0] not in ("missing", "error") else None,
                  "scores": {n: (float(num[i, j]) if den[i, j] else None) for j, n in enumerate(names)}})
        details.append(d)
    return result, names, num, den, details, [s for s, _ in statuses]


# ---------------------------------------------------------------------------------------------------------------
# the public entry point


def score(predictions, task: str | None = None, split: str | None = None, profile: str = "canonical",
          ci: bool = True, n_resamples: int = 1000, seed: int = 0, strict: bool = False, by: str | None = None,
          out: Path | None = None, details: Path | None = None, run_info: dict | None = None,
          keep_details: bool = False) -> dict:
    """Score a predictions file and return the result record (dict, schema `tempbench.result/1`).

    `task`/`split` default to the `run.json` next to the predictions. `profile` names a parsing/scoring convention
    (`tempbench.parsing.PROFILES`). CIs: 95% bootstrap over videos (clustered), `n_resamples` with `seed`.
    Writes the record to `out` and gzipped per-query rows to `details` when given (atomically); with
    `keep_details` the per-query rows are also returned under the record's `_details` key.
    """
    from .annotations import annotation_info, atomic_write_bytes, load_annotations
    from .parsing import get_profile
    from .tasks import get_task

    t0 = time.perf_counter()
    pred_path = Path(predictions)
    raw = pred_path.read_bytes() if pred_path.exists() else None
    run = run_info if run_info is not None else (read_run_json(pred_path) or {})
    task_name = task or run.get("task")
    if not task_name:
        raise TempbenchError(f"which task is {pred_path} for?", "pass --task (no run.json next to the predictions)")
    spec = get_task(task_name)
    split = split or run.get("split") or spec.default_split
    try:
        prof = get_profile(profile)
    except ValueError as exc:
        raise TempbenchError(str(exc), "`tempbench score --profile all` scores under every profile") from None
    if by is not None and by not in BY_CHOICES:
        raise TempbenchError(f"unknown breakdown {by!r}", f"use one of {', '.join(BY_CHOICES)}")
    records = load_annotations(spec.name, split)
    rows = read_predictions(pred_path)
    matched, missing = match_predictions(rows, records, pred_path, strict=strict)
    notes: list[str] = []

    def warn(message):
        notes.append(message)
        warnings.warn(message, ScoringWarning, stacklevel=3)

    if missing:
        warn(f"{len(missing)} of {len(records)} queries have no prediction: counted as failures"
             + (" (dropped by this profile)" if prof.drop_failures else ""))
    if run.get("limit") and len(rows) < len(records):
        records = [r for r in records if r["qid"] in matched]
        missing = []
        notes.clear()
        notes.append(f"partial run (--limit {run['limit']}): scored on the {len(records)} queries it covered")
    counts = {k: 0 for k in ("predictions", "ok", "repaired", "failed", "errors", "missing", "empty_windows",
                             "reversed_windows", "no_answer", "outside_video", "dropped")}
    counts["predictions"] = len(rows)
    vid_codes = _vid_codes(records)
    official = None
    breakdown = None
    if spec.kind == "grounding":
        parsed = _parse_rows(records, matched, prof, counts)
        metrics, names, values, keep, detail_rows = _score_grounding(records, parsed, prof, counts)
        statuses = [p[1] for p in parsed]
        num, den = values[keep], None
        clusters = vid_codes[keep]
        if by:
            breakdown = _breakdown(by, records, values, names, keep)
    else:
        if by:
            raise TempbenchError("--by is for Charades-STA and ActivityNet",
                                 "QVHighlights already reports the official length buckets (MR-short/middle/long-mAP)")
        counts["no_saliency"] = 0
        result, names, num, den, detail_rows, statuses = _score_highlights(
            records, matched, prof, counts, warn, want_details=bool(details or keep_details))
        official = result.official
        metrics = dict(result.official["brief"])
        clusters = vid_codes
    for s in statuses:
        if s in ("ok", "repaired", "failed"):
            counts[s] += 1
    failures = counts["failed"] + counts["errors"] + counts["missing"]
    if counts["outside_video"]:
        notes.append(f"{counts['outside_video']} predictions fall (partly) outside the video: scored as given")
    if counts["reversed_windows"]:
        notes.append(f"{counts['reversed_windows']} given windows had start > end: swapped (counted as repaired)")
    ci95, ci_info = {}, None
    if ci and len(num):
        from .metrics.stats import bootstrap_ci

        low, high = bootstrap_ci(num, den, clusters, n_resamples=n_resamples, seed=seed)
        ci95 = {n: [float(lo), float(hi)] for n, lo, hi in zip(names, low, high)
                if n in metrics and math.isfinite(lo)}
        ci_info = {"method": "percentile bootstrap, resampling videos (clustered)", "resamples": n_resamples,
                   "seed": seed, "level": 0.95}
    if spec.kind == "highlights":
        notes.append("QVHighlights metrics are the official scorer's (2 dp). An answer with one window has a much "
                     "lower mAP than a ranked list of 10; tempbench does not invent windows.")
    from .annotations import find_quirks

    quirks = {k: v for k, v in find_quirks(records)["counts"].items() if v}
    info = annotation_info(spec.name, split)
    record = {
        "schema": "tempbench.result/1",
        "task": spec.name, "split": split, "kind": spec.kind, "profile": prof.name,
        "n": int(len(records) - counts["dropped"]), "split_size": int(spec.card["splits"][split]["size"]),
        "partial": bool(len(records) < spec.card["splits"][split]["size"]),
        "counts": counts,
        "failure_rate": float(100.0 * failures / len(records)) if records else 0.0,
        "metrics": metrics, "ci95": ci95, "ci": ci_info, "official": official, "breakdown": breakdown,
        "quirks": quirks, "notes": notes,
        "provenance": {
            "tempbench_version": __version__, "git_revision": git_revision(),
            "annotation_file": info["annotation_file"], "annotation_sha256": info["annotation_sha256"],
            "annotation_verified": info["hash_verified"],
            "predictions_file": str(pred_path), "predictions_sha256": sha256_bytes(raw or b""),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "profile_reference": prof.reference, "strict_threshold": prof.strict_threshold,
            "drop_failures": prof.drop_failures, "round_to": prof.round_to,
            "seconds": round(time.perf_counter() - t0, 4),
        },
        "run": {k: v for k, v in run.items() if k not in ("task", "split")},
    }
    if out:
        atomic_write_bytes(Path(out), (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    if details:
        write_details(Path(details), detail_rows)
    if keep_details:
        record["_details"] = detail_rows
    return record


def write_details(path: Path, rows: list[dict]) -> None:
    from .annotations import atomic_write_bytes

    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))


def read_details(path: Path) -> list[dict]:
    """Rows of a ``details.jsonl.gz`` file (one JSON object per query), with errors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise TempbenchError(f"{path}: no such file", "a reproduced entry needs its per-query details next to it")
    rows = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TempbenchError(f"{path}, line {lineno}: not valid JSON ({exc.msg})",
                                         "the details file is written by `tempbench score`; score again") from None
                if not isinstance(row, dict) or "qid" not in row or not isinstance(row.get("scores"), dict):
                    raise TempbenchError(f"{path}, line {lineno}: field 'qid' or 'scores' missing",
                                         "each row must be {'qid', 'vid', 'status', ..., 'scores': {metric: value}}")
                rows.append(row)
    except (OSError, EOFError) as exc:
        raise TempbenchError(f"{path}: not a readable gzip file ({exc})", "expected details.jsonl.gz from `tempbench score`") from None
    return rows


def public_record(record: dict) -> dict:
    """The record without in-memory extras (per-query rows)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def score_all_profiles(predictions, task=None, split=None, **kwargs) -> list[dict]:
    """The same file under every profile (one record each), to show how much the convention moves the numbers."""
    from .parsing import PROFILES

    return [score(predictions, task, split, profile=name, **kwargs) for name in PROFILES]


def compare(a, b, task: str | None = None, split: str | None = None, profile: str = "canonical",
            n_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired comparison of two predictions files on the same queries: per metric, B - A, its 95% CI and a
    two-sided p-value (CI: paired bootstrap over videos; p: sign-flip permutation by video; both in
    `tempbench.metrics.stats.paired_test`)."""
    from .metrics.stats import paired_test

    ra = score(a, task, split, profile=profile, ci=False, keep_details=True)
    rb = score(b, task or ra["task"], split or ra["split"], profile=profile, ci=False, keep_details=True)
    if (ra["task"], ra["split"]) != (rb["task"], rb["split"]):
        raise TempbenchError(f"{a} is {ra['task']}/{ra['split']} but {b} is {rb['task']}/{rb['split']}",
                             "compare predictions of the same task and split")
    da = {d["qid"]: d for d in ra["_details"]}
    db = {d["qid"]: d for d in rb["_details"]}
    qids = [q for q in da if q in db]
    vids = {}
    clusters = np.array([vids.setdefault(da[q]["vid"], len(vids)) for q in qids])
    rows = []
    for name in da[qids[0]]["scores"] if qids else []:
        if name not in ra["metrics"]:
            continue
        va = [da[q]["scores"][name] for q in qids]
        vb = [db[q]["scores"][name] for q in qids]
        num_a = np.array([0.0 if v is None else v for v in va])
        num_b = np.array([0.0 if v is None else v for v in vb])
        den_a = np.array([v is not None for v in va], dtype=float)
        den_b = np.array([v is not None for v in vb], dtype=float)
        if not den_a.any() or not den_b.any():
            continue
        res = paired_test(num_b, num_a, (den_b, den_a), clusters, n_resamples=n_resamples, seed=seed)
        rows.append({"metric": name, "a": float(ra["metrics"][name]), "b": float(rb["metrics"][name]),
                     "difference": float(res.difference), "ci95": [float(res.low), float(res.high)],
                     "p_value": float(res.p_value)})
    return {"task": ra["task"], "split": ra["split"], "profile": profile, "n": len(qids), "a": str(a), "b": str(b),
            "rows": rows, "failure_rate": {"a": ra["failure_rate"], "b": rb["failure_rate"]}}
