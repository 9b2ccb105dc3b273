"""Issue 14: what a model answers on `synthetic-hard` when it misses: the queried object, the first object to appear,
or another one.

For each `tempbench run` folder given (a run of `synthetic-hard` on one of its card's splits), each answer's window is
compared with the windows of every object of the scene that the generator drew for that query (`draw_scene` with
the split's seed: the same scene the video shows): the object it overlaps most (IoU), that object's place in time,
and how the query names the target (colour and shape, colour, shape). Unparsed answers count as no pick.

    tempbench run --model tiny-synthetic --task synthetic-hard --split val --out runs/v1-val
    python benchmarks/hard_failure_modes.py runs/v1-val [more run folders] --out docs/results/hard_failure_modes.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def run_rows(run: Path, tasks: tuple[str, ...] = ("synthetic-hard",)):
    """A finished `tempbench run` of a synthetic task: its config and, for each query of the split that has a row,
    (the scene the generator drew for it, without pixels; its final prediction row), in qid order, plus the number of
    queries without a row. Rows are read as scoring reads them (`read_predictions`, `match_predictions`: in a run's
    append-only file the later row of a qid supersedes the earlier)."""
    from tempbench.errors import TempbenchError
    from tempbench.predictions import match_predictions, read_predictions
    from tempbench.results import RunConfig
    from tempbench.synthetic import draw_scene
    from tempbench.tasks import synthetic

    config = RunConfig.read(run / "run.json")
    if config.task not in tasks:
        raise TempbenchError(f"{run}: a run of task {config.task!r}, not of {' or '.join(tasks)}")
    split = synthetic.TASKS[config.task]["splits"][config.split]
    settings = synthetic.settings(config.task)
    scenes = [draw_scene(settings, split["seed"], i)[0] for i in range(split["size"])]
    matched = match_predictions(read_predictions(run / "predictions.jsonl"), [s.record(i) for i, s in enumerate(scenes)])
    return config, [(scenes[q], matched.rows[q]) for q in sorted(matched.rows)], len(matched.missing)


def object_ious(span: tuple[float, float], scene) -> list[float]:
    """The temporal IoU (`tempbench.metrics.grounding`) of `span` with each object's window, in object order."""
    from tempbench.metrics.grounding import iou_matrix

    windows = [(o.start / scene.fps, o.end / scene.fps) for o in scene.objects]
    return iou_matrix([span], windows)[0].tolist()


def analyse(run: Path) -> dict:
    from tempbench.parsing import parse_span
    from tempbench.synthetic import COLOURS, QUERY_MODES

    config, rows, missing = run_rows(run)
    per: dict[str, list[dict]] = {}
    for scene, r in rows:
        i = int(r.qid)
        mode = QUERY_MODES[(i // len(COLOURS)) % len(QUERY_MODES)]
        span = parse_span(r.output or "").span
        in_time = sorted(range(len(scene.objects)), key=lambda j: scene.objects[j].start)
        row = {"n_objects": len(scene.objects), "target_place": in_time.index(scene.target)}
        if span is not None:
            ious = object_ious(span, scene)
            pick = max(range(len(ious)), key=lambda j: ious[j])
            row.update(target_iou=ious[scene.target], picked=pick == scene.target, picked_iou=ious[pick],
                       picked_place=in_time.index(pick))
        per.setdefault(mode, []).append(row)
        per.setdefault("all", []).append(row)
    out = {"run": str(run), "model": config.model.info.get("name") or config.model.id,
           "weights": config.model.weights, "split": config.split, "queries_without_a_row": missing, "by_query": {}}
    for mode, items in per.items():
        n = len(items)
        got = [x for x in items if "picked" in x]
        out["by_query"][mode] = {
            "n": n, "parsed": len(got),
            "mIoU_target": 100 * sum(x["target_iou"] for x in got) / n,
            "picks_target_pct": 100 * sum(x["picked"] for x in got) / n,
            "picks_first_to_appear_pct": 100 * sum(x["picked_place"] == 0 for x in got) / n,
            "iou_with_picked_object": 100 * sum(x["picked_iou"] for x in got) / max(1, len(got)),
            "random_pick_pct": 100 * sum(1 / x["n_objects"] for x in items) / n,
            "picked_place_counts": dict(sorted(Counter(x["picked_place"] for x in got).items())),
            "target_place_counts": dict(sorted(Counter(x["target_place"] for x in items).items())),
        }
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="tempbench run folders of synthetic-hard")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from tempbench.errors import TempbenchError

    try:
        res = {"produced_by": "benchmarks/hard_failure_modes.py", "runs": [analyse(r) for r in args.runs]}
    except TempbenchError as e:  # a folder that is not a finished `tempbench run` of synthetic-hard: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in res["runs"]:
        a = r["by_query"]["all"]
        print(f"{r['run']}: on target {a['picks_target_pct']:.1f}%, first to appear {a['picks_first_to_appear_pct']:.1f}%, "
              f"IoU with its pick {a['iou_with_picked_object']:.1f}, random pick {a['random_pick_pct']:.1f}% "
              f"(n {a['n']}, parsed {a['parsed']})")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
