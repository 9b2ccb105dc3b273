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


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def analyse(run: Path) -> dict:
    from tempbench.parsing import parse_span
    from tempbench.results import RunConfig
    from tempbench.synthetic import COLOURS, QUERY_MODES, draw_scene
    from tempbench.tasks import synthetic

    config = RunConfig.read(run / "run.json")
    split = config.split
    seed = synthetic.TASKS["synthetic-hard"]["splits"][split]["seed"]
    settings = synthetic.settings("synthetic-hard")
    rows = [json.loads(x) for x in (run / "predictions.jsonl").read_text().splitlines() if x.strip()]
    per: dict[str, list[dict]] = {}
    for r in rows:
        i = int(r["qid"])
        scene, _ = draw_scene(settings, seed, i)
        mode = QUERY_MODES[(i // len(COLOURS)) % len(QUERY_MODES)]
        span = parse_span(r.get("output") or "").span
        objects = [(o.start / scene.fps, o.end / scene.fps) for o in scene.objects]
        in_time = sorted(range(len(objects)), key=lambda j: objects[j][0])
        row = {"n_objects": len(objects), "target_place": in_time.index(scene.target)}
        if span is not None:
            ious = [iou(span, o) for o in objects]
            pick = max(range(len(objects)), key=lambda j: ious[j])
            row.update(target_iou=ious[scene.target], picked=pick == scene.target, picked_iou=ious[pick],
                       picked_place=in_time.index(pick))
        per.setdefault(mode, []).append(row)
        per.setdefault("all", []).append(row)
    out = {"run": str(run), "model": config.model.info.get("name") or config.model.id,
           "weights": config.model.weights, "split": split, "by_query": {}}
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
