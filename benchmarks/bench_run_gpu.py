"""GPU throughput of `tempbench run` against a per-sample loop, on a Qwen2.5-VL-7B-architecture model.

Random bf16 weights built from the public Qwen2.5-VL-7B-Instruct config values (no download; the work per token
does not depend on weight values), 64 Charades-length synthetic videos (30 s), 2 fps sampling with the
TempSamp-R1 pixel budget, a fixed 32 new tokens. Both paths run in the same process on the same model:

- per-sample loop: for each query decode the video, preprocess, `model.generate` with batch 1 (what the published
  evaluation scripts do);
- `tempbench run`: the runner (prefetching decode + preprocessing workers, batched left-padded generation).

Also reports the share of the FLOP-bound limit reached: prefill FLOPs of the vision tower and the language model
plus the decode FLOPs (2 x parameters per generated token), divided by time and the GPU's dense bf16 peak.

    python benchmarks/bench_run_gpu.py --out docs/bench_run_gpu.json [--videos 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense, SXM


def build_random_7b(out_dir: Path) -> Path:
    """A Qwen2.5-VL-7B-architecture folder: public config values, random bf16 weights, the tiny local tokenizer
    (its special-token ids are written into the config, the 152,064-row embedding is kept)."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tempbench.models.tiny import qwen2_5_vl_7b_config, tiny_model_dir

    tiny = tiny_model_dir(cache_dir=out_dir.parent / "tiny")
    tiny_cfg = json.loads((tiny / "config.json").read_text())
    cfg = qwen2_5_vl_7b_config()
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(cfg, key, tiny_cfg[key])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges")):
            shutil.copy(f, out_dir / f.name)
    gen = {"eos_token_id": tiny_cfg.get("eos_token_id"), "pad_token_id": tiny_cfg.get("pad_token_id")}
    (out_dir / "generation_config.json").write_text(json.dumps({k: v for k, v in gen.items() if v is not None}))
    del model
    torch.cuda.empty_cache()
    return out_dir


def count_params(model) -> tuple[int, int]:
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in n or n.startswith("visual."))
    total = sum(p.numel() for p in model.parameters())
    return vision, total - vision


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tb-bench")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    from tempbench.models.base import GenerationSettings, ModelInput
    from tempbench.models.hf import HFQwenVL
    from tempbench.prompts import render
    from tempbench.runner import run as tb_run
    from tempbench.synthetic import generate_synthetic
    from tempbench.video import VideoSettings, decode_video

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(work / "home")
    t0 = time.perf_counter()
    videos = work / "videos"
    if not (videos / "annotations.jsonl").exists():
        generate_synthetic(videos, n_videos=args.videos, seed=0, duration_range=(30, 30), size=(480, 360), fps=24)
    t_videos = time.perf_counter() - t0
    model_dir = work / "qwen2_5_vl_7b_random"
    if not (model_dir / "config.json").exists():
        build_random_7b(model_dir)
    t_model = time.perf_counter() - t0 - t_videos
    print(f"videos {t_videos:.1f}s, model built {t_model:.1f}s", flush=True)

    # a task over these videos: reuse the synthetic task machinery with our folder as the split's data
    records = [json.loads(line) for line in (videos / "annotations.jsonl").read_text().splitlines()]
    synth = Path(os.environ["TEMPBENCH_HOME"]) / "synthetic" / "test"
    synth.parent.mkdir(parents=True, exist_ok=True)
    if not synth.exists():
        synth.symlink_to(videos, target_is_directory=True)

    vs = VideoSettings()
    gen = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    adapter = HFQwenVL(str(model_dir), generation=gen, video_settings=vs)
    vision_params, lm_params = count_params(adapter.model)

    # warm-up (kernels, allocator) on two queries, not timed
    clip = decode_video(videos / f"{records[0]['vid']}.mp4", vs)
    adapter.generate([ModelInput(clip, render("tempsamp-r1-plain", query=records[0]["query"]), 0)] * 2)
    torch.cuda.synchronize()

    # per-sample loop
    torch.cuda.reset_peak_memory_stats()
    tokens = {"vision_patches": 0, "prompt_tokens": 0}
    t0 = time.perf_counter()
    for r in records:
        clip = decode_video(videos / f"{r['vid']}.mp4", vs)
        item = ModelInput(clip, render("tempsamp-r1-plain", query=r["query"]), r["qid"])
        inputs = adapter.build_inputs([item])
        tokens["vision_patches"] += int(inputs["video_grid_thw"].prod())
        tokens["prompt_tokens"] += int(inputs["input_ids"].shape[1])
        inputs = {k: v.to(adapter.device) for k, v in inputs.items()}
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(adapter.dtype)
        with torch.inference_mode():
            adapter.model.generate(**inputs, generation_config=adapter._generation_config())
    torch.cuda.synchronize()
    t_loop = time.perf_counter() - t0
    mem_loop = torch.cuda.max_memory_allocated() / 2**30
    adapter.close()
    del adapter
    torch.cuda.empty_cache()

    # tempbench run (new process state for the model: loads it again, like a user would)
    torch.cuda.reset_peak_memory_stats()
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    result = tb_run(str(model_dir), "synthetic", "test", out_dir=run_dir, batch_size=args.batch_size,
                    generation={"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens},
                    progress=False, workers=min(12, os.cpu_count() or 2), score=True)
    t_run_total = time.perf_counter() - t0
    tp = result["run"]["throughput"]
    mem_run = torch.cuda.max_memory_allocated() / 2**30

    n = len(records)
    q = n / tokens["prompt_tokens"] if tokens["prompt_tokens"] else 0
    # FLOPs per query: 2 x params x tokens (matmuls) for the vision tower over its patches and the LM over the
    # prompt and the generated tokens; attention's quadratic terms added for the LM prefill.
    patches = tokens["vision_patches"] / n
    prompt = tokens["prompt_tokens"] / n
    lm_layers, d_model = 28, 3584
    flops_vision = 2 * vision_params * patches
    flops_prefill = 2 * lm_params * prompt + 4 * lm_layers * d_model * prompt**2
    flops_decode = 2 * lm_params * args.new_tokens
    flops_query = flops_vision + flops_prefill + flops_decode
    gpu = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), 989.0) * 1e12
    out = {
        "gpu": gpu, "torch": torch.__version__, "videos": n, "video_seconds": 30, "fps": vs.fps,
        "total_pixels": vs.total_pixels, "new_tokens": args.new_tokens, "batch_size": args.batch_size,
        "mean_vision_patches": patches, "mean_prompt_tokens": prompt,
        "params": {"vision": vision_params, "language": lm_params},
        "per_sample_loop": {"seconds": t_loop, "queries_per_s": n / t_loop, "peak_gib": mem_loop},
        "tempbench_run": {"seconds": tp["seconds"], "queries_per_s": tp["queries_per_s"],
                          "seconds_with_model_load_and_scoring": t_run_total, "peak_gib": mem_run},
        "speedup": tp["queries_per_s"] / (n / t_loop),
        "tflops_per_query": flops_query / 1e12,
        "flop_share": {"per_sample_loop": flops_query * n / t_loop / peak,
                       "tempbench_run": flops_query * tp["queries_per_s"] / peak,
                       "prefill_only_tempbench_run": (flops_vision + flops_prefill) * tp["queries_per_s"] / peak},
        "peak_bf16_tflops": peak / 1e12, "setup_seconds": {"videos": t_videos, "model": t_model},
        "result_failure_rate": result["failure_rate"], "prompt_tokens_per_query_ratio": q,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
