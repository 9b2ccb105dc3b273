"""The runner (`tempbench run` / `tempbench.runner.run`): run folder contents, resume after SIGKILL, error rows for
missing and corrupt videos, data-parallel shards, CLI errors, and the baselines on the official annotations.

Models: the tiny float32 Qwen2.5-VL built locally (`tiny_model` fixture, linked into each test's cache under the
name the `tiny-qwen2.5-vl` zoo alias looks for) on the synthetic task (real H.264 mp4 files, decoded by PyAV).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.runner import read_done, run

REPO = Path(__file__).resolve().parents[1]
N_SYNTH = 16  # queries in the synthetic test split
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


# ---------------------------------------------------------------------------------------------------------------
# caches shared by the tests: generated once, linked into each test's own TEMPBENCH_HOME


def link_cache(home: Path, synthetic_split: Path, tiny_model: Path | None = None) -> Path:
    """Make `home` a tempbench cache holding the synthetic test split (and the tiny model) without rebuilding."""
    (home / "synthetic").mkdir(parents=True, exist_ok=True)
    (home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    if tiny_model is not None:
        (home / "models").mkdir(parents=True, exist_ok=True)
        (home / "models" / tiny_model.name).symlink_to(tiny_model, target_is_directory=True)
    return home


@pytest.fixture
def syn_home(tb_home, synthetic_split, monkeypatch) -> Path:
    """This test's cache with the synthetic split (for baselines: no model, no torch needed)."""
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    return link_cache(tb_home, synthetic_split)


@pytest.fixture
def home(syn_home, tiny_model) -> Path:
    """This test's cache with the synthetic split and the tiny model (what `--model tiny-qwen2.5-vl` loads)."""
    (syn_home / "models").mkdir()
    (syn_home / "models" / tiny_model.name).symlink_to(tiny_model, target_is_directory=True)
    return syn_home


