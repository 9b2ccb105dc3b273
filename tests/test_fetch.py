"""`data fetch` against a real HTTP server on 127.0.0.1 serving ../shared/data: progress, sha256, resume."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from click.testing import CliRunner

from tempbench.annotations import fetch_task, home, sha256_file
from tempbench.cli import main
from tempbench.errors import TempbenchError


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (enough for resume), counting the requests it sees."""

    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Range")))
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng:
            return super().do_GET()
        try:
            data = open(path, "rb").read()
        except OSError:
            return self.send_error(404)
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(data):
            return self.send_error(416)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(shared_data):
    RangeHandler.requests = []
    handler = functools.partial(RangeHandler, directory=str(shared_data))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_from_loopback_mirror(tb_home, server):
    result = CliRunner().invoke(main, ["data", "fetch", "qvhighlights", "--base-url", server, "--split", "val"])
    assert result.exit_code == 0, result.output
    info = json.loads(CliRunner().invoke(main, ["data", "show", "qvhighlights", "--json"]).output)
    assert info["queries"] == 1550 and info["hash_verified"]
    assert ("/qvhighlights/highlight_val_release.jsonl", None) in RangeHandler.requests


def test_fetch_resumes_a_partial_download(tb_home, server, shared_data, monkeypatch):
    raw = home() / "raw" / "charades"
    raw.mkdir(parents=True)
    full = (shared_data / "charades_sta" / "charades_sta_test.txt").read_bytes()
    (raw / "charades_sta_test.txt.part").write_bytes(full[:100_000])
    monkeypatch.setenv("TEMPBENCH_MIRROR", server)
    result = fetch_task("charades", splits=["test"])
    assert result["imported"]["test"]["n"] == 3720
    assert ("/charades_sta/charades_sta_test.txt", "bytes=100000-") in RangeHandler.requests
    assert sha256_file(raw / "charades_sta_test.txt") == sha256_file(shared_data / "charades_sta" / "charades_sta_test.txt")


