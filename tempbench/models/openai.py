"""OpenAI-compatible chat-completions backend (vLLM, SGLang, LMDeploy, TGI, hosted APIs).

Each query is one request to `{api_base}/chat/completions` with one user message:

- `mode="frames"` (default): for every sampled frame a text part `Frame at {t:.1f}s:` (the frame's true
  timestamp) followed by the frame as a base64 `image_url` (JPEG via Pillow when installed, else PNG written
  with zlib), then the prompt text. Works with any server that accepts images; the server's own image
  preprocessing applies (e.g. vLLM resizes each image with the model's processor).
- `mode="video_url"`: one `video_url` part pointing at the video file (`file://` path, or `video_url_base` +
  file name), then the prompt; the server decodes and samples the video itself (vLLM: start it with
  `--allowed-local-media-path` for file URLs). The clip's frames are not used; its path is.

Requests run in a thread pool (`concurrency`). Each attempt has `timeout` seconds in all (connecting, waiting and
reading the answer, however slowly it drips), each request `deadline` seconds in all, retries included; 408/429,
5xx and connection errors are retried with exponential backoff (honouring `Retry-After`). Only the standard
library is used (urllib).

Keys (docs/models.md): `$OPENAI_API_KEY` is sent only to OpenAI's own API (`https://api.openai.com`); any other
server gets a key only from the variable that `api_key_env` names (or `api_key`, or credentials written into
the URL, sent as HTTP Basic), and a key travels over plain http only to this machine (loopback). Redirects are
never followed (the request carries the key and the prompts). The address is recorded without its credentials, and
keys are cut out of every message that echoes a server's answer.

Answers: a reply that is not a chat completion stops the run (the address is not an OpenAI-compatible chat
endpoint); a chat completion without a usable answer (empty `choices`, no text) or an answer over
`max_answer_bytes` becomes an error row for that query and the run goes on (`tempbench.models.base.FailedAnswer`).
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
from tempbench.models.base import BatchError, FailedAnswer, GenerationSettings, ModelInput
from tempbench.results import ModelIdentity

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
OPENAI_HOST = "api.openai.com"
KEY_POLICY = ("OPENAI_API_KEY is sent only to https://api.openai.com; another server gets a key only from "
              "--api-key-env NAME, and over plain http only on this machine (127.0.0.1, localhost)")
#: options that `tempbench run --model-args` may set (the rest of __init__'s are for the Python API)
MODEL_ARGS = {"mode": str, "image_format": str, "jpeg_quality": int, "video_url_base": str, "concurrency": int,
              "timeout": float, "deadline": float, "max_retries": int, "backoff": float, "max_backoff": float,
              "max_answer_bytes": int, "max_tokens_field": str, "extra_body": dict}


def is_loopback(host: str | None) -> bool:
    """`localhost` or a loopback IP literal (127.0.0.0/8, ::1); names are not resolved (DNS could say anything)."""
    import ipaddress

    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Refused(Exception):
    """An attempt that must not be retried: the message, its hint, and whether the run can go on (a per-query
    problem) or not."""

    def __init__(self, message: str, hint: str | None = None, per_query: bool = False):
        super().__init__(message)
        self.message, self.hint, self.per_query = message, hint, per_query


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - never follow: the key is on board
        return None


def public_url(url: str) -> str:
    """`url` without credentials (`http://user:KEY@host/v1` -> `http://host/v1`): what may be written anywhere."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]  # host[:port] as written ([::1]:8000 keeps its brackets)
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
        deadline: float = 300.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_answer_bytes: int = 1 << 20,
        generation: GenerationSettings | None = None,
        extra_body: dict | None = None,
        max_tokens_field: str = "max_tokens",
        name: str | None = None,
    ):
        from urllib.parse import urlsplit

        if not model:
            raise TempbenchError("openai: model name is empty", hint="use --model openai:MODEL_NAME")
        given = {"mode": mode, "image_format": image_format, "jpeg_quality": jpeg_quality, "concurrency": concurrency,
                 "timeout": timeout, "deadline": deadline, "max_retries": max_retries, "backoff": backoff,
                 "max_backoff": max_backoff, "max_answer_bytes": max_answer_bytes, "max_tokens_field": max_tokens_field}
        if video_url_base is not None:
            given["video_url_base"] = video_url_base
        if extra_body is not None:
            given["extra_body"] = extra_body
        for key, value in given.items():
            kind = MODEL_ARGS[key]
            ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
            if not ok or (isinstance(value, bool) and kind is not bool):
                raise TempbenchError(f"openai option {key}={value!r} must be "
                                     + {float: "a number", int: "an integer", str: "text", dict: "a JSON object"}[kind],
                                     "e.g. --model-args timeout=300,max_retries=3,concurrency=4")
        if mode not in ("frames", "video_url"):
            raise TempbenchError(f"openai: unknown mode {mode!r}", hint="use --model-args mode=frames or mode=video_url")
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or deadline <= 0 or max_answer_bytes < 1:
            raise TempbenchError("openai: concurrency >= 1, max_retries >= 0, timeout > 0, deadline > 0 and "
                                 "max_answer_bytes >= 1 are required", "e.g. --model-args timeout=300,concurrency=4")
        api_base = api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
        if not api_base:
            raise TempbenchError(
                f"openai:{model} needs a server address", hint="pass --api-base http://HOST:PORT/v1"
            )
        try:
            parts = urlsplit(api_base)
            host, _ = parts.hostname, parts.port  # .port raises on a bad port
        except ValueError:
            raise TempbenchError(f"--api-base {public_url(api_base)!r} is not a URL",
                                 "e.g. --api-base http://127.0.0.1:8000/v1") from None
        if parts.scheme not in ("http", "https") or not host:
            raise TempbenchError(f"--api-base {public_url(api_base)!r}: need an http:// or https:// address",
                                 "e.g. --api-base http://127.0.0.1:8000/v1")
        self.model = model
        self.name = name or f"openai:{model}"
        self.api_base = public_url(api_base).rstrip("/")  # credentials never reach a record, a message or a hash
        self.url = self.api_base + "/chat/completions"
        official = parts.scheme == "https" and host.lower() == OPENAI_HOST
        self._secrets: list[str] = []
        auth, self.key_source = None, None
        if api_key is not None:
            key, self.key_source = api_key, "api_key"
        elif api_key_env:
            key = os.environ.get(api_key_env)
            if key is None:
                raise TempbenchError(f"environment variable {api_key_env} is not set",
                                     hint="export it or drop --api-key-env")
            self.key_source = api_key_env
        elif official:
            key = os.environ.get("OPENAI_API_KEY")
            self.key_source = "OPENAI_API_KEY" if key else None
        else:
            key = None  # OPENAI_API_KEY is for OpenAI's own API only
        if not key:
            self.key_source = None
        if key:
            auth = f"Bearer {key}"
            self._secrets.append(key)
        elif parts.username is not None or parts.password is not None:
            user_pass = f"{parts.username or ''}:{parts.password or ''}"
            from urllib.parse import unquote

            encoded = base64.b64encode(unquote(user_pass).encode()).decode("ascii")
            auth, self.key_source = f"Basic {encoded}", "credentials in --api-base"
            self._secrets += [s for s in (parts.password, parts.username, unquote(user_pass), user_pass, encoded)
                              if s]
        if auth is not None and parts.scheme == "http" and not is_loopback(host):
            raise TempbenchError(f"--api-base {self.api_base}: a key would travel unencrypted (plain http) to "
                                 f"{host}", "use https:// for a remote server; plain http is for servers on this "
                                 "machine (127.0.0.1, localhost)")
        self._auth = auth
        self.mode = mode
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.video_url_base = video_url_base
        self.concurrency = int(concurrency)
        self.timeout = float(timeout)
        self.deadline = float(deadline)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_answer_bytes = int(max_answer_bytes)
        self.generation = generation or GenerationSettings()
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self._pool: ThreadPoolExecutor | None = None
        self._opener = urllib.request.build_opener(_NoRedirect())
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._lock = threading.Lock()
        self._fingerprints: set[str] = set()
        self._served_model: str | None = None

    def redact(self, text: str) -> str:
        """`text` (e.g. a server's error body, which may echo the request) without the key or credentials."""
        import re

        for secret in sorted(self._secrets, key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "[redacted]")
        text = re.sub(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}", r"\1 [redacted]", text)
        return re.sub(r"\bsk-[A-Za-z0-9_-]{8,}", "[redacted]", text)

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
    def _attempt(self, data: bytes, headers: dict, budget: float) -> dict:
        """One POST with `budget` seconds in all; the decoded JSON answer. Raises HTTPError / OSError / ValueError
        for what may be retried, _Refused for what may not."""
        began = time.monotonic()
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        with self._opener.open(req, timeout=max(0.05, budget)) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self.max_answer_bytes:
                raise _Refused(f"answer of {int(length):,} bytes is over max_answer_bytes={self.max_answer_bytes:,}",
                               per_query=True)
            chunks, size = [], 0
            while True:
                if time.monotonic() - began > budget:
                    raise TimeoutError(f"the answer took more than {budget:.3g} s to arrive")
                block = resp.read1(1 << 16)
                if not block:
                    break
                size += len(block)
                if size > self.max_answer_bytes:
                    raise _Refused(f"answer of more than max_answer_bytes={self.max_answer_bytes:,} bytes",
                                   per_query=True)
                chunks.append(block)
            return json.loads(b"".join(chunks).decode("utf-8"))

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._auth:
            headers["Authorization"] = self._auth
        started = time.monotonic()
        last, attempts = "", 0
        for attempt in range(self.max_retries + 1):
            left = self.deadline - (time.monotonic() - started)
            if left <= 0:
                last += f"; the request deadline of {self.deadline:g} s passed"
                break
            attempts += 1
            self._count("requests")
            retry_after = None
            try:
                return self._attempt(data, headers, min(self.timeout, left))
            except _Refused:
                raise
            except urllib.error.HTTPError as e:
                if e.code in REDIRECT_STATUS:
                    self._count("failures")
                    where = public_url(e.headers.get("Location", "?")) if e.headers else "?"
                    raise _Refused(f"{self.url}: HTTP {e.code} redirect to {self.redact(where)} not followed (the "
                                   "request carries the key and the prompts)",
                                   "give the final address as --api-base") from None
                try:
                    detail = self.redact(e.read(2000).decode("utf-8", "replace")[:500])
                except OSError:
                    detail = ""
                last = f"HTTP {e.code}: {detail}"
                if e.code not in RETRY_STATUS:
                    self._count("failures")
                    hint = (f"check the key ({KEY_POLICY})" if e.code in (401, 403) else
                            "check the model name and request options" if e.code in (400, 404, 422) else None)
                    raise _Refused(f"{self.url}: {last}", hint=hint) from None
                ra = e.headers.get("Retry-After") if e.headers else None
                try:
                    retry_after = float(ra) if ra is not None else None
                except ValueError:
                    retry_after = None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = self.redact(f"{type(e).__name__}: {getattr(e, 'reason', e)}")
            except ValueError as e:  # invalid JSON in a 200 answer: retry, a proxy may have cut it
                last = f"invalid JSON answer: {str(e)[:200]}"
            if attempt == self.max_retries:
                break
            self._count("retries")
            delay = min(self.max_backoff, self.backoff * (2**attempt)) * (0.5 + random.random() / 2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.max_backoff))
            time.sleep(max(0.0, min(delay, self.deadline - (time.monotonic() - started))))
        self._count("failures")
        raise _Refused(
            f"{self.url}: no answer after {attempts} attempts ({last})",
            hint="is the server up? raise --model-args timeout=SECONDS,deadline=SECONDS,max_retries=N or lower "
                 "concurrency=N",
        )

    def _one(self, item: ModelInput) -> str | FailedAnswer:
        """The answer to one query; a FailedAnswer for a per-query problem; _Refused when the run must stop."""
        try:
            answer = self._post(self.request_body(item))
        except _Refused as exc:
            if exc.per_query:
                return FailedAnswer(exc.message)
            raise
        return self._content(answer, item)

    def _content(self, answer, item: ModelInput) -> str | FailedAnswer:
        """The text of a chat completion. Not a chat completion at all: the run stops. A chat completion without a
        usable answer: an error row for this query."""
        shown = self.redact(json.dumps(answer)[:300]) if not isinstance(answer, str) else ""
        kind = answer.get("object") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list) or \
                kind not in (None, "chat.completion"):
            raise _Refused(f"{self.url}: the answer for qid {item.qid} is not a chat completion: {shown}",
                           "is --api-base the OpenAI-compatible /v1 address of the server?")
        if answer.get("system_fingerprint"):
            self._fingerprints.add(str(answer["system_fingerprint"]))
        if answer.get("model"):
            self._served_model = str(answer["model"])
        choices = answer["choices"]
        if not choices:
            return FailedAnswer(f"the server's answer has no choices: {shown}")
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        if not isinstance(message, dict):
            return FailedAnswer(f"the server's answer has no message in choices[0]: {shown}")
        content = message.get("content")
        if content is None:  # an empty answer is an answer (it fails to parse)
            return ""
        if isinstance(content, list) and all(isinstance(p, dict) for p in content):  # content parts
            content = "".join(p["text"] for p in content if isinstance(p.get("text"), str))
        if not isinstance(content, str):
            return FailedAnswer(f"the server's answer has no text in choices[0].message.content: {shown}")
        return content.strip()

    # -- protocol ----------------------------------------------------------------------------------------------
    def generate(self, batch: list[ModelInput]) -> list[str | FailedAnswer]:
        if not batch:
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tempbench-openai")
        futures = [self._pool.submit(self._one, item) for item in batch]
        answers: list = []
        stop: _Refused | None = None
        for future in futures:
            try:
                answers.append(future.result())
            except _Refused as exc:
                answers.append(None)
                stop = stop or exc
        if stop is not None:
            raise BatchError(stop.message, stop.hint, answers)
        return answers

    def identity(self) -> ModelIdentity:
        """The served model (known once an answer names it) and the options that change answers (how frames are
        sent, extra request fields); the server address and request counts are recorded, not compared."""
        options = {"mode": self.mode, "extra_body": self.extra_body}
        if self.mode == "frames":
            options.update(image_format=self.image_format, jpeg_quality=self.jpeg_quality)
        return ModelIdentity(
            spec=f"openai:{self.model}", id=f"openai:{self.model}", backend=self.backend,
            served_model=self._served_model, options=options,
            info={"name": self.name, "api_base": self.api_base, "key_from": self.key_source,
                  # frames mode writes `Frame at t s:` before each image; video_url leaves time to the server
                  "time_convention": "text-timestamps" if self.mode == "frames" else "server-side",
                  "concurrency": self.concurrency, "timeout_s": self.timeout, "deadline_s": self.deadline,
                  "max_retries": self.max_retries, "max_answer_bytes": self.max_answer_bytes,
                  "system_fingerprints": sorted(self._fingerprints), "stats": dict(self.stats)},
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
