"""Several GPUs of one host (issue 7): data-parallel `tempbench run`, and TempSamp-R1 steps with DDP / DeepSpeed ZeRO-3.

Model: a Qwen2.5-VL-7B-architecture folder with random bf16 weights and the tiny local tokenizer
(`bench_run_gpu.build_random_7b`); videos: Charades-length synthetic clips (30 s, 480x360,
`bench_run_gpu.make_videos`), served as the `synthetic` task's test split through a private TEMPBENCH_HOME.
`--small` swaps in the tiny float32 model and short small videos: the same code paths on CPU (gloo), used by
tests/test_distributed_cpu.py.

Subcommands (each a step of benchmarks/multi_gpu.sh; under torchrun every rank runs the same command):

- `prepare --work W`: videos + model folder + the private task cache (idempotent).
- `infer --work W --run-dir DIR`: `tempbench.runner.run` over the videos with batch size `--batch-size` and exactly
  `--new-tokens` new tokens (greedy). Under `torchrun --nproc-per-node N` each rank runs every N-th query and rank 0
  merges (the runner's sharding). Besides the predictions, the generated token ids of every query are written to
  `DIR/tokens*.jsonl`: the random model's ids are mostly outside the tiny tokenizer's vocabulary, so the decoded
  text alone would compare mostly empty strings.
- `compare-infer --single DIR1 --multi DIR2 --out J`: agreement of the merged predictions with the single-process
  run (token ids and text, per query) and the queries/s ratio.
- `train --work W --out J`: TempSamp-R1 steps through `tempbench.train.loop.Trainer` (accelerate: plain, DDP under
  torchrun, or DeepSpeed ZeRO-3 with `--deepspeed zero3|zero3-offload`).
  1. check: `--check-steps` steps on a FIXED batch (the first R queries, R = `--ref-world`; under R processes each
     rank takes one; a single process takes all R in one micro-step). The sampled completions are replaced by fixed
     texts, so rewards, advantages, loss, gradients and updates are deterministic. Recorded per step: the loss and
     the GT rows' mean token log-prob averaged over ranks, and the global gradient norm (before clipping).
     With one update per batch the surrogate's value is -mean(A) at every step (ratio 1) and the KL term is 0 at the
     first step, so the log-prob and the gradient norm are the quantities that test the distributed forward/backward.
  2. timed: `--steps` real TempSamp-R1 steps (G-1 sampled completions + the GT row; one query per rank): step time,
     generation time, tokens, peak GPU memory per rank.
- `compare-train --ref J1 --dist J2 --out J`: the check values of a distributed run against the single-process run.

Modes: `--mode lora` (bf16 base, fp32 LoRA r64 on the LLM; reference = adapters off) or `--mode full` (all weights;
plain/DDP keeps fp32 masters, so on 141 GB GPUs full fine-tuning of 7B runs under ZeRO-3; the single-process
reference for `full` uses bf16 weights and only the first check step, which needs no optimizer state).

NCCL: NVLink multicast is switched off here (NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1,
NVSHMEM_DISABLE_NVLS=1) before torch is imported; benchmarks/multi_gpu.sh exports them as well.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _k, _v in (("NCCL_NVLS_ENABLE", "0"), ("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1"), ("NVSHMEM_DISABLE_NVLS", "1"),
               ("TOKENIZERS_PARALLELISM", "false")):
    os.environ[_k] = _v

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

# Completions that stand in for sampled ones in the check steps (rewards differ, so advantages are non-zero).
FIXED_COMPLETIONS = ("<answer> 1.00 to 9.00 </answer>", "<answer> 12.00 to 20.00 </answer>",
                     "<answer> 0.00 to 30.00 </answer>", "the red square appears", "<answer> 5.50 to 6.50 </answer>")
SMALL_VIDEO = {"total_pixels": 4 * 16 * 28 * 28, "min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28,
               "max_frames": 8, "min_frames": 2}


def _dist() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _log(msg: str) -> None:
    rank, world = _dist()
    print(f"[{time.strftime('%H:%M:%S')} rank {rank}/{world}] {msg}", flush=True)


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def paths(work: Path) -> dict:
    work = work.resolve()
    return {"work": work, "videos": work / "videos", "home": work / "home",
            "model": work / ("tiny" if (work / "SMALL").exists() else "qwen2_5_vl_7b_random"),
            "annotations": work / "videos" / "annotations.jsonl"}


# ---------------------------------------------------------------------------------------------------------- prepare


def prepare(args) -> dict:
    """Videos, model folder and the private TEMPBENCH_HOME whose synthetic/test split is these videos."""
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.small:
        (work / "SMALL").write_text("tiny model, small videos (CPU test)\n")
    p = paths(work)
    t0 = time.perf_counter()
    if not p["annotations"].exists():
        p["videos"].mkdir(parents=True, exist_ok=True)
        if args.small:
            from tempbench.synthetic import generate_synthetic

            recs = generate_synthetic(p["videos"], n_videos=args.videos, seed=7, duration_range=(4, 6),
                                      size=(64, 48), fps=4)["records"]
            assert len(recs) == args.videos
        else:
            from bench_run_gpu import make_videos

            make_videos(p["videos"], args.videos, workers=max(1, min(args.videos, (os.cpu_count() or 2) - 1)))
    t_videos = time.perf_counter() - t0
    if not (p["model"] / "config.json").exists():
        if args.small:
            from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl

            build_tiny_qwen2_5_vl(p["model"], seed=0)
        else:
            from bench_run_gpu import build_random_7b

            build_random_7b(p["model"])
    t_model = time.perf_counter() - t0 - t_videos
    synth = p["home"] / "synthetic" / "test"
    synth.parent.mkdir(parents=True, exist_ok=True)
    if not synth.exists():
        synth.symlink_to(p["videos"], target_is_directory=True)
    n = len(p["annotations"].read_text().splitlines())
    _log(f"prepared {n} videos ({t_videos:.1f} s) and {p['model'].name} ({t_model:.1f} s) in {work}")
    return {"videos": n, "videos_s": t_videos, "model_s": t_model}


# ---------------------------------------------------------------------------------------------------------- infer


def _record_token_ids(path: Path):
    """Wrap `HFQwenVL.generate` so that the generated ids of every query are appended to `path` (JSONL)."""
    from tempbench.models.qwen.adapter import HFQwenVL

    original = HFQwenVL.generate
    fh = open(path, "a", encoding="utf-8")

    def generate(self, batch):
        captured = {}
        # transformers' generate (decoder=transformers) or tempbench's own loop (`generate_ids`): either way the
        # answer ids, with the pad id after a row's EOS
        stock = self.decoder == "transformers"
        owner, name = (self.model, "generate") if stock else (self, "generate_ids")
        inner = getattr(owner, name)

        def spy(*a, **k):
            out = inner(*a, **k)
            captured["ids"] = (out[:, k["input_ids"].shape[1]:] if stock else out).tolist()
            return out

        setattr(owner, name, spy)  # instance attribute: shadows the bound method for this call only
        try:
            texts = original(self, batch)
        finally:
            delattr(owner, name)
        fh.write("".join(json.dumps({"qid": it.qid, "ids": ids}) + "\n" for it, ids in zip(batch, captured["ids"])))
        fh.flush()
        return texts

    HFQwenVL.generate = generate
    return fh


def infer(args) -> dict | None:
    p = paths(args.work)
    os.environ["TEMPBENCH_HOME"] = str(p["home"])
    rank, world = _dist()
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = _record_token_ids(run_dir / ("tokens.jsonl" if world == 1 else f"tokens.rank{rank}-of-{world}.jsonl"))
    import torch

    from tempbench.runner import run as tb_run

    options = {} if torch.cuda.is_available() else {"device": "cpu"}  # the runner picks cuda:LOCAL_RANK otherwise
    video = SMALL_VIDEO if (p["work"] / "SMALL").exists() else None
    t0 = time.perf_counter()
    summary = tb_run(str(p["model"]), "synthetic", "test", out_dir=run_dir, limit=args.limit,
                    batch_size=args.batch_size, resume=False, video_settings=video,
                    generation={"max_new_tokens": args.new_tokens, "min_new_tokens": args.new_tokens},
                    workers=args.workers, progress=False, score=True, model_options=options)
    wall = time.perf_counter() - t0
    fh.close()
    if summary.result is None:  # a non-zero rank: rank 0 merges and scores
        _log(f"rank done in {wall:.1f} s")
        return None
    if world > 1:
        rows = []
        for i in range(world):
            rows += (run_dir / f"tokens.rank{i}-of-{world}.jsonl").read_text().splitlines()
        (run_dir / "tokens.jsonl").write_text("".join(line + "\n" for line in rows))
    outcome = summary.config.outcome
    out = {"world_size": world, "batch_size": args.batch_size, "new_tokens": args.new_tokens,
           "queries": outcome.coverage.queries, "seconds": outcome.seconds, "queries_per_s": outcome.queries_per_s,
           "wall_s_with_model_load": wall, "failure_rate": summary.result.failure_rate,
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    _write_json(run_dir / "infer_summary.json", out)
    _log(f"infer: {json.dumps(out)}")
    return out


def _read_jsonl(path: Path) -> dict[int, dict]:
    return {int(r["qid"]): r for r in (json.loads(line) for line in path.read_text().splitlines() if line.strip())}


def compare_infer(single: Path, multi: Path) -> dict:
    """Per-query agreement (generated token ids, decoded text) of two run folders and their throughput ratio."""
    a_pred, b_pred = _read_jsonl(single / "predictions.jsonl"), _read_jsonl(multi / "predictions.jsonl")
    a_tok, b_tok = _read_jsonl(single / "tokens.jsonl"), _read_jsonl(multi / "tokens.jsonl")
    qids = sorted(a_pred)
    missing = sorted(set(a_pred) ^ set(b_pred))
    common = [q for q in qids if q in b_pred]
    same_text = sum(a_pred[q].get("output") == b_pred[q].get("output") for q in common)
    same_ids = sum(q in a_tok and q in b_tok and a_tok[q]["ids"] == b_tok[q]["ids"] for q in common)
    first_diff = []
    for q in common:
        x, y = a_tok.get(q, {}).get("ids", []), b_tok.get(q, {}).get("ids", [])
        if x != y:
            first_diff.append(next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y))))
    sa = json.loads((single / "infer_summary.json").read_text())
    sb = json.loads((multi / "infer_summary.json").read_text())
    return {"queries": len(qids), "missing_or_extra_qids": missing, "token_agreement": same_ids / max(1, len(common)),
            "text_agreement": same_text / max(1, len(common)), "first_differing_token_positions": first_diff,
            "single": sa, "multi": sb,
            "queries_per_s_ratio": (sb["queries_per_s"] / sa["queries_per_s"]
                                    if sa.get("queries_per_s") and sb.get("queries_per_s") else None)}


# ---------------------------------------------------------------------------------------------------------- train


def _train_config(args, p: dict, per_rank_queries: int) -> dict:
    from tempbench.train.config import DEEPSPEED_ZERO3_PATH, load_config

    small = (p["work"] / "SMALL").exists()
    ds = ""
    if args.deepspeed == "zero3-offload":
        ds = str(DEEPSPEED_ZERO3_PATH)  # the repository's file: ZeRO-3 with CPU offload of parameters and optimizer
    elif args.deepspeed == "zero3":
        cfg = json.loads(DEEPSPEED_ZERO3_PATH.read_text())
        for key in ("offload_optimizer", "offload_param"):
            cfg["zero_optimization"].pop(key, None)
        ds_path = p["work"] / "deepspeed_zero3_no_offload.json"
        if _dist()[0] == 0:
            _write_json(ds_path, cfg)
        else:
            for _ in range(600):
                if ds_path.exists():
                    break
                time.sleep(0.1)
        ds = str(ds_path)
    over = {
        "method": "tempsamp", "model": str(p["model"]), "task": "synthetic", "annotations": str(p["annotations"]),
        "videos": str(p["videos"]), "out": str(p["work"] / "trainer"), "seed": 0,
        "rollout.group_size": args.group, "rollout.max_new_tokens": args.new_tokens, "loss.beta": args.beta,
        "optim.lr": args.lr, "optim.grad_accum": 1, "optim.batch_size": per_rank_queries,
        "model_opts.lora": args.mode == "lora", "model_opts.deepspeed": ds,
        "model_opts.lora_dropout": 0.0,  # dropout masks depend on the process layout: the check needs the same function
        "model_opts.gradient_checkpointing": not small, "log.progress": False,
    }
    import torch

    if args.mode == "full" and not ds and torch.cuda.is_available():
        over["model_opts.weights_dtype"] = "bfloat16"  # fp32 masters + AdamW of 8B parameters do not fit one GPU
    if small:
        over.update({f"video.{k}": v for k, v in SMALL_VIDEO.items()})
    return load_config(None, over)


def _gather(values: list[float]) -> list[list[float]]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [values]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, values)
    return out


def train_steps(args) -> dict | None:
    import numpy as np
    import torch

    from tempbench.train import rollout
    from tempbench.train.loop import Trainer, _seed_everything, load_records

    p = paths(args.work)
    rank, world = _dist()
    R = args.ref_world
    if world not in (1, R):
        raise SystemExit(f"--ref-world {R} must equal the number of processes ({world}) or the run is single-process")
    per_rank = R if world == 1 else 1
    cfg = _train_config(args, p, per_rank)
    _seed_everything(0)
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    tr = Trainer(cfg)
    sync()
    load_s = time.perf_counter() - t0
    acc = tr.accelerator
    _log(f"trainer ready in {load_s:.1f} s: {acc.distributed_type}, {acc.num_processes} process(es), "
         f"weights {tr.weights_dtype}, zero3={tr.zero3}")
    records = load_records(cfg)
    if len(records) < R + args.steps * world:
        raise SystemExit(f"need {R + args.steps * world} videos, have {len(records)}: prepare more (--videos)")
    check_recs = records[:R] if world == 1 else [records[rank]]
    check_items = [tr.make_item(r, "grounding", False) for r in check_recs]

    tok = tr.tokenizer
    gt_eos = tok.eos_token_id if tok.eos_token_id is not None else tr.eos[0]

    def fixed_sampler(model, prompt_ids, video, n, settings, eos, pad_id, encode_once=None, synced_gpus=False):
        return [rollout.completion_ids(tok, FIXED_COMPLETIONS[j % len(FIXED_COMPLETIONS)], gt_eos)
                for j in range(n)]

    real_sampler = rollout.sample_completions
    check = []
    rollout.sample_completions = fixed_sampler
    try:
        for s in range(args.check_steps):
            rec = tr.step(check_items, "grounding", False)
            losses = _gather([rec["loss"], rec.get("gt_logp"), rec.get("grad_norm")])
            per_rank_vals = np.array([[np.nan if v is None else v for v in r] for r in losses], dtype=float)
            check.append({"step": s + 1, "loss": float(per_rank_vals[:, 0].mean()),
                          "gt_logp": float(per_rank_vals[:, 1].mean()),
                          "grad_norm": None if np.isnan(per_rank_vals[0, 2]) else float(per_rank_vals[0, 2]),
                          "loss_per_rank": per_rank_vals[:, 0].tolist(),
                          "grad_norm_per_rank": per_rank_vals[:, 2].tolist(),
                          "reward": rec.get("reward_on_mean"), "adv_gt": rec.get("adv_gt"), "kl": rec.get("kl")})
            _log(f"check step {s + 1}: {json.dumps(check[-1])}")
    finally:
        rollout.sample_completions = real_sampler

    timed = []
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for s in range(args.steps):
        recs = [records[R + s * world + rank]]
        items = [tr.make_item(r, "grounding", False) for r in recs]
        sync()
        t1 = time.perf_counter()
        rec = tr.step(items, "grounding", False)
        sync()
        dt = time.perf_counter() - t1
        vals = _gather([dt, rec["gen_time_s"], rec["tokens"], rec["gen_tokens"],
                        torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0,
                        torch.cuda.max_memory_reserved() / 2**30 if cuda else 0.0])
        arr = np.array(vals, dtype=float)
        timed.append({"step": s + 1, "step_s": float(arr[:, 0].max()), "gen_s": float(arr[:, 1].max()),
                      "completion_tokens": int(arr[:, 2].sum()), "gen_tokens": int(arr[:, 3].sum()),
                      "peak_gib_per_rank": arr[:, 4].tolist(), "peak_reserved_gib_per_rank": arr[:, 5].tolist(),
                      "loss": rec["loss"], "grad_norm": rec.get("grad_norm")})
        _log(f"timed step {s + 1}: {json.dumps(timed[-1])}")
    acc.wait_for_everyone()
    if rank != 0:
        return None
    trainable = sum(p_.numel() for p_ in tr.unwrapped_model().parameters() if p_.requires_grad)
    out = {"mode": args.mode, "deepspeed": args.deepspeed, "world_size": world, "ref_world": R,
           "distributed_type": str(acc.distributed_type), "weights_dtype": tr.weights_dtype,
           "trainable_params_local": trainable, "group": args.group, "new_tokens": args.new_tokens, "beta": args.beta,
           "lr": args.lr, "load_s": load_s, "check": check, "timed": timed,
           "device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
           "video_tokens_per_query": int(check_items[0].video.video_grid_thw.prod()) // 4}
    if timed:
        later = timed[1:] or timed
        out["mean_step_s_after_first"] = float(np.mean([t["step_s"] for t in later]))
        out["peak_gib_per_rank"] = np.max([t["peak_gib_per_rank"] for t in timed], axis=0).tolist()
    _write_json(args.out, out)
    _log(f"wrote {args.out}")
    return out


def compare_train(ref: dict, dist: dict, rtol: float) -> dict:
    """Check values (mean GT log-prob, global gradient norm, loss) of a distributed run vs the single-process run."""
    rows = []
    ok = True
    for a, b in zip(ref["check"], dist["check"]):
        row = {"step": a["step"]}
        for key in ("loss", "gt_logp", "grad_norm"):
            x, y = a.get(key), b.get(key)
            if x is None or y is None:
                row[key] = {"single": x, "distributed": y, "rel_diff": None}
                continue
            rel = abs(x - y) / max(abs(x), 1e-8)
            row[key] = {"single": x, "distributed": y, "rel_diff": rel, "within_rtol": bool(rel <= rtol or abs(x - y)
                                                                                           <= rtol * 1e-2)}
            ok = ok and row[key]["within_rtol"]
        rows.append(row)
    return {"rtol": rtol, "match": ok and bool(rows), "steps": rows,
            "single": {k: ref.get(k) for k in ("mode", "deepspeed", "world_size", "weights_dtype", "device")},
            "distributed": {k: dist.get(k) for k in ("mode", "deepspeed", "world_size", "weights_dtype",
                                                     "mean_step_s_after_first", "peak_gib_per_rank")}}


# ---------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("prepare")
    pp.add_argument("--work", type=Path, required=True)
    pp.add_argument("--videos", type=int, default=32)
    pp.add_argument("--small", action="store_true", help="tiny model and short small videos (CPU test)")
    pi = sub.add_parser("infer")
    pi.add_argument("--work", type=Path, required=True)
    pi.add_argument("--run-dir", type=Path, required=True, help="run folder (must not exist yet)")
    pi.add_argument("--batch-size", type=int, default=1)
    pi.add_argument("--new-tokens", type=int, default=16)
    pi.add_argument("--limit", type=int, default=None)
    pi.add_argument("--workers", type=int, default=8)
    pc = sub.add_parser("compare-infer")
    pc.add_argument("--single", type=Path, required=True)
    pc.add_argument("--multi", type=Path, required=True)
    pc.add_argument("--out", type=Path, required=True)
    pt = sub.add_parser("train")
    pt.add_argument("--work", type=Path, required=True)
    pt.add_argument("--out", type=Path, required=True)
    pt.add_argument("--mode", choices=("lora", "full"), default="lora")
    pt.add_argument("--deepspeed", choices=("none", "zero3", "zero3-offload"), default="none")
    pt.add_argument("--ref-world", type=int, default=2, help="processes of the distributed run compared with")
    pt.add_argument("--check-steps", type=int, default=2)
    pt.add_argument("--steps", type=int, default=3, help="timed real steps")
    pt.add_argument("--group", type=int, default=4)
    pt.add_argument("--new-tokens", type=int, default=32)
    pt.add_argument("--beta", type=float, default=0.04)
    pt.add_argument("--lr", type=float, default=1e-6)
    pk = sub.add_parser("compare-train")
    pk.add_argument("--ref", type=Path, required=True)
    pk.add_argument("--dist", type=Path, required=True)
    pk.add_argument("--out", type=Path, required=True)
    pk.add_argument("--rtol", type=float, default=2e-2)
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args)
    elif args.cmd == "infer":
        infer(args)
    elif args.cmd == "compare-infer":
        res = compare_infer(args.single.resolve(), args.multi.resolve())
        _write_json(args.out, res)
        print(json.dumps(res, indent=2))
    elif args.cmd == "train":
        train_steps(args)
    elif args.cmd == "compare-train":
        res = compare_train(json.loads(args.ref.read_text()), json.loads(args.dist.read_text()), args.rtol)
        _write_json(args.out, res)
        print(json.dumps(res, indent=2))
        return 0 if res["match"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
