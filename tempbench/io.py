"""Files: sha256, atomic writes, JSON and JSON-lines reading with errors that name the file and line, deterministic
JSON writing, one-writer locks, and the git revision of the checkout. Every other module reads and writes through
these, so a bad file always gets the same kind of one-line message and nothing is ever half written."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import TempbenchError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    """The process umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename: readers never see half a file. The file
    gets the mode a plain `open(path, "w")` would give (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_text(data, *, sort_keys: bool = True) -> str:
    """Deterministic, strict JSON (2-space indent, UTF-8, trailing newline; NaN and infinities refused)."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data, *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json_text(data, sort_keys=sort_keys))


def _where(path, line: int | None = None, field: str | None = None) -> str:
    return f"{path}" + (f", line {line}" if line is not None else "") + (f", field {field!r}" if field else "")


def file_error(path, problem: str, hint: str | None = None, *, line: int | None = None,
               field: str | None = None) -> TempbenchError:
    """The one shape of a bad-input error: `FILE, line N, field 'F': problem` with what to do."""
    return TempbenchError(f"{_where(path, line, field)}: {problem}", hint)


def read_bytes(path: str | os.PathLike, expected: str) -> bytes:
    """The bytes of a regular file; a missing file, a folder or a FIFO/device is a clear error (a FIFO would block)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise file_error(path, "no such file", f"give the path of {expected}") from None
    except OSError as exc:
        raise file_error(path, f"cannot be read ({exc.strerror})", f"give the path of {expected}") from None
    if not stat.S_ISREG(mode):
        raise file_error(path, "is not a regular file", f"give the path of {expected}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise file_error(path, f"cannot be read ({exc.strerror})", f"give the path of {expected}") from None


def decode_text(data: bytes, path, expected: str) -> str:
    """UTF-8 text (a leading BOM is accepted); anything else names the file and the first bad line."""
    if data[:2] == b"\x1f\x8b":
        raise file_error(path, "is gzip-compressed", f"decompress it (gunzip); expected {expected}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise file_error(path, f"is not UTF-8 text (byte {exc.start})", f"expected {expected} in UTF-8",
                         line=line) from None


def loads(text: str, path, line: int | None, expected: str):
    """json.loads with a one-line error (deep nesting included)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = line if line is not None else exc.lineno
        raise file_error(path, f"not valid JSON ({exc.msg})", f"expected {expected}", line=at) from None
    except RecursionError:
        raise file_error(path, "JSON nested too deeply", f"expected {expected}", line=line) from None
    except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() (4300) digits
        problem = "an integer with too many digits" if "digits" in str(exc) else f"not valid JSON ({exc})"
        raise file_error(path, problem, f"expected {expected}", line=line) from None


def read_json(path: str | os.PathLike, expected: str, *, kind: type | None = dict):
    """A JSON document; `kind` (default dict) is the type its top level must have (None: any)."""
    data = loads(decode_text(read_bytes(path, expected), path, expected), path, None, expected)
    if kind is not None and not isinstance(data, kind):
        raise file_error(path, f"the top level is a {type(data).__name__}, not a {kind.__name__}",
                         f"expected {expected}")
    return data


def iter_jsonl(text: str, path, expected: str, *, objects: bool = True) -> Iterator[tuple[int, object]]:
    """(line number, value) for every non-blank line of JSON-lines text; `objects` refuses non-object lines."""
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        value = loads(line, path, lineno, expected)
        if objects and not isinstance(value, dict):
            raise file_error(path, f"a {type(value).__name__} where a JSON object belongs", f"expected {expected}",
                             line=lineno)
        yield lineno, value


def read_jsonl(path: str | os.PathLike, expected: str, *, objects: bool = True) -> list[tuple[int, object]]:
    return list(iter_jsonl(decode_text(read_bytes(path, expected), path, expected), path, expected,
                           objects=objects))


WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the file system is read-only",
                errno.EDQUOT: "the disk quota is exceeded", errno.EFBIG: "the file size limit is reached",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.ENOTDIR: "a part of the path is a file, not a folder",
                errno.EEXIST: "a part of the path is a file, not a folder",
                errno.EISDIR: "it is a folder, not a file", errno.ENAMETOOLONG: "the name is too long"}
_PATH_ERRNOS = {errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create `path` (a folder) or say in one line why it cannot be (a file in the way, a read-only disk...)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise TempbenchError(f"{what} {path}: a file of that name is in the way", "choose another folder") from None
    except NotADirectoryError:
        raise TempbenchError(f"{what} {path}: a part of the path is a file, not a folder",
                             "choose another folder") from None
    except OSError as exc:
        reason = WRITE_ERRNOS.get(exc.errno, exc.strerror or str(exc))
        raise TempbenchError(f"{what} {path}: cannot be created ({reason})", "choose another folder") from None
    return path


def disk_error(exc: OSError, path, what: str) -> TempbenchError:
    """A write that failed (disk full, read-only, quota, a file where a folder belongs) as one line that says why
    and what was kept."""
    reason = WRITE_ERRNOS.get(exc.errno, exc.strerror or str(exc))
    if exc.errno in _PATH_ERRNOS:
        return TempbenchError(f"{path}: cannot write {what}: {reason}", "choose another path")
    return TempbenchError(f"{path}: cannot write {what}: {reason}",
                          "free space or choose another folder, then run again (everything written so far is kept)")


class FileLock:
    """An exclusive lock on `path` (an OS lock, released when the process dies); the holder's PID is written into
    the file so a refusal can name it. `acquire()` raises TempbenchError when another process holds it."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise TempbenchError(f"{self.what} is being written by another process (pid {holder}; lock "
                                 f"{self.path})", "wait for it to finish, or write to another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def git_revision() -> str | None:
    """The git commit of the tempbench checkout, when installed from one (read from .git, no subprocess)."""
    root = Path(__file__).resolve().parent.parent
    git = root / ".git"
    try:
        ref = (git / "HEAD").read_text().strip()
        if not ref.startswith("ref: "):
            return ref
        name = ref[5:]
        if (git / name).exists():
            return (git / name).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + name):
                return line.split()[0]
    except OSError:
        pass
    return None
