"""Leaderboard entries (`submissions/<task>/<split>/<slug>.json`, schema `tempbench.submission/2`): validation,
loading, `submit` and `verify`.

Three kinds of entry, never mixed in one ranking:

- **verified**: re-scored here from its predictions against the pinned annotations, and equal to that re-score in
  every metric, CI and per-query detail (|difference| <= 1e-9). Either a run of tempbench (origin `run`: the
  result carries the run's identity, with the model's weight fingerprint or a baseline's kind, seed and train
  data; the predictions are stored next to the entry as `<slug>.predictions.jsonl.gz`) or a re-scored release
  (origin `release`: a published predictions file named by repository, commit and path, and its sha256; it is
  found by sha256 in `TEMPBENCH_TEST_DATA` or `../shared/data` to verify).
- **unverified**: a result whose predictions could not be re-scored here or whose run has no identity (a
  hand-made file): checked for consistency (metrics = means of the details, qids of the split), shown in a
  section of its own, never the reference of a paired test.
- **reported**: numbers from a paper, with the citation; a table of their own.

Every text field is checked (length, no control or bidi characters, URLs http(s) only) and every number (finite,
metrics in [0, 100], CIs within [0, 100] and around the value): what is published cannot break the pages.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import io
from .errors import TempbenchError
from .results import QueryDetail, Result, check_schema, read_details, write_details

SCHEMA_ID = "tempbench.submission/2"
DEFAULT_SUBMISSIONS_DIR = Path("submissions")
SETTINGS = ("zero-shot", "fine-tuned")
STATUSES = ("verified", "unverified", "reported")
TOLERANCE = 1e-9  # a verified entry equals its re-score to this
MEAN_TOLERANCE = 0.0051  # an unverified result's metrics vs the means of its details (QVHighlights rounds to 2 dp)
CI_SLACK = 0.005  # a CI may miss its value by this much (QVHighlights metrics are rounded, their CIs are not)
TEXT_LIMITS = {"name": 120, "note": 500, "evaluator": 300, "model_id": 300, "citation": 300}
_BIDI = {"\u061c", "\u200e", "\u200f", *(chr(c) for c in range(0x202A, 0x202F)),
         *(chr(c) for c in range(0x2066, 0x206A))}
GROUNDING_METRIC = re.compile(r"^(R1@0\.[0-9]+|R5@0\.[0-9]+|mIoU)$")
HIGHLIGHT_METRIC = re.compile(r"^(MR-(full|short|middle|long)-mAP|MR-full-mAP@0\.(5|75)|MR-full-R1@0\.[0-9]+|"
                              r"MR-full-mIoU|HL-min-(Fair|Good|VeryGood)-(mAP|Hit1))$")


@dataclass(frozen=True)
class Citation:
    title: str
    table: str
    authors: str | None = None
    venue: str | None = None
    arxiv: str | None = None
    url: str | None = None

    @property
    def text(self) -> str:
        bits = [self.title] + [b for b in (f"arXiv {self.arxiv}" if self.arxiv else None, self.venue) if b]
        return ", ".join([*bits, self.table])

    @property
    def link(self) -> str | None:
        return self.url or (f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else None)


@dataclass(frozen=True)
class OwnMetrics:
    """What a model's own metrics file states, shown next to tempbench's numbers."""

    source: str
    metrics: dict
    sha256: str | None = None


@dataclass(frozen=True)
class Release:
    """A published predictions file: `github.com/<repo>/blob/<commit>/<path>`."""

    repo: str
    commit: str
    path: str

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}"

    @classmethod
    def parse(cls, text: str) -> Release:
        """`owner/name@<40-hex commit>:path/in/repo`."""
        m = re.fullmatch(r"([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@([0-9a-f]{40}):(\S+)", text or "")
        if not m:
            raise TempbenchError(f"--release {text!r} is not OWNER/REPO@COMMIT:PATH",
                                 "name the published file by its repository, full 40-hex commit and path")
        return cls(*m.groups())


@dataclass(frozen=True)
class StoredPredictions:
    """The predictions a verified entry is re-scored from: stored next to it (`file`) or a release."""

    sha256: str
    bytes: int
    file: str | None = None
    release: Release | None = None


@dataclass(frozen=True)
class Entry:
    """One loaded leaderboard entry, ready for the leaderboard builder."""

    id: str
    path: Path
    status: str  # verified | unverified | reported
    task: str
    split: str
    kind: str
    name: str
    model_id: str | None
    setting: str
    profile: str | None
    evaluator: str
    date: str
    partial: bool
    metrics: dict
    ci95: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    origin: str | None = None  # verified: run | release
    citation: Citation | None = None
    result: Result | None = None
    details_path: Path | None = None
    details_sha256: str | None = None
    predictions: StoredPredictions | None = None
    own_metrics: OwnMetrics | None = None

    @property
    def version(self) -> str | None:
        """tempbench version that scored a verified or unverified entry (None for reported ones)."""
        return self.result.provenance.tempbench_version if self.result is not None else None

    @property
    def predictions_sha256(self) -> str | None:
        return self.result.provenance.predictions_sha256 if self.result is not None else None

    @property
    def source_url(self) -> str | None:
        """Where the numbers come from: the release's URL, the paper's link."""
        if self.predictions is not None and self.predictions.release is not None:
            return self.predictions.release.url
        return self.citation.link if self.citation is not None else None

    def load_details(self) -> tuple[QueryDetail, ...]:
        """Per-query rows of a verified or unverified entry (empty for reported entries)."""
        return read_details(self.details_path) if self.details_path is not None else ()

    def to_json(self) -> dict:
        data = {"schema": SCHEMA_ID, "id": self.id, "status": self.status, "task": self.task, "split": self.split,
                "kind": self.kind, "model": {"name": self.name, "id": self.model_id}, "setting": self.setting,
                "profile": self.profile, "evaluator": self.evaluator, "date": self.date, "partial": self.partial,
                "notes": list(self.notes)}
        if self.origin is not None:
            data["origin"] = self.origin
        if self.result is not None:
            data["result"] = self.result.to_json()
            data["details"] = {"file": self.details_path.name, "sha256": self.details_sha256}
        else:
            data["metrics"] = dict(self.metrics)
        if self.predictions is not None:
            p = self.predictions
            data["predictions"] = {"sha256": p.sha256, "bytes": p.bytes, **({"file": p.file} if p.file else {}),
                                   **({"release": p.release.__dict__} if p.release else {})}
        if self.citation is not None:
            data["citation"] = {k: v for k, v in self.citation.__dict__.items() if v is not None}
        if self.own_metrics is not None:
            data["own_metrics"] = {k: v for k, v in self.own_metrics.__dict__.items() if v is not None}
        return data


# --------------------------------------------------------------------------------------------------- field checks


def check_text(value, where: str, limit: int) -> str:
    """A published text: at most `limit` characters, no control, line-break or bidi-override characters."""
    if not isinstance(value, str):
        raise TempbenchError(f"{where}: {type(value).__name__} instead of text")
    if len(value) > limit:
        raise TempbenchError(f"{where}: {len(value)} characters, at most {limit}", "shorten it")
    bad = next((c for c in value if c in _BIDI or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise TempbenchError(f"{where}: holds the control or bidi character U+{ord(bad):04X}",
                             "published text is one line of plain characters")
    return value


def check_url(value, where: str) -> str:
    check_text(value, where, 500)
    if not re.fullmatch(r"https?://[^\s<>\"'`]+", value):
        raise TempbenchError(f"{where}: {value[:60]!r} is not an http(s) URL", "links are http:// or https:// only")
    return value


def known_metric(name: str, kind: str) -> bool:
    return bool((GROUNDING_METRIC if kind == "grounding" else HIGHLIGHT_METRIC).match(name))


def check_numbers(metrics: dict, ci95: dict, kind: str, where: str) -> None:
    """Finite metrics in [0, 100] under known names; CIs finite, within [0, 100] and around their value."""
    for name, value in metrics.items():
        if not known_metric(name, kind):
            raise TempbenchError(f"{where}: field 'metrics.{name}': not a {kind} metric tempbench computes",
                                 "use the names of a tempbench result (R1@0.5, mIoU, MR-full-mAP, ...)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 <= value <= 100:
            raise TempbenchError(f"{where}: field 'metrics.{name}' = {value!r} is not a percentage in [0, 100]",
                                 "metrics are stored in percent")
    for name, ci in ci95.items():
        value = metrics.get(name)
        ok = value is not None and len(ci) == 2 and all(isinstance(x, (int, float)) and math.isfinite(x)
                                                        and 0 <= x <= 100 for x in ci)
        if not ok or not (ci[0] <= value + CI_SLACK and ci[1] >= value - CI_SLACK and ci[0] <= ci[1]):
            raise TempbenchError(f"{where}: field 'ci95.{name}' = {ci!r} is not an interval in [0, 100] around "
                                 f"{name} = {value!r}", "score the predictions again (`tempbench score`)")


def slugify(name: str) -> str:
    """A file-name-safe slug: lower case, runs of other characters become '-', e.g. 'Qwen/Qwen2.5-VL-7B' ->
    'qwen-qwen2.5-vl-7b'."""
    slug = re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)
    if not slug:
        raise TempbenchError(f"cannot make a file name from the model name {name!r}", "pass a name with letters or digits")
    return slug[:100]


def _task_spec(task: str, where: str, field_name: str = "task"):
    from .tasks import get_task

    try:
        return get_task(task)
    except TempbenchError as exc:
        raise TempbenchError(f"{where}: field {field_name!r}: {exc.message}", exc.hint) from None


def annotation_sha256(spec, split: str) -> str | None:
    """sha256 of the primary official file of `split` according to the task card (a generated task: of the
    annotations its card pins; None if the card has none)."""
    if spec.builtin:
        return spec.card["splits"][split].get("annotation_sha256")
    primary = spec.card["splits"][split].get("primary")
    info = spec.card.get("files", {}).get(primary)
    return info.get("sha256") if isinstance(info, dict) else None


def known_profiles() -> tuple[str, ...]:
    from .parsing import PROFILES

    return tuple(PROFILES)


def has_identity(result: Result) -> bool:
    """Whether the result's run says exactly which model made it: its weight bytes, or a baseline's kind, seed and
    train data."""
    run = result.run
    if run is None:
        return False
    model = run.model
    if model.backend == "baseline":
        return {"kind", "seed", "train_sha256"} <= set(model.options)
    return bool(model.weights) and bool(model.id)


# --------------------------------------------------------------------------------------------------- re-scoring


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= TOLERANCE
    return a == b


def first_difference(claimed: Result, rescored: Result) -> str | None:
    """The first metric, CI or per-query detail where `claimed` differs from `rescored` (None: equal)."""
    for name in sorted(set(claimed.metrics) | set(rescored.metrics)):
        a, b = claimed.metrics.get(name), rescored.metrics.get(name)
        if a is None or b is None or not _close(a, b):
            return f"metric {name}: claimed {a!r}, re-scored {b!r}"
    for name in sorted(set(claimed.ci95) | set(rescored.ci95)):
        a, b = claimed.ci95.get(name), rescored.ci95.get(name)
        if a is None or b is None or not _close(list(a), list(b)):
            return f"ci95 of {name}: claimed {a!r}, re-scored {b!r}"
    if (claimed.n, claimed.counts) != (rescored.n, rescored.counts):
        return f"counts: claimed n={claimed.n} {claimed.counts}, re-scored n={rescored.n} {rescored.counts}"
    if len(claimed.details) != len(rescored.details):
        return f"details: {len(claimed.details)} rows claimed, {len(rescored.details)} re-scored"
    for a, b in zip(claimed.details, rescored.details):
        if not _close(a.to_json(), b.to_json()):
            key = next((k for k in a.to_json() if not _close(a.to_json().get(k), b.to_json().get(k))), "row")
            return f"details of qid {a.qid}: field {key!r} differs from the re-score"
    return None


def rescore(claimed: Result, predictions_data: bytes, source: str):
    """Score `predictions_data` again against the pinned annotations of the claimed task and split, under the
    claimed profile, resamples and seed; returns the re-scored Result (details included)."""
    from .annotations import load_split
    from .predictions import predictions_from_bytes
    from .scoring import score

    data = load_split(claimed.task, claimed.split)
    if claimed.provenance.annotation_sha256 != data.annotation_sha256 or not data.verified:
        raise TempbenchError(f"{source}: the {claimed.task} {claimed.split} annotations in the cache are not the "
                             "pinned official file", f"re-import them: `tempbench data import {claimed.task} --from DIR`")
    preds = predictions_from_bytes(predictions_data, source, claimed.run)
    ci = claimed.ci
    return score(data, preds, claimed.profile, ci=ci is not None, n_resamples=ci.resamples if ci else 1000,
                 seed=ci.seed if ci else 0, created=claimed.provenance.created,
                 git_revision=claimed.provenance.git_revision, run=claimed.run)


def data_dirs() -> list[Path]:
    """Where released predictions files are looked for by sha256: `TEMPBENCH_TEST_DATA`, then ../shared/data."""
    dirs = [Path(p) for p in os.environ.get("TEMPBENCH_TEST_DATA", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    return [d for d in dirs if d.is_dir()]


def find_by_sha256(sha256: str, size: int, dirs: list[Path]) -> Path | None:
    """A file of `size` bytes whose sha256 is `sha256` under one of `dirs` (files of other sizes are not read)."""
    for d in dirs:
        for path in sorted(d.rglob("*")):
            try:
                if path.is_file() and path.stat().st_size == size and io.sha256_file(path) == sha256:
                    return path
            except OSError:
                continue
    return None


def stored_predictions(entry: Entry, dirs: list[Path] | None = None) -> bytes | None:
    """The bytes of a verified entry's predictions (its stored copy, or the release found by sha256), checked
    against the recorded sha256; None when a release's file is not at hand."""
    p = entry.predictions
    if p.file is not None:
        data = gzip.decompress(io.read_bytes(entry.path.parent / p.file, "the entry's stored predictions"))
    else:
        found = find_by_sha256(p.sha256, p.bytes, data_dirs() if dirs is None else dirs)
        if found is None:
            return None
        data = found.read_bytes()
    if io.sha256_bytes(data) != p.sha256:
        raise TempbenchError(f"{entry.path}: field 'predictions.sha256' does not match the stored predictions",
                             "the predictions changed after submission; submit them again")
    return data


