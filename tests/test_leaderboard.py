"""Leaderboard builder: verified / unverified / reported tables, paired tests against the best verified entry,
outputs, determinism, `--check`, `--verify`, and published text that cannot break or hijack any page."""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import pytest
from board_helpers import (
    MOMENT_DETR_SAMPLE,
    REPO,
    baseline_run,
    edit_json,
    handmade,
    make_reported,
    release_result,
)
from click.testing import CliRunner

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.leaderboard import (
    build_leaderboard,
    check_leaderboard,
    compute_boards,
    csv_cell,
    diff_outputs,
    md,
    recall_curve,
    render_leaderboard,
    write_outputs,
)
from tempbench.submissions import load_submissions, submit, verify


def strict_json(data: bytes):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(data, parse_constant=refuse)


@pytest.fixture(scope="module")
def board_dirs(tmp_path_factory, imported_home, shared_data_module):
    """Verified runs (3 baselines on Charades-STA test), a verified re-scored release (Moment-DETR's sample
    predictions on QVHighlights val), an unverified hand-made entry, two reported entries."""
    import os

    old = os.environ.get("TEMPBENCH_HOME")
    os.environ["TEMPBENCH_HOME"] = str(imported_home)
    try:
        tmp = tmp_path_factory.mktemp("board")
        subs = tmp / "submissions"
        for kind in ("prior", "center", "random"):
            submit(baseline_run(tmp / "runs" / kind, kind), submissions_dir=subs)
        res, pred = release_result(tmp / "release", shared_data_module)
        submit(res, name="Moment-DETR (sample)", setting="fine-tuned", predictions_path=pred,
               release=MOMENT_DETR_SAMPLE, submissions_dir=subs)
        res, pred = handmade(tmp / "hand", jitter=1.0)
        submit(res, name="Hand-made", setting="zero-shot", predictions_path=pred, submissions_dir=subs)
        make_reported(subs)
        make_reported(subs, slug="paper-partial-numbers", name="Only mIoU", metrics={"mIoU": 43.6},
                      setting="zero-shot")
        out = tmp / "leaderboard"
        build_leaderboard(subs, out)
        yield subs, out
    finally:
        if old is None:
            os.environ.pop("TEMPBENCH_HOME", None)
        else:
            os.environ["TEMPBENCH_HOME"] = old


@pytest.fixture(scope="module")
def shared_data_module():
    from conftest import require_shared_data

    return require_shared_data()


# --------------------------------------------------------------------------------------------------- ranking


def test_three_tables_never_mixed_and_tests_against_the_best_verified(board_dirs):
    subs, _ = board_dirs
    boards = compute_boards(load_submissions(subs))
    assert [(b.task, b.split) for b in boards] == [("charades", "test"), ("qvhighlights", "val")]
    ch = boards[0]
    assert [r.entry.name for r in ch.sections["verified"]] == ["baseline:prior", "baseline:center", "baseline:random"]
    assert [r.entry.name for r in ch.sections["unverified"]] == ["Hand-made"]
    assert [r.entry.name for r in ch.sections["reported"]] == ["Paper model", "Only mIoU"]
    by_name = {r.entry.name: r for r in ch.rows}
    # the hand-made entry beats every baseline but is neither ranked with them nor the reference
    assert by_name["Hand-made"].entry.metrics["R1@0.5"] > by_name["baseline:prior"].entry.metrics["R1@0.5"]
    assert by_name["Hand-made"].vs_best is None and by_name["Hand-made"].p_value is None
    assert by_name["baseline:prior"].vs_best == "best"
    assert by_name["baseline:center"].vs_best == "n.s." and by_name["baseline:center"].p_value > 0.05
    assert by_name["baseline:center"].n_paired == 3720
    assert by_name["baseline:random"].vs_best == "worse" and by_name["baseline:random"].p_value < 0.001
    assert by_name["Paper model"].vs_best is None
    qvh = boards[1]
    [release] = qvh.sections["verified"]
    assert release.entry.origin == "release" and release.entry.metrics["MR-full-R1@0.5"] == 53.94
    assert release.entry.source_url.startswith("https://github.com/jayleicn/moment_detr/blob/b7e553ac")


