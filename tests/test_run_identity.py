"""Runs you can trust: a run folder holds one run identity; one writer at a time; error rows retried; no orphaned
workers after SIGKILL; the weight fingerprint tells checkpoints apart.

Real runs: baselines on the official Charades-STA annotations, the tiny Qwen2.5-VL (float32, built locally) on the
synthetic task's mp4 files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_runner import N_SYNTH, REPO, cli_env, home, rows_of, syn_home, tiny_cmd  # noqa: F401 (fixtures)

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.io import FileLock
from tempbench.results import Execution, ModelIdentity, RunConfig
from tempbench.runner import run


def cli(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], **kw)


def _config(**changes) -> RunConfig:
    base = RunConfig(task="charades", split="test", annotation_file="charades_sta_test.txt",
                     annotation_sha256="a" * 64,
                     model=ModelIdentity(spec="m", id="/ckpt/m", backend="transformers", weights="sha256:" + "b" * 64,
                                         dtype="bfloat16", attn_implementation="sdpa", options={"rope_index": "reference"}),
                     prompt="tempsamp-r1-plain", prompt_sha256="c" * 64, video={"fps": 2.0, "max_frames": 768},
                     generation={"max_new_tokens": 256, "do_sample": False})
    return base.replace(**changes)


# ---------------------------------------------------------------------------------------------------------------
# the identity record


def test_fingerprint_covers_what_changes_predictions_and_nothing_else():
    from dataclasses import replace

    base = _config()
    same = [_config(execution=Execution(profile="timelens", limit=10, batch_size=64, shard="1/4", world_size=4,
                                        device="cuda:3", workers=2, prefetch="thread", hardware={"gpu": "x"})),
            _config(setting="fine-tuned", created="2030-01-01", tempbench_version="9"),
            _config(model=replace(base.model, spec="alias", id="/another/path/to/the/same/bytes",
                                  info={"versions": {"transformers": "5.99"}}))]
    for other in same:
        assert other.fingerprint == base.fingerprint and other.differences(base) == []
    changed = {
        "split": _config(split="train"),
        "annotation_sha256": _config(annotation_sha256="d" * 64),
        "model.weights": _config(model=replace(base.model, weights="sha256:" + "e" * 64)),
        "model.dtype": _config(model=replace(base.model, dtype="float32")),
        "model.attn_implementation": _config(model=replace(base.model, attn_implementation="eager")),
        "model.options.rope_index": _config(model=replace(base.model, options={"rope_index": "transformers"})),
        "prompt_sha256": _config(prompt_sha256="f" * 64),
        "video.fps": _config(video={"fps": 1.0, "max_frames": 768}),
        "generation.max_new_tokens": _config(generation={"max_new_tokens": 32, "do_sample": False}),
    }
    for name, other in changed.items():
        assert other.fingerprint != base.fingerprint, name
        diffs = other.differences(base)
        assert len(diffs) == 1 and diffs[0].startswith(f"{name}: "), (name, diffs)
    assert _config(video={"fps": 1.0, "max_frames": 768}).differences(base) == ["video.fps: 2.0 -> 1.0"]


def test_run_json_round_trip_and_hand_edits_are_refused(tmp_path):
    config = _config()
    config.write(tmp_path / "run.json")
    assert RunConfig.read(tmp_path / "run.json") == config
    data = json.loads((tmp_path / "run.json").read_text())
    data["generation"]["max_new_tokens"] = 9  # edited by hand: the fingerprint no longer matches
    (tmp_path / "run.json").write_text(json.dumps(data))
    with pytest.raises(TempbenchError, match="field 'fingerprint' does not match"):
        RunConfig.read(tmp_path / "run.json")
    (tmp_path / "run.json").write_text(json.dumps({"schema": "tempbench.run/1", "task": "x"}))
    with pytest.raises(TempbenchError, match="another tempbench version"):
        RunConfig.read(tmp_path / "run.json")


def test_served_model_is_compared_once_known():
    from dataclasses import replace

    old = _config(model=ModelIdentity(spec="openai:m", id="openai:m", backend="openai", served_model="qwen-7b"))
    new = _config(model=replace(old.model, served_model=None))  # no answer yet: not a difference
    assert new.differences(old) == []
    assert replace_model(new, served_model="llama").differences(old) == ["model.served_model: qwen-7b -> llama"]


def replace_model(config, **changes):
    from dataclasses import replace

    return config.replace(model=replace(config.model, **changes))


# ---------------------------------------------------------------------------------------------------------------
# 1. a different model into the same --out


def test_other_model_into_the_same_out_is_refused_then_restart_moves_it_aside(use_imported, tmp_path):
    out = tmp_path / "X"
    res = cli("run", "--model", "baseline:prior", "--task", "charades", "--limit", "1000", "--out", out, "--no-progress")
    assert res.exit_code == 0, res.output
    before = (out / "predictions.jsonl").read_bytes()
    assert before.count(b"\n") == 1000
    res = cli("run", "--model", "baseline:random", "--task", "charades", "--out", out, "--no-progress")
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f"error: {out} holds another run (")
    assert "model.options.kind: prior -> random" in lines[0] and "Traceback" not in res.output
    assert "--out" in lines[1] and "--restart" in lines[1]
    assert (out / "predictions.jsonl").read_bytes() == before  # nothing written
    assert json.loads((out / "run.json").read_text())["model"]["spec"] == "baseline:prior"

    res = cli("run", "--model", "baseline:random", "--task", "charades", "--out", out, "--no-progress", "--restart")
    assert res.exit_code == 0, res.output
    assert f"moved the old run aside to {out}.old-1" in res.output
    assert (Path(f"{out}.old-1") / "predictions.jsonl").read_bytes() == before  # kept, not deleted
    assert json.loads((out / "run.json").read_text())["model"]["spec"] == "baseline:random"
    result = json.loads((out / "result.json").read_text())
    assert result["n"] == 3720 and result["run"]["model"]["options"]["kind"] == "random"
    assert len(rows_of(out / "predictions.jsonl")) == 3720


def test_predictions_without_run_json_are_not_resumed(use_imported, tmp_path):
    out = tmp_path / "X"
    out.mkdir()
    (out / "predictions.jsonl").write_text('{"qid": 0, "output": "1 to 2"}\n')
    res = cli("run", "--model", "baseline:center", "--task", "charades", "--out", out, "--no-progress")
    assert res.exit_code == 2 and "no run.json says what made it" in res.stderr


# ---------------------------------------------------------------------------------------------------------------
# 2. a different prompt or --gen in the default folder; two checkpoints with the same folder name


def test_changed_settings_go_to_a_new_default_folder(home, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    common = ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--limit", "8", "--no-progress",
              "--batch-size", "4"]
    assert cli(*common).exit_code == 0
    res = cli(*common, "--prompt", "time-r1-plain", "--gen", "max_new_tokens=32")
    assert res.exit_code == 0, res.output
    folders = sorted((tmp_path / "runs" / "synthetic-test").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("tiny-qwen2.5-vl-") for f in folders)
    for folder in folders:  # each run.json describes exactly the rows beside it
        info = json.loads((folder / "run.json").read_text())
        assert folder.name == f"tiny-qwen2.5-vl-{info['fingerprint'][:8]}"
        assert len(rows_of(folder / "predictions.jsonl")) == 8
    prompts = {json.loads((f / "run.json").read_text())["prompt"] for f in folders}
    assert prompts == {"tempsamp-r1-plain", "time-r1-plain"}
    # the same settings again: resumes its own folder, nothing new
    assert cli(*common).exit_code == 0 and len(list((tmp_path / "runs" / "synthetic-test").iterdir())) == 2


def _perturbed_copy(src: Path, dst: Path) -> Path:
    """A copy of a model folder with one weight changed (as one more training step would)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    weights = load_file(dst / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3
    save_file(weights, dst / "model.safetensors", metadata={"format": "pt"})
    assert not torch.equal(load_file(src / "model.safetensors")[name], weights[name])
    return dst


def test_two_checkpoints_with_the_same_folder_name_are_two_runs(syn_home, tiny_model, tmp_path,  # noqa: F811
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = shutil.copytree(tiny_model, tmp_path / "train-a" / "checkpoint-4")
    b = _perturbed_copy(tiny_model, tmp_path / "train-b" / "checkpoint-4")
    common = ["run", "--task", "synthetic", "--limit", "2", "--no-progress", "--gen", "max_new_tokens=4"]
    assert cli(*common, "--model", a).exit_code == 0
    assert cli(*common, "--model", b).exit_code == 0
    folders = sorted((tmp_path / "runs" / "synthetic-test").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("checkpoint-4-") for f in folders)
    weights = {json.loads((f / "run.json").read_text())["model"]["weights"] for f in folders}
    assert len(weights) == 2
    # the same --out for both: the second checkpoint is refused, by its weights
    out = tmp_path / "X"
    assert cli(*common, "--model", a, "--out", out).exit_code == 0
    res = cli(*common, "--model", b, "--out", out)
    assert res.exit_code == 2 and "model.weights: sha256:" in res.stderr


# ---------------------------------------------------------------------------------------------------------------
# weight fingerprints


def test_weights_fingerprint_full_sampled_and_hub_blob(tiny_model, tmp_path, monkeypatch):
    from tempbench.models import checkpoint

    a = shutil.copytree(tiny_model, tmp_path / "a")
    b = _perturbed_copy(tiny_model, tmp_path / "b")
    full = {p: checkpoint.weights_fingerprint(p) for p in (tiny_model, a, b)}
    assert full[tiny_model] == full[a] != full[b]
    (a / "trainer_state.json").write_text('{"global_step": 9}')  # training state does not change predictions
    (a / "train_config.toml").write_text("x = 1\n")
    assert checkpoint.weights_fingerprint(a) == full[a]
    (a / "generation_config.json").write_text('{"eos_token_id": 3}')  # files inference reads do
    assert checkpoint.weights_fingerprint(a) != full[a]
    monkeypatch.setattr(checkpoint, "FULL_HASH_BYTES", 1024)  # every weight file takes the sampled path
    sampled = {p: checkpoint.weights_fingerprint(p) for p in (tiny_model, b)}
    assert sampled[tiny_model] != sampled[b] and sampled[tiny_model] != full[tiny_model]
    # a hub-cache snapshot file linked to blobs/<sha256> is known by that name, without reading it
    blobs = tmp_path / "hub" / "blobs"
    snap = tmp_path / "hub" / "snapshots" / ("c" * 40)
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in tiny_model.iterdir():
        if f.is_file():
            digest = __import__("hashlib").sha256(f.read_bytes()).hexdigest()
            shutil.copy(f, blobs / digest)
            (snap / f.name).symlink_to(blobs / digest)
    (blobs / __import__("hashlib").sha256((tiny_model / "model.safetensors").read_bytes()).hexdigest()).write_bytes(
        b"not read")  # proof: the content is not read, its name is
    assert checkpoint.weights_fingerprint(snap) == checkpoint.weights_fingerprint(snap)
    assert checkpoint.hub_revision(snap) == "c" * 40


# ---------------------------------------------------------------------------------------------------------------
# 3. one writer per folder


def test_a_held_run_folder_is_refused_naming_the_holder(use_imported, tmp_path):
    out = tmp_path / "X"
    with FileLock(out / ".predictions.lock", f"run folder {out}"):
        res = cli("run", "--model", "baseline:prior", "--task", "charades", "--out", out, "--no-progress")
    assert res.exit_code == 2
    assert f"is being written by another process (pid {os.getpid()}" in res.stderr
    assert not (out / "predictions.jsonl").exists()
    assert cli("run", "--model", "baseline:prior", "--task", "charades", "--out", out,
               "--no-progress").exit_code == 0  # released: the next run goes ahead


def test_two_concurrent_runs_leave_exactly_one_writer(home, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    procs = [subprocess.Popen(tiny_cmd(out), env=cli_env(home), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=400) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    loser = next(err for p, (_, err) in zip(procs, results) if p.returncode == 2)
    assert "is being written by another process (pid" in loser and "Traceback" not in loser
    rows = rows_of(out / "predictions.jsonl")
    assert sorted(r["qid"] for r in rows) == list(range(N_SYNTH))  # 16 rows for 16 queries, no duplicates
    # and the folder stays usable
    again = subprocess.run(tiny_cmd(out), env=cli_env(home), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]


# ---------------------------------------------------------------------------------------------------------------
# 4. error rows retried


def test_retry_errors_reruns_error_rows_and_the_new_row_supersedes(home, tmp_path, synthetic_split):  # noqa: F811
    videos = tmp_path / "videos"
    videos.mkdir()
    for mp4 in sorted(synthetic_split.glob("*.mp4")):
        if mp4.name != "synth_0_0003.mp4":
            (videos / mp4.name).symlink_to(mp4)
    out = tmp_path / "run"
    common = ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--videos", videos, "--out", out,
              "--gen", "max_new_tokens=4", "--no-progress"]
    assert cli(*common).exit_code == 0
    assert "error" in {r["qid"]: r for r in rows_of(out / "predictions.jsonl")}[3]
    (videos / "synth_0_0003.mp4").symlink_to(synthetic_split / "synth_0_0003.mp4")  # the video is there now
    res = cli(*common)  # a plain resume does not touch finished rows, error rows included
    assert res.exit_code == 0 and len(rows_of(out / "predictions.jsonl")) == N_SYNTH
    res = cli(*common, "--retry-errors")
    assert res.exit_code == 0, res.output
    rows = rows_of(out / "predictions.jsonl")
    assert len(rows) == N_SYNTH + 1 and rows[-1]["qid"] == 3 and "output" in rows[-1]  # appended, not rewritten
    assert any(r["qid"] == 3 and "error" in r for r in rows[:-1])  # the old row is kept
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["errors"] == 0 and result["counts"]["predictions"] == N_SYNTH + 1
    # outside a run folder, the same file has a duplicate qid: refused
    copy = tmp_path / "copy.jsonl"
    shutil.copy(out / "predictions.jsonl", copy)
    res = cli("score", copy, "--task", "synthetic", "--no-ci")
    assert res.exit_code == 2 and f"line {N_SYNTH + 1}, field 'qid': duplicate qid 3" in res.stderr


# ---------------------------------------------------------------------------------------------------------------
# 5. no orphans after SIGKILL


def _group_members(pgid: int) -> list[str]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # (state, ppid, pgrp): zombies have exited
            alive.append(stat.parent.name)
    return alive


def test_sigkill_mid_prefetch_leaves_no_process_of_the_run(home, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    cmd = tiny_cmd(out, "--prefetch", "process", "--workers", "2", tokens=64)
    proc = subprocess.Popen(cmd, env=cli_env(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    pgid = proc.pid
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if len(_group_members(pgid)) >= 3 and (out / "predictions.jsonl").exists() and \
                    (out / "predictions.jsonl").read_bytes().count(b"\n") >= 1:
                break  # the run, its prefetch workers (and the resource tracker) are up, mid-run
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert len(_group_members(pgid)) >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 5
        while time.time() < deadline and _group_members(pgid):
            time.sleep(0.1)
        assert _group_members(pgid) == []
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------------------------
# the house: typed records between modules


def test_no_module_but_results_reads_a_record_by_key_paths():
    import re

    keys = ("provenance", "metrics", "model_info", "run", "throughput", "counts", "ci95", "outcome", "execution",
            "fingerprint", "video_coverage", "failure_rate")
    pattern = re.compile(r"""(\[|\.get\()\s*["'](""" + "|".join(keys) + r""")["']""")
    into_result = re.compile(r"""\[["']result["']\]\s*(\[|\.get)""")
    offenders = []
    for path in sorted((REPO / "tempbench").rglob("*.py")):
        if path.name == "results.py":
            continue
        # submissions.py reads its own entry record (a reported entry's `metrics`), never into the result inside
        check = into_result if path.name == "submissions.py" else pattern
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if check.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert offenders == []


def _import_graph() -> dict[Path, set[Path]]:
    """file -> files of tempbench it imports (module level or inside functions); importing a package's own
    `__init__` from inside the package is not an edge (Python runs it first anyway)."""
    import ast

    pkg = REPO / "tempbench"
    modules = {".".join(f.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): f
               for f in pkg.rglob("*.py")}

    def resolve(name: str) -> Path | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return modules.get(name)

    graph: dict[Path, set[Path]] = {}
    for name, f in modules.items():
        here = name if f.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    module = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                dep = resolve(t) if t.startswith("tempbench") else None
                if dep is not None and dep != f and not (dep.name == "__init__.py" and dep.parent in f.parents):
                    edges.add(dep)
        graph[f] = edges
    return graph


def test_the_import_graph_has_no_circle():
    graph = _import_graph()
    state: dict[Path, int] = {}
    circles = []

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                circles.append(" -> ".join(str(p.relative_to(REPO)) for p in trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert circles == []
    assert len(graph) > 30  # the whole package was read


def test_run_returns_one_type(syn_home, tmp_path):  # noqa: F811
    from tempbench.runner import RunSummary

    done = run("baseline:center", "synthetic", out_dir=tmp_path / "a", progress=False)
    unscored = run("baseline:center", "synthetic", out_dir=tmp_path / "b", progress=False, score=False)
    shard = run("baseline:center", "synthetic", out_dir=tmp_path / "c", shard=(1, 2), progress=False)
    assert all(isinstance(s, RunSummary) for s in (done, unscored, shard))
    assert done.result is not None and done.result.n == N_SYNTH and unscored.result is None
    assert shard.status == "rank finished" and shard.config.execution.shard == "1/2"


# ---------------------------------------------------------------------------------------------------------------
# numerics: settings outside the identity that change answers in bf16 or on a GPU are never mixed in one folder


def _with_numerics(config: RunConfig, *, batch_size=8, decoder="dynamic", device="cuda:0", gpu="NVIDIA H200",
                   dtype="bfloat16") -> RunConfig:
    from dataclasses import replace

    model = replace(config.model, dtype=dtype, info={"decoding": {"decoder": decoder, "share_prefix": True}})
    execution = Execution(batch_size=batch_size, device=device, hardware={"gpu": gpu} if gpu else {})
    return config.replace(model=model, execution=execution)


def test_numerics_differences_where_they_change_answers():
    old = _with_numerics(_config())
    assert old.numerics_differences(old) == []
    assert _with_numerics(_config(), batch_size=16).numerics_differences(old) == ["execution.batch_size: 8 -> 16"]
    assert _with_numerics(_config(), decoder="cuda-graph").numerics_differences(old) == [
        "decoding.decoder: dynamic -> cuda-graph"]
    assert _with_numerics(_config(), gpu="NVIDIA H100").numerics_differences(old) == [
        "hardware.gpu: NVIDIA H200 -> NVIDIA H100"]
    # float32 on a CPU: token ids do not depend on them; a GPU in float32 still compares
    cpu = dict(device="cpu", gpu=None, dtype="float32")
    assert _with_numerics(_config(), batch_size=16, **cpu).numerics_differences(_with_numerics(_config(), **cpu)) == []
    f32 = _with_numerics(_config(), dtype="float32")
    assert _with_numerics(_config(), dtype="float32", batch_size=4).numerics_differences(f32)
    # the same settings in the identity's fingerprint: numerics are not part of it (a resumed run keeps its folder)
    assert _with_numerics(_config(), batch_size=16).fingerprint == old.fingerprint
    # baselines and servers have none
    base = _config(model=ModelIdentity(spec="baseline:center", id="baseline:center", backend="baseline"))
    assert base.numerics() is None and base.numerics_differences(base) == []


def test_bf16_resume_with_another_batch_size_is_refused(home, tmp_path, monkeypatch):  # noqa: F811
    """In bfloat16 a resumed run must use the batch size and decoder its answers were made with (else one folder would
    hold answers of two decodings); in float32 on a CPU it may change them (the answers are the same)."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "bf16"
    common = ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--no-progress", "--out", out,
              "--model-args", "dtype=bfloat16"]
    assert cli(*common, "--limit", "4", "--batch-size", "4").exit_code == 0
    before = (out / "predictions.jsonl").read_bytes()
    res = cli(*common, "--limit", "8", "--batch-size", "2")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "execution.batch_size: 4 -> 2" in res.output and "bfloat16" in res.output
    assert (out / "predictions.jsonl").read_bytes() == before  # nothing written, nothing lost
    res = cli(*common, "--limit", "8", "--batch-size", "4", "--model-args", "decoder=static")
    assert res.exit_code == 2 and "decoding.decoder: dynamic -> static" in res.output, res.output
    assert cli(*common, "--limit", "8", "--batch-size", "4").exit_code == 0  # the same settings resume
    assert len(rows_of(out / "predictions.jsonl")) == 8
    f32 = ["run", "--model", "tiny-qwen2.5-vl", "--task", "synthetic", "--no-progress", "--out", tmp_path / "f32"]
    assert cli(*f32, "--limit", "4", "--batch-size", "4").exit_code == 0
    res = cli(*f32, "--limit", "8", "--batch-size", "2")
    assert res.exit_code == 0, res.output
