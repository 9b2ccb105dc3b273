"""A real OpenAI-compatible HTTP server for tests (http.server in a thread, bound to 127.0.0.1).

`/v1/chat/completions` answers with `responder(request_json) -> str`: by default a deterministic reply derived
from the request (the number of images and the prompt's length), or the tiny local model run on the text parts
(`tiny_model_responder`). Faults can be injected: `fail_next(n, status)` makes the next n requests fail with
`status` (500, 429 with Retry-After, ...), `delay` slows every answer, `drop_next(n)` closes the connection
without an answer. `requests` keeps every JSON body received; `api_key` requires `Authorization: Bearer KEY`.
`custom_next(n, fn)` hands the next n requests to `fn(handler, body) -> None`, which writes any answer it likes
(a redirect, a body that is not a chat completion, empty `choices`, a huge or dripping answer, an error page that
echoes the request's headers); `respond_raw` is a helper for such answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def deterministic_reply(body: dict) -> str:
    """`<answer> N.00 to M.00 </answer>` where N = number of images, M = N + length of the last text part."""
    parts = body["messages"][-1]["content"]
    if isinstance(parts, str):
        parts = [{"type": "text", "text": parts}]
    n_images = sum(1 for p in parts if p.get("type") == "image_url")
    n_videos = sum(1 for p in parts if p.get("type") == "video_url")
    text = [p["text"] for p in parts if p.get("type") == "text"][-1]
    start = float(n_images + 100 * n_videos)
    return f"<answer> {start:.2f} to {start + len(text) % 50 + 1:.2f} </answer>"


def tiny_model_responder(model_dir, max_new_tokens: int = 8) -> Callable[[dict], str]:
    """Run the tiny local model (text only: the text parts joined) greedily."""
    from tempbench.models.base import GenerationSettings, ModelInput
    from tempbench.models.qwen.adapter import HFQwenVL

    model = HFQwenVL(str(model_dir), generation=GenerationSettings(max_new_tokens=max_new_tokens))
    lock = threading.Lock()

    def respond(body: dict) -> str:
        parts = body["messages"][-1]["content"]
        text = parts if isinstance(parts, str) else "\n".join(p["text"] for p in parts if p.get("type") == "text")
        with lock:
            return model.generate([ModelInput(None, text, 0)])[0]

    return respond


class OpenAITestServer:
    def __init__(self, responder: Callable[[dict], str] = deterministic_reply, api_key: str | None = None,
                 delay: float = 0.0, model_name: str = "test-model"):
        self.responder = responder
        self.api_key = api_key
        self.delay = delay
        self.model_name = model_name
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.headers_seen: list[dict] = []  # the headers of every request, answered or not
        self.attempts = 0
        self._fail: list[tuple[int, dict]] = []
        self._drop = 0
        self._custom: list[Callable] = []
        self._lock = threading.Lock()
        self.max_in_flight = 0
        self._in_flight = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(self, n: int, status: int = 500, retry_after: float | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self._fail.extend([(status, headers)] * n)

    def drop_next(self, n: int) -> None:
        with self._lock:
            self._drop += n

    def custom_next(self, n: int, fn: Callable) -> None:
        with self._lock:
            self._custom.extend([fn] * n)

    def __enter__(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    server.attempts += 1
                    server.headers_seen.append(dict(self.headers))
                    custom = server._custom.pop(0) if server._custom else None
                if custom is not None:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = None
                    return custom(self, body)
                with server._lock:
                    fail = server._fail.pop(0) if server._fail else None
                    drop = fail is None and server._drop > 0  # injected failures first, then drops
                    if drop:
                        server._drop -= 1
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    if drop:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if server.delay:
                        time.sleep(server.delay)
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        return self._send(404, {"error": {"message": f"no route {self.path}"}})
                    if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                        return self._send(401, {"error": {"message": "invalid api key"}})
                    if fail is not None:
                        return self._send(fail[0], {"error": {"message": f"injected {fail[0]}"}}, fail[1])
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        return self._send(400, {"error": {"message": "invalid JSON"}})
                    with server._lock:
                        server.requests.append(body)
                        server.headers.append(dict(self.headers))
                    text = server.responder(body)
                    self._send(200, {
                        "id": f"cmpl-{len(server.requests)}", "object": "chat.completion", "model": server.model_name,
                        "system_fingerprint": "fp-test",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    })
                finally:
                    with server._lock:
                        server._in_flight -= 1

        return Handler


def respond_raw(handler, status: int, body: bytes = b"", headers: dict | None = None, *, length: bool = True,
                drip: float = 0.0) -> None:
    """Write any HTTP answer from a `custom_next` function: status, headers, body (sent byte by byte every `drip`
    seconds when given; without a Content-Length when `length` is False, the connection then closes)."""
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    if length:
        handler.send_header("Content-Length", str(len(body)))
    else:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    try:
        if drip:
            for i in range(len(body)):
                handler.wfile.write(body[i:i + 1])
                handler.wfile.flush()
                time.sleep(drip)
        else:
            handler.wfile.write(body)
    except OSError:  # the client gave up
        handler.close_connection = True


def completion(content, **extra) -> bytes:
    """A chat.completion body with one choice holding `content`."""
    return json.dumps({"id": "cmpl-x", "object": "chat.completion", "model": "test-model",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}], **extra}).encode()