@dataclass(frozen=True)
class Verification:
    entry: Entry
    status: str  # ok | differs | missing
    message: str = ""


def verify(entries: list[Entry], dirs: list[Path] | None = None) -> list[Verification]:
    """Re-score every verified entry from its predictions and the pinned annotations (never from its stored
    metrics or details, which are only compared with the re-score)."""
    out = []
    for entry in entries:
        if entry.status != "verified":
            continue
        data = stored_predictions(entry, dirs)
        if data is None:
            release = entry.predictions.release
            out.append(Verification(entry, "missing", f"{release.url} (sha256 {entry.predictions.sha256[:12]}…) "
                                                      "not found in TEMPBENCH_TEST_DATA or ../shared/data"))
            continue
        claimed = entry.result.replace(details=entry.load_details())
        difference = first_difference(claimed, rescore(claimed, data, str(entry.path)))
        out.append(Verification(entry, "ok" if difference is None else "differs", difference or ""))
    return out


# --------------------------------------------------------------------------------------------------- validation


def _check_result(result: Result, where: str, spec, split: str) -> None:
    if result.split != split:
        raise TempbenchError(f"{where}: field 'result.split' is {result.split!r}, expected {split!r}")
    if result.kind != spec.kind:
        raise TempbenchError(f"{where}: field 'result.kind' is {result.kind!r} but task {spec.name!r} is "
                             f"{spec.kind!r}", "score the predictions with the right --task")
    expected = annotation_sha256(spec, split)
    got = result.provenance.annotation_sha256
    if expected is None:
        raise TempbenchError(f"{where}: task {spec.name!r} split {split!r} has no pinned annotation sha256",
                             "only the pinned splits of registered tasks go on the leaderboard")
    if got != expected:
        raise TempbenchError(
            f"{where}: field 'provenance.annotation_sha256' is {got[:12]}…, but the official "
            f"{spec.card['splits'][split].get('primary')} of {spec.name} {split} has {expected[:12]}…",
            "score against the official annotation file (`tempbench data import` checks it)")
    if result.profile not in known_profiles():
        raise TempbenchError(f"{where}: field 'result.profile': unknown profile {result.profile!r}",
                             f"known profiles: {', '.join(known_profiles())}")


