"""Other tools' inference outputs -> tempbench prediction records.

Each reader follows the file its tool writes (the code that writes it is cited in ``SOURCES``). A record is
``{"qid", "vid", "query", "output", "source": {...}}`` (``error`` instead of a usable output where the tool recorded
one). ``output`` is the model's raw text, so any parsing profile can be applied to it; ``source`` keeps what the
tool itself recorded (its id, the ground truth it used, its own parsed span) for cross-checks.

qid: the tools do not store tempbench's qid (the query's position in the official file). Without annotations the
qid is the tool's own id as a string prefixed by the source (``"lmms-eval:17"``): it never parses as an integer, so
the scorer matches such rows by (vid, query) with ``normalize_query``. With ``annotations`` (the task's unified
records) the qid is resolved here, by the tool's id where it encodes a position (Time-R1) or else by
(vid, normalised query) plus the ground-truth window the tool recorded, and a row that matches nothing is an error.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import io
from .errors import TempbenchError, UsageError
from .predictions import normalize_query

__all__ = ["SOURCES", "convert_file", "normalize_query"]

SOURCES: dict[str, str] = {
    "lmms-eval": "lmms-eval --log_samples JSONL (<date>_samples_<task>.jsonl), charades_sta task; "
    "EvolvingLMMs-Lab/lmms-eval v0.7.2 lmms_eval/loggers/evaluation_tracker.py save_results_samples",
    "xiaomi-time-r1": "Time-R1 evaluate.py output tg_<i>_<n>.jsonl (qid, pred, target, duration, output_text); "
    "xiaomi-research/time-r1@7f2b594 evaluate.py main",
    "timezero": "TimeZero evaluate.py writes no per-query file (only checkpoint.pkl with IoUs and a stdout log "
    "without query ids); www-Ye/TimeZero@a7c3523 evaluate.py",
    "videochat-r1": "VideoChat-R1 evaluate_grounding.py log <result_dir>_<rank>/<model>_tg/<device>.jsonl "
    "(video_path, query, answer, timestamp, iou, ans); OpenGVLab/VideoChat-R1@73b2ea9 src_eval/evaluate_grounding.py",
    "timelens": "TimeLens eval_dataloader.py output <dataset>.jsonl, one {'<video>>>><query>>>>[s, e]': "
    "{timestamps, answers, duration}} per line; TencentARC/TimeLens@5d90c06 evaluation/eval_dataloader.py",
    "tempsamp-r1": "TempSamp-R1 eval_timelens_bench.py output results_<dataset>_shard<i>.json, a JSON list of "
    "{video, query, gt_span, pred_span, iou, answer, duration, error?}; "
    "ZhangZikun6666/TempSamp-R1@55a9228 scripts/eval/eval_timelens_bench.py",
}

_VIDEO_EXT = re.compile(r"\.(mp4|mkv|webm|avi|mov)$", re.IGNORECASE)


def _vid(video: str) -> str:
    return _VIDEO_EXT.sub("", video.replace("\\", "/").rsplit("/", 1)[-1])


def _err(path: Path, line: int | None, field: str | None, problem: str, source: str) -> TempbenchError:
    where = f"{path}" + (f", line {line}" if line is not None else "") + (f", field '{field}'" if field else "")
    return TempbenchError(
        f"{where}: {problem}",
        hint=f"expected the {source} format: {SOURCES[source]}",
    )


def _read_jsonl(path: Path, source: str) -> list[tuple[int, Any]]:
    return io.read_jsonl(path, f"the {source} format: {SOURCES[source]}", objects=False)


def _read_json(path: Path, source: str) -> Any:
    return io.read_json(path, f"the {source} format: {SOURCES[source]}", kind=None)


def _need(obj: Any, key: str, kind: type | tuple, path: Path, line: int | None, source: str) -> Any:
    if not isinstance(obj, dict):
        raise _err(path, line, None, f"expected a JSON object, got {type(obj).__name__}", source)
    if key not in obj:
        raise _err(path, line, key, "missing", source)
    value = obj[key]
    if not isinstance(value, kind):
        raise _err(path, line, key, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}", source)
    return value


def _window(value: Any) -> list[float] | None:
    """[s, e] from a list or its string form ('[24.3, 30.4]'); None if it is not a pair of finite numbers."""
    if isinstance(value, str):
        try:
            value = json.loads(value.replace("(", "[").replace(")", "]"))
        except json.JSONDecodeError:
            return None
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        return [float(value[0]), float(value[1])]
    return None


# ---------------------------------------------------------------------------------------------------------------
# Readers, one per tool
# ---------------------------------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A response as logged by lmms-eval: a string, or a list wrapping one string."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else None


def _from_lmms_eval(path: Path) -> list[dict]:
    source = "lmms-eval"
    records = []
    for line, row in _read_jsonl(path, source):
        doc_id = _need(row, "doc_id", int, path, line, source)
        key, scored_text = None, None
        for name, value in row.items():
            if name.startswith("charades_sta_") and isinstance(value, dict) and len(value) == 1:
                key, scored_text = next(iter(value.items()))
                break
        doc = row.get("doc") if isinstance(row.get("doc"), dict) else None
        if key is not None:
            parts = key.split(">>>")
            if len(parts) < 3:
                raise _err(path, line, "charades_sta_mIOU", f"key {key!r} is not 'video>>>caption>>>timestamp'", source)
            video, caption, target = parts[0], ">>>".join(parts[1:-1]), parts[-1]
        elif doc is not None and "video" in doc and "caption" in doc:
            video, caption, target = str(doc["video"]), str(doc["caption"]), doc.get("timestamp")
        else:
            raise _err(path, line, "charades_sta_mIOU",
                       "no charades_sta metric entry (video>>>caption>>>timestamp) and no 'doc'", source)
        output = _text(row.get("resps")) if "resps" in row else None
        if output is None:
            output = _text(row.get("filtered_resps"))
        if output is None:
            output = scored_text if isinstance(scored_text, str) else None
        if output is None:
            raise _err(path, line, "filtered_resps", "no model response text", source)
        records.append({
            "qid": f"{source}:{doc_id}", "vid": _vid(video), "query": caption.strip(), "output": output,
            "source": {"tool": source, "id": doc_id, "line": line, "target": _window(target)},
        })
    return records


def _from_time_r1(path: Path) -> list[dict]:
    source = "xiaomi-time-r1"
    records = []
    for line, row in _read_jsonl(path, source):
        tool_id = _need(row, "qid", (str, int), path, line, source)
        output = _need(row, "output_text", str, path, line, source)
        records.append({
            "qid": f"{source}:{tool_id}", "output": output,
            "source": {"tool": source, "id": tool_id, "line": line, "target": _window(row.get("target")),
                       "pred": row.get("pred"), "duration": row.get("duration")},
        })
    return records


def _from_timezero(path: Path) -> list[dict]:
    raise TempbenchError(
        f"{path}: TimeZero's evaluate.py writes no per-query predictions (only checkpoint.pkl with the IoUs and a "
        "stdout log without query ids), so its outputs cannot be converted",
        hint="run the model with `tempbench run`, or use VideoChat-R1's evaluate_grounding.py (the TimeZero "
        "evaluator plus a per-query log) and convert with --from videochat-r1; score with --profile timezero",
    )


def _from_videochat_r1(path: Path) -> list[dict]:
    source = "videochat-r1"
    records = []
    for line, row in _read_jsonl(path, source):
        video = _need(row, "video_path", str, path, line, source)
        query = _need(row, "query", str, path, line, source)
        answer = _need(row, "answer", str, path, line, source)
        records.append({
            "qid": f"{source}:{line}", "vid": _vid(video), "query": query.strip(), "output": answer,
            "source": {"tool": source, "id": line, "line": line, "target": _window(row.get("ans")),
                       "pred": row.get("timestamp")},
        })
    return records


def _timelens_items(path: Path) -> list[tuple[int | None, str, Any]]:
    source = "timelens"
    items: list[tuple[int | None, str, Any]] = []
    if path.suffix == ".json":
        data = _read_json(path, source)
        blocks = data if isinstance(data, list) else [data]
        for block in blocks:
            if not isinstance(block, dict):
                raise _err(path, None, None, f"expected objects, got {type(block).__name__}", source)
            items.extend((None, k, v) for k, v in block.items())
    else:
        for line, row in _read_jsonl(path, source):
            if not isinstance(row, dict):
                raise _err(path, line, None, f"expected a JSON object, got {type(row).__name__}", source)
            items.extend((line, k, v) for k, v in row.items())
    return items


def _from_timelens(path: Path) -> list[dict]:
    source = "timelens"
    records = []
    for n, (line, key, pred) in enumerate(_timelens_items(path)):
        parts = key.split(">>>")
        if len(parts) != 3:
            raise _err(path, line, key[:60], "key is not 'video>>>query>>>[start, end]'", source)
        if not isinstance(pred, dict):
            raise _err(path, line, key[:60], f"expected an object with 'answers', got {type(pred).__name__}", source)
        record: dict[str, Any] = {"qid": f"{source}:{n}", "vid": _vid(parts[0]), "query": parts[1].strip()}
        if isinstance(pred.get("answers"), str):
            record["output"] = pred["answers"]
        elif _window(pred.get("timestamps")) is not None:  # compute_metrics.py accepts spans without the text
            record["windows"] = [_window(pred["timestamps"])]
        else:
            raise _err(path, line, "answers", "missing (and no usable 'timestamps')", source)
        record["source"] = {"tool": source, "id": n, "line": line, "target": _window(parts[2]),
                            "pred": pred.get("timestamps"), "duration": pred.get("duration")}
        records.append(record)
    return records


def _from_tempsamp(path: Path) -> list[dict]:
    source = "tempsamp-r1"
    data = _read_json(path, source)
    if not isinstance(data, list):
        raise _err(path, None, None, f"expected a JSON list of results, got {type(data).__name__}", source)
    records = []
    for n, row in enumerate(data):
        if not isinstance(row, dict):
            raise _err(path, None, f"[{n}]", f"expected a JSON object, got {type(row).__name__}", source)
        for key in ("video", "query"):
            if not isinstance(row.get(key), str):
                raise _err(path, None, f"[{n}].{key}", "missing or not a string", source)
        record: dict[str, Any] = {"qid": f"{source}:{n}", "vid": _vid(row["video"]), "query": row["query"].strip()}
        if row.get("error"):
            record["error"] = f"{source}: {row['error']}"
        elif isinstance(row.get("answer"), str):
            record["output"] = row["answer"]
        else:
            raise _err(path, None, f"[{n}].answer", "missing or not a string", source)
        record["source"] = {"tool": source, "id": n, "target": _window(row.get("gt_span")),
                            "pred": row.get("pred_span"), "duration": row.get("duration")}
        records.append(record)
    return records


_READERS = {
    "lmms-eval": _from_lmms_eval,
    "xiaomi-time-r1": _from_time_r1,
    "timezero": _from_timezero,
    "videochat-r1": _from_videochat_r1,
    "timelens": _from_timelens,
    "tempsamp-r1": _from_tempsamp,
}


# ---------------------------------------------------------------------------------------------------------------
# qid resolution
# ---------------------------------------------------------------------------------------------------------------


def _same_window(a: list[float] | None, b: list) -> bool:
    return a is not None and len(b) >= 2 and abs(a[0] - float(b[0])) < 1e-3 and abs(a[1] - float(b[1])) < 1e-3


def _resolve_time_r1(records: list[dict], annotations: list[dict], path: Path) -> None:
    """Time-R1 numbers queries per dataset: 'activitynet_<k>' = videos in file order, then sentences (tempbench's
    ActivityNet qid); 'charades_<k>' = the official Charades-STA lines grouped by video in order of first
    appearance (its loader builds a dict keyed by video)."""
    ordered = sorted(annotations, key=lambda a: a["qid"])
    grouped: dict[str, list[dict]] = defaultdict(list)
    for ann in ordered:
        grouped[ann["vid"]].append(ann)
    charades_order = [ann for anns in grouped.values() for ann in anns]
    for rec in records:
        tool_id = str(rec["source"]["id"])
        match = re.fullmatch(r"(charades|activitynet)_(\d+)", tool_id)
        if not match:
            raise _err(path, rec["source"]["line"], "qid",
                       f"Time-R1 id {tool_id!r} is not charades_<k> or activitynet_<k>", "xiaomi-time-r1")
        order = charades_order if match.group(1) == "charades" else ordered
        k = int(match.group(2))
        if k >= len(order):
            raise _err(path, rec["source"]["line"], "qid",
                       f"{tool_id} is past the {len(order)} annotated queries (wrong task or split?)", "xiaomi-time-r1")
        ann = order[k]
        target = rec["source"]["target"]
        if target is not None and not any(_same_window(target, w) for w in ann["windows"]):
            raise _err(path, rec["source"]["line"], "target",
                       f"{tool_id} has ground truth {target} but the annotation at that position (qid {ann['qid']}, "
                       f"{ann['vid']}) has {ann['windows']}: the file was made from another split or annotation file",
                       "xiaomi-time-r1")
        rec.update(qid=ann["qid"], vid=ann["vid"], query=ann["query"])


def _resolve_by_query(records: list[dict], annotations: list[dict], path: Path, source: str) -> None:
    index: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for ann in annotations:
        index[(ann["vid"], normalize_query(ann["query"]))].append(ann)
    for rec in records:
        candidates = index.get((rec["vid"], normalize_query(rec["query"])), [])
        target = rec["source"].get("target")
        if len(candidates) > 1 and target is not None:
            narrowed = [a for a in candidates if any(_same_window(target, w) for w in a["windows"])]
            candidates = narrowed or candidates
        if not candidates:
            raise _err(path, rec["source"].get("line"), "query",
                       f"no annotated query matches video {rec['vid']!r} and query {rec['query']!r} "
                       "(another benchmark or split?)", source)
        rec["qid"] = candidates[0]["qid"]


def convert_file(path: str | Path, source: str, annotations: list[dict] | None = None) -> list[dict]:
    """Read one output file of ``source`` (see ``SOURCES``) and return tempbench prediction records.

    ``annotations`` (the task's unified records) resolves qids; it is required for ``xiaomi-time-r1``, whose files
    hold neither video ids nor queries. Bad input raises TempbenchError naming the file, line and field.
    """
    if source not in _READERS:
        raise UsageError(f"unknown source {source!r}; known: {', '.join(_READERS)}")
    path = Path(path)
    if not path.is_file():
        raise TempbenchError(f"{path}: no such file", hint=f"give the {source} output file: {SOURCES[source]}")
    records = _READERS[source](path)
    if source == "xiaomi-time-r1":
        if annotations is None:
            raise TempbenchError(
                f"{path}: Time-R1 files identify queries only by Time-R1's own ids (charades_<k>), so the task's "
                "annotations are needed to convert them",
                hint="pass the task (e.g. --task charades) so its annotations can be loaded",
            )
        _resolve_time_r1(records, annotations, path)
    elif annotations is not None:
        _resolve_by_query(records, annotations, path, source)
    return records
