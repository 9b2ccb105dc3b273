"""Small helpers shared by the importers (format errors that name file, line and field)."""

from __future__ import annotations

from pathlib import Path

from .. import io
from ..errors import TempbenchError

HINT = "is this the official file? Check it with `sha256sum` against the task card"


def format_error(path: Path, line: int | None, field: str | None, problem: str, expected: str) -> TempbenchError:
    return io.file_error(path, problem, f"expected {expected}; {HINT}", line=line, field=field)


def read_text(path: Path, expected: str) -> str:
    """A raw file's text (UTF-8); a binary or otherwise encoded file is one line naming it."""
    return io.decode_text(io.read_bytes(path, f"{expected}; {HINT}"), path, f"{expected}; {HINT}")


def read_json(path: Path, expected: str):
    return io.read_json(path, f"{expected}; {HINT}", kind=None)


def read_jsonl(path: Path, expected: str) -> list[tuple[int, dict]]:
    return io.read_jsonl(path, f"{expected}; {HINT}")


def as_number(value, path: Path, line: int | None, field: str, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise format_error(path, line, field, f"{value!r} is not a number", expected) from None
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise format_error(path, line, field, f"{value!r} is not a finite number", expected)
    return value
