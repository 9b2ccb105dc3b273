"""submit(): a result is re-scored from its predictions; what lands as verified, unverified or is refused, and the
messages when it is refused. Real runs and real prediction files on the official Charades-STA and QVHighlights
annotations."""

from __future__ import annotations

import gzip
import json

import pytest
from board_helpers import MOMENT_DETR_SAMPLE, baseline_run, edit_json, handmade, make_reported, release_result
from click.testing import CliRunner

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.io import sha256_file
from tempbench.leaderboard import compute_boards
from tempbench.results import Result, read_details, write_details
from tempbench.submissions import load_submissions, slugify, submit


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory, imported_home):
    import os

    old = os.environ.get("TEMPBENCH_HOME")
    os.environ["TEMPBENCH_HOME"] = str(imported_home)
    try:
        yield baseline_run(tmp_path_factory.mktemp("prior") / "run", "prior")
    finally:
        if old is None:
            os.environ.pop("TEMPBENCH_HOME", None)
        else:
            os.environ["TEMPBENCH_HOME"] = old


def _copy_run(run_result, tmp_path):
    import shutil

    folder = shutil.copytree(run_result.parent, tmp_path / "run")
    return folder / "result.json"


def _forge(result_path, value=100.0):
    """Every metric and every per-query score set to `value`: self-consistent, and false."""
    result = Result.read(result_path, result_path.with_name("details.jsonl.gz"))
    forged = result.replace(metrics=dict.fromkeys(result.metrics, value), ci95={})
    forged.write(result_path)
    write_details(result_path.with_name("details.jsonl.gz"),
                  [d.__class__(**{**d.__dict__, "scores": dict.fromkeys(d.scores, value)}) for d in result.details])
    return result_path


# --------------------------------------------------------------------------------------------------- verified


def test_a_run_is_verified_and_stored_with_its_predictions(prior_run, use_imported, tmp_path):
    subs = tmp_path / "submissions"
    entry = submit(prior_run, submissions_dir=subs)
    assert entry.path == subs / "charades" / "test" / "baseline-prior.json"
    rec = json.loads(entry.path.read_text())
    assert rec["schema"] == "tempbench.submission/2" and rec["status"] == "verified" and rec["origin"] == "run"
    assert rec["id"] == "charades/test/baseline-prior" and rec["setting"] == "zero-shot"
    assert rec["model"] == {"name": "baseline:prior", "id": "baseline:prior"}
    stored = entry.path.with_name(rec["predictions"]["file"])
    assert gzip.decompress(stored.read_bytes()) == prior_run.with_name("predictions.jsonl").read_bytes()
    assert rec["predictions"]["sha256"] == rec["result"]["provenance"]["predictions_sha256"]
    details = entry.path.with_name(rec["details"]["file"])
    assert rec["details"]["sha256"] == sha256_file(details) and len(read_details(details)) == 3720
    [loaded] = load_submissions(subs)
    assert loaded.metrics == rec["result"]["metrics"] and loaded.status == "verified"


def test_a_release_is_verified_by_its_url_at_commit(use_imported, shared_data, tmp_path):
    res, pred = release_result(tmp_path / "r", shared_data)
    entry = submit(res, name="Moment-DETR", setting="fine-tuned", predictions_path=pred,
                   release=MOMENT_DETR_SAMPLE, submissions_dir=tmp_path / "s")
    rec = json.loads(entry.path.read_text())
    assert rec["status"] == "verified" and rec["origin"] == "release" and "file" not in rec["predictions"]
    assert rec["predictions"]["release"]["commit"] == "b7e553ac3b0c898ee6b85e03ee507c064eab89ca"
    assert not list((tmp_path / "s").rglob("*.predictions.jsonl.gz"))  # not copied: found by sha256 to verify
    with pytest.raises(TempbenchError, match="is not OWNER/REPO@COMMIT:PATH"):
        submit(res, name="x", setting="fine-tuned", predictions_path=pred, release="owner/repo@main:p.jsonl",
               submissions_dir=tmp_path / "s2")


# --------------------------------------------------------------------------------------------------- forgeries


def test_a_forged_result_with_its_predictions_is_refused_naming_the_metric(prior_run, use_imported, tmp_path):
    res = _forge(_copy_run(prior_run, tmp_path))
    with pytest.raises(TempbenchError, match=r"not what its predictions score: metric R1@0\.3: claimed 100\.0, "
                                             r"re-scored 24\.4") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "unchanged" in exc.value.hint
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("*.json"))


def test_a_forgery_without_predictions_lands_unverified_and_is_never_the_reference(prior_run, use_imported,
                                                                                  tmp_path):
    subs = tmp_path / "s"
    submit(baseline_run(tmp_path / "center", "center"), submissions_dir=subs)
    res = _forge(_copy_run(prior_run, tmp_path))
    res.with_name("predictions.jsonl").unlink()
    entry = submit(res, name="Perfect model", submissions_dir=subs)
    assert entry.status == "unverified"
    [board] = compute_boards(load_submissions(subs))
    assert [r.entry.name for r in board.sections["verified"]] == ["baseline:center"]
    assert board.sections["verified"][0].vs_best == "best"  # the forgery is not the reference
    assert [r.entry.name for r in board.sections["unverified"]] == ["Perfect model"]


