"""The shape of the real benchmarks for throughput measurements: how many queries each video has, and how long it is.

`benchmarks/query_shapes.json` holds, for Charades-STA test and ActivityNet Captions val_2, the joint histogram of
(video duration bin, queries per video) -> number of videos, computed from the official annotations by tempbench's
importers (no annotation text is stored). `scenario(task, n_videos)` draws a fixed, deterministic subset of videos
that follows the table: videos sorted by (queries per video, duration), then taken at evenly spaced quantiles, so the
subset keeps the query-per-video distribution and, within each count, the durations.

    python benchmarks/query_shapes.py --write      # recompute the table from the imported splits (TEMPBENCH_HOME)
    python benchmarks/query_shapes.py --show charades 48
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

TABLE = Path(__file__).with_name("query_shapes.json")
SPLITS = {"charades": ("test", 2.0), "anet": ("val_2", 10.0)}  # task -> (split, duration bin in seconds)


def histogram(records: list[dict], bin_seconds: float) -> dict:
    """{"videos", "queries", "bin_seconds", "rows": [[bin_start, queries_per_video, videos], ...]} (sorted)."""
    per_video = Counter(r["vid"] for r in records)
    duration = {r["vid"]: float(r["duration"]) for r in records}
    joint = Counter((int(duration[v] // bin_seconds) * bin_seconds, n) for v, n in per_video.items())
    return {"videos": len(per_video), "queries": len(records), "bin_seconds": bin_seconds,
            "rows": [[b, n, c] for (b, n), c in sorted(joint.items())]}


def load_table(path: Path = TABLE) -> dict:
    return json.loads(path.read_text())


def scenario(task: str, n_videos: int, table: dict | None = None) -> list[tuple[float, int]]:
    """`n_videos` (duration seconds, queries) pairs that follow the task's table (module docstring); each duration is
    its bin's middle."""
    t = (table or load_table())[task]
    videos = sorted((n, b + t["bin_seconds"] / 2) for b, n, c in t["rows"] for _ in range(c))
    total = len(videos)
    picks = [videos[min(total - 1, int((i + 0.5) * total / n_videos))] for i in range(n_videos)]
    return [(round(d, 3), n) for n, d in picks]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="recompute the table from the imported annotations")
    ap.add_argument("--show", nargs=2, metavar=("TASK", "N"), help="print a scenario of N videos")
    args = ap.parse_args(argv)
    if args.write:
        from tempbench.annotations import load_split

        table = {}
        for task, (split, width) in SPLITS.items():
            data = load_split(task, split)
            table[task] = {"split": split, **histogram(data.records, width)}
        TABLE.write_text(json.dumps(table, indent=None, separators=(",", ":")) + "\n")
        print(f"wrote {TABLE}")
    if args.show:
        task, n = args.show[0], int(args.show[1])
        s = scenario(task, n)
        print(json.dumps({"videos": len(s), "queries": sum(q for _, q in s),
                          "mean_duration": sum(d for d, _ in s) / len(s), "shape": s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
