"""The records tempbench writes and reads: a run's identity (`RunConfig`, which is `run.json`), a scored result
(`Result`, `result.json`, with its per-query `details.jsonl.gz`) and a paired comparison (`Comparison`).

Every record is a frozen dataclass. `to_json()` and `from_json()` check the JSON against the schema in
`tempbench/schemas/` on both sides, and every JSON form carries its schema id: a file written by an older
tempbench is refused with a message that says what to do, never misread. No other module reads these records by
key paths; they use the attributes.

Run identity: `RunConfig.identity()` is every setting that changes predictions (task, split, annotation sha256,
the model's identity with its weight fingerprint, dtype and attention implementation, the adapter options that
change answers, the prompt's sha256, the video and generation settings); `fingerprint` is the sha256 of it.
Recorded but not part of the identity: the profile, limit, batch size, shard, world size, device, workers,
prefetch kind, grouping and token budget (`Execution`), the setting (zero-shot/fine-tuned), versions and the outcome.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import io
from .errors import TempbenchError

RESULT_SCHEMA = "tempbench.result/2"
RUN_SCHEMA = "tempbench.run/2"
COMPARISON_SCHEMA = "tempbench.comparison/1"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


# ------------------------------------------------------------------------------------------------- schemas


@cache
def load_schema(name: str) -> dict:
    """A JSON schema shipped in `tempbench/schemas/` (by file stem: `result`, `run`, `submission`, ...)."""
    with open(SCHEMAS_DIR / f"{name}.json", encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _validator(name: str):
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))


def check_schema(data: Any, name: str, source: str | Path) -> None:
    """Raise a TempbenchError naming `source` and the first offending field if `data` breaks schema `name`."""
    errors = sorted(_validator(name).iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        message = err.message if len(err.message) <= 200 else err.message[:200] + "…"
        raise TempbenchError(f"{source}: field {where!r}: {message}{more}",
                             f"the file must follow tempbench/schemas/{name}.json ({load_schema(name)['$id']})")


def _check_schema_id(data: Any, expected: str, source, what: str, redo: str) -> None:
    got = data.get("schema") if isinstance(data, dict) else None
    if got == expected:
        return
    if isinstance(got, str) and got.split("/")[0] == expected.split("/")[0]:
        raise TempbenchError(f"{source}: field 'schema' is {got!r}: a {what} of another tempbench version "
                             f"(this one reads {expected!r})", redo)
    raise TempbenchError(f"{source}: field 'schema' is {got!r}, expected {expected!r}", f"give a {what}; {redo}")


# ------------------------------------------------------------------------------------------------- run identity


@dataclass(frozen=True)
class ModelIdentity:
    """What model produced the answers. `spec` is `--model` as typed; `id` what it resolved to (hub id, folder,
    `openai:NAME`, `baseline:KIND`); `weights` a fingerprint of the weight bytes (`tempbench.models.weights`);
    `served_model` the model id an OpenAI-compatible server names in its answers; `options` the adapter options
    that change answers (a baseline's kind, seed and train sha256; a server's mode and image encoding; ...).
    `info` is provenance that does not change answers (library versions, zoo entry, device)."""

    spec: str
    id: str
    backend: str
    revision: str | None = None
    weights: str | None = None
    model_type: str | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    served_model: str | None = None
    options: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def identity(self) -> dict:
        """The fields that change predictions (a model known by its weight bytes is not also known by its path)."""
        out = {k: getattr(self, k) for k in ("backend", "revision", "weights", "model_type", "dtype",
                                             "attn_implementation", "served_model")}
        if self.weights is None:
            out["id"] = self.id
        out["options"] = dict(self.options)
        return out


@dataclass(frozen=True)
class Execution:
    """How a run was executed: recorded, not part of its identity (a resumed run may change any of these)."""

    profile: str = "canonical"
    limit: int | None = None
    batch_size: int = 8
    shard: str | None = None  # "i/n" for data-parallel runs
    world_size: int = 1
    device: str | None = None
    workers: int | None = None
    prefetch: str | None = None
    hardware: dict = field(default_factory=dict)
    grouping: str | None = None  # "video": queries grouped by video, each video decoded once (tempbench.batching)
    token_budget: int | None = None  # the cap on a batch's padded prompt tokens, if any


@dataclass(frozen=True)
class VideoCoverage:
    queries: int = 0  # queries this invocation ran
    errors: int = 0
    video_missing: int = 0
    video_undecodable: int = 0


@dataclass(frozen=True)
class RunOutcome:
    """How the last invocation into a run folder ended."""

    status: str  # running | finished | interrupted | failed
    seconds: float = 0.0
    queries_per_s: float | None = None
    model_seconds: float = 0.0
    coverage: VideoCoverage = field(default_factory=VideoCoverage)


@dataclass(frozen=True)
class RunConfig:
    """A run's identity and settings; its JSON form is `run.json` (schema `tempbench.run/2`)."""

    task: str
    split: str
    annotation_file: str
    annotation_sha256: str
    model: ModelIdentity
    prompt: str | None  # a registered prompt's name, or a template file's path
    prompt_sha256: str | None
    video: dict | None  # VideoSettings.to_dict(), None when no video is decoded (baselines)
    generation: dict | None  # GenerationSettings.to_dict(), None when no text is generated (baselines)
    setting: str = "zero-shot"
    execution: Execution = field(default_factory=Execution)
    tempbench_version: str = ""
    git_revision: str | None = None
    created: str = ""
    outcome: RunOutcome | None = None

    def identity(self) -> dict:
        """Every setting that changes predictions, flattened to dotted names (`generation.max_new_tokens`)."""
        nested = {"task": self.task, "split": self.split, "annotation_sha256": self.annotation_sha256,
                  "model": self.model.identity(), "prompt_sha256": self.prompt_sha256,
                  "video": self.video, "generation": self.generation}
        return _flatten(nested)

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    def differences(self, old: RunConfig) -> list[str]:
        """`field: old -> new` for each identity field that differs from `old`'s. A server's model id that this
        run does not know yet (no answer so far) is not a difference; it is checked after the first answer."""
        a, b = old.identity(), self.identity()
        out = []
        for key in sorted(set(a) | set(b)):
            if key == "model.served_model" and b.get(key) is None:
                continue
            if a.get(key) != b.get(key):
                out.append(f"{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
        return out

    def numerics(self) -> dict | None:
        """The execution settings that can change a local model's answers in their last bits without changing its
        identity: how batches are formed, the decode loop, prefix sharing and the device. None for models without
        them (baselines, servers)."""
        if self.model.backend != "transformers":
            return None
        decoding = self.model.info.get("decoding") or {}
        return {"execution.batch_size": self.execution.batch_size, "execution.token_budget": self.execution.token_budget,
                "decoding.decoder": decoding.get("decoder"), "decoding.share_prefix": decoding.get("share_prefix"),
                "execution.device": (self.execution.device or "").split(":")[0] or None,
                "hardware.gpu": (self.execution.hardware or {}).get("gpu")}

    def numerics_differences(self, old: RunConfig) -> list[str]:
        """`field: old -> new` for each of :meth:`numerics` that differs from `old`'s where it can change answers: in
        float32 on a CPU the token ids do not depend on them (tests/test_models_sharing.py), elsewhere (bf16, a
        GPU's kernels) they can. A field `old` did not record is not compared."""
        a, b = old.numerics(), self.numerics()
        if a is None or b is None:
            return []
        if self.model.dtype == "float32" and a["execution.device"] == b["execution.device"] == "cpu":
            return []
        return [f"{k}: {_short(a[k])} -> {_short(b[k])}" for k in a if a[k] is not None and a[k] != b[k]]

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        data = {"schema": RUN_SCHEMA, "fingerprint": self.fingerprint, **_asdict(self)}
        check_schema(data, "run", "run.json")
        return data

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "run.json") -> RunConfig:
        _check_schema_id(data, RUN_SCHEMA, source, "run.json",
                         "this run folder was written by another tempbench version: run into a new --out, or "
                         "--restart (the old folder is moved aside)")
        check_schema(data, "run", source)
        outcome = data.get("outcome")
        config = cls(
            task=data["task"], split=data["split"], annotation_file=data["annotation_file"],
            annotation_sha256=data["annotation_sha256"], model=ModelIdentity(**data["model"]),
            prompt=data["prompt"], prompt_sha256=data["prompt_sha256"], video=data["video"],
            generation=data["generation"], setting=data["setting"], execution=Execution(**data["execution"]),
            tempbench_version=data["tempbench_version"], git_revision=data["git_revision"], created=data["created"],
            outcome=None if outcome is None else RunOutcome(
                **{**outcome, "coverage": VideoCoverage(**outcome["coverage"])}),
        )
        if config.fingerprint != data["fingerprint"]:
            raise TempbenchError(f"{source}: field 'fingerprint' does not match the settings written beside it",
                                 "run.json was edited by hand; restore it, or --restart the run")
        return config

    def write(self, path: str | Path) -> None:
        io.write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        return cls.from_json(io.read_json(path, "run.json written by `tempbench run`"), path)


