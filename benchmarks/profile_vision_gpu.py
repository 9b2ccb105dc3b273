"""Where the vision tower's time goes (issue 16): transformers' stock vision tower against tempbench's patches
(`tempbench.models.qwen.vision_attention`: grouped block attention, the patch embedding as one matmul, unaligned
MLPs computed zero-padded to a multiple of 64), on the
Qwen2.5-VL-7B architecture with random bf16 weights, over one batch of Charades-shaped videos.

The batch: `--videos` clips of random pixels, 480x360, sampled at 2 fps, of durations cycling through
`DURATIONS` (seconds, about Charades-STA test's spread), processed by the adapter's own video processor under the
TempSamp-R1 pixel budget (`VideoSettings()`), exactly as `tempbench run` would pass them to the tower. Variants,
each timed as the median of `--reps` forward passes of the whole batch after one warm-up, synchronised:

- `stock`: transformers' modules (a Python loop over blocks calling SDPA, the patch embedding as a `Conv3d`);
- `grouped_attention`: tempbench's block attention, transformers' `Conv3d` and MLPs;
- `fast`: all of tempbench's patches (what `tempbench run` uses).

Also: the patch embedding alone (`Conv3d` against the matmul), the FLOP share of each variant (the tower's matmuls,
`bench_shapes_gpu.flops_vision`, over seconds x the bf16 peak measured in this run), the largest difference of
the outputs from `stock`, and a torch.profiler table of one `fast` forward (kernel time by kind, top kernels).

    python benchmarks/profile_vision_gpu.py --out $OUT/profile_vision.json          # one H200, about a minute
    python benchmarks/profile_vision_gpu.py --tiny --out /tmp/profile_vision.json   # CPU smoke test, tiny model
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

DURATIONS = (31.0, 24.0, 35.0, 18.0, 42.0, 28.0, 30.0, 22.0, 33.0, 26.0, 38.0, 29.0, 20.0, 32.0)


def make_clip(duration: float, size: tuple[int, int], fps: float, seed: int):
    import numpy as np

    from tempbench.video import Clip

    src_fps = 24.0
    total = int(round(duration * src_fps))
    t = max(2, int(round(duration * fps)))
    idx = np.rint(np.linspace(0, total - 1, t)).astype(np.int64)
    rng = np.random.default_rng(seed)
    w, h = size
    return Clip(frames=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), timestamps=idx / src_fps,
                fps=t / total * src_fps, duration=total / src_fps, source_fps=src_fps, path=f"memory-{seed}",
                indices=idx, n_source_frames=total)


def time_forward(fn, reps: int, sync) -> dict:
    import torch

    with torch.inference_mode():
        out = fn()
        sync()
        seconds = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            sync()
            seconds.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "seconds": seconds}, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: the tiny float32 Qwen2.5-VL, 2 short clips")
    ap.add_argument("--videos", type=int, default=None, help="videos in the batch (14; tiny 2)")
    ap.add_argument("--reps", type=int, default=None, help="timed forward passes per variant (3; tiny 1)")
    args = ap.parse_args(argv)
    import torch
    from bench_shapes_gpu import ModelShape, flops_vision, measure_device
    from transformers import AutoTokenizer

    from tempbench.models.qwen import vision_attention
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.models.qwen.vision_attention import install_fast_vision_tower, uninstall_fast_vision_tower
    from tempbench.video import VideoSettings

    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        print("error: no CUDA device (use --tiny for the CPU smoke test)", file=sys.stderr)
        return 2
    n_videos = args.videos or (2 if args.tiny else 14)
    reps = args.reps or (1 if args.tiny else 3)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t_start = time.perf_counter()
    result: dict = {"schema": "tempbench.profile_vision/1", "complete": False, "tiny": bool(args.tiny),
                    "device": torch.cuda.get_device_name(0) if cuda else "cpu",
                    "versions": {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version()}}

    def write():
        result["seconds"] = time.perf_counter() - t_start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    with tempfile.TemporaryDirectory(prefix="profile-vision-") as tmp:
        if args.tiny:
            from transformers import Qwen2_5_VLForConditionalGeneration

            from tempbench.models.qwen.tiny import tiny_model_dir

            folder = tiny_model_dir(cache_dir=Path(tmp) / "tiny")
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32,
                                                                       attn_implementation="sdpa").eval()
            settings = VideoSettings(fps=2.0, total_pixels=256 * 28 * 28, max_pixels=64 * 28 * 28)
            durations, size = (3.0, 2.0), (96, 64)
        else:
            from bench_run_gpu import random_7b_model

            model, folder = random_7b_model(Path(tmp) / "tiny")
            model.eval()
            settings, durations, size = VideoSettings(), DURATIONS, (480, 360)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    device = measure_device(cuda)
    result["device_rates"] = device
    peak = device["peak_tflops_measured"] * 1e12
    adapter = HFQwenVL.from_loaded(model, tokenizer, video_settings=settings)
    videos = [adapter.prepare_video(make_clip(durations[i % len(durations)], size, 2.0, i)) for i in range(n_videos)]
    dtype = next(model.parameters()).dtype
    dev = next(model.parameters()).device
    pix = torch.cat([torch.as_tensor(v["pixel_values_videos"]) for v in videos], 0).to(dev, dtype)
    grid = torch.cat([torch.as_tensor(v["video_grid_thw"]).reshape(-1, 3).long() for v in videos], 0).to(dev)
    patches = int(grid.prod(1).sum())
    shape = ModelShape.of(model)
    flops = flops_vision(shape, patches)
    result["batch"] = {"videos": n_videos, "durations": [durations[i % len(durations)] for i in range(n_videos)],
                       "size": list(size), "grids": grid.tolist(), "patches": patches, "flops_matmul": flops}
    visual = model.model.visual
    embed = visual.patch_embed

    def forward():
        out = visual(pix, grid_thw=grid)
        return getattr(out, "pooler_output", out)

    variants: dict = {}
    outputs = {}
    for name in ("stock", "grouped_attention", "fast"):
        uninstall_fast_vision_tower(model)
        if name != "stock":
            install_fast_vision_tower(model)
        if name == "grouped_attention":  # transformers' Conv3d patch embedding and MLPs
            for module in visual.modules():
                if module is embed or vision_attention._is_unaligned_gated_mlp(module):
                    module.__dict__.pop("forward", None)
        timing, out = time_forward(forward, reps, sync)
        outputs[name] = out.float()
        timing["flop_share"] = flops / (timing["median_s"] * peak)
        variants[name] = timing
        print(f"{name:<18} {timing['median_s'] * 1e3:9.1f} ms  flop share {timing['flop_share']:.3f}", flush=True)
        result["variants"] = variants
        write()
    for name in ("grouped_attention", "fast"):
        variants[name]["max_abs_diff_vs_stock"] = float((outputs[name] - outputs["stock"]).abs().max())
    install_fast_vision_tower(model)

    # the patch embedding alone
    weight = embed.proj.weight
    with torch.inference_mode():
        conv_t, conv_out = time_forward(lambda: embed.proj(pix.view(-1, *weight.shape[1:])).view(-1, weight.shape[0]),
                                        reps * 3, sync)
        mm_t, mm_out = time_forward(lambda: embed(pix), reps * 3, sync)
    result["patch_embed"] = {"conv3d": conv_t, "matmul": mm_t, "patches": patches,
                             "max_abs_diff": float((conv_out.float() - mm_out.float()).abs().max())}
    print(f"patch embedding: conv3d {conv_t['median_s'] * 1e3:.1f} ms, matmul {mm_t['median_s'] * 1e3:.1f} ms",
          flush=True)
    write()

    # a profile of one `fast` forward
    from profile_decode_gpu import kernel_kind
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.inference_mode():
        with profile(activities=acts) as prof:
            forward()
            sync()
    rows = []
    for e in prof.key_averages():
        dev_self = float(getattr(e, "self_device_time_total", 0.0) or 0.0)
        if cuda and dev_self > 0 and not e.key.startswith(("aten::", "cuda")):
            rows.append({"name": e.key, "count": int(e.count), "self_device_ms": dev_self / 1e3})
    rows.sort(key=lambda r: -r["self_device_ms"])
    by_kind: dict[str, float] = {}
    for r in rows:
        by_kind[kernel_kind(r["name"])] = by_kind.get(kernel_kind(r["name"]), 0.0) + r["self_device_ms"]
    result["profile_fast"] = {"kernel_ms": sum(r["self_device_ms"] for r in rows),
                              "launches": sum(r["count"] for r in rows),
                              "by_kind_ms": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])), "top": rows[:20]}
    print(json.dumps({k: v for k, v in result["profile_fast"].items() if k != "top"}), flush=True)
    for r in rows[:12]:
        print(f"  {r['self_device_ms']:8.2f} ms x{r['count']:<5} {r['name'][:90]}", flush=True)
    result["complete"] = True
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
