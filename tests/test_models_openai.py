"""The OpenAI-compatible adapter against a real local HTTP server (tests/openai_test_server.py)."""

from __future__ import annotations

import base64
import io
import re
import time
import zlib

import numpy as np
import pytest
from openai_test_server import OpenAITestServer, deterministic_reply, tiny_model_responder

from tempbench.errors import TempbenchError
from tempbench.models.base import GenerationSettings, ModelInput
from tempbench.models.openai import OpenAIChat, encode_image, encode_png
from tempbench.video import Clip


def make_clip(t=4, h=16, w=24, fps=2.0, seed=0, path="/videos/v1.mp4") -> Clip:
    frames = np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, timestamps=np.arange(t) / fps + 0.25, fps=fps, duration=t / fps, source_fps=30.0,
                path=path)


def _decode_png(data: bytes) -> np.ndarray:
    """Minimal PNG reader for filter-0 RGB images (what encode_png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", None, None
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, 1 + w * 3)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def _decode_any(data: bytes) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:  # without Pillow the adapter writes PNG itself
        return _decode_png(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_png_encoder_round_trips_and_pillow_agrees():
    frame = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert np.array_equal(_decode_png(encode_png(frame)), frame)
    Image = pytest.importorskip("PIL.Image")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(frame))).convert("RGB")), frame)
    mime, data = encode_image(frame, "jpeg")
    assert mime == "image/jpeg" and data[:2] == b"\xff\xd8"


def test_frames_mode_sends_timestamps_and_images():
    with OpenAITestServer() as srv:
        m = OpenAIChat("test-model", srv.base_url, image_format="png", api_key="")
        out = m.generate([ModelInput(make_clip(), "Where is it?", 0)])
        m.close()
    body = srv.requests[0]
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 4 + ["text"]
    assert [p["text"] for p in parts[:-1:2]] == ["Frame at 0.2s:", "Frame at 0.8s:", "Frame at 1.2s:", "Frame at 1.8s:"]
    url = parts[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert np.array_equal(_decode_any(base64.b64decode(url.split(",", 1)[1])), make_clip().frames[0])
    assert parts[-1]["text"] == "Where is it?" and len(body["messages"]) == 1  # no system message
    assert body["temperature"] == 0.0 and body["max_tokens"] == 256 and body["seed"] == 0
    assert out == [deterministic_reply(body)]


def test_video_url_mode(tmp_path):
    with OpenAITestServer() as srv:
        m = OpenAIChat("m", srv.base_url, mode="video_url", api_key="")
        m.generate([ModelInput(make_clip(path=str(tmp_path / "a b.mp4")), "q", 0)])
        m2 = OpenAIChat("m", srv.base_url, mode="video_url", video_url_base="http://media/x/", api_key="")
        m2.generate([ModelInput(make_clip(path="/data/v9.mp4"), "q", 1)])
    urls = [r["messages"][0]["content"][0]["video_url"]["url"] for r in srv.requests]
    assert urls == [(tmp_path / "a b.mp4").as_uri(), "http://media/x/v9.mp4"]


def test_order_is_kept_and_concurrency_is_bounded():
    with OpenAITestServer(delay=0.1) as srv:
        m = OpenAIChat("m", srv.base_url, concurrency=3, api_key="")
        batch = [ModelInput(None, "x" * i, i) for i in range(9)]
        t0 = time.monotonic()
        out = m.generate(batch)
        elapsed = time.monotonic() - t0
        m.close()
    assert out == [f"<answer> 0.00 to {i % 50 + 1:.2f} </answer>" for i in range(9)]
    assert srv.max_in_flight == 3
    assert elapsed < 9 * 0.1  # ran in parallel


def test_retries_on_500_429_and_dropped_connections():
    with OpenAITestServer() as srv:
        srv.fail_next(2, 500)
        srv.fail_next(1, 429, retry_after=0.05)
        srv.drop_next(1)
        m = OpenAIChat("m", srv.base_url, backoff=0.01, max_retries=5, api_key="")
        out = m.generate([ModelInput(None, "hello", 0)])
    assert out == ["<answer> 0.00 to 6.00 </answer>"]
    assert srv.attempts == 5 and m.stats["retries"] == 4 and m.stats["failures"] == 0


def test_gives_up_after_max_retries_with_clear_error():
    with OpenAITestServer() as srv:
        srv.fail_next(10, 503)
        m = OpenAIChat("m", srv.base_url, backoff=0.001, max_retries=2, api_key="")
        with pytest.raises(TempbenchError, match=r"no answer after 3 attempts \(HTTP 503"):
            m.generate([ModelInput(None, "hello", 0)])
    assert srv.attempts == 3


def test_client_errors_are_not_retried_and_timeouts_are():
    with OpenAITestServer(api_key="sekret") as srv:
        m = OpenAIChat("m", srv.base_url, api_key="wrong", backoff=0.001)
        with pytest.raises(TempbenchError, match="HTTP 401") as e:
            m.generate([ModelInput(None, "q", 0)])
        assert "OPENAI_API_KEY" in e.value.hint and srv.attempts == 1
    with OpenAITestServer(delay=0.5) as srv:
        m = OpenAIChat("m", srv.base_url, timeout=0.1, max_retries=1, backoff=0.001, api_key="")
        with pytest.raises(TempbenchError, match="no answer after 2 attempts"):
            m.generate([ModelInput(None, "q", 0)])


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k1")
    monkeypatch.setenv("MY_KEY", "k2")
    with OpenAITestServer(api_key="k2") as srv:
        with pytest.raises(TempbenchError, match="401"):
            OpenAIChat("m", srv.base_url).generate([ModelInput(None, "q", 0)])
        OpenAIChat("m", srv.base_url, api_key_env="MY_KEY").generate([ModelInput(None, "q", 0)])
    assert srv.headers[-1]["Authorization"] == "Bearer k2"
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(TempbenchError, match="NOPE is not set"):
        OpenAIChat("m", "http://127.0.0.1:9/v1", api_key_env="NOPE")
    with pytest.raises(TempbenchError, match="needs a server address"):
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.delenv("OPENAI_API_BASE", raising=False)
        OpenAIChat("m")


def test_sampling_settings_and_info():
    with OpenAITestServer() as srv:
        g = GenerationSettings(max_new_tokens=17, do_sample=True, temperature=0.7, top_p=0.9, seed=5)
        m = OpenAIChat("m", srv.base_url, generation=g, extra_body={"top_k": 3}, api_key="")
        m.generate([ModelInput(None, "q", 0)])
    body = srv.requests[0]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"], body["top_k"]) == (17, 0.7, 0.9, 5, 3)
    ident = m.identity()
    assert ident.backend == "openai" and ident.info["system_fingerprints"] == ["fp-test"]
    assert ident.served_model == "test-model" and ident.options["extra_body"] == {"top_k": 3}
    assert m.generation.to_dict()["temperature"] == 0.7


def test_with_tiny_model_behind_the_server(tmp_path):
    pytest.importorskip("torch")
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl

    responder = tiny_model_responder(build_tiny_qwen2_5_vl(tmp_path / "tiny"), max_new_tokens=6)
    with OpenAITestServer(responder=responder) as srv:
        m = OpenAIChat("tiny", srv.base_url, concurrency=2, api_key="")
        batch = [ModelInput(make_clip(t=2, seed=i), f"query {i}", i) for i in range(3)]
        out = m.generate(batch)
        again = m.generate(batch)
    assert out == again and all(isinstance(s, str) for s in out)

    def asks(request, prompt):  # with concurrency 2 the server may see query 1 first
        return any(p.get("text") == prompt for p in request["messages"][0]["content"])

    first = next(r for r in srv.requests if asks(r, "query 0"))
    assert out[0] == responder(first)
    assert any(re.search(r"Frame at", p.get("text", "")) for p in first["messages"][0]["content"])


def test_time_convention_is_recorded_per_mode():
    """frames mode writes `Frame at t s:` before each image (text-timestamps); video_url leaves time to the server."""
    frames = OpenAIChat("m", "http://127.0.0.1:9/v1", api_key="")
    video = OpenAIChat("m", "http://127.0.0.1:9/v1", api_key="", mode="video_url")
    assert frames.identity().info["time_convention"] == "text-timestamps"
    assert video.identity().info["time_convention"] == "server-side"


# ---------------------------------------------------------------------------------------------------------------
# keys, redirects and bodies (issue 12, item 6)

import json  # noqa: E402

from openai_test_server import completion, respond_raw  # noqa: E402

from tempbench.models.base import FailedAnswer  # noqa: E402


@pytest.fixture
def no_env_keys(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "MY_KEY"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(no_env_keys, code):
    """Before: a 302 to another host re-sent the request as GET with the Authorization header, and the body-less
    answers were stored as predictions."""
    with OpenAITestServer() as other, OpenAITestServer() as srv:
        target = other.base_url.replace("/v1", "/steal") + "/chat/completions"
        srv.custom_next(1, lambda h, body: respond_raw(h, code, b"", {"Location": target}))
        m = OpenAIChat("m", srv.base_url, api_key="sk-live-1234567890abcdef", backoff=0.001)
        with pytest.raises(TempbenchError, match=f"HTTP {code} redirect to .*/steal/chat/completions not followed"):
            m.generate([ModelInput(None, "q", 0)])
        assert other.attempts == 0 and other.headers_seen == []  # the key went nowhere else
        assert srv.attempts == 1  # and is not retried


@pytest.mark.parametrize("payload", [
    {"object": "list", "data": [{"id": "m"}]},  # what GET /v1/models answers
    {"message": "hello"},
    [1, 2, 3],
    "just text",
    {"object": "text_completion", "choices": [{"text": "1 to 2"}]},
])
def test_a_body_that_is_not_a_chat_completion_stops_the_run(no_env_keys, payload):
    with OpenAITestServer() as srv:
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, json.dumps(payload).encode()))
        m = OpenAIChat("m", srv.base_url, api_key="", backoff=0.001)
        with pytest.raises(TempbenchError, match="is not a chat completion") as info:
            m.generate([ModelInput(None, "q", 0)])
    assert "--api-base" in info.value.hint


def test_openai_api_key_goes_only_to_openais_own_api(no_env_keys):
    no_env_keys.setenv("OPENAI_API_KEY", "sk-openai-abcdefghijkl")
    with OpenAITestServer() as srv:  # a local server: OPENAI_API_KEY is not for it
        m = OpenAIChat("m", srv.base_url)
        m.generate([ModelInput(None, "q", 0)])
    assert "Authorization" not in srv.headers_seen[0] and m.identity().info["key_from"] is None
    official = OpenAIChat("gpt-4o", "https://api.openai.com/v1")
    assert official._auth == "Bearer sk-openai-abcdefghijkl" and official.identity().info["key_from"] == \
        "OPENAI_API_KEY"
    for other in ("https://api.openai.com.evil.test/v1", "https://evil.test/api.openai.com/v1",
                  "http://api.openai.com/v1", "https://proxy.example/v1"):
        assert OpenAIChat("gpt-4o", other)._auth is None, other


def test_other_hosts_get_a_key_only_from_api_key_env_and_plain_http_only_on_loopback(no_env_keys):
    no_env_keys.setenv("MY_KEY", "k2-secret")
    for base in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1",
                 "https://gpu-box.example:8000/v1"):
        assert OpenAIChat("m", base, api_key_env="MY_KEY")._auth == "Bearer k2-secret", base
    for base in ("http://10.0.0.5:8000/v1", "http://gpu-box:8000/v1", "http://localhost.evil.test/v1"):
        with pytest.raises(TempbenchError, match="a key would travel unencrypted") as info:
            OpenAIChat("m", base, api_key_env="MY_KEY")
        assert "https://" in info.value.hint and "k2-secret" not in str(info.value)
    assert OpenAIChat("m", "http://10.0.0.5:8000/v1")._auth is None  # no key: plain http is the user's call


def test_credentials_in_the_address_are_sent_but_never_recorded(no_env_keys):
    with OpenAITestServer() as srv:
        base = srv.base_url.replace("http://", "http://alice:SECRETKEY99@")
        m = OpenAIChat("m", base)
        m.generate([ModelInput(None, "q", 0)])
        srv.fail_next(1, 404)
        with pytest.raises(TempbenchError) as info:
            m.generate([ModelInput(None, "q", 1)])
    assert srv.headers_seen[0]["Authorization"] == "Basic " + base64.b64encode(b"alice:SECRETKEY99").decode()
    ident = m.identity()
    assert "SECRETKEY99" not in json.dumps(ident.info) + json.dumps(ident.options) + m.url
    assert ident.info["api_base"] == srv.base_url and ident.info["key_from"] == "credentials in --api-base"
    assert "SECRETKEY99" not in str(info.value) and "alice" not in str(info.value)
    with pytest.raises(TempbenchError, match="unencrypted"):
        OpenAIChat("m", "http://alice:SECRETKEY99@10.0.0.5/v1")
    v6 = OpenAIChat("m", "http://alice:SECRETKEY99@[::1]:8000/v1")
    assert v6.url == "http://[::1]:8000/v1/chat/completions" and v6.identity().info["api_base"] == "http://[::1]:8000/v1"
    assert OpenAIChat("m", "https://:sk-only-a-password-1@proxy.example/v1").url == \
        "https://proxy.example/v1/chat/completions"


def test_keys_echoed_by_the_server_are_redacted(no_env_keys):
    def echo(h, body):
        respond_raw(h, 400, json.dumps({"error": {"message": f"bad request, headers: {dict(h.headers)}"}}).encode())

    def echo_500(h, body):
        respond_raw(h, 500, f"upstream saw Authorization: {h.headers.get('Authorization')}".encode())

    key = "sk-proj-ABCDEFGH12345678"
    with OpenAITestServer() as srv:
        srv.custom_next(1, echo)
        m = OpenAIChat("m", srv.base_url, api_key=key, backoff=0.001, max_retries=1)
        with pytest.raises(TempbenchError, match="HTTP 400") as bad:
            m.generate([ModelInput(None, "q", 0)])
        srv.custom_next(2, echo_500)
        with pytest.raises(TempbenchError, match="no answer after 2 attempts") as down:
            m.generate([ModelInput(None, "q", 1)])
    for err in (bad.value, down.value):
        assert key not in str(err) and "ABCDEFGH" not in str(err) and "[redacted]" in str(err), str(err)
    assert m.redact("Bearer sk-other-0123456789 and token=sk-abcdefghij123") == \
        "Bearer [redacted] and token=[redacted]"


# ---------------------------------------------------------------------------------------------------------------
# faults (issue 12, item 7)


def test_empty_choices_become_an_error_for_that_query_only(no_env_keys):
    """Before: one answer with empty `choices` aborted the run and threw away the batch's good answers."""
    with OpenAITestServer() as srv:
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, json.dumps(
            {"object": "chat.completion", "model": "test-model", "choices": []}).encode()))
        m = OpenAIChat("m", srv.base_url, api_key="", concurrency=1)
        out = m.generate([ModelInput(None, "first", 0), ModelInput(None, "second", 1)])
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, completion({"not": "text"})))
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, completion(None)))
        more = m.generate([ModelInput(None, "third", 2), ModelInput(None, "fourth", 3)])
    assert isinstance(out[0], FailedAnswer) and "no choices" in out[0].message
    assert out[1] == "<answer> 0.00 to 7.00 </answer>"
    assert isinstance(more[0], FailedAnswer) and "no text" in more[0].message
    assert more[1] == ""  # content null: an empty answer, which fails to parse