def validate_submission(record: dict, path: Path, *, root: Path | None = None, check_details: bool = True) -> Entry:
    """Check one entry file (schema, id vs path, task/split/kind, every text field and number, the result and the
    files beside it) and return the Entry."""
    path = Path(path)
    where = str(path)
    if isinstance(record, dict) and record.get("schema") == "tempbench.submission/1":
        raise TempbenchError(f"{path}: field 'schema' is 'tempbench.submission/1' (an entry of an older tempbench)",
                             "submit the result again with this tempbench (`tempbench submit`)")
    check_schema(record, "submission", path)
    if root is not None:
        try:
            rel = path.resolve().relative_to(Path(root).resolve()).with_suffix("").as_posix()
        except ValueError:
            rel = None
        if rel is not None and rel != record["id"]:
            raise TempbenchError(f"{path}: field 'id' is {record['id']!r} but the file lies at {rel!r}",
                                 "an entry's id is <task>/<split>/<slug> and names its path under submissions/")
    task, split, _slug = record["id"].split("/")
    if (task, split) != (record["task"], record["split"]):
        raise TempbenchError(f"{path}: field 'id' {record['id']!r} does not start with task/split "
                             f"{record['task']}/{record['split']}", "make the id <task>/<split>/<slug>")
    spec = _task_spec(record["task"], where)
    if spec.name != record["task"]:
        raise TempbenchError(f"{path}: field 'task': use the registry name {spec.name!r}, not {record['task']!r}",
                             "`tempbench tasks` lists the names")
    if record["split"] not in spec.splits:
        raise TempbenchError(f"{path}: field 'split': task {spec.name!r} has no split {record['split']!r}",
                             f"its splits are {', '.join(spec.splits)}")
    if record["kind"] != spec.kind:
        raise TempbenchError(f"{path}: field 'kind' is {record['kind']!r} but task {spec.name!r} is {spec.kind!r}",
                             f"set kind to {spec.kind!r}")
    check_text(record["model"]["name"], f"{where}: field 'model.name'", TEXT_LIMITS["name"])
    if record["model"]["id"] is not None:
        check_text(record["model"]["id"], f"{where}: field 'model.id'", TEXT_LIMITS["model_id"])
    check_text(record["evaluator"], f"{where}: field 'evaluator'", TEXT_LIMITS["evaluator"])
    for i, note in enumerate(record["notes"]):
        check_text(note, f"{where}: field 'notes[{i}]'", TEXT_LIMITS["note"])
    citation = record.get("citation")
    if citation:
        for key in ("title", "authors", "venue", "table"):
            if key in citation:
                check_text(citation[key], f"{where}: field 'citation.{key}'", TEXT_LIMITS["citation"])
        if "url" in citation:
            check_url(citation["url"], f"{where}: field 'citation.url'")
    status = record["status"]
    result = details_path = details_sha = predictions = None
    ci95: dict = {}
    if status in ("verified", "unverified"):
        result = Result.from_json(record["result"], f"{where}: field 'result'")
        _check_result(result, where, spec, record["split"])
        for key in ("task", "split", "kind", "profile"):
            if getattr(result, key) != record[key]:
                raise TempbenchError(f"{path}: field {key!r} is {record[key]!r} but result.{key} is "
                                     f"{getattr(result, key)!r}", "an entry's fields must agree with its result record")
        if result.partial and not record["partial"]:
            raise TempbenchError(f"{path}: field 'partial' must be true: result.partial is true",
                                 "a partial run is shown marked as partial")
        metrics, ci95 = dict(result.metrics), {k: list(v) for k, v in result.ci95.items()}
        details_path, details_sha = path.parent / record["details"]["file"], record["details"]["sha256"]
        if check_details:
            if not details_path.is_file():
                raise TempbenchError(f"{path}: field 'details.file': {details_path} does not exist",
                                     "an entry is stored with its details.jsonl.gz; submit it again")
            digest = io.sha256_file(details_path)
            if digest != details_sha:
                raise TempbenchError(f"{path}: field 'details.sha256' does not match {details_path.name} ({digest})",
                                     "the details file changed after submission; submit the result again")
        if status == "verified":
            p = record["predictions"]
            if ("file" in p) == ("release" in p):
                raise TempbenchError(f"{path}: field 'predictions': give exactly one of 'file' and 'release'")
            if record["origin"] == "run" and (not has_identity(result) or "file" not in p):
                raise TempbenchError(f"{path}: field 'origin' is 'run' but the result has no run identity or the "
                                     "predictions are not stored", "a verified run names its model and weights")
            if record["origin"] == "release" and "release" not in p:
                raise TempbenchError(f"{path}: field 'origin' is 'release' but 'predictions.release' is missing")
            if p["sha256"] != result.provenance.predictions_sha256:
                raise TempbenchError(f"{path}: field 'predictions.sha256' is not the result's predictions_sha256")
            predictions = StoredPredictions(p["sha256"], p["bytes"], p.get("file"),
                                            Release(**p["release"]) if "release" in p else None)
    else:
        metrics = dict(record["metrics"])
        if not metrics:
            raise TempbenchError(f"{path}: field 'metrics' is empty", "a reported entry needs at least one number")
    check_numbers(metrics, ci95, spec.kind, where)
    own = record.get("own_metrics")
    if own:
        check_text(own["source"], f"{where}: field 'own_metrics.source'", TEXT_LIMITS["citation"])
        check_numbers(own["metrics"], {}, spec.kind, f"{where}: own_metrics")
    return Entry(
        id=record["id"], path=path, status=status, task=record["task"], split=record["split"], kind=record["kind"],
        name=record["model"]["name"], model_id=record["model"]["id"], setting=record["setting"],
        profile=record["profile"], evaluator=record["evaluator"], date=record["date"], partial=record["partial"],
        metrics=metrics, ci95=ci95, notes=tuple(record["notes"]), origin=record.get("origin"),
        citation=Citation(**citation) if citation else None, result=result, details_path=details_path,
        details_sha256=details_sha, predictions=predictions, own_metrics=OwnMetrics(**own) if own else None)


