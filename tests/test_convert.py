"""convert_file: small files written the way each tool writes them, converted and checked field by field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tempbench.convert import SOURCES, convert_file, normalize_query
from tempbench.errors import TempbenchError, UsageError
from tempbench.parsing import parse_span

# A small Charades-like annotation set (tempbench unified records). Videos are interleaved on purpose: Time-R1
# numbers queries after grouping them by video.
ANNOTATIONS = [
    {"qid": 0, "vid": "3MSZA", "query": "person turn a light on.", "duration": 30.0, "windows": [[24.3, 30.4]]},
    {"qid": 1, "vid": "AO8RW", "query": "a person is putting a book on a shelf.", "duration": 33.0,
     "windows": [[0.0, 6.9]]},
    {"qid": 2, "vid": "3MSZA", "query": "person flipped the light switch near the door.", "duration": 30.0,
     "windows": [[24.3, 30.4]]},
    {"qid": 3, "vid": "AO8RW", "query": "person begins to play on a phone.", "duration": 33.0,
     "windows": [[20.8, 30.0]]},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------
# lmms-eval (--log_samples), as evaluation_tracker.save_results_samples writes it at v0.7.2
# ---------------------------------------------------------------------------------------------------------------


def lmms_sample(doc_id: int, video: str, caption: str, timestamp: list, raw: str, stripped: str) -> dict:
    key = f"{video}>>>{caption}>>>{timestamp}"
    sample = {"doc_id": doc_id, "target": str(timestamp), "filtered_resps": stripped,
              "token_counts": [None], "doc_hash": "ab" * 32, "input": f"Please find ... {caption}. Please return"}
    if raw != stripped:  # --reasoning_tags (on by default) changed the text: the raw response is kept as "resps"
        sample["resps"] = raw
    for metric in ("IOU@3", "IOU@5", "IOU@7", "mIOU"):
        sample[f"charades_sta_{metric}"] = {key: stripped}
    return sample


def test_lmms_eval(tmp_path):
    path = write_jsonl(tmp_path / "20250101_000000_samples_temporal_grounding_charades.jsonl", [
        lmms_sample(0, "3MSZA.mp4", "person turn a light on", [24.3, 30.4],
                    "The event happens in the 24.0 - 30.0 seconds.", "The event happens in the 24.0 - 30.0 seconds."),
        lmms_sample(1, "AO8RW.mp4", "a person is putting a book on a shelf", [0.0, 6.9],
                    "<think>book first 9 - 12</think>It happens in 1.0 - 5.0 seconds.", "It happens in 1.0 - 5.0 seconds."),
    ])
    records = convert_file(path, "lmms-eval")
    assert [r["qid"] for r in records] == ["lmms-eval:0", "lmms-eval:1"]
    assert records[0]["vid"] == "3MSZA" and records[0]["query"] == "person turn a light on"
    assert records[0]["source"]["target"] == [24.3, 30.4]
    # the raw response (before lmms-eval stripped <think>) is kept, so every profile sees the full text
    assert records[1]["output"].startswith("<think>")
    assert parse_span(records[1]["output"], "lmms-eval").span == (1.0, 5.0)
    assert parse_span(records[1]["output"], "canonical").span == (1.0, 5.0)
    assert parse_span(records[1]["output"], "timelens").span == (9.0, 12.0)

    resolved = convert_file(path, "lmms-eval", annotations=ANNOTATIONS)
    assert [r["qid"] for r in resolved] == [0, 1]  # captions without the final period still match


def test_lmms_eval_older_layout_with_doc(tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [
        {"doc_id": 3, "doc": {"video": "AO8RW.mp4", "caption": "person begins to play on a phone",
                              "timestamp": [20.8, 30.0]},
         "target": "[20.8, 30.0]", "resps": [["20 - 30"]], "filtered_resps": ["20 - 30"]},
    ])
    [record] = convert_file(path, "lmms-eval", annotations=ANNOTATIONS)
    assert record["qid"] == 3 and record["output"] == "20 - 30" and record["source"]["target"] == [20.8, 30.0]


def test_lmms_eval_errors(tmp_path):
    bad = write_jsonl(tmp_path / "a.jsonl", [{"doc_id": 0, "filtered_resps": "1 - 2"}])
    with pytest.raises(TempbenchError, match=r"a\.jsonl, line 1.*charades_sta"):
        convert_file(bad, "lmms-eval")
    no_id = write_jsonl(tmp_path / "b.jsonl", [{"filtered_resps": "1 - 2"}])
    with pytest.raises(TempbenchError, match=r"b\.jsonl, line 1, field 'doc_id': missing"):
        convert_file(no_id, "lmms-eval")
    other_video = write_jsonl(tmp_path / "c.jsonl", [lmms_sample(0, "ZZZZZ.mp4", "someone dances", [1, 2], "x", "x")])
    with pytest.raises(TempbenchError, match=r"c\.jsonl, line 1, field 'query'.*ZZZZZ"):
        convert_file(other_video, "lmms-eval", annotations=ANNOTATIONS)


# ---------------------------------------------------------------------------------------------------------------
# Time-R1 (xiaomi-research/time-r1 evaluate.py): {"qid", "pred", "target", "duration", "output_text"} per line
# ---------------------------------------------------------------------------------------------------------------


def time_r1_rows() -> list[dict]:
    # Time-R1 order: 3MSZA's queries first (qid 0, 2), then AO8RW's (qid 1, 3)
    return [
        {"qid": "charades_2", "pred": [1.0, 5.0], "target": [0.0, 6.9], "duration": 33.0,
         "output_text": "<think>From 0 to 2 the person walks.</think><answer>1.0 to 5.0</answer>"},
        {"qid": "charades_0", "pred": [24.0, 30.0], "target": [24.3, 30.4], "duration": 30.0,
         "output_text": "<answer>24.00 to 30.00</answer>"},
        {"qid": "charades_3", "pred": [None, None], "target": [20.8, 30.0], "duration": 33.0,
         "output_text": "I am not sure."},
        {"qid": "charades_1", "pred": [24.3, 30.0], "target": [24.3, 30.4], "duration": 30.0,
         "output_text": "24.3 to 30.0"},
    ]


def test_time_r1(tmp_path):
    path = write_jsonl(tmp_path / "tg_0_1.jsonl", time_r1_rows())
    records = convert_file(path, "xiaomi-time-r1", annotations=ANNOTATIONS)
    assert [r["qid"] for r in records] == [1, 0, 3, 2]
    assert records[0]["vid"] == "AO8RW" and records[0]["query"] == ANNOTATIONS[1]["query"]
    assert records[2]["source"]["pred"] == [None, None]
    # Time-R1's own extraction, applied to the raw text, gives the span it stored
    for row, record in zip(time_r1_rows(), records):
        span = parse_span(record["output"], "xiaomi-time-r1").span
        assert (list(span) if span else [None, None]) == row["pred"]


def test_time_r1_needs_annotations_and_checks_them(tmp_path):
    path = write_jsonl(tmp_path / "tg_0_1.jsonl", time_r1_rows())
    with pytest.raises(TempbenchError, match="annotations are needed"):
        convert_file(path, "xiaomi-time-r1")
    rows = time_r1_rows()
    rows[1]["target"] = [1.0, 2.0]
    wrong = write_jsonl(tmp_path / "wrong.jsonl", rows)
    with pytest.raises(TempbenchError, match=r"wrong\.jsonl, line 2, field 'target'.*another split"):
        convert_file(wrong, "xiaomi-time-r1", annotations=ANNOTATIONS)
    past = write_jsonl(tmp_path / "past.jsonl", [dict(time_r1_rows()[0], qid="charades_9")])
    with pytest.raises(TempbenchError, match=r"line 1, field 'qid'.*past the 4"):
        convert_file(past, "xiaomi-time-r1", annotations=ANNOTATIONS)
    other = write_jsonl(tmp_path / "other.jsonl", [dict(time_r1_rows()[0], qid="videomme_1")])
    with pytest.raises(TempbenchError, match="not charades_<k> or activitynet_<k>"):
        convert_file(other, "xiaomi-time-r1", annotations=ANNOTATIONS)
    no_text = write_jsonl(tmp_path / "no_text.jsonl", [{"qid": "charades_0", "pred": [1, 2]}])
    with pytest.raises(TempbenchError, match=r"line 1, field 'output_text': missing"):
        convert_file(no_text, "xiaomi-time-r1", annotations=ANNOTATIONS)


def test_time_r1_activitynet_order_is_file_order(tmp_path):
    anet = [{"qid": i, "vid": f"v_{i // 2}", "query": f"q{i}", "duration": 100.0, "windows": [[i, i + 1.0]]}
            for i in range(4)]
    path = write_jsonl(tmp_path / "tg.jsonl", [
        {"qid": "activitynet_3", "pred": [3, 4], "target": [3, 4.0], "duration": 100.0, "output_text": "3 to 4"},
    ])
    [record] = convert_file(path, "xiaomi-time-r1", annotations=anet)
    assert record["qid"] == 3 and record["vid"] == "v_1"


# ---------------------------------------------------------------------------------------------------------------
# TimeZero: no per-query file exists
# ---------------------------------------------------------------------------------------------------------------


def test_timezero_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "checkpoint.pkl"
    path.write_bytes(b"\x80\x04")
    with pytest.raises(TempbenchError, match="writes no per-query predictions") as info:
        convert_file(path, "timezero")
    assert "videochat-r1" in (info.value.hint or "")


# ---------------------------------------------------------------------------------------------------------------
# VideoChat-R1 (src_eval/evaluate_grounding.py): per-query log lines
# ---------------------------------------------------------------------------------------------------------------


def test_videochat_r1(tmp_path):
    path = write_jsonl(tmp_path / "cuda:0.jsonl", [
        {"video_path": "/data/Charades_v1/3MSZA.mp4", "query": "person turn a light on.",
         "answer": "<think>light at 24</think><answer>24.10 to 30.20</answer>", "timestamp": [24.1, 30.2],
         "iou": 0.95, "ans": [24.3, 30.4]},
        {"video_path": "/data/Charades_v1/AO8RW.mp4", "query": "person begins to play on a phone.",
         "answer": "no idea", "timestamp": [None, None], "iou": 0.95, "ans": [20.8, 30.0]},
    ])
    records = convert_file(path, "videochat-r1")
    assert [r["vid"] for r in records] == ["3MSZA", "AO8RW"]
    assert records[0]["qid"] == "videochat-r1:1" and records[0]["source"]["target"] == [24.3, 30.4]
    assert parse_span(records[0]["output"], "videochat-r1").span == (24.1, 30.2)
    assert parse_span(records[1]["output"], "videochat-r1").status == "failed"
    assert [r["qid"] for r in convert_file(path, "videochat-r1", annotations=ANNOTATIONS)] == [0, 3]


def test_videochat_r1_errors(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"video_path": "a.mp4", "query": "q", "answer": "1 to 2"}\n{"video_path": \n', encoding="utf-8")
    with pytest.raises(TempbenchError, match=r"log\.jsonl, line 2: not valid JSON"):
        convert_file(path, "videochat-r1")
    path.write_text('{"video_path": "a.mp4", "query": "q", "answer": 5}\n', encoding="utf-8")
    with pytest.raises(TempbenchError, match=r"line 1, field 'answer': expected str, got int"):
        convert_file(path, "videochat-r1")


# ---------------------------------------------------------------------------------------------------------------
# TimeLens (evaluation/eval_dataloader.py): one {"<video>>>><query>>>>[s, e]": {...}} per line
# ---------------------------------------------------------------------------------------------------------------


def timelens_line(video: str, query: str, span: list, answer: str, duration: float, stamps: list) -> dict:
    return {f"{video}>>>{query}>>>{span}": {"timestamps": stamps, "answers": answer, "duration": duration}}


def test_timelens_jsonl_and_json(tmp_path):
    lines = [
        timelens_line("3MSZA.mp4", "person turn a light on", [24.3, 30.4], "The event happens in 23.6 - 30.2 seconds.",
                      30.0, [[24.0, 30.0]]),
        timelens_line("AO8RW.mp4", "person begins to play on a phone", [20.8, 30.0], "unsure", 33.0,
                      [[43.0, 53.0]]),
    ]
    path = write_jsonl(tmp_path / "charades-timelens.jsonl", lines)
    records = convert_file(path, "timelens")
    assert [(r["vid"], r["query"]) for r in records] == [("3MSZA", "person turn a light on"),
                                                         ("AO8RW", "person begins to play on a phone")]
    assert records[0]["source"]["target"] == [24.3, 30.4] and records[0]["source"]["line"] == 1
    # TimeLens' own rule on the raw text reproduces what it stored
    assert list(parse_span(records[0]["output"], "timelens").span) == lines[0][next(iter(lines[0]))]["timestamps"][0]
    assert parse_span(records[1]["output"], "timelens").status == "failed"  # stored as the dummy window

    merged = tmp_path / "charades-timelens.json"
    merged.write_text(json.dumps({k: v for line in lines for k, v in line.items()}), encoding="utf-8")
    assert [r["vid"] for r in convert_file(merged, "timelens")] == ["3MSZA", "AO8RW"]


def test_timelens_spans_without_text_become_windows(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"v.mp4>>>q>>>[1, 2]": {"timestamps": [[1.0, 2.0]]}}])
    [record] = convert_file(path, "timelens")
    assert record["windows"] == [[1.0, 2.0]] and "output" not in record


def test_timelens_errors(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"no separators here": {"answers": "1 - 2"}}])
    with pytest.raises(TempbenchError, match=r"x\.jsonl, line 1.*video>>>query"):
        convert_file(path, "timelens")
    path = write_jsonl(tmp_path / "y.jsonl", [{"v.mp4>>>q>>>[1, 2]": {"duration": 3}}])
    with pytest.raises(TempbenchError, match=r"y\.jsonl, line 1, field 'answers'"):
        convert_file(path, "timelens")


# ---------------------------------------------------------------------------------------------------------------
# TempSamp-R1 (scripts/eval/eval_timelens_bench.py): a JSON list written with indent=2
# ---------------------------------------------------------------------------------------------------------------


def test_tempsamp_r1(tmp_path):
    results = [
        {"video": "3MSZA.mp4", "query": "person turn a light on", "gt_span": [24.3, 30.4], "pred_span": [24, 30],
         "iou": 0.9016, "answer": "<think>...</think><answer>24.2 to 30.4</answer>", "duration": 30.0},
        {"video": "AO8RW.mp4", "query": "person begins to play on a phone", "gt_span": [20.8, 30.0],
         "pred_span": [43.0, 53.0], "iou": 0.0, "answer": "", "duration": 33.0, "error": "load_failed"},
    ]
    path = tmp_path / "results_charades-timelens_shard0.json"
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    records = convert_file(path, "tempsamp-r1", annotations=ANNOTATIONS)
    assert [r["qid"] for r in records] == [0, 3]
    assert list(parse_span(records[0]["output"], "tempsamp-r1").span) == results[0]["pred_span"]
    assert records[1]["error"] == "tempsamp-r1: load_failed" and "output" not in records[1]

    path.write_text(json.dumps([{"video": "a.mp4", "query": "q"}]), encoding="utf-8")
    with pytest.raises(TempbenchError, match=r"field '\[0\]\.answer'"):
        convert_file(path, "tempsamp-r1")
    path.write_text(json.dumps({"not": "a list"}), encoding="utf-8")
    with pytest.raises(TempbenchError, match="expected a JSON list"):
        convert_file(path, "tempsamp-r1")


# ---------------------------------------------------------------------------------------------------------------
# Common behaviour
# ---------------------------------------------------------------------------------------------------------------


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(UsageError, match="known: lmms-eval"):
        convert_file(tmp_path / "x.jsonl", "trace")
    with pytest.raises(TempbenchError, match="no such file"):
        convert_file(tmp_path / "missing.jsonl", "videochat-r1")
    assert set(SOURCES) == {"lmms-eval", "xiaomi-time-r1", "timezero", "videochat-r1", "timelens", "tempsamp-r1"}


def test_string_qids_never_look_like_integers(tmp_path):
    path = write_jsonl(tmp_path / "log.jsonl", [
        {"video_path": "a.mp4", "query": "q", "answer": "1 to 2", "timestamp": [1, 2], "iou": 1, "ans": [1, 2]}])
    [record] = convert_file(path, "videochat-r1")
    with pytest.raises(ValueError):
        int(record["qid"])


def test_normalize_query():
    assert normalize_query("  Person turn a light on.  ") == normalize_query("person  turn a light on")
    assert normalize_query("a.b") == "a.b"


def test_time_r1_order_on_the_official_charades_test_file(tmp_path):
    """Time-R1 numbers Charades-STA queries after grouping the official lines by video; a file written in that order,
    with the ground truth Time-R1 stores, must resolve to distinct qids whose windows agree on every line (the
    converter checks each one)."""
    from conftest import require_shared_data

    source = require_shared_data("charades_sta", "charades_sta_test.txt")
    annotations = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        meta, sentence = line.split("##")
        vid, start, end = meta.split(" ")
        annotations.append({"qid": len(annotations), "vid": vid, "query": sentence.strip(),
                            "duration": 0.0, "windows": [[float(start), float(end)]]})
    grouped: dict[str, list[dict]] = {}
    for ann in annotations:  # Time-R1's loader: a dict keyed by video, in order of first appearance
        grouped.setdefault(ann["vid"], []).append(ann)
    rows = [{"qid": f"charades_{k}", "pred": [None, None], "target": ann["windows"][0], "duration": 30.0,
             "output_text": "x"} for k, ann in enumerate(a for anns in grouped.values() for a in anns)]
    path = write_jsonl(tmp_path / "tg_0_1.jsonl", rows[::-1])
    records = convert_file(path, "xiaomi-time-r1", annotations=annotations)
    assert len(records) == len(annotations) == 3720
    assert sorted(r["qid"] for r in records) == list(range(3720))
    # the official test file lists each video's queries on consecutive lines, so Time-R1's k is tempbench's qid
    assert all(r["qid"] == int(r["source"]["id"].split("_")[1]) for r in records)