def test_outputs_readme_csv_json(board_dirs):
    subs, out = board_dirs
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"README.md", "index.html", "leaderboard.json", "charades-test.csv", "qvhighlights-val.csv",
            "figures/charades-test-bars.png", "figures/charades-test-recall.png",
            "figures/qvhighlights-val-bars.png", "figures/qvhighlights-val-recall.png"} <= names
    readme = (out / "README.md").read_text()
    assert "## Charades-STA, test (3,720 queries)" in readme and "## QVHighlights, val (1,550 queries)" in readme
    sections = readme.split("## Charades-STA, test")[1].split("## QVHighlights")[0]
    verified, rest = sections.split("### Unverified")
    unverified, reported = rest.split("### Reported by papers")
    assert "baseline:prior" in verified and "Hand-made" not in verified and "Paper model" not in verified
    assert "Hand-made" in unverified and "Paper model" in reported
    assert "[A paper, arXiv 2401.00001, Table 2](https://arxiv.org/abs/2401.00001)" in reported
    assert "≈" in verified
    rows = list(csv.DictReader((out / "charades-test.csv").open()))
    assert [(r["status"], r["rank"]) for r in rows] == [("verified", "1"), ("verified", "2"), ("verified", "3"),
                                                        ("unverified", "1"), ("reported", "1"), ("reported", "2")]
    prior = rows[0]
    assert float(prior["R1@0.5 ci95_low"]) < float(prior["R1@0.5"]) < float(prior["R1@0.5 ci95_high"])
    doc = strict_json((out / "leaderboard.json").read_bytes())
    assert doc["schema"] == "tempbench.leaderboard/2" and len(doc["entries"]) == 7
    b0 = doc["boards"][0]
    assert b0["headline"] == "R1@0.5" and [len(b0[k]) for k in ("verified", "unverified", "reported")] == [3, 1, 2]
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<script src" not in html


def test_recall_curve_matches_r1_metrics(board_dirs):
    subs, _ = board_dirs
    for entry in load_submissions(subs):
        if entry.status != "verified" or entry.kind != "grounding":
            assert entry.status == "verified" or recall_curve(entry, entry.kind) is None
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
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
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
    write_outputs(files, copy)
    assert diff_outputs(files, copy) == [] and not (copy / "old-task-test.csv").exists()
    assert (copy / "notes.txt").exists()
    assert diff_outputs(files, tmp_path / "missing") == sorted(files)


# --------------------------------------------------------------------------------------------------- --verify


def test_verify_rescores_every_verified_entry_and_catches_edits(board_dirs, use_imported, tmp_path):
    import shutil

    subs, _ = board_dirs
    outcomes = verify(load_submissions(subs))
    assert [(o.entry.name, o.status) for o in outcomes] == [
        ("baseline:center", "ok"), ("baseline:prior", "ok"), ("baseline:random", "ok"),
        ("Moment-DETR (sample)", "ok")]
    copy = tmp_path / "subs"
    shutil.copytree(subs, copy)
    # an entry whose published numbers were edited (schema still valid): --verify names the difference
    entry = copy / "charades" / "test" / "baseline-random.json"
    edit_json(entry, lambda d: (d["result"]["metrics"].update({"R1@0.5": 99.0}),
                                d["result"]["ci95"].update({"R1@0.5": [98.0, 100.0]})))
    res = CliRunner().invoke(main, ["leaderboard", "--verify", "--submissions", str(copy)])
    assert res.exit_code == 1 and "DIFFERS  charades/test/baseline-random: metric R1@0.5: claimed 99.0" in res.output
    # stored predictions swapped for others: their sha256 is refused
    entry.unlink()
    preds = copy / "charades" / "test" / "baseline-center.predictions.jsonl.gz"
    rows = gzip.decompress(preds.read_bytes()).replace(b'"qid": 0,', b'"qid": 0, "x": 1,', 1)
    preds.write_bytes(gzip.compress(rows))
    with pytest.raises(TempbenchError, match="predictions.sha256' does not match the stored predictions"):
        verify(load_submissions(copy, check_details=False))
    # a release whose file is nowhere at hand: missing (a failure under TEMPBENCH_REQUIRE_DATA=1)
    [release] = [e for e in load_submissions(subs) if e.origin == "release"]
    [outcome] = verify([release], dirs=[tmp_path / "nothing-here"])
    assert outcome.status == "missing" and "sample_val_preds.jsonl" in outcome.message


