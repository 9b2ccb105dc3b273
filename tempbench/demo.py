"""The demo (`make demo`, `tempbench demo`): what tempbench measures, in a minute on a laptop CPU.

It runs the embedded default model `tiny-synthetic` (a 4.4 M-parameter Qwen2.5-VL trained by tempbench on the
generated tasks, shipped with the package) over a split of a generated task, and the two baselines that never look
at the video (`baseline:center`: a window of the train split's mean length in the middle; `baseline:prior`: the
train split's mean normalised window), each through the real pipeline: videos generated and decoded, answers
generated and parsed, scored with 95% bootstrap CIs. A model that reads the video sits above both baselines.
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import Result

MODELS = ("tiny-synthetic", "baseline:center", "baseline:prior")


@dataclass(frozen=True)
class DemoRow:
    model: str
    result: Result
    run_dir: str
    queries_per_s: float | None


def run_demo(task: str = "synthetic", split: str = "test", batch_size: int = 8, progress: bool = True,
             models: tuple[str, ...] = MODELS) -> list[DemoRow]:
    """Each model over the task split (a run folder each, under runs/, resumed when run again)."""
    from .runner import run

    rows = []
    for model in models:
        summary = run(model, task, split, batch_size=batch_size, progress=progress)
        outcome = summary.config.outcome
        rows.append(DemoRow(model, summary.result, str(summary.run_dir),
                            outcome.queries_per_s if outcome is not None else None))
    return rows
