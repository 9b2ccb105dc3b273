"""Measure one TempSamp-R1 training step of a Qwen2.5-VL-7B-architecture model (random bf16 weights) on one GPU.

Step = rollout (G-1 sampled completions of a fixed length, video encoded once) + GT row + reference log-probs
(beta > 0) + policy forward/backward (vision tower included) + optimizer step. Video: a Charades-length clip
(default 30 s, 480x360 source) sampled at 2 fps under the paper's pixel budget (3584*28*28 per video), i.e. the
exact grid `tempbench.models.qwen.processor` gives (60 frames -> grid 30x18x24 -> 3240 LLM tokens). Random weights rarely
emit EOS, so every completion has exactly --new-tokens tokens (min_new_tokens = max_new_tokens).

Modes: `lora` (bf16 base frozen, fp32 LoRA r=64 on the LLM's linear layers, reference = adapters off), `full`
(all weights, bf16 params; optimizer adamw / adamw_8bit / paged_adamw_8bit; reference = a frozen bf16 copy when
beta > 0). Gradient checkpointing on by default.

Usage (GPU machine, repository root, after `pip install --no-deps -e .`):
    python benchmarks/train_step_gpu.py --mode lora --out $OUT/lora.json
    python benchmarks/train_step_gpu.py --mode full --beta 0 --optim adamw_8bit --out $OUT/full.json
Writes a JSON record (peak memory, per-phase times, tokens/s, settings, versions) and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path


def build(args):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from tempbench.models.qwen.tiny import qwen2_5_vl_7b_config

    cfg = qwen2_5_vl_7b_config()
    cfg._attn_implementation = args.attn
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16)
    init_s = time.perf_counter() - t0
    model.generation_config.eos_token_id = [151645, 151643]
    model.generation_config.pad_token_id = 151643
    return model, init_s


def video_inputs(args):
    import torch

    from tempbench.models.qwen.processor import target_size
    from tempbench.train.rollout import VideoInputs
    from tempbench.video import VideoSettings, smart_nframes

    s = VideoSettings()
    src_fps = 24.0
    n = smart_nframes(int(args.video_seconds * src_fps), src_fps, s.fps, s.min_frames, s.max_frames, s.frame_factor)
    h, w = target_size(360, 480, n, s)
    grid = torch.tensor([[n // 2, h // 14, w // 14]])
    patches = int(grid.prod())
    pix = torch.randn(patches, 3 * 2 * 14 * 14, dtype=torch.float32)
    spg = torch.tensor([2.0 / (n / args.video_seconds)])
    return VideoInputs(pix, grid, spg), {"frames": n, "size": [h, w], "grid": grid[0].tolist(),
                                         "llm_video_tokens": patches // 4}


def prompt_ids(n_video_tokens: int, text_tokens: int = 160) -> list[int]:
    # <|im_start|>system ... user: <|vision_start|> <|video_pad|>*N <|vision_end|> prompt text <|im_end|> assistant
    text = list(range(1000, 1000 + text_tokens))
    return [151644] + text[:20] + [151645, 151644] + [151652] + [151656] * n_video_tokens + [151653] + \
        text[20:] + [151645, 151644, 77091, 198]


def run(args) -> dict:
    import torch

    from tempbench.train.advantages import AdvantageSettings, group_advantages
    from tempbench.train.loss import LossSettings, VideoPolicy, policy_logprobs, policy_loss
    from tempbench.train.rollout import SamplingSettings, collate_rows, sample_completions

    rec: dict = {"args": vars(args), "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "python": platform.python_version()}
    import transformers

    rec["transformers"] = transformers.__version__
    model, rec["init_s"] = build(args)
    if args.grad_ckpt:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    ref = None
    if args.mode == "lora":
        from peft import LoraConfig, get_peft_model

        targets = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj"
        model = get_peft_model(model, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.05,
                                                 target_modules=rf"^(?!.*visual).*\.({targets})$"))
    elif args.beta > 0:
        import copy

        ref = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    rec["trainable_params"] = sum(p.numel() for p in params)
    if args.optim == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-6)
    else:
        import bitsandbytes as bnb

        opt = (bnb.optim.AdamW8bit if args.optim == "adamw_8bit" else bnb.optim.PagedAdamW8bit)(params, lr=1e-6)
    policy = VideoPolicy(model)
    ref_policy = VideoPolicy(ref) if ref is not None else None
    video, rec["video"] = video_inputs(args)
    ids = prompt_ids(rec["video"]["llm_video_tokens"])
    rec["prompt_tokens"] = len(ids)
    settings = SamplingSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    eos = [151645, 151643]
    rec["mem_after_init_gib"] = torch.cuda.memory_allocated() / 2**30
    steps = []
    for step in range(args.steps):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        comps = sample_completions(model, ids, video, args.group - 1, settings, eos, 151643)
        torch.cuda.synchronize()
        t_gen = time.perf_counter() - t0
        gt = list(range(2000, 2000 + 16)) + [151645]
        batch = collate_rows([ids] * args.group, comps + [gt], 151643, [0] * args.group,
                             [False] * (args.group - 1) + [True], [video])
        adv = torch.tensor(group_advantages([0.3, 0.6, 0.1, 1.0][: args.group - 1] + [1.0] if args.group <= 4
                                            else list(torch.rand(args.group - 1).tolist()) + [1.0],
                                            AdvantageSettings("shaping")), dtype=torch.float32)
        t1 = time.perf_counter()
        ref_lp = None
        if args.beta > 0:
            with torch.no_grad():
                if ref_policy is not None:
                    ref_lp = policy_logprobs(ref_policy, batch, "cuda")
                else:
                    with model.disable_adapter():
                        ref_lp = policy_logprobs(policy, batch, "cuda")
        torch.cuda.synchronize()
        t_ref = time.perf_counter() - t1
        t2 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logp = policy_logprobs(policy, batch, "cuda")
            loss, st = policy_loss(logp, adv.cuda(), batch.completion_mask.cuda(), ref_logp=ref_lp,
                                   settings=LossSettings(beta=args.beta))
        loss.backward()
        torch.cuda.synchronize()
        t_fb = time.perf_counter() - t2
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t_opt = time.perf_counter() - t3
        total = time.perf_counter() - t0
        n_comp = int(batch.completion_mask.sum())
        steps.append({"step": step, "gen_s": t_gen, "ref_s": t_ref, "fwd_bwd_s": t_fb, "optim_s": t_opt,
                      "total_s": total, "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
                      "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
                      "gen_tokens": sum(len(c) for c in comps), "completion_tokens": n_comp,
                      "train_tokens": int(batch.attention_mask.sum()),
                      "gen_tokens_per_s": sum(len(c) for c in comps) / t_gen, "loss": float(loss.detach())})
        print(json.dumps(steps[-1]), flush=True)
    rec["steps"] = steps
    rec["measured"] = steps[-1]  # the first step includes warm-up
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("lora", "full"), default="lora")
    ap.add_argument("--optim", choices=("adamw", "adamw_8bit", "paged_adamw_8bit"), default="adamw")
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--video-seconds", type=float, default=30.0)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--no-grad-ckpt", dest="grad_ckpt", action="store_false")
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    try:
        rec = run(args)
        rc = 0
    except Exception as e:  # OOM and friends: record what happened
        import torch

        rec = {"args": vars(args), "error": f"{type(e).__name__}: {e}"[:2000], "traceback": traceback.format_exc()[-4000:],
               "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}
        rc = 1
    text = json.dumps(rec, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
