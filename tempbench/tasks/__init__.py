"""Task registry: a task is a card (data, under `annotations/`) plus an importer that turns the official raw files
into unified annotation records. Found by name, in the spirit of lm-evaluation-harness."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError

CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark: its card and the function that converts one split's raw files to annotation records."""

    name: str
    title: str
    kind: str  # "grounding" (one moment per query) or "highlights" (QVHighlights: moments + saliency)
    splits: tuple[str, ...]  # default split first
    card: dict
    convert: Callable[[dict[str, Path], str], list[dict]] = field(repr=False)
    builtin: bool = False  # generated locally (synthetic), no official files

    @property
    def default_split(self) -> str:
        return self.splits[0]

    def split_card(self, split: str) -> dict:
        check_split(self, split)
        return self.card["splits"][split]

    def files_for(self, split: str) -> list[str]:
        return list(self.split_card(split)["files"])

    def primary_file(self, split: str) -> str:
        return self.split_card(split)["primary"]


def _load_card(name: str) -> dict:
    with open(CARDS_DIR / f"{name}.json", encoding="utf-8") as fh:
        return json.load(fh)


def _registry() -> dict[str, TaskSpec]:
    from . import anet, charades, qvhighlights, synthetic

    specs = {}
    for module in (charades, anet, qvhighlights):
        card = _load_card(module.NAME)
        specs[module.NAME] = TaskSpec(
            name=card["name"],
            title=card["title"],
            kind=card["kind"],
            splits=tuple(card["splits"]),
            card=card,
            convert=module.convert,
        )
    specs[synthetic.NAME] = synthetic.spec()
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
    key = ALIASES.get(name.lower(), name.lower())
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
