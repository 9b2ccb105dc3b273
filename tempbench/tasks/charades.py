"""Charades-STA importer: `charades_sta_{split}.txt` lines `VID START END##sentence`, durations from the `length`
column of the official `Charades_v1_{split}.csv`. qid = 0-based line position (blank lines are not counted)."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

from ._common import as_number, format_error, read_text

NAME = "charades"
LINE_FORMAT = "lines `VID START END##sentence` (e.g. `3MSZA 24.3 30.4##person turn a light on.`)"


def read_lengths(path: Path) -> dict[str, float]:
    """Video id -> duration from the Charades csv (`id` and `length` columns)."""
    with _io.StringIO(read_text(path, "the Charades_v1 csv (id, ..., length columns)"), newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "id" not in reader.fieldnames or "length" not in reader.fieldnames:
            raise format_error(path, 1, "length", "the header has no `id`/`length` columns", "the Charades_v1 csv")
        lengths = {}
        for row in reader:
            lengths[row["id"]] = as_number(row["length"], path, reader.line_num, "length", "seconds")
    return lengths


def convert(files: dict[str, Path], split: str) -> list[dict]:
    txt = files[f"charades_sta_{split}.txt"]
    lengths = read_lengths(files[f"Charades_v1_{split}.csv"])
    records = []
    with _io.StringIO(read_text(txt, LINE_FORMAT), newline=None) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            head, sep, sentence = line.partition("##")
            parts = head.split()
            if not sep or len(parts) != 3:
                raise format_error(txt, lineno, None, f"cannot read {line[:60]!r}", LINE_FORMAT)
            vid = parts[0]
            start = as_number(parts[1], txt, lineno, "start", LINE_FORMAT)
            end = as_number(parts[2], txt, lineno, "end", LINE_FORMAT)
            if vid not in lengths:
                raise format_error(txt, lineno, "vid", f"video {vid} has no length in Charades_v1_{split}.csv",
                                   "the csv of the same split")
            records.append({"qid": len(records), "vid": vid, "query": sentence.strip(),
                            "duration": lengths[vid], "windows": [[start, end]]})
    return records
