"""The model adapter protocol: what the runner needs from any model (docs/design.md, "Module interfaces").

An adapter turns a batch of `ModelInput` (a decoded clip plus the rendered prompt) into raw text answers, one per
input, in order. Parsing the text into windows is not the adapter's job (`tempbench.parsing` does it), except for
baselines, which also predict windows directly (`WindowPredictor`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from tempbench.errors import TempbenchError
from tempbench.results import ModelIdentity


@dataclass
class ModelInput:
    """One query: `clip` (a `tempbench.video.Clip`, or None for text-only / window baselines), the rendered `prompt`,
    the query id, and free `meta` (e.g. vid, duration, the annotation record for baselines)."""

    clip: Any
    prompt: str
    qid: int
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSettings:
    """Decoding settings. Defaults: greedy, 256 new tokens, no repetition penalty.

    Adapters apply exactly these settings (they do not inherit a checkpoint's own sampling defaults, e.g. the
    `do_sample/temperature/top_p/top_k/repetition_penalty` of Qwen's `generation_config.json`) and report them in
    `info()["generation"]`.
    """

    max_new_tokens: int = 256
    min_new_tokens: int | None = None  # fixes the answer length in throughput measurements
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = 0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        hint = "e.g. --gen max_new_tokens=256,do_sample=false"
        for name, kinds, what in (("max_new_tokens", (int,), "an integer"), ("min_new_tokens", (int, type(None)),
                                  "an integer"), ("seed", (int, type(None)), "an integer"),
                                  ("do_sample", (bool,), "true or false"), ("temperature", (int, float), "a number"),
                                  ("top_p", (int, float), "a number"), ("repetition_penalty", (int, float), "a number")):
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise TempbenchError(f"generation setting {name}={value!r} must be {what}", hint)
        if self.max_new_tokens <= 0:
            raise TempbenchError(f"max_new_tokens must be positive, got {self.max_new_tokens}", hint)
        if self.min_new_tokens is not None and not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise TempbenchError(f"min_new_tokens must be in 0..max_new_tokens, got {self.min_new_tokens}", hint)
        if self.do_sample and not (self.temperature > 0):
            raise TempbenchError(
                f"sampling needs temperature > 0, got {self.temperature}", hint="or use greedy decoding"
            )
        if not (0 < self.top_p <= 1):
            raise TempbenchError(f"top_p must be in (0, 1], got {self.top_p}")
        if not (self.repetition_penalty > 0):
            raise TempbenchError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def transformers_config(self, eos_token_id, pad_token_id):
        """These settings as a transformers `GenerationConfig` (nothing taken from a checkpoint's own defaults;
        sampling without top-k)."""
        from transformers import GenerationConfig

        kw = dict(max_new_tokens=int(self.max_new_tokens), do_sample=bool(self.do_sample),
                  repetition_penalty=float(self.repetition_penalty), eos_token_id=eos_token_id,
                  pad_token_id=pad_token_id)
        if self.min_new_tokens:
            kw["min_new_tokens"] = int(self.min_new_tokens)
        if self.do_sample:
            kw.update(temperature=float(self.temperature), top_p=float(self.top_p), top_k=0)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        return GenerationConfig(**kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["min_new_tokens"] is None:
            d.pop("min_new_tokens")
        if not self.do_sample:  # temperature / top_p do not apply to greedy decoding
            d.pop("temperature")
            d.pop("top_p")
        return d


@dataclass(frozen=True)
class FailedAnswer:
    """No answer for one query (an empty or malformed reply, an answer over the size cap): the runner writes it as
    an `error` row (a failure in the scores; `--retry-errors` asks again) and the run goes on."""

    message: str


class BatchError(TempbenchError):
    """A failure that stops the run (the server refuses every request, or cannot be reached). `answers` holds what
    the batch did produce, one entry per input (a str, a FailedAnswer, or None where no answer came), so the runner
    keeps the good answers before it stops."""

    def __init__(self, message: str, hint: str | None = None, answers: list | None = None):
        super().__init__(message, hint)
        self.answers = list(answers or [])


@runtime_checkable
class ModelAdapter(Protocol):
    """What every model backend provides."""

    name: str

    def identity(self) -> ModelIdentity:
        """What produces the answers (`tempbench.results.ModelIdentity`): part of the run's identity."""
        ...

    def generate(self, batch: list[ModelInput]) -> list[str | FailedAnswer]:
        """Raw text answers, one per input, in input order (a FailedAnswer where one query got none); a
        BatchError (or any TempbenchError) when the run cannot go on."""
        ...

    def close(self) -> None:
        """Release memory, threads, connections. Safe to call twice."""
        ...


@runtime_checkable
class WindowPredictor(Protocol):
    """Adapters that also predict windows directly (baselines): `predict(records) -> [[start, end], ...]`."""

    def predict(self, records: list[dict]) -> list[list[float]]: ...


def needs_video(adapter: Any) -> bool:
    """Whether the runner must decode videos for this adapter (baselines do not)."""
    return bool(getattr(adapter, "needs_video", True))


def zoo_info(adapter: Any) -> dict:
    """The zoo entry an adapter was loaded from, as provenance (`ModelIdentity.info`)."""
    entry = getattr(adapter, "zoo_entry", None)
    if entry is None:
        return {}
    return {"zoo": {"alias": entry.alias, "hub_id": entry.hub_id, "verified": entry.verified,
                    "reason": entry.reason, "recommended_prompt": entry.prompt}}