def cli_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    env.update({"TEMPBENCH_HOME": str(home), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def tiny_cmd(out: Path, *more: str, tokens: int = 48) -> list[str]:
    """`python -m tempbench run` with the tiny model on the synthetic task, batch size 1 (deterministic)."""
    return [sys.executable, "-m", "tempbench", "run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic",
            "--out", str(out), "--batch-size", "1", "--gen", f"max_new_tokens={tokens}", "--no-progress", *more]


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def outputs(path: Path) -> dict[int, str]:
    rows = rows_of(path)
    assert len({r["qid"] for r in rows}) == len(rows), "duplicate qids"
    return {r["qid"]: r["output"] for r in sorted(rows, key=lambda r: r["qid"])}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synthetic_split, tiny_model) -> dict[int, str]:
    """qid -> output of one uninterrupted CLI run (batch size 1), in a subprocess like the runs it is compared to."""
    base = tmp_path_factory.mktemp("reference")
    home = link_cache(base / "home", synthetic_split, tiny_model)
    proc = subprocess.run(tiny_cmd(base / "run"), env=cli_env(home), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = outputs(base / "run" / "predictions.jsonl")
    assert sorted(out) == list(range(N_SYNTH))
    assert len(set(out.values())) > 1  # the inputs matter: outputs differ between queries
    return out


# ---------------------------------------------------------------------------------------------------------------
# 1. end to end: the run folder


def test_end_to_end_run_folder_and_table(home, tmp_path, monkeypatch):
    import jsonschema

    import tempbench.video as video
    from tempbench.io import sha256_bytes
    from tempbench.models import zoo
    from tempbench.prompts import prompt_sha256
    from tempbench.results import load_schema, read_details

    decoded = []
    real_decode = video.decode_video

    def counting_decode(path, settings):
        clip = real_decode(path, settings)
        decoded.append((Path(path), clip))
        return clip

    monkeypatch.setattr(video, "decode_video", counting_decode)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--out", str(out),
                                    "--gen", "max_new_tokens=16", "--no-progress", "--batch-size", "4",
                                    "--prefetch", "thread"])  # threads: the decode spy sees every call
    assert res.exit_code == 0, res.output
    # the table and the counts line
    for text in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "95% CI", f"{N_SYNTH} predictions", "run folder"):
        assert text in res.output

    # every video was really decoded from its mp4, at the zoo's sampling for the tiny model (2 fps)
    assert sorted(p.name for p, _ in decoded) == sorted(f"synth_0_{i:04d}.mp4" for i in range(N_SYNTH))
    for path, clip in decoded:
        assert path.suffix == ".mp4" and clip.frames.ndim == 4 and clip.frames.dtype == np.uint8
        assert len(clip.timestamps) == len(clip.frames) >= 4
        assert np.all(np.diff(clip.timestamps) > 0) and clip.timestamps[-1] <= clip.duration

    preds = rows_of(out / "predictions.jsonl")
    assert [r["qid"] for r in preds] == list(range(N_SYNTH))
    annotations = rows_of(home / "synthetic" / "test" / "annotations.jsonl")
    assert [r["vid"] for r in preds] == [a["vid"] for a in annotations]
    assert all(isinstance(r["output"], str) and "error" not in r for r in preds)

    info = json.loads((out / "run.json").read_text())
    jsonschema.validate(info, load_schema("run"))
    entry = zoo.get("tiny-qwen2.5-vl")
    assert info["schema"] == "tempbench.run/2" and (info["task"], info["split"]) == ("synthetic", "test")
    assert info["model"]["spec"] == "tiny-qwen2.5-vl" and info["outcome"]["status"] == "finished"
    mi = info["model"]
    assert mi["backend"] == "transformers" and mi["dtype"] == "float32" and mi["model_type"] == "qwen2_5_vl"
    assert mi["weights"].startswith("sha256:") and mi["info"]["zoo"]["alias"] == "tiny-qwen2.5-vl"
    assert len(info["fingerprint"]) == 64
    assert info["setting"] == entry.setting["synthetic"] == "zero-shot"
    assert info["prompt"] == entry.prompt == "tempsamp-r1-plain"
    assert info["prompt_sha256"] == prompt_sha256("tempsamp-r1-plain")
    # the zoo's video settings are the ones used (and recorded) for decoding and for the model
    for key, value in entry.video.items():
        assert info["video"][key] == value
    assert info["generation"]["max_new_tokens"] == 16 and info["generation"]["do_sample"] is False
    ex = info["execution"]
    assert ex["batch_size"] == 4 and ex["world_size"] == 1 and ex["limit"] is None and ex["prefetch"] == "thread"
    assert ex["hardware"]["python"] and ex["hardware"]["cpus"] >= 1 and "torch" in ex["hardware"]
    oc = info["outcome"]
    assert oc["coverage"]["queries"] == N_SYNTH and oc["queries_per_s"] > 0
    assert 0 < oc["model_seconds"] <= oc["seconds"]
    assert oc["coverage"] == {"queries": N_SYNTH, "errors": 0, "video_missing": 0, "video_undecodable": 0}

    result = json.loads((out / "result.json").read_text())
    jsonschema.validate(result, load_schema("result"))
    assert result["n"] == N_SYNTH and result["partial"] is False
    assert result["counts"]["predictions"] == N_SYNTH
    assert result["counts"]["ok"] + result["counts"]["repaired"] + result["counts"]["failed"] == N_SYNTH
    assert set(result["metrics"]) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}
    assert result["provenance"]["predictions_sha256"] == sha256_bytes((out / "predictions.jsonl").read_bytes())
    assert result["run"]["fingerprint"] == info["fingerprint"]
    assert result["run"]["model"]["weights"] == mi["weights"]

    details = read_details(out / "details.jsonl.gz")
    assert [d.qid for d in details] == list(range(N_SYNTH))
    assert {d.status for d in details} <= {"ok", "repaired", "failed"}
    ious = np.array([d.iou for d in details])
    assert result["metrics"]["mIoU"] == pytest.approx(100 * ious.mean(), abs=1e-9)


