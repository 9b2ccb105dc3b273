"""tempbench.io: atomic writes with the umask's mode, one-line read errors, the one-writer lock."""

from __future__ import annotations

import os
import stat

import pytest

from tempbench import io
from tempbench.errors import TempbenchError


def test_atomic_write_takes_the_mode_a_plain_open_would(tmp_path):
    old = os.umask(0o027)
    try:
        io.atomic_write_text(tmp_path / "a.json", "{}\n")
        with open(tmp_path / "plain", "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


@pytest.mark.parametrize("data, needle", [
    (b'{"a": 1,\n "b": }', "line 2: not valid JSON"),
    (b"\x1f\x8b\x08\x00rest", "is gzip-compressed"),
    (b'{"a": "\xff"}', "is not UTF-8 text"),
    (b"[1, 2]", "the top level is a list, not a dict"),
    (b"[" * 100_000, "JSON nested too deeply"),
])
def test_read_json_errors_name_the_file_and_line(tmp_path, data, needle):
    path = tmp_path / "f.json"
    path.write_bytes(data)
    with pytest.raises(TempbenchError, match="f.json") as exc:
        io.read_json(path, "a test file")
    assert needle in exc.value.message


def test_non_regular_files_are_refused_not_read(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(TempbenchError, match="is not a regular file"):
        io.read_jsonl(fifo, "rows")
    with pytest.raises(TempbenchError, match="no such file"):
        io.read_jsonl(tmp_path / "nope.jsonl", "rows")


def test_lock_is_exclusive_names_its_holder_and_is_released(tmp_path):
    lock = io.FileLock(tmp_path / ".lock", "run folder X").acquire()
    other = io.FileLock(tmp_path / ".lock", "run folder X")
    with pytest.raises(TempbenchError, match=f"being written by another process \\(pid {os.getpid()};"):
        other.acquire()
    lock.release()
    other.acquire().release()
