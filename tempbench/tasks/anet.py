"""ActivityNet Captions importer: `{split}.json` = `{vid: {duration, timestamps, sentences}}`. qid = 0-based position
over videos in file order, then sentences in order. Sentence whitespace is stripped; timestamps kept as published."""

from __future__ import annotations

from pathlib import Path

from ._common import as_number, format_error, read_json

NAME = "anet"
EXPECTED = "a JSON object {vid: {duration, timestamps: [[s, e], ...], sentences: [...]}}"


def convert(files: dict[str, Path], split: str) -> list[dict]:
    path = files[f"{split}.json"]
    data = read_json(path, EXPECTED)
    if not isinstance(data, dict):
        raise format_error(path, None, None, "the top level is not an object", EXPECTED)
    records = []
    for vid, entry in data.items():
        if not isinstance(entry, dict):
            raise format_error(path, None, vid, "entry is not an object", EXPECTED)
        for key in ("duration", "timestamps", "sentences"):
            if key not in entry:
                raise format_error(path, None, f"{vid}.{key}", "missing", EXPECTED)
        duration = as_number(entry["duration"], path, None, f"{vid}.duration", "seconds")
        stamps, sentences = entry["timestamps"], entry["sentences"]
        if len(stamps) != len(sentences):
            raise format_error(path, None, f"{vid}.timestamps", f"{len(stamps)} timestamps for {len(sentences)} sentences",
                               EXPECTED)
        for i, (stamp, sentence) in enumerate(zip(stamps, sentences)):
            if not isinstance(stamp, (list, tuple)) or len(stamp) != 2:
                raise format_error(path, None, f"{vid}.timestamps[{i}]", f"{stamp!r} is not a [start, end] pair", EXPECTED)
            start = as_number(stamp[0], path, None, f"{vid}.timestamps[{i}][0]", "seconds")
            end = as_number(stamp[1], path, None, f"{vid}.timestamps[{i}][1]", "seconds")
            records.append({"qid": len(records), "vid": vid, "query": str(sentence).strip(),
                            "duration": duration, "windows": [[start, end]]})
    return records
