"""User-facing errors: one clear line, what to do next, exit code 2 (no traceback)."""

from __future__ import annotations


class TempbenchError(Exception):
    """An error caused by input or environment, reported to the user without a traceback."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(TempbenchError):
    """A wrong task, split, profile or model name."""
