"""`tempbench score` end to end on the real annotations: exact numbers, failure accounting, bad input, provenance."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner

from tempbench.annotations import load_annotations
from tempbench.api import compare, score
from tempbench.cli import main
from tempbench.errors import TempbenchError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def charades(use_imported):
    return load_annotations("charades", "test")


def test_qvhighlights_official_sample_end_to_end(use_imported, tmp_path):
    from conftest import require_shared_data

    folder = require_shared_data("qvhighlights", "preds", "moment_detr_sample")
    result = cli("score", folder / "sample_val_preds.jsonl", "--task", "qvhighlights", "--json", "--no-ci")
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    official = json.loads((folder / "sample_val_preds_metrics_raw.json").read_text())
    assert record["official"] == official
    assert record["metrics"] == official["brief"]
    assert record["metrics"]["MR-full-R1@0.5"] == 53.94 and record["metrics"]["HL-min-VeryGood-Hit1"] == 55.55
    assert record["counts"]["saliency_length_mismatch"] == 13
    assert record["provenance"]["annotation_sha256"].startswith("f668a1ea")


def test_grounding_exact_numbers_and_failures(charades, tmp_path):
    # first 100 queries: exact GT; next 100: shifted by half the window; next 50: unparsable text; rest missing
    rows = []
    for r in charades[:100]:
        s, e = r["windows"][0]
        rows.append({"qid": r["qid"], "output": f"<answer> {s:.2f} to {e:.2f} </answer>"})
    for r in charades[100:200]:
        s, e = r["windows"][0]
        half = (e - s) / 2
        rows.append({"qid": str(r["qid"]), "windows": [[s + half, e + half]]})  # IoU = 1/3 exactly
    for r in charades[200:250]:
        rows.append({"qid": r["qid"], "output": "I cannot tell from this video."})
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.warns(UserWarning, match="3470 of 3720 queries have no prediction"):
        record = score(pred, "charades", ci=False)
    n = 3720
    assert record.n == n
    assert record.metrics["R1@0.3"] == pytest.approx(100 * 200 / n)
    assert record.metrics["R1@0.5"] == pytest.approx(100 * 100 / n)
    assert record.metrics["mIoU"] == pytest.approx(100 * (100 + 100 / 3) / n, rel=1e-9)
    c = record.counts
    assert (c.ok, c.failed, c.missing) == (200, 50, 3470)
    assert record.failure_rate == pytest.approx(100 * 3520 / n)
    with pytest.raises(TempbenchError, match="unknown parsing profile"):
        score(pred, "charades", profile="nope", ci=False)


def test_strict_threshold_profile_differs_on_ties(charades, tmp_path):
    # a GT window with endpoints exact in binary, so that the first half of it has IoU exactly 0.5
    r = next(r for r in charades if all(float(x * 4).is_integer() for x in r["windows"][0]))
    s, e = r["windows"][0]
    rows = [{"qid": r["qid"], "output": f"{s} to {s + (e - s) / 2}"}]
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.warns(UserWarning):
        canon = score(pred, "charades", profile="canonical", ci=False)
        strict = score(pred, "charades", profile="xiaomi-time-r1", ci=False)
    assert canon.metrics["R1@0.5"] == pytest.approx(100 / 3720)
    assert strict.metrics["R1@0.5"] == 0.0


@pytest.mark.parametrize("content,needle", [
    ('{"qid": 0, "output": "1 to 2"}\n{"qid": 1, "output": \n', "line 2: not valid JSON"),
    ('{"qid": 0, "output": "1 to 2"}\n{"qid": 0, "output": "3 to 4"}\n', "line 2, field 'qid': duplicate qid 0 (first on line 1)"),
    ('{"qid": 99999, "output": "1 to 2"}\n', "line 1, field 'qid': qid 99999 is not a query"),
    ('{"qid": 0, "windows": [[NaN, 2]]}\n', "line 1, field 'windows[0]'"),
    ('{"qid": 0, "windows": [[1, "x"]]}\n', "not a number"),
    ('{"qid": 0, "output": 5}\n', "field 'output': int instead of a string"),
    ('[1, 2]\n', "line 1: a int, not a JSON object"),
    ('{"output": "1 to 2"}\n', "field 'qid': missing"),
    ('{"qid": 0, "vid": "ZZZZZ", "output": "1 to 2"}\n', "field 'vid': qid 0 is video 3MSZA"),
])
def test_bad_input_names_file_line_field(charades, tmp_path, content, needle):
    pred = tmp_path / "bad.jsonl"
    pred.write_text(content)
    result = cli("score", pred, "--task", "charades", "--no-ci")
    assert result.exit_code == 2, result.output
    assert str(pred) in result.output and needle in result.output
    assert "Traceback" not in result.output


def test_missing_queries_strict_refuses(charades, tmp_path):
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "1 to 2"}])
    result = cli("score", pred, "--task", "charades", "--strict", "--no-ci")
    assert result.exit_code == 2 and "3719 of 3720 queries have no prediction" in result.output


def test_edge_rows_are_scored_by_policy(charades, tmp_path):
    r0, r1, r2, r3 = charades[:4]
    rows = [
        {"qid": r0["qid"], "windows": []},                                       # empty list: a miss
        {"qid": r1["qid"], "windows": [[r1["windows"][0][1], r1["windows"][0][0]]]},  # reversed: swapped
        {"qid": r2["qid"], "windows": [[0, r2["duration"] + 50]]},               # outside the video: counted
        {"qid": r3["qid"], "error": "video missing"},                            # error row: failure
    ]
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.warns(UserWarning):
        record = score(pred, "charades", ci=False)
    c = record.counts
    assert (c.empty_windows, c.reversed_windows, c.outside_video, c.errors) == (1, 1, 1, 1)
    details = {d.qid: d for d in record.details}
    assert details[r1["qid"]].iou == 1.0 and details[r1["qid"]].status == "repaired"
    assert details[r0["qid"]].iou == 0.0 and details[r3["qid"]].status == "error"


def test_run_json_supplies_task_and_details_file(charades, tmp_path):
    from tempbench.results import ModelIdentity, RunConfig, read_details

    run = tmp_path / "run"
    run.mkdir()
    sha = "0" * 64
    RunConfig(task="charades", split="test", annotation_file="charades_sta_test.txt", annotation_sha256=sha,
              model=ModelIdentity(spec="m", id="m", backend="baseline"), prompt=None, prompt_sha256=None, video=None,
              generation=None, setting="zero-shot").write(run / "run.json")
    rows = [{"qid": r["qid"], "output": f"{r['windows'][0][0]} - {r['windows'][0][1]}"} for r in charades]
    pred = write_jsonl(run / "predictions.jsonl", rows)
    out, details = tmp_path / "result.json", tmp_path / "details.jsonl.gz"
    result = cli("score", pred, "--out", out, "--details", details, "--resamples", "200")
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["metrics"] == {"R1@0.3": 100.0, "R1@0.5": 100.0, "R1@0.7": 100.0, "mIoU": 100.0}
    assert record["run"]["model"]["spec"] == "m" and record["run"]["setting"] == "zero-shot"
    import jsonschema

    from tempbench.results import load_schema
    jsonschema.validate(record, load_schema("result"))
    rows = read_details(details)
    assert len(rows) == 3720 and rows[0].scores["R1@0.5"] == 100.0 and rows[0].windows == [charades[0]["windows"][0]]
    assert [json.loads(line) for line in gzip.open(details, "rt")][0]["qid"] == charades[0]["qid"]


def test_confidence_intervals_are_seeded_and_bracket(charades, tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for r in charades:
        s, e = r["windows"][0]
        jitter = rng.normal(0, 3, 2)
        rows.append({"qid": r["qid"], "output": f"{s + jitter[0]:.2f} to {e + jitter[1]:.2f}"})
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    a = score(pred, "charades", n_resamples=300, seed=1)
    b = score(pred, "charades", n_resamples=300, seed=1)
    assert a.ci95 == b.ci95
    for name, (lo, hi) in a.ci95.items():
        assert lo < a.metrics[name] < hi
        assert hi - lo < 6


def test_profile_all_and_breakdown(charades, tmp_path):
    rows = [{"qid": r["qid"], "output": f"The event happens from {r['windows'][0][0]} to {r['windows'][0][1]} s."}
            for r in charades[:300]]
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    result = cli("score", pred, "--task", "charades", "--profile", "all", "--json", "--no-ci")
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    from tempbench.parsing import PROFILES
    assert [r["profile"] for r in records] == list(PROFILES)
    result = cli("score", pred, "--task", "charades", "--by", "position", "--no-ci")
    assert result.exit_code == 0 and "by position" in result.output and "middle third" in result.output


def test_compare_paired(charades, tmp_path):
    good = [{"qid": r["qid"], "windows": [r["windows"][0]]} for r in charades]
    bad = [{"qid": r["qid"], "windows": [[0.0, 1.0]]} for r in charades]
    a = write_jsonl(tmp_path / "a.jsonl", bad)
    b = write_jsonl(tmp_path / "b.jsonl", good)
    result = compare(a, b, "charades", n_resamples=200)
    row = {r.metric: r for r in result.rows}["R1@0.5"]
    assert row.difference > 90 and row.p_value < 0.01 and row.ci95[0] > 80
    out = cli("compare", a, b, "--task", "charades", "--resamples", "100")
    assert out.exit_code == 0 and "B - A" in out.output


def test_result_json_round_trip_keeps_everything_but_details(charades, tmp_path):
    from tempbench.results import Result

    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": r["qid"], "output": "0 to 5"} for r in charades])
    record = score(pred, "charades", ci=False)
    assert len(record.details) == 3720 and "details" not in record.to_json()
    again = Result.from_json(record.to_json())
    assert again == record and again.details == ()


def test_old_result_schema_is_refused_with_what_to_do(tmp_path):
    from tempbench.results import Result

    path = tmp_path / "result.json"
    path.write_text(json.dumps({"schema": "tempbench.result/1", "task": "charades"}))
    with pytest.raises(TempbenchError, match="another tempbench version") as exc:
        Result.read(path)
    assert "score the predictions again" in exc.value.hint


# ---------------------------------------------------------------------------------------------------------------
# cost follows the input's size (issue 12, item 2); benchmarks/bench_score_5mb.py measures the 5 MB cases


def _grounding_records(n=3000):
    return [{"qid": i, "vid": f"v{i // 3}", "query": f"query {i}", "duration": 60.0,
             "windows": [[float(i % 40), float(i % 40 + 8)]]} for i in range(n)]


def _highlight_records(n=1500):
    return [{"qid": i, "vid": f"v{i}", "query": f"query {i}", "duration": 150.0, "windows": [[10.0, 30.0]],
             "saliency": {"clip_ids": [5, 6, 7, 8], "scores": [[1, 2, 3], [2, 2, 4], [4, 4, 4], [0, 1, 2]]}}
            for i in range(n)]


def _peak_reporter() -> str:
    """The child's own peak-memory report (`PEAK_REPORTER` of benchmarks/bench_score_5mb.py, measured the same way)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_score_5mb.py"
    spec = importlib.util.spec_from_file_location("bench_score_5mb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PEAK_REPORTER


PEAK_REPORTER = _peak_reporter()


def _score_in_a_fresh_process(args, cwd) -> tuple[int, str, float, float]:
    """(exit code, stderr, seconds, peak resident MB) of `tempbench ARGS` in its own process."""
    import subprocess
    import sys
    import time

    began = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_REPORTER, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    seconds = time.perf_counter() - began
    lines = proc.stderr.splitlines()
    peak_kb = int(next(x for x in lines if x.startswith("peak-rss-kb ")).split()[1])
    err = "\n".join(x for x in lines if not x.startswith("peak-rss-kb "))
    return proc.returncode, err, seconds, peak_kb / 1024


def test_a_huge_window_list_is_refused_in_one_line(tmp_path):
    """One row of 50,000 windows: 4.6 GB and 14 s before (every row padded to the widest); now refused at once."""
    ann = write_jsonl(tmp_path / "ann.jsonl", _grounding_records())
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "windows": [[1, 2]] * 50_000}])
    code, err, seconds, peak_mb = _score_in_a_fresh_process(["score", pred, "--annotations", ann], tmp_path)
    assert code == 2, err
    assert f"{pred}, line 1, field 'windows': 50,000 windows; at most 10,000 per row are read" in err
    assert "Traceback" not in err and seconds < 10 and peak_mb < 500


