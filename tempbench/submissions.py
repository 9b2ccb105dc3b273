"""Leaderboard entries (`submissions/<task>/<split>/<slug>.json`): validation, loading and `submit`.

An entry is either *reproduced* (a `tempbench.result/2` record scored here, stored with its per-query scores as
`<slug>.details.jsonl.gz` next to it) or *reported* (numbers from a paper or model card, with the citation).
Both follow `tempbench/schemas/submission.json` (schema id `tempbench.submission/1`); `Entry` is the typed form
the leaderboard reads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import io
from .errors import TempbenchError
from .results import QueryDetail, Result, check_schema, read_details

SCHEMA_ID = "tempbench.submission/1"
DEFAULT_SUBMISSIONS_DIR = Path("submissions")
SETTINGS = ("zero-shot", "fine-tuned")
# A metric stored in a result must equal the mean of the non-null per-query values; official QVHighlights numbers
# are rounded to 2 decimals, hence the tolerance.
MEAN_TOLERANCE = 0.0051


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
class Entry:
    """One loaded leaderboard entry (reported or reproduced), ready for the leaderboard builder."""

    id: str
    path: Path
    source: str  # reproduced | reported
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
    citation: Citation | None = None
    result: Result | None = None
    details_path: Path | None = None
    details_sha256: str | None = None
    own_metrics: OwnMetrics | None = None

    @property
    def version(self) -> str | None:
        """tempbench version that scored a reproduced entry (None for reported ones)."""
        return self.result.provenance.tempbench_version if self.result is not None else None

    @property
    def predictions_sha256(self) -> str | None:
        return self.result.provenance.predictions_sha256 if self.result is not None else None

    def load_details(self) -> tuple[QueryDetail, ...]:
        """Per-query rows of a reproduced entry (empty for reported entries)."""
        return read_details(self.details_path) if self.details_path is not None else ()

    def to_json(self) -> dict:
        data = {"schema": SCHEMA_ID, "id": self.id, "source": self.source, "task": self.task, "split": self.split,
                "kind": self.kind, "model": {"name": self.name, "id": self.model_id}, "setting": self.setting,
                "profile": self.profile, "evaluator": self.evaluator, "date": self.date, "partial": self.partial,
                "notes": list(self.notes)}
        if self.result is not None:
            data["result"] = self.result.to_json()
            data["details"] = {"file": self.details_path.name, "sha256": self.details_sha256}
        else:
            data["metrics"] = dict(self.metrics)
        if self.citation is not None:
            data["citation"] = {k: v for k, v in self.citation.__dict__.items() if v is not None}
        if self.own_metrics is not None:
            data["own_metrics"] = {k: v for k, v in self.own_metrics.__dict__.items() if v is not None}
        return data


# --------------------------------------------------------------------------------------------------- helpers


def slugify(name: str) -> str:
    """A file-name-safe slug: lower case, runs of other characters become '-', e.g. 'Qwen/Qwen2.5-VL-7B' ->
    'qwen-qwen2.5-vl-7b'."""
    slug = re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)
    if not slug:
        raise TempbenchError(f"cannot make a file name from the model name {name!r}", "pass a name with letters or digits")
    return slug[:100]


def _check_details_consistent(rows: tuple[QueryDetail, ...], result: Result, path: Path, *,
                              require: tuple[str, ...] = ()) -> None:
    """Every metric of the result that also appears in the per-query `scores` must equal the mean of the
    non-null per-query values (the contract of `details.jsonl.gz`), and the rows must be one per scored query."""
    qids = [row.qid for row in rows]
    if len(set(qids)) != len(qids):
        raise TempbenchError(f"{path}: field 'qid': the same qid appears more than once",
                             "a details file has one row per query; score the predictions again")
    if len(rows) != result.n:
        raise TempbenchError(f"{path}: {len(rows)} rows but the result says n={result.n}",
                             "the details file does not belong to this result; use the pair written by one `tempbench score`")
    for name in require:
        if not any(row.scores.get(name) is not None for row in rows):
            raise TempbenchError(f"{path}: field 'scores.{name}' is missing from every row",
                                 "the leaderboard's paired test needs per-query values of the headline metric")
    for name, value in result.metrics.items():
        vals = [v for v in (row.scores.get(name) for row in rows) if v is not None]
        if not vals:
            continue
        mean = math.fsum(vals) / len(vals)
        if abs(mean - value) > MEAN_TOLERANCE:
            raise TempbenchError(
                f"{path}: field 'scores.{name}': per-query mean {mean:.4f} differs from the result's {value:.4f}",
                "the details file does not belong to this result; use the pair written by one `tempbench score`",
            )


def _task_spec(task: str, path: Path, field_name: str = "task"):
    from .tasks import get_task

    try:
        return get_task(task)
    except TempbenchError as exc:
        raise TempbenchError(f"{path}: field {field_name!r}: {exc.message}", exc.hint) from None


def annotation_sha256(spec, split: str) -> str | None:
    """sha256 of the primary official file of `split` according to the task card (None if the card has none)."""
    primary = spec.card["splits"][split].get("primary")
    info = spec.card.get("files", {}).get(primary)
    return info.get("sha256") if isinstance(info, dict) else None


def known_profiles() -> tuple[str, ...]:
    """Names of the scoring profiles (`tempbench.parsing.PROFILES`)."""
    from .parsing import PROFILES

    return tuple(PROFILES)


# --------------------------------------------------------------------------------------------------- validation


def _check_result(result: Result, path: Path, spec, split: str, field_prefix: str = "") -> None:
    if result.split != split:
        raise TempbenchError(f"{path}: field '{field_prefix}split' is {result.split!r}, expected {split!r}", None)
    if result.kind != spec.kind:
        raise TempbenchError(f"{path}: field '{field_prefix}kind' is {result.kind!r} but task {spec.name!r} is "
                             f"{spec.kind!r}", "score the predictions with the right --task")
    expected = annotation_sha256(spec, split)
    got = result.provenance.annotation_sha256
    if expected is None:
        raise TempbenchError(f"{path}: task {spec.name!r} split {split!r} has no official annotation sha256",
                             "only official splits of registered benchmarks go on the leaderboard")
    if got != expected:
        raise TempbenchError(
            f"{path}: field '{field_prefix}provenance.annotation_sha256' is {got[:12]}…, but the official "
            f"{spec.card['splits'][split].get('primary')} of {spec.name} {split} has {expected[:12]}…",
            "score against the official annotation file (`tempbench data import` checks it)",
        )
    profiles = known_profiles()
    if result.profile not in profiles:
        raise TempbenchError(f"{path}: field '{field_prefix}profile': unknown profile {result.profile!r}",
                             f"known profiles: {', '.join(profiles)}")


def validate_submission(record: dict, path: Path, *, root: Path | None = None, check_details: bool = True) -> Entry:
    """Check one entry file: schema, id vs. path, task/split/kind vs. the registry, reproduced entries' result
    record (schema, annotation sha256, profile) and details file (sha256, consistency). Returns the Entry."""
    path = Path(path)
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
    spec = _task_spec(record["task"], path)
    if spec.name != record["task"]:
        raise TempbenchError(f"{path}: field 'task': use the registry name {spec.name!r}, not {record['task']!r}",
                             "`tempbench tasks` lists the names")
    if record["split"] not in spec.splits:
        raise TempbenchError(f"{path}: field 'split': task {spec.name!r} has no split {record['split']!r}",
                             f"its splits are {', '.join(spec.splits)}")
    if record["kind"] != spec.kind:
        raise TempbenchError(f"{path}: field 'kind' is {record['kind']!r} but task {spec.name!r} is {spec.kind!r}",
                             f"set kind to {spec.kind!r}")
    result = details_path = details_sha = None
    ci95: dict = {}
    if record["source"] == "reproduced":
        result = Result.from_json(record["result"], f"{path}: field 'result'")
        _check_result(result, path, spec, record["split"], field_prefix="result.")
        for key in ("task", "split", "kind", "profile"):
            value = getattr(result, key)
            if value != record[key] and not (key == "task" and _task_spec(value, path).name == spec.name):
                raise TempbenchError(f"{path}: field {key!r} is {record[key]!r} but result.{key} is {value!r}",
                                     "an entry's fields must agree with its result record")
        if result.partial and not record.get("partial", False):
            raise TempbenchError(f"{path}: field 'partial' must be true: result.partial is true",
                                 "a partial run is shown marked as partial")
        metrics = dict(result.metrics)
        ci95 = {k: list(v) for k, v in result.ci95.items()}
        details_path = path.parent / record["details"]["file"]
        details_sha = record["details"]["sha256"]
        if check_details:
            if not details_path.is_file():
                raise TempbenchError(f"{path}: field 'details.file': {details_path} does not exist",
                                     "a reproduced entry is stored with its details.jsonl.gz; submit it again")
            digest = io.sha256_file(details_path)
            if digest != details_sha:
                raise TempbenchError(f"{path}: field 'details.sha256' does not match {details_path.name} ({digest})",
                                     "the details file changed after submission; submit the result again")
    else:
        metrics = dict(record["metrics"])
        if not metrics:
            raise TempbenchError(f"{path}: field 'metrics' is empty", "a reported entry needs at least one number")
    for name, value in metrics.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 100):
            raise TempbenchError(f"{path}: field 'metrics.{name}' = {value!r} is not a percentage in [0, 100]",
                                 "metrics are stored in percent")
    own = record.get("own_metrics")
    return Entry(
        id=record["id"], path=path, source=record["source"], task=record["task"], split=record["split"],
        kind=record["kind"], name=record["model"]["name"], model_id=record["model"].get("id"),
        setting=record["setting"], profile=record.get("profile"), evaluator=record.get("evaluator", ""),
        date=record["date"], partial=bool(record.get("partial", False)), metrics=metrics, ci95=ci95,
        notes=tuple(record.get("notes", ())),
        citation=Citation(**record["citation"]) if record.get("citation") else None,
        result=result, details_path=details_path, details_sha256=details_sha,
        own_metrics=OwnMetrics(**own) if own else None)


def load_submissions(submissions_dir: Path, *, check_details: bool = True) -> list[Entry]:
    """Every entry under `submissions_dir` (`<task>/<split>/<slug>.json`), validated, sorted by id."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise TempbenchError(f"{root}: no such folder", "give the submissions folder (default: submissions/)")
    entries = []
    for path in sorted(root.glob("*/*/*.json")):
        entries.append(validate_submission(io.read_json(path, "a leaderboard entry"), path, root=root,
                                           check_details=check_details))
    stray = sorted(p for p in root.rglob("*.json") if len(p.relative_to(root).parts) != 3)
    if stray:
        raise TempbenchError(f"{stray[0]}: an entry file outside <task>/<split>/",
                             "entries live at submissions/<task>/<split>/<slug>.json")
    return entries


