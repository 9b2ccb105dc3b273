"""Annotations: the cache, `data import` (offline, from official files), `data fetch` (pinned public copies,
sha256-checked, resumable), loading unified records, and ground-truth quirk reports.

Cache layout (`$TEMPBENCH_HOME`, default `~/.cache/tempbench`):
  annotations/<task>/<split>.jsonl   unified records, one per query
  annotations/<task>/manifest.json   per split: raw files and their sha256, record count, records sha256
  raw/<task>/<file>                  files downloaded by `data fetch`
  <task>/<split>/                    generated tasks (synthetic, synthetic-hard): annotations, videos
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import TempbenchError
from .io import atomic_write_text, disk_error, read_json, read_jsonl, sha256_file
from .quirks import find_quirks
from .tasks import AnnotatedSplit, TaskSpec, check_split, custom_task, get_task

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def home() -> Path:
    return Path(os.environ.get("TEMPBENCH_HOME") or Path.home() / ".cache" / "tempbench").expanduser()


def records_to_jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def task_dir(task: TaskSpec) -> Path:
    return home() / "annotations" / task.name


def split_path(task: TaskSpec, split: str) -> Path:
    return task_dir(task) / f"{split}.jsonl"


def read_manifest(task: TaskSpec) -> dict:
    path = task_dir(task) / "manifest.json"
    if not path.exists():
        return {}
    try:
        return read_json(path, "the cache's manifest")
    except TempbenchError:
        raise TempbenchError(f"{path} is corrupt", f"re-run `tempbench data import {task.name} --from DIR`") from None


def annotation_validator():
    import jsonschema

    from .results import load_schema

    return jsonschema.Draft202012Validator(load_schema("annotation"))


def validate_records(records: list[dict], source: str) -> None:
    """Check every record against the annotation schema and qid uniqueness (import time, not on the score path)."""
    validator = annotation_validator()
    seen = set()
    for i, record in enumerate(records):
        error = next(iter(validator.iter_errors(record)), None)
        if error is not None:
            field = ".".join(str(p) for p in error.absolute_path) or "(record)"
            raise TempbenchError(f"{source}: record {i} (qid {record.get('qid')!r}), field {field}: {error.message}")
        if record["qid"] in seen:
            raise TempbenchError(f"{source}: record {i}: duplicate qid {record['qid']}")
        seen.add(record["qid"])


# ---------------------------------------------------------------------------------------------------------------
# import


def _find_file(src: Path, name: str, expected_sha: str) -> Path | None:
    """The official file `name` in src or below; with several copies, the one whose hash matches."""
    direct = src / name
    candidates = [direct] if direct.is_file() else []
    candidates += [p for p in sorted(src.rglob(name)) if p.is_file() and p != direct]
    if len(candidates) > 1:
        for p in candidates:
            if sha256_file(p) == expected_sha:
                return p
    return candidates[0] if candidates else None


def import_task(task_name: str, src: Path, splits: list[str] | None = None,
                allow_hash_mismatch: bool = False, progress=None) -> dict:
    """Find the official raw files in src, check their sha256 against the card, convert them and write each
    split's unified records into the cache atomically. Returns {split: {"n", "path", ...}} for the imported splits."""
    task = get_task(task_name)
    if task.builtin:
        raise TempbenchError(f"task {task.name!r} is generated locally and needs no import",
                             f"use it directly, e.g. `tempbench data show {task.name}`")
    src = Path(src).expanduser()
    if not src.is_dir():
        raise TempbenchError(f"{src} is not a folder", f"give the folder that holds the official {task.title} files")
    wanted = [check_split(task, s) for s in splits] if splits else list(task.splits)
    files_card = task.card["files"]
    manifest = read_manifest(task)
    imported, skipped = {}, {}
    for split in wanted:
        names = task.files_for(split)
        found = {n: _find_file(src, n, files_card[n]["sha256"]) for n in names}
        missing = [n for n, p in found.items() if p is None]
        if missing:
            skipped[split] = missing
            continue
        hashes = {}
        for name, path in found.items():
            actual = sha256_file(path)
            expected = files_card[name]["sha256"]
            if actual != expected and not allow_hash_mismatch:
                raise TempbenchError(
                    f"{path}: sha256 mismatch for {name}: expected {expected}, got {actual}",
                    "this is not the official file the task card pins (numbers would not be comparable); "
                    "use the official file, or pass --allow-hash-mismatch to import it anyway (the result records "
                    "will carry its hash)",
                )
            hashes[name] = actual
        records = _convert(task, found, split)
        expected_n = task.card["splits"][split]["size"]
        validate_records(records, str(found[task.primary_file(split)]))
        text = records_to_jsonl(records)
        out = split_path(task, split)
        old_manifest = dict(manifest)
        manifest[split] = {
            "files": hashes,
            "primary": task.primary_file(split),
            "annotation_sha256": hashes[task.primary_file(split)],
            "n": len(records),
            "expected_n": expected_n,
            "hash_verified": all(hashes[n] == files_card[n]["sha256"] for n in names),
            "records_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "tempbench_version": __version__,
        }
        _write_split(task, out, text, manifest, old_manifest)
        imported[split] = {"n": len(records), "expected_n": expected_n, "path": str(out)}
        if progress:
            progress(split, len(records))
    if not imported:
        need = "; ".join(f"{s}: {', '.join(m)}" for s, m in skipped.items())
        raise TempbenchError(
            f"no {task.title} files found in {src} (looked for {need})",
            f"give the folder that holds them, or download them with `tempbench data fetch {task.name}`",
        )
    return {"imported": imported, "skipped": skipped}


