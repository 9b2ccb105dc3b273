"""Run folders for analysis-script tests: a run.json and predictions.jsonl written directly (no model run)."""

from __future__ import annotations

import json
from pathlib import Path

from tempbench.results import ModelIdentity, RunConfig


def write_run(folder: Path, task: str, split: str, rows: list[dict]) -> Path:
    """A `tempbench run` folder of `task`/`split` holding these prediction rows (qid, vid, output)."""
    folder.mkdir(parents=True)
    RunConfig(task=task, split=split, annotation_file="annotations.jsonl", annotation_sha256="a" * 64,
              model=ModelIdentity(spec="m", id="m", backend="transformers", info={"name": "m"}), prompt=None,
              prompt_sha256=None, video=None, generation=None).write(folder / "run.json")
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
