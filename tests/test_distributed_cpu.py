"""Several processes on CPU (gloo): the code paths of benchmarks/multi_gpu.py, with the tiny float32 model.

- a TempSamp-R1 step under DDP (2 processes, one query each) gives the same loss, mean GT log-prob and global
  gradient norm as one process holding both queries, before and after an optimizer step;
- `tempbench run` data-parallel (2 processes, the runner's shard files + rank-0 merge) predicts exactly what one
  process predicts;
- with DeepSpeed installed: the same step under ZeRO-3 (skipped with a reason otherwise).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "multi_gpu.py"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""})
    return env


def _run(args: list[str], procs: int = 1, timeout: int = 240) -> None:
    cmd = [sys.executable]
    if procs > 1:
        cmd += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd += [str(SCRIPT), *args]
    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-6000:]}"


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("mgpu")
    _run(["prepare", "--work", str(w), "--videos", "6", "--small"])
    return w


TRAIN = ["--check-steps", "2", "--steps", "1", "--new-tokens", "5", "--lr", "1e-3", "--group", "4"]


def _train(work: Path, name: str, procs: int, *extra: str) -> dict:
    out = work / f"{name}.json"
    _run(["train", "--work", str(work), "--out", str(out), *TRAIN, *extra], procs=procs)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def single_full(work) -> dict:
    return _train(work, "single-full", 1, "--mode", "full")


def _assert_match(ref: dict, dist: dict, steps: int = 2) -> None:
    assert dist["world_size"] == 2 and ref["world_size"] == 1
    assert len(ref["check"]) == len(dist["check"]) == steps
    for a, b in zip(ref["check"], dist["check"]):
        # float32 on CPU: only the order of the sums differs
        assert b["gt_logp"] == pytest.approx(a["gt_logp"], rel=1e-5)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3, abs=1e-7)
        # every rank sees the same (all-reduced) gradient norm, but its own loss
        assert len(set(b["grad_norm_per_rank"])) == 1 and len(b["loss_per_rank"]) == 2
    # the update moved the model: the GT log-prob changed and the KL to the reference is no longer 0
    assert ref["check"][1]["gt_logp"] != ref["check"][0]["gt_logp"]
    assert ref["check"][0]["kl"] == 0.0 and ref["check"][1]["kl"] > 0
    # the sampled (timed) steps ran on every rank
    assert dist["timed"] and dist["timed"][0]["gen_tokens"] > 0


def test_ddp_step_matches_single_process(work, single_full):
    ddp = _train(work, "ddp-full", 2, "--mode", "full")
    assert ddp["distributed_type"] == "DistributedType.MULTI_CPU"
    _assert_match(single_full, ddp)
    # the comparison the GPU benchmark writes says the same
    sys.path.insert(0, str(SCRIPT.parent))
    from multi_gpu import compare_train

    assert compare_train(single_full, ddp, rtol=1e-4)["match"] is True
    # and it can fail: a run with another learning rate does not match at step 2
    other = json.loads(json.dumps(ddp))
    other["check"][1]["gt_logp"] += 0.01
    assert compare_train(single_full, other, rtol=1e-4)["match"] is False


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                    reason="deepspeed is not installed (optional; pip install deepspeed to test ZeRO-3 on CPU)")
def test_zero3_step_matches_single_process(work, single_full):
    z3 = _train(work, "zero3-full", 2, "--mode", "full", "--deepspeed", "zero3")
    assert z3["distributed_type"] == "DistributedType.DEEPSPEED"
    _assert_match(single_full, z3)


def test_runner_shards_merge_like_one_process(work):
    one, two = work / "run-1", work / "run-2"
    _run(["infer", "--work", str(work), "--run-dir", str(one), "--new-tokens", "6", "--workers", "1"])
    _run(["infer", "--work", str(work), "--run-dir", str(two), "--new-tokens", "6", "--workers", "1"], procs=2)
    for i in range(2):  # the runner's shard files and done markers, merged by rank 0
        assert (two / f"predictions.rank{i}-of-2.jsonl").exists() and (two / f"rank{i}-of-2.done").exists()
    shards = [[json.loads(x)["qid"] for x in (two / f"predictions.rank{i}-of-2.jsonl").read_text().splitlines()]
              for i in range(2)]
    assert shards == [[0, 2, 4], [1, 3, 5]]
    a = [json.loads(x) for x in (one / "predictions.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (two / "predictions.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in b] == list(range(6))
    assert [r["output"] for r in a] == [r["output"] for r in b]
    run = json.loads((two / "run.json").read_text())
    assert run["execution"]["world_size"] == 2 and run["outcome"]["coverage"]["queries"] == 6
    assert json.loads((two / "result.json").read_text())["n"] == 6
    sys.path.insert(0, str(SCRIPT.parent))
    from multi_gpu import compare_infer

    cmp = compare_infer(one, two)
    assert cmp["token_agreement"] == 1.0 and cmp["text_agreement"] == 1.0 and not cmp["missing_or_extra_qids"]
    assert cmp["queries_per_s_ratio"] > 0