def _flatten(obj: Any, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        out: dict = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        if not obj and prefix:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: obj}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 24 else text[:12] + "…" + text[-8:]


def _asdict(obj) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(obj), allow_nan=False))


# ------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Counts:
    """Exact counts behind a result: rows read, parsed ok / repaired / failed, error rows, missing queries, and
    the policies applied (empty or reversed windows, predictions outside the video, saliency lists)."""

    predictions: int = 0
    ok: int = 0
    repaired: int = 0
    failed: int = 0
    errors: int = 0
    missing: int = 0
    empty_windows: int = 0
    reversed_windows: int = 0
    no_answer: int = 0
    outside_video: int = 0
    no_saliency: int = 0
    saliency_length_mismatch: int = 0

    @property
    def failures(self) -> int:
        return self.failed + self.errors + self.missing


@dataclass(frozen=True)
class CIMethod:
    method: str
    resamples: int
    seed: int
    level: float = 0.95


@dataclass(frozen=True)
class BreakdownRow:
    bucket: str
    n: int
    metrics: dict


@dataclass(frozen=True)
class Breakdown:
    by: str  # length | position | duration
    rows: tuple[BreakdownRow, ...]


@dataclass(frozen=True)
class Provenance:
    """Where a result's inputs came from and what scored them."""

    tempbench_version: str
    git_revision: str | None
    annotation_file: str
    annotation_sha256: str
    annotation_verified: bool
    predictions_file: str
    predictions_sha256: str  # of the file's bytes
    created: str
    predictions_content_sha256: str = ""  # of what the metrics read, after parsing (same for byte-tweaked copies)
    profile_reference: str = ""
    strict_threshold: bool = False
    round_to: float | None = None