def test_zoo_prompt_and_setting_are_used(home, tmp_path, monkeypatch):
    """The zoo entry's recommended prompt and per-task setting reach run.json (unless given explicitly)."""
    from tempbench.models import zoo

    entry = dataclasses.replace(zoo.get("tiny-qwen2.5-vl"), prompt="timezero-cot", setting={"synthetic": "fine-tuned"})
    real_find = zoo.find
    monkeypatch.setattr(zoo, "find", lambda name: entry if name == "tiny-qwen2.5-vl" else real_find(name))
    common = dict(limit=2, batch_size=2, generation={"max_new_tokens": 4}, progress=False, score=False)
    run("tiny-qwen2.5-vl", "synthetic", out_dir=tmp_path / "a", **common)
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert (info["prompt"], info["setting"]) == ("timezero-cot", "fine-tuned")
    run("tiny-qwen2.5-vl", "synthetic", out_dir=tmp_path / "b", prompt="tempsamp-r1-cot", setting="zero-shot",
        video_settings={"fps": 1.0}, **common)
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert (info["prompt"], info["setting"]) == ("tempsamp-r1-cot", "zero-shot")
    # an override changes one video setting and keeps the zoo's others
    assert info["video"]["fps"] == 1.0 and info["video"]["max_pixels"] == entry.video["max_pixels"]


# ---------------------------------------------------------------------------------------------------------------
# 2. kill and resume