def test_verify_cli_fails_on_a_missing_release_only_when_data_is_required(board_dirs, use_imported, monkeypatch):
    import tempbench.submissions as submissions

    subs, _ = board_dirs
    monkeypatch.setattr(submissions, "data_dirs", lambda: [])
    monkeypatch.delenv("TEMPBENCH_REQUIRE_DATA", raising=False)
    res = CliRunner().invoke(main, ["leaderboard", "--verify", "--submissions", str(subs)])
    assert res.exit_code == 0 and "skipped  qvhighlights/val/moment-detr-sample" in res.output
    res = CliRunner().invoke(main, ["leaderboard", "--verify", "--submissions", str(subs)],
                             env={"TEMPBENCH_REQUIRE_DATA": "1"})
    assert res.exit_code == 1 and "MISSING  qvhighlights/val/moment-detr-sample" in res.output


def test_repository_leaderboard_verifies(use_imported):
    res = CliRunner().invoke(main, ["leaderboard", "--verify", "--submissions", str(REPO / "submissions")])
    assert res.exit_code == 0, res.output
    assert "23 of 23 verified entries re-score to their published numbers" in res.output


# --------------------------------------------------------------------------------------------------- hostile text


HOSTILE = {
    "mathtext": "Model $\\frac{a}{$ x",
    "script": "<script>alert(1)</script> [x](javascript:alert(1)) **bold** | cell",
    "formula": "=HYPERLINK(\"http://evil\",\"x\")",
}


def test_hostile_names_and_notes_come_out_inert(tmp_path, use_imported):
    subs = tmp_path / "s"
    for i, (slug, name) in enumerate(HOSTILE.items()):
        make_reported(subs, slug=slug, name=name, metrics={"R1@0.5": 40.0 + i},
                      notes=[f"note with {name}", "@SUM(A1:A9) and +1 and -1"])
    files = render_leaderboard(subs)  # the mathtext name does not crash the figures
    readme = files["README.md"].decode()
    assert "<script>" not in readme and "&lt;script&gt;" in readme
    import re

    assert not re.search(r"(?<!\\)\]\(javascript:", readme)  # no link can form: its brackets are escaped
    assert "\\[x\\]" in readme and "\\*\\*bold\\*\\*" in readme
    table_rows = [ln for ln in readme.splitlines() if ln.startswith("| ") and "script" in ln]
    assert table_rows and all(ln.count(" | ") == table_rows[0].count(" | ") for ln in table_rows)
    assert "\\| cell" in readme  # the pipe cannot add a column
    rows = list(csv.reader(files["charades-test.csv"].decode().splitlines()))
    names = [r[2] for r in rows[1:]]
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in names and not any(n.startswith("=") for n in names)
    html = files["index.html"].decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript' not in html
    strict_json(files["leaderboard.json"])
    assert files["figures/charades-test-bars.png"].startswith(b"\x89PNG")


@pytest.mark.parametrize("field, value, needle", [
    ("name", "two\nlines", "U+000A"),
    ("name", "evil\u202egnp.exe", "U+202E"),
    ("name", "x" * 121, "is too long"),  # the schema's maxLength (120)
    ("note", "ok\n# a heading", "U+000A"),
    ("url", "javascript:alert(1)", "not an http(s) URL"),
    ("ci", [-1000, 1e9], "is not an interval in [0, 100]"),
    ("metric", float("nan"), "is not a percentage"),
    ("metric", float("inf"), "is not a percentage"),
    ("metric_name", "R5@0.5x", "not a grounding metric"),
])
def test_bad_fields_are_refused_with_the_field_named(tmp_path, field, value, needle):
    subs = tmp_path / "s"
    path = make_reported(subs)
    data = json.loads(path.read_text())
    if field == "name":
        data["model"]["name"] = value
    elif field == "note":
        data["notes"] = [value]
    elif field == "url":
        data["citation"]["url"] = value
    elif field == "metric":
        data["metrics"]["R1@0.5"] = value
    elif field == "metric_name":
        data["metrics"][value] = 50.0
    else:
        data["status"] = "unverified"  # CIs only exist on scored entries: check via the number checks directly
        from tempbench.submissions import check_numbers

        with pytest.raises(TempbenchError, match=needle.replace("[", r"\[").replace("]", r"\]")):
            check_numbers({"R1@0.5": 50.0}, {"R1@0.5": value}, "grounding", str(path))
        return
    path.write_text(json.dumps(data, allow_nan=True))
    with pytest.raises(TempbenchError) as exc:
        render_leaderboard(subs)
    assert needle in exc.value.message and str(path) in exc.value.message


