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
    assert out[0] == responder(srv.requests[0])
    assert any(re.search(r"Frame at", p.get("text", "")) for p in srv.requests[0]["messages"][0]["content"])


def test_time_convention_is_recorded_per_mode():
    """frames mode writes `Frame at t s:` before each image (text-timestamps); video_url leaves time to the server."""
    frames = OpenAIChat("m", "http://127.0.0.1:9/v1", api_key="")
    video = OpenAIChat("m", "http://127.0.0.1:9/v1", api_key="", mode="video_url")
    assert frames.identity().info["time_convention"] == "text-timestamps"
    assert video.identity().info["time_convention"] == "server-side"
