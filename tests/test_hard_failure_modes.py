"""benchmarks/hard_failure_modes.py: which object a synthetic-hard answer lands on, checked on answers made from the
generator's own scenes (the target's window, the first object's window, unparsable text)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tempbench.synthetic import draw_scene
from tempbench.tasks import synthetic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_helpers import write_run  # noqa: E402

SPEC = importlib.util.spec_from_file_location("hard_failure_modes", REPO / "benchmarks" / "hard_failure_modes.py")
MODES = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(MODES)
N = 36  # two cycles of colour x query kind


def _run(tmp_path: Path, answer) -> Path:
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["val"]["seed"]
    settings = synthetic.settings("synthetic-hard")
    rows = []
    for i in range(N):
        scene, _ = draw_scene(settings, seed, i)
        rows.append({"qid": i, "vid": scene.vid, "output": answer(scene)})
    return write_run(tmp_path / "run", "synthetic-hard", "val", rows)


def _window(obj, fps) -> str:
    return f"<answer> {obj.start / fps:.3f} to {obj.end / fps:.3f} </answer>"


def test_answers_on_the_target(tmp_path):
    res = MODES.analyse(_run(tmp_path, lambda s: _window(s.objects[s.target], s.fps)))["by_query"]
    assert res["all"]["picks_target_pct"] == 100 and res["all"]["mIoU_target"] == pytest.approx(100)
    assert set(res) == {"all", "both", "colour", "shape"} and res["all"]["parsed"] == N
    # the target is not always the first to appear: the first-object rate is the share where it is
    assert 0 < res["all"]["picks_first_to_appear_pct"] < 100
    assert res["all"]["picks_first_to_appear_pct"] == pytest.approx(
        100 * res["all"]["target_place_counts"].get(0, 0) / N)


def test_answers_on_the_first_object(tmp_path):
    def first(s):
        return _window(min(s.objects, key=lambda o: o.start), s.fps)

    res = MODES.analyse(_run(tmp_path, first))["by_query"]["all"]
    assert res["picks_first_to_appear_pct"] == 100 and res["picked_place_counts"] == {0: N}
    assert res["picks_target_pct"] < 100 and res["iou_with_picked_object"] == pytest.approx(100)
    assert 30 < res["random_pick_pct"] < 50


def test_unparsed_answers_pick_nothing(tmp_path):
    res = MODES.analyse(_run(tmp_path, lambda s: "no idea"))["by_query"]["all"]
    assert res["parsed"] == 0 and res["picks_target_pct"] == 0 and res["mIoU_target"] == 0


def test_a_folder_without_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    assert MODES.main([str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "run.json" in err and "\n" not in err


def test_a_later_row_of_a_qid_supersedes_the_earlier(tmp_path):
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["val"]["seed"]
    scene = draw_scene(synthetic.settings("synthetic-hard"), seed, 0)[0]
    first = min(scene.objects, key=lambda o: o.start)
    rows = [{"qid": 0, "vid": scene.vid, "output": _window(first, scene.fps)},  # then run again: the target
            {"qid": 0, "vid": scene.vid, "output": _window(scene.objects[scene.target], scene.fps)}]
    res = MODES.analyse(write_run(tmp_path / "run", "synthetic-hard", "val", rows))
    assert res["by_query"]["all"]["n"] == 1 and res["by_query"]["all"]["picks_target_pct"] == 100
    assert res["queries_without_a_row"] == 127


def test_a_row_of_another_video_is_one_line_and_exit_2(tmp_path, capsys):
    write_run(tmp_path / "run", "synthetic-hard", "val", [{"qid": 0, "vid": "synthhard_13_0001", "output": "x"}])
    assert MODES.main([str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "line 1" in err and "'vid'" in err and "\n" not in err