def _convert(task: TaskSpec, found: dict, split: str) -> list[dict]:
    """The task's importer on the raw files; anything it cannot read (a file that only has the official name,
    e.g. imported with --allow-hash-mismatch) is one line naming the file."""
    try:
        return task.convert(found, split)
    except TempbenchError:
        raise
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        primary = found[task.primary_file(split)]
        raise TempbenchError(f"{primary}: cannot be read as the official {task.title} {split} file "
                             f"({type(exc).__name__}: {str(exc)[:120]})",
                             "use the official file the task card pins (its sha256 is checked on import)") from None


def _write_split(task: TaskSpec, out: Path, text: str, manifest: dict, old_manifest: dict) -> None:
    """Write a split's records, then the manifest that describes them; if the manifest cannot be written (disk
    full, read-only), the split's previous records are put back, so the cache never pairs records with another
    file's hash (`load_split` also checks the records' sha256 against the manifest)."""
    manifest_path = task_dir(task) / "manifest.json"
    previous = out.read_bytes() if out.exists() else None
    try:
        atomic_write_text(out, text)
    except OSError as exc:
        raise disk_error(exc, out, f"the {task.name} annotations") from None
    try:
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        try:
            if previous is not None:
                from .io import atomic_write_bytes

                atomic_write_bytes(out, previous)
            else:
                out.unlink(missing_ok=True)
        except OSError:
            pass
        manifest.clear()
        manifest.update(old_manifest)
        raise disk_error(exc, manifest_path, f"the {task.name} manifest") from None


# ---------------------------------------------------------------------------------------------------------------
# fetch


@dataclass(frozen=True)
class FetchPolicy:
    """How `data fetch` downloads: `timeout` seconds per network operation; `deadline` seconds per file in all,
    retries included; a transfer slower than `min_rate` bytes/s over `rate_window` seconds is stopped; refused or
    reset connections, short reads and HTTP 408/429/5xx are retried `retries` times with exponential backoff from
    `backoff` seconds (at most `max_backoff`; `Retry-After` is honoured). A partial download is always kept (as
    `<file>.part`) and resumed by the next attempt or the next `data fetch`."""

    timeout: float = 60.0
    deadline: float = 1800.0
    min_rate: float = 1024.0
    rate_window: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_backoff: float = 30.0


RETRY_HTTP = {408, 425, 429, 500, 502, 503, 504}
KEPT = "the partial download is kept: run the same command again to resume"