def test_sigkill_then_resume_equals_uninterrupted_run(home, tmp_path, reference):
    out = tmp_path / "run"
    pred = out / "predictions.jsonl"
    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(tiny_cmd(out), env=cli_env(home), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if pred.exists() and pred.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed: " + (tmp_path / "killed.log").read_text()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    before = pred.read_bytes()
    kept = before[: before.rfind(b"\n") + 1]
    n_before = kept.count(b"\n")
    assert 3 <= n_before < N_SYNTH
    assert not (out / "result.json").exists()  # killed: never scored

    proc = subprocess.run(tiny_cmd(out), env=cli_env(home), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pred.read_bytes()
    assert after.startswith(kept)  # nothing written before the kill was lost or rewritten
    assert outputs(pred) == reference
    info = json.loads((out / "run.json").read_text())
    assert info["outcome"]["coverage"]["queries"] == N_SYNTH - n_before  # only the rest was run again
    assert json.loads((out / "result.json").read_text())["n"] == N_SYNTH


def test_half_written_last_line_is_repaired_on_resume(home, tmp_path):
    out = tmp_path / "run"
    pred = out / "predictions.jsonl"
    common = dict(batch_size=1, generation={"max_new_tokens": 8}, progress=False)
    run("tiny-qwen2.5-vl", "synthetic", out_dir=out, **common)
    full = pred.read_bytes()
    lines = full.splitlines(keepends=True)
    assert len(lines) == N_SYNTH
    keep = b"".join(lines[:10])
    pred.write_bytes(keep + lines[10][: len(lines[10]) // 2])  # a kill in the middle of writing line 11
    with pytest.raises(TempbenchError, match="line 11"):  # not readable as it is
        from tempbench.predictions import read_predictions

        read_predictions(pred)

    summary = run("tiny-qwen2.5-vl", "synthetic", out_dir=out, **common)
    repaired = pred.read_bytes()
    assert repaired.startswith(keep)
    assert repaired == full  # same process, batch size 1: the 6 rows run again are the same rows
    assert summary.config.outcome.coverage.queries == N_SYNTH - 10
    assert summary.result.n == N_SYNTH and summary.result.counts.predictions == N_SYNTH


def test_read_done_cuts_only_an_unterminated_last_line(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"qid": i, "output": f"{i} to {i + 1}"} for i in range(3)]
    good = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(good + '{"qid": 3, "out')
    assert read_done(path, repair=False) == {r["qid"]: r for r in rows}
    assert path.read_text().endswith('"out')  # repair=False leaves another process's file alone
    assert read_done(path) == {r["qid"]: r for r in rows}
    assert path.read_text() == good
    path.write_text(good + '{"qid": 3, "out\n' + json.dumps({"qid": 4}) + "\n")  # a broken line that is complete
    with pytest.raises(TempbenchError, match=r"line 4 is not a row written by `tempbench run`"):
        read_done(path)
    assert read_done(tmp_path / "absent.jsonl") == {}


# ---------------------------------------------------------------------------------------------------------------
# 3. missing and corrupt videos


def test_missing_and_corrupt_videos_become_error_rows(home, tmp_path, synthetic_split):
    from tempbench.results import read_details
    from tempbench.synthetic import make_corrupt_video

    videos = tmp_path / "videos"
    videos.mkdir()
    for mp4 in sorted(synthetic_split.glob("*.mp4")):
        (videos / mp4.name).symlink_to(mp4)
    (videos / "synth_0_0003.mp4").unlink()  # qid 3: missing
    (videos / "synth_0_0007.mp4").unlink()
    make_corrupt_video(videos / "synth_0_0007.mp4", "truncated")  # qid 7: not decodable
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--videos",
                                    str(videos), "--out", str(out), "--gen", "max_new_tokens=4", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 error rows" in res.output

    rows = {r["qid"]: r for r in rows_of(out / "predictions.jsonl")}
    assert sorted(rows) == list(range(N_SYNTH))
    assert "not found" in rows[3]["error"] and "synth_0_0003" in rows[3]["error"]
    assert "synth_0_0007.mp4" in rows[7]["error"] and "not found" not in rows[7]["error"]
    assert all("output" in r and "error" not in r for q, r in rows.items() if q not in (3, 7))
    info = json.loads((out / "run.json").read_text())
    assert info["outcome"]["coverage"] == {"queries": N_SYNTH, "errors": 2, "video_missing": 1,
                                           "video_undecodable": 1}
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["errors"] == 2 and result["counts"]["predictions"] == N_SYNTH
    assert result["n"] == N_SYNTH and result["failure_rate"] >= 100 * 2 / N_SYNTH
    details = {d.qid: d for d in read_details(out / "details.jsonl.gz")}
    assert details[3].status == details[7].status == "error"
    assert details[3].iou == details[7].iou == 0.0


# ---------------------------------------------------------------------------------------------------------------
# 4. data-parallel shards


def test_torchrun_style_ranks_merge_to_the_single_run(home, tmp_path, reference):
    """Two concurrent processes with RANK/WORLD_SIZE/LOCAL_RANK set (as torchrun sets them) into one --out."""
    out = tmp_path / "run"
    procs = [subprocess.Popen(tiny_cmd(out), env=cli_env(home, RANK=str(i), WORLD_SIZE="2", LOCAL_RANK=str(i)),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 0)]
    try:
        results = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    assert "rank finished" in results[0][0]  # rank 1 hands over
    assert "mIoU" in results[1][0]  # rank 0 merges and scores
    for i in (0, 1):
        shard = rows_of(out / f"predictions.rank{i}-of-2.jsonl")
        assert [r["qid"] for r in shard] == list(range(i, N_SYNTH, 2))
        assert (out / f"rank{i}-of-2.done").exists()
    merged = rows_of(out / "predictions.jsonl")
    assert [r["qid"] for r in merged] == list(range(N_SYNTH))  # sorted by qid
    assert outputs(out / "predictions.jsonl") == reference
    info = json.loads((out / "run.json").read_text())
    assert info["execution"]["world_size"] == 2 and info["outcome"]["coverage"]["queries"] == N_SYNTH
    assert info["outcome"]["status"] == "finished"
    assert json.loads((out / "result.json").read_text())["n"] == N_SYNTH


def test_shard_option_without_world_size(syn_home, tmp_path):
    """`--shard 0/2` and `--shard 1/2` as two concurrent processes (no torchrun variables) into one --out."""
    single = run("baseline:random", "synthetic", out_dir=tmp_path / "single", progress=False)
    out = tmp_path / "sharded"
    cmd = [sys.executable, "-m", "tempbench", "run", "--model", "baseline:random", "--task", "synthetic",
           "--out", str(out), "--no-progress", "--shard"]
    procs = [subprocess.Popen(cmd + [f"{i}/2"], env=cli_env(syn_home), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    assert (out / "predictions.jsonl").read_bytes() == (tmp_path / "single" / "predictions.jsonl").read_bytes()
    result = json.loads((out / "result.json").read_text())
    assert result["metrics"] == single.result.metrics and result["n"] == N_SYNTH


def test_stale_done_marker_does_not_merge_an_unfinished_rank(syn_home, tmp_path, monkeypatch):
    """A marker left by an earlier run (here: with --limit 4) must not let rank 0 merge before rank 1 is done."""
    out = tmp_path / "run"
    for i in (1, 0):
        run("baseline:random", "synthetic", out_dir=out, shard=(i, 2), limit=4, progress=False)
    assert len(rows_of(out / "predictions.jsonl")) == 4
    monkeypatch.setenv("TEMPBENCH_MERGE_TIMEOUT", "1")
    with pytest.raises(TempbenchError, match=r"rank\(s\) \[1\] of 2 did not finish"):
        run("baseline:random", "synthetic", out_dir=out, shard=(0, 2), progress=False)  # rank 1 has not re-run
    assert len(rows_of(out / "predictions.jsonl")) == 4  # not merged
    assert run("baseline:random", "synthetic", out_dir=out, shard=(1, 2), progress=False).status == "rank finished"
    result = run("baseline:random", "synthetic", out_dir=out, shard=(0, 2), progress=False).result
    assert [r["qid"] for r in rows_of(out / "predictions.jsonl")] == list(range(N_SYNTH))
    assert result.n == N_SYNTH and result.counts.missing == 0


# ---------------------------------------------------------------------------------------------------------------
# 5. --limit, --no-resume, wrong names


def test_limit_then_resume_the_rest(syn_home, tmp_path):
    out = tmp_path / "run"
    base = ["run", "--model", "baseline:random", "--task", "synthetic", "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(main, base + ["--limit", "5"])
    assert res.exit_code == 0, res.output
    assert "n=5" in res.output
    result = json.loads((out / "result.json").read_text())
    assert (result["n"], result["partial"], result["counts"]["missing"]) == (5, True, 0)
    assert [r["qid"] for r in rows_of(out / "predictions.jsonl")] == list(range(5))
    first = json.loads((out / "run.json").read_text())
    assert first["execution"]["limit"] == 5
    res = CliRunner().invoke(main, base + ["--json"])  # the limit is not part of the identity: this resumes
    assert res.exit_code == 0, res.output
    record = json.loads(res.stdout)
    assert (record["n"], record["partial"]) == (N_SYNTH, False)
    assert record["run"]["outcome"]["coverage"]["queries"] == N_SYNTH - 5
    assert record["run"]["fingerprint"] == first["fingerprint"]
    assert [r["qid"] for r in rows_of(out / "predictions.jsonl")] == list(range(N_SYNTH))


def test_no_resume_on_existing_predictions_is_a_clear_error(syn_home, tmp_path):
    out = tmp_path / "run"
    run("baseline:center", "synthetic", out_dir=out, limit=3, progress=False)
    before = (out / "predictions.jsonl").read_bytes()
    res = CliRunner().invoke(main, ["run", "--model", "baseline:center", "--task", "synthetic", "--out", str(out),
                                    "--no-resume", "--no-progress"])
    assert res.exit_code == 2
    assert res.stderr.splitlines()[0] == f"error: {out / 'predictions.jsonl'} exists and --no-resume was given"
    assert res.stderr.splitlines()[1].startswith("hint: choose another --out")
    assert (out / "predictions.jsonl").read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["--model", "baseline:random", "--task", "nope"], "unknown task 'nope'"),
    (["--model", "baseline:random", "--task", "synthetic", "--split", "val_9"], "has no split 'val_9'"),
    (["--model", "baseline:oracle", "--task", "synthetic"], "unknown baseline 'oracle'"),
    (["--model", "/no/such/folder", "--task", "synthetic"], "neither a local folder nor a Hugging Face hub id"),
    (["--model", "baseline:random", "--task", "synthetic", "--shard", "2/2"], "need 0 <= i < n"),
    (["--model", "baseline:random", "--task", "synthetic", "--limit", "0"], "must be >= 1"),
])
def test_wrong_names_exit_2_with_one_line(syn_home, tmp_path, args, message):
    res = CliRunner().invoke(main, ["run", *args, "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith("error: ") and message in lines[0]
    assert len(lines) <= 2 and all(line.startswith("hint: ") for line in lines[1:])
    assert "Traceback" not in res.output
    assert not (tmp_path / "run" / "predictions.jsonl").exists()


# ---------------------------------------------------------------------------------------------------------------
# 6. baselines on the official Charades-STA annotations (no videos needed)


def _iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(pred[:, 1], gt[:, 1]) - np.maximum(pred[:, 0], gt[:, 0]), 0, None)
    union = np.maximum(pred[:, 1], gt[:, 1]) - np.minimum(pred[:, 0], gt[:, 0])
    return inter / union


def test_baselines_on_charades_test(use_imported, tmp_path):
    from tempbench.annotations import load_annotations

    test = load_annotations("charades", "test")
    train = load_annotations("charades", "train")
    assert len(test) == 3720
    d = np.array([r["duration"] for r in test])
    gt = np.array([r["windows"][0] for r in test])
    norm = np.array([[w[0] / r["duration"], w[1] / r["duration"]] for r in train for w in r["windows"]]).clip(0, 1)
    length = (norm[:, 1] - norm[:, 0]).mean()
    expected = {  # each baseline's window, computed here from its definition (tempbench/models/baselines.py)
        "prior": norm.mean(0)[None, :] * d[:, None],
        "center": np.stack([d / 2 - length * d / 2, d / 2 + length * d / 2], 1),
        "random": np.array([np.sort(np.random.default_rng([0, r["qid"]]).uniform(0, r["duration"], 2))
                            for r in test]),
    }
    for kind, windows in expected.items():
        out = tmp_path / kind
        result = run(f"baseline:{kind}", "charades", out_dir=out, progress=False).result
        rows = rows_of(out / "predictions.jsonl")
        assert [r["qid"] for r in rows] == [r["qid"] for r in test]
        assert all("output" not in r and len(r["windows"]) == 1 for r in rows)
        np.testing.assert_allclose(np.array([r["windows"][0] for r in rows]), windows, rtol=0, atol=1e-9)
        ious = _iou(windows, gt)
        assert result.n == result.split_size == 3720 and result.partial is False
        assert result.counts.failed == result.counts.missing == 0
        assert result.metrics["mIoU"] == pytest.approx(100 * ious.mean(), abs=1e-9)
        for t in (0.3, 0.5, 0.7):
            assert result.metrics[f"R1@{t}"] == pytest.approx(100 * (ious >= t).mean(), abs=1e-9)
            low, high = result.ci95[f"R1@{t}"]
            assert low < result.metrics[f"R1@{t}"] < high
        info = json.loads((out / "run.json").read_text())
        assert info["video"] is None and info["generation"] is None and info["model"]["backend"] == "baseline"
        assert info["model"]["info"]["train_records"] == (len(train) if kind != "random" else 0)
        assert info["model"]["options"]["kind"] == kind