def test_a_huge_saliency_list_is_refused_in_one_line(tmp_path):
    ann = write_jsonl(tmp_path / "ann.jsonl", _highlight_records())
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "pred_relevant_windows": [[0, 10, 1]],
                                                "pred_saliency_scores": [0.5] * 1_000_000}])
    code, err, _, peak_mb = _score_in_a_fresh_process(["score", pred, "--annotations", ann], tmp_path)
    assert code == 2 and "field 'pred_saliency_scores': 1,000,000 scores; at most 100,000 per row" in err, err
    assert peak_mb < 500


@pytest.mark.parametrize("case", ["grounding: 40 rows x 10,000 windows", "highlights: 12 rows x 100,000 scores"])
def test_rows_at_the_limits_score_in_memory_that_follows_the_file(tmp_path, case):
    """Before: every row padded to the widest (queries x widest row): 0.8 GB / 1.4 GB for these ~5 MB files.
    Now only what a metric reads is kept: the first 5 windows (R@5), the first 10 (QVHighlights mAP), saliency
    truncated to the clip count (HIT@1 still takes the argmax of the whole list, as the official scorer)."""
    if case.startswith("grounding"):
        ann = write_jsonl(tmp_path / "ann.jsonl", _grounding_records())
        rows = [{"qid": q, "windows": [[float(k % 50), float(k % 50 + 5)] for k in range(10_000)]} for q in range(40)]
    else:
        ann = write_jsonl(tmp_path / "ann.jsonl", _highlight_records())
        rows = [{"qid": q, "pred_relevant_windows": [[10, 30, 1]], "pred_saliency_scores": [0.25] * 100_000}
                for q in range(12)]
    pred = write_jsonl(tmp_path / "p.jsonl", rows)
    assert 4e6 < pred.stat().st_size < 8e6
    code, err, seconds, peak_mb = _score_in_a_fresh_process(["score", pred, "--annotations", ann], tmp_path)
    assert code == 0, err
    assert peak_mb < 450 and seconds < 15, (peak_mb, seconds)


