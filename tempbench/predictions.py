"""Predictions: read, validate and match rows to queries.

A predictions file is JSON lines (or one JSON list) of rows that follow `tempbench/schemas/prediction.json`:
`{"qid", "vid"?, "query"?, "output"?: raw text, "windows"?: [[s, e(, score)], ...], "saliency"?: [...],
"error"?: "message"}`; the official QVHighlights fields `pred_relevant_windows` / `pred_saliency_scores` are read
as `windows` / `saliency`. The checks here are the schema's, written out so that a bad row gets one line naming
its file, line and field (a property test holds the two together).

Rows are matched to the split's queries by qid, else by (vid, normalised query) for files from other tools.
A file written by `tempbench run` (a `predictions.jsonl` with its `run.json` beside it) is append-only: a later
row of a qid supersedes the earlier one (a retried error row). In any other file a qid twice is an error.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

from . import io
from .errors import TempbenchError
from .results import RunConfig

EXPECTED = "a predictions JSONL file (one {\"qid\", \"output\" | \"windows\"} object per line)"
WINDOWS_HINT = "write windows as [[start, end], ...] or [[start, end, score], ...] with numbers (seconds)"
TEXT_FIELDS = ("vid", "query", "output", "error")
WINDOW_FIELDS = ("windows", "pred_relevant_windows")
SALIENCY_FIELDS = ("saliency", "pred_saliency_scores")
# Rows past these sizes are refused (schemas/prediction.json has the same maxItems): no metric reads more than the
# first 10 windows of a row, and 100,000 two-second clips are a 55-hour video. Text answers have no limit.
MAX_WINDOWS = 10_000
MAX_SALIENCY = 100_000


@dataclass(frozen=True)
class PredictionRow:
    """One validated row (`line` is its line in the file, or its position in a list, from 1)."""

    line: int
    qid: int | None  # None: to be matched by (vid, query)
    vid: str | None = None
    query: str | None = None
    output: str | None = None
    windows: list | None = None  # [[start, end(, score)], ...] floats, list order = rank order
    saliency: list | None = None  # floats
    error: str | None = None


@dataclass(frozen=True)
class Predictions:
    """The rows of one predictions source, its sha256 and, for a file written by `tempbench run`, its run."""

    rows: tuple[PredictionRow, ...]
    source: str
    sha256: str
    run: RunConfig | None = None

    @property
    def written_by_run(self) -> bool:
        return self.run is not None


def normalize_query(query: str) -> str:
    """Key for matching a query across tools: lower case, single spaces, no surrounding spaces or final periods
    (lmms-eval and TimeLens drop the final period of Charades-STA sentences)."""
    return re.sub(r"\s+", " ", query).strip().strip(".").strip().lower()


def _bad(source, line, field, problem, todo) -> TempbenchError:
    return io.file_error(source, problem, todo, line=line, field=field)


def _qid(value, source, line):
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(source, line, "qid", f"{str(value)[:40]!r} is not an integer",
                   "qids are integers (strings holding one are accepted)")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _bad(source, line, "qid", f"{value!r} is not an integer", "qids are integers")
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]{1,30}", text):
        return int(text)
    return None  # matched by (vid, query) if the row gives them


_PLAIN_NUMBERS = {int, float}


def _numbers(values) -> bool:
    """All of `values` are real numbers (JSON's int and float, or numpy's), booleans not."""
    kinds = set(map(type, values))
    return kinds <= _PLAIN_NUMBERS or all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in values)


def _windows(value, source, line, field) -> list:
    if not isinstance(value, list):
        raise _bad(source, line, field, f"{type(value).__name__} instead of a list of [start, end(, score)]",
                   WINDOWS_HINT)
    if len(value) > MAX_WINDOWS:
        raise _bad(source, line, field, f"{len(value):,} windows; at most {MAX_WINDOWS:,} per row are read",
                   "keep the top-ranked windows (list order is rank order): R1 reads the first, R@5 the first 5, "
                   "the QVHighlights mAP the first 10")
    out = []
    width = None
    for i, w in enumerate(value):
        if not isinstance(w, list) or len(w) not in (2, 3):
            raise _bad(source, line, f"{field}[{i}]", f"{str(w)[:60]} is not [start, end] or [start, end, score]",
                       WINDOWS_HINT)
        if not _numbers(w):
            raise _bad(source, line, f"{field}[{i}]", f"{json.dumps(w)[:60]} holds a value that is not a number",
                       WINDOWS_HINT)
        if width is not None and len(w) != width:
            raise _bad(source, line, f"{field}[{i}]", "windows of different lengths in one row",
                       "give every window as [start, end, score], or none with a score")
        width = len(w)
        row = list(map(float, w))
        if not all(map(math.isfinite, row)):
            raise _bad(source, line, f"{field}[{i}]", f"{json.dumps(w)[:60]} holds NaN or infinity",
                       "a window the model could not produce belongs in an `error` row")
        out.append(row)
    return out


def _saliency(value, source, line, field) -> list:
    if isinstance(value, list) and len(value) > MAX_SALIENCY:
        raise _bad(source, line, field, f"{len(value):,} scores; at most {MAX_SALIENCY:,} per row are read",
                   "give one score per 2-second clip of the video")
    if not isinstance(value, list) or not _numbers(value):
        raise _bad(source, line, field, "not a list of numbers", "one score per clip of the video")
    out = list(map(float, value))
    if not all(map(math.isfinite, out)):
        raise _bad(source, line, field, "holds NaN or infinity", "one finite score per clip")
    return out


def validate_row(row, source, line: int) -> PredictionRow:
    """A PredictionRow from one JSON value, or a TempbenchError naming the source, line and field."""
    if not isinstance(row, dict):
        raise _bad(source, line, None, f"a {type(row).__name__}, not a JSON object", EXPECTED)
    if "qid" not in row and not ("vid" in row and "query" in row):
        raise _bad(source, line, "qid", "missing", "every row needs a qid (or vid and query)")
    fields: dict = {"line": line, "qid": _qid(row["qid"], source, line) if "qid" in row else None}
    for key in TEXT_FIELDS:
        value = row.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise _bad(source, line, key, f"{type(value).__name__} instead of a string", f"{key} is text")
            fields[key] = value
    for key in WINDOW_FIELDS:
        if row.get(key) is not None:
            fields["windows"] = _windows(row[key], source, line, key)
    for key in SALIENCY_FIELDS:
        if row.get(key) is not None:
            fields["saliency"] = _saliency(row[key], source, line, key)
    return PredictionRow(**fields)


def _items(text: str, source) -> list[tuple[int, object]]:
    if text.lstrip().startswith("["):
        data = io.loads(text, source, None, EXPECTED)
        if not isinstance(data, list):
            raise _bad(source, 1, None, "not a JSON list of rows", EXPECTED)
        return [(i + 1, r) for i, r in enumerate(data)]
    return list(io.iter_jsonl(text, source, EXPECTED, objects=False))


def read_predictions(path: str | Path) -> Predictions:
    """A predictions file, read once: its rows, sha256 and (if `tempbench run` wrote it) its run.json."""
    path = Path(path)
    data = io.read_bytes(path, "a predictions JSONL file (e.g. runs/.../predictions.jsonl)")
    run_json = path.parent / "run.json"
    run = RunConfig.read(run_json) if path.name == "predictions.jsonl" and run_json.is_file() else None
    return predictions_from_bytes(data, path, run)


def predictions_from_bytes(data: bytes, source: str | Path, run: RunConfig | None = None) -> Predictions:
    """Predictions from a file's bytes; `run` is the run that wrote them (its append-only rows supersede)."""
    text = io.decode_text(data, source, EXPECTED)
    rows = tuple(validate_row(row, source, line) for line, row in _items(text, source))
    return Predictions(rows=rows, source=str(source), sha256=io.sha256_bytes(data), run=run)


