"""Importers on the real official files, the hash refusal, quirks, export round trip, and the error paths."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from tempbench.annotations import annotation_validator, import_task, load_annotations
from tempbench.cli import main
from tempbench.errors import TempbenchError, UsageError
from tempbench.quirks import find_quirks
from tempbench.tasks import get_task

SIZES = {
    ("charades", "test"): (3720, 1334), ("charades", "train"): (12408, 5338),
    ("anet", "val_2"): (17031, 4885), ("anet", "val_1"): (17505, 4917), ("anet", "train"): (37421, 10009),
    ("qvhighlights", "val"): (1550, 1519), ("qvhighlights", "test"): (1542, 1529),
    ("qvhighlights", "train"): (7218, 7100),
}


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("task,split", list(SIZES))
def test_sizes_and_show_json(use_imported, task, split):
    result = run_cli("data", "show", task, "--split", split, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["queries"], info["videos"]) == SIZES[task, split]
    assert info["hash_verified"] is True
    assert info["annotation_sha256"] == get_task(task).card["files"][info["annotation_file"]]["sha256"]


def test_known_quirks(use_imported):
    show = lambda t, s: json.loads(run_cli("data", "show", t, "--split", s, "--json").output)["quirks"]  # noqa: E731
    assert show("charades", "test")["ends_after_duration"] == 562
    assert show("charades", "train")["ends_after_duration"] == 1805
    assert show("charades", "train")["reversed"] == 4
    anet_train = show("anet", "train")
    assert (anet_train["reversed"], anet_train["zero_length"], anet_train["ends_after_duration"]) == (2, 2, 29)
    assert show("anet", "val_1")["ends_after_duration"] == 5
    assert show("anet", "val_2")["ends_after_duration"] == 1


def test_records_follow_contract(use_imported):
    charades = load_annotations("charades", "test")
    assert charades[0] == {"qid": 0, "vid": "3MSZA", "query": "person turn a light on.", "duration": 30.96,
                           "windows": [[24.3, 30.4]]}
    assert [r["qid"] for r in charades] == list(range(3720))
    anet = load_annotations("anet", "val_2")
    assert anet[1]["vid"] == anet[0]["vid"] and anet[1]["query"].startswith("One man is holding")  # stripped
    qvh = {r["qid"]: r for r in load_annotations("qvhighlights", "val")}
    rec = qvh[2579]
    assert rec["windows"] == [[82.0, 150.0]] and rec["saliency"]["clip_ids"][0] == 41
    assert rec["saliency"]["scores"][0] == [1.0, 1.0, 2.0]
    test = load_annotations("qvhighlights", "test")
    assert all("saliency" in r and r["windows"] for r in test)


def test_export_round_trips_through_schema(use_imported, tmp_path):
    out = tmp_path / "val.jsonl"
    result = run_cli("data", "export", "qvhighlights", "--split", "val", "-o", str(out))
    assert result.exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    validator = annotation_validator()
    assert len(rows) == 1550 and all(validator.is_valid(r) for r in rows)
    assert rows == load_annotations("qvhighlights", "val")
    stdout = run_cli("data", "export", "charades").output.splitlines()
    assert len(stdout) == 3720 and json.loads(stdout[5])["qid"] == 5


def test_hash_mismatch_is_refused_then_overridable(tb_home, shared_data, tmp_path):
    src = tmp_path / "anet"
    src.mkdir()
    text = (shared_data / "activitynet_captions" / "val_2.json").read_text()
    (src / "val_2.json").write_text(text.replace('"duration": 55.15', '"duration": 55.16', 1))
    result = CliRunner().invoke(main, ["data", "import", "anet", "--from", str(src)])
    assert result.exit_code == 2
    assert "sha256 mismatch for val_2.json" in result.output and "08fe56568bc92dd0" in result.output
    assert "--allow-hash-mismatch" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["data", "import", "anet", "--from", str(src), "--allow-hash-mismatch"])
    assert result.exit_code == 0, result.output
    info = json.loads(run_cli("data", "show", "anet", "--json").output)
    assert info["hash_verified"] is False and info["queries"] == 17031


def test_import_finds_files_in_subfolders_and_reports_skipped(tb_home, shared_data, tmp_path):
    src = tmp_path / "deep" / "x"
    src.mkdir(parents=True)
    shutil.copy(shared_data / "qvhighlights" / "highlight_val_release.jsonl", src)
    result = import_task("qvhighlights", tmp_path / "deep")
    assert list(result["imported"]) == ["val"] and set(result["skipped"]) == {"test", "train"}


@pytest.mark.parametrize("args,needle", [
    (["data", "show", "nosuch"], "unknown task 'nosuch'"),
    (["data", "show", "charades", "--split", "val"], "has no split 'val'"),
    (["data", "show", "charades"], "tempbench data import charades --from DIR"),
    (["data", "import", "charades", "--from", "/nonexistent-folder"], "/nonexistent-folder is not a folder"),
])
def test_errors_are_one_clear_line(tb_home, args, needle):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_import_empty_folder(tb_home, tmp_path):
    with pytest.raises(TempbenchError, match="no Charades-STA files found"):
        import_task("charades", tmp_path)


def test_corrupt_files_name_file_line_field(tb_home, shared_data, tmp_path):
    src = tmp_path / "c"
    src.mkdir()
    lines = (shared_data / "charades_sta" / "charades_sta_test.txt").read_text().splitlines(keepends=True)
    lines[6] = "3MSZA twenty 30.4##person turn a light on.\n"
    (src / "charades_sta_test.txt").write_text("".join(lines))
    shutil.copy(shared_data / "charades_sta" / "Charades_v1_test.csv", src)
    with pytest.raises(TempbenchError) as err:
        import_task("charades", src, allow_hash_mismatch=True)
    assert "line 7" in err.value.message and "'start'" in err.value.message
    qsrc = tmp_path / "q"
    qsrc.mkdir()
    rows = (shared_data / "qvhighlights" / "highlight_val_release.jsonl").read_text().splitlines(keepends=True)
    rows[2] = rows[2][:40] + "\n"
    (qsrc / "highlight_val_release.jsonl").write_text("".join(rows))
    with pytest.raises(TempbenchError, match=r"line 3: not valid JSON"):
        import_task("qvhighlights", qsrc, allow_hash_mismatch=True)
    asrc = tmp_path / "a"
    asrc.mkdir()
    (asrc / "val_2.json").write_text('{"v_x": {"duration": 10, "timestamps": [[1, 2]], "sentences": []}}')
    with pytest.raises(TempbenchError, match=r"v_x.timestamps.*1 timestamps for 0 sentences"):
        import_task("anet", asrc, allow_hash_mismatch=True)


def test_quirk_counter_on_small_records():
    records = [
        {"qid": 0, "vid": "a", "query": "x", "duration": 10.0, "windows": [[2.0, 11.0]]},
        {"qid": 1, "vid": "a", "query": "x", "duration": 10.0, "windows": [[2.0, 11.0]]},
        {"qid": 2, "vid": "a", "query": "x", "duration": 10.0, "windows": [[5.0, 3.0]]},
        {"qid": 3, "vid": "b", "query": "y", "duration": 10.0, "windows": [[4.0, 4.0]]},
        {"qid": 4, "vid": "b", "query": "z", "duration": 10.0, "windows": [[1.0, 10.000000000000002]]},
    ]
    counts = find_quirks(records).counts
    assert counts["ends_after_duration"] == 2 and counts["duplicate_rows"] == 1
    assert counts["duplicate_queries"] == 1 and counts["reversed"] == 1 and counts["zero_length"] == 1


def test_unknown_task_api():
    with pytest.raises(UsageError):
        get_task("charadez")
