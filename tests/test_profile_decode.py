"""benchmarks/profile_decode_gpu.py in its --tiny CPU mode: every part runs and the JSON holds what the GPU run
reports (step times and bound, token agreement of stock and grouped attention, profiles, attention alone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]


def test_profile_decode_tiny(tmp_path):
    out = tmp_path / "profile.json"
    env_home = tmp_path / "home"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile_decode_gpu.py"), "--tiny", "--out",
                           str(out)], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "TEMPBENCH_HOME": str(env_home)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["complete"] and r["tiny"] and r["versions"]["torch"] and "transformers_sdpa_packs_gqa" in r["versions"]
    assert set(r["variants"]) == {"static/stock", "static/grouped"} and len(r["skipped"]) == 2
    for v in r["variants"].values():
        assert len(v["steps_ms"]) == r["settings"]["steps"] and v["median_ms"] > 0
    assert r["bound"]["bound_ms"] > 0 and r["bound"]["kv_bytes_read"] >= r["bound"]["kv_bytes"]
    # float32: the grouped attention gives the stock step's tokens
    a = r["agreement"]["static/stock vs static/grouped"]
    assert a["rows_identical"] == a["rows"] == r["settings"]["rows"]
    assert all(p["top"] and p["table"] for p in r["profiles"].values())
    assert "error" not in r["attention_alone"]["cases"]["grouped"]
    assert max(c["max_abs_diff_vs_matmul"] for c in r["attention_alone"]["cases"].values() if "ms" in c) < 1e-5
    assert "static/grouped" in proc.stdout


def test_profile_vision_tiny(tmp_path):
    """benchmarks/profile_vision_gpu.py --tiny: the three variants run on the same batch and agree with the stock
    tower to float32 rounding; the patch embedding as a matmul equals the Conv3d."""
    out = tmp_path / "vision.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "profile_vision_gpu.py"), "--tiny", "--out",
                           str(out)], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "TEMPBENCH_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["complete"] and r["batch"]["patches"] > 0 and r["batch"]["flops_matmul"] > 0
    assert set(r["variants"]) == {"stock", "grouped_attention", "fast"}
    for name in ("grouped_attention", "fast"):
        assert r["variants"][name]["max_abs_diff_vs_stock"] < 1e-5
    assert r["patch_embed"]["max_abs_diff"] < 1e-5 and r["patch_embed"]["matmul"]["median_s"] > 0
