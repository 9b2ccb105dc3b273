"""OpenAI-compatible chat-completions backend (vLLM, SGLang, LMDeploy, TGI, hosted APIs).

Each query is one request to `{api_base}/chat/completions` with one user message:

- `mode="frames"` (default): for every sampled frame a text part `Frame at {t:.1f}s:` (the frame's true
  timestamp) followed by the frame as a base64 `image_url` (JPEG via Pillow when installed, else PNG written
  with zlib), then the prompt text. Works with any server that accepts images; the server's own image
  preprocessing applies (e.g. vLLM resizes each image with the model's processor).
- `mode="video_url"`: one `video_url` part pointing at the video file (`file://` path, or `video_url_base` +
  file name), then the prompt; the server decodes and samples the video itself (vLLM: start it with
  `--allowed-local-media-path` for file URLs). The clip's frames are not used; its path is.

Requests run in a thread pool (`concurrency`), each with a timeout; 429, 5xx and connection errors are retried
with exponential backoff (honouring `Retry-After`). Only the standard library is used (urllib).
The API key comes from `$OPENAI_API_KEY`, or from the variable named by `api_key_env`; none is sent if unset.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import struct
import threading
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tempbench.errors import TempbenchError
from tempbench.models.base import GenerationSettings, ModelInput
from tempbench.results import ModelIdentity

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def public_url(url: str) -> str:
    """`url` without credentials (`http://user:KEY@host/v1` -> `http://host/v1`): what may be written anywhere."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def encode_png(frame) -> bytes:
    """A uint8 (H, W, 3) RGB array as PNG bytes (no compression library beyond zlib; filter type 0)."""
    import numpy as np

    a = np.ascontiguousarray(frame, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got {a.shape}")
    h, w, _ = a.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), a.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def encode_image(frame, fmt: str = "jpeg", quality: int = 90) -> tuple[str, bytes]:
    """(mime type, bytes) of one frame: JPEG (needs Pillow) or PNG (Pillow if present, else zlib)."""
    fmt = fmt.lower()
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if fmt in ("jpeg", "jpg"):
        if Image is None:
            return "image/png", encode_png(frame)  # documented fallback
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
        return "image/jpeg", buf.getvalue()
    if fmt == "png":
        if Image is None:
            return "image/png", encode_png(frame)
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        return "image/png", buf.getvalue()
    raise TempbenchError(f"unknown image format {fmt!r}", hint="use jpeg or png")


