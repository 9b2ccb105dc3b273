"""How a run's queries are cut into model batches (pure: no I/O, no torch).

The real benchmarks ask several questions of each video (Charades-STA test: 3,720 queries over 1,334 videos;
ActivityNet Captions val_2: 17,031 over 4,885). A batch plan therefore:

1. groups the queries by video (`vid`), in order of each video's first query; inside a group, queries keep their
   order. A video is read, decoded and preprocessed once for all its queries, and a model that shares a video's
   prefix (tempbench's Qwen path) encodes and prefills it once per batch it appears in;
2. with a token budget, orders the groups by their estimated prompt length (longest first, ties in first-query
   order), so that the rows of one batch pad little; without one, the groups keep their order;
3. packs the groups' queries into batches of at most `batch_size` queries whose padded cost (rows x longest row,
   from `cost(record)`, an upper-bound estimate of a query's prompt tokens) stays within `token_budget`; a group
   that does not fit continues in the next batch, so every group's queries are consecutive in the plan. A single
   query over the budget still gets a batch of its own.

The plan is a function of the whole query list only, never of what is already done: a resumed run drops the
answered queries from the same batches (`pending`), so it forms the same batches as the run it continues.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """The queries of one video inside one batch."""

    vid: str
    records: tuple[dict, ...]


@dataclass(frozen=True)
class Batch:
    parts: tuple[Part, ...]

    @property
    def records(self) -> list[dict]:
        return [r for p in self.parts for r in p.records]

    @property
    def qids(self) -> list[int]:
        return [r["qid"] for r in self.records]

    def __len__(self) -> int:
        return sum(len(p.records) for p in self.parts)


def group_by_video(records: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """(vid, its records) in order of each video's first record."""
    groups: dict[str, list[dict]] = {}
    for rec in records:
        groups.setdefault(str(rec["vid"]), []).append(rec)
    return list(groups.items())


def plan_batches(records: Sequence[dict], batch_size: int, token_budget: int | None = None,
                 cost: Callable[[dict], int] | None = None) -> list[Batch]:
    """The batch plan of `records` (module docstring)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if token_budget is not None and token_budget < 1:
        raise ValueError(f"token_budget must be >= 1, got {token_budget}")
    groups = group_by_video(records)
    costs = {id(r): int(cost(r)) if cost is not None else 0 for r in records}
    if token_budget is not None:
        order = {vid: i for i, (vid, _) in enumerate(groups)}
        groups.sort(key=lambda g: (-max(costs[id(r)] for r in g[1]), order[g[0]]))
    batches: list[Batch] = []
    parts: list[Part] = []
    current: list[dict] = []  # the open part's records
    vid = None
    n = 0
    widest = 0

    def close_part():
        nonlocal current
        if current:
            parts.append(Part(vid, tuple(current)))
        current = []

    def close_batch():
        nonlocal parts, n, widest
        close_part()
        if parts:
            batches.append(Batch(tuple(parts)))
        parts, n, widest = [], 0, 0

    for vid_, recs in groups:
        close_part()
        vid = vid_
        for rec in recs:
            c = costs[id(rec)]
            over = token_budget is not None and n > 0 and max(widest, c) * (n + 1) > token_budget
            if n >= batch_size or over:
                close_batch()
            current.append(rec)
            n += 1
            widest = max(widest, c)
    close_batch()
    return batches


def pending(batches: Sequence[Batch], todo: set[int]) -> list[Batch]:
    """The plan's batches restricted to the queries still to run (`todo` qids), empty batches dropped."""
    out = []
    for b in batches:
        parts = tuple(Part(p.vid, tuple(r for r in p.records if r["qid"] in todo)) for p in b.parts)
        parts = tuple(p for p in parts if p.records)
        if parts:
            out.append(Batch(parts))
    return out