def predictions_from_rows(rows: list[dict], source: str = "<rows>") -> Predictions:
    """Predictions given in memory (a notebook): the sha256 is that of their JSONL text."""
    if not isinstance(rows, (list, tuple)):
        raise TempbenchError(f"predictions must be a path or a list of row dicts, not {type(rows).__name__}")
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)
    checked = tuple(validate_row(row, source, i + 1) for i, row in enumerate(rows))
    return Predictions(rows=checked, source=source, sha256=io.sha256_bytes(text.encode("utf-8")))


@dataclass(frozen=True)
class Matched:
    """qid -> the row that predicts it (annotation order is kept by the caller), and the qids without one."""

    rows: dict
    missing: tuple[int, ...]


def match_predictions(predictions: Predictions, records: list[dict], strict: bool = False) -> Matched:
    """Match rows to the split's queries. Unknown qids, rows of another video and (outside run files) duplicate
    qids are errors naming the line; with `strict`, so are queries without a row."""
    source = predictions.source
    by_qid = {r["qid"]: r for r in records}
    by_text: dict = {}
    for r in records:
        by_text.setdefault((r["vid"], normalize_query(r["query"])), r["qid"])
    matched: dict[int, PredictionRow] = {}
    for row in predictions.rows:
        qid = row.qid
        if qid is None or qid not in by_qid:
            key = (row.vid, normalize_query(row.query or ""))
            alt = by_text.get(key)
            if alt is None:
                shown = str(qid) if qid is not None else "(not an integer)"
                raise _bad(source, row.line, "qid", f"qid {shown[:40]} is not a query of this split"
                           + (f" and (vid, query) {str(key)[:80]} is not either" if row.vid else ""),
                           "check --task/--split (or run.json), or remove the row")
            qid = alt
        elif row.vid and row.vid != by_qid[qid]["vid"]:
            raise _bad(source, row.line, "vid", f"qid {qid} is video {by_qid[qid]['vid']} in the annotations, "
                       f"not {row.vid[:60]}", "the predictions were made for another split or qid numbering")
        if qid in matched and not predictions.written_by_run:
            raise _bad(source, row.line, "qid", f"duplicate qid {qid} (first on line {matched[qid].line})",
                       "keep one row per query")
        matched[qid] = row  # in a run's append-only file the later row supersedes
    missing = tuple(q for q in by_qid if q not in matched)
    if missing and strict:
        raise TempbenchError(f"{source}: {len(missing)} of {len(records)} queries have no prediction "
                             f"(first qids: {list(missing[:5])})", "drop --strict to count them as failures")
    return Matched(rows=matched, missing=missing)