@dataclass(frozen=True)
class QueryDetail:
    """One query's scoring: parse status, the windows scored, IoU (grounding) and its per-metric values (None:
    not in that metric's denominator); QVHighlights adds the official per-query structure (`official`)."""

    qid: int
    vid: str
    status: str  # ok | repaired | failed | error | missing
    detail: str
    windows: list | None
    scores: dict
    iou: float | None = None
    official: dict | None = None

    def to_json(self) -> dict:
        out = {"qid": self.qid, "vid": self.vid, "status": self.status, "detail": self.detail,
               "windows": self.windows, "scores": self.scores}
        if self.iou is not None:
            out["iou"] = self.iou
        if self.official is not None:
            out["official"] = self.official
        return out


@dataclass(frozen=True)
class Result:
    """The scores of one predictions file on one task split under one profile (`result.json`)."""

    task: str
    split: str
    kind: str
    profile: str
    n: int  # queries in the denominator
    split_size: int
    partial: bool
    counts: Counts
    failure_rate: float
    metrics: dict  # name -> percent, full precision (QVHighlights: the official 2 dp)
    ci95: dict  # name -> [low, high]
    provenance: Provenance
    ci: CIMethod | None = None
    official: dict | None = None  # QVHighlights: the whole official scorer output
    breakdown: Breakdown | None = None
    quirks: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    run: RunConfig | None = None
    details: tuple[QueryDetail, ...] = field(default=(), repr=False, compare=False)

    def replace(self, **changes) -> Result:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        data = {"schema": RESULT_SCHEMA}
        for f in dataclasses.fields(self):
            if f.name in ("details", "run"):
                continue
            value = getattr(self, f.name)
            data[f.name] = _asdict(value) if dataclasses.is_dataclass(value) else value
        data["notes"] = list(self.notes)
        data["run"] = None if self.run is None else self.run.to_json()
        data = json.loads(json.dumps(data, allow_nan=False))
        check_schema(data, "result", "result record")
        return data

    @classmethod
    def from_json(cls, data: Any, source: str | Path = "result.json", details: Iterable[QueryDetail] = ()) -> Result:
        _check_schema_id(data, RESULT_SCHEMA, source, "result.json written by `tempbench score`",
                         "score the predictions again with this tempbench (`tempbench score PREDICTIONS`)")
        check_schema(data, "result", source)
        b = data.get("breakdown")
        return cls(
            task=data["task"], split=data["split"], kind=data["kind"], profile=data["profile"], n=data["n"],
            split_size=data["split_size"], partial=data["partial"], counts=Counts(**data["counts"]),
            failure_rate=data["failure_rate"], metrics=dict(data["metrics"]),
            ci95={k: list(v) for k, v in data["ci95"].items()}, provenance=Provenance(**data["provenance"]),
            ci=None if data.get("ci") is None else CIMethod(**data["ci"]), official=data.get("official"),
            breakdown=None if b is None else Breakdown(b["by"], tuple(BreakdownRow(**r) for r in b["rows"])),
            quirks=dict(data.get("quirks", {})), notes=tuple(data.get("notes", ())),
            run=None if data.get("run") is None else RunConfig.from_json(data["run"], f"{source}: run"),
            details=tuple(details),
        )

    def write(self, path: str | Path) -> None:
        io.write_json(path, self.to_json(), sort_keys=False)

    @classmethod
    def read(cls, path: str | Path, details: str | Path | None = None) -> Result:
        data = io.read_json(path, "result.json written by `tempbench score`")
        result = cls.from_json(data, path)
        return result if details is None else result.replace(details=read_details(details))


