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
    (bad / "val_2.json").write_text("{}")
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
