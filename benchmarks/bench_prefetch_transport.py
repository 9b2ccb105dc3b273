"""What it costs to bring a prepared video back from a prefetch worker process: torch tensors against numpy arrays.

`tempbench.video.Prefetcher(kind="process")` returns each worker's result through a pipe. A torch tensor in the result
travels as a shared-memory handle (torch's reductions for multiprocessing); a numpy array as one pickled buffer.
Measured here (docs/results/prefetch_transport_cpu.json): the same rate either way, so `tempbench.runner.VideoLoader`
keeps sending tensors. Each worker here
returns a copy of one prepared video of `--patches` rows of 1,176 float32 (a 24-frame 128x96 video at the
TempSamp-R1 settings is 960 rows, 4.5 MB), so the rate measured is the transport's alone; both payloads run side by
side in this one process, alternating, `--rounds` times.

    python benchmarks/bench_prefetch_transport.py --out docs/results/prefetch_transport_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


class PreparedCopy:
    """A worker function: a fresh copy of one prepared video's inputs, as tensors or numpy arrays."""

    def __init__(self, payload: str, patches: int):
        self.payload, self.patches = payload, patches
        self.video = None

    def __call__(self, _item):
        import torch

        if self.video is None:
            g = torch.Generator().manual_seed(0)
            self.video = {"pixel_values_videos": torch.randn(self.patches, 1176, generator=g),
                          "video_grid_thw": torch.tensor([[self.patches // 80, 8, 10]]),
                          "second_per_grid_ts": [1.0]}
        out = {k: v.clone() if hasattr(v, "clone") else v for k, v in self.video.items()}
        if self.payload == "numpy":
            return {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in out.items()}
        return out


def rate(payload: str, workers: int, items: int, patches: int) -> float:
    from tempbench.video import Prefetcher

    with Prefetcher(range(items + 1), fn=PreparedCopy(payload, patches), workers=workers, kind="process",
                    ahead=4 * workers) as pool:
        it = iter(pool)
        first = next(it)  # the pool's start-up
        assert first.error is None, first.error
        t0 = time.perf_counter()
        for got in it:
            assert got.error is None, got.error
        return items / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--patches", type=int, default=960)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",")]
    runs: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for w in counts:
            for payload in ("tensor", "numpy"):
                runs.setdefault(f"{payload}/{w}", []).append(rate(payload, w, args.items, args.patches))
    rows = []
    for w in counts:
        t, n = statistics.median(runs[f"tensor/{w}"]), statistics.median(runs[f"numpy/{w}"])
        rows.append({"workers": w, "tensor_items_per_s": t, "numpy_items_per_s": n, "numpy_over_tensor": n / t,
                     "rounds": {"tensor": runs[f"tensor/{w}"], "numpy": runs[f"numpy/{w}"]}})
        print(f"{w} worker(s): tensors {t:.0f} items/s, numpy {n:.0f} items/s ({n / t:.2f}x)", flush=True)
    res = {"produced_by": "benchmarks/bench_prefetch_transport.py", "command": " ".join(sys.argv[1:] if argv is None
                                                                                       else argv),
           "cpu_count": os.cpu_count(), "item_mb": args.patches * 1176 * 4 / 1e6, "items": args.items,
           "median_of_rounds": args.rounds, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