def write_details(path: str | Path, details: Iterable[QueryDetail]) -> None:
    """Per-query rows as gzipped JSON lines (deterministic bytes: no timestamp in the gzip header)."""
    text = "".join(json.dumps(d.to_json(), separators=(",", ":"), allow_nan=False) + "\n" for d in details)
    io.atomic_write_bytes(Path(path), gzip.compress(text.encode("utf-8"), mtime=0))


def read_details(path: str | Path) -> tuple[QueryDetail, ...]:
    """The rows of a `details.jsonl.gz` file, each checked against `schemas/details.json`."""
    path = Path(path)
    expected = "details.jsonl.gz written by `tempbench score`"
    data = io.read_bytes(path, expected)
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise io.file_error(path, f"not a readable gzip file of UTF-8 text ({exc})", f"expected {expected}") from None
    rows = []
    for lineno, row in io.iter_jsonl(text, path, expected):
        check_schema(row, "details", f"{path}, line {lineno}")
        rows.append(QueryDetail(**row))
    return tuple(rows)


# ------------------------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class ComparisonRow:
    metric: str
    a: float
    b: float
    difference: float  # b - a
    ci95: tuple[float, float]
    p_value: float


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two predictions files on the queries both scored (`tempbench compare`)."""

    task: str
    split: str
    profile: str
    n: int
    a: str
    b: str
    failure_rate_a: float
    failure_rate_b: float
    rows: tuple[ComparisonRow, ...]

    def to_json(self) -> dict:
        data = {"schema": COMPARISON_SCHEMA, **_asdict(self)}
        check_schema(data, "comparison", "comparison")
        return data


__all__ = ["Breakdown", "BreakdownRow", "CIMethod", "Comparison", "ComparisonRow", "Counts", "Execution",
           "ModelIdentity", "Provenance", "QueryDetail", "Result", "RunConfig", "RunOutcome", "VideoCoverage",
           "check_schema", "load_schema", "read_details", "write_details"]