def test_a_made_up_metric_is_refused(prior_run, use_imported, tmp_path):
    res = _copy_run(prior_run, tmp_path)
    edit_json(res, lambda d: d["metrics"].update({"R5@0.5": 99.9}))
    with pytest.raises(TempbenchError, match=r"metric R5@0\.5: claimed 99\.9, re-scored None"):
        submit(res, submissions_dir=tmp_path / "s")
    res.with_name("predictions.jsonl").unlink()  # unverified: the details must hold every published metric
    with pytest.raises(TempbenchError, match=r"field 'scores\.R5@0\.5': no query holds the result's metric"):
        submit(res, submissions_dir=tmp_path / "s")
    edit_json(res, lambda d: d["metrics"].update({"Accuracy": 99.9}))
    with pytest.raises(TempbenchError, match=r"'metrics\.Accuracy': not a grounding metric"):
        submit(res, submissions_dir=tmp_path / "s")


def test_details_of_queries_outside_the_split_are_refused(use_imported, tmp_path):
    res, _pred = handmade(tmp_path / "h", n=None)
    details = res.with_name("details.jsonl.gz")
    rows = list(read_details(details))
    rows[5] = rows[5].__class__(**{**rows[5].__dict__, "qid": 999_999})
    write_details(details, rows)
    with pytest.raises(TempbenchError, match=r"qid 999999 .* is not a query of charades test"):
        submit(res, name="x", setting="zero-shot", submissions_dir=tmp_path / "s")


def test_a_byte_tweaked_copy_is_a_duplicate(prior_run, use_imported, tmp_path):
    subs = tmp_path / "s"
    submit(prior_run, submissions_dir=subs)
    rows = [json.loads(x) for x in prior_run.with_name("predictions.jsonl").read_text().splitlines()]
    rows[0]["extra"] = "one more field"
    rows[1]["windows"] = [[float(v) for v in w] for w in rows[1]["windows"]]
    res, pred = handmade(tmp_path / "tweak", rows=rows)
    with pytest.raises(TempbenchError, match=r"parsed content sha256 .* already on the leaderboard as .*"
                                             r"baseline-prior\.json"):
        submit(res, name="baseline:prior (copy)", setting="zero-shot", predictions_path=pred, submissions_dir=subs)
    # the same predictions under another profile are another entry
    res2, pred2 = handmade(tmp_path / "other", rows=rows)
    edit_json(res2, lambda d: d.update(profile="timelens"))
    with pytest.raises(TempbenchError, match="not what its predictions score"):  # the claimed profile is re-scored
        submit(res2, name="copy", setting="zero-shot", predictions_path=pred2, submissions_dir=subs)


def test_a_hand_made_file_without_a_run_is_unverified(use_imported, tmp_path):
    res, pred = handmade(tmp_path / "h")
    entry = submit(res, name="Hand-made", setting="zero-shot", predictions_path=pred, submissions_dir=tmp_path / "s")
    rec = json.loads(entry.path.read_text())
    assert rec["status"] == "unverified" and "predictions" not in rec and rec["model"]["id"] is None


# --------------------------------------------------------------------------------------------------- other checks


def test_name_and_profile_make_the_slug(use_imported, tmp_path):
    res, pred = handmade(tmp_path / "h")
    edit_json(res, lambda d: None)
    entry = submit(res, name="My Model v2", setting="zero-shot", predictions_path=pred, submissions_dir=tmp_path / "s")
    assert entry.path.name == "my-model-v2.json"
    assert slugify("  Time-R1 (7B) / ft  ") == "time-r1-7b-ft"


def test_existing_id_refused(prior_run, use_imported, tmp_path):
    subs = tmp_path / "s"
    submit(prior_run, submissions_dir=subs)
    with pytest.raises(TempbenchError, match=r"already exists") as exc:
        submit(prior_run, submissions_dir=subs)
    assert "--name" in exc.value.hint


def test_wrong_annotation_sha_refused(prior_run, tmp_path):
    res = edit_json(_copy_run(prior_run, tmp_path),
                    lambda d: d["provenance"].update(annotation_sha256="ab" * 32))
    with pytest.raises(TempbenchError, match=r"result\.json: field 'provenance\.annotation_sha256'.*charades_sta_test"):
        submit(res, submissions_dir=tmp_path / "s")


def test_unknown_task_split_profile_refused(prior_run, tmp_path):
    res = _copy_run(prior_run, tmp_path)
    edit_json(res, lambda d: d.update(task="tacos"))
    with pytest.raises(TempbenchError, match=r"field 'task': unknown task 'tacos'"):
        submit(res, submissions_dir=tmp_path / "s")
    edit_json(res, lambda d: d.update(task="charades", split="val"))
    with pytest.raises(TempbenchError, match=r"field 'split'.*no split 'val'") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "test" in exc.value.hint
    edit_json(res, lambda d: d.update(split="test", profile="my-own"))
    with pytest.raises(TempbenchError, match=r"field 'result.profile': unknown profile 'my-own'"):
        submit(res, submissions_dir=tmp_path / "s")


