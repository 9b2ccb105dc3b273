"""The OpenAI-compatible adapter through the runner, against a real local HTTP server (tests/openai_test_server.py),
on the synthetic task: every sampled frame is sent with its timestamp, answers land in predictions.jsonl and are
scored, the server's identity is recorded in run.json, transient server errors are retried, and the CLI passes the
server address and the API key."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from openai_test_server import OpenAITestServer, deterministic_reply

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.runner import run

N_SYNTH = 16



@pytest.fixture
def home(tb_home, synthetic_split, monkeypatch) -> Path:
    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    return tb_home


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _text_parts(body: dict) -> list[str]:
    return [p["text"] for p in body["messages"][-1]["content"] if p["type"] == "text"]


def test_openai_server_through_the_runner(home, tmp_path, synthetic_split):
    from tempbench.annotations import load_annotations
    from tempbench.prompts import render
    from tempbench.video import VideoSettings, decode_video

    records = {r["qid"]: r for r in load_annotations("synthetic", "test")}
    out = tmp_path / "run"
    with OpenAITestServer() as server:
        server.fail_next(2, 503)  # transient errors: retried
        result = run("openai:test-model", "synthetic", out_dir=out, batch_size=4, progress=False,
                     video_settings={"fps": 1.0}, generation={"max_new_tokens": 32},
                     model_options={"api_base": server.base_url, "backoff": 0.01, "concurrency": 4})
    assert len(server.requests) == N_SYNTH and server.attempts == N_SYNTH + 2

    # each request: every sampled frame of its video (timestamp text + image), then the rendered prompt
    by_prompt: dict[str, list[dict]] = {}
    for body in server.requests:
        assert body["model"] == "test-model" and body["max_tokens"] == 32 and body["temperature"] == 0.0
        by_prompt.setdefault(_text_parts(body)[-1], []).append(body)
    rows = {r["qid"]: r for r in _rows(out / "predictions.jsonl")}
    assert sorted(rows) == list(range(N_SYNTH))
    vs = VideoSettings(fps=1.0)
    for qid, rec in records.items():
        clip = decode_video(synthetic_split / f"{rec['vid']}.mp4", vs)
        want = [f"Frame at {t:.1f}s:" for t in clip.timestamps]
        prompt = render("tempsamp-r1-plain", query=rec["query"], duration=rec["duration"])
        bodies = [b for b in by_prompt[prompt] if _text_parts(b)[:-1] == want]
        assert bodies, f"no request carried the frames of qid {qid}"
        images = [p for p in bodies[0]["messages"][-1]["content"] if p["type"] == "image_url"]
        assert len(images) == len(clip.timestamps) >= 4
        assert all(p["image_url"]["url"].startswith("data:image/") for p in images)
        assert rows[qid]["output"] == deterministic_reply(bodies[0])  # the server's answer, unchanged

    info = json.loads((out / "run.json").read_text())
    mi = info["model"]
    assert mi["backend"] == "openai" and mi["info"]["api_base"] == server.base_url
    # known only after requests were answered: run.json records them (the served model is part of the identity)
    assert mi["served_model"] == "test-model" and mi["info"]["system_fingerprints"] == ["fp-test"]
    assert mi["info"]["stats"] == {"requests": N_SYNTH + 2, "retries": 2, "failures": 0}
    assert info["video"]["fps"] == 1.0 and info["prompt"] == "tempsamp-r1-plain"
    assert info["outcome"]["coverage"]["errors"] == 0

    # "<answer> N to M </answer>" answers all parse; the result is scored against the synthetic ground truth
    result = result.result
    assert result.counts.ok == N_SYNTH and result.failure_rate == 0.0
    assert result.n == N_SYNTH and set(result.metrics) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}


def test_server_down_is_a_clear_error(home, tmp_path):
    with OpenAITestServer() as server:
        url = server.base_url
    with pytest.raises(TempbenchError, match="no answer after 2 attempts"):
        run("openai:test-model", "synthetic", out_dir=tmp_path / "run", limit=1, progress=False,
            model_options={"api_base": url, "max_retries": 1, "backoff": 0.01, "timeout": 5})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["outcome"]["status"] == "failed" and info["model"]["info"]["stats"]["failures"] == 1
    assert (tmp_path / "run" / "predictions.jsonl").read_text() == ""  # nothing half-done; a re-run resumes


def test_cli_with_api_key(home, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "sekret")
    out = tmp_path / "run"
    with OpenAITestServer(api_key="sekret") as server:
        res = CliRunner().invoke(main, ["run", "--model", "openai:test-model", "--api-base", server.base_url,
                                        "--api-key-env", "MY_SERVER_KEY", "--task", "synthetic", "--out", str(out),
                                        "--limit", "3", "--video", "fps=0.5", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "n=3" in res.output and "3 ok" in res.output
    assert len(server.requests) == 3
    assert all(h.get("Authorization") == "Bearer sekret" for h in server.headers)
    assert "sekret" not in (out / "run.json").read_text()  # the key is never recorded


def test_cli_without_any_api_key(home, tmp_path):
    assert "OPENAI_API_KEY" not in os.environ
    with OpenAITestServer() as server:
        res = CliRunner().invoke(main, ["run", "--model", "openai:test-model", "--api-base", server.base_url,
                                        "--task", "synthetic", "--out", str(tmp_path / "run"), "--limit", "2",
                                        "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(server.requests) == 2 and all("Authorization" not in h for h in server.headers)


# ---------------------------------------------------------------------------------------------------------------
# issue 12, items 6 and 7 through the runner and the CLI

from openai_test_server import completion, respond_raw  # noqa: E402


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_an_empty_answer_is_an_error_row_and_the_run_goes_on(home, tmp_path):
    out = tmp_path / "run"
    with OpenAITestServer() as server:
        server.custom_next(1, lambda h, body: respond_raw(h, 200, json.dumps(
            {"object": "chat.completion", "choices": []}).encode()))
        res = _cli("run", "--model", "openai:test-model", "--api-base", server.base_url, "--task", "synthetic",
                   "--out", out, "--batch-size", "4", "--model-args", "concurrency=1", "--no-progress")
    assert res.exit_code == 0, res.output
    rows = _rows(out / "predictions.jsonl")
    errors = [r for r in rows if "error" in r]
    assert len(rows) == N_SYNTH and len(errors) == 1 and "no choices" in errors[0]["error"]
    info = json.loads((out / "run.json").read_text())
    assert info["outcome"]["status"] == "finished" and info["outcome"]["coverage"]["errors"] == 1
    assert json.loads((out / "result.json").read_text())["counts"]["errors"] == 1


def test_a_body_that_is_not_a_chat_completion_stops_but_keeps_the_batchs_answers(home, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--model", "openai:test-model", "--task", "synthetic", "--out", out, "--batch-size", "4",
            "--model-args", "concurrency=1", "--no-progress"]
    not_chat = json.dumps({"object": "list", "data": [{"id": "test-model"}]}).encode()  # GET /v1/models' answer
    with OpenAITestServer() as server:
        for i in range(2):
            server.custom_next(1, lambda h, body, i=i: respond_raw(h, 200, completion(f"<answer> 1 to {i + 2} </answer>")))
        server.custom_next(1, lambda h, body: respond_raw(h, 200, not_chat))
        res = _cli(*args, "--api-base", server.base_url)
        assert res.exit_code == 2 and "is not a chat completion" in res.output, res.output
        assert "Traceback" not in res.output
        kept = _rows(out / "predictions.jsonl")
        # the batch of 4: two good answers, the refused one (not written: it is asked again), one more good one
        assert len(kept) == 3 and all("output" in r for r in kept)
        assert [r["output"] for r in kept[:2]] == ["<answer> 1 to 2 </answer>", "<answer> 1 to 3 </answer>"]
        assert json.loads((out / "run.json").read_text())["outcome"]["status"] == "failed"
        res = _cli(*args, "--api-base", server.base_url)  # the server answers properly now: resumes, finishes
    assert res.exit_code == 0, res.output
    assert sorted(r["qid"] for r in _rows(out / "predictions.jsonl")) == list(range(N_SYNTH))


def test_credentials_in_api_base_are_never_written_nor_fingerprinted(home, tmp_path):
    out = tmp_path / "run"
    with OpenAITestServer() as server:
        secret_base = server.base_url.replace("http://", "http://user:SECRETKEY42@")
        res = _cli("run", "--model", "openai:test-model", "--api-base", secret_base, "--task", "synthetic",
                   "--out", out, "--limit", "3", "--no-progress")
        assert res.exit_code == 0, res.output
        assert all(h["Authorization"].startswith("Basic ") for h in server.headers_seen)
        first = json.loads((out / "run.json").read_text())["fingerprint"]
        # the same run without the credentials is the same identity: it resumes in the same folder
        res = _cli("run", "--model", "openai:test-model", "--api-base", server.base_url, "--task", "synthetic",
                   "--out", out, "--limit", "4", "--no-progress")
        assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["fingerprint"] == first
    for path in out.iterdir():
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        assert b"SECRETKEY42" not in data and b"user:" not in data, path
    assert "SECRETKEY42" not in res.output


def test_model_args_reach_the_adapter_and_run_json(home, tmp_path):
    out = tmp_path / "run"
    with OpenAITestServer() as server:
        base = ["run", "--model", "openai:test-model", "--api-base", server.base_url, "--task", "synthetic",
                "--out", out, "--limit", "2", "--no-progress"]
        res = _cli(*base, "--model-args", "timeout=30,max_retries=1,deadline=90,max_answer_bytes=65536",
                   "--model-args", "concurrency=2,mode=frames")
        assert res.exit_code == 0, res.output
        model = json.loads((out / "run.json").read_text())["model"]
        assert (model["info"]["timeout_s"], model["info"]["max_retries"], model["info"]["concurrency"]) == (30.0, 1, 2)
        assert (model["info"]["deadline_s"], model["info"]["max_answer_bytes"]) == (90.0, 65536)
        assert model["options"]["mode"] == "frames"
        # timeout does not change answers (same identity: resumes); mode does (another run: refused)
        assert _cli(*base, "--model-args", "timeout=60").exit_code == 0
        res = _cli(*base, "--model-args", "mode=video_url")
        assert res.exit_code == 2 and "model.options.mode: frames -> video_url" in res.output
    for bad, needle in ((["--model-args", "api_key=sk-123456"], "--model-args api_key: not an option of openai"),
                        (["--model-args", "nosuch=1"], "they take: backoff, concurrency"),
                        (["--model-args", "timeout=soon"], "openai option timeout='soon' must be a number")):
        res = _cli(*base, *bad)
        assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    res = _cli("run", "--model", "baseline:random", "--task", "synthetic", "--out", tmp_path / "b",
               "--model-args", "timeout=3")
    assert res.exit_code == 2 and "takes no --model-args" in res.output


def test_run_help_states_the_key_policy():
    text = " ".join(CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output.split())
    assert "OPENAI_API_KEY is sent only to https://api.openai.com" in text
    assert "any other server gets a key only from --api-key-env NAME" in text
    assert "plain http only on this machine" in text and "Redirects are never followed" in text
    assert "--model-args" in text