# --------------------------------------------------------------------------------------------------- submit


def submit(
    result_path: str | Path,
    name: str | None = None,
    allow_partial: bool = False,
    submissions_dir: str | Path = DEFAULT_SUBMISSIONS_DIR,
    *,
    setting: str | None = None,
    details_path: str | Path | None = None,
    notes: list[str] | None = None,
    own_metrics: dict | None = None,
    model_id: str | None = None,
) -> Path:
    """Add a scored result (`result.json` + its `details.jsonl.gz`) to the leaderboard's submissions.

    Checks: the result record; task and split known to the registry; annotation sha256 equal to the official
    primary file of that split; profile known; a complete run (`partial` false and n == split size) unless
    `allow_partial` (then the entry is marked partial); setting zero-shot/fine-tuned (from the run or
    `setting`); the details file consistent with the metrics; no existing entry with the same id, nor the same
    predictions scored with the same profile. `own_metrics` ({"source", "sha256"?, "metrics"}) records what
    the model's own metrics file states. Returns the path of the written entry.
    """
    result_path = Path(result_path)
    details_src = Path(details_path) if details_path else result_path.with_name("details.jsonl.gz")
    result = Result.read(result_path, details_src)
    spec = _task_spec(result.task, result_path)
    if spec.builtin or spec.custom:
        raise TempbenchError(f"{result_path}: field 'task': {spec.name!r} is not an official benchmark",
                             "only official benchmarks go on the leaderboard")
    if result.split not in spec.splits:
        raise TempbenchError(f"{result_path}: field 'split': task {spec.name!r} has no split {result.split!r}",
                             f"its splits are {', '.join(spec.splits)}")
    _check_result(result, result_path, spec, result.split)
    split_size = spec.split_size(result.split)
    partial = result.partial or result.n < split_size
    if partial and not allow_partial:
        raise TempbenchError(
            f"{result_path}: field 'partial': only {result.n} of {split_size} queries were scored",
            "score the whole split, or pass allow_partial (--allow-partial) to submit it marked as partial",
        )
    run = result.run
    setting = setting or (run.setting if run is not None else None)
    if setting not in SETTINGS:
        raise TempbenchError(f"{result_path}: field 'run.setting' is {setting!r}",
                             "say whether the model was trained on this benchmark: --setting zero-shot|fine-tuned")
    name = name or (run.model.spec if run is not None else None)
    if not name:
        raise TempbenchError(f"{result_path}: field 'run' is null: the model is not named", "give the entry a name (--name)")
    _check_details_consistent(result.details, result, details_src, require=(spec.headline,))

    slug = slugify(name) + ("" if result.profile == "canonical" else f"--{slugify(result.profile)}")
    root = Path(submissions_dir)
    out_dir = root / spec.name / result.split
    entry_path = out_dir / f"{slug}.json"
    if entry_path.exists():
        raise TempbenchError(f"{entry_path}: an entry with id {spec.name}/{result.split}/{slug} already exists",
                             "choose another name (--name), or delete the old entry first to replace it")
    pred_sha = result.provenance.predictions_sha256
    for other in load_submissions(root, check_details=False) if root.is_dir() else []:
        if (other.task, other.split) == (spec.name, result.split) and other.predictions_sha256 == pred_sha \
                and other.profile == result.profile:
            raise TempbenchError(f"{result_path}: these predictions (sha256 {pred_sha[:12]}…) scored with profile "
                                 f"{result.profile!r} are already on the leaderboard as {other.path}",
                                 "a duplicate entry is refused; remove the old one first to replace it")
    created = result.provenance.created
    if not re.match(r"^\d{4}-\d{2}-\d{2}", created):
        raise TempbenchError(f"{result_path}: field 'provenance.created' is {created!r}", "expected an ISO date-time")
    details_dst = out_dir / f"{slug}.details.jsonl.gz"
    data = io.read_bytes(details_src, "details.jsonl.gz")
    entry = Entry(
        id=f"{spec.name}/{result.split}/{slug}", path=entry_path, source="reproduced", task=spec.name,
        split=result.split, kind=spec.kind, name=name,
        model_id=model_id or (run.model.id if run is not None else None), setting=setting, profile=result.profile,
        evaluator=f"tempbench {result.provenance.tempbench_version}", date=created[:10], partial=partial,
        metrics=dict(result.metrics), ci95=dict(result.ci95), notes=tuple(notes or ()), result=result,
        details_path=details_dst, details_sha256=io.sha256_bytes(data),
        own_metrics=OwnMetrics(**own_metrics) if own_metrics is not None else None)
    record = entry.to_json()
    out_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_bytes(details_dst, data)
    try:
        validate_submission(record, entry_path, root=root)
    except TempbenchError:
        details_dst.unlink(missing_ok=True)
        raise
    io.write_json(entry_path, record)
    return entry_path
