"""Queries grouped by video (`tempbench.batching`) in `tempbench run`: each video decoded once, one prefill per video,
batches that a resumed run forms again, and answers identical to the unshared stock path.

The runs use the tiny float32 Qwen2.5-VL on a custom task over the synthetic split's real mp4 files (8-16 s videos:
different frame counts and token counts), with 1, 2 and many queries per video, the queries of a video spread
through the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tempbench.batching import Batch, Part, group_by_video, pending, plan_batches

# ------------------------------------------------------------------------------------------------ the plan (pure)


def recs(spec: list[tuple[str, int]]) -> list[dict]:
    """[(vid, cost)] -> records with qids in list order."""
    return [{"qid": i, "vid": v, "query": f"q{i}", "duration": float(c), "cost": c} for i, (v, c) in enumerate(spec)]


def test_groups_by_video_in_first_query_order():
    r = recs([("b", 1), ("a", 1), ("b", 1), ("c", 1), ("a", 1), ("b", 1)])
    assert [(v, [x["qid"] for x in g]) for v, g in group_by_video(r)] == [("b", [0, 2, 5]), ("a", [1, 4]), ("c", [3])]
    plan = plan_batches(r, batch_size=4)
    assert [b.qids for b in plan] == [[0, 2, 5, 1], [4, 3]]
    assert [[p.vid for p in b.parts] for b in plan] == [["b", "a"], ["a", "c"]]  # a group continues in the next batch
    assert all(len(b) <= 4 for b in plan)


def test_token_budget_orders_by_length_and_caps_padded_tokens():
    r = recs([("s", 10), ("l", 100), ("m", 50), ("l", 100), ("s", 10), ("m", 50), ("x", 500)])
    plan = plan_batches(r, batch_size=8, token_budget=200, cost=lambda x: x["cost"])
    cost = {x["qid"]: x["cost"] for x in r}
    for b in plan:  # rows x widest row within the budget (a single query over it gets a batch of its own)
        assert len(b) == 1 or len(b) * max(cost[q] for q in b.qids) <= 200
    assert [p.vid for b in plan for p in b.parts][0] == "x"  # the longest video first
    order = [p.vid for b in plan for p in b.parts]
    assert order == sorted(order, key=["x", "l", "m", "s"].index)
    assert sorted(q for b in plan for q in b.qids) == list(range(len(r)))


def test_plan_is_a_function_of_the_whole_list_and_resume_keeps_its_batches():
    r = recs([(f"v{i % 5}", 10 + i % 3) for i in range(23)])
    full = plan_batches(r, batch_size=4, token_budget=40, cost=lambda x: x["cost"])
    assert plan_batches(list(r), batch_size=4, token_budget=40, cost=lambda x: x["cost"]) == full
    done = set(full[0].qids + full[1].qids + full[2].qids[:1])  # a run killed inside batch 3
    todo = {x["qid"] for x in r} - done
    again = pending(full, todo)
    assert [b.qids for b in again] == [[q for q in b.qids if q in todo] for b in full[2:]]
    assert pending(full, set()) == [] and Batch((Part("a", ()),)).records == []


def test_plan_validates():
    with pytest.raises(ValueError):
        plan_batches([], batch_size=0)
    with pytest.raises(ValueError):
        plan_batches([], batch_size=2, token_budget=0)
    assert plan_batches([], batch_size=2) == []


# ------------------------------------------------------------------------------------------------ the runner

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("av")

QUERY_COUNTS = [5, 1, 2, 3, 1, 2]  # queries per video (videos of 8-16 s)


@pytest.fixture
def custom(tb_home, synthetic_split, tiny_model, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A custom annotation file over six synthetic videos, queries of a video interleaved with the others'."""
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    (tb_home / "models").mkdir(parents=True)
    (tb_home / "models" / tiny_model.name).symlink_to(tiny_model, target_is_directory=True)
    anns = [json.loads(x) for x in (synthetic_split / "annotations.jsonl").read_text().splitlines()]
    words = ["the square appears", "when is the object visible", "something moves", "a colour changes",
             "the shape is on screen for the first time", "it"]
    rows = []
    for round_ in range(max(QUERY_COUNTS)):
        for v, count in enumerate(QUERY_COUNTS):
            if round_ < count:
                a = anns[v]
                rows.append({"qid": len(rows), "vid": a["vid"], "query": words[(v + round_) % len(words)],
                             "duration": a["duration"], "windows": a["windows"]})
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, synthetic_split


