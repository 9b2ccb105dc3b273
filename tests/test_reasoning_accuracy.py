"""benchmarks/reasoning_accuracy.py and the description it reads (`Scene.description`, `parse_description`): checked
on answers written from the generator's own scenes (a right description and pick, a right description with the
wrong pick, a wrong colour), so each rate is known exactly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tempbench.synthetic import DescribedObject, draw_scene, parse_description, query_names
from tempbench.tasks import synthetic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports hard_failure_modes beside it
sys.path.insert(0, str(REPO / "tests"))
from run_helpers import write_run  # noqa: E402

SPEC = importlib.util.spec_from_file_location("reasoning_accuracy", REPO / "benchmarks" / "reasoning_accuracy.py")
REASONING = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(REASONING)
N = 36  # two cycles of colour x query kind
SEED = synthetic.TASKS["synthetic-hard"]["splits"]["val"]["seed"]
SETTINGS = synthetic.settings("synthetic-hard")


def _scenes():
    return [draw_scene(SETTINGS, SEED, i)[0] for i in range(N)]


def _run(tmp_path: Path, answer) -> Path:
    rows = [{"qid": i, "vid": s.vid, "output": answer(s)} for i, s in enumerate(_scenes())]
    return write_run(tmp_path / "run", "synthetic-hard", "val", rows)


def _answer(scene, j: int, marked: bool = True) -> str:
    o = scene.objects[j]
    think = scene.description(named=scene.target if marked else None)
    return f"<think> {think} </think><answer> {o.start / scene.fps:.2f} to {o.end / scene.fps:.2f} </answer>"


def test_description_round_trips_in_temporal_order():
    for scene in _scenes():
        entries = parse_description(scene.description(named=scene.target))
        shown = sorted(scene.objects, key=lambda o: o.start)
        assert [(e.colour, e.shape) for e in entries] == [(o.colour, o.shape) for o in shown]
        assert [e.start for e in entries] == [float(f"{o.start / scene.fps:.2f}") for o in shown]
        marks = [e.mark for e in entries]
        assert marks.count("yes") == 1 and marks.index("yes") == shown.index(scene.objects[scene.target])
        assert all(e.mark is None for e in parse_description(scene.description()))


def test_parse_description_skips_text_that_is_not_an_entry():
    assert parse_description("I see: red circle no 1.00 to 2.50, then ?? 3 to; blue square 4 to 5.5") == [
        DescribedObject("red", "circle", "no", 1.0, 2.5), DescribedObject("blue", "square", None, 4.0, 5.5)]
    assert parse_description("") == [] and parse_description("red to 1.00") == []


def test_right_description_and_pick(tmp_path):
    res = REASONING.analyse(_run(tmp_path, lambda s: _answer(s, s.target)))
    q, e = res["pct_of_queries"], res["pct_of_entries"]
    assert q["count_right"] == 100 and e["colour_right"] == 100 and e["shape_right"] == 100
    assert e["span_mIoU"] > 95  # the spans are written with two decimals
    assert q["answer_is_fitting_entry"] == 100 and q["answer_is_yes_entry"] == 100 and q["yes_on_target"] == 100
    assert q["answer_on_target"] == 100


def test_right_description_wrong_pick(tmp_path):
    def other(s):
        return _answer(s, (s.target + 1) % len(s.objects))

    q = REASONING.analyse(_run(tmp_path, other))["pct_of_queries"]
    assert q["count_right"] == 100 and q["answer_is_an_entry"] == 100 and q["yes_on_target"] == 100
    assert q["answer_is_fitting_entry"] == 0 and q["answer_is_yes_entry"] == 0 and q["answer_on_target"] == 0


def test_a_wrong_colour_is_counted_per_entry(tmp_path):
    def recoloured(s):
        text = _answer(s, s.target, marked=False)
        first = min(s.objects, key=lambda o: o.start)
        other = "red" if first.colour != "red" else "blue"
        return text.replace(f"<think> {first.colour} ", f"<think> {other} ", 1)

    res = REASONING.analyse(_run(tmp_path, recoloured))
    n_entries = sum(len(s.objects) for s in _scenes())
    assert res["counts"]["entries"] == n_entries and res["counts"]["colour_right"] == n_entries - N
    assert res["pct_of_entries"]["shape_right"] == 100 and res["pct_of_queries"]["marked"] == 0


@pytest.mark.parametrize("query, colour, shape, fits", [
    ("the red circle appears", "red", "circle", True), ("the red circle appears", "red", "square", False),
    ("the red object appears", "red", "square", True), ("the circle appears", "blue", "circle", True),
    ("the circle appears", "blue", "square", False)])
def test_query_names(query, colour, shape, fits):
    assert query_names(query, colour, shape) is fits


def test_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert REASONING.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_a_later_row_of_a_qid_supersedes_the_earlier(tmp_path):
    """A run's predictions file is append-only (a resumed run, --retry-errors): each query counts once, with its
    last row, as scoring counts it."""
    scenes = _scenes()
    rows = [{"qid": 0, "vid": scenes[0].vid, "output": None, "error": "video not found"}]
    rows += [{"qid": i, "vid": s.vid, "output": _answer(s, s.target)} for i, s in enumerate(scenes)]
    res = REASONING.analyse(write_run(tmp_path / "run", "synthetic-hard", "val", rows))
    assert res["n"] == N and res["pct_of_queries"]["answer_on_target"] == 100
    assert res["queries_without_a_row"] == 128 - N  # the made-up run answers the first N of val's 128


def test_a_run_of_another_task_is_one_line_and_exit_2(tmp_path, capsys):
    write_run(tmp_path / "run", "charades", "test", [])
    assert REASONING.main([str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not of synthetic" in err and "\n" not in err
