"""GPU throughput of `tempbench run` against a per-sample loop, on a Qwen2.5-VL-7B- or Qwen3-VL-8B-architecture model.

Random bf16 weights built from the public Qwen2.5-VL-7B-Instruct (`--family qwen2.5-vl`, default) or
Qwen3-VL-8B-Instruct (`--family qwen3-vl`) config values (no download; the work per token does not depend on weight
values), 64 Charades-length synthetic videos (30 s), 2 fps sampling with the TempSamp-R1 pixel budget (the same
videos and budget for both families: Qwen3-VL's 16-pixel patches and 32-pixel merge factor give it other token
counts), a fixed 32 new tokens. Both paths run in the same process on the same model:

- per-sample loop: for each query decode the video, preprocess, `model.generate` with batch 1 (what the published
  evaluation scripts do);
- `tempbench run`: the runner (prefetching decode + preprocessing workers, batched left-padded generation).

Also reports the share of the FLOP-bound limit reached: prefill FLOPs of the vision tower and the language model
plus the decode FLOPs (2 x parameters per generated token), divided by time and the GPU's dense bf16 peak.

Query shapes like Charades-STA's and ActivityNet's (several queries per video, short and CoT answers):
`benchmarks/bench_shapes_gpu.py`, which reuses this script's model builder and per-sample loop.

    python benchmarks/bench_run_gpu.py --out docs/bench_run_gpu.json [--videos 64] [--batch-size 16]
    python benchmarks/bench_run_gpu.py --family qwen3-vl --out $OUT/bench_run_gpu_qwen3_vl.json
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


def random_7b_model(tiny_cache: Path):
    """(model, tiny folder): the Qwen2.5-VL-7B-architecture model on the GPU with public config values and random
    bf16 weights (seed 0), the special-token ids of the tiny local tokenizer in its config (the 152,064-row embedding
    is kept). `build_random_7b` saves it; `profile_decode_gpu.py` uses it in memory."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tempbench.models.qwen.tiny import qwen2_5_vl_7b_config, tiny_model_dir

    tiny = tiny_model_dir(cache_dir=tiny_cache)
    tiny_cfg = json.loads((tiny / "config.json").read_text())
    cfg = qwen2_5_vl_7b_config()
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(cfg, key, tiny_cfg[key])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    return model, tiny


def build_random_7b(out_dir: Path) -> Path:
    """A Qwen2.5-VL-7B-architecture folder: public config values, random bf16 weights, the tiny local tokenizer
    (its special-token ids are written into the config, the 152,064-row embedding is kept)."""
    import torch

    model, tiny = random_7b_model(out_dir.parent / "tiny")
    tiny_cfg = json.loads((tiny / "config.json").read_text())
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges")):
            shutil.copy(f, out_dir / f.name)
    gen = {"eos_token_id": tiny_cfg.get("eos_token_id"), "pad_token_id": tiny_cfg.get("pad_token_id")}
    (out_dir / "generation_config.json").write_text(json.dumps({k: v for k, v in gen.items() if v is not None}))
    del model
    torch.cuda.empty_cache()
    return out_dir