class _Retry(Exception):
    """A failure worth another attempt (the part file is kept and resumed)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _download(url: str, dest: Path, expected_sha: str, size: int | None, progress=None, timeout: float = 60,
              policy: FetchPolicy | None = None, sleep=time.sleep) -> None:
    """Download url to dest through `dest.part` (resumed with HTTP Range), at most `size` bytes (the task card's),
    under `policy` (retries, deadline, minimum rate); check the sha256 at the end. Bad downloads are removed,
    interrupted ones kept."""
    policy = policy or FetchPolicy(timeout=timeout)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            _download_once(url, part, size, progress, policy, started, dest.name)
            break
        except _Retry as exc:
            attempt += 1
            left = policy.deadline - (time.monotonic() - started)
            if attempt > policy.retries or left <= 0:
                raise TempbenchError(
                    f"download of {url} failed after {attempt} attempt(s): {exc.reason}",
                    f"{KEPT}; check the network or use a mirror (--base-url URL or TEMPBENCH_MIRROR), or copy the "
                    "files and use `tempbench data import`") from None
            delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, policy.max_backoff))
            sleep(max(0.0, min(delay, left)))
    actual = sha256_file(part)
    if actual != expected_sha:
        part.unlink()
        raise TempbenchError(f"{url}: sha256 mismatch: expected {expected_sha}, got {actual}",
                             "the server did not send the pinned file; the bad download was removed, try another mirror")
    os.replace(part, dest)


def _download_once(url: str, part: Path, size: int | None, progress, policy: FetchPolicy, started: float,
                   name: str) -> None:
    """One HTTP request appending to `part`; returns when it holds the whole file (`size` bytes), raises _Retry
    for a failure worth another attempt and TempbenchError for one that is not."""
    import http.client
    import urllib.error
    import urllib.request

    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # longer than the pinned file: not a prefix of it
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": f"tempbench/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    remaining = policy.deadline - (time.monotonic() - started)
    try:
        response = urllib.request.urlopen(request, timeout=max(0.5, min(policy.timeout, remaining)))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part already holds everything the server has
            return
        if exc.code in RETRY_HTTP:
            ra = exc.headers.get("Retry-After") if exc.headers else None
            raise _Retry(f"HTTP {exc.code} {exc.reason}", _seconds(ra)) from None
        raise TempbenchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}",
                             "check the URL or the mirror (--base-url / TEMPBENCH_MIRROR), then run again; "
                             "a partial download is kept and resumed") from None
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (ConnectionError, TimeoutError, http.client.HTTPException)) or isinstance(
                exc, (TimeoutError, ConnectionError, http.client.HTTPException)):
            raise _Retry(f"{type(reason).__name__}: {reason}") from None
        raise TempbenchError(f"download of {url} failed: {reason}",
                             "check the network or use a mirror (--base-url URL or TEMPBENCH_MIRROR), or copy the "
                             "files and use `tempbench data import`; a partial download is kept and resumed") from None
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.strip().isdigit() else None
        if status == 206:
            first = _range_start(response.headers.get("Content-Range"))
            if first is not None and first != have:
                part.unlink(missing_ok=True)
                raise _Retry(f"the server resumed at byte {first}, not {have}")
            mode = "ab"
        else:
            mode, have = "wb", 0
        announced = None if length is None else have + length
        if size is not None and announced is not None and announced != size:
            raise TempbenchError(f"{url}: the server announces {announced:,} bytes but the task card pins {size:,}",
                                 "this is not the pinned file; try another mirror (--base-url / TEMPBENCH_MIRROR)")
        total = size or announced
        if progress:
            progress(name, have, total)
        received = 0
        window = deque([(time.monotonic(), have)])
        try:
            fh = open(part, mode)
        except OSError as exc:
            raise disk_error(exc, part, "the download") from None
        with fh:
            while True:
                limit = 1 << 16 if size is None else min(1 << 16, size - have + 1)
                try:
                    block = response.read1(limit)
                except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                    raise _Retry(f"{type(exc).__name__} after {have:,} bytes: {exc}") from None
                if not block:
                    break
                if size is not None and have + len(block) > size:
                    fh.close()
                    part.unlink(missing_ok=True)
                    raise TempbenchError(f"{url}: the server sent more than the {size:,} bytes the task card pins",
                                         "this is not the pinned file (the bad download was removed); try another "
                                         "mirror (--base-url / TEMPBENCH_MIRROR)")
                try:
                    fh.write(block)
                    fh.flush()
                except OSError as exc:
                    raise disk_error(exc, part, "the download") from None
                have += len(block)
                received += len(block)
                if progress:
                    progress(name, have, total)
                now = time.monotonic()
                _check_pace(url, now, have, window, started, policy)
    if length is not None and received < length:
        raise _Retry(f"the server closed the connection after {received:,} of {length:,} bytes")
    if size is not None and have < size:
        raise _Retry(f"the server closed the connection after {have:,} of {size:,} bytes")


def _check_pace(url: str, now: float, have: int, window: deque, started: float, policy: FetchPolicy) -> None:
    """Stop a transfer past its deadline, or slower than the minimum rate over the last `rate_window` seconds."""
    if now - started > policy.deadline:
        raise TempbenchError(f"download of {url} did not finish within {policy.deadline:g} s ({have:,} bytes so far)",
                             f"{KEPT}, or use a faster mirror (--base-url / TEMPBENCH_MIRROR)")
    window.append((now, have))
    while len(window) > 2 and now - window[1][0] >= policy.rate_window:
        window.popleft()
    t0, b0 = window[0]
    if now - t0 >= policy.rate_window and (have - b0) / (now - t0) < policy.min_rate:
        raise TempbenchError(f"download of {url} is too slow: {(have - b0) / (now - t0):,.0f} bytes/s over the last "
                             f"{now - t0:.0f} s (the minimum is {policy.min_rate:,.0f})",
                             f"{KEPT}, or use a faster mirror (--base-url / TEMPBENCH_MIRROR)")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _range_start(header: str | None) -> int | None:
    """The first byte of `Content-Range: bytes START-END/TOTAL`."""
    if not header:
        return None
    try:
        return int(header.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def fetch_task(task_name: str, base_url: str | None = None, splits: list[str] | None = None,
               progress=None, timeout: float = 60, policy: FetchPolicy | None = None) -> dict:
    """Download a task's raw files (card URLs, or `{base_url}/{mirror_folder}/{file}`), check sha256, then import.
    `policy` (FetchPolicy) sets the retries, deadline and minimum rate."""
    task = get_task(task_name)
    if task.builtin:
        raise TempbenchError(f"task {task.name!r} is generated locally and needs no download")
    base_url = base_url or os.environ.get("TEMPBENCH_MIRROR") or None
    wanted = [check_split(task, s) for s in splits] if splits else list(task.splits)
    raw = home() / "raw" / task.name
    names = sorted({n for s in wanted for n in task.files_for(s)})
    for name in names:
        info = task.card["files"][name]
        dest = raw / name
        if dest.exists() and sha256_file(dest) == info["sha256"]:
            continue
        url = (f"{base_url.rstrip('/')}/{task.card['mirror_folder']}/{name}" if base_url else info["url"])
        _download(url, dest, info["sha256"], info.get("size"), progress=progress,
                  policy=policy or FetchPolicy(timeout=timeout))
    return import_task(task.name, raw, splits=wanted)


# ---------------------------------------------------------------------------------------------------------------
# load


def synthetic_dir(split: str, task: str = "synthetic") -> Path:
    return home() / task / split


def _generation_workers(n: int) -> int:
    """Processes for generating n videos: one per core for large splits (a process costs about a second)."""
    return 1 if n < 64 else max(1, min(os.cpu_count() or 1, 16))


def ensure_synthetic(split: str, task: str = "synthetic", videos: bool = True, first: int | None = None) -> Path:
    """The folder of a generated task's split, generated once: `annotations.jsonl` always, the mp4 files when
    `videos` (annotations alone are enough for the baselines; `first` = only the first N videos, for a run with
    --limit). Later calls reuse it; missing videos are added (each file moved into place whole)."""
    import shutil

    from .tasks import synthetic

    out = synthetic_dir(split, task)
    ann = out / "annotations.jsonl"
    if not ann.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{split}.", dir=out.parent))
        try:
            synthetic.generate(tmp, split, task, videos=False)
            if not (tmp / "annotations.jsonl").exists():
                raise TempbenchError(f"synthetic generation wrote no annotations into {tmp}")
            if not out.exists():  # else another process won the race
                os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if not videos:
        return out
    records = [row for _, row in read_jsonl(ann, "generated annotation records")]
    wanted = records if first is None else records[:max(0, int(first))]
    missing = [i for i, r in enumerate(wanted) if not (out / f"{r['vid']}.mp4").is_file()]
    if missing:
        tmp = Path(tempfile.mkdtemp(prefix=".videos.", dir=out))
        try:
            info = synthetic.generate(tmp, split, task, n_videos=len(records), indices=missing,
                                      workers=_generation_workers(len(missing)))
            if info["records"] != records:
                raise TempbenchError(f"{ann} is not what this version of tempbench generates for {task} {split}",
                                     f"delete {out} and run again")
            for i in missing:
                os.replace(tmp / f"{records[i]['vid']}.mp4", out / f"{records[i]['vid']}.mp4")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def annotation_path(task_name: str, split: str | None = None) -> tuple[TaskSpec, str, Path]:
    task = get_task(task_name)
    split = check_split(task, split or task.default_split)
    if task.builtin:
        return task, split, ensure_synthetic(split, task.name, videos=False) / "annotations.jsonl"
    path = split_path(task, split)
    if not path.exists():
        raise TempbenchError(
            f"the {task.title} {split} annotations are not in the cache ({path})",
            f"run `tempbench data import {task.name} --from DIR` (official files you have) or "
            f"`tempbench data fetch {task.name}`",
        )
    return task, split, path


def load_annotations(task_name: str, split: str | None = None) -> list[dict]:
    """The unified records of a split (validated at import; read here without per-row schema checks, for speed)."""
    return _read_records(*annotation_path(task_name, split))[0]


def _read_records(task: TaskSpec, split: str, path: Path) -> tuple[list[dict], str]:
    """The cached records of a split and the sha256 of their file."""
    data = path.read_bytes()
    records = []
    for lineno, line in enumerate(data.splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            raise TempbenchError(f"{path}, line {lineno}: corrupt cache file",
                                 f"re-run `tempbench data import {task.name} --from DIR`") from None
    return records, hashlib.sha256(data).hexdigest()


def load_split(task_name: str, split: str | None = None) -> AnnotatedSplit:
    """A split's records with the provenance a result names: the official primary file and its sha256 (as
    imported; `verified` says whether it is the one the task card pins)."""
    task, split, path = annotation_path(task_name, split)
    records, records_sha = _read_records(task, split, path)
    if task.builtin:  # verified: what the card pins, where it pins the generated split
        pin = task.split_card(split).get("annotation_sha256")
        return AnnotatedSplit(task, split, records, f"{task.name}/{split}/annotations.jsonl", records_sha,
                              pin in (None, records_sha))
    entry = read_manifest(task).get(split)
    if not entry:
        raise TempbenchError(f"{task_dir(task) / 'manifest.json'} has no entry for {split}",
                             f"re-run `tempbench data import {task.name} --from DIR`")
    if entry.get("records_sha256") not in (None, records_sha):
        raise TempbenchError(f"{path}: the cached records are not the ones {task_dir(task) / 'manifest.json'} "
                             "describes (an import was interrupted, or the file was edited)",
                             f"re-run `tempbench data import {task.name} --from DIR`")
    return AnnotatedSplit(task, split, records, entry["primary"], entry["annotation_sha256"],
                          bool(entry.get("hash_verified", True)))


def load_annotation_file(path: str | Path, kind: str | None = None) -> AnnotatedSplit:
    """A user's own unified annotation records (JSONL, `tempbench/schemas/annotation.json`) as a custom task; the
    file's sha256 is its identity. `kind` is inferred (saliency -> highlights) unless given."""
    path = Path(path)
    expected = "unified annotation records, one JSON object per line (`tempbench data export` writes them)"
    records = [row for _, row in read_jsonl(path, expected)]
    if not records:
        raise TempbenchError(f"{path}: no annotation records", f"expected {expected}")
    validate_records(records, str(path))
    return records_split(records, str(path), sha256_file(path), kind)


