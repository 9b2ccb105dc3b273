"""The public Python API (what `import tempbench` offers, and what the CLI calls): it loads each file once, calls
the pure scorer, and writes records atomically. Every function here has a runnable example in docs/api.md.

    >>> import tempbench
    >>> r = tempbench.score([{"qid": 0, "output": "24 to 30"}], task="charades")
    >>> r.metrics["R1@0.5"], r.failure_rate
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import io
from .errors import TempbenchError
from .predictions import Predictions, predictions_from_rows, read_predictions
from .results import Comparison, Result, RunConfig, write_details
from .tasks import AnnotatedSplit, TaskSpec, get_task

PredictionsLike = str | Path | Sequence[dict] | Predictions
AnnotationsLike = str | Path | Sequence[dict] | None


def load_task(name: str) -> TaskSpec:
    """The task called `name` (or an alias): its card, kind, splits, headline metric, default prompt."""
    return get_task(name)


def load_annotations(task: str, split: str | None = None) -> list[dict]:
    """The unified annotation records of an imported (or generated) split."""
    from .annotations import load_annotations as load

    return load(task, split)


def load_predictions(predictions: PredictionsLike) -> Predictions:
    """Validated prediction rows from a file (JSONL or a JSON list) or from a list of row dicts."""
    if isinstance(predictions, Predictions):
        return predictions
    if isinstance(predictions, (str, Path)):
        return read_predictions(predictions)
    return predictions_from_rows(list(predictions))


def resolve_split(task: str | None = None, split: str | None = None, annotations: AnnotationsLike = None,
                  kind: str | None = None, run: RunConfig | None = None) -> AnnotatedSplit:
    """The annotation records to score against: `annotations` (a unified JSONL file or a list of records, a
    custom task), else `task`/`split`, else the task and split a run.json names."""
    from .annotations import load_annotation_file, load_split, records_split

    if annotations is not None:
        if isinstance(annotations, (str, Path)):
            return load_annotation_file(annotations, kind)
        return records_split(list(annotations), "<annotations>", kind=kind)
    name = task or (run.task if run is not None else None)
    if not name:
        raise TempbenchError("which task are these predictions for?",
                             "pass --task NAME (or --annotations FILE.jsonl); no run.json lies next to them")
    if name == "custom" and task is None:
        path = Path(run.annotation_file)
        if path.is_file() and io.sha256_file(path) == run.annotation_sha256:
            return load_annotation_file(path, kind)
        raise TempbenchError(f"the run's custom annotations {path} are gone or changed",
                             "pass --annotations FILE.jsonl (the file the run was made with)")
    spec = get_task(name)
    if split is None and run is not None and run.task == spec.name:
        split = run.split
    return load_split(spec.name, split)


def _caller_level() -> int:
    """The stack level of the first frame outside tempbench (where a warning should point)."""
    import sys

    package = str(Path(__file__).resolve().parent)
    frame, level = sys._getframe(1), 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def score(predictions: PredictionsLike, task: str | None = None, split: str | None = None, *,
          annotations: AnnotationsLike = None, kind: str | None = None, profile: str = "canonical",
          ci: bool = True, n_resamples: int = 1000, seed: int = 0, strict: bool = False,
          by: str | None = None, keep_details: bool = True) -> Result:
    """Score predictions (a file, or a list of row dicts) and return the `Result`, details included.

    The task and split come from `task`/`split`, else from the run.json next to a predictions file;
    `annotations` (a unified JSONL file or a list of records) scores against a custom task instead.
    Queries without a prediction count as failures. Warnings name input scored under a policy."""
    return score_profiles(predictions, task, split, annotations=annotations, kind=kind, profiles=[profile],
                          ci=ci, n_resamples=n_resamples, seed=seed, strict=strict, by=by,
                          keep_details=keep_details)[0]


def score_profiles(predictions: PredictionsLike, task: str | None = None, split: str | None = None, *,
                   annotations: AnnotationsLike = None, kind: str | None = None,
                   profiles: Sequence[str] | None = None, ci: bool = True, n_resamples: int = 1000, seed: int = 0,
                   strict: bool = False, by: str | None = None, keep_details: bool = True) -> list[Result]:
    """The same predictions under several profiles (default: every profile), reading the files once.
    `keep_details=False` leaves the per-query details out of the results (faster on QVHighlights)."""
    from .parsing import PROFILES

    preds = load_predictions(predictions)
    data = resolve_split(task, split, annotations, kind, preds.run)
    return _score_loaded(data, preds, profiles or list(PROFILES), ci=ci, n_resamples=n_resamples, seed=seed,
                         strict=strict, by=by, keep_details=keep_details)


def _score_loaded(data: AnnotatedSplit, preds: Predictions, profiles: Sequence[str], **options) -> list[Result]:
    from .scoring import ScoringWarning
    from .scoring import score as score_split

    revision, created = io.git_revision(), _created()
    results = []
    for i, name in enumerate(profiles):
        def warn(message, first=i == 0):
            if first:
                warnings.warn(message, ScoringWarning, stacklevel=_caller_level())

        results.append(score_split(data, preds, name, created=created, git_revision=revision, warn=warn, **options))
    return results


def write_result(result: Result, out: str | Path | None = None, details: str | Path | None = None) -> None:
    """Write `result.json` to `out` and the gzipped per-query rows to `details` (each atomically)."""
    try:
        if out is not None:
            result.write(out)
        if details is not None:
            write_details(details, result.details)
    except OSError as exc:
        raise io.disk_error(exc, out if details is None else details, "the result") from None


def compare(a: PredictionsLike, b: PredictionsLike, task: str | None = None, split: str | None = None, *,
            annotations: AnnotationsLike = None, kind: str | None = None, profile: str = "canonical",
            n_resamples: int = 1000, seed: int = 0) -> Comparison:
    """Paired comparison of two predictions of the same queries: B - A per metric, its 95% CI and p-value
    (clustered by video)."""
    from .scoring import compare as compare_results

    pa, pb = load_predictions(a), load_predictions(b)
    data = resolve_split(task, split, annotations, kind, pa.run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, rb = (_score_loaded(data, p, [profile], ci=False)[0] for p in (pa, pb))
    return compare_results(ra, rb, n_resamples=n_resamples, seed=seed)


def run(model: str, task: str | None = None, split: str | None = None, **options):
    """Run `model` over a task split (or `annotations=FILE.jsonl`) into a run folder and score it; returns a
    `tempbench.runner.RunSummary` (run folder, `RunConfig`, `Result`). Options as `tempbench run`'s."""
    from .runner import run as run_model

    return run_model(model, task, split, **options)


__all__ = ["compare", "load_annotations", "load_predictions", "load_task", "resolve_split", "run", "score",
           "score_profiles", "write_result"]
