"""Leaderboard builder: ranking, paired tests, outputs, determinism, check_leaderboard.

The helpers at the top (``make_run``, ``make_reported``, ``seed_board``) write small result / details files in the
exact shape of ``tempbench.result/2`` and are reused by test_submit.py and test_leaderboard_browser.py."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tempbench.errors import TempbenchError
from tempbench.io import write_json
from tempbench.leaderboard import (
    build_leaderboard,
    check_leaderboard,
    compute_boards,
    diff_outputs,
    recall_curve,
    render_leaderboard,
    write_outputs,
)
from tempbench.results import (
    CIMethod,
    Counts,
    ModelIdentity,
    Provenance,
    QueryDetail,
    Result,
    RunConfig,
    write_details,
)
from tempbench.submissions import annotation_sha256, load_submissions, submit
from tempbench.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
GROUNDING_METRICS = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")


def _grounding_scores(iou: float) -> dict:
    return {"R1@0.3": 100.0 * (iou >= 0.3), "R1@0.5": 100.0 * (iou >= 0.5), "R1@0.7": 100.0 * (iou >= 0.7),
            "mIoU": 100.0 * iou}


def _highlight_scores(rng: np.random.Generator, skill: float) -> dict:
    iou = float(np.clip(rng.normal(skill, 0.25), 0, 1))
    return {"MR-full-R1@0.5": 100.0 * (iou >= 0.5), "MR-full-R1@0.7": 100.0 * (iou >= 0.7),
            "MR-full-mAP": 100.0 * iou * 0.8, "HL-min-VeryGood-mAP": float(rng.uniform(20, 60)),
            "HL-min-VeryGood-Hit1": 100.0 * (rng.uniform() < skill)}


def make_run(folder: Path, *, task: str = "charades", split: str | None = None, model: str = "model-a",
             skill: float = 0.5, seed: int = 0, n: int | None = None, profile: str = "canonical",
             setting: str | None = "zero-shot", base_ious: np.ndarray | None = None, noise: float = 0.0,
             created: str = "2025-01-02T03:04:05+00:00", pred_tag: str | None = None) -> Path:
    """Write result.json + details.jsonl.gz (means consistent with the metrics) into ``folder``; return result.json.

    Grounding: per-query IoU ~ clip(N(skill, 0.25)), or ``base_ious + N(0, noise)`` when base_ious is given (to make
    two runs nearly identical). Queries are spread over videos 3 per video (paired tests cluster by video)."""
    spec = get_task(task)
    split = split or spec.default_split
    size = spec.card["splits"][split]["size"]
    n = size if n is None else n
    rng = np.random.default_rng(seed)
    rows = []
    if spec.kind == "grounding":
        if base_ious is not None:
            ious = np.clip(base_ious[:n] + rng.normal(0, noise, n), 0, 1)
        else:
            ious = np.clip(rng.normal(skill, 0.25, n), 0, 1)
        for q in range(n):
            rows.append({"qid": q, "vid": f"v{q // 3:05d}", "status": "ok", "detail": "windows given",
                         "windows": [[0.0, 1.0]], "iou": float(ious[q]), "scores": _grounding_scores(float(ious[q]))})
    else:
        for q in range(n):
            rows.append({"qid": 1000 + q, "vid": f"v{q // 3:05d}", "status": "ok", "detail": "windows given",
                         "windows": [[0.0, 2.0, 1.0]], "scores": _highlight_scores(rng, skill)})
    names = list(rows[0]["scores"])
    metrics = {m: math.fsum(r["scores"][m] for r in rows) / n for m in names}
    ci95 = {m: [max(0.0, v - 1.5), min(100.0, v + 1.5)] for m, v in metrics.items()}
    official = None
    if spec.kind == "highlights":
        official = {"brief": {k: round(v, 2) for k, v in metrics.items()},
                    "full": {"MR-R1": {f"{t:.2f}".rstrip("0"): max(0.0, 80 * skill - 100 * (t - 0.5))
                                       for t in np.arange(0.5, 0.96, 0.05)}}}
    pred_sha = hashlib.sha256((pred_tag or f"{model}-{seed}-{skill}-{task}-{split}").encode()).hexdigest()
    run = RunConfig(task=spec.name, split=split, annotation_file=spec.card["splits"][split]["primary"],
                    annotation_sha256=annotation_sha256(spec, split),
                    model=ModelIdentity(spec=model, id=model, backend="transformers"), prompt="tempsamp-r1-plain",
                    prompt_sha256="0" * 64, video=None, generation=None, setting=setting or "zero-shot")
    result = Result(
        task=spec.name, split=split, kind=spec.kind, profile=profile, n=n, split_size=size, partial=n < size,
        counts=Counts(predictions=n, ok=n), failure_rate=0.0, metrics=metrics, ci95=ci95, official=official,
        ci=CIMethod("bootstrap", 1000, 0),
        provenance=Provenance(tempbench_version="0.1.0", git_revision="0" * 40,
                              annotation_file=spec.card["splits"][split]["primary"],
                              annotation_sha256=annotation_sha256(spec, split), annotation_verified=True,
                              predictions_file="predictions.jsonl", predictions_sha256=pred_sha, created=created),
        run=run if setting is not None else None,
        details=tuple(QueryDetail(**row) for row in rows))
    folder.mkdir(parents=True, exist_ok=True)
    result.write(folder / "result.json")
    write_details(folder / "details.jsonl.gz", result.details)
    return folder / "result.json"


def make_reported(submissions: Path, *, task: str = "charades", split: str = "test", slug: str = "paper-model",
                  name: str = "Paper model", metrics: dict | None = None, setting: str = "fine-tuned") -> Path:
    spec = get_task(task)
    record = {
        "schema": "tempbench.submission/1", "id": f"{task}/{split}/{slug}", "source": "reported", "task": task,
        "split": split, "kind": spec.kind, "model": {"name": name, "id": None}, "setting": setting,
        "profile": None, "evaluator": "the paper's own script", "date": "2024-05-06",
        "metrics": metrics if metrics is not None else {"R1@0.3": 80.1, "R1@0.5": 60.0, "R1@0.7": 40.2, "mIoU": 55.0},
        "citation": {"title": "A paper", "arxiv": "2401.00001", "table": "Table 2"},
        "notes": ["numbers as printed in the paper"],
    }
    path = submissions / task / split / f"{slug}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)
    return path


def seed_board(tmp: Path) -> Path:
    """A submissions folder with 3 reproduced Charades entries (a leader, a near-tie, a clearly worse one), one
    reported Charades entry without R1@0.5... and one reproduced QVHighlights entry."""
    subs = tmp / "submissions"
    base = np.clip(np.random.default_rng(7).normal(0.55, 0.25, 3720), 0, 1)
    submit(make_run(tmp / "runs/a", model="Leader-7B", base_ious=base, noise=0.0, seed=1), submissions_dir=subs)
    submit(make_run(tmp / "runs/b", model="Twin-7B", base_ious=base, noise=0.02, seed=2, setting="fine-tuned"),
           submissions_dir=subs)
    submit(make_run(tmp / "runs/c", model="Weak-2B", skill=0.3, seed=3), submissions_dir=subs)
    make_reported(subs)
    make_reported(subs, slug="paper-partial-numbers", name="Only mIoU", metrics={"mIoU": 43.6}, setting="zero-shot")
    submit(make_run(tmp / "runs/q", task="qvhighlights", model="DETR-ish", skill=0.6, seed=4), submissions_dir=subs)
    return subs


@pytest.fixture(scope="module")
def board_dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board")
    subs = seed_board(tmp)
    out = tmp / "leaderboard"
    build_leaderboard(subs, out)
    return subs, out


# --------------------------------------------------------------------------------------------------- tests


def test_fixture_metrics_are_means_of_details(tmp_path):
    res = json.loads(make_run(tmp_path, skill=0.4, seed=5).read_text())
    rows = [json.loads(line) for line in gzip.decompress((tmp_path / "details.jsonl.gz").read_bytes()).splitlines()]
    assert res["schema"] == "tempbench.result/2"
    assert len(rows) == res["n"] == 3720
    for m in GROUNDING_METRICS:
        assert res["metrics"][m] == pytest.approx(np.mean([r["scores"][m] for r in rows]))


def test_ranking_and_significance(board_dirs):
    subs, _ = board_dirs
    boards = compute_boards(load_submissions(subs))
    assert [(b.task, b.split) for b in boards] == [("charades", "test"), ("qvhighlights", "val")]
    ch = boards[0]
    names = [r.entry.name for r in ch.rows]
    r15 = [r.entry.metrics.get("R1@0.5") for r in ch.rows]
    known = [v for v in r15 if v is not None]
    assert known == sorted(known, reverse=True)
    assert names[-1] == "Only mIoU"  # no headline value: last
    by_name = {r.entry.name: r for r in ch.rows}
    leader = by_name["Leader-7B"] if by_name["Leader-7B"].vs_best == "best" else by_name["Twin-7B"]
    other = by_name["Twin-7B"] if leader is by_name["Leader-7B"] else by_name["Leader-7B"]
    assert leader.vs_best == "best"
    assert other.vs_best == "n.s." and other.p_value >= 0.05 and other.n_paired == 3720
    assert by_name["Weak-2B"].vs_best == "worse" and by_name["Weak-2B"].p_value < 0.001
    assert by_name["Paper model"].vs_best is None and by_name["Paper model"].p_value is None


def test_outputs_readme_csv_json(board_dirs):
    subs, out = board_dirs
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"README.md", "index.html", "leaderboard.json", "charades-test.csv", "qvhighlights-val.csv",
            "figures/charades-test-bars.png", "figures/charades-test-recall.png",
            "figures/qvhighlights-val-bars.png", "figures/qvhighlights-val-recall.png"} <= names
    readme = (out / "README.md").read_text()
    assert "## Charades-STA, test (3,720 queries)" in readme and "## QVHighlights, val" in readme
    assert "≈" in readme and "[A paper, arXiv 2401.00001, Table 2](https://arxiv.org/abs/2401.00001)" in readme
    lines = [ln for ln in readme.splitlines() if ln.startswith("| ") and "Charades" not in ln]
    # CI brackets only on reproduced rows
    weak = next(ln for ln in lines if "Weak-2B" in ln)
    paper = next(ln for ln in lines if "Paper model" in ln)
    assert "[" in weak.split("|")[5] and "○" in paper and "[" not in paper.split("|")[5]
    rows = list(csv.DictReader((out / "charades-test.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert {r["source"] for r in rows} == {"reproduced", "reported"}
    weak_row = next(r for r in rows if r["model"] == "Weak-2B")
    assert float(weak_row["R1@0.5 ci95_low"]) < float(weak_row["R1@0.5"]) < float(weak_row["R1@0.5 ci95_high"])
    doc = json.loads((out / "leaderboard.json").read_text())
    assert doc["schema"] == "tempbench.leaderboard/1" and len(doc["entries"]) == 6
    assert doc["boards"][0]["headline"] == "R1@0.5" and doc["boards"][1]["headline"] == "MR-full-R1@0.5"
    assert doc["tempbench_versions"] == ["0.1.0"]
    html = (out / "index.html").read_text()
    assert "http://" not in html.replace('http-equiv', '') and "<script src" not in html and "<link rel=\"stylesheet" not in html
    assert html.count("data:image/png;base64,") == 4


def test_recall_curve_matches_r1_metrics(board_dirs):
    subs, _ = board_dirs
    for entry in load_submissions(subs):
        if entry.source != "reproduced" or entry.kind != "grounding":
            continue
        xs, ys = recall_curve(entry, "grounding")
        for t in (0.3, 0.5, 0.7):
            assert ys[xs.index(t)] == pytest.approx(entry.metrics[f"R1@{t}"])
        assert ys == sorted(ys, reverse=True)


def test_deterministic_bytes(board_dirs, tmp_path):
    subs, out = board_dirs
    out2 = tmp_path / "again"
    build_leaderboard(subs, out2)
    a = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    b = {p.relative_to(out2).as_posix(): p.read_bytes() for p in out2.rglob("*") if p.is_file()}
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    png = a["figures/charades-test-bars.png"]
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png.lower()
    assert b"tIME" not in png


def test_check_leaderboard_reports_differences(board_dirs, tmp_path):
    subs, out = board_dirs
    assert check_leaderboard(subs, out) == []
    files = render_leaderboard(subs)
    copy = tmp_path / "lb"
    write_outputs(files, copy)
    assert diff_outputs(files, copy) == []
    (copy / "README.md").write_text("edited by hand\n")
    (copy / "figures" / "charades-test-recall.png").unlink()
    (copy / "old-task-test.csv").write_text("stale\n")
    (copy / "notes.txt").write_text("not generated, not managed\n")
    assert diff_outputs(files, copy) == ["README.md", "figures/charades-test-recall.png", "old-task-test.csv"]
    write_outputs(files, copy)  # rebuilding removes stale generated files, keeps other files
    assert diff_outputs(files, copy) == [] and not (copy / "old-task-test.csv").exists()
    assert (copy / "notes.txt").exists()
    assert diff_outputs(files, tmp_path / "missing") == sorted(files)  # nothing built yet: every file differs


def test_build_refuses_bad_entries(tmp_path):
    subs = tmp_path / "submissions"
    path = make_reported(subs)
    record = json.loads(path.read_text())
    del record["citation"]
    write_json(path, record)
    with pytest.raises(TempbenchError, match=r"paper-model\.json.*citation"):
        render_leaderboard(subs)
    record["citation"] = {"title": "t", "table": "Table 1"}
    record["metrics"]["R1@0.5"] = 150.0
    write_json(path, record)
    with pytest.raises(TempbenchError, match=r"metrics\.R1@0\.5.*percentage"):
        render_leaderboard(subs)
    record["metrics"]["R1@0.5"] = 50.0
    record["id"] = "charades/test/other-name"
    write_json(path, record)
    with pytest.raises(TempbenchError, match=r"field 'id'.*lies at"):
        render_leaderboard(subs)


def test_tampered_details_refused(tmp_path):
    subs = tmp_path / "submissions"
    entry = submit(make_run(tmp_path / "run", model="m"), submissions_dir=subs)
    details = entry.with_name("m.details.jsonl.gz")
    details.write_bytes(gzip.compress(b'{"qid": 0, "scores": {}}\n', mtime=0))
    with pytest.raises(TempbenchError, match=r"details\.sha256"):
        load_submissions(subs)


def test_empty_submissions(tmp_path):
    (tmp_path / "s").mkdir()
    files = render_leaderboard(tmp_path / "s")
    assert "No entries yet." in files["README.md"].decode()
    assert json.loads(files["leaderboard.json"])["boards"] == []


def test_repository_leaderboard_is_up_to_date():
    """The committed leaderboard/ must be what `tempbench leaderboard` builds from the committed submissions/."""
    subs, out = REPO / "submissions", REPO / "leaderboard"
    if not subs.is_dir():
        pytest.fail("submissions/ is missing from the repository")
    entries = load_submissions(subs)
    assert entries, "submissions/ holds no entries"
    assert check_leaderboard(subs, out) == [], "run `tempbench leaderboard` and commit leaderboard/"


def _seed_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_leaderboard", REPO / "benchmarks" / "seed_leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeded_reported_entries_match_the_script():
    """Every reported entry the seed script defines is valid and committed unchanged."""
    seed = _seed_module()
    records = seed.reported_records()
    assert len({r["id"] for r in records}) == len(records)
    for rec in records:
        path = REPO / "submissions" / f"{rec['id']}.json"
        assert path.is_file(), f"{path} missing: run benchmarks/seed_leaderboard.py"
        assert json.loads(path.read_text()) == rec
    by_id = {r["id"]: r for r in records}
    # spot checks of numbers against their sources (TempSamp-R1 Table 1, Qwen2.5-VL report)
    assert by_id["charades/test/tempsamp-r1-7b-cot"]["metrics"] == {"R1@0.3": 83.6, "R1@0.5": 74.1,
                                                                     "R1@0.7": 52.9, "mIoU": 62.1}
    assert by_id["charades/test/qwen2.5-vl-7b--qwen-report"]["metrics"] == {"mIoU": 43.6}


def test_reproduced_entries_agree_with_the_models_own_metrics_files():
    """Released QVHighlights predictions scored by tempbench give the numbers their authors' metrics files state."""
    entries = [e for e in load_submissions(REPO / "submissions", check_details=False)
               if e.source == "reproduced" and e.own_metrics is not None]
    assert len(entries) >= 4
    for e in entries:
        own = e.own_metrics.metrics
        shared = [k for k in own if k in e.metrics]
        assert len(shared) >= 14, e.id
        assert {k: own[k] for k in shared} == {k: e.metrics[k] for k in shared}, e.id
