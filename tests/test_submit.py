"""submit(): what is checked before a result joins submissions/, and the messages when it is refused."""

from __future__ import annotations

import gzip
import json

import pytest
from test_leaderboard import make_reported, make_run

from tempbench.errors import TempbenchError
from tempbench.io import sha256_file, write_json
from tempbench.results import read_details
from tempbench.submissions import load_submissions, slugify, submit


def _edit(result_path, fn):
    data = json.loads(result_path.read_text())
    fn(data)
    write_json(result_path, data)
    return result_path


def test_submit_writes_entry_and_details(tmp_path):
    subs = tmp_path / "submissions"
    res = make_run(tmp_path / "run", model="Qwen/Qwen2.5-VL-7B-Instruct", skill=0.45)
    path = submit(res, submissions_dir=subs)
    assert path == subs / "charades" / "test" / "qwen-qwen2.5-vl-7b-instruct.json"
    rec = json.loads(path.read_text())
    assert rec["schema"] == "tempbench.submission/1" and rec["id"] == "charades/test/qwen-qwen2.5-vl-7b-instruct"
    assert rec["source"] == "reproduced" and rec["setting"] == "zero-shot" and rec["profile"] == "canonical"
    assert rec["date"] == "2025-01-02" and rec["evaluator"] == "tempbench 0.1.0" and rec["partial"] is False
    assert rec["model"] == {"name": "Qwen/Qwen2.5-VL-7B-Instruct", "id": "Qwen/Qwen2.5-VL-7B-Instruct"}
    assert rec["result"] == json.loads(res.read_text())  # the result record is stored unchanged
    details = path.with_name(rec["details"]["file"])
    assert details.read_bytes() == (tmp_path / "run" / "details.jsonl.gz").read_bytes()
    assert rec["details"]["sha256"] == sha256_file(details)
    [entry] = load_submissions(subs)
    assert entry.metrics == rec["result"]["metrics"] and len(read_details(details)) == 3720


def test_name_and_profile_make_the_slug(tmp_path):
    subs = tmp_path / "s"
    p1 = submit(make_run(tmp_path / "a", profile="lmms-eval"), name="My Model v2", submissions_dir=subs)
    assert p1.name == "my-model-v2--lmms-eval.json"
    assert json.loads(p1.read_text())["model"]["name"] == "My Model v2"
    assert slugify("  Time-R1 (7B) / ft  ") == "time-r1-7b-ft"


def test_duplicates_refused(tmp_path):
    subs = tmp_path / "s"
    res = make_run(tmp_path / "a", model="m1")
    submit(res, submissions_dir=subs)
    with pytest.raises(TempbenchError, match=r"already exists") as exc:
        submit(res, submissions_dir=subs)
    assert "--name" in exc.value.hint
    # same predictions and profile under another name: still a duplicate
    with pytest.raises(TempbenchError, match=r"already on the leaderboard as .*m1\.json"):
        submit(res, name="renamed", submissions_dir=subs)
    # the same predictions scored with another profile are a different entry
    other = make_run(tmp_path / "b", model="m1", profile="timelens", pred_tag="m1-0-0.5-charades-test")
    assert submit(other, submissions_dir=subs).name == "m1--timelens.json"


