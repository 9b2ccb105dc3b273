"""Real entries for the leaderboard tests: runs of the baselines on the official Charades-STA test split (verified
runs), the official Moment-DETR sample predictions (a verified re-scored release), hand-made prediction files
scored here (unverified), and reported entries."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from tempbench.io import write_json
from tempbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
MOMENT_DETR_SAMPLE = "jayleicn/moment_detr@b7e553ac3b0c898ee6b85e03ee507c064eab89ca:standalone_eval/sample_val_preds.jsonl"


def baseline_run(folder: Path, kind: str, task: str = "charades", **options) -> Path:
    """`tempbench run --model baseline:KIND` into `folder`; returns its result.json."""
    from tempbench.runner import run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run(f"baseline:{kind}", task, out_dir=folder, progress=False, **options)
    return summary.run_dir / "result.json"


def handmade(folder: Path, *, seed: int = 0, jitter: float = 2.0, task: str = "charades", n: int | None = None,
             rows: list[dict] | None = None) -> tuple[Path, Path]:
    """A hand-made predictions file (the ground truth moved by N(0, jitter) seconds), scored by `tempbench score`
    into result.json + details.jsonl.gz beside it (no run.json): returns (result.json, predictions)."""
    from tempbench.api import load_annotations, score, write_result

    folder.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rng = np.random.default_rng(seed)
        records = load_annotations(task, get_task(task).default_split)[:n]
        rows = []
        for r in records:
            s, e = r["windows"][0]
            d = rng.normal(0, jitter, 2)
            rows.append({"qid": r["qid"], "output": f"{max(0, s + d[0]):.2f} to {e + d[1]:.2f}"})
    pred = folder / "preds.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = score(pred, task=task)
    write_result(result, folder / "result.json", folder / "details.jsonl.gz")
    return folder / "result.json", pred


def release_result(folder: Path, shared: Path) -> tuple[Path, Path]:
    """The official Moment-DETR sample predictions scored here: (result.json, predictions file)."""
    from tempbench.api import score, write_result

    pred = shared / "qvhighlights" / "preds" / "moment_detr_sample" / "sample_val_preds.jsonl"
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_result(score(pred, task="qvhighlights", split="val"), folder / "result.json", folder / "details.jsonl.gz")
    return folder / "result.json", pred


def make_reported(submissions: Path, *, task: str = "charades", split: str = "test", slug: str = "paper-model",
                  name: str = "Paper model", metrics: dict | None = None, setting: str = "fine-tuned",
                  citation: dict | None = None, notes: list[str] | None = None, evaluator: str = "the paper's script"
                  ) -> Path:
    spec = get_task(task)
    record = {
        "schema": "tempbench.submission/2", "id": f"{task}/{split}/{slug}", "status": "reported", "task": task,
        "split": split, "kind": spec.kind, "model": {"name": name, "id": None}, "setting": setting,
        "profile": None, "evaluator": evaluator, "date": "2024-05-06", "partial": False,
        "metrics": metrics if metrics is not None else {"R1@0.3": 80.1, "R1@0.5": 60.0, "R1@0.7": 40.2, "mIoU": 55.0},
        "citation": citation or {"title": "A paper", "arxiv": "2401.00001", "table": "Table 2"},
        "notes": notes if notes is not None else ["numbers as printed in the paper"],
    }
    path = submissions / task / split / f"{slug}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path


def edit_json(path: Path, fn) -> Path:
    data = json.loads(path.read_text())
    fn(data)
    write_json(path, data)
    return path
