"""Check tempbench's torch-only video processors against the stock ones, bit for bit.

Run on a machine with torchvision and transformers (the GPU machines), with PyAV and the qwen-vl-utils wheel:

    PYTHONPATH=.:/tmp/site python benchmarks/check_qwen_processor_gpu.py --out results.json [--part all]

Parts: `qwen2` (below), `qwen3` and `generic` (benchmarks/check_video_processors.py: Qwen3-VL / Qwen3.5 against
qwen-vl-utils + the stock processor and against transformers' own video pipeline, ids included; LLaVA-OneVision and
GLM-4.1V torch-only processors against the stock ones). `--dry-run` runs the plumbing on CPU without torchvision.

Part qwen2: for each case (frame size, frame count, content) it compares ``tempbench.models.qwen.processor.process_video`` with
  A. transformers' ``Qwen2VLVideoProcessor`` given the same per-frame pixel bounds (CPU, uint8 frames), and
  B. the qwen-vl-utils path: torchvision resize of the uint8 video to the size ``fetch_video`` computes (its
     formula is restated below), ``.float()``, then the stock processor (which then only normalises + patchifies),
and prints the max abs difference of ``pixel_values_videos`` (0.0 = bit-identical) and whether the grids agree.
A is compared with ``resize_mode="transformers"``, B with the default ``"qwen-vl-utils"``.
It also checks the float32 ``torch.linspace`` emulation and, with CUDA, the GPU resize paths.  Exit code 1 on
any mismatch.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time

import numpy as np


def frames_for(kind: str, t: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)
    # smooth content with edges: gradients + moving rectangles (closer to real video than noise)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), dtype=np.uint8)
    for k in range(t):
        base = 128 + 100 * np.sin(xx / (7 + k % 5) + yy / 13.0 + k / 3)
        img = np.stack([base, 255 - base, (base * 0.5 + 60)], -1)
        y0, x0 = (k * 7) % max(1, h // 2), (k * 11) % max(1, w // 2)
        img[y0:y0 + h // 4, x0:x0 + w // 4] = rng.integers(0, 256, size=3)
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def qwen_vl_utils_size(h: int, w: int, nframes: int, min_pixels: int, total_pixels: int,
                       video_max_pixels: int = 768 * 28 * 28, factor: int = 28) -> tuple[int, int]:
    """fetch_video's resize target, restated from qwen-vl-utils (vision_process.py), independent of tempbench."""
    max_pixels = max(min(video_max_pixels, total_pixels / nframes * 2), int(min_pixels * 1.05))
    h_bar, w_bar = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar, w_bar = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def check_qwen2(args) -> dict:
    """Part 1 (Qwen2-VL / Qwen2.5-VL): `process_video` against the stock processor and the qwen-vl-utils resize."""
    import torch
    import torchvision
    import transformers
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as tv1
    from transformers.models.qwen2_vl import video_processing_qwen2_vl as vpq

    from tempbench import video as tb_video
    from tempbench.models.qwen import processor as qv
    from tempbench.video import Clip, VideoSettings

    env = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "transformers": transformers.__version__, "python": platform.python_version(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    print(json.dumps(env))
    init_kwargs = getattr(vpq, "Qwen2VLVideoProcessorInitKwargs", None)
    has_cap = init_kwargs is not None and "cap_pixels_per_frame" in getattr(init_kwargs, "__annotations__", {})

    settings = VideoSettings()  # TempSamp-R1: 2 fps, 16*28*28 min, 3584*28*28 total; qwen-vl-utils resize
    settings_tf = VideoSettings(resize_mode="transformers")
    cases = [("smooth", 4, 96, 128), ("noise", 5, 96, 128), ("smooth", 16, 240, 320), ("noise", 31, 240, 320),
             ("smooth", 61, 360, 640), ("noise", 8, 360, 640), ("smooth", 64, 720, 1280),
             ("noise", 17, 480, 272), ("smooth", 256, 240, 426), ("smooth", 16, 1080, 1920),
             ("smooth", 1, 224, 336), ("noise", 2, 56, 56)]
    if args.quick:
        cases = cases[:5]
    results, ok = [], True
    for i, (kind, t, h, w) in enumerate(cases):
        frames = frames_for(kind, t, h, w, seed=i)
        fps = 2.0
        clip = Clip(frames=frames, timestamps=np.arange(t) / fps, fps=fps, duration=t / fps, source_fps=fps,
                    path=f"case{i}")
        t0 = time.perf_counter()
        ours_tf = qv.process_video(clip, settings_tf)  # resize as transformers' processor (torchvision v2, CPU)
        t_ours = time.perf_counter() - t0
        ours_qvu = qv.process_video(clip, settings)  # resize as qwen-vl-utils (torchvision v1)
        rh, rw = qv.target_size(h, w, t, settings)
        max_px = qv.frame_pixel_budget(t, settings.min_pixels, settings.max_pixels, settings.total_pixels)

        # A. stock processor, same per-frame bounds
        proc = vpq.Qwen2VLVideoProcessor(size={"shortest_edge": settings.min_pixels, "longest_edge": int(max_px)})
        call_kwargs = {"return_tensors": "pt", "do_sample_frames": False}
        if has_cap:
            call_kwargs["cap_pixels_per_frame"] = False
        t0 = time.perf_counter()
        stock = proc(videos=[frames], **call_kwargs)
        t_stock = time.perf_counter() - t0

        # B. qwen-vl-utils: torchvision resize of the uint8 TCHW video, .float(), then the stock processor
        qh, qw = qwen_vl_utils_size(h, w, t, settings.min_pixels, settings.total_pixels)
        video = torch.from_numpy(frames).permute(0, 3, 1, 2)
        video = tv1.resize(video, [qh, qw], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
        proc_b = vpq.Qwen2VLVideoProcessor(size={"shortest_edge": 4 * 28 * 28, "longest_edge": 16384 * 28 * 28})
        stock_b = proc_b(videos=[video], input_data_format="channels_first", **call_kwargs)

        row = {"case": i, "kind": kind, "frames": t, "src": [h, w], "ours_size": [rh, rw], "qvu_size": [qh, qw],
               "grid_ours": ours_tf["video_grid_thw"].tolist()[0],
               "grid_stock": stock["video_grid_thw"].tolist()[0], "grid_qvu": stock_b["video_grid_thw"].tolist()[0],
               "seconds_ours": round(t_ours, 4), "seconds_stock": round(t_stock, 4)}
        for name, mine, ref in (("stock", ours_tf, stock), ("qvu", ours_qvu, stock_b)):
            a, b = mine["pixel_values_videos"], ref["pixel_values_videos"]
            same_shape = tuple(a.shape) == tuple(b.shape)
            row[f"max_abs_diff_{name}"] = float((a - b).abs().max()) if same_shape else None
            row[f"identical_{name}"] = bool(same_shape and torch.equal(a, b))
            ok &= row[f"identical_{name}"] and row[f"grid_{name}"] == mine["video_grid_thw"].tolist()[0]
        # how far apart the two reference pipelines are (informational)
        a, b = ours_tf["pixel_values_videos"], ours_qvu["pixel_values_videos"]
        row["max_abs_diff_tf_vs_qvu"] = float((a - b).abs().max()) if a.shape == b.shape else None
        print(json.dumps(row))
        results.append(row)

    # float32 linspace emulation (qwen-vl-utils frame indices)
    bad = []
    for total in list(range(2, 600)) + [901, 1799, 5400, 54_000]:
        for n in {2, 4, 16, 31, 32, 100, 255, 256, 767, 768, total // 2, total}:
            if 2 <= n <= total:
                ref = torch.linspace(0, total - 1, n).round().long().numpy()
                if not np.array_equal(ref, tb_video.sample_frame_indices(total, n)):
                    bad.append([total, n])
    print(json.dumps({"linspace_index_mismatches": len(bad), "examples": bad[:5]}))
    ok &= not bad

    # GPU resize paths: torchvision v2 and v1 on a CUDA uint8 tensor (both: float32 -> interpolate -> clamp -> round)
    gpu = None
    if torch.cuda.is_available():
        from torchvision.transforms.v2 import functional as tv2

        frames = frames_for("noise", 8, 360, 640, seed=99)
        size = qv.target_size(360, 640, 8, settings)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous().cuda()
        ref2 = tv2.resize(x, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        ref1 = tv1.resize(x, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        gpu = {}
        for mode, ref in (("transformers", ref2), ("qwen-vl-utils", ref1)):
            mine = qv.resize_frames(frames, size, device="cuda", mode=mode)
            gpu[f"gpu_resize_identical_{mode}"] = bool(torch.equal(ref, mine))
            gpu[f"gpu_resize_max_abs_diff_{mode}"] = int((ref.int() - mine.int()).abs().max())
            ok &= gpu[f"gpu_resize_identical_{mode}"]
        # and the CPU qwen-vl-utils path equals the GPU one up to float kernel differences (informational)
        cpu = qv.resize_frames(frames, size, mode="qwen-vl-utils")
        gpu["cpu_vs_gpu_float_path_max_abs_diff"] = int((cpu.int() - ref1.cpu().int()).abs().max())
        print(json.dumps(gpu))

    summary = {"env": env, "cases": results, "linspace_mismatches": bad[:20], "gpu": gpu, "all_identical": bool(ok)}
    print(json.dumps({"qwen2_all_identical": bool(ok)}))
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="JSON file with every case")
    ap.add_argument("--quick", action="store_true", help="fewer, smaller cases")
    ap.add_argument("--part", choices=("all", "qwen2", "qwen3", "generic"), default="all")
    ap.add_argument("--work", default=None, help="scratch folder for videos and tiny models (default: a temp dir)")
    ap.add_argument("--dry-run", action="store_true",
                    help="CPU plumbing test without torchvision: the 'stock' side runs tempbench's torch-only "
                         "kernels (identity is then by construction; only the GPU run proves it)")
    args = ap.parse_args()
    import tempfile

    from check_video_processors import check_generic, check_qwen3  # noqa: E402 (benchmarks/ is on sys.path)

    work = args.work or tempfile.mkdtemp(prefix="tb-proc-check-")
    summary, ok = {"dry_run": bool(args.dry_run)}, True
    if args.part in ("all", "qwen2") and not args.dry_run:
        summary["qwen2"] = check_qwen2(args)
        ok &= summary["qwen2"]["all_identical"]
    for name, fn in (("qwen3", check_qwen3), ("generic", check_generic)):
        if args.part in ("all", name):
            summary[name] = fn(args, work)
            ok &= summary[name]["all_identical"]
            if args.out:  # written after each part: a later failure keeps what was measured
                with open(args.out, "w") as f:
                    json.dump(summary, f, indent=1, default=str)
    summary["all_identical"] = bool(ok)
    print(json.dumps({"all_identical": bool(ok)}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1, default=str)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
    sys.exit(main())