def test_windows_past_what_metrics_read_change_nothing(tmp_path):
    """Truncating to what the metrics read is exact: 200 windows per row score as their first 10 do, and the
    counts (reversed, outside the video) still look at every window."""
    from tempbench.annotations import records_split
    from tempbench.predictions import predictions_from_rows
    from tempbench.scoring import score as score_split

    for records in (_grounding_records(60), _highlight_records(40)):
        data = records_split(records, "<test>")
        rng = np.random.default_rng(0)
        long_rows, short_rows = [], []
        for r in records:
            starts = rng.uniform(0, 50, 200).round(1)
            wins = [[float(s), float(s + 6), float(sc)] for s, sc in zip(starts, rng.random(200).round(2))]
            wins[150] = [5.0, 200.0, 0.1]  # past the 10th, outside the video: still counted
            long_rows.append({"qid": r["qid"], "windows": wins})
            short_rows.append({"qid": r["qid"], "windows": wins[:10]})
        long = score_split(data, predictions_from_rows(long_rows), ci=False)
        short = score_split(data, predictions_from_rows(short_rows), ci=False)
        assert long.metrics == short.metrics
        assert [d.windows for d in long.details] == [d.windows for d in short.details]
        assert long.counts.outside_video == len(records) and short.counts.outside_video < len(records)


def test_saliency_longer_than_the_video_keeps_the_official_hit1():
    """HIT@1 is the argmax of the list as given (official `compute_hl_hit1`); a maximum past the last clip is a
    miss even though AP only reads the first int(duration / 2) scores."""
    from tempbench.metrics.qvhighlights import highlight_detection

    ids, scores = [np.array([1, 2])], [np.array([[4, 4, 4], [4, 4, 4]], dtype=float)]
    inside = np.zeros(5000)
    inside[1] = 1.0
    past = inside.copy()
    past[4000] = 2.0
    hl_in = highlight_detection([inside], [10.0], ids, scores)
    hl_past = highlight_detection([past], [10.0], ids, scores)
    assert hl_in.hit.all() and not hl_past.hit.any() and hl_past.top_clip[0] == 4000
    assert np.array_equal(hl_in.ap, hl_past.ap)  # the first 5 scores are the same