def test_fetch_refuses_a_wrong_file_and_removes_it(tb_home, server, tmp_path):
    bad = tmp_path / "mirror" / "activitynet_captions"
    bad.mkdir(parents=True)
    (bad / "val_2.json").write_text("{}" + " " * (1_727_037 - 2))  # the card's size, other bytes: sha256 decides
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(tmp_path / "mirror")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TempbenchError, match="sha256 mismatch"):
            fetch_task("anet", base_url=f"http://127.0.0.1:{httpd.server_address[1]}", splits=["val_2"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not (home() / "raw" / "anet" / "val_2.json.part").exists()


def test_fetch_unreachable_server_is_a_clear_error(tb_home):
    result = CliRunner().invoke(main, ["data", "fetch", "anet", "--base-url", "http://127.0.0.1:9", "--split", "val_2"])
    assert result.exit_code == 2
    assert "download of http://127.0.0.1:9/activitynet_captions/val_2.json failed" in result.output


# ---------------------------------------------------------------------------------------------------------------
# faults (issue 12, item 5): a real HTTP server on 127.0.0.1 that misbehaves in one way per test

import hashlib  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

from tempbench.annotations import FetchPolicy, _download  # noqa: E402

PAYLOAD = os.urandom(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
FAST = FetchPolicy(timeout=5, deadline=20, min_rate=0, rate_window=1, retries=3, backoff=0.05, max_backoff=0.2)


class FaultyHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path; `mode` says how it misbehaves; `seen` records (Range header) per request."""

    protocol_version = "HTTP/1.1"
    mode = "ok"
    seen: list = []
    fail_first = 0

    def log_message(self, *args):
        pass

    def _headers(self, status, length=None, extra=None):
        self.send_response(status)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def do_GET(self):
        cls = type(self)
        cls.seen.append(self.headers.get("Range"))
        n = len(cls.seen)
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        body = PAYLOAD[start:]
        status = 206 if start else 200
        extra = {"Content-Range": f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"} if start else {}
        if n <= cls.fail_first:
            return self._headers(cls.mode_status, 0, cls.mode_headers)
        if cls.mode == "short" and n == 1:  # announce everything, send a third, hang up
            self._headers(status, len(body), extra)
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        if cls.mode == "endless":  # 200, no length, never ends
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                while True:
                    self.wfile.write(b"x" * 65536)
            except OSError:
                return
        if cls.mode == "announce-more":
            self._headers(200, 20_000_000)
            return
        if cls.mode == "drip":
            self._headers(status, len(body), extra)
            try:
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return
            return
        if cls.mode == "wrong-offset" and n == 2:  # ignores where the client asked to resume
            self._headers(206, len(PAYLOAD) - 10, {"Content-Range": f"bytes 10-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"})
            self.wfile.write(PAYLOAD[10:])
            return
        self._headers(status, len(body), extra)
        self.wfile.write(body)


@pytest.fixture
def faulty(tmp_path):
    def start(mode="ok", fail_first=0, status=503, headers=None, port=0):
        FaultyHandler.mode, FaultyHandler.seen, FaultyHandler.fail_first = mode, [], fail_first
        FaultyHandler.mode_status, FaultyHandler.mode_headers = status, headers or {}
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), FaultyHandler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/file.bin"

    servers: list = []
    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_short_read_is_detected_kept_and_resumed(faulty, tmp_path):
    """Before: a server that closes early left a part that failed the sha256 and was deleted (nothing to resume).
    Now Content-Length is checked, the part is kept and the next attempt asks for the rest with Range."""
    url = faulty("short")
    dest = tmp_path / "file.bin"
    _download(url, dest, PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert dest.read_bytes() == PAYLOAD
    assert FaultyHandler.seen == [None, f"bytes={len(PAYLOAD) // 3}-"]


def test_short_reads_that_never_finish_keep_the_part(faulty, tmp_path):
    url = faulty("short")
    dest = tmp_path / "file.bin"
    with pytest.raises(TempbenchError, match=r"failed after 1 attempt\(s\): the server closed the connection after "
                                             r"100,000 of 300,000 bytes") as info:
        _download(url, dest, PAYLOAD_SHA, len(PAYLOAD), policy=FetchPolicy(retries=0))
    assert "partial download is kept" in info.value.hint
    assert (tmp_path / "file.bin.part").read_bytes() == PAYLOAD[:100_000]


def test_an_endless_answer_stops_at_the_card_size(faulty, tmp_path):
    """Before: an endless 200 wrote 20 MB for a 1.2 MB file and filled the disk."""
    url = faulty("endless")
    with pytest.raises(TempbenchError, match="sent more than the 300,000 bytes the task card pins"):
        _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert not (tmp_path / "file.bin.part").exists() and not (tmp_path / "file.bin").exists()


def test_an_announced_size_other_than_the_card_is_refused_before_any_byte(faulty, tmp_path):
    url = faulty("announce-more")
    with pytest.raises(TempbenchError, match="announces 20,000,000 bytes but the task card pins 300,000"):
        _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert not (tmp_path / "file.bin.part").exists()


def test_a_drip_server_shows_progress_and_is_stopped_by_the_minimum_rate(faulty, tmp_path):
    """Before: 1 byte / 0.5 s showed no progress (64 KiB reads) and never timed out."""
    url = faulty("drip")
    seen = []
    began = time.monotonic()
    with pytest.raises(TempbenchError, match=r"too slow: \d+ bytes/s over the last 1 s \(the minimum is 1,000\)"):
        _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD),
                  progress=lambda name, done, total: seen.append((done, total)),
                  policy=FetchPolicy(timeout=5, deadline=30, min_rate=1000, rate_window=1, retries=3))
    assert time.monotonic() - began < 5
    assert len(seen) > 5 and seen[-1][0] > 5 and all(total == len(PAYLOAD) for _, total in seen)
    assert (tmp_path / "file.bin.part").stat().st_size == seen[-1][0]  # kept for the next run


def test_the_overall_deadline_stops_a_slow_download(faulty, tmp_path):
    url = faulty("drip")
    began = time.monotonic()
    with pytest.raises(TempbenchError, match=r"did not finish within 1.5 s"):
        _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD),
                  policy=FetchPolicy(timeout=5, deadline=1.5, min_rate=0, rate_window=1))
    assert time.monotonic() - began < 4


def test_server_errors_are_retried_with_backoff(faulty, tmp_path):
    url = faulty("ok", fail_first=2, status=503)
    _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD and len(FaultyHandler.seen) == 3


def test_retry_after_is_honoured(faulty, tmp_path):
    url = faulty("ok", fail_first=1, status=429, headers={"Retry-After": "0.6"})
    began = time.monotonic()
    _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD),
              policy=FetchPolicy(timeout=5, retries=2, backoff=0.01, max_backoff=5))
    assert time.monotonic() - began >= 0.6


def test_client_errors_are_not_retried(faulty, tmp_path):
    url = faulty("ok", fail_first=5, status=404)
    with pytest.raises(TempbenchError, match="HTTP 404"):
        _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert len(FaultyHandler.seen) == 1


def test_a_server_that_resumes_at_the_wrong_offset_is_restarted(faulty, tmp_path):
    (tmp_path / "file.bin.part").write_bytes(PAYLOAD[:5000])
    url = faulty("wrong-offset")
    FaultyHandler.seen = [None]  # the next request is the second: the one that answers from byte 10
    _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connections_are_retried_until_the_server_is_up(faulty, tmp_path):
    port = _free_port()
    timer = threading.Timer(0.5, lambda: faulty("ok", port=port))
    timer.start()
    try:
        _download(f"http://127.0.0.1:{port}/file.bin", tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD),
                  policy=FetchPolicy(timeout=5, retries=6, backoff=0.2, max_backoff=1))
    finally:
        timer.join()
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD


def test_refused_connections_give_up_with_the_attempts_named(tmp_path):
    port = _free_port()
    with pytest.raises(TempbenchError, match=r"failed after 3 attempt\(s\): ConnectionRefusedError"):
        _download(f"http://127.0.0.1:{port}/f", tmp_path / "f", PAYLOAD_SHA, len(PAYLOAD),
                  policy=FetchPolicy(retries=2, backoff=0.01))


def test_cli_fetch_survives_a_short_read_of_a_real_file(tb_home, shared_data):
    class ShortOnce(RangeHandler):
        cut = True

        def do_GET(self):
            type(self).requests.append((self.path, self.headers.get("Range")))
            if type(self).cut and self.path.endswith("highlight_val_release.jsonl"):
                type(self).cut = False
                data = open(self.translate_path(self.path), "rb").read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:200_000])
                self.close_connection = True
                return
            return RangeHandler.do_GET(self)

    RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(ShortOnce, directory=str(shared_data)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        result = CliRunner().invoke(main, ["data", "fetch", "qvhighlights", "--split", "val", "--base-url",
                                           f"http://127.0.0.1:{httpd.server_address[1]}"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 0, result.output
    assert ("/qvhighlights/highlight_val_release.jsonl", "bytes=200000-") in RangeHandler.requests


def test_a_full_disk_during_a_download_is_one_line_and_keeps_the_part(faulty, tmp_path):
    """RLIMIT_FSIZE in a subprocess: the part file hits the limit (EFBIG from write); one line, part kept."""
    import resource
    import subprocess
    import sys

    url = faulty("ok")
    code = ("import sys\nfrom tempbench.annotations import FetchPolicy, _download\nfrom tempbench.errors import "
            "TempbenchError\ntry:\n    _download(sys.argv[1], __import__('pathlib').Path(sys.argv[2]), sys.argv[3], "
            "int(sys.argv[4]), policy=FetchPolicy(retries=0))\nexcept TempbenchError as e:\n    print(e)\n"
            "    sys.exit(2)\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    proc = subprocess.run([sys.executable, "-c", code, url, str(tmp_path / "file.bin"), PAYLOAD_SHA,
                           str(len(PAYLOAD))], capture_output=True, text=True, timeout=60, preexec_fn=limit)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "file.bin.part: cannot write the download: the file size limit is reached" in proc.stdout
    assert 0 < (tmp_path / "file.bin.part").stat().st_size <= 100_000
    _download(url, tmp_path / "file.bin", PAYLOAD_SHA, len(PAYLOAD), policy=FAST)  # space again: it resumes
    assert (tmp_path / "file.bin").read_bytes() == PAYLOAD and FaultyHandler.seen[-1] is not None
