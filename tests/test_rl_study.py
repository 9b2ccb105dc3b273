"""benchmarks/rl_study.py (issue 15: TempSamp-R1 vs GRPO vs SFT, with seeds) end to end in its CPU smoke mode: every
arm with 2 seeds, the hybrid CoT run, a rerun, the start's evaluation, the archive; resuming from the archive;
then benchmarks/rl_study_report.py: the results JSON, the paired tests, the figures, the docs block. Plus the
scheduler's and the verdict's rules on made-up inputs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "benchmarks" / "rl_study.py"
REPORT = REPO / "benchmarks" / "rl_study_report.py"
ARMS = ("grpo", "tempsamp-none", "tempsamp-downscale", "tempsamp-anchor", "tempsamp-shaping", "sft")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _env():
    return {k: v for k, v in os.environ.items() if k not in ("TEMPBENCH_HOME", "RANK", "WORLD_SIZE", "LOCAL_RANK")}


def _pinned_start(folder: Path) -> Path:
    """The study's start folder as its pinned commit holds it (what `--start` is for once the model is replaced)."""
    rl = _load(STUDY, "rl_study_start_files")
    folder.mkdir(parents=True)
    for f in rl.START_FILES:
        blob = subprocess.run(["git", "show", f"{rl.START_COMMIT}:{rl.START_DIR}/{f}"], cwd=REPO, capture_output=True,
                              check=True).stdout
        (folder / f).write_bytes(blob)
    return folder


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    root = tmp_path_factory.mktemp("rlstudy")
    start = _pinned_start(root / "start")  # the shipped tiny-synthetic has been replaced since the study
    cmd = [sys.executable, str(STUDY), "study", "--smoke", "--out", str(root / "out"), "--work", str(root / "work"),
           "--tag", "smoke", "--extra", "hybrid-cot", "--rerun", "grpo:0", "--parallel", "2", "--workers", "2",
           "--start", str(start)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    seconds = time.perf_counter() - t0
    (root / "docs").mkdir()
    docs = root / "docs" / "training.md"
    docs.write_text((REPO / "docs" / "training.md").read_text())
    rep = subprocess.run([sys.executable, str(REPORT), "--runs", str(root / "out"), "--prestudy", str(root / "none"),
                          "--json", str(root / "report" / "rl_study_synthetic.json"), "--figures",
                          str(root / "report"), "--docs", str(docs), "--markdown", str(root / "report" / "block.md")],
                         capture_output=True, text=True, env=_env(), timeout=300, cwd=root)
    assert rep.returncode == 0, rep.stdout[-3000:] + rep.stderr[-3000:]
    return root, seconds


def test_study_writes_three_small_files_with_every_run(smoke):
    root, seconds = smoke
    files = sorted(p.name for p in (root / "out").iterdir())
    assert files == ["rl_study_smoke.json", "rl_study_smoke.tar.gz", "rl_study_smoke_log.txt"]
    assert all((root / "out" / f).stat().st_size < 16 << 20 for f in files)
    status = json.loads((root / "out" / "rl_study_smoke.json").read_text())
    assert status["produced_by"] == "benchmarks/rl_study.py" and status["final"] is True and status["left"] == []
    names = ["start"] + [f"{a}-s{s}" for s in (0, 1) for a in ARMS] + ["hybrid-cot-s0", "grpo-s0-rerun"]
    assert status["plan"] == names
    assert all(status["runs"][n]["state"] == "complete" for n in names)
    with tarfile.open(root / "out" / "rl_study_smoke.tar.gz") as tar:
        members = set(tar.getnames())
        summary = json.loads(tar.extractfile("runs/tempsamp-anchor-s1/summary.json").read())
    assert {"study.json", "log.txt"} <= members
    for n in names:
        assert f"runs/{n}/summary.json" in members and f"runs/{n}/eval/heldout/predictions.jsonl" in members
        assert f"runs/{n}/eval/val/details.jsonl.gz" in members
        if n != "start":
            assert f"runs/{n}/train/train_log.jsonl" in members and f"runs/{n}/train/train_config.toml" in members
    assert "runs/hybrid-cot-s0/eval/heldout-cot/result.json" in members
    assert not any(m.endswith(".safetensors") for m in members)  # no weights leave the machine
    assert summary["complete"] and summary["train"]["global_step"] == summary["settings"]["steps"] == 2
    assert summary["produced_by"] == "benchmarks/rl_study.py" and summary["deterministic"] is True
    print(f"smoke study: {seconds:.0f} s")


def test_the_trainer_ran_each_arm_as_configured(smoke):
    import tomllib

    root, _ = smoke
    runs = root / "work" / "runs"
    want = {"grpo": ("grpo", None), "tempsamp-none": ("tempsamp", "none"), "sft": ("sft", None),
            "tempsamp-shaping": ("tempsamp", "shaping")}
    orders = []
    for arm, (method, control) in want.items():
        cfg = tomllib.loads((runs / f"{arm}-s1" / "train" / "train_config.toml").read_text())
        assert cfg["method"] == method and cfg["seed"] == 1 and cfg["schedule"]["cot"] == "plain"
        assert cfg["rollout"]["group_size"] == 3 and cfg["optim"]["lr"] == 1e-4 and cfg["loss"]["beta"] == 0.04
        if control:
            assert cfg["advantage"]["control"] == control
        log = [json.loads(x) for x in (runs / f"{arm}-s1" / "train" / "train_log.jsonl").read_text().splitlines()]
        orders.append([r["qids"] for r in log])
        if method != "sft":
            assert all(0 <= r["zero_groups"] <= 1 for r in log)
    assert all(o == orders[0] for o in orders)  # the same queries in the same order for every arm of a seed
    hybrid = tomllib.loads((runs / "hybrid-cot-s0" / "train" / "train_config.toml").read_text())
    assert hybrid["schedule"]["cot"] == "hybrid"
    log = [json.loads(x) for x in (runs / "hybrid-cot-s0" / "train" / "train_log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["plain", "cot"]


def test_done_runs_are_skipped(smoke, tmp_path):
    root, _ = smoke
    proc = subprocess.run([sys.executable, str(STUDY), "study", "--smoke", "--out", str(tmp_path / "o"), "--work",
                           str(root / "work"), "--tag", "again", "--extra", "hybrid-cot", "--rerun", "grpo:0",
                           "--done", str(root / "out"), "--start", str(root / "start")], capture_output=True, text=True,
                          env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nothing to run" in proc.stdout
    status = json.loads((tmp_path / "o" / "rl_study_again.json").read_text())
    assert len(status["already_done"]) == 15 and status["left"] == [] and status["runs"] == {}


def test_report_json_has_methods_seeds_metrics_and_tests(smoke):
    root, _ = smoke
    data = json.loads((root / "report" / "rl_study_synthetic.json").read_text())
    assert data["produced_by"] == "benchmarks/rl_study_report.py" and data["complete"] is True
    assert list(data["methods"]) == list(ARMS)
    for arm in ARMS:
        seeds = data["methods"][arm]["seeds"]
        assert sorted(seeds) == ["0", "1"]
        for v in seeds.values():
            assert v["heldout"]["n"] == 3 and set(v["heldout"]["ci95"]) == {"R1@0.5", "R1@0.7", "mIoU"}
            assert "mIoU" in v["val"]["metrics"] and v["train"]["steps"] == 2
        assert data["methods"][arm]["mean"]["heldout"]["mIoU"]["n_seeds"] == 2
    fam = data["comparisons"]["tempsamp_vs_grpo"]
    assert [c["b"] for c in fam] == list(ARMS[1:5]) and all(c["a"] == "grpo" for c in fam)
    m = fam[0]["metrics"]["mIoU"]
    assert set(m["per_seed"]) == {"0", "1"} and m["pooled"]["pairs"] == 6 and 0 < m["pooled"]["p_holm"] <= 1
    assert len(data["comparisons"]["vs_start"]) == 6 and data["selection"]["chosen"] in ARMS[1:5]
    hy = data["hybrid_cot"]
    assert set(hy["evals"]) == {"heldout", "heldout-cot", "val", "val-cot"}
    assert hy["evals"]["heldout-cot"]["prompt"] == "cot" and hy["cot_from_step"] == 2
    rerun = data["reruns"][0]
    assert rerun["run"] == "grpo-s0-rerun" and rerun["of"] == "grpo-s0"
    # on a CPU a rerun is exact: the same answers, the same per-step curves
    assert rerun["identical_outputs"] == rerun["n"] == 3
    assert all(c["max_abs_diff"] == 0 for c in rerun["curves"].values())
    assert all(v["difference"] == 0 for v in rerun["heldout"].values())
    assert data["verdict"]["status"] == "final" and data["verdict"]["paragraphs"]


def test_report_figures_and_docs_block(smoke):
    root, _ = smoke
    for name in ("rl_study_curves.png", "rl_study_heldout.png", "rl_study_hybrid_cot.png"):
        assert (root / "report" / name).stat().st_size > 10_000
    block = (root / "report" / "block.md").read_text()
    docs = (root / "docs" / "training.md").read_text()
    assert block in docs and docs.count("<!-- rl-study:begin -->") == 1
    assert "Generated by `benchmarks/rl_study_report.py`" in block and "| TempSamp-R1 shaping − GRPO | mIoU |" in block
    assert "**Rerun** of grpo-s0" in block and "**Hybrid CoT**" in block
    original = (REPO / "docs" / "training.md").read_text()
    assert docs.split("<!-- rl-study:begin -->")[0] == original.split("<!-- rl-study:begin -->")[0]


# ------------------------------------------------------------------------------------------------ the rules


def test_scheduler_preempts_the_lowest_priority_run_when_a_run_would_end_late():
    rl = _load(STUDY, "rl_study_under_test")
    now = 1000.0

    def running(name, priority, history, steps=100):
        return rl.Running(rl.RunPlan(name, "grpo", 0, "rl", priority), proc=None, run_dir=Path("."), started=0.0,
                          steps=steps, history=history)

    fast = [(now - 20 + t, 10 + t) for t in range(21)]  # 1 step/s, at step 30: 70 s + the reserve left
    slow = [(now - 20 + t, 10 + t // 4) for t in range(21)]  # 0.25 step/s: 360 s left
    a, b = running("a", 1, list(fast)), running("b", 2, list(fast))
    assert rl.choose_preemption([a, b], now, deadline=now + 400) is None
    assert rl.choose_preemption([a, b], now, deadline=now + 100) is b
    c = running("c", 0, list(slow))
    assert rl.choose_preemption([c, a, b], now, deadline=now + 200) is b  # c is late, b has the lowest priority
    assert rl.predicted_end(running("d", 3, [(now, 1)]), now) is None  # unknown until a few steps are logged
    est = rl.estimate_duration(rl.RunPlan("e", "sft", 0, "sft", 5), [a], {}, 100)
    assert est is None  # no SFT run measured yet: admitted
    est = rl.estimate_duration(rl.RunPlan("f", "tempsamp-none", 0, "rl", 6), [a, c], {}, 100)
    assert est == pytest.approx(20 + 100 / 0.25 + rl.EVAL_RESERVE_S["rl"], rel=0.05)  # the slowest current rate


def test_plan_order_and_names():
    rl = _load(STUDY, "rl_study_under_test")
    plan = rl.make_plan(["grpo", "sft"], [0, 1], ["hybrid-cot"], [("grpo", 0)], start_eval=True)
    assert [p.name for p in plan] == ["start", "grpo-s0", "sft-s0", "grpo-s1", "sft-s1", "hybrid-cot-s0",
                                      "grpo-s0-rerun"]
    assert [p.kind for p in plan] == ["eval", "rl", "sft", "rl", "sft", "hybrid", "rl"]
    assert plan[-1].rerun_of == "grpo-s0" and [p.priority for p in plan] == list(range(7))
    more = rl.make_plan(["grpo", "sft"], [0], ["hybrid-cot"], [], start_eval=False, more_seeds=[3])
    assert [p.name for p in more] == ["grpo-s0", "sft-s0", "hybrid-cot-s0", "grpo-s3", "sft-s3"]
    with pytest.raises(SystemExit):
        rl.make_plan(["grpo"], [0, 1], [], [], start_eval=False, more_seeds=[1])
    s = rl.study_settings(False)
    assert s["steps"] == 64 and s["group"] == 4 and s["n_train"] == 256 and s["batch"] == 8


def _comparison(diffs, pooled, p_holm):
    per = {str(i): {"difference": d} for i, d in enumerate(diffs)}
    return {"a": "grpo", "b": "tempsamp-shaping", "metrics": {"mIoU": {
        "per_seed": per, "pooled": {"difference": pooled, "ci95": [pooled - 1, pooled + 1], "p": p_holm,
                                    "p_holm": p_holm},
        "across_seeds": {"n_seeds": len(diffs), "positive": sum(d > 0 for d in diffs),
                         "negative": sum(d < 0 for d in diffs), "sd": 1.0}}}}


def test_verdict_rules():
    rep = _load(REPORT, "rl_study_report_under_test")
    assert rep.judge(_comparison([2.0, 1.5, 3.0], 2.2, 0.01)) == "better"
    assert rep.judge(_comparison([2.0, -0.5, 3.0], 1.5, 0.01)) == "no detectable difference"  # one seed disagrees
    assert rep.judge(_comparison([2.0, 1.5, 3.0], 2.2, 0.2)) == "no detectable difference"
    assert rep.judge(_comparison([-2.0, -1.5, -3.0], -2.2, 0.001)) == "worse"
    assert rep.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert rep.seed_level([1.0, 2.0, 3.0])["t_ci95"] == pytest.approx([2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5])
    assert rep.seeds_needed(_comparison([1.0, 2.0, 3.0], 2.0, 0.1), 2.7, "mIoU") == 2
    empty = {"methods": {a: {"seeds": {}} for a in ARMS}, "missing": ["grpo-s0"], "comparisons": {}}
    assert rep.verdict(empty)["status"] == "pending"


# ------------------------------------------------------------------------------------------------ the pinned start


def test_start_is_pinned_and_reachable_in_git(tmp_path):
    """The start folder is built only from the pinned files; a replaced shipped model stops the study with a one-line
    error that names the commit holding the pinned weights; --start with the extracted weights then works."""
    rl = _load(STUDY, "rl_study_under_test")
    package = REPO / rl.START_DIR
    if any(rl.sha256_of(package / f) != h for f, h in rl.START_FILES.items() if (package / f).is_file()):
        shipped = _pinned_start(tmp_path / "pinned")  # the shipped model was replaced: rebuild the pinned one
    else:
        shipped = package
    fake = tmp_path / "shipped"
    fake.mkdir()
    for f in rl.START_FILES:
        (fake / f).write_bytes((shipped / f).read_bytes())
    folder, info = rl.prepare_start(None, tmp_path / "w1", shipped=fake)
    assert sorted(p.name for p in folder.iterdir()) == sorted(rl.START_FILES)
    assert info["commit"] == rl.START_COMMIT and info["sha256"] == rl.START_FILES
    weights = tmp_path / "start.safetensors"
    weights.write_bytes((fake / "model.safetensors").read_bytes())
    (fake / "model.safetensors").write_bytes(b"a better model")
    with pytest.raises(SystemExit) as e:
        rl.prepare_start(None, tmp_path / "w2", shipped=fake)
    msg = str(e.value)
    assert "\n" not in msg and f"git show {rl.START_COMMIT}:{rl.START_DIR}/model.safetensors" in msg
    assert "--start" in msg
    folder, info = rl.prepare_start(weights, tmp_path / "w3", shipped=fake)
    assert rl.sha256_of(folder / "model.safetensors") == rl.START_FILES["model.safetensors"]
    assert info["source"] == str(weights)
    (fake / "config.json").write_text("{}")  # a replaced configuration: the whole folder must come from git
    with pytest.raises(SystemExit) as e:
        rl.prepare_start(weights, tmp_path / "w4", shipped=fake)
    assert f"git archive {rl.START_COMMIT} {rl.START_DIR}" in str(e.value)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"x")
    with pytest.raises(SystemExit):
        rl.prepare_start(bad, tmp_path / "w5", shipped=shipped)


def test_pinned_start_is_in_git_history():
    rl = _load(STUDY, "rl_study_under_test")
    proc = subprocess.run(["git", "show", f"{rl.START_COMMIT}:{rl.START_DIR}/model.safetensors"], cwd=REPO,
                          capture_output=True)
    if proc.returncode != 0:
        pytest.skip("no git history here (a copy of the tree)")
    import hashlib

    assert hashlib.sha256(proc.stdout).hexdigest() == rl.START_FILES["model.safetensors"]