def test_partial_refused_unless_allowed(use_imported, tmp_path):
    res = baseline_run(tmp_path / "run", "center", limit=100)
    with pytest.raises(TempbenchError, match=r"field 'partial': only 100 of 3720") as exc:
        submit(res, submissions_dir=tmp_path / "s")
    assert "allow_partial" in exc.value.hint
    entry = submit(res, allow_partial=True, submissions_dir=tmp_path / "s")
    assert entry.partial is True and entry.status == "verified"


def test_setting_and_name_required_without_a_run(use_imported, tmp_path):
    res, pred = handmade(tmp_path / "h")
    with pytest.raises(TempbenchError, match=r"field 'run\.setting'") as exc:
        submit(res, predictions_path=pred, submissions_dir=tmp_path / "s")
    assert "zero-shot" in exc.value.hint
    with pytest.raises(TempbenchError, match=r"the model is not named"):
        submit(res, setting="fine-tuned", predictions_path=pred, submissions_dir=tmp_path / "s")
    with pytest.raises(TempbenchError, match=r"--name: holds the control or bidi character U\+202E"):
        submit(res, name="abc\u202e", setting="fine-tuned", predictions_path=pred, submissions_dir=tmp_path / "s")


def test_schema_violation_names_field(prior_run, tmp_path):
    res = edit_json(_copy_run(prior_run, tmp_path), lambda d: d["provenance"].pop("predictions_sha256"))
    with pytest.raises(TempbenchError, match=r"result\.json: field 'provenance'.*predictions_sha256"):
        submit(res, submissions_dir=tmp_path / "s")
    edit_json(res, lambda d: d.update(schema="tempbench.result/1"))
    with pytest.raises(TempbenchError, match=r"field 'schema'.*another tempbench version"):
        submit(res, submissions_dir=tmp_path / "s")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "result.json").write_text("{not json")
    with pytest.raises(TempbenchError, match=r"c/result\.json, line 1: not valid JSON"):
        submit(tmp_path / "c" / "result.json", submissions_dir=tmp_path / "s")
    with pytest.raises(TempbenchError, match=r"no such file"):
        submit(tmp_path / "nope.json", submissions_dir=tmp_path / "s")


def test_unverified_details_must_match_the_result(use_imported, tmp_path):
    res, _pred = handmade(tmp_path / "a")
    edit_json(res, lambda d: d["metrics"].update({"R1@0.5": d["metrics"]["R1@0.5"] + 1}))
    with pytest.raises(TempbenchError, match=r"details\.jsonl\.gz: field 'scores\.R1@0\.5': per-query mean"):
        submit(res, name="x", setting="zero-shot", submissions_dir=tmp_path / "s")
    res, _pred = handmade(tmp_path / "b")
    res.with_name("details.jsonl.gz").write_bytes(b"plain text")
    with pytest.raises(TempbenchError, match=r"not a readable gzip file"):
        submit(res, name="x", setting="zero-shot", submissions_dir=tmp_path / "s")


def test_cli_submit_says_what_landed(prior_run, use_imported, tmp_path):
    res = CliRunner().invoke(main, ["submit", str(prior_run), "--submissions", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "(verified)" in res.output and "baseline-prior.json" in res.output


def test_reported_entry_checks(tmp_path):
    subs = tmp_path / "s"
    path = make_reported(subs)
    assert load_submissions(subs)[0].status == "reported"
    edit_json(path, lambda d: d.update(setting="few-shot"))
    with pytest.raises(TempbenchError, match=r"field 'setting'"):
        load_submissions(subs)
    edit_json(path, lambda d: d.update(setting="zero-shot", kind="highlights"))
    with pytest.raises(TempbenchError, match=r"field 'kind'.*'grounding'"):
        load_submissions(subs)


def test_generated_tasks_go_on_the_board_only_on_their_pinned_splits(tb_home, tmp_path):
    """`synthetic` heldout is pinned by its card (the generated annotations' sha256): its runs are verified;
    `val` (model selection) is not pinned, and a user's custom task never goes on the board."""
    entry = submit(baseline_run(tmp_path / "h", "center", task="synthetic", split="heldout"),
                   submissions_dir=tmp_path / "s")
    assert entry.status == "verified" and entry.id == "synthetic/heldout/baseline-center"
    with pytest.raises(TempbenchError, match="split 'val' has no pinned annotation sha256"):
        submit(baseline_run(tmp_path / "v", "center", task="synthetic", split="val"), submissions_dir=tmp_path / "s")
    records = [{"qid": 0, "vid": "a", "query": "q", "duration": 10.0, "windows": [[1.0, 2.0]]}]
    ann = tmp_path / "mine.jsonl"
    ann.write_text(json.dumps(records[0]) + "\n")
    from tempbench.runner import run

    summary = run("baseline:center", annotations=ann, out_dir=tmp_path / "c", progress=False)
    with pytest.raises(TempbenchError, match="a custom task is not on the leaderboard"):
        submit(summary.run_dir / "result.json", submissions_dir=tmp_path / "s")