def _run(custom, out, **kw):
    from tempbench.runner import run

    path, videos = custom
    return run("tiny-qwen2.5-vl", annotations=path, videos=videos, out_dir=out, generation={"max_new_tokens": 12},
               progress=False, prefetch="thread", **kw)


def outputs(path: Path) -> dict[int, str]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert all("output" in r for r in rows), rows
    return {r["qid"]: r["output"] for r in rows}


def test_shared_run_equals_the_unshared_stock_run(custom, tmp_path, monkeypatch):
    import tempbench.video as video
    from tempbench.models.qwen.adapter import HFQwenVL

    decoded: list[str] = []
    real_decode = video.decode_video

    def counting(path, settings):
        decoded.append(Path(path).stem)
        return real_decode(path, settings)

    monkeypatch.setattr(video, "decode_video", counting)
    batches: list[list[int]] = []
    real_generate = HFQwenVL.generate

    def spy(self, batch):
        batches.append([x.qid for x in batch])
        # every query of one video in a batch holds the same prepared clip object (what prefix sharing keys on)
        by_vid: dict = {}
        for x in batch:
            by_vid.setdefault(x.meta["vid"], set()).add(id(x.clip))
        assert all(len(ids) == 1 for ids in by_vid.values())
        return real_generate(self, batch)

    monkeypatch.setattr(HFQwenVL, "generate", spy)
    durations = {json.loads(x)["vid"]: json.loads(x)["duration"] for x in custom[0].read_text().splitlines()}
    assert len(set(durations.values())) >= 3  # one run over videos of different lengths (frame and token counts)
    shared = _run(custom, tmp_path / "shared", batch_size=4)
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == len(QUERY_COUNTS)  # once per video
    assert max(len(b) for b in batches) == 4 and sum(map(len, batches)) == sum(QUERY_COUNTS)
    decoded.clear()
    stock = _run(custom, tmp_path / "stock", batch_size=1,
                 model_options={"decoder": "transformers", "share_prefix": False})
    assert outputs(shared.predictions) == outputs(stock.predictions)
    assert len(set(outputs(stock.predictions).values())) > 3
    # same run identity (sharing changes no answer); how it ran is recorded
    assert shared.config.fingerprint == stock.config.fingerprint
    info = json.loads((tmp_path / "shared" / "run.json").read_text())
    assert info["execution"]["grouping"] == "video" and info["execution"]["token_budget"] is None
    dec = info["model"]["info"]["decoding"]
    assert dec["decoder"] == "dynamic" and dec["share_prefix"] is True and dec["steps"] > 0
    assert json.loads((tmp_path / "stock" / "run.json").read_text())["model"]["info"]["decoding"] == \
        {"decoder": "transformers", "share_prefix": False}
    # a run into the shared folder with the stock decoder resumes it (same identity): nothing left to do
    again = _run(custom, tmp_path / "shared", batch_size=2, model_options={"decoder": "transformers"})
    assert again.config.outcome.coverage.queries == 0


def test_resumed_run_forms_the_same_batches(custom, tmp_path, monkeypatch):
    from tempbench.models.qwen.adapter import HFQwenVL

    batches: list[list[int]] = []
    real_generate = HFQwenVL.generate
    stop_at = {"n": None}

    def spy(self, batch):
        if stop_at["n"] is not None and len(batches) == stop_at["n"]:
            raise KeyboardInterrupt  # killed while the batch was in flight: nothing of it is written
        batches.append([x.qid for x in batch])
        return real_generate(self, batch)

    monkeypatch.setattr(HFQwenVL, "generate", spy)
    kw = dict(batch_size=3, token_budget=4000)
    full = _run(custom, tmp_path / "full", **kw)
    uninterrupted = list(batches)
    assert len(uninterrupted) >= 4
    batches.clear()
    stop_at["n"] = 2
    with pytest.raises(KeyboardInterrupt):
        _run(custom, tmp_path / "killed", **kw)
    first = list(batches)
    assert first == uninterrupted[:2]
    batches.clear()
    stop_at["n"] = None
    resumed = _run(custom, tmp_path / "killed", **kw)
    assert batches == uninterrupted[2:]
    assert outputs(resumed.predictions) == outputs(full.predictions)
    info = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert info["execution"]["token_budget"] == 4000 and info["outcome"]["status"] == "finished"


def test_token_budget_is_checked(custom, tmp_path):
    from tempbench.errors import TempbenchError

    with pytest.raises(TempbenchError, match="token-budget"):
        _run(custom, tmp_path / "x", batch_size=2, token_budget=0)
