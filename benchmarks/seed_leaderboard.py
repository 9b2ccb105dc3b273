"""Seed submissions/ with the leaderboard's starting entries, then (optionally) build leaderboard/.

Reported entries: published numbers with their citation (the table below; each number was checked as described in
its notes). Reproduced entries: prediction files that model authors released (QVHighlights val and test), scored
here by `tempbench.score` from ../shared/data (never copied into the repository: only their sha256 is stored), with
the numbers each model's own metrics file states shown alongside; plus the trivial baselines on each task's default
split when `tempbench.runner` offers them.

    python benchmarks/seed_leaderboard.py                 # add what is missing, then build leaderboard/
    python benchmarks/seed_leaderboard.py --only reported --no-build
    python benchmarks/seed_leaderboard.py --force         # rewrite existing seeded entries

Existing entries are kept unless --force (the reproduced entries carry the date they were scored).
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TEMPBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))

TEMPSAMP = {
    "title": "TempSamp-R1: Effective Temporal Sampling with Reinforcement Fine-Tuning for Video LLMs",
    "authors": "Li, Cheng, Jia, Kuang, Jiao, Hou, Cheng",
    "venue": "NeurIPS 2025",
    "arxiv": "2509.18056",
}
QWEN25VL = {
    "title": "Qwen2.5-VL Technical Report",
    "authors": "Qwen Team, Alibaba Group",
    "arxiv": "2502.13923",
}
MOMENT_DETR = {
    "title": "QVHighlights: Detecting Moments and Highlights in Videos via Natural Language Queries",
    "authors": "Lei, Berg, Bansal",
    "venue": "NeurIPS 2021",
    "arxiv": "2107.09609",
}
QD_DETR = {
    "title": "Query-Dependent Video Representation for Moment Retrieval and Highlight Detection",
    "authors": "Moon, Hyun, Park, Park, Heo",
    "venue": "CVPR 2023",
    "arxiv": "2303.13874",
}
CG_DETR = {
    "title": "Correlation-guided Query-Dependency Calibration for Video Temporal Grounding",
    "authors": "Moon, Hyun, Lee, Heo",
    "arxiv": "2311.08835",
}
EATR = {
    "title": "Knowing Where to Focus: Event-aware Transformer for Video Grounding",
    "authors": "Jang, Park, Park, Kim, Sohn",
    "venue": "ICCV 2023",
    "arxiv": "2308.06947",
}
TR_DETR = {
    "title": "TR-DETR: Task-Reciprocal Transformer for Joint Moment Retrieval and Highlight Detection",
    "authors": "Sun, Zhou, Chen, Xie",
    "venue": "AAAI 2024",
    "arxiv": "2401.02309",
}

TS_NOTE = ("Numbers as printed in TempSamp-R1 Table 1 (copied into the project notes, "
           "shared/notes/tempsamp-r1.md, from arXiv 2509.18056).")
TS_OTHER = ("Secondary source: the TempSamp-R1 authors' table, which quotes this model's numbers; "
            "its evaluator conventions are those of the original paper or of the TempSamp-R1 authors' re-run.")
TS_QVH = ("QVHighlights highlight detection (HD mAP / HIT@1). The table does not name the split or the saliency "
          "threshold: stored as val and VeryGood, the protocol of TimeChat (whose numbers the table quotes) and of "
          "the MLLM papers it compares with.")
QVH_TEST_EVAL = "official moment_detr standalone_eval on the QVHighlights test server (Codalab)"
QVH_CHECK = ("Checked against later papers' copies of the same table found with the search tool (e.g. VideoLights, "
             "arXiv 2412.01558, comparison table on the QVHighlights test split); the PDF itself was not read here.")

RELEASED_MATCH = ("tempbench's score of {model}'s released test submission (the reproduced entry on this board) "
                  "equals these numbers to the last digit.")


def _g(r3=None, r5=None, r7=None, miou=None) -> dict:
    out = {"R1@0.3": r3, "R1@0.5": r5, "R1@0.7": r7, "mIoU": miou}
    return {k: v for k, v in out.items() if v is not None}


def _h(r5=None, r7=None, mAP=None, mAP5=None, mAP75=None, hd=None, hit=None) -> dict:
    out = {"MR-full-R1@0.5": r5, "MR-full-R1@0.7": r7, "MR-full-mAP": mAP, "MR-full-mAP@0.5": mAP5,
           "MR-full-mAP@0.75": mAP75, "HL-min-VeryGood-mAP": hd, "HL-min-VeryGood-Hit1": hit}
    return {k: v for k, v in out.items() if v is not None}


def _ts(row: str) -> dict:
    return {**TEMPSAMP, "table": f"Table 1, row {row}"}


# (task, split, slug, display name, model id, setting, metrics, citation, evaluator, profile, date, notes)
REPORTED = [
    # --- TempSamp-R1 Table 1: Charades-STA test
    ("charades", "test", "qwen2.5-vl-7b--tempsamp-r1-tab1", "Qwen2.5-VL-7B (lmms-eval, per TempSamp-R1)",
     "Qwen/Qwen2.5-VL-7B-Instruct", "zero-shot", _g(73.4, 54.4, 30.3, 49.7), _ts("Qwen2.5-VL-7B"),
     "lmms-eval, as run by the TempSamp-R1 authors", "lmms-eval", "2025-09", [TS_NOTE]),
    ("charades", "test", "timezero-7b--tempsamp-r1-tab1", "TimeZero-7B (per TempSamp-R1)", None, "fine-tuned",
     _g(83.3, 72.5, 47.9), _ts("TimeZero-7B"), "as quoted by TempSamp-R1", None, "2025-09", [TS_NOTE, TS_OTHER]),
    ("charades", "test", "videochat-r1-7b--tempsamp-r1-tab1", "VideoChat-R1-7B (per TempSamp-R1)", None,
     "fine-tuned", _g(None, 71.7, 50.2, 60.8), _ts("VideoChat-R1-7B"), "as quoted by TempSamp-R1", None, "2025-09",
     [TS_NOTE, TS_OTHER]),
    ("charades", "test", "tempsamp-r1-7b-plain", "TempSamp-R1-7B (plain prompt)", None, "fine-tuned",
     _g(83.3, 73.6, 52.2, 61.7), _ts("TempSamp-R1 (w/o CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE, "No official checkpoint is linked; the paper-era evaluation code is unreleased."]),
    ("charades", "test", "tempsamp-r1-7b-cot", "TempSamp-R1-7B (CoT prompt)", None, "fine-tuned",
     _g(83.6, 74.1, 52.9, 62.1), _ts("TempSamp-R1 (w/ CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE, "No official checkpoint is linked; the paper-era evaluation code is unreleased."]),
    ("charades", "test", "timechat-7b-sft--tempsamp-r1-tab1", "TimeChat-7B, fine-tuned (per TempSamp-R1)", None,
     "fine-tuned", _g(None, 46.7, 23.7), _ts("TimeChat (SFT)"), "as quoted by TempSamp-R1", None, "2025-09",
     [TS_NOTE, TS_OTHER]),
    ("charades", "test", "videochat-t--tempsamp-r1-tab1", "VideoChat-T (per TempSamp-R1)", None, "fine-tuned",
     _g(79.4, 67.1, 43.0), _ts("VideoChat-T (SFT)"), "as quoted by TempSamp-R1", None, "2025-09",
     [TS_NOTE, TS_OTHER]),
    # --- Qwen2.5-VL technical report (Charades-STA mIoU only)
    *[("charades", "test", f"qwen2.5-vl-{size.lower()}--qwen-report", f"Qwen2.5-VL-{size} (Qwen report)",
       f"Qwen/Qwen2.5-VL-{size}-Instruct", "zero-shot", _g(miou=miou),
       {**QWEN25VL, "table": f"video benchmarks table, row Charades-STA (mIoU), column Qwen2.5-VL-{size}"},
       "Qwen team's own evaluation (at most 768 frames, 24,576 video tokens per video)", None, "2025-02",
       ["Checked against two copies of the report's video table found with the search tool (the 3B/7B/72B "
        "columns read 38.8 / 43.6 / 50.9; GPT-4o 35.7).",
        "General-purpose model: the report does not say whether Charades-STA training data was in its mix."])
      for size, miou in (("72B", 50.9), ("7B", 43.6), ("3B", 38.8))],
    # --- TempSamp-R1 Table 1: ActivityNet Captions val_2
    ("anet", "val_2", "qwen2.5-vl-7b--tempsamp-r1-tab1", "Qwen2.5-VL-7B (lmms-eval, per TempSamp-R1)",
     "Qwen/Qwen2.5-VL-7B-Instruct", "zero-shot", _g(45.2, 29.7, 18.1, 33.1), _ts("Qwen2.5-VL-7B"),
     "lmms-eval, as run by the TempSamp-R1 authors", "lmms-eval", "2025-09", [TS_NOTE]),
    ("anet", "val_2", "timezero-7b--tempsamp-r1-tab1", "TimeZero-7B (per TempSamp-R1)", None, "fine-tuned",
     _g(68.6, 47.3, 26.9), _ts("TimeZero-7B"), "as quoted by TempSamp-R1", None, "2025-09", [TS_NOTE, TS_OTHER]),
    ("anet", "val_2", "tempsamp-r1-7b-plain", "TempSamp-R1-7B (plain prompt)", None, "fine-tuned",
     _g(72.8, 55.4, 34.2, 52.1), _ts("TempSamp-R1 (w/o CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE]),
    ("anet", "val_2", "tempsamp-r1-7b-cot", "TempSamp-R1-7B (CoT prompt)", None, "fine-tuned",
     _g(73.4, 56.0, 34.7, 52.4), _ts("TempSamp-R1 (w/ CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE]),
    # --- TempSamp-R1 Table 1: QVHighlights highlight detection
    ("qvhighlights", "val", "qwen2.5-vl-7b--tempsamp-r1-tab1", "Qwen2.5-VL-7B (per TempSamp-R1)",
     "Qwen/Qwen2.5-VL-7B-Instruct", "zero-shot", _h(hd=19.7, hit=34.1), _ts("Qwen2.5-VL-7B"),
     "TempSamp-R1 authors' evaluation", None, "2025-09", [TS_NOTE, TS_QVH]),
    ("qvhighlights", "val", "tempsamp-r1-7b-plain", "TempSamp-R1-7B (plain prompt)", None, "fine-tuned",
     _h(hd=30.0, hit=57.6), _ts("TempSamp-R1 (w/o CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE, TS_QVH]),
    ("qvhighlights", "val", "tempsamp-r1-7b-cot", "TempSamp-R1-7B (CoT prompt)", None, "fine-tuned",
     _h(hd=28.3, hit=54.9), _ts("TempSamp-R1 (w/ CoT)"), "TempSamp-R1 authors' evaluation", None, "2025-09",
     [TS_NOTE, TS_QVH]),
    ("qvhighlights", "val", "timechat-7b-sft--tempsamp-r1-tab1", "TimeChat-7B, fine-tuned (per TempSamp-R1)",
     None, "fine-tuned", _h(hd=21.7, hit=37.9), _ts("TimeChat (SFT)"), "as quoted by TempSamp-R1", None,
     "2025-09", [TS_NOTE, TS_OTHER, TS_QVH]),
    ("qvhighlights", "val", "videochat-t--tempsamp-r1-tab1", "VideoChat-T (per TempSamp-R1)", None, "fine-tuned",
     _h(hd=27.0, hit=55.3), _ts("VideoChat-T (SFT)"), "as quoted by TempSamp-R1", None, "2025-09",
     [TS_NOTE, TS_OTHER, TS_QVH]),
    # --- DETR-family papers: QVHighlights test (official test server), no pre-training rows
    ("qvhighlights", "test", "moment-detr--paper", "Moment-DETR (paper)", "jayleicn/moment_detr", "fine-tuned",
     _h(52.89, 33.02, 30.73, 54.82, 29.40, 35.69, 55.60),
     {**MOMENT_DETR, "table": "QVHighlights test results table, row Moment-DETR (without ASR pre-training)"},
     QVH_TEST_EVAL, None, "2021-07", [QVH_CHECK]),
    ("qvhighlights", "test", "qd-detr--paper", "QD-DETR (paper)", "wjun0830/QD-DETR", "fine-tuned",
     _h(62.40, 44.98, 39.86, 62.52, 39.88, 38.94, 62.40),
     {**QD_DETR, "table": "QVHighlights test results table, row QD-DETR (video only)"},
     QVH_TEST_EVAL, None, "2023-03", [QVH_CHECK + " HIT@1 was found in one copy only."]),
    ("qvhighlights", "test", "cg-detr--paper", "CG-DETR (paper)", "wjun0830/CGDETR", "fine-tuned",
     _h(65.43, 48.38, 42.86, 64.51, 42.77, 40.33),
     {**CG_DETR, "table": "QVHighlights test results table, row CG-DETR"},
     QVH_TEST_EVAL, None, "2023-11", [QVH_CHECK + " HIT@1 is left out: no copy of it was found to check.",
                                      RELEASED_MATCH.format(model="CG-DETR")]),
    ("qvhighlights", "test", "eatr--paper", "EaTR (paper)", "jinhyunj/EaTR", "fine-tuned",
     _h(61.36, 45.79, 41.74, 61.86, 41.91, 37.15, 58.65),
     {**EATR, "table": "QVHighlights test results table, row EaTR"},
     QVH_TEST_EVAL, None, "2023-08", [QVH_CHECK + " Found in one copy only."]),
    ("qvhighlights", "test", "tr-detr--paper", "TR-DETR (paper)", "mingyao1120/TR-DETR", "fine-tuned",
     _h(64.66, 48.96, 42.62, 63.98, 43.73, 39.91, 63.42),
     {**TR_DETR, "table": "QVHighlights test results table, row TR-DETR"},
     QVH_TEST_EVAL, None, "2024-01", [QVH_CHECK, RELEASED_MATCH.format(model="TR-DETR")]),
]

# Released prediction files scored here: (split, name, model id, file under shared/data/qvhighlights/preds,
# upstream source, own metrics file or None)
RELEASED_QVH = [
    ("val", "Moment-DETR (released CLIP-only checkpoint)", "jayleicn/moment_detr",
     "moment_detr_ckpt/inference_hl_val_test_code_preds.jsonl",
     "jayleicn/moment_detr@b7e553ac3b0c898ee6b85e03ee507c064eab89ca:run_on_video/moment_detr_ckpt/inference_hl_val_test_code_preds.jsonl",
     "moment_detr_ckpt/inference_hl_val_test_code_preds_metrics.json"),
    ("val", "Moment-DETR (official sample predictions)", "jayleicn/moment_detr",
     "moment_detr_sample/sample_val_preds.jsonl",
     "jayleicn/moment_detr@b7e553ac3b0c898ee6b85e03ee507c064eab89ca:standalone_eval/sample_val_preds.jsonl",
     "moment_detr_sample/sample_val_preds_metrics_raw.json"),
    ("val", "QD-DETR (released video-only checkpoint)", "wjun0830/QD-DETR",
     "qd_detr_video/best_hl_val_preds.jsonl",
     "wjun0830/QD-DETR@56c63b2c75c5673dfe693f3ae9438f5fc1f1679a:results/video_checkpoint/best_hl_val_preds.jsonl",
     "qd_detr_video/best_hl_val_preds_metrics.json"),
    ("val", "CG-DETR (released predictions)", "wjun0830/CGDETR", "cg_detr/best_hl_val_preds.jsonl",
     "wjun0830/CGDETR@212b2e49a0893512930d63b9294a8c066347e606:results/qvhighlights/best_hl_val_preds.jsonl",
     "cg_detr/best_hl_val_preds_metrics.json"),
    ("val", "EaTR (released predictions)", "jinhyunj/EaTR", "eatr/best_hl_val_preds.jsonl",
     "jinhyunj/EaTR@384f09396a32741a73106d2e147bde54cbcce48f:eatr_ckpt/best_hl_val_preds.jsonl", None),
    ("val", "TR-DETR (released predictions)", "mingyao1120/TR-DETR", "tr_detr/best_hl_val_preds.jsonl",
     "mingyao1120/TR-DETR@fca43a9c64f10eb6a055365081e5ff2abdbcafda:checkpoint/[V_SOTA]hl-video_tef-exp-2023_07_24_20_09_00/best_hl_val_preds.jsonl",
     None),
    ("test", "CG-DETR (released test submission)", "wjun0830/CGDETR", "cg_detr/hl_test_submission.jsonl",
     "wjun0830/CGDETR@212b2e49a0893512930d63b9294a8c066347e606:results/qvhighlights/hl_test_submission.jsonl", None),
    ("test", "TR-DETR (released test submission)", "mingyao1120/TR-DETR", "tr_detr/hl_test_submission.jsonl",
     "mingyao1120/TR-DETR@fca43a9c64f10eb6a055365081e5ff2abdbcafda:checkpoint/[V_SOTA]hl-video_tef-exp-2023_07_24_20_09_00/hl_test_submission.jsonl",
     None),
]
BASELINES = ("prior", "center", "random")


def reported_records() -> list[dict]:
    from tempbench.tasks import get_task

    records = []
    for (task, split, slug, name, model_id, setting, metrics, citation, evaluator, profile, date,
         notes) in REPORTED:
        records.append({
            "schema": "tempbench.submission/2", "id": f"{task}/{split}/{slug}", "status": "reported",
            "task": task, "split": split, "kind": get_task(task).kind,
            "model": {"name": name, "id": model_id}, "setting": setting, "profile": profile,
            "evaluator": evaluator, "date": date, "partial": False, "metrics": metrics,
            "citation": {**citation, "url": f"https://arxiv.org/abs/{citation['arxiv']}"}, "notes": list(notes),
        })
    return records


def seed_reported(submissions: Path, force: bool = False) -> list[Path]:
    from tempbench.io import write_json
    from tempbench.submissions import validate_submission

    written = []
    for rec in reported_records():
        path = submissions / f"{rec['id']}.json"
        if path.exists() and not force:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        validate_submission(rec, path, root=submissions)
        write_json(path, rec)
        written.append(path)
    return written


def _ensure_imported(task: str, folder: Path) -> None:
    from tempbench.annotations import load_annotations
    from tempbench.errors import TempbenchError
    from tempbench.tasks import get_task

    try:
        load_annotations(task, get_task(task).default_split)
    except TempbenchError:
        from tempbench.annotations import import_task

        print(f"importing {task} from {folder} ...", file=sys.stderr)
        import_task(task, folder)


def _own_metrics(path: Path | None, source: str) -> dict | None:
    if path is None:
        return None
    from tempbench.io import sha256_file

    brief = json.loads(path.read_text(encoding="utf-8"))["brief"]
    return {"source": source, "sha256": sha256_file(path), "metrics": brief}


def _drop(entry: Path) -> None:
    for p in (entry, entry.with_name(entry.stem + ".details.jsonl.gz"),
              entry.with_name(entry.stem + ".predictions.jsonl.gz")):
        p.unlink(missing_ok=True)


def _with_relative_file(result_path: Path, rel_pred: str) -> None:
    """The result names its predictions by a path that means something off this machine."""
    from dataclasses import replace

    from tempbench.results import Result

    result = Result.read(result_path)
    result.replace(provenance=replace(result.provenance, predictions_file=rel_pred)).write(result_path)


def seed_released(submissions: Path, shared: Path, force: bool = False) -> list[Path]:
    """The released QVHighlights prediction files, scored here and submitted as verified re-scored releases."""
    import warnings

    from tempbench.api import score, write_result
    from tempbench.submissions import slugify, submit

    _ensure_imported("qvhighlights", shared / "qvhighlights")
    written = []
    for split, name, model_id, rel, source, metrics_rel in RELEASED_QVH:
        pred = shared / "qvhighlights" / "preds" / rel
        entry = submissions / "qvhighlights" / split / f"{slugify(name)}.json"
        if not pred.is_file():
            print(f"skip {name}: {pred} not found", file=sys.stderr)
            continue
        if entry.exists() and not force:
            continue
        _drop(entry)
        own = None
        if metrics_rel:
            repo_at, upstream_path = source.split(":", 1)
            own_source = f"{repo_at}:{posixpath.dirname(upstream_path)}/{posixpath.basename(metrics_rel)}"
            own = _own_metrics(shared / "qvhighlights" / "preds" / metrics_rel, own_source)
        notes = [f"Predictions released by the authors: {source} (not copied here: found by sha256 to verify)."]
        if own is None:
            notes.append("The repository ships no metrics file for these predictions.")
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, details = Path(tmp) / "result.json", Path(tmp) / "details.jsonl.gz"
            write_result(score(pred, task="qvhighlights", split=split), out, details)
            _with_relative_file(out, f"shared/data/qvhighlights/preds/{rel}")
            written.append(submit(out, name=name, submissions_dir=submissions, notes=notes, own_metrics=own,
                                  setting="fine-tuned", model_id=model_id, predictions_path=pred,
                                  release=source).path)
    return written


def seed_baselines(submissions: Path, shared: Path, force: bool = False) -> list[Path]:
    """Trivial baselines on each default split: runs of tempbench, submitted as verified runs (their predictions
    are ours and stored with the entry)."""
    import warnings

    from tempbench.runner import run
    from tempbench.submissions import slugify, submit
    from tempbench.tasks import get_task

    written = []
    for task, folder in (("charades", "charades_sta"), ("anet", "activitynet_captions"),
                         ("qvhighlights", "qvhighlights")):
        _ensure_imported(task, shared / folder)
        split = get_task(task).default_split
        for kind in BASELINES:
            entry = submissions / task / split / f"{slugify('baseline:' + kind)}.json"
            if entry.exists() and not force:
                continue
            _drop(entry)
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                summary = run(model=f"baseline:{kind}", task=task, split=split, out_dir=Path(tmp) / "run",
                              setting="zero-shot", progress=False)
                _with_relative_file(summary.run_dir / "result.json",
                                    f"runs/{task}-{split}/baseline-{kind}/predictions.jsonl")
                written.append(submit(summary.run_dir / "result.json", name=f"baseline:{kind}",
                                      submissions_dir=submissions,
                                      notes=["A trivial baseline: a floor for every other entry."]).path)
    return written


def seed_generated(submissions: Path, force: bool = False) -> list[Path]:
    """The generated tasks' held-out splits: tempbench's own trained default model and two baselines, as runs."""
    import warnings

    from tempbench.runner import run
    from tempbench.submissions import slugify, submit

    written = []
    for task in ("synthetic", "synthetic-hard"):
        for model, note in (("tiny-synthetic", "tempbench's embedded default model, trained here (docs/training.md)."),
                            ("baseline:center", "A trivial baseline: a floor for every other entry."),
                            ("baseline:prior", "A trivial baseline: a floor for every other entry.")):
            entry = submissions / task / "heldout" / f"{slugify(model)}.json"
            if entry.exists() and not force:
                continue
            _drop(entry)
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                summary = run(model=model, task=task, split="heldout", out_dir=Path(tmp) / "run", progress=False,
                              setting="fine-tuned" if model == "tiny-synthetic" else "zero-shot")
                _with_relative_file(summary.run_dir / "result.json",
                                    f"runs/{task}-heldout/{slugify(model)}/predictions.jsonl")
                written.append(submit(summary.run_dir / "result.json", name=model, submissions_dir=submissions,
                                      notes=[note]).path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--submissions", type=Path, default=REPO / "submissions")
    ap.add_argument("--leaderboard", type=Path, default=REPO / "leaderboard")
    ap.add_argument("--shared-data", type=Path, default=SHARED_DATA)
    ap.add_argument("--only", choices=("reported", "released", "baselines", "generated"), action="append")
    ap.add_argument("--force", action="store_true", help="rewrite entries that already exist")
    ap.add_argument("--no-build", action="store_true", help="do not rebuild leaderboard/ afterwards")
    args = ap.parse_args(argv)
    parts = args.only or ["reported", "released", "baselines", "generated"]
    written = []
    if "reported" in parts:
        written += seed_reported(args.submissions, args.force)
    if ("released" in parts or "baselines" in parts) and not args.shared_data.is_dir():
        print(f"error: {args.shared_data} not found (the shared data folder)", file=sys.stderr)
        return 2
    if "released" in parts:
        written += seed_released(args.submissions, args.shared_data, args.force)
    if "baselines" in parts:
        written += seed_baselines(args.submissions, args.shared_data, args.force)
    if "generated" in parts:
        written += seed_generated(args.submissions, args.force)
    for path in written:
        print(f"wrote {path.relative_to(args.submissions.parent) if args.submissions.parent in path.parents else path}")
    if not args.no_build:
        from tempbench.leaderboard import build_leaderboard

        build_leaderboard(args.submissions, args.leaderboard)
        print(f"built {args.leaderboard}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
