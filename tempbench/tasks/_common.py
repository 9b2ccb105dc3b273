"""Small helpers shared by the importers (format errors that name file, line and field)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import TempbenchError


def format_error(path: Path, line: int | None, field: str | None, problem: str, expected: str) -> TempbenchError:
    where = f"{path}" + (f", line {line}" if line is not None else "") + (f", field {field!r}" if field else "")
    return TempbenchError(
        f"{where}: {problem}",
        f"expected {expected}; is this the official file? Check it with `sha256sum` against the task card",
    )


def read_json(path: Path, expected: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise format_error(path, exc.lineno, None, f"not valid JSON ({exc.msg})", expected) from None
    except UnicodeDecodeError:
        raise format_error(path, None, None, "not UTF-8 text", expected) from None


def read_jsonl(path: Path, expected: str) -> list[tuple[int, dict]]:
    rows = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise format_error(path, lineno, None, f"not valid JSON ({exc.msg})", expected) from None
            if not isinstance(row, dict):
                raise format_error(path, lineno, None, "a JSON line that is not an object", expected)
            rows.append((lineno, row))
    return rows


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
