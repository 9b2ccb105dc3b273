"""Issue 6: SFT, then GRPO vs TempSamp-R1 from the same SFT checkpoint, on the synthetic grounding task (one GPU).

1. Model: a small Qwen2.5-VL-architecture model (text: hidden 256, 4 layers, 4 heads of 64, 2 KV heads, M-RoPE
   sections [8, 12, 12]; vision: 2 blocks of width 128; 4.40 M parameters) with the tiny local tokenizer, weights drawn
   under `torch.manual_seed(--seed)` on CPU: the same seed gives the same bytes.
2. Data: the synthetic task's train split (64 videos, seed 1) plus `--train-videos - 64` more from the same
   generator (seeds 1000+), all 8-16 s, 128x96; the model sees them with the paper's video settings (2 fps, the
   TempSamp-R1 pixel budget: 112x140 frames, 20 video tokens per second), the plain TempSamp-R1 prompt.
3. SFT (`method = "sft"`, the GT answer `<answer> s to e </answer>` + EOS) for `--sft-steps` steps of
   `--sft-batch` queries (AdamW, cosine schedule with warm-up), capped at `--sft-seconds`.
4. From that checkpoint, GRPO and TempSamp-R1 (G = `--group`; TempSamp: G-1 samples + the GT row, reward shaping)
   for the same number of steps of `--rl-batch` queries, same seed and query order, same lr / KL weight. GRPO runs
   first, capped at `--rl-seconds`; TempSamp-R1 then runs exactly as many steps as GRPO did.
5. Every model (SFT, GRPO, TempSamp-R1) is evaluated by `tempbench run` (greedy, batch 16) and scored on the
   synthetic test split (16 queries, what the README shows) and on `--heldout` further generated videos (seed 2,
   never trained on; same generator), which makes the comparison less noisy.

Writes into --out: `summary.json` (R1@0.3/0.5/0.7 and mIoU of each model on both sets, steps, seconds, settings),
`curves.png` (GRPO vs TempSamp-R1 reward/IoU and SFT loss), `sft-model.tar.gz` (the SFT model as a Hugging Face
folder in bf16, for the README's default model), `log.txt`; per-run logs, plots and checkpoints in --work.

    python benchmarks/train_synthetic_gpu.py --out $OUT            # H100: about 7-8 minutes
    python benchmarks/train_synthetic_gpu.py --out /tmp/o --small  # CPU smoke test (tiny sizes, ~1 minute)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
T0 = time.perf_counter()
LOG: list[str] = []


def log(msg: str) -> None:
    line = f"[{time.perf_counter() - T0:6.1f}s] {msg}"
    LOG.append(line)
    print(line, flush=True)


# ------------------------------------------------------------------------------------------------------- model


SMALL_MODEL = {  # 4.40 M parameters
    "text": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_window_layers": 4, "mrope_section": [8, 12, 12]},
    "vision": {"depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 2, "out_hidden_size": 256,
               "fullatt_block_indexes": [1]},
}


def build_model(out_dir: Path, seed: int, small_cpu: bool) -> Path:
    """The tiny model folder (tokenizer, chat template, processor config) with the SMALL_MODEL network drawn under
    `torch.manual_seed(seed)` (CPU, float32). `small_cpu` keeps the tiny network (CPU smoke test)."""
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl

    build_tiny_qwen2_5_vl(out_dir, seed=seed, sizes=None if small_cpu else SMALL_MODEL)
    if not small_cpu:
        from safetensors import safe_open

        with safe_open(str(out_dir / "model.safetensors"), "pt") as f:
            n = sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
        log(f"model: {n / 1e6:.2f} M parameters -> {out_dir}")
    return out_dir


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


# ------------------------------------------------------------------------------------------------------- data


def _gen_chunk(job):
    from tempbench.synthetic import generate_synthetic

    folder, n, seed, kw = job
    return generate_synthetic(folder, n_videos=n, seed=seed, **kw)["records"]


def make_set(folder: Path, jobs: list[tuple[int, int]], pool, kw: dict) -> list[dict]:
    """Generate (n, seed) chunks in parallel into folder/part-SEED and write folder/annotations.jsonl (qids 0..N-1)
    with symlinks folder/VID.mp4, so the folder is a video folder for `find_video` and a synthetic split."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = list(pool.map(_gen_chunk, [(folder / f"part-{seed}", n, seed, kw) for n, seed in jobs]))
    records = []
    for (_, seed), recs in zip(jobs, parts):
        for r in recs:
            link = folder / f"{r['vid']}.mp4"
            if not link.exists():
                link.symlink_to(folder / f"part-{seed}" / f"{r['vid']}.mp4")
            records.append({**r, "qid": len(records)})
    (folder / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


# ------------------------------------------------------------------------------------------------------- training


def make_trainer(args, model: str, method: str, out: Path, lr: float, batch: int):
    from tempbench.train.config import load_config
    from tempbench.train.loop import Trainer, _seed_everything

    over = {"method": method, "model": model, "task": "synthetic", "out": str(out), "seed": args.seed,
            "rollout.group_size": args.group, "rollout.max_new_tokens": args.max_new_tokens,
            "rollout.temperature": 1.0, "schedule.cot": "plain", "loss.beta": args.beta,
            "optim.lr": lr, "optim.batch_size": batch, "optim.grad_accum": 1, "optim.weight_decay": 0.0,
            "model_opts.gradient_checkpointing": False, "log.progress": False,
            # float32 for this 4.4 M model: a first H100 run with bf16 autocast and lr 1e-3 diverged (loss NaN)
            "model_opts.bf16": False}
    if method == "sft":
        over.update({"optim.scheduler": "cosine", "optim.warmup_steps": max(1, args.sft_steps // 20)})
    if args.small:
        over.update({f"video.{k}": v for k, v in SMALL_VIDEO.items()})
    cfg = load_config(None, over)
    _seed_everything(args.seed)
    return Trainer(cfg)


SMALL_VIDEO = {"total_pixels": 4 * 16 * 28 * 28, "min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28,
               "max_frames": 8, "min_frames": 2}


def build_items(tr, records: list[dict], videos: Path, workers: int) -> list:
    """QueryItems (prompt ids + processed video) of all records, decoded once in a thread pool."""
    from concurrent.futures import ThreadPoolExecutor

    from tempbench.video import decode_video

    def one(rec):
        clip = decode_video(videos / f"{rec['vid']}.mp4", tr.video_settings)
        return tr.make_item(rec, "grounding", False, clip=clip)

    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(one, records))


def run_phase(tr, items: list, name: str, out: Path, steps: int, batch: int, seconds: float, seed: int) -> dict:
    """`steps` optimizer steps of `batch` queries in a seeded order (epochs of permutations), stopped early after
    `seconds`; one JSON line per step in out/train_log.jsonl; a checkpoint at the end. Returns a summary."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    tr.make_scheduler(steps)
    per_epoch = len(items) // batch
    t0 = time.perf_counter()
    done = 0
    last: dict = {}
    with open(out / "train_log.jsonl", "w", encoding="utf-8") as fh:
        while done < steps:
            epoch = done // per_epoch
            order = np.random.default_rng([seed, epoch]).permutation(len(items))
            pos = done % per_epoch
            batch_items = [items[i] for i in order[pos * batch:(pos + 1) * batch]]
            rec = tr.step(batch_items, "grounding", False)
            rec.update({"epoch": epoch, "phase": "plain"})
            fh.write(json.dumps(rec) + "\n")
            done += 1
            last = rec
            elapsed = time.perf_counter() - t0
            if done == 1 or done % max(1, steps // 10) == 0 or done == steps:
                bits = [f"loss {rec['loss']:.4f}"]
                if rec.get("reward_on_mean") is not None:
                    bits += [f"reward {rec['reward_on_mean']:.3f}", f"top1 IoU {rec['top1_iou']:.3f}"]
                log(f"{name}: step {done}/{steps} {' '.join(bits)} ({elapsed:.1f} s, {done / elapsed:.2f} steps/s)")
            if elapsed > seconds and done < steps:
                log(f"{name}: time cap {seconds:.0f} s reached after {done} steps")
                break
    seconds_used = time.perf_counter() - t0
    ck = tr.save_checkpoint(out, epoch=0, position=done)
    try:
        from tempbench.train.plot import plot_run

        plot_run(out, smooth=max(1, done // 20))
    except Exception as e:  # plots are a convenience; the numbers are in the log
        log(f"{name}: plots failed: {type(e).__name__}: {e}")
    return {"steps": done, "seconds": seconds_used, "steps_per_s": done / seconds_used, "checkpoint": str(ck),
            "last": {k: last.get(k) for k in ("loss", "reward_on_mean", "top1_iou", "kl", "gt_logp")}}


def free(tr) -> None:
    import gc

    import torch

    del tr
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------------- eval


def evaluate(model: str, name: str, homes: dict[str, Path], work: Path, args, options: dict | None = None) -> dict:
    """`tempbench run` + score of a checkpoint on each evaluation set (the synthetic test split of each home)."""
    from tempbench.runner import run as tb_run

    res = {}
    old = os.environ.get("TEMPBENCH_HOME")
    try:
        for set_name, home in homes.items():
            os.environ["TEMPBENCH_HOME"] = str(home)
            run_dir = work / "eval" / f"{name}-{set_name}"
            shutil.rmtree(run_dir, ignore_errors=True)
            t0 = time.perf_counter()
            r = tb_run(model, "synthetic", "test", out_dir=run_dir, batch_size=16, resume=False,
                       video_settings=SMALL_VIDEO if args.small else None, workers=args.workers, progress=False,
                       generation={"max_new_tokens": args.eval_max_new_tokens}, setting="fine-tuned",
                       model_options=options)
            r = r.result
            m = r.metrics
            res[set_name] = {"n": r.n, **{k: m.get(k) for k in ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU")},
                             "counts": r.to_json()["counts"], "failure_rate": r.failure_rate,
                             "seconds": time.perf_counter() - t0}
            first = json.loads((run_dir / "predictions.jsonl").read_text().splitlines()[0])
            log(f"eval {name} on {set_name}: R1@0.5 {m['R1@0.5']:.1f} mIoU {m['mIoU']:.1f} "
                f"(n {r.n}, failures {r.failure_rate}%) e.g. {first.get('output', first.get('windows'))!r}")
    finally:
        if old is None:
            os.environ.pop("TEMPBENCH_HOME", None)
        else:
            os.environ["TEMPBENCH_HOME"] = old
    return res


def export_model(ck: Path, folder: Path, dest: Path) -> Path:
    """A clean HF folder (config, bf16 safetensors, tokenizer, chat template, processor config) as a .tar.gz."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for f in ck.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "train_config.toml", "trainer_state.json"):
            shutil.copy2(f, folder / f.name)
    sd = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(ck / "model.safetensors").items()}
    save_file(sd, folder / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg["dtype"] = "bfloat16"
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(folder, arcname="tiny-synthetic-sft")
    return dest


def curves(runs: dict[str, Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from tempbench.train.plot import read_log

    panels = (("sft", "loss", "SFT loss"), (None, "reward_on_mean", "on-policy reward (IoU)"),
              (None, "top1_iou", "IoU of the most likely sample"), (None, "kl", "KL to the SFT model"))
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.6), dpi=100)
    for ax, (only, key, title) in zip(axes, panels):
        for name, d in runs.items():
            if (only and name != only) or (not only and name == "sft"):
                continue
            rows = read_log(d)
            y = np.array([r.get(key) if r.get(key) is not None else np.nan for r in rows], dtype=float)
            k = max(1, len(y) // 15)
            ys = np.convolve(np.nan_to_num(y), np.ones(k) / k, mode="valid") if len(y) >= k else y
            ax.plot(np.arange(1, len(y) + 1), y, alpha=0.25)
            ax.plot(np.arange(k, len(y) + 1), ys, label=name, color=ax.lines[-1].get_color())
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="summary.json, curves.png, sft-model.tar.gz, log.txt")
    ap.add_argument("--work", type=Path, default=None, help="videos, runs, checkpoints (default: OUT/../tb-synth-work)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-videos", type=int, default=1024)
    ap.add_argument("--heldout", type=int, default=128)
    ap.add_argument("--sft-steps", type=int, default=1500)
    ap.add_argument("--sft-batch", type=int, default=16)
    ap.add_argument("--sft-lr", type=float, default=5e-4)
    ap.add_argument("--sft-seconds", type=float, default=150)
    ap.add_argument("--rl-steps", type=int, default=60)
    ap.add_argument("--rl-batch", type=int, default=8)
    ap.add_argument("--rl-lr", type=float, default=5e-5)
    ap.add_argument("--rl-seconds", type=float, default=85)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--eval-max-new-tokens", type=int, default=48)
    ap.add_argument("--workers", type=int, default=max(1, min(12, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--small", action="store_true", help="CPU smoke test: tiny network, few videos and steps")
    if ap.parse_known_args(argv)[0].small:  # smoke-test sizes, unless given explicitly
        ap.set_defaults(train_videos=8, heldout=4, sft_steps=4, rl_steps=2, sft_batch=2, rl_batch=2,
                        max_new_tokens=8, eval_max_new_tokens=8)
    args = ap.parse_args(argv)
    out = args.out.resolve()
    work = (args.work or out.parent / "tb-synth-work").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)

    import torch

    from tempbench.annotations import ensure_synthetic

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    log(f"device {device}, torch {torch.__version__}, work {work}")
    summary: dict = {"device": device, "torch": torch.__version__, "args": {k: str(v) for k, v in vars(args).items()}}

    # data: the synthetic train/test splits in a private cache, more train videos, a held-out set
    home = work / "home"
    os.environ["TEMPBENCH_HOME"] = str(home)
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    kw = {"size": (64, 48), "duration_range": (3, 5), "fps": 4} if args.small else {}
    extra = max(0, args.train_videos - 64)
    chunk = max(1, -(-extra // max(1, args.workers)))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        held = pool.submit(make_set, work / "heldout-home" / "synthetic" / "test",
                           [(len(range(c, args.heldout, 4)), 2000 + c) for c in range(min(4, args.heldout))],
                           _NoPool(), kw) if args.heldout else None
        extra_jobs = [(min(chunk, extra - s), 1000 + i) for i, s in enumerate(range(0, extra, chunk))]
        train_dir = work / "train-videos"
        if args.small:
            ensure_synthetic("test")
            base = make_set(work / "train-base", [(4, 1)], _NoPool(), kw)
        else:
            ensure_synthetic("test")
            base_dir = ensure_synthetic("train")
            base = [json.loads(x) for x in (base_dir / "annotations.jsonl").read_text().splitlines()]
        extra_recs = make_set(train_dir, extra_jobs, pool, kw) if extra_jobs else []
        if held is not None:
            held.result()
    train_dir.mkdir(parents=True, exist_ok=True)
    src = work / "train-base" if args.small else home / "synthetic" / "train"
    records = []
    for r in base:
        link = train_dir / f"{r['vid']}.mp4"
        if not link.exists():
            link.symlink_to(src / f"{r['vid']}.mp4")
        records.append({**r, "qid": len(records)})
    records += [{**r, "qid": len(base) + i} for i, r in enumerate(extra_recs)]
    (work / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary["data"] = {"train_queries": len(records), "heldout_queries": args.heldout, "test_queries": 16,
                       "seconds": time.perf_counter() - t0}
    log(f"videos: {len(records)} train, {args.heldout} held-out, 16 test ({time.perf_counter() - t0:.1f} s)")
    homes = {"test": home}
    if args.heldout:
        homes["heldout"] = work / "heldout-home"

    # reference points that use no video: the training set's prior window and the centre window
    for kind in ("prior", "center"):
        summary[f"baseline_{kind}"] = {"eval": evaluate(f"baseline:{kind}", f"baseline-{kind}", homes, work, args,
                                                        {"train_records": records})}

    # model
    model_dir = work / "model-init"
    shutil.rmtree(model_dir, ignore_errors=True)
    build_model(model_dir, args.seed, small_cpu=args.small)

    # SFT
    t0 = time.perf_counter()
    tr = make_trainer(args, str(model_dir), "sft", work / "sft", args.sft_lr, args.sft_batch)
    items = build_items(tr, records, train_dir, args.workers)
    log(f"{len(items)} training queries decoded and processed ({time.perf_counter() - t0:.1f} s); "
        f"video tokens per query: {int(items[0].video.video_grid_thw.prod()) // 4}")
    sft = run_phase(tr, items, "sft", work / "sft", args.sft_steps, args.sft_batch, args.sft_seconds, args.seed)
    free(tr)
    sft_ck = sft["checkpoint"]
    summary["sft"] = {**sft, "eval": evaluate(sft_ck, "sft", homes, work, args)}

    # GRPO, then TempSamp-R1 for the same number of steps
    for method in ("grpo", "tempsamp"):
        steps = args.rl_steps if method == "grpo" else summary["grpo"]["steps"]
        cap = args.rl_seconds if method == "grpo" else 1.5 * args.rl_seconds  # a guard; the log says if it hit
        tr = make_trainer(args, sft_ck, method, work / method, args.rl_lr, args.rl_batch)
        res = run_phase(tr, items, method, work / method, steps, args.rl_batch, cap, args.seed)
        free(tr)
        summary[method] = {**res, "eval": evaluate(res["checkpoint"], method, homes, work, args)}

    curves({"sft": work / "sft", "grpo": work / "grpo", "tempsamp": work / "tempsamp"}, out / "curves.png")
    tar = export_model(Path(sft_ck), work / "sft-model", out / "sft-model.tar.gz")
    summary["sft_model"] = {"file": tar.name, "bytes": tar.stat().st_size, "folder": str(work / "sft-model"),
                            "safetensors_bytes": (work / "sft-model" / "model.safetensors").stat().st_size}
    summary["table"] = {name: {s: {k: summary[name]["eval"][s][k] for k in ("R1@0.5", "mIoU")}
                               for s in summary[name]["eval"]}
                        for name in ("baseline_prior", "baseline_center", "sft", "grpo", "tempsamp")}
    summary["total_seconds"] = time.perf_counter() - T0
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done in {summary['total_seconds']:.0f} s: {json.dumps(summary['table'])}")
    (out / "log.txt").write_text("\n".join(LOG) + "\n")
    return 0


class _NoPool:
    """`map` in the calling process (for the small jobs that run inside a pool worker or the smoke test)."""

    @staticmethod
    def map(fn, jobs):
        return [fn(j) for j in jobs]


if __name__ == "__main__":
    sys.exit(main())