def load_submissions(submissions_dir: Path, *, check_details: bool = True) -> list[Entry]:
    """Every entry under `submissions_dir` (`<task>/<split>/<slug>.json`), validated, sorted by id."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise TempbenchError(f"{root}: no such folder", "give the submissions folder (default: submissions/)")
    entries = [validate_submission(io.read_json(path, "a leaderboard entry"), path, root=root,
                                   check_details=check_details) for path in sorted(root.glob("*/*/*.json"))]
    stray = sorted(p for p in root.rglob("*.json") if len(p.relative_to(root).parts) != 3)
    if stray:
        raise TempbenchError(f"{stray[0]}: an entry file outside <task>/<split>/",
                             "entries live at submissions/<task>/<split>/<slug>.json")
    return entries


# --------------------------------------------------------------------------------------------------- submit


def _check_details(rows: tuple[QueryDetail, ...], result: Result, records: list[dict], where: str) -> None:
    """An unverified result's details: one row per scored query of the split, every metric the mean of its
    non-null per-query values, no metric that the details do not hold."""
    qids = [row.qid for row in rows]
    if len(set(qids)) != len(qids):
        raise TempbenchError(f"{where}: field 'qid': the same qid appears more than once",
                             "a details file has one row per query; score the predictions again")
    if len(rows) != result.n:
        raise TempbenchError(f"{where}: {len(rows)} rows but the result says n={result.n}",
                             "the details file does not belong to this result; use the pair written by one `tempbench score`")
    split_qids = {r["qid"]: r["vid"] for r in records}
    stranger = next((row for row in rows if split_qids.get(row.qid) != row.vid), None)
    if stranger is not None:
        raise TempbenchError(f"{where}: qid {stranger.qid} (video {stranger.vid}) is not a query of "
                             f"{result.task} {result.split}", "the details belong to another split or numbering")
    for name, value in result.metrics.items():
        vals = [v for v in (row.scores.get(name) for row in rows) if v is not None]
        if not vals:
            raise TempbenchError(f"{where}: field 'scores.{name}': no query holds the result's metric {name}",
                                 "every published metric must come with its per-query values")
        mean = math.fsum(vals) / len(vals)
        if abs(mean - value) > MEAN_TOLERANCE:
            raise TempbenchError(
                f"{where}: field 'scores.{name}': per-query mean {mean:.4f} differs from the result's {value:.4f}",
                "the details file does not belong to this result; use the pair written by one `tempbench score`")


def submit(
    result_path: str | Path,
    name: str | None = None,
    allow_partial: bool = False,
    submissions_dir: str | Path = DEFAULT_SUBMISSIONS_DIR,
    *,
    setting: str | None = None,
    details_path: str | Path | None = None,
    predictions_path: str | Path | None = None,
    release: str | Release | None = None,
    notes: list[str] | None = None,
    own_metrics: dict | None = None,
    model_id: str | None = None,
) -> Entry:
    """Add a scored result to the leaderboard's submissions; returns the entry written (`entry.path`).

    With its predictions (`predictions.jsonl` next to the result, or `predictions_path`), the result is re-scored
    against the pinned annotations and must equal the re-score in every metric, CI and detail (else refused,
    naming the first difference). It is then *verified* when its run names the model (weights fingerprint, or a
    baseline's kind, seed and train data; the predictions are stored beside the entry) or when `release`
    (`owner/repo@commit:path`) names the published file; otherwise, and without predictions, it is *unverified*
    (checked for consistency only, shown apart). Also refused: a partial run unless `allow_partial`; an unknown
    setting; an entry id that exists; the same parsed predictions under the same profile already on the board.
    """
    result_path = Path(result_path)
    details_src = Path(details_path) if details_path else result_path.with_name("details.jsonl.gz")
    where = str(result_path)
    result = Result.read(result_path, details_src)
    spec = None if result.task == "custom" else _task_spec(result.task, where)
    if spec is None or spec.custom:
        raise TempbenchError(f"{where}: field 'task': a custom task is not on the leaderboard",
                             "only the official benchmarks and tempbench's generated tasks go on the leaderboard")
    if result.split not in spec.splits:
        raise TempbenchError(f"{where}: field 'split': task {spec.name!r} has no split {result.split!r}",
                             f"its splits are {', '.join(spec.splits)}")
    _check_result(result, where, spec, result.split)
    partial = result.partial or result.n < spec.split_size(result.split)
    if partial and not allow_partial:
        raise TempbenchError(
            f"{where}: field 'partial': only {result.n} of {spec.split_size(result.split)} queries were scored",
            "score the whole split, or pass allow_partial (--allow-partial) to submit it marked as partial")
    run = result.run
    setting = setting or (run.setting if run is not None else None)
    if setting not in SETTINGS:
        raise TempbenchError(f"{where}: field 'run.setting' is {setting!r}",
                             "say whether the model was trained on this benchmark: --setting zero-shot|fine-tuned")
    name = name or (run.model.spec if run is not None else None)
    if not name:
        raise TempbenchError(f"{where}: field 'run' is null: the model is not named", "give the entry a name (--name)")
    check_text(name, "--name", TEXT_LIMITS["name"])
    for i, note in enumerate(notes or ()):
        check_text(note, f"--note {i + 1}", TEXT_LIMITS["note"])
    if isinstance(release, str):
        release = Release.parse(release)

    pred_src = Path(predictions_path) if predictions_path else result_path.with_name("predictions.jsonl")
    pred_data = io.read_bytes(pred_src, "the predictions of the result") if pred_src.is_file() or predictions_path \
        else None
    if pred_data is not None:
        if io.sha256_bytes(pred_data) != result.provenance.predictions_sha256:
            raise TempbenchError(f"{pred_src}: sha256 differs from the result's predictions_sha256",
                                 "give the predictions file the result was scored from")
        rescored = rescore(result, pred_data, str(pred_src))
        difference = first_difference(result, rescored)
        if difference is not None:
            raise TempbenchError(f"{where}: not what its predictions score: {difference}",
                                 "submit the result.json written by `tempbench score` / `tempbench run` unchanged")
        details = rescored.details
    else:
        from .annotations import load_split

        check_numbers(result.metrics, result.ci95, spec.kind, where)
        _check_details(result.details, result, load_split(spec.name, result.split).records, str(details_src))
        details = result.details
    check_numbers(result.metrics, result.ci95, spec.kind, where)
    if pred_data is not None and release is not None:
        status, origin = "verified", "release"
    elif pred_data is not None and has_identity(result):
        status, origin = "verified", "run"
    else:
        status, origin = "unverified", None

    slug = slugify(name) + ("" if result.profile == "canonical" else f"--{slugify(result.profile)}")
    root = Path(submissions_dir)
    out_dir = root / spec.name / result.split
    entry_path = out_dir / f"{slug}.json"
    if entry_path.exists():
        raise TempbenchError(f"{entry_path}: an entry with id {spec.name}/{result.split}/{slug} already exists",
                             "choose another name (--name), or delete the old entry first to replace it")
    content = result.provenance.predictions_content_sha256
    for other in load_submissions(root, check_details=False) if root.is_dir() else []:
        if (other.task, other.split, other.profile) == (spec.name, result.split, result.profile) and \
                other.result is not None and other.result.provenance.predictions_content_sha256 == content:
            raise TempbenchError(f"{where}: these predictions (parsed content sha256 {content[:12]}…) scored with "
                                 f"profile {result.profile!r} are already on the leaderboard as {other.path}",
                                 "a duplicate entry is refused; remove the old one first to replace it")
    created = result.provenance.created
    if not re.match(r"^\d{4}-\d{2}-\d{2}", created):
        raise TempbenchError(f"{where}: field 'provenance.created' is {created!r}", "expected an ISO date-time")
    out_dir.mkdir(parents=True, exist_ok=True)
    details_dst = out_dir / f"{slug}.details.jsonl.gz"
    stored = None
    if status == "verified":
        stored = StoredPredictions(result.provenance.predictions_sha256, len(pred_data), release=release)
        if origin == "run":
            stored = replace(stored, file=f"{slug}.predictions.jsonl.gz")
    entry = Entry(
        id=f"{spec.name}/{result.split}/{slug}", path=entry_path, status=status, task=spec.name, split=result.split,
        kind=spec.kind, name=name, model_id=model_id or (run.model.id if run is not None else None), setting=setting,
        profile=result.profile, evaluator=f"tempbench {result.provenance.tempbench_version}", date=created[:10],
        partial=partial, metrics=dict(result.metrics), ci95=dict(result.ci95), notes=tuple(notes or ()),
        origin=origin, result=result.replace(details=()), details_path=details_dst, predictions=stored,
        own_metrics=OwnMetrics(**own_metrics) if own_metrics is not None else None)
    written = [details_dst]
    try:
        write_details(details_dst, details)
        entry = replace(entry, details_sha256=io.sha256_file(details_dst))
        if stored is not None and stored.file:
            written.append(out_dir / stored.file)
            io.atomic_write_bytes(out_dir / stored.file, gzip.compress(pred_data, mtime=0))
        record = entry.to_json()
        entry = validate_submission(record, entry_path, root=root)
        io.write_json(entry_path, record)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return entry