class OpenAIChat:
    """Adapter for an OpenAI-compatible `/chat/completions` endpoint (see module docstring)."""

    backend = "openai"
    needs_video = True

    def __init__(
        self,
        model: str,
        api_base: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        mode: str = "frames",
        image_format: str = "jpeg",
        jpeg_quality: int = 90,
        video_url_base: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        generation: GenerationSettings | None = None,
        extra_body: dict | None = None,
        max_tokens_field: str = "max_tokens",
        name: str | None = None,
    ):
        if not model:
            raise TempbenchError("openai: model name is empty", hint="use --model openai:MODEL_NAME")
        api_base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
        if not api_base:
            raise TempbenchError(
                f"openai:{model} needs a server address", hint="pass --api-base http://HOST:PORT/v1"
            )
        if mode not in ("frames", "video_url"):
            raise TempbenchError(f"openai: unknown mode {mode!r}", hint="use frames or video_url")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise TempbenchError("openai: concurrency >= 1, max_retries >= 0 and timeout > 0 are required")
        self.model = model
        self.name = name or f"openai:{model}"
        self.api_base = api_base.rstrip("/")
        self.url = self.api_base + "/chat/completions"
        self.api_key_env = api_key_env or "OPENAI_API_KEY"
        if api_key is None:
            api_key = os.environ.get(self.api_key_env)
            if api_key_env and api_key is None:
                raise TempbenchError(f"environment variable {api_key_env} is not set", hint="export it or drop --api-key-env")
        self._api_key = api_key
        self.mode = mode
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.video_url_base = video_url_base
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.generation = generation or GenerationSettings()
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self._pool: ThreadPoolExecutor | None = None
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._lock = threading.Lock()
        self._fingerprints: set[str] = set()
        self._served_model: str | None = None

    # -- request building --------------------------------------------------------------------------------------
    def _video_url(self, clip) -> str:
        path = getattr(clip, "path", None)
        if not path:
            raise TempbenchError("openai video_url mode needs the clip's file path")
        if self.video_url_base:
            return self.video_url_base.rstrip("/") + "/" + Path(path).name
        if "://" in str(path):
            return str(path)
        return Path(path).resolve().as_uri()

    def content(self, item: ModelInput) -> list[dict]:
        """The user message content parts for one query."""
        parts: list[dict] = []
        clip = item.clip
        if clip is not None and self.mode == "frames":
            for frame, t in zip(clip.frames, clip.timestamps):
                mime, data = encode_image(frame, self.image_format, self.jpeg_quality)
                parts.append({"type": "text", "text": f"Frame at {float(t):.1f}s:"})
                url = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif clip is not None:
            parts.append({"type": "video_url", "video_url": {"url": self._video_url(clip)}})
        parts.append({"type": "text", "text": item.prompt})
        return parts

    def request_body(self, item: ModelInput) -> dict:
        g = self.generation
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.content(item)}],
            self.max_tokens_field: int(g.max_new_tokens),
            "n": 1,
        }
        if g.do_sample:
            body.update(temperature=float(g.temperature), top_p=float(g.top_p))
        else:
            body["temperature"] = 0.0
        if g.seed is not None:
            body["seed"] = int(g.seed)
        if g.repetition_penalty != 1.0:
            body["repetition_penalty"] = float(g.repetition_penalty)  # vLLM / SGLang extension
        body.update(self.extra_body)
        return body

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            self._count("requests")
            retry_after = None
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", "replace")[:500]
                last = f"HTTP {e.code}: {detail}"
                if e.code not in RETRY_STATUS:
                    self._count("failures")
                    hint = "check --api-key-env / OPENAI_API_KEY" if e.code in (401, 403) else (
                        "check the model name and request options" if e.code in (400, 404, 422) else None)
                    raise TempbenchError(f"{self.url}: {last}", hint=hint) from None
                ra = e.headers.get("Retry-After") if e.headers else None
                try:
                    retry_after = float(ra) if ra is not None else None
                except ValueError:
                    retry_after = None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except ValueError as e:  # invalid JSON in a 200 answer: retry, a proxy may have cut it
                last = f"invalid JSON answer: {e}"
            if attempt == self.max_retries:
                break
            self._count("retries")
            delay = min(self.max_backoff, self.backoff * (2**attempt)) * (0.5 + random.random() / 2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
            time.sleep(delay)
        self._count("failures")
        raise TempbenchError(
            f"{self.url}: no answer after {self.max_retries + 1} attempts ({last})",
            hint="is the server up? raise --timeout / --max-retries or lower --concurrency",
        )

    def _one(self, item: ModelInput) -> str:
        answer = self._post(self.request_body(item))
        try:
            choice = answer["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as e:
            raise TempbenchError(f"{self.url}: unexpected answer for qid {item.qid}: {str(answer)[:300]}") from e
        if answer.get("system_fingerprint"):
            self._fingerprints.add(str(answer["system_fingerprint"]))
        if answer.get("model"):
            self._served_model = str(answer["model"])
        if content is None:
            return ""
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content).strip()

    # -- protocol ----------------------------------------------------------------------------------------------
    def generate(self, batch: list[ModelInput]) -> list[str]:
        if not batch:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tempbench-openai")
        return list(self._pool.map(self._one, batch))

    def identity(self) -> ModelIdentity:
        """The served model (known once an answer names it) and the options that change answers (how frames are
        sent, extra request fields); the server address and request counts are recorded, not compared."""
        options = {"mode": self.mode, "extra_body": self.extra_body}
        if self.mode == "frames":
            options.update(image_format=self.image_format, jpeg_quality=self.jpeg_quality)
        return ModelIdentity(
            spec=f"openai:{self.model}", id=f"openai:{self.model}", backend=self.backend,
            served_model=self._served_model, options=options,
            info={"name": self.name, "api_base": public_url(self.api_base), "concurrency": self.concurrency,
                  # frames mode writes `Frame at t s:` before each image; video_url leaves time to the server
                  "time_convention": "text-timestamps" if self.mode == "frames" else "server-side",
                  "timeout_s": self.timeout, "max_retries": self.max_retries,
                  "system_fingerprints": sorted(self._fingerprints), "stats": dict(self.stats)},
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
