"""Throughput of the transformers adapter on a Qwen2.5-VL-7B-sized model with random weights.

    python -m tempbench.models.speed --batch-sizes 1,4,8 --frames 60 --new-tokens 32

Builds `qwen2_5_vl_7b_config()` directly on the GPU in bf16 (no download: the work per token does not depend on
the weights' values), uses the tiny model's tokenizer (special-token ids remapped in the config), feeds random
360x480 clips sampled at 2 fps under the TempSamp-R1 pixel budget (resized beforehand, as the runner's
prefetch does, so the timing is the model's), and prints one JSON line per batch size.
Random weights rarely emit EOS, so every query generates `--new-tokens` tokens.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch
    import transformers
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from tempbench.models.base import GenerationSettings, ModelInput
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.models.qwen.processor import resize_clip
    from tempbench.models.qwen.tiny import qwen2_5_vl_7b_config, tiny_model_dir
    from tempbench.prompts import render
    from tempbench.video import Clip, VideoSettings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", default="1,4,8")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--rope-index", default="reference")
    args = ap.parse_args(argv)

    tok = AutoTokenizer.from_pretrained(tiny_model_dir(0))
    cfg = qwen2_5_vl_7b_config()
    for key, token in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        setattr(cfg, key, tok.convert_tokens_to_ids(token))
    t0 = time.time()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            net = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    print(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__,
                      "gpu": torch.cuda.get_device_name(), "init_s": round(time.time() - t0, 1),
                      "params": sum(p.numel() for p in net.parameters()),
                      "attn": net.config._attn_implementation}), flush=True)
    rng = np.random.default_rng(0)
    fps = 2.0
    settings = VideoSettings()

    def clip(i: int) -> Clip:
        frames = rng.integers(0, 256, (args.frames, 360, 480, 3), dtype=np.uint8)
        c = Clip(frames, np.arange(args.frames) / fps, fps, args.frames / fps, 30.0, f"random-{i}")
        return resize_clip(c, settings)  # the runner resizes while prefetching; time the model only

    gen = GenerationSettings(max_new_tokens=args.new_tokens)
    adapter = HFQwenVL.from_loaded(net, tok, name="qwen2.5-vl-7b-random", generation=gen,
                                   video_settings=settings, rope_index=args.rope_index)
    prompt = render("tempsamp-r1-plain", query="person opens the door")
    for b in (int(x) for x in args.batch_sizes.split(",")):
        batch = [ModelInput(clip(i), prompt, i) for i in range(b)]
        inputs = adapter.build_inputs(batch)
        adapter.generate(batch[:1])  # warm-up
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.time()
        out = adapter.generate(batch)
        torch.cuda.synchronize()
        dt = time.time() - t
        print(json.dumps({"batch": b, "prompt_tokens": int(inputs["input_ids"].shape[1]),
                          "grid_thw": inputs["video_grid_thw"][0].tolist(), "new_tokens": args.new_tokens,
                          "s_per_batch": round(dt, 3), "s_per_query": round(dt / b, 3),
                          "queries_per_s": round(b / dt, 3), "answers": len(out),
                          "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 1e9, 1)}), flush=True)


if __name__ == "__main__":
    main()
