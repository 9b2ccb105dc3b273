"""Task registry: a task is its card (data, under `annotations/`) plus an importer that turns the official raw files
into unified annotation records; found by name, in the spirit of lm-evaluation-harness. The card says what the
task is: kind, headline metric, table columns, IoU thresholds, default prompt, clip length. Nothing else in
tempbench keeps per-task constants. `custom_task` makes a task of a user's own annotation file (no code)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"
KINDS = ("grounding", "highlights")

TASK_FIELDS = ("headline", "columns", "thresholds", "default_prompt", "clip_seconds")
# A card that leaves these out (the synthetic task, a user's annotation file) takes them from the official card of
# its kind: Charades-STA for grounding, QVHighlights for highlights.
REFERENCE_CARD = {"grounding": "charades", "highlights": "qvhighlights"}


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: its card, what the card says the task is, and the importer of one split's raw files."""

    name: str
    title: str
    kind: str  # "grounding" (one moment per query) or "highlights" (QVHighlights: moments + saliency)
    splits: tuple[str, ...]  # default split first
    card: dict = field(repr=False)
    headline: str  # the metric a leaderboard ranks by
    columns: tuple[tuple[str, str], ...]  # (metric, label) shown in tables
    thresholds: tuple[float, ...] | None  # IoU thresholds of R1@θ (grounding)
    default_prompt: str
    clip_seconds: float | None  # saliency clip length (highlights)
    convert: Callable[[dict[str, Path], str], list[dict]] = field(repr=False, default=lambda files, split: [])
    builtin: bool = False  # generated locally (synthetic), no official files
    custom: bool = False  # a user's own annotation file (`--annotations FILE`)

    @property
    def default_split(self) -> str:
        return self.splits[0]

    def split_card(self, split: str) -> dict:
        check_split(self, split)
        return self.card["splits"][split]

    def split_size(self, split: str) -> int:
        return int(self.split_card(split)["size"])

    def files_for(self, split: str) -> list[str]:
        return list(self.split_card(split)["files"])

    def primary_file(self, split: str) -> str:
        return self.split_card(split)["primary"]


def spec_from_card(card: dict, convert=None, builtin: bool = False, custom: bool = False) -> TaskSpec:
    """A TaskSpec from a card (the kind's defaults fill what a card leaves out)."""
    kind = card["kind"]
    if kind not in KINDS:
        raise UsageError(f"task card {card.get('name')!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    reference = card if all(k in card for k in TASK_FIELDS) else _load_card(REFERENCE_CARD[kind])
    values = {k: card.get(k, reference[k]) for k in TASK_FIELDS}
    return TaskSpec(
        name=card["name"], title=card["title"], kind=kind, splits=tuple(card["splits"]), card=card,
        headline=values["headline"], columns=tuple((c["metric"], c["label"]) for c in values["columns"]),
        thresholds=None if values["thresholds"] is None else tuple(float(t) for t in values["thresholds"]),
        default_prompt=values["default_prompt"],
        clip_seconds=None if values["clip_seconds"] is None else float(values["clip_seconds"]),
        convert=convert or (lambda files, split: []), builtin=builtin, custom=custom)


def _load_card(name: str) -> dict:
    with open(CARDS_DIR / f"{name}.json", encoding="utf-8") as fh:
        return json.load(fh)


def _registry() -> dict[str, TaskSpec]:
    from . import anet, charades, qvhighlights, synthetic

    specs = {module.NAME: spec_from_card(_load_card(module.NAME), module.convert)
             for module in (charades, anet, qvhighlights)}
    for name in synthetic.NAMES:
        specs[name] = spec_from_card(synthetic.card(name), builtin=True)
    return specs


_TASKS: dict[str, TaskSpec] | None = None


def all_tasks() -> dict[str, TaskSpec]:
    """Every registered task by name, in display order."""
    global _TASKS
    if _TASKS is None:
        _TASKS = _registry()
    return _TASKS


ALIASES = {"charades-sta": "charades", "charades_sta": "charades", "activitynet": "anet",
           "activitynet-captions": "anet", "qvh": "qvhighlights"}


def get_task(name: str) -> TaskSpec:
    """Look a task up by name or alias; a wrong name is a UsageError listing the known ones."""
    tasks = all_tasks()
    key = ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else None
    if key not in tasks:
        raise UsageError(f"unknown task {name!r}", f"known tasks: {', '.join(tasks)}; `tempbench tasks` lists them")
    return tasks[key]


def check_split(task: TaskSpec, split: str) -> str:
    if split not in task.splits:
        raise UsageError(
            f"task {task.name!r} has no split {split!r}",
            f"its splits are {', '.join(task.splits)} (default {task.default_split})",
        )
    return split


def table_columns(task_name: str, kind: str) -> tuple[tuple[str, str], ...]:
    """(metric, label) shown in tables for a result of `task_name`: its card's, or (a custom task) its kind's."""
    try:
        return get_task(task_name).columns
    except UsageError:
        card = _load_card(REFERENCE_CARD[kind])
        return tuple((c["metric"], c["label"]) for c in card["columns"])


def infer_kind(records: list[dict]) -> str:
    """`highlights` when any record has saliency (QVHighlights-style), else `grounding`."""
    return "highlights" if any("saliency" in r for r in records) else "grounding"


def custom_task(records: list[dict], source: str, kind: str | None = None) -> TaskSpec:
    """A task made of a user's own unified annotation records: name `custom`, one split named after the file."""
    kind = kind or infer_kind(records)
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    split = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(source).name.removesuffix(".jsonl")).strip("-") or "custom"
    card = {"schema": "tempbench.taskcard/1", "name": "custom", "title": f"custom ({Path(source).name})",
            "kind": kind, "splits": {split: {"size": len(records), "videos": len({r["vid"] for r in records}),
                                            "primary": str(source), "files": []}},
            "files": {}, "known_quirks": []}
    return spec_from_card(card, custom=True)


@dataclass(frozen=True)
class AnnotatedSplit:
    """A task split's unified annotation records with where they came from (what a result's provenance names)."""

    task: TaskSpec
    split: str
    records: list = field(repr=False)
    annotation_file: str
    annotation_sha256: str
    verified: bool  # the file is the one the task card pins (custom files: True, their own hash is the identity)

    @property
    def split_size(self) -> int:
        return self.task.split_size(self.split)