def build_random_qwen3_vl_8b(out_dir: Path) -> Path:
    """A Qwen3-VL-8B-architecture folder: public config values, random bf16 weights, the tiny local Qwen3 tokenizer
    (its special-token ids are written into the config, the 151,936-row embedding is kept)."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    from tempbench.models.qwen.tiny3 import qwen3_vl_8b_config, tiny3_model_dir

    tiny = tiny3_model_dir("qwen3_vl", cache_dir=out_dir.parent / "tiny")
    tiny_cfg = json.loads((tiny / "config.json").read_text())
    cfg = qwen3_vl_8b_config()
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        setattr(cfg, key, tiny_cfg[key])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3VLForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for f in tiny.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges", "preprocessor",
                              "video_preprocessor")):
            shutil.copy(f, out_dir / f.name)
    gen = json.loads((tiny / "generation_config.json").read_text())
    (out_dir / "generation_config.json").write_text(json.dumps(
        {k: gen[k] for k in ("eos_token_id", "pad_token_id") if k in gen}))
    del model
    torch.cuda.empty_cache()
    return out_dir


FAMILIES = {  # family -> (model folder name, builder, LM layers, attention width) for the FLOP estimate
    "qwen2.5-vl": ("qwen2_5_vl_7b_random", build_random_7b, 28, 3584),
    "qwen3-vl": ("qwen3_vl_8b_random", build_random_qwen3_vl_8b, 36, 4096),
}


def _chunk(args):
    from tempbench.synthetic import generate_synthetic

    out, n, seed = args
    return generate_synthetic(out, n_videos=n, seed=seed, duration_range=(30, 30), size=(480, 360), fps=24)["records"]


def make_videos(videos: Path, n: int, workers: int) -> None:
    """n synthetic 30-s 480x360 24-fps videos, generated in parallel chunks, with one annotations.jsonl."""
    from concurrent.futures import ProcessPoolExecutor

    chunks = [(videos / f"part{c}", len(range(c, n, workers)), c) for c in range(min(workers, n))]
    with ProcessPoolExecutor(max_workers=len(chunks)) as pool:
        parts = list(pool.map(_chunk, chunks))
    records = []
    for (folder, _, _), recs in zip(chunks, parts):
        for r in recs:
            (videos / f"{r['vid']}.mp4").symlink_to(folder / f"{r['vid']}.mp4")
            records.append({**r, "qid": len(records)})
    (videos / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def count_params(model) -> tuple[int, int]:
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in n or n.startswith("visual."))
    total = sum(p.numel() for p in model.parameters())
    return vision, total - vision


def per_sample_loop(adapter, records: list[dict], videos: Path, vs, tokens: dict,
                    prompt: str = "tempsamp-r1-plain") -> tuple[float, float | None]:
    """For each query: decode, preprocess, generate with batch 1 (what published evaluation scripts do). Adds each
    query's vision patches and prompt tokens to `tokens` (and appends them to `tokens["per_query"]` when that list is
    there); returns (seconds, peak GPU GiB or None)."""
    import torch

    from tempbench.models.base import ModelInput
    from tempbench.prompts import render
    from tempbench.video import decode_video

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for r in records:
        clip = decode_video(videos / f"{r['vid']}.mp4", vs)
        item = ModelInput(clip, render(prompt, query=r["query"]), r["qid"])
        inputs = adapter.build_inputs([item])
        tokens["vision_patches"] += int(inputs["video_grid_thw"].prod())
        tokens["prompt_tokens"] += int(inputs["input_ids"].shape[1])
        if "per_query" in tokens:  # (patches, prompt tokens) of each query, for exact FLOP counts
            tokens["per_query"].append((int(inputs["video_grid_thw"].prod()), int(inputs["input_ids"].shape[1])))
        inputs = {k: v.to(adapter.device) for k, v in inputs.items()}
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(adapter.dtype)
        with torch.inference_mode():
            adapter.model.generate(**inputs, generation_config=adapter.generation.transformers_config(adapter.eos_token_id, adapter.pad_token_id))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return seconds, (torch.cuda.max_memory_allocated() / 2**30 if cuda else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tb-bench")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test of this script with the tiny model")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="qwen2.5-vl")
    ap.add_argument("--no-stock-loop", action="store_true",
                    help="skip the per-sample loop with transformers' stock vision attention (saves ~2 min)")
    args = ap.parse_args(argv)

    import torch

    from tempbench.models.base import GenerationSettings, ModelInput
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.prompts import render
    from tempbench.runner import run as tb_run
    from tempbench.video import VideoSettings, decode_video

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(work / "home")
    t0 = time.perf_counter()
    videos = work / "videos"
    if not (videos / "annotations.jsonl").exists():
        videos.mkdir(parents=True, exist_ok=True)
        make_videos(videos, args.videos, workers=max(1, (os.cpu_count() or 2) - 1))
    t_videos = time.perf_counter() - t0
    folder, builder, lm_layers, d_model = FAMILIES[args.family]
    qwen3 = args.family == "qwen3-vl"
    if args.tiny:
        from tempbench.models.qwen.tiny import tiny_model_dir
        from tempbench.models.qwen.tiny3 import tiny3_model_dir

        model_dir = tiny3_model_dir("qwen3_vl", cache_dir=work / "tiny") if qwen3 else \
            tiny_model_dir(cache_dir=work / "tiny")
        lm_layers, d_model = (3, 64) if qwen3 else (2, 64)
    else:
        model_dir = work / folder
        if not (model_dir / "config.json").exists():
            builder(model_dir)
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
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()

    from tempbench.models.qwen.vision_attention import (
        install_fast_vision_tower,
        uninstall_fast_vision_tower,
    )

    tokens = {"vision_patches": 0, "prompt_tokens": 0}
    t_loop_stock = mem_loop_stock = None
    if not args.no_stock_loop:
        uninstall_fast_vision_tower(adapter.model)  # transformers' stock vision attention, as published scripts
        t_loop_stock, mem_loop_stock = per_sample_loop(adapter, records, videos, vs, tokens)
        install_fast_vision_tower(adapter.model)
    tokens = {"vision_patches": 0, "prompt_tokens": 0}
    t_loop, mem_loop = per_sample_loop(adapter, records, videos, vs, tokens)
    print(f"per-sample loop: stock vision attention {t_loop_stock}s, grouped {t_loop:.1f}s", flush=True)

    # where the time of one batch goes: vision tower alone, prefill (1 new token), full generation
    from tempbench.models.qwen.processor import resize_clip
    from tempbench.models.qwen.processor3 import resize_clip3

    if qwen3:
        resize_clip = resize_clip3  # noqa: F811 - Qwen3-VL: 32-pixel factor, its own pipeline

    def stage_times(bs, stages=("vision", "prefill", "generate")):  # noqa: B023
        items = []
        for r in records[:bs]:
            c = resize_clip(decode_video(videos / f"{r['vid']}.mp4", vs), vs)
            items.append(ModelInput(adapter.prepare_video(c), render("tempsamp-r1-plain", query=r["query"]), r["qid"]))
        inputs = {k: v.to(adapter.device) for k, v in adapter.build_inputs(items).items()}
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(adapter.dtype)
        out = {}
        with torch.inference_mode():
            for name, fn in (
                ("vision", lambda: adapter.model.model.get_video_features(inputs["pixel_values_videos"],
                                                                          inputs["video_grid_thw"])),
                ("prefill", lambda: adapter.model.generate(**inputs, max_new_tokens=1, min_new_tokens=1,
                                                           do_sample=False)),
                ("generate", lambda: adapter.model.generate(**inputs, generation_config=adapter.generation.transformers_config(adapter.eos_token_id, adapter.pad_token_id))),
            ):
                if name not in stages:
                    continue
                try:
                    fn()
                    sync()
                    t = time.perf_counter()
                    fn()
                    sync()
                    out[name] = time.perf_counter() - t
                except Exception as exc:  # report, do not lose the whole benchmark
                    out[name] = f"{type(exc).__name__}: {exc}"[:200]
        return out

    breakdown = {bs: stage_times(bs) for bs in (1, args.batch_size)}
    uninstall_fast_vision_tower(adapter.model)
    breakdown["vision_stock_attention"] = {bs: stage_times(bs, ("vision",))["vision"] for bs in (1, args.batch_size)}
    install_fast_vision_tower(adapter.model)
    print("breakdown", breakdown, flush=True)
    adapter.close()
    adapter = None
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    # tempbench run (loads the model again, like a user would)
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = tb_run(str(model_dir), "synthetic", "test", out_dir=run_dir, batch_size=args.batch_size,
                     generation={"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens},
                     progress=False, score=True)
    t_run_total = time.perf_counter() - t0
    tp = {"seconds": summary.config.outcome.seconds, "queries_per_s": summary.config.outcome.queries_per_s}
    mem_run = torch.cuda.max_memory_allocated() / 2**30 if cuda else None

    n = len(records)
    q = n / tokens["prompt_tokens"] if tokens["prompt_tokens"] else 0
    # FLOPs per query: 2 x params x tokens (matmuls) for the vision tower over its patches and the LM over the
    # prompt and the generated tokens; attention's quadratic terms added for the LM prefill.
    patches = tokens["vision_patches"] / n
    prompt = tokens["prompt_tokens"] / n
    flops_vision = 2 * vision_params * patches
    flops_prefill = 2 * lm_params * prompt + 4 * lm_layers * d_model * prompt**2
    flops_decode = 2 * lm_params * args.new_tokens
    flops_query = flops_vision + flops_prefill + flops_decode
    gpu = torch.cuda.get_device_name(0) if cuda else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), 989.0) * 1e12
    out = {
        "family": args.family, "model_type": summary.config.model.model_type,
        "time_convention": summary.config.model.info.get("time_convention"),
        "gpu": gpu, "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "videos": n, "video_seconds": 30, "fps": vs.fps,
        "total_pixels": vs.total_pixels, "new_tokens": args.new_tokens, "batch_size": args.batch_size,
        "mean_vision_patches": patches, "mean_prompt_tokens": prompt,
        "params": {"vision": vision_params, "language": lm_params},
        "per_sample_loop_stock": {"seconds": t_loop_stock, "queries_per_s": n / t_loop_stock if t_loop_stock else None,
                                  "peak_gib": mem_loop_stock},
        "per_sample_loop": {"seconds": t_loop, "queries_per_s": n / t_loop, "peak_gib": mem_loop},
        "tempbench_run": {"seconds": tp["seconds"], "queries_per_s": tp["queries_per_s"],
                          "seconds_with_model_load_and_scoring": t_run_total, "peak_gib": mem_run},
        "speedup_vs_stock_loop": tp["queries_per_s"] / (n / t_loop_stock) if t_loop_stock else None,
        "speedup": tp["queries_per_s"] / (n / t_loop),
        "tflops_per_query": flops_query / 1e12,
        "flop_share": {"per_sample_loop_stock": flops_query * n / t_loop_stock / peak if t_loop_stock else None,
                       "per_sample_loop": flops_query * n / t_loop / peak,
                       "tempbench_run": flops_query * tp["queries_per_s"] / peak,
                       "prefill_only_tempbench_run": (flops_vision + flops_prefill) * tp["queries_per_s"] / peak},
        "peak_bf16_tflops": peak / 1e12, "setup_seconds": {"videos": t_videos, "model": t_model},
        "stage_seconds_per_batch": breakdown,
        "result_failure_rate": summary.result.failure_rate, "prompt_tokens_per_query_ratio": q,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
