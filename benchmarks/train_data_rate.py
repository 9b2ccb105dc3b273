"""Issue 14: how fast the trainer's data path feeds SFT on the generated tasks, decoded files against rendered frames.

For each `--frames` (decode: the mp4 files, `tempbench.runner.VideoLoader`; render: frames rendered without a file,
`tempbench.runner.RenderedLoader` in worker processes, or with 0 workers by torch on the accelerator in the
trainer's process) and each `--workers` count, `Trainer.batches` (the loop `tempbench train` runs:
prefetch worker processes, each query's prompt and inputs built in the main process, the video tensors copied to
the accelerator) is run over `--videos` `synthetic-hard` train queries in batches of `--batch`, with no training
step, on the `tiny-synthetic` model. Reported: queries per second after the first batch (the pool's start-up is
given apart), and the per-video seconds measured inside the workers. Decoded files are generated first (not timed
in the rate).

    python benchmarks/train_data_rate.py --out $OUT/train_data_rate.json --frames render --workers 0,7,15  # one H200
    python benchmarks/train_data_rate.py --out /tmp/r.json --videos 64 --workers 1 --batch 8   # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def rate(frames: str, workers: int, records: list[dict], videos: Path, args) -> dict:
    import torch

    from tempbench.models import zoo
    from tempbench.train.config import load_config
    from tempbench.train.loop import Trainer

    cfg = load_config({"method": "sft", "task": "synthetic-hard", "model": zoo.resolve_local(zoo.get("tiny-synthetic")),
                       "videos": str(videos), "out": str(args.work / "unused"),
                       "model_opts": {"bf16": False, "gradient_checkpointing": False},
                       "data": {"workers": workers, "cache": False, "frames": frames}})
    trainer = Trainer(cfg)
    bs = args.batch
    steps = [(p, list(range(p * bs, (p + 1) * bs))) for p in range(len(records) // bs)]
    t0 = time.perf_counter()
    first = None
    n = 0
    for _pos, _idx, items in trainer.batches(records, steps, "grounding", False):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if first is None:
            first = time.perf_counter()
            continue
        n += len(items)
    end = time.perf_counter()
    out = {"frames": frames, "workers": workers, "queries": n, "first_batch_s": first - t0,
           "queries_per_s": n / (end - first) if end > first else None, "seconds": end - first}
    print(f"{frames:6s} workers {workers:2d}: {out['queries_per_s']:.1f} queries/s after the first batch "
          f"({out['first_batch_s']:.1f} s to the first)", flush=True)
    return out


def _render_many(job: tuple) -> tuple[float, float]:
    """Render videos start..start+n of `synthetic-hard`'s train seed in this process: (cpu seconds, wall seconds)."""
    from tempbench.tasks import synthetic
    from tempbench.video import VideoSettings

    start, n = job
    vs = VideoSettings()
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(start, start + n):
        synthetic.rendered_clip(f"synthhard_11_{i:04d}", vs)
    return time.process_time() - c0, time.perf_counter() - t0


def cpu_scaling(counts: list[int], per_process: int) -> list[dict]:
    """The same rendering in 1, 2, ... processes at once: videos per second in all, and CPU seconds per video (a
    host whose cores do not scale shows a flat total and a rising wall time per video)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    out = []
    for n in counts:
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_render_many, [(0, 2)] * n))  # start-up and imports
            t0 = time.perf_counter()
            parts = list(pool.map(_render_many, [(k * per_process, per_process) for k in range(n)]))
            wall = time.perf_counter() - t0
        row = {"processes": n, "videos": n * per_process, "videos_per_s": n * per_process / wall,
               "cpu_ms_per_video": 1e3 * sum(c for c, _ in parts) / (n * per_process),
               "wall_ms_per_video_in_a_process": 1e3 * sum(w for _, w in parts) / (n * per_process)}
        print(f"{n:2d} processes: {row['videos_per_s']:.0f} videos/s, {row['cpu_ms_per_video']:.1f} CPU ms and "
              f"{row['wall_ms_per_video_in_a_process']:.1f} wall ms per video", flush=True)
        out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tb-data-rate"))
    ap.add_argument("--videos", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", default=None, help="comma-separated worker counts (default: cores - 1, and half)")
    ap.add_argument("--frames", default="decode,render")
    ap.add_argument("--cpu-scaling", default=None,
                    help="only this: render in N processes at once for each comma-separated N (e.g. 1,4,8,15)")
    ap.add_argument("--per-process", type=int, default=60, help="videos each process renders (--cpu-scaling)")
    args = ap.parse_args(argv)
    if args.cpu_scaling:
        res = {"produced_by": "benchmarks/train_data_rate.py", "cpu_count": os.cpu_count(),
               "command": " ".join(sys.argv[1:] if argv is None else argv),
               "cpu_scaling": cpu_scaling([int(x) for x in args.cpu_scaling.split(",")], args.per_process)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
        return 0
    os.environ.setdefault("TEMPBENCH_HOME", str(args.work / "home"))
    import torch

    from tempbench.tasks import synthetic

    cores = os.cpu_count() or 2
    counts = ([int(x) for x in args.workers.split(",")] if args.workers
              else sorted({max(1, cores - 1), max(1, (cores - 1) // 2)}, reverse=True))
    frames = args.frames.split(",")
    videos = args.work / "videos"
    t0 = time.perf_counter()
    info = synthetic.generate(videos, "train", "synthetic-hard", n_videos=args.videos,
                              videos="decode" in frames, workers=max(counts))
    gen_s = time.perf_counter() - t0
    records = info["records"]
    res = {"produced_by": "benchmarks/train_data_rate.py", "command": " ".join(sys.argv[1:] if argv is None else argv),
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "cpu_count": cores,
           "videos": len(records), "batch": args.batch, "generate_files_s": gen_s, "rates": []}
    for fr in frames:
        for w in counts:
            res["rates"].append(rate(fr, w, records, videos, args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