def test_a_server_that_never_answers_fails_within_the_deadline(no_env_keys):
    """Before: 6 attempts x 120 s = 12.5 minutes, and a dripping answer hung forever."""
    with OpenAITestServer(delay=30) as srv:
        m = OpenAIChat("m", srv.base_url, api_key="", timeout=0.4, deadline=1.2, max_retries=5, backoff=0.01)
        began = time.monotonic()
        with pytest.raises(TempbenchError, match=r"no answer after \d attempts .*deadline of 1.2 s passed"):
            m.generate([ModelInput(None, "q", 0)])
        assert time.monotonic() - began < 3
        srv.delay = 0
        srv.custom_next(5, lambda h, body: respond_raw(h, 200, completion("1 to 2" + " " * 400), drip=0.02))
        m = OpenAIChat("m", srv.base_url, api_key="", timeout=0.5, deadline=30, max_retries=1, backoff=0.01)
        began = time.monotonic()
        with pytest.raises(TempbenchError, match="took more than 0.5 s"):
            m.generate([ModelInput(None, "q", 1)])
        assert time.monotonic() - began < 3


def test_answers_over_the_size_cap_are_error_rows_not_truncated(no_env_keys):
    """Before: sixteen 20 MB answers made a 320 MB predictions file."""
    huge = completion("1 to 2 " * 400_000)  # 2.8 MB
    with OpenAITestServer() as srv:
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, huge))
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, huge, length=False))  # no Content-Length
        m = OpenAIChat("m", srv.base_url, api_key="", concurrency=1)
        out = m.generate([ModelInput(None, "a", 0), ModelInput(None, "b", 1), ModelInput(None, "c", 2)])
        small = OpenAIChat("m", srv.base_url, api_key="", max_answer_bytes=100)
        srv.custom_next(1, lambda h, body: respond_raw(h, 200, completion("x" * 200)))
        capped = small.generate([ModelInput(None, "d", 3)])
    assert isinstance(out[0], FailedAnswer) and "2,800,1" in out[0].message and "max_answer_bytes=1,048,576" in \
        out[0].message
    assert isinstance(out[1], FailedAnswer) and "more than max_answer_bytes" in out[1].message
    assert out[2] == "<answer> 0.00 to 2.00 </answer>"
    assert isinstance(capped[0], FailedAnswer)


def test_option_types_are_checked(no_env_keys):
    for bad in ({"timeout": "soon"}, {"concurrency": 2.5}, {"max_retries": True}, {"mode": "pixels"},
                {"extra_body": "[1]"}, {"deadline": 0}):
        with pytest.raises(TempbenchError):
            OpenAIChat("m", "http://127.0.0.1:9/v1", **bad)
    with pytest.raises(TempbenchError, match="is not a URL|need an http"):
        OpenAIChat("m", "ftp://127.0.0.1/v1")
