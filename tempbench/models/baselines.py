"""Baselines that need no model: they predict windows from the video duration alone.

- `prior`: the mean normalised window of the task's TRAIN split, `[mean(s/d), mean(e/d)]` over every GT window
  of every train record (d = the record's duration), scaled to each query's duration.
- `random`: a window between two points drawn uniformly in [0, d], from a generator seeded by (seed, qid), so a
  query's window does not depend on the order, the batch or the other queries.
- `center`: a window centred at d/2 whose length is the prior's mean normalised length `mean((e-s)/d)` times d
  when train records are given, else half the video ([d/4, 3d/4]).

They predict windows directly (`predict(records) -> [[start, end], ...]`) and, for the text pipeline, answer
`"S to E"` (two decimals) from `generate(batch)`, where the duration comes from `meta["duration"]`,
`meta["record"]["duration"]` or `clip.duration`, in that order.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from tempbench.errors import TempbenchError
from tempbench.models.base import ModelInput
from tempbench.parsing import format_span
from tempbench.results import ModelIdentity


def _duration(record: dict, where: str) -> float:
    try:
        d = float(record["duration"])
    except (KeyError, TypeError, ValueError):
        raise TempbenchError(f"{where}: record has no numeric 'duration'", hint="annotation records need duration") from None
    if not np.isfinite(d) or d <= 0:
        raise TempbenchError(f"{where}: duration must be positive, got {record.get('duration')!r}")
    return d


def normalised_windows(records: list[dict]) -> np.ndarray:
    """(n, 2) array of [s/d, e/d] over every window of every record, clipped to [0, 1]."""
    rows = []
    for i, r in enumerate(records):
        d = _duration(r, f"train record {i} (qid {r.get('qid')})")
        for w in r.get("windows") or []:
            s, e = float(w[0]), float(w[1])
            rows.append((min(max(s / d, 0.0), 1.0), min(max(e / d, 0.0), 1.0)))
    if not rows:
        raise TempbenchError("the prior baseline needs train records with windows", hint="import the train split")
    return np.asarray(rows, dtype=np.float64)


class _Baseline:
    backend = "baseline"
    needs_video = False
    kind = ""
    seed: int | None = None

    def __init__(self, train_records: list[dict] | None = None):
        self.n_train = len(train_records) if train_records else 0
        self.train_sha256 = (
            hashlib.sha256(
                "\n".join(json.dumps([r.get("qid"), r.get("duration"), r.get("windows")]) for r in train_records).encode()
            ).hexdigest()
            if train_records
            else None
        )

    @property
    def name(self) -> str:
        return f"baseline:{self.kind}"

    def window(self, record: dict) -> list[float]:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(self, records: list[dict]) -> list[list[float]]:
        """One [start, end] window (seconds) per record."""
        return [self.window(r) for r in records]

    def generate(self, batch: list[ModelInput]) -> list[str]:
        out = []
        for item in batch:
            meta = item.meta or {}
            rec = dict(meta.get("record") or {})
            rec.setdefault("qid", item.qid)
            if meta.get("duration") is not None:
                rec["duration"] = meta["duration"]
            elif "duration" not in rec and item.clip is not None:
                rec["duration"] = item.clip.duration
            s, e = self.window(rec)
            out.append(format_span(s, e))
        return out

    def identity(self) -> ModelIdentity:
        """A baseline is known by its kind, seed and the sha256 of the train annotations it was fitted on."""
        return ModelIdentity(spec=self.name, id=self.name, backend=self.backend,
                             options={"kind": self.kind, "seed": self.seed, "train_sha256": self.train_sha256},
                             info={"params": self.params(), "train_records": self.n_train})

    def params(self) -> dict:
        return {}

    def close(self) -> None:
        pass


class PriorBaseline(_Baseline):
    kind = "prior"

    def __init__(self, train_records: list[dict]):
        if not train_records:
            raise TempbenchError("baseline:prior needs the task's train split", hint="tempbench data import TASK --from DIR")
        super().__init__(train_records)
        self.mean = normalised_windows(train_records).mean(axis=0)

    def window(self, record: dict) -> list[float]:
        d = _duration(record, f"qid {record.get('qid')}")
        return [float(self.mean[0] * d), float(self.mean[1] * d)]

    def params(self) -> dict:
        return {"mean_start": float(self.mean[0]), "mean_end": float(self.mean[1])}


class RandomBaseline(_Baseline):
    kind = "random"

    def __init__(self, seed: int = 0, train_records: list[dict] | None = None):
        super().__init__(None)
        self.seed = int(seed)

    def window(self, record: dict) -> list[float]:
        d = _duration(record, f"qid {record.get('qid')}")
        qid = record.get("qid")
        key = int(qid) if isinstance(qid, (int, np.integer)) or (isinstance(qid, str) and qid.isdigit()) else \
            int.from_bytes(hashlib.sha256(str(qid).encode()).digest()[:8], "little")
        a, b = np.random.default_rng([self.seed, key]).uniform(0.0, d, size=2)
        return [float(min(a, b)), float(max(a, b))]

    def params(self) -> dict:
        return {"seed": self.seed}


class CenterBaseline(_Baseline):
    kind = "center"

    def __init__(self, train_records: list[dict] | None = None):
        super().__init__(train_records)
        if train_records:
            nw = normalised_windows(train_records)
            self.length = float(np.mean(nw[:, 1] - nw[:, 0]))
            self.source = "train mean length"
        else:
            self.length = 0.5
            self.source = "half the video (no train records)"

    def window(self, record: dict) -> list[float]:
        d = _duration(record, f"qid {record.get('qid')}")
        half = self.length * d / 2
        return [float(d / 2 - half), float(d / 2 + half)]

    def params(self) -> dict:
        return {"length": self.length, "length_source": self.source}


BASELINES = {"prior": PriorBaseline, "random": RandomBaseline, "center": CenterBaseline}


def load_baseline(kind: str, train_records: list[dict] | None = None, seed: int = 0) -> _Baseline:
    """`baseline:prior|random|center`."""
    if kind == "prior":
        return PriorBaseline(train_records or [])
    if kind == "random":
        return RandomBaseline(seed=seed)
    if kind == "center":
        return CenterBaseline(train_records)
    from tempbench.errors import UsageError

    raise UsageError(f"unknown baseline {kind!r}", hint="use baseline:prior, baseline:random or baseline:center")
