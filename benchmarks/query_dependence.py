"""Issue 14: does a model read the query? Each `synthetic-hard` video of a split is asked once per object it shows,
each time with a query that names that object alone (`Scene.object_records`), plus one query naming nothing
("hello"). A model that reads the query gives each object its own answer; one that ignores it gives the same
answer to every query of a video.

Reports, over the first --videos videos of --split (default val: never heldout, which only judges): the share of
videos whose answers differ between queries, the share of queries answered on the object they name (the object
whose window the answer overlaps most), and how often the answer to "hello" equals the answer to a real query.

    python benchmarks/query_dependence.py tiny-synthetic --videos 32 --out docs/results/query_dependence.json
    python benchmarks/query_dependence.py OUT_FOLDER_OF_A_RUN/model-folder --videos 32
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NOTHING = "hello"


def summarise(videos: list[dict]) -> dict:
    """Pure: the shares above from per-video rows {"windows": [obj windows], "answers": [span or None per object],
    "nothing": span or None}; IoU as `tempbench.metrics.grounding` defines it."""
    from tempbench.metrics.grounding import iou_matrix

    n = len(videos)
    differ = sum(len({tuple(a) if a else None for a in v["answers"]}) > 1 for v in videos)
    asked = on = 0
    same_as_nothing = 0
    for v in videos:
        for j, span in enumerate(v["answers"]):
            asked += 1
            if span is not None:
                ious = iou_matrix([span], v["windows"])[0]
                on += int(ious.argmax()) == j
            same_as_nothing += span is not None and span == v["nothing"]  # two unparsed answers are not equal
    chance = 100 * n / max(1, asked)  # a video of k objects: k queries, each with a 1/k chance
    return {"videos": n, "queries": asked, "videos_with_different_answers_pct": 100 * differ / max(1, n),
            "answers_on_the_named_object_pct": 100 * on / max(1, asked), "random_pick_pct": chance,
            "answers_equal_to_the_answer_to_hello_pct": 100 * same_as_nothing / max(1, asked)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a zoo alias (tiny-synthetic) or a model folder")
    ap.add_argument("--split", default="val", choices=("val", "test", "train"))
    ap.add_argument("--videos", type=int, default=32)
    ap.add_argument("--prompt", default=None,
                    help="default: the zoo entry's prompt for tiny-synthetic (the one it was trained with)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from tempbench.annotations import ensure_synthetic
    from tempbench.errors import TempbenchError
    from tempbench.models import load_model, zoo
    from tempbench.models.base import ModelInput
    from tempbench.parsing import parse_span
    from tempbench.prompts import render
    from tempbench.synthetic import draw_scene
    from tempbench.tasks import synthetic
    from tempbench.video import VideoSettings, decode_video

    entry = zoo.get("tiny-synthetic")
    prompt = args.prompt or entry.prompt
    settings = synthetic.settings("synthetic-hard")
    seed = synthetic.TASKS["synthetic-hard"]["splits"][args.split]["seed"]
    try:
        video = VideoSettings(**entry.video)
        adapter = load_model(args.model, dtype="float32", video_settings=video)
        folder = ensure_synthetic(args.split, "synthetic-hard", first=args.videos)
    except TempbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for i in range(args.videos):
        scene, _ = draw_scene(settings, seed, i)
        clip = decode_video(folder / f"{scene.vid}.mp4", video)
        records = scene.object_records(0)
        queries = [r["query"] for r in records] + [NOTHING]
        outs = adapter.generate([ModelInput(clip, render(prompt, query=q, duration=records[0]["duration"]), k, {})
                                 for k, q in enumerate(queries)])
        spans = [parse_span(o).span for o in outs]
        rows.append({"vid": scene.vid, "queries": queries, "outputs": outs,
                     "windows": [r["windows"][0] for r in records],
                     "answers": [list(s) if s else None for s in spans[:-1]],
                     "nothing": list(spans[-1]) if spans[-1] else None})
    res = {"produced_by": "benchmarks/query_dependence.py", "model": args.model,
           "weights": adapter.identity().weights, "prompt": prompt, "split": args.split, **summarise(rows),
           "per_video": rows}
    print(f"{args.model}: answers differ between the queries of a video in {res['videos_with_different_answers_pct']:.1f}% "
          f"of {res['videos']} videos; on the named object {res['answers_on_the_named_object_pct']:.1f}% "
          f"(random pick {res['random_pick_pct']:.1f}%); equal to the answer to {NOTHING!r} "
          f"{res['answers_equal_to_the_answer_to_hello_pct']:.1f}%")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
