"""Ground-truth quirks of unified annotation records, counted and never fixed (pure: no I/O)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Quirks:
    counts: dict  # kind -> number of records
    examples: dict  # kind -> up to 3 {"qid", "vid", "window", "duration"}


FLOAT_NOISE = 1e-9  # ActivityNet writes e.g. 55.150000000000006 for a moment that ends at the 55.15 s duration


def find_quirks(records: list[dict]) -> Quirks:
    """Ground-truth quirks, counted and never fixed: moments ending after the duration (beyond float noise of
    FLOAT_NOISE), starting after it, reversed, zero-length, negative starts, duplicate (vid, query, window) rows,
    duplicate (vid, query) pairs, empty queries, queries without a window."""
    counts = Counter()
    examples: dict[str, list] = {}

    def add(kind, record, window=None):
        counts[kind] += 1
        ex = examples.setdefault(kind, [])
        if len(ex) < 3:
            ex.append({"qid": record["qid"], "vid": record["vid"], "window": window, "duration": record["duration"]})

    seen_rows, seen_pairs = set(), set()
    for r in records:
        if not r["windows"]:
            add("no_window", r)
        if not r["query"].strip():
            add("empty_query", r)
        for s, e in r["windows"]:
            if e > r["duration"] + FLOAT_NOISE:
                add("ends_after_duration", r, [s, e])
            if s >= r["duration"]:
                add("starts_after_duration", r, [s, e])
            if e < s:
                add("reversed", r, [s, e])
            elif e == s:
                add("zero_length", r, [s, e])
            if s < 0:
                add("negative_start", r, [s, e])
        key = (r["vid"], r["query"])
        row = key + (json.dumps(r["windows"]),)
        if row in seen_rows:
            add("duplicate_rows", r)
        elif key in seen_pairs:
            add("duplicate_queries", r)
        seen_rows.add(row)
        seen_pairs.add(key)
    kinds = ["ends_after_duration", "starts_after_duration", "reversed", "zero_length", "negative_start",
             "duplicate_rows", "duplicate_queries", "empty_query", "no_window"]
    return Quirks({k: counts.get(k, 0) for k in kinds}, examples)
