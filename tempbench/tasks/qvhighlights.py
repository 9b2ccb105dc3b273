"""QVHighlights importer: the official JSONL (`highlight_{split}_release.jsonl`, test ground truth
`highlight_test_with_gt.jsonl`). Keeps the official qid, relevant windows and the saliency (clip ids + 3 annotator
scores per clip, 2-second clips)."""

from __future__ import annotations

from pathlib import Path

from ._common import as_number, format_error, read_jsonl

NAME = "qvhighlights"
EXPECTED = ("JSON lines with qid, vid, query, duration, relevant_windows, relevant_clip_ids and saliency_scores "
            "(the official release with ground truth)")


def convert(files: dict[str, Path], split: str) -> list[dict]:
    path = files["highlight_test_with_gt.jsonl" if split == "test" else f"highlight_{split}_release.jsonl"]
    records = []
    for lineno, row in read_jsonl(path, EXPECTED):
        for key in ("qid", "vid", "query", "duration", "relevant_windows"):
            if key not in row:
                raise format_error(path, lineno, key, "missing", EXPECTED)
        qid = row["qid"]
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise format_error(path, lineno, "qid", f"{qid!r} is not an integer", EXPECTED)
        windows = []
        for i, w in enumerate(row["relevant_windows"]):
            if not isinstance(w, (list, tuple)) or len(w) != 2:
                raise format_error(path, lineno, f"relevant_windows[{i}]", f"{w!r} is not a [start, end] pair", EXPECTED)
            windows.append([as_number(v, path, lineno, f"relevant_windows[{i}]", "seconds") for v in w])
        record = {"qid": qid, "vid": str(row["vid"]), "query": str(row["query"]).strip(),
                  "duration": as_number(row["duration"], path, lineno, "duration", "seconds"), "windows": windows}
        if "relevant_clip_ids" in row or "saliency_scores" in row:
            clip_ids, scores = row.get("relevant_clip_ids", []), row.get("saliency_scores", [])
            if len(clip_ids) != len(scores):
                raise format_error(path, lineno, "saliency_scores",
                                   f"{len(scores)} score rows for {len(clip_ids)} relevant_clip_ids", EXPECTED)
            if any(not isinstance(s, (list, tuple)) or len(s) != 3 for s in scores):
                raise format_error(path, lineno, "saliency_scores", "a row is not 3 annotator scores", EXPECTED)
            record["saliency"] = {"clip_ids": [int(c) for c in clip_ids],
                                  "scores": [[float(v) for v in s] for s in scores]}
        records.append(record)
    return records
