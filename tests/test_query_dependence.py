"""benchmarks/query_dependence.py: the shares it reports, on answers made up to be a reader and an ignorer of the
query, and one real run of the shipped model on two videos."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("query_dependence", REPO / "benchmarks" / "query_dependence.py")
QD = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(QD)

WINDOWS = [[[1.0, 3.0], [5.0, 7.0]], [[0.5, 2.0], [3.0, 4.0], [6.0, 9.0]]]


def test_a_model_that_reads_the_query():
    rows = [{"windows": w, "answers": [list(x) for x in w], "nothing": [0.0, 0.1]} for w in WINDOWS]
    s = QD.summarise(rows)
    assert s["videos_with_different_answers_pct"] == 100 and s["answers_on_the_named_object_pct"] == 100
    assert s["random_pick_pct"] == pytest.approx(100 * 2 / 5) and s["answers_equal_to_the_answer_to_hello_pct"] == 0


def test_a_model_that_ignores_the_query():
    rows = [{"windows": w, "answers": [list(w[0])] * len(w), "nothing": list(w[0])} for w in WINDOWS]
    s = QD.summarise(rows)
    assert s["videos_with_different_answers_pct"] == 0 and s["answers_on_the_named_object_pct"] == 40
    assert s["answers_equal_to_the_answer_to_hello_pct"] == 100
    unparsed = [{"windows": WINDOWS[0], "answers": [None, None], "nothing": None}]
    assert QD.summarise(unparsed)["answers_on_the_named_object_pct"] == 0
    assert QD.summarise(unparsed)["answers_equal_to_the_answer_to_hello_pct"] == 0


def test_runs_on_the_shipped_model(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    monkeypatch.setenv("TEMPBENCH_HOME", str(tmp_path / "home"))
    assert QD.main(["tiny-synthetic", "--videos", "2", "--out", str(tmp_path / "qd.json")]) == 0
    import json

    res = json.loads((tmp_path / "qd.json").read_text())
    assert res["videos"] == 2 and len(res["per_video"]) == 2 and res["split"] == "val"
    assert all(len(v["queries"]) == len(v["windows"]) + 1 for v in res["per_video"])
    assert "answers differ between the queries" in capsys.readouterr().out


def test_a_model_that_does_not_exist_is_one_line_and_exit_2(tmp_path, capsys):
    assert QD.main([str(tmp_path / "no-model"), "--videos", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