def test_wrong_annotation_sha_refused(tmp_path):
    res = _edit(make_run(tmp_path / "a"), lambda d: d["provenance"].update(annotation_sha256="ab" * 32))
    with pytest.raises(TempbenchError, match=r"result\.json: field 'provenance\.annotation_sha256'.*charades_sta_test\.txt"):
        submit(res, submissions_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_unknown_task_split_profile_refused(tmp_path):
    res = make_run(tmp_path / "a")
    _edit(res, lambda d: d.update(task="tacos"))
    with pytest.raises(TempbenchError, match=r"field 'task': unknown task 'tacos'"):
        submit(res, submissions_dir=tmp_path / "s")
    _edit(res, lambda d: d.update(task="charades", split="val"))
    with pytest.raises(TempbenchError, match=r"field 'split'.*no split 'val'") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "test" in exc.value.hint
    _edit(res, lambda d: d.update(split="test", profile="my-own"))
    with pytest.raises(TempbenchError, match=r"field 'profile': unknown profile 'my-own'") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "canonical" in exc.value.hint


def test_wrong_split_annotations_refused(tmp_path):
    # a train-split result whose annotation hash is the test file's: the sha check names the mismatch
    res = make_run(tmp_path / "a")
    _edit(res, lambda d: d.update(split="train", n=12408, split_size=12408))
    with pytest.raises(TempbenchError, match=r"annotation_sha256"):
        submit(res, submissions_dir=tmp_path / "s")


def test_partial_refused_unless_allowed(tmp_path):
    res = make_run(tmp_path / "a", n=100)
    with pytest.raises(TempbenchError, match=r"field 'partial': only 100 of 3720") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "allow_partial" in exc.value.hint
    path = submit(res, allow_partial=True, submissions_dir=tmp_path / "s")
    rec = json.loads(path.read_text())
    assert rec["partial"] is True
    # n < split size counts as partial even if the flag was not set
    res2 = _edit(make_run(tmp_path / "b", n=50, model="x"), lambda d: d.update(partial=False))
    with pytest.raises(TempbenchError, match=r"only 50 of 3720"):
        submit(res2, submissions_dir=tmp_path / "s")


def test_setting_required(tmp_path):
    res = make_run(tmp_path / "a", setting=None)
    with pytest.raises(TempbenchError, match=r"field 'run\.setting'") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "zero-shot" in exc.value.hint
    path = submit(res, setting="fine-tuned", name="model-a", submissions_dir=tmp_path / "s")  # no run: named here
    assert json.loads(path.read_text())["setting"] == "fine-tuned"


def test_schema_violation_names_field(tmp_path):
    res = _edit(make_run(tmp_path / "a"), lambda d: d["provenance"].pop("predictions_sha256"))
    with pytest.raises(TempbenchError, match=r"result\.json: field 'provenance'.*predictions_sha256"):
        submit(res, submissions_dir=tmp_path / "s")
    res = _edit(make_run(tmp_path / "b"), lambda d: d.update(schema="tempbench.result/0"))
    with pytest.raises(TempbenchError, match=r"field 'schema'"):
        submit(res, submissions_dir=tmp_path / "s")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "result.json").write_text("{not json")
    with pytest.raises(TempbenchError, match=r"c/result\.json, line 1: not valid JSON"):
        submit(tmp_path / "c" / "result.json", submissions_dir=tmp_path / "s")
    with pytest.raises(TempbenchError, match=r"no such file"):
        submit(tmp_path / "nope.json", submissions_dir=tmp_path / "s")


def test_details_must_match_result(tmp_path):
    res = _edit(make_run(tmp_path / "a"), lambda d: d["metrics"].update({"R1@0.5": d["metrics"]["R1@0.5"] + 1}))
    with pytest.raises(TempbenchError, match=r"details\.jsonl\.gz: field 'scores\.R1@0\.5': per-query mean"):
        submit(res, submissions_dir=tmp_path / "s")
    res = make_run(tmp_path / "b")
    (tmp_path / "b" / "details.jsonl.gz").unlink()
    with pytest.raises(TempbenchError, match=r"details\.jsonl\.gz: no such file"):
        submit(res, submissions_dir=tmp_path / "s")
    res = make_run(tmp_path / "c")
    rows = gzip.decompress((tmp_path / "c" / "details.jsonl.gz").read_bytes()).splitlines()[:-1]
    (tmp_path / "c" / "details.jsonl.gz").write_bytes(gzip.compress(b"\n".join(rows) + b"\n"))
    with pytest.raises(TempbenchError, match=r"3719 rows but the result says n=3720"):
        submit(res, submissions_dir=tmp_path / "s")
    (tmp_path / "c" / "details.jsonl.gz").write_bytes(b"plain text")
    with pytest.raises(TempbenchError, match=r"not a readable gzip file"):
        submit(res, submissions_dir=tmp_path / "s")


def test_highlights_result(tmp_path):
    res = make_run(tmp_path / "q", task="qvhighlights", model="QD-DETR", skill=0.6)
    path = submit(res, submissions_dir=tmp_path / "s")
    assert path.relative_to(tmp_path / "s").as_posix() == "qvhighlights/val/qd-detr.json"
    assert json.loads(path.read_text())["kind"] == "highlights"


def test_reported_entry_checks(tmp_path):
    subs = tmp_path / "s"
    path = make_reported(subs)
    assert load_submissions(subs)[0].source == "reported"
    rec = json.loads(path.read_text())
    rec["setting"] = "few-shot"
    write_json(path, rec)
    with pytest.raises(TempbenchError, match=r"field 'setting'"):
        load_submissions(subs)
    rec["setting"], rec["kind"] = "zero-shot", "highlights"
    write_json(path, rec)
    with pytest.raises(TempbenchError, match=r"field 'kind'.*'grounding'"):
        load_submissions(subs)
