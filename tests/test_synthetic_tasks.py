"""The generated tasks' cards (splits, seeds, generator fixed before any training) and their cache: annotations
without videos for the baselines, videos only as far as a run needs them."""

from __future__ import annotations

import json

import pytest

from tempbench.tasks import get_task, synthetic


def test_cards_fix_splits_seeds_and_generator():
    seeds = []
    for name in ("synthetic", "synthetic-hard"):
        task = get_task(name)
        assert task.builtin and task.kind == "grounding" and task.default_split == "test"
        assert task.splits == ("test", "heldout", "val", "train")
        assert [task.split_size(s) for s in task.splits] == [16, 256, 128, 64]
        seeds += [task.split_card(s)["seed"] for s in task.splits]
        assert task.card["generator"] == synthetic.TASKS[name]["generator"]
        assert task.headline == get_task("charades").headline  # table fields from the Charades card
    assert len(seeds) == len(set(seeds))  # no split shares a seed with another, across both tasks
    assert synthetic.settings("synthetic").kind == "single"
    hard = synthetic.settings("synthetic-hard")
    assert hard.kind == "multi" and hard.objects == (2, 3) and hard.pixels == 28


def test_baselines_need_annotations_only(tb_home):
    from tempbench.api import run

    summary = run("baseline:prior", "synthetic-hard", "heldout", out_dir=tb_home / "r", progress=False)
    assert summary.result.n == 256 and summary.result.failure_rate == 0
    assert summary.config.annotation_file == "synthetic-hard/heldout/annotations.jsonl"
    for split in ("heldout", "train"):  # the prior read the train split's windows; neither split made videos
        folder = tb_home / "synthetic-hard" / split
        assert (folder / "annotations.jsonl").is_file() and not list(folder.glob("*.mp4"))


def test_videos_are_added_as_far_as_needed(tb_home):
    pytest.importorskip("av")
    from tempbench.annotations import ensure_synthetic, load_split

    folder = ensure_synthetic("val", "synthetic-hard", videos=False)
    before = (folder / "annotations.jsonl").read_text()
    records = [json.loads(x) for x in before.splitlines()]
    assert len(records) == 128 and not list(folder.glob("*.mp4"))
    ensure_synthetic("val", "synthetic-hard", first=3)
    assert sorted(p.stem for p in folder.glob("*.mp4")) == sorted(r["vid"] for r in records[:3])
    assert (folder / "annotations.jsonl").read_text() == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary folder left
    data = load_split("synthetic-hard", "val")
    assert data.records == records and data.verified


def test_a_changed_cache_is_refused(tb_home):
    pytest.importorskip("av")
    from tempbench.annotations import ensure_synthetic
    from tempbench.errors import TempbenchError

    folder = ensure_synthetic("test", "synthetic-hard", videos=False)
    rows = [json.loads(x) for x in (folder / "annotations.jsonl").read_text().splitlines()]
    rows[0]["windows"] = [[0.0, 1.0]]
    (folder / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(TempbenchError, match="not what this version of tempbench generates"):
        ensure_synthetic("test", "synthetic-hard", first=1)


def test_ceiling_script(tb_home, tmp_path):
    """benchmarks/synthetic_ceiling.py: oracles at patch resolution score what docs/training.md states."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic_ceiling.py"
    spec = importlib.util.spec_from_file_location("synthetic_ceiling", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path / "c.json"), "--splits", "heldout"]) == 0
    res = json.loads((tmp_path / "c.json").read_text())
    assert res["produced_by"] == "benchmarks/synthetic_ceiling.py"
    snap = {t: res["tasks"][t]["heldout"]["snap"] for t in ("synthetic", "synthetic-hard")}
    assert snap["synthetic"]["n"] == 256 and round(snap["synthetic"]["metrics"]["mIoU"], 2) == 86.50
    assert round(snap["synthetic-hard"]["metrics"]["mIoU"], 2) == 81.87
    for task in snap:  # the finer oracles are never worse
        t = res["tasks"][task]["heldout"]
        assert t["best-patch"]["metrics"]["mIoU"] >= t["snap"]["metrics"]["mIoU"]
        assert t["frames"]["metrics"]["mIoU"] >= t["best-patch"]["metrics"]["mIoU"]


def test_object_records_name_each_object_alone_and_render():
    """Scene.object_records: one record per object of a synthetic-hard scene, the target's being the card's; every
    query names its object and no other; each is accepted for rendered training frames, and another object's window
    under a query is refused."""
    from tempbench.synthetic import draw_scene
    from tempbench.tasks import synthetic
    from tempbench.tasks.synthetic import render_mismatch

    settings = synthetic.settings("synthetic-hard")
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["train"]["seed"]
    forms = set()
    for i in range(60):
        scene, _ = draw_scene(settings, seed, i)
        rows = scene.object_records(10)
        assert len(rows) == len(scene.objects) and [r["qid"] for r in rows] == list(range(10, 10 + len(rows)))
        assert rows[scene.target] == {**scene.record(10 + scene.target)}
        for j, row in enumerate(rows):
            words = row["query"].split()[1:-1]
            named = [k for k, o in enumerate(scene.objects) if all(w in (o.colour, o.shape, "object") for w in words)]
            assert named == [j], row
            assert render_mismatch(row) is None
            forms.add(len(words) if words[-1] != "object" else "colour")
        wrong = {**rows[0], "windows": rows[1]["windows"]}
        assert "nor the query and window of another of its objects" in render_mismatch(wrong)
        assert scene.object_records(10) == rows  # the same queries every time
    assert forms == {1, 2, "colour"}