def test_markdown_and_csv_escapers():
    assert md("a|b") == "a\\|b" and md("<b>") == "&lt;b&gt;" and md("[l](u)") == "\\[l\\](u)"
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("@x") == "'@x" and csv_cell("-2") == "'-2"
    assert csv_cell("plain") == "plain" and csv_cell(None) == ""


# --------------------------------------------------------------------------------------------------- files


def test_build_refuses_bad_entries(tmp_path):
    subs = tmp_path / "submissions"
    path = make_reported(subs)
    edit_json(path, lambda d: d.pop("citation"))
    with pytest.raises(TempbenchError, match=r"paper-model\.json.*citation"):
        render_leaderboard(subs)
    edit_json(path, lambda d: d.update(citation={"title": "t", "table": "Table 1"}, id="charades/test/other-name"))
    with pytest.raises(TempbenchError, match=r"field 'id'.*lies at"):
        render_leaderboard(subs)
    edit_json(path, lambda d: d.update(id="charades/test/paper-model", schema="tempbench.submission/1"))
    with pytest.raises(TempbenchError, match=r"an entry of an older tempbench"):
        render_leaderboard(subs)


def test_tampered_details_refused(board_dirs, tmp_path):
    import shutil

    subs, _ = board_dirs
    copy = tmp_path / "subs"
    shutil.copytree(subs, copy)
    (copy / "charades" / "test" / "baseline-prior.details.jsonl.gz").write_bytes(
        gzip.compress(b'{"qid": 0, "vid": "x", "status": "ok", "detail": "", "windows": null, "scores": {}}\n'))
    with pytest.raises(TempbenchError, match=r"details\.sha256"):
        load_submissions(copy)


def test_empty_submissions(tmp_path):
    (tmp_path / "s").mkdir()
    files = render_leaderboard(tmp_path / "s")
    assert "No entries yet." in files["README.md"].decode()
    assert json.loads(files["leaderboard.json"])["boards"] == []


def test_repository_leaderboard_is_up_to_date():
    """The committed leaderboard/ must be what `tempbench leaderboard` builds from the committed submissions/."""
    subs, out = REPO / "submissions", REPO / "leaderboard"
    entries = load_submissions(subs)
    assert {e.status for e in entries} == {"verified", "reported"}
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
    assert by_id["charades/test/tempsamp-r1-7b-cot"]["metrics"] == {"R1@0.3": 83.6, "R1@0.5": 74.1,
                                                                     "R1@0.7": 52.9, "mIoU": 62.1}
    assert by_id["charades/test/qwen2.5-vl-7b--qwen-report"]["metrics"] == {"mIoU": 43.6}


def test_released_predictions_agree_with_the_models_own_metrics_files():
    """Released QVHighlights predictions scored by tempbench give the numbers their authors' metrics files state."""
    entries = [e for e in load_submissions(REPO / "submissions", check_details=False)
               if e.origin == "release" and e.own_metrics is not None]
    assert len(entries) >= 4
    for e in entries:
        own = e.own_metrics.metrics
        shared = [k for k in own if k in e.metrics]
        assert len(shared) >= 14, e.id
        assert {k: own[k] for k in shared} == {k: e.metrics[k] for k in shared}, e.id
        assert all(math.isfinite(v) for v in e.metrics.values())


def test_tables_are_paths_of_the_board(board_dirs):
    """A sanity check on the fixture itself: every entry file lies where its id says."""
    subs, _ = board_dirs
    for e in load_submissions(subs):
        assert Path(e.path).relative_to(subs).with_suffix("").as_posix() == e.id
