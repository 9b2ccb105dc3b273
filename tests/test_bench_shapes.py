"""benchmarks/bench_shapes_gpu.py (issue 16, item 4): the FLOP and byte counts, and the whole benchmark in its --tiny CPU
mode (tiny float32 Qwen2.5-VL, both scenarios, both answer lengths, the real runner with stage times)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_shapes_gpu.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_shapes_gpu", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_shapes_gpu"] = mod  # its dataclass looks its module up
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("bench_shapes_gpu", None)
        sys.path.remove(str(SCRIPT.parent))


def shape(bench):
    return bench.ModelShape(vision=100, merger=40, body=1000, head=50, layers=2, hidden=8, kv_width=4,
                            bytes_per_param=2)


def test_flops_count_each_prefix_once_and_attention_causally(bench):
    m = shape(bench)
    # 3 new tokens after 2 cached: pairs = 3*2 + (1+2+3) = 12; matmuls 2*1000*3, the head once
    assert bench.flops_prefill(m, 3, past=2) == 2 * 1000 * 3 + 2 * 50 + 4 * 2 * 8 * 12
    # 2 steps over a 5-token prompt: pairs = 6 + 7 = 13; the head on every step
    assert bench.flops_decode(m, 5, 2) == 2 * 1050 * 2 + 4 * 2 * 8 * 13
    assert bench.flops_vision(m, 8) == 2 * 100 * 8 + 2 * 40 * 2
    batch = {"rows": 3, "prefix_tokens": [10, 20], "patches": [4, 8], "group_of": [0, 0, 1],
             "suffix_tokens": [3, 4, 5], "new_tokens": 3}
    f = bench.flops_of_batch(m, batch)
    assert f["prefix"] == bench.flops_prefill(m, 10) + bench.flops_prefill(m, 20)  # once per video, not per query
    assert f["suffix"] == sum(bench.flops_prefill(m, s, p) for s, p in ((3, 10), (4, 10), (5, 20)))
    assert f["decode"] == sum(bench.flops_decode(m, c, 2) for c in (13, 14, 25))
    assert f["vision"] == bench.flops_vision(m, 4) + bench.flops_vision(m, 8)
    # K and V of 2 layers, 4 wide, 2 bytes: prefix + suffix + half the answer per row
    b = bench.step_bound(m, batch, bandwidth=1e3)
    assert b["kv_bytes"] == 2 * 2 * 4 * 2 * (14.5 + 15.5 + 26.5)
    assert b["bound_seconds"] == (1050 * 2 + b["kv_bytes"]) / 1e3


def test_fixed_subset_and_merge(bench):
    assert bench.spaced(list(range(10)), 4) == [1, 3, 6, 8]
    assert bench.spaced([1, 2], 5) == [1, 2]
    merged = bench.merge({"scenario": "charades", "short": 1, "cot": 2}, [{"scenario": "anet", "short": 3}])
    assert merged["short"] == 1 and merged["activitynet"]["short"] == 3


def test_merge_a_cut_command_with_the_missing_piece(bench):
    """A command cut by its time limit during ActivityNet's cot (no `activitynet.cot`), then a command that ran only
    that piece: one file with both scenarios and both answer lengths; nothing of the first file is lost."""
    rates1, rates2 = {"peak_tflops_measured": 800.0}, {"peak_tflops_measured": 790.0}
    first = {"scenario": "charades", "produced_by": "cmd1", "device_rates": rates1, "short": {"q": 1}, "cot": {"q": 2},
             "activitynet": {"scenario": "anet", "produced_by": "cmd1", "device_rates": rates1, "queries": 55,
                             "short": {"q": 3}},
             "command_seconds": 492.0, "complete": False}
    second = {"scenario": "anet", "produced_by": "cmd2", "device_rates": rates2, "queries": 55, "cot": {"q": 4},
              "command_seconds": 186.0, "complete": True}
    m = bench.merge_files([first, second], note="cmd1 was killed at its limit")
    assert m["short"] == {"q": 1} and m["cot"] == {"q": 2}
    anet = m["activitynet"]
    assert anet["short"] == {"q": 3} and anet["produced_by"] == "cmd1"  # the cut command's piece is kept
    assert anet["cot"] == {"q": 4, "produced_by": "cmd2", "device_rates": rates2}  # relative to its own run
    assert m["complete"] is True and m["note"] == "cmd1 was killed at its limit"
    assert [(c["produced_by"], c["complete"], c["holds"]) for c in m["commands"]] == [
        ("cmd1", False, ["charades.short", "charades.cot", "anet.short"]), ("cmd2", True, ["anet.cot"])]
    assert "command_seconds" not in m and "commands" not in anet and first["activitynet"].get("cot") is None
    # without the missing piece, the merged file says it is incomplete
    assert bench.merge_files([first])["complete"] is False
    # a scenario in the primary position merges too (charades short and cot as separate commands)
    one = bench.merge_files([{"scenario": "charades", "produced_by": "a", "short": {"q": 1}},
                             {"scenario": "charades", "produced_by": "b", "cot": {"q": 2}}])
    assert one["short"] == {"q": 1} and one["cot"]["q"] == 2 and one["cot"]["produced_by"] == "b"


def test_tiny_benchmark_end_to_end(tmp_path):
    out = tmp_path / "shapes.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--scenario", "charades,anet", "--work",
                           str(tmp_path / "work"), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    d = json.loads(out.read_text())
    for res in (d, d["activitynet"]):
        per_video = {int(k): v for k, v in res["queries_per_video"].items()}
        assert sum(k * v for k, v in per_video.items()) == res["queries"]
        for name in ("short", "cot"):
            r = res[name]
            assert r["queries"] == res["queries"] and r["new_tokens"] == {"short": 4, "cot": 8}[name]
            assert set(r["queries_per_s"]) == {"stock_loop", "tempbench_run"}
            assert r["speedup_vs_stock_loop"] == pytest.approx(
                r["queries_per_s"]["tempbench_run"] / r["queries_per_s"]["stock_loop"])
            assert 0 < r["flop_share"]["prefill"] and 0 < r["flop_share"]["end_to_end"]
            assert r["stage_seconds"]["batches"] >= 2  # the runner's own batches, recorded (stage_times=true)
            assert r["flops"]["prefix"] > 0 and r["flops"]["suffix"] > 0 and r["flops"]["decode"] > 0
            step = r["decode_step_batch16"]
            assert step["step_seconds_median"] > 0 and step["bound_seconds"] > 0
            # float32: sharing changes no token id
            assert r["outputs_identical"]["all"] and r["outputs_identical"]["queries"] >= 2
        assert set(res["short"]["decode_step_batch16"]["by_backend_first_batch"]) == {"dynamic", "static", "cuda-graph"}
    assert d["complete"] is True
    assert d["device_rates"]["peak_tflops_measured"] > 0 and d["device_rates"]["bandwidth_gb_s_measured"] > 0
