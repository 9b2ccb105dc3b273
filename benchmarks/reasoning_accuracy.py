"""Issue 14: where a model trained with `--think` goes wrong on the synthetic tasks: describing the video, or picking
the entry that the query names.

For each `tempbench run` folder given (a run of `synthetic` or `synthetic-hard` on one of its cards' splits, by a
model that writes `<think> {description} </think><answer> ... </answer>`), each answer's description is read with
`tempbench.synthetic.parse_description` and compared, entry by entry in temporal order, with the objects of the
scene the generator drew for that query (`draw_scene` with the split's seed: what the video shows):

- description: the number of entries is the number of objects; each entry's colour, shape and span (IoU with the
  object's window);
- marks (`--think objects-marked`): exactly one entry is marked yes, and it is the queried object;
- the pick: the answer's span is one of the description's spans; it is the entry whose words fit the query (the
  text-to-text step: the description's own words, right or wrong); it is the entry marked yes; it lands on the
  queried object (the object it overlaps most).

    python benchmarks/reasoning_accuracy.py runs/val-hard [more run folders] --out docs/results/reasoning.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hard_failure_modes import object_ious, run_rows


def analyse(run: Path) -> dict:
    from tempbench.parsing import parse_span
    from tempbench.synthetic import parse_description, query_names
    from tempbench.tasks import synthetic

    config, rows, missing = run_rows(run, tuple(synthetic.TASKS))
    n = len(rows)
    tally = dict.fromkeys(("described", "count_right", "entries", "colour_right", "shape_right", "marked",
                           "one_yes", "yes_on_target", "answered", "answer_is_an_entry", "answer_is_fitting_entry",
                           "answer_is_yes_entry", "answer_on_target", "a_fitting_entry_exists"), 0)
    span_iou = 0.0
    for scene, r in rows:
        order = sorted(range(len(scene.objects)), key=lambda j: scene.objects[j].start)  # object index by time
        target_place = order.index(scene.target)
        text = r.output or ""
        entries = parse_description(text.split("</think>")[0])
        tally["described"] += bool(entries)
        tally["count_right"] += len(entries) == len(order)
        for e, j in zip(entries, order):
            obj = scene.objects[j]
            tally["entries"] += 1
            tally["colour_right"] += e.colour == obj.colour
            tally["shape_right"] += e.shape == obj.shape
            span_iou += object_ious((e.start, e.end), scene)[j]
        yes = [k for k, e in enumerate(entries) if e.mark == "yes"]
        if any(e.mark is not None for e in entries):
            tally["marked"] += 1
            tally["one_yes"] += len(yes) == 1
            tally["yes_on_target"] += yes == [target_place]
        fitting = [k for k, e in enumerate(entries) if query_names(scene.query, e.colour, e.shape)]
        tally["a_fitting_entry_exists"] += bool(fitting)
        span = parse_span(text).span
        if span is None:
            continue
        tally["answered"] += 1
        same = [k for k, e in enumerate(entries) if abs(e.start - span[0]) < 5e-3 and abs(e.end - span[1]) < 5e-3]
        tally["answer_is_an_entry"] += bool(same)
        tally["answer_is_fitting_entry"] += bool(same) and same[0] in fitting
        tally["answer_is_yes_entry"] += bool(same) and same[0] in yes
        ious = object_ious(span, scene)
        tally["answer_on_target"] += max(range(len(ious)), key=lambda j: ious[j]) == scene.target
    pct = {k: 100 * v / max(1, n) for k, v in tally.items() if k not in ("entries", "colour_right", "shape_right")}
    per_entry = {"colour_right": 100 * tally["colour_right"] / max(1, tally["entries"]),
                 "shape_right": 100 * tally["shape_right"] / max(1, tally["entries"]),
                 "span_mIoU": 100 * span_iou / max(1, tally["entries"])}
    return {"run": str(run), "task": config.task, "split": config.split, "weights": config.model.weights, "n": n,
            "queries_without_a_row": missing, "pct_of_queries": pct, "pct_of_entries": per_entry, "counts": tally}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="tempbench run folders of synthetic or synthetic-hard")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from tempbench.errors import TempbenchError

    try:
        res = {"produced_by": "benchmarks/reasoning_accuracy.py", "runs": [analyse(r) for r in args.runs]}
    except (TempbenchError, OSError) as e:  # not a finished `tempbench run` of a synthetic task: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in res["runs"]:
        q, e = r["pct_of_queries"], r["pct_of_entries"]
        print(f"{r['run']} ({r['task']} {r['split']}, n {r['n']}): objects counted right {q['count_right']:.1f}%, "
              f"colour {e['colour_right']:.1f}%, shape {e['shape_right']:.1f}%, span mIoU {e['span_mIoU']:.1f}; "
              f"answer = an entry {q['answer_is_an_entry']:.1f}%, = the entry fitting the query "
              f"{q['answer_is_fitting_entry']:.1f}%, = the entry marked yes {q['answer_is_yes_entry']:.1f}% "
              f"(yes on the queried object {q['yes_on_target']:.1f}%); on the queried object "
              f"{q['answer_on_target']:.1f}%")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
