"""Leaderboard entries (``submissions/<task>/<split>/<slug>.json``): validation, loading and ``submit``.

An entry is either *reproduced* (a ``tempbench.result/1`` record scored here, stored with its per-query scores as
``<slug>.details.jsonl.gz`` next to it) or *reported* (numbers from a paper or model card, with the citation).
Both follow ``tempbench/schemas/submission.json`` (schema id ``tempbench.submission/1``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .errors import TempbenchError
from .scoring import read_details

SCHEMA_ID = "tempbench.submission/1"
RESULT_SCHEMA_ID = "tempbench.result/1"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_SUBMISSIONS_DIR = Path("submissions")
SETTINGS = ("zero-shot", "fine-tuned")
# A metric stored in a result must equal the mean of the non-null per-query values; official QVHighlights numbers
# are rounded to 2 decimals, hence the tolerance.
MEAN_TOLERANCE = 0.0051


@dataclass
class Entry:
    """One loaded leaderboard entry (reported or reproduced), ready for the leaderboard builder."""

    id: str
    path: Path
    record: dict
    metrics: dict[str, float]
    ci95: dict[str, list[float]] = field(default_factory=dict)
    details_path: Path | None = None

    @property
    def source(self) -> str:
        return self.record["source"]

    @property
    def task(self) -> str:
        return self.record["task"]

    @property
    def split(self) -> str:
        return self.record["split"]

    @property
    def kind(self) -> str:
        return self.record["kind"]

    @property
    def name(self) -> str:
        return self.record["model"]["name"]

    @property
    def setting(self) -> str:
        return self.record["setting"]

    @property
    def profile(self) -> str | None:
        return self.record.get("profile")

    @property
    def version(self) -> str | None:
        """tempbench version that scored a reproduced entry (None for reported ones)."""
        if self.source == "reproduced":
            return self.record["result"]["provenance"].get("tempbench_version")
        return None

    @property
    def date(self) -> str:
        return self.record["date"]

    def load_details(self) -> list[dict]:
        """Per-query rows of a reproduced entry (empty for reported entries)."""
        if self.details_path is None:
            return []
        return read_details(self.details_path)


# --------------------------------------------------------------------------------------------------- helpers


@cache
def load_schema(name: str) -> dict:
    """A JSON schema shipped in ``tempbench/schemas`` (``submission`` or ``result``)."""
    with open(SCHEMAS_DIR / f"{name}.json", encoding="utf-8") as fh:
        return json.load(fh)


def _validator(name: str):
    import jsonschema

    schema = load_schema(name)
    return jsonschema.Draft202012Validator(schema)


def _schema_errors(record: dict, name: str, path: Path) -> None:
    """Raise a TempbenchError naming the file and the first offending field, if ``record`` breaks the schema."""
    errors = sorted(_validator(name).iter_errors(record), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise TempbenchError(
            f"{path}: field {where!r}: {err.message}{more}",
            f"the file must follow tempbench/schemas/{name}.json ({load_schema(name)['$id']})",
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def slugify(name: str) -> str:
    """A file-name-safe slug: lower case, runs of other characters become '-', e.g. 'Qwen/Qwen2.5-VL-7B' ->
    'qwen-qwen2.5-vl-7b'."""
    slug = re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)
    if not slug:
        raise TempbenchError(f"cannot make a file name from the model name {name!r}", "pass a name with letters or digits")
    return slug[:100]


def read_json(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise TempbenchError(f"{path}: no such file", f"give the path of a {what}")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise TempbenchError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})", f"expected a {what}") from None
    except UnicodeDecodeError:
        raise TempbenchError(f"{path}: not UTF-8 text", f"expected a {what}") from None
    if not isinstance(data, dict):
        raise TempbenchError(f"{path}: the top level is not a JSON object", f"expected a {what}")
    return data


def _check_details_consistent(rows: list[dict], result: dict, path: Path, *, require: tuple[str, ...] = ()) -> None:
    """Every metric of the result that also appears in the per-query ``scores`` must equal the mean of the
    non-null per-query values (the contract of ``details.jsonl.gz``), and the rows must be one per scored query."""
    qids = [row["qid"] for row in rows]
    if len(set(map(str, qids))) != len(qids):
        raise TempbenchError(f"{path}: field 'qid': the same qid appears more than once",
                             "a details file has one row per query; score the predictions again")
    if len(rows) != result["n"]:
        raise TempbenchError(f"{path}: {len(rows)} rows but the result says n={result['n']}",
                             "the details file does not belong to this result; use the pair written by one `tempbench score`")
    for name in require:
        if not any(row["scores"].get(name) is not None for row in rows):
            raise TempbenchError(f"{path}: field 'scores.{name}' is missing from every row",
                                 "the leaderboard's paired test needs per-query values of the headline metric")
    for name, value in result["metrics"].items():
        vals = [row["scores"].get(name) for row in rows if name in row["scores"]]
        vals = [v for v in vals if v is not None]
        if not vals:
            continue
        mean = math.fsum(vals) / len(vals)
        if abs(mean - value) > MEAN_TOLERANCE:
            raise TempbenchError(
                f"{path}: field 'scores.{name}': per-query mean {mean:.4f} differs from the result's {value:.4f}",
                "the details file does not belong to this result; use the pair written by one `tempbench score`",
            )


# --------------------------------------------------------------------------------------------------- registry


def _task_spec(task: str, path: Path, field_name: str = "task"):
    from .tasks import get_task

    try:
        return get_task(task)
    except TempbenchError as exc:
        raise TempbenchError(f"{path}: field {field_name!r}: {exc.message}", exc.hint) from None


def annotation_sha256(spec, split: str) -> str | None:
    """sha256 of the primary official file of ``split`` according to the task card (None if the card has none)."""
    split_card = spec.card["splits"][split]
    primary = split_card.get("primary")
    files = split_card.get("files")
    if isinstance(files, dict) and isinstance(files.get(primary), str):
        return files[primary]
    info = spec.card.get("files", {}).get(primary)
    if isinstance(info, dict):
        return info.get("sha256")
    return info if isinstance(info, str) else None


def known_profiles() -> tuple[str, ...]:
    """Names of the scoring profiles (``tempbench.parsing.PROFILES``)."""
    from .parsing import PROFILES

    return tuple(PROFILES)


def headline_metric(kind: str) -> str:
    return "R1@0.5" if kind == "grounding" else "MR-full-R1@0.5"


# --------------------------------------------------------------------------------------------------- validation


def validate_submission(record: dict, path: Path, *, root: Path | None = None, check_details: bool = True) -> Entry:
    """Check one entry file: schema, id vs. path, task/split/kind vs. the registry, reproduced entries' result
    record (schema, annotation sha256, profile) and details file (sha256, consistency). Returns the Entry."""
    path = Path(path)
    _schema_errors(record, "submission", path)
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
    ci95: dict[str, list[float]] = {}
    details_path = None
    if record["source"] == "reproduced":
        result = record["result"]
        _check_result(result, path, spec, record["split"], field_prefix="result.")
        for key in ("task", "split", "kind", "profile"):
            if result[key] != record[key] and not (key == "task" and _task_spec(result[key], path).name == spec.name):
                raise TempbenchError(f"{path}: field {key!r} is {record[key]!r} but result.{key} is {result[key]!r}",
                                     "an entry's fields must agree with its result record")
        if result.get("partial", False) and not record.get("partial", False):
            raise TempbenchError(f"{path}: field 'partial' must be true: result.partial is true",
                                 "a partial run is shown marked as partial")
        metrics = dict(result["metrics"])
        ci95 = {k: list(v) for k, v in result.get("ci95", {}).items()}
        details_path = path.parent / record["details"]["file"]
        if check_details:
            if not details_path.is_file():
                raise TempbenchError(f"{path}: field 'details.file': {details_path} does not exist",
                                     "a reproduced entry is stored with its details.jsonl.gz; submit it again")
            digest = sha256_file(details_path)
            if digest != record["details"]["sha256"]:
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
    return Entry(id=record["id"], path=path, record=record, metrics=metrics, ci95=ci95, details_path=details_path)


def _check_result(result: dict, path: Path, spec, split: str, field_prefix: str = "") -> None:
    _schema_errors(result, "result", path)
    if result["split"] != split:
        raise TempbenchError(f"{path}: field '{field_prefix}split' is {result['split']!r}, expected {split!r}", None)
    if result["kind"] != spec.kind:
        raise TempbenchError(f"{path}: field '{field_prefix}kind' is {result['kind']!r} but task {spec.name!r} is "
                             f"{spec.kind!r}", "score the predictions with the right --task")
    expected = annotation_sha256(spec, split)
    got = result["provenance"]["annotation_sha256"]
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
    if result["profile"] not in profiles:
        raise TempbenchError(f"{path}: field '{field_prefix}profile': unknown profile {result['profile']!r}",
                             f"known profiles: {', '.join(profiles)}")


def load_submissions(submissions_dir: Path, *, check_details: bool = True) -> list[Entry]:
    """Every entry under ``submissions_dir`` (``<task>/<split>/<slug>.json``), validated, sorted by id."""
    root = Path(submissions_dir)
    if not root.is_dir():
        raise TempbenchError(f"{root}: no such folder", "give the submissions folder (default: submissions/)")
    entries = []
    for path in sorted(root.glob("*/*/*.json")):
        entries.append(validate_submission(read_json(path, "leaderboard entry"), path, root=root,
                                           check_details=check_details))
    stray = sorted(p for p in root.rglob("*.json") if p.relative_to(root).parts.__len__() != 3)
    if stray:
        raise TempbenchError(f"{stray[0]}: an entry file outside <task>/<split>/",
                             "entries live at submissions/<task>/<split>/<slug>.json")
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):  # impossible with one file per id, kept as a guard
        raise TempbenchError(f"{root}: duplicate entry ids", "rename one of the files")
    return entries


# --------------------------------------------------------------------------------------------------- submit


def _model_name(run: dict | None) -> str | None:
    if not run:
        return None
    model = run.get("model")
    if isinstance(model, dict):
        return model.get("name") or model.get("id")
    return model if isinstance(model, str) and model else None


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
) -> Path:
    """Add a scored result (``result.json`` + its ``details.jsonl.gz``) to the leaderboard's submissions.

    Checks: the result schema; task and split known to the registry; annotation sha256 equal to the official
    primary file of that split; profile known; a complete run (``partial`` false and n == split size) unless
    ``allow_partial`` (then the entry is marked partial); setting zero-shot/fine-tuned (from run.json or
    ``setting``); the details file consistent with the metrics; no existing entry with the same id, nor the same
    predictions scored with the same profile. ``own_metrics`` ({"source", "sha256"?, "metrics"}) records what
    the model's own metrics file states, shown next to tempbench's numbers. Returns the path of the written entry.
    """
    result_path = Path(result_path)
    result = read_json(result_path, "result.json written by `tempbench score`")
    if result.get("schema") != RESULT_SCHEMA_ID:
        raise TempbenchError(f"{result_path}: field 'schema' is {result.get('schema')!r}, expected {RESULT_SCHEMA_ID!r}",
                             "submit the result.json written by `tempbench score` (score again with this version)")
    _schema_errors(result, "result", result_path)
    spec = _task_spec(result["task"], result_path)
    if getattr(spec, "builtin", False):
        raise TempbenchError(f"{result_path}: field 'task': {spec.name!r} is generated locally, not an official benchmark",
                             "only official benchmarks go on the leaderboard")
    if result["split"] not in spec.splits:
        raise TempbenchError(f"{result_path}: field 'split': task {spec.name!r} has no split {result['split']!r}",
                             f"its splits are {', '.join(spec.splits)}")
    _check_result(result, result_path, spec, result["split"])
    split_size = spec.card["splits"][result["split"]].get("size")
    partial = bool(result.get("partial", False)) or (split_size is not None and result["n"] < split_size)
    if partial and not allow_partial:
        raise TempbenchError(
            f"{result_path}: field 'partial': only {result['n']} of {split_size} queries were scored",
            "score the whole split, or pass allow_partial (--allow-partial) to submit it marked as partial",
        )
    run = result.get("run") or {}
    setting = setting or run.get("setting")
    if setting not in SETTINGS:
        raise TempbenchError(f"{result_path}: field 'run.setting' is {setting!r}",
                             "say whether the model was trained on this benchmark: --setting zero-shot|fine-tuned")
    name = name or _model_name(run)
    if not name:
        raise TempbenchError(f"{result_path}: field 'run.model' is missing", "give the entry a name (--name)")
    details_src = Path(details_path) if details_path else result_path.with_name("details.jsonl.gz")
    rows = read_details(details_src)
    _check_details_consistent(rows, result, details_src, require=(headline_metric(spec.kind),))

    slug = slugify(name) + ("" if result["profile"] == "canonical" else f"--{slugify(result['profile'])}")
    root = Path(submissions_dir)
    out_dir = root / spec.name / result["split"]
    entry_path = out_dir / f"{slug}.json"
    if entry_path.exists():
        raise TempbenchError(f"{entry_path}: an entry with id {spec.name}/{result['split']}/{slug} already exists",
                             "choose another name (--name), or delete the old entry first to replace it")
    pred_sha = result["provenance"]["predictions_sha256"]
    for other in sorted(out_dir.glob("*.json")) if out_dir.is_dir() else []:
        try:
            rec = json.loads(other.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        res = rec.get("result") or {}
        if (res.get("provenance", {}).get("predictions_sha256") == pred_sha
                and res.get("profile") == result["profile"]):
            raise TempbenchError(f"{result_path}: these predictions (sha256 {pred_sha[:12]}…) scored with profile "
                                 f"{result['profile']!r} are already on the leaderboard as {other}",
                                 "a duplicate entry is refused; remove the old one first to replace it")
    created = str(result["provenance"]["created"])
    if not re.match(r"^\d{4}-\d{2}-\d{2}", created):
        raise TempbenchError(f"{result_path}: field 'provenance.created' is {created!r}", "expected an ISO date-time")
    run_model = run.get("model")
    model = {"name": name, "id": run_model if isinstance(run_model, str) else (run_model or {}).get("id")}
    record = {
        "schema": SCHEMA_ID,
        "id": f"{spec.name}/{result['split']}/{slug}",
        "source": "reproduced",
        "task": spec.name,
        "split": result["split"],
        "kind": spec.kind,
        "model": model,
        "setting": setting,
        "profile": result["profile"],
        "evaluator": f"tempbench {result['provenance']['tempbench_version']}",
        "date": created[:10],
        "partial": partial,
        "result": result,
        "details": {"file": f"{slug}.details.jsonl.gz", "sha256": ""},
        "notes": list(notes or []),
    }
    if own_metrics is not None:
        record["own_metrics"] = own_metrics
    out_dir.mkdir(parents=True, exist_ok=True)
    details_dst = out_dir / record["details"]["file"]
    data = details_src.read_bytes()
    details_dst.write_bytes(data)
    record["details"]["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        validate_submission(record, entry_path, root=root)
    except TempbenchError:
        details_dst.unlink(missing_ok=True)
        raise
    write_json(entry_path, record)
    return entry_path


def write_json(path: Path, data) -> None:
    """Deterministic JSON: sorted keys, 2-space indent, UTF-8, trailing newline."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