def records_split(records: list[dict], source: str, sha256: str | None = None, kind: str | None = None
                  ) -> AnnotatedSplit:
    """Records given in memory (already validated, or validated here) as a custom task split."""
    if sha256 is None:
        validate_records(records, source)
        sha256 = hashlib.sha256(records_to_jsonl(records).encode("utf-8")).hexdigest()
    task = custom_task(records, source, kind)
    return AnnotatedSplit(task, task.default_split, records, source, sha256, True)


def is_present(task: TaskSpec, split: str) -> bool:
    return True if task.builtin else split_path(task, split).exists()


# ---------------------------------------------------------------------------------------------------------------
# quirks


def describe_split(task_name: str, split: str | None = None) -> dict:
    task, split, path = annotation_path(task_name, split)
    data = load_split(task.name, split)
    records = data.records
    files = {} if task.builtin else read_manifest(task).get(split, {}).get("files", {})
    quirks = find_quirks(records)
    card_split = task.card["splits"][split]
    return {
        "task": task.name, "split": split, "title": task.title, "kind": task.kind,
        "queries": len(records), "videos": len({r["vid"] for r in records}),
        "expected_queries": card_split["size"], "expected_videos": card_split.get("videos"),
        "annotation_file": data.annotation_file, "annotation_sha256": data.annotation_sha256,
        "hash_verified": data.verified, "files": files, "cache": str(path),
        "with_saliency": sum(1 for r in records if "saliency" in r),
        "quirks": quirks.counts, "quirk_examples": quirks.examples,
    }
