"""The Python API (`tempbench.score`, `compare`, ...), custom tasks from a user's own annotation file, the pure
scorer, and docs/api.md's examples (each one is run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import tempbench
from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.results import Result

REPO = Path(__file__).resolve().parents[1]
# a user's own 3-query task: one exact hit, one IoU 0.8, one miss
MY_RECORDS = [
    {"qid": 0, "vid": "kitchen", "query": "a person opens the fridge", "duration": 30.0, "windows": [[2.0, 7.0]]},
    {"qid": 1, "vid": "kitchen", "query": "a person pours milk", "duration": 30.0, "windows": [[10.0, 20.0]]},
    {"qid": 2, "vid": "garden", "query": "a dog runs", "duration": 12.0, "windows": [[1.0, 4.0]]},
]
MY_ROWS = [{"qid": 0, "output": "2 to 7"}, {"qid": 1, "output": "10.0 - 18.0"}, {"qid": 2, "output": "8 to 11"}]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dir_lists_the_api():
    names = dir(tempbench)
    for name in ("score", "score_profiles", "compare", "run", "load_task", "load_annotations", "load_predictions",
                 "write_result", "Result", "RunConfig"):
        assert name in names and callable(getattr(tempbench, name))


def test_one_row_in_a_notebook_scores_the_whole_split(use_imported):
    with pytest.warns(UserWarning, match="3719 of 3720 queries have no prediction"):
        r = tempbench.score([{"qid": 0, "output": "24 to 30"}], task="charades")
    assert isinstance(r, Result) and r.n == 3720 and r.counts.missing == 3719
    gt = tempbench.load_annotations("charades", "test")[0]["windows"][0]  # [24.3, 30.4]
    iou = (30 - 24.3) / (30.4 - 24)
    assert r.metrics["mIoU"] == pytest.approx(100 * iou / 3720) and gt == [24.3, 30.4]
    assert r.metrics["R1@0.7"] == pytest.approx(100 / 3720) and r.failure_rate == pytest.approx(100 * 3719 / 3720)


def test_own_annotations_as_records_file_and_cli(tmp_path):
    r = tempbench.score(MY_ROWS, annotations=MY_RECORDS)
    assert r.task == "custom" and r.n == 3 and r.partial is False
    assert round(r.metrics["R1@0.5"], 2) == 66.67 and round(r.metrics["R1@0.7"], 2) == 66.67
    assert r.metrics["mIoU"] == pytest.approx(100 * (1 + 0.8 + 0) / 3)
    ann = write_jsonl(tmp_path / "mine.jsonl", MY_RECORDS)
    pred = write_jsonl(tmp_path / "p.jsonl", MY_ROWS)
    from_file = tempbench.score(pred, annotations=ann)
    assert from_file.metrics == r.metrics and from_file.split == "mine"
    assert from_file.provenance.annotation_file == str(ann)
    assert from_file.provenance.annotation_sha256 == __import__("hashlib").sha256(ann.read_bytes()).hexdigest()
    res = cli("score", pred, "--annotations", ann, "--json", "--no-ci")
    assert res.exit_code == 0, res.output
    record = json.loads(res.output)
    assert round(record["metrics"]["R1@0.5"], 2) == 66.67 and record["task"] == "custom"
    # a bad record in the user's file names its line and field
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(MY_RECORDS[0]) + "\n" + json.dumps({**MY_RECORDS[1], "duration": "long"}) + "\n")
    res = cli("score", pred, "--annotations", bad)
    assert res.exit_code == 2 and "bad.jsonl: record 1 (qid 1), field duration" in res.stderr


def test_a_run_and_compare_on_a_custom_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ann = write_jsonl(tmp_path / "mine.jsonl", MY_RECORDS)
    res = cli("run", "--model", "baseline:center", "--annotations", ann, "--no-progress")
    assert res.exit_code == 0, res.output
    [folder] = (tmp_path / "runs" / "custom-mine").iterdir()
    run = json.loads((folder / "run.json").read_text())
    assert run["task"] == "custom" and run["annotation_file"] == str(ann)
    # scoring the run's file needs no --annotations: its run.json names the file (and its sha256)
    again = tempbench.score(folder / "predictions.jsonl")
    assert again.task == "custom" and again.n == 3
    ours = write_jsonl(tmp_path / "ours.jsonl", MY_ROWS)
    cmp = tempbench.compare(folder / "predictions.jsonl", ours, annotations=ann, n_resamples=200)
    assert cmp.n == 3 and {row.metric for row in cmp.rows} >= {"R1@0.5", "mIoU"}
    res = cli("compare", folder / "predictions.jsonl", ours, "--annotations", ann, "--json")
    assert res.exit_code == 0 and json.loads(res.output)["schema"] == "tempbench.comparison/1"
    ann.write_text(ann.read_text().replace("fridge", "freezer"))  # changed since the run: not silently used
    with pytest.raises(TempbenchError, match="gone or changed"):
        tempbench.score(folder / "predictions.jsonl")


def test_scoring_is_pure(use_imported, tmp_path, monkeypatch):
    """`tempbench.scoring.score` reads and writes nothing: every file is loaded before it is called."""
    import builtins
    import io as stdio

    from tempbench.annotations import load_split
    from tempbench.predictions import predictions_from_rows
    from tempbench.scoring import score

    data = load_split("qvhighlights", "val")
    rows = [{"qid": r["qid"], "output": "The highlight timestamps are in the 2, 4, 6 seconds. Their saliency scores "
             "are 3, 2, 1"} for r in data.records[:50]]
    preds = predictions_from_rows(rows)

    def no_io(*a, **k):
        raise AssertionError(f"I/O during scoring: {a[:1]}")

    monkeypatch.setattr(builtins, "open", no_io)
    monkeypatch.setattr(stdio, "open", no_io)
    monkeypatch.setattr(Path, "read_bytes", no_io)
    monkeypatch.setattr(Path, "read_text", no_io)
    result = score(data, preds, "canonical", n_resamples=50)
    assert result.n == 1550 and result.counts.ok == 50 and result.ci95


def test_profile_all_reads_the_files_once(use_imported, tmp_path, monkeypatch):
    import tempbench.api as api
    import tempbench.predictions as predictions
    from tempbench.parsing import PROFILES

    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "24 to 30"}])
    calls = {"predictions": 0, "annotations": 0}
    real_read, real_split = predictions.read_predictions, __import__("tempbench.annotations").annotations.load_split

    def counting_read(path):
        calls["predictions"] += 1
        return real_read(path)

    def counting_split(*a, **k):
        calls["annotations"] += 1
        return real_split(*a, **k)

    monkeypatch.setattr(api, "read_predictions", counting_read)
    monkeypatch.setattr("tempbench.annotations.load_split", counting_split)
    with pytest.warns(UserWarning, match="3719 of 3720"):
        results = tempbench.score_profiles(pred, task="charades", ci=False)
    assert [r.profile for r in results] == list(PROFILES)
    assert calls == {"predictions": 1, "annotations": 1}


def test_openai_served_model_is_part_of_the_identity(tmp_path, home):
    """A folder whose answers came from one served model refuses answers from another, before writing any."""
    from openai_test_server import OpenAITestServer

    from tempbench.runner import run

    out = tmp_path / "run"
    with OpenAITestServer(model_name="qwen-a") as server:
        run("openai:served", "synthetic", out_dir=out, limit=2, progress=False, model_options={"api_base": server.base_url})
    assert json.loads((out / "run.json").read_text())["model"]["served_model"] == "qwen-a"
    before = (out / "predictions.jsonl").read_bytes()
    with OpenAITestServer(model_name="qwen-b") as server, pytest.raises(TempbenchError,
                                                                         match="server now answers as 'qwen-b'"):
        run("openai:served", "synthetic", out_dir=out, limit=4, progress=False,
            model_options={"api_base": server.base_url})
    assert (out / "predictions.jsonl").read_bytes() == before
    with OpenAITestServer(model_name="qwen-a") as server:  # the same served model resumes
        summary = run("openai:served", "synthetic", out_dir=out, limit=4, progress=False,
                      model_options={"api_base": server.base_url})
    assert summary.result.n == 4 and summary.config.outcome.coverage.queries == 2


@pytest.fixture
def home(tb_home, synthetic_split):
    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    return tb_home


def _api_examples() -> list[str]:
    text = (REPO / "docs" / "api.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_api_examples_run(imported_home, home, tmp_path, monkeypatch):
    """Every ```python block of docs/api.md runs, in order, in one namespace (in a scratch folder), with the
    official annotations imported and the synthetic task generated."""
    (home / "annotations").symlink_to(imported_home / "annotations", target_is_directory=True)
    blocks = _api_examples()
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message says which block
            pytest.fail(f"docs/api.md block {i + 1} failed: {type(exc).__name__}: {exc}\n{block}")
