"""Issue 14: train `tiny-synthetic`, the embedded default model, one stage per command on one GPU (seeded, under 10 minutes).

1. Data (`tempbench.synthetic`, the task cards of `synthetic` and `synthetic-hard`): the first `--train-synthetic`
   and `--train-hard` videos of each task's train seed (the card's train split is their first 64), generated in
   parallel processes; the `val`, `heldout` and `test` splits of both tasks into a private cache.
2. Model: the `tiny-synthetic` architecture (`tempbench/models/tiny_synthetic/`: 4.40 M parameters, the tiny
   tokenizer and chat template shipped with tempbench) with float32 weights drawn under `torch.manual_seed(--seed)`.
3. Training: `tempbench train --method sft` (a subprocess, the command users run) on the mixed train set of both
   tasks, with the recipe below (`recipe()`: AdamW, peak lr `--lr` after `--warmup-steps`, cosine decay, batch
   `--batch`, `--epochs` passes, float32 weights; videos prepared once by `data.workers` processes and kept on
   the GPU, `data.cache` + `data.cache_on_device`), a checkpoint every 1/`--checkpoints` of the run;
   `schedule.max_seconds` guards the lent machine's time (the results say when it stopped the run).
4. Selection on the `val` splits only (mean mIoU of both tasks; `heldout` never chooses anything): each of those
   evenly spaced checkpoints (and the last) is run by `tempbench run` (greedy, float32) on both val splits.
5. The selected checkpoint becomes the package folder: its weights in bf16 safetensors (`model.safetensors`,
   8.8 MB) beside the shipped tokenizer and config files; that folder is run by `tempbench run` in float32 (what a
   CPU does with the shipped weights) on `heldout` and `test` of both tasks, next to the prior and centre
   baselines (fitted to the same train windows).

Writes into --out (small files): `model.safetensors` (the bf16 weights to ship), `train_tiny_synthetic.json`
(settings, data, the trainer's config, loss and lr per step, val metrics per checkpoint, the selection, held-out
and test metrics with 95% CIs, failure rates, baselines, timings, the weights' sha256), `curves.png`, `log.txt`,
`train_log.jsonl.gz` (the trainer's full log). Work files (videos, checkpoints, runs) go to --work.

    python benchmarks/train_tiny_synthetic.py --out $OUT                 # stage 1: one H200, about 10 minutes
    python benchmarks/train_tiny_synthetic.py --out $OUT2 --think objects-marked --prompt tempsamp-r1-cot \
        --init-weights $OUT/model.safetensors --init-sha256 SHA ...     # stage 2 (docs/training.md has the flags)
    python benchmarks/train_tiny_synthetic.py --out $OUT3 --think objects-marked --prompt tempsamp-r1-cot \
        --init-weights $OUT2/model.safetensors --init-sha256 SHA2 ...   # stage 3 (the same: docs/training.md)
    python benchmarks/train_tiny_synthetic.py --out /tmp/o --smoke       # CPU smoke test (tiny sizes, under a minute)
    python benchmarks/install_tiny_synthetic.py $OUT                     # then: ship the weights, pin their sha256
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
T0 = time.perf_counter()
LOG: list[str] = []
TASKS = ("synthetic", "synthetic-hard")
EVAL_SPLITS = ("val", "heldout", "test")
TARGETS = {"synthetic": 75.0, "synthetic-hard": 60.0}  # held-out mIoU (issue 14), with at most 5% parse failures
MAX_FAILURE_RATE = 5.0
# CPU smoke test: frames of at most 16 * 28 * 28 pixels, 4 per video budget
SMOKE_VIDEO = {"fps": 2.0, "total_pixels": 4 * 16 * 28 * 28, "min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28,
               "max_frames": 8, "min_frames": 2}


def log(msg: str) -> None:
    line = f"[{time.perf_counter() - T0:6.1f}s] {msg}"
    LOG.append(line)
    print(line, flush=True)


# ------------------------------------------------------------------------------------------------------- data


def generate_data(work: Path, home: Path, args) -> dict[str, list[dict]]:
    """The train videos of both tasks (one folder, records of both in one annotation file) and, unless smoke, the
    eval splits into the private cache, all in one process pool. Returns {task: train records}."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tempbench.annotations import ensure_synthetic
    from tempbench.synthetic import draw_scene, write_scene_video
    from tempbench.tasks import synthetic

    counts = {"synthetic": args.train_synthetic, "synthetic-hard": args.train_hard}
    train_dir = work / "train"
    videos = train_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    jobs, moves = [], []
    records: dict[str, list[dict]] = {}
    for name in TASKS:
        settings = synthetic.settings(name)
        seed = synthetic.TASKS[name]["splits"]["train"]["seed"]
        if name == "synthetic-hard" and args.hard_filter != "all":
            indices = filtered_videos(settings, seed, counts[name], args.hard_filter)
        else:  # the first N videos of the train seed (the card's train split is their first 64)
            indices = list(range(counts[name]))
        scenes = [draw_scene(settings, seed, i)[0] for i in indices]  # the records `synthetic.generate` writes
        records[name] = [scene.record(k) for k, scene in enumerate(scenes)]
        if args.every_object and name == "synthetic-hard":  # each video once per object, by a query naming it
            records[name] = [row for scene in scenes for row in scene.object_records(0)]
        if args.think != "none":  # the reasoning target: every object of the video, in words, in order
            by_vid = {scene.vid: scene for scene in scenes}  # (spaced inside <think> as the answer is in <answer>)
            records[name] = [{**r, "think": f" {think_text(by_vid[r['vid']], r, args.think)} "}
                             for r in records[name]]
        if args.train_frames == "decode":  # rendered train frames need no file
            jobs += [(settings, seed, i, str(videos), None) for i, scene in zip(indices, scenes)
                     if not (videos / f"{scene.vid}.mp4").is_file()]  # one file per video
        if args.smoke:
            continue
        for split in EVAL_SPLITS:  # the whole split (the runner would generate it on first use as well)
            folder = ensure_synthetic(split, name, videos=False)
            recs = [json.loads(x) for x in (folder / "annotations.jsonl").read_text().splitlines()]
            seed_s = synthetic.TASKS[name]["splits"][split]["seed"]
            tmp = work / "gen-tmp" / name / split
            tmp.mkdir(parents=True, exist_ok=True)
            for i, r in enumerate(recs):
                if not (folder / f"{r['vid']}.mp4").is_file():
                    jobs.append((settings, seed_s, i, str(tmp), None))
                    moves.append((tmp / f"{r['vid']}.mp4", folder / f"{r['vid']}.mp4"))
    t0 = time.perf_counter()
    if jobs:
        workers = max(1, min(args.workers, len(jobs)))
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(write_scene_video, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    for src, dst in moves:
        os.replace(src, dst)
    shutil.rmtree(work / "gen-tmp", ignore_errors=True)
    log(f"data: {len(jobs)} videos generated in {time.perf_counter() - t0:.1f} s with {args.workers} processes "
        f"(train queries: {', '.join(f'{n} {len(r)}' for n, r in records.items())})")
    return records


def think_text(scene, record: dict, kind: str) -> str:
    """`--think`: objects, the scene's description; objects-marked, each entry marked yes for the object the
    record's query names (the one whose window is the record's) and no for the others."""
    if kind == "objects":
        return scene.description()
    fps = scene.fps
    named = [j for j, o in enumerate(scene.objects) if [o.start / fps, o.end / fps] == record["windows"][0]]
    return scene.description(named=named[0])


def filtered_videos(settings, seed: int, n: int, kind: str) -> list[int]:
    """The indices of the first `n` videos of the train seed that `--hard-filter` keeps: `colour`, those whose query
    names the object by its colour alone; `two-colour`, those of them with two objects (the query then decides
    between two objects of different colours)."""
    from tempbench.synthetic import draw_scene

    keep, i = [], 0
    while len(keep) < n:
        scene = draw_scene(settings, seed, i)[0]
        by_colour = scene.query.endswith(" object appears")
        if by_colour and (kind == "colour" or len(scene.objects) == 2):
            keep.append(i)
        i += 1
    return keep


def write_train_set(work: Path, records: dict[str, list[dict]]) -> Path:
    """One annotation file with the train records of both tasks (qids renumbered 0..N-1; vids stay unique)."""
    rows = []
    for name in TASKS:
        for r in records[name]:
            rows.append({**r, "qid": len(rows)})
    path = work / "train" / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------------------------------- model


# `--prompt-order query-first`: the shipped chat template with the user turn's text written before its video, so that
# the video's tokens (causal attention) come after the query and can be compared with it; the template travels with
# the model folder (its sha256 is part of every run's identity)
QUERY_FIRST_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def task_words() -> tuple[str, ...]:
    """The words that name the generated objects (`--word-tokens` gives each one token)."""
    from tempbench.synthetic import COLOURS, SHAPES

    return (*COLOURS, *SHAPES, "object")


TASK_WORDS = task_words()


def build_init_model(work: Path, args) -> Path:
    """The starting model: the shipped tiny-synthetic files (smoke: the tiny test architecture) + seeded weights."""
    from tempbench.models import zoo
    from tempbench.models.qwen.tiny import init_weights, write_model_files

    files = work / "model-files"
    shutil.rmtree(files, ignore_errors=True)
    if args.smoke:
        write_model_files(files)
    else:
        src = zoo.PACKAGE_MODELS / str(zoo.get("tiny-synthetic").package_dir)
        files.mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file() and f.name != "model.safetensors":
                shutil.copy2(f, files / f.name)
    if args.prompt_order == "query-first":
        (files / "chat_template.jinja").write_text(QUERY_FIRST_CHAT_TEMPLATE)
    if args.text_layers is not None:  # another depth of the language model (its MLP width with it)
        cfg = json.loads((files / "config.json").read_text())
        cfg["text_config"].update(num_hidden_layers=args.text_layers, max_window_layers=args.text_layers)
        if args.text_intermediate is not None:
            cfg["text_config"]["intermediate_size"] = args.text_intermediate
        (files / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if args.word_tokens:
        from tempbench.models.qwen.tiny import add_word_tokens

        added = add_word_tokens(files, TASK_WORDS)
        log(f"model: one token each for {', '.join(TASK_WORDS)} ({len(added)} merges added to the tokenizer)")
    init = work / "model-init"
    shutil.rmtree(init, ignore_errors=True)
    init_weights(files, seed=args.seed, out_dir=init)
    if args.init_weights is not None:  # a later stage: the earlier stage's weights replace the seeded draw
        start_from_weights(init, args.init_weights)
    n = count_parameters(init / "model.safetensors")
    start = f"weights {args.init_weights.name}" if args.init_weights is not None else f"seed {args.seed}"
    log(f"model: {n / 1e6:.2f} M parameters ({start}) -> {init}")
    return init


def start_from_weights(init: Path, weights: Path) -> None:
    """Overwrite the seeded float32 weights of `init` with `weights` (any float dtype, cast to float32); the tensor
    names and shapes must be the architecture's."""
    import torch
    from safetensors.torch import load_file, save_file

    drawn = load_file(init / "model.safetensors")
    given = load_file(weights)
    if set(given) != set(drawn) or any(given[k].shape != drawn[k].shape for k in drawn):
        raise SystemExit(f"{weights}: its tensors are not the tiny-synthetic architecture's")
    save_file({k: given[k].to(torch.float32).contiguous() for k in sorted(drawn)}, init / "model.safetensors",
              metadata={"format": "pt"})


def count_parameters(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), "pt") as f:
        for k in f.keys():
            n = 1
            for d in f.get_slice(k).get_shape():
                n *= int(d)
            total += n
    return total


# ------------------------------------------------------------------------------------------------------- training


def recipe(args, train_file: Path, videos: Path, n_train: int) -> dict:
    """The trainer configuration (keys of tempbench/train/default_config.toml that differ from the defaults)."""
    steps = (n_train // args.batch) * args.epochs
    cfg = {
        "method": "sft", "task": "synthetic", "annotations": str(train_file), "videos": str(videos),
        "seed": args.seed,
        "schedule": {"epochs": args.epochs, "max_seconds": float(args.max_train_seconds),
                     **({"cot": "plain", "plain_prompt": args.prompt} if args.think == "none" else
                        {"cot": "cot", "cot_prompt": args.prompt})},
        "optim": {"lr": args.lr, "batch_size": args.batch, "grad_accum": 1, "scheduler": args.scheduler,
                  "warmup_steps": min(args.warmup_steps, max(1, steps // 10)), "weight_decay": args.weight_decay,
                  "max_grad_norm": 1.0},
        # float32 weights and compute: a 4.4 M model gains nothing from bf16, and an earlier bf16 run diverged
        "model_opts": {"bf16": False, "gradient_checkpointing": False},
        # several passes: each video prepared once (decoded, or rendered) and kept on the GPU; one pass: no cache
        "data": {"workers": args.workers if args.train_workers is None else args.train_workers,
                 "cache": args.epochs > 1, "cache_on_device": args.epochs > 1, "frames": args.train_frames},
        "log": {"save_steps": max(1, steps // args.checkpoints), "progress": False},
    }
    if args.think != "none":  # the ground-truth row: <think>{record's think}</think><answer> ... </answer>
        cfg["rollout"] = {"gt_think_field": "think"}
    if args.smoke:
        cfg["video"] = dict(SMOKE_VIDEO)
    return cfg


def toml_text(cfg: dict) -> str:
    from tempbench.train.config import dump_toml

    return dump_toml(cfg)


def train(work: Path, init: Path, cfg: dict, cuda: bool) -> dict:
    """`tempbench train` in a subprocess (the command a user runs); progress lines from its log meanwhile."""
    out = work / "sft"
    shutil.rmtree(out, ignore_errors=True)
    config = work / "recipe.toml"
    config.write_text(toml_text(cfg))
    cmd = [sys.executable, "-m", "tempbench", "train", "--config", str(config), "--method", "sft", "--model",
           str(init), "--task", "synthetic", "--out", str(out)]
    log("train: " + " ".join(cmd))
    t0 = time.perf_counter()
    env = dict(os.environ)
    if cuda:  # one intra-op thread in the trainer's own process: the data workers hold the other cores (measured
        env.setdefault("OMP_NUM_THREADS", "1")  # on one H200 host: docs/training.md, "The data path")
    with open(work / "train_stdout.json", "w") as stdout, open(work / "train_stderr.txt", "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env)
        shown = 0
        while proc.poll() is None:
            time.sleep(2)
            rows = read_log(out / "train_log.jsonl")
            if rows and time.perf_counter() - t0 > 20 * (shown + 1):
                shown = int((time.perf_counter() - t0) // 20)
                r = rows[-1]
                log(f"train: step {r['step']} loss {r['loss']:.4f} lr {r['lr']:.2e} ({r['elapsed_s']:.0f} s in "
                    f"the loop, {r['step'] / max(r['elapsed_s'], 1e-9):.2f} steps/s)")
    if proc.returncode != 0:
        tail = (work / "train_stderr.txt").read_text()[-3000:]
        raise SystemExit(f"tempbench train failed (exit {proc.returncode}):\n{tail}")
    text = (work / "train_stdout.json").read_text()
    start = 0 if text.startswith("{") else text.find("\n{") + 1  # after lines other libraries print (DeepSpeed)
    summary = json.loads(text[start:])
    summary["wall_seconds"] = time.perf_counter() - t0
    log(f"train: {summary['global_step']} steps in {summary['seconds']:.1f} s of loop "
        f"({summary['wall_seconds']:.1f} s with start-up); "
        + (f"STOPPED EARLY: {summary['stopped_early']}" if summary.get("stopped_early") else "ran to the end"))
    return summary


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            pass
    return rows


# ------------------------------------------------------------------------------------------------------- eval


def evaluate(model: str, task: str, split: str, work: Path, args, tag: str, options: dict | None = None) -> dict:
    """`tempbench run` + score of one model on one split; the numbers the results JSON keeps."""
    from tempbench.models import zoo
    from tempbench.runner import run as tb_run

    run_dir = work / "runs" / f"{tag}-{task}-{split}"
    shutil.rmtree(run_dir, ignore_errors=True)
    video = dict(SMOKE_VIDEO) if args.smoke else dict(zoo.get("tiny-synthetic").video)
    t0 = time.perf_counter()
    summary = tb_run(model, task, split, out_dir=run_dir, batch_size=args.eval_batch, resume=False,
                     limit=args.eval_limit, video_settings=None if model.startswith("baseline:") else video,
                     workers=args.workers, prefetch="thread", progress=False, setting="fine-tuned",
                     prompt=None if model.startswith("baseline:") else args.prompt,
                     generation=None if model.startswith("baseline:") else {"max_new_tokens": args.max_new_tokens},
                     model_options=options)
    r = summary.result
    out = {"n": r.n, "metrics": dict(r.metrics), "ci95": {k: list(v) for k, v in r.ci95.items()},
           "failure_rate": r.failure_rate, "parse_failures": r.counts.failed, "seconds": time.perf_counter() - t0,
           "run_dir": str(run_dir)}
    first = (run_dir / "predictions.jsonl").read_text().splitlines()[0]
    out["example"] = json.loads(first).get("output")
    if task == "synthetic-hard":  # which object the answers land on: does the model read the query?
        from hard_failure_modes import analyse

        a = analyse(run_dir)["by_query"]["all"]
        out["picks"] = {"target_pct": a["picks_target_pct"], "first_to_appear_pct": a["picks_first_to_appear_pct"],
                        "random_pick_pct": a["random_pick_pct"]}
    return out


def select_checkpoint(checkpoints: list[str], work: Path, args) -> tuple[list[dict], dict]:
    """Every checkpoint on both val splits; the one with the best mean val mIoU (the later one on ties)."""
    rows = []
    for ck in checkpoints:
        step = int(Path(ck).name.split("-")[1])
        row = {"checkpoint": Path(ck).name, "step": step}
        for name in TASKS:
            row[name] = evaluate(ck, name, "val", work, args, f"ck{step}", {"dtype": "float32"})
        row["mean_mIoU"] = sum(row[n]["metrics"]["mIoU"] for n in TASKS) / len(TASKS)
        rows.append(row)
        picks = row["synthetic-hard"]["picks"]
        log(f"val {row['checkpoint']}: " + ", ".join(
            f"{n} mIoU {row[n]['metrics']['mIoU']:.1f} (failures {row[n]['failure_rate']:.1f}%)" for n in TASKS)
            + f"; synthetic-hard answers on the queried object {picks['target_pct']:.1f}%, on the first to appear "
              f"{picks['first_to_appear_pct']:.1f}% (random pick {picks['random_pick_pct']:.1f}%)"
            + f"; e.g. {row['synthetic-hard']['example']!r}")
    best = max(rows, key=lambda r: (r["mean_mIoU"], r["step"]))
    log(f"selected {best['checkpoint']} (mean val mIoU {best['mean_mIoU']:.2f})")
    return rows, best


def export_package(ck: Path, files: Path, dest: Path, args) -> Path:
    """The package folder: the tokenizer, template and config files the model was trained with (`files`: the
    shipped ones, with --prompt-order and --word-tokens applied) + the checkpoint's weights in bf16 safetensors.
    Checks that every tensor is the checkpoint's, rounded to bf16."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for f in files.iterdir():
        if f.is_file() and f.suffix in (".json", ".jinja"):
            shutil.copy2(f, dest / f.name)
    state = load_file(ck / "model.safetensors")
    bf16 = {k: v.to(torch.bfloat16).contiguous() for k, v in sorted(state.items())}
    save_file(bf16, dest / "model.safetensors",
              metadata={"format": "pt", "produced_by": "benchmarks/train_tiny_synthetic.py",
                        "checkpoint": ck.name, "seed": str(args.seed)})
    again = load_file(dest / "model.safetensors")
    assert set(again) == set(state), "exported tensors differ from the checkpoint's"
    for k, v in state.items():
        assert again[k].dtype == torch.bfloat16 and torch.equal(again[k], v.to(torch.bfloat16)), k
    return dest


# ------------------------------------------------------------------------------------------------------- figure


def figure(path: Path, log_rows: list[dict], val_rows: list[dict], baselines: dict, selected: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([r["step"] for r in log_rows])
    loss = np.array([r["loss"] for r in log_rows], dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4), dpi=100)
    ax = axes[0]
    ax.plot(steps, loss, alpha=0.3, color="C0")
    k = max(1, len(loss) // 50)
    if len(loss) >= k:
        ax.plot(steps[k - 1:], np.convolve(loss, np.ones(k) / k, mode="valid"), color="C0", label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_title("SFT loss (token mean) per step")
    ax.set_xlabel("optimizer step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    axes[1].plot(steps, [r["lr"] for r in log_rows], color="C1")
    axes[1].set_title("learning rate")
    axes[1].set_xlabel("optimizer step")
    axes[1].grid(alpha=0.3)
    ax = axes[2]
    for i, name in enumerate(TASKS):
        vs = [r["step"] for r in val_rows]
        ax.plot(vs, [r[name]["metrics"]["mIoU"] for r in val_rows], "o-", color=f"C{i}", label=f"{name} val")
        center = baselines[name]["center"]["val"]["metrics"]["mIoU"]
        ax.axhline(center, color=f"C{i}", ls=":", lw=1, label=f"{name} centre baseline")
        ax.axhline(TARGETS[name], color=f"C{i}", ls="--", lw=0.8, alpha=0.6)
    ax.axvline(selected["step"], color="k", lw=0.8, alpha=0.5)
    ax.set_title("val mIoU per checkpoint (dashed: held-out targets)")
    ax.set_xlabel("optimizer step")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle("tiny-synthetic: SFT on synthetic + synthetic-hard (benchmarks/train_tiny_synthetic.py)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="results (small files, see above)")
    ap.add_argument("--work", type=Path, default=None, help="videos, checkpoints, runs (default: OUT/../tb-tiny-work)")
    ap.add_argument("--seed", type=int, default=0, help="weights, query order")
    ap.add_argument("--train-synthetic", type=int, default=2048, help="train videos of `synthetic`")
    ap.add_argument("--train-hard", type=int, default=4096, help="train videos of `synthetic-hard`")
    ap.add_argument("--epochs", type=int, default=30, help="planned passes (the schedule's length)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=7e-4)
    ap.add_argument("--warmup-steps", type=int, default=150)
    ap.add_argument("--scheduler", choices=("cosine", "constant_with_warmup"), default="cosine",
                    help="the learning rate after warm-up: cosine decay to 0 at the planned end, or constant (the "
                         "query is read, if at all, only after the timing is learned: a cosine schedule has then "
                         "spent most of its rate)")
    ap.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay")
    ap.add_argument("--checkpoints", type=int, default=4, help="evenly spaced checkpoints to select among")
    ap.add_argument("--max-train-seconds", type=float, default=420,
                    help="guard (schedule.max_seconds; the shipped model's run stopped there, at step 2,156 of a "
                         "planned 2,880, on one H200); 0 = none")
    ap.add_argument("--init-weights", type=Path, default=None,
                    help="start from these weights (a later stage: an earlier stage's model.safetensors) instead of "
                         "the seeded draw; --init-sha256 must name them")
    ap.add_argument("--init-sha256", default=None, help="the sha256 that --init-weights must have")
    ap.add_argument("--train-frames", choices=("decode", "render"), default="decode",
                    help="train videos: decode = mp4 files generated first, then decoded; render = frames rendered "
                         "without a file (data.frames), so any number of distinct videos costs no disk and no "
                         "generation step; with several --epochs either is prepared once and cached on the GPU")
    ap.add_argument("--train-workers", type=int, default=None,
                    help="the trainer's data.workers (default --workers); with --train-frames render, 0 renders "
                         "every video by torch on the GPU in the trainer's process instead of in worker processes")
    ap.add_argument("--prompt-order", choices=("video-first", "query-first"), default="video-first",
                    help="the model's chat template: the shipped one (the video, then the prompt with the query) or "
                         "the prompt with the query first, then the video (QUERY_FIRST_CHAT_TEMPLATE)")
    ap.add_argument("--prompt", default="tempsamp-r1-plain",
                    help="the prompt the model is trained and evaluated with (tempbench.prompts: tempsamp-r1-plain, "
                         "the paper's; query-only, the query alone); the zoo entry must name the shipped model's")
    ap.add_argument("--hard-filter", choices=("all", "colour", "two-colour"), default="all",
                    help="which synthetic-hard train videos: all (the first --train-hard of the train seed), or the "
                         "first --train-hard whose query names the object by colour alone (colour), with two objects "
                         "(two-colour): a curriculum's first stage, continued with --init-weights")
    ap.add_argument("--every-object", action="store_true",
                    help="train on every object of each synthetic-hard train video, each named by a query that fits "
                         "it alone (Scene.object_records): the same video with answers only the query tells apart")
    ap.add_argument("--text-layers", type=int, default=None,
                    help="decoder layers of the language model (the shipped architecture: 4)")
    ap.add_argument("--text-intermediate", type=int, default=None,
                    help="with --text-layers: the MLP width (shipped: 768; 6 layers x 512 keep the bf16 file under "
                         "10 MB)")
    ap.add_argument("--word-tokens", action="store_true",
                    help="one token each for the words that name the objects (TASK_WORDS: the 6 colours, 2 shapes, "
                         "'object'), merges added to the shipped tokenizer (tempbench.models.qwen.tiny.add_word_tokens)"
                         "; the byte-level pieces otherwise (' yellow' = ' ', 'y', 'e', 'l', 'l', 'ow')")
    ap.add_argument("--think", choices=("none", "objects", "objects-marked"), default="none",
                    help="the answer's reasoning: none (the answer alone); objects: <think> every object of the "
                         "video in the order it appears, by colour, shape and span (Scene.description) </think>, "
                         "then the answer (the query picks an entry by its words); objects-marked: each entry also "
                         "says yes (the object the query names) or no. Needs a CoT --prompt (tempsamp-r1-cot)")
    ap.add_argument("--eval-batch", type=int, default=64)
    ap.add_argument("--eval-limit", type=int, default=None, help="evaluate the first N queries only")
    ap.add_argument("--max-new-tokens", type=int, default=None,
                    help="evaluation's generation limit (default 48; 128 with --think: up to 81 tokens, 90 marked)")
    ap.add_argument("--workers", type=int, default=max(1, min(15, (os.cpu_count() or 2) - 1)))
    ap.add_argument("--smoke", action="store_true", help="CPU smoke test: tiny network, few videos and steps")
    if ap.parse_known_args(argv)[0].smoke:  # smoke-test sizes, unless given explicitly
        ap.set_defaults(train_synthetic=6, train_hard=6, epochs=2, batch=2, checkpoints=2, eval_limit=3,
                        eval_batch=4, max_new_tokens=6, workers=1, warmup_steps=1, max_train_seconds=0)
    args = ap.parse_args(argv)
    if args.max_new_tokens is None:
        args.max_new_tokens = 48 if args.think == "none" else 128
    from tempbench.prompts import get_prompt

    if (args.think != "none") != get_prompt(args.prompt).cot:
        ap.error(f"--prompt {args.prompt} with --think {args.think}: --think needs a CoT prompt "
                 "(tempsamp-r1-cot) and a CoT prompt needs --think")
    if args.init_weights is not None:
        from tempbench.io import sha256_file as _sha

        if not args.init_weights.is_file():
            ap.error(f"--init-weights {args.init_weights}: no such file")
        if args.init_sha256 is None:
            ap.error("--init-weights needs --init-sha256 (the sha256 of the earlier stage's weights)")
        got = _sha(args.init_weights)
        if got != args.init_sha256:
            ap.error(f"--init-weights {args.init_weights}: sha256 {got} is not --init-sha256 {args.init_sha256}")
    out = args.out.resolve()
    work = (args.work or out.parent / "tb-tiny-work").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    os.environ["TEMPBENCH_HOME"] = str(home)

    import torch
    import transformers

    import tempbench
    from tempbench.io import git_revision, sha256_file
    from tempbench.tasks import get_task, synthetic

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    log("benchmarks/train_tiny_synthetic.py " + " ".join(sys.argv[1:] if argv is None else argv))
    log(f"device {device}, torch {torch.__version__}, transformers {transformers.__version__}, work {work}")
    res: dict = {
        "produced_by": "benchmarks/train_tiny_synthetic.py", "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "tempbench_version": tempbench.__version__, "git_revision": git_revision(), "device": device,
        "cpu_count": os.cpu_count(), "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "targets": {"heldout_mIoU": TARGETS, "max_failure_rate": MAX_FAILURE_RATE}, "timings": {},
    }

    # 1. data
    t0 = time.perf_counter()
    train_records = generate_data(work, home, args)
    train_file = write_train_set(work, train_records)
    n_train = sum(len(r) for r in train_records.values())
    res["data"] = {"train": {n: len(r) for n, r in train_records.items()}, "train_file": str(train_file),
                   "train_seeds": {n: get_task(n).split_card("train")["seed"] for n in TASKS},
                   "eval_splits": {n: {s: get_task(n).split_size(s) for s in EVAL_SPLITS}
                                   for n in TASKS}}
    res["timings"]["data_s"] = time.perf_counter() - t0
    res["init"] = ({"weights": str(args.init_weights), "sha256": args.init_sha256} if args.init_weights is not None
                   else {"seed": args.seed})

    # 2. baselines that use no video: the train windows' prior and the centre window
    baselines: dict = {n: {} for n in TASKS}
    for name in TASKS:
        # fitted to the train windows of the recipe, or to the card's train split for a task it does not train on
        fit = train_records[name] or synthetic.generate(work / "train" / f"{name}-card", "train", name,
                                                         videos=False)["records"]
        for kind in ("prior", "center"):
            baselines[name][kind] = {s: evaluate(f"baseline:{kind}", name, s, work, args, f"baseline-{kind}",
                                                 {"train_records": fit}) for s in EVAL_SPLITS}
        log(f"baselines {name} heldout mIoU: prior {baselines[name]['prior']['heldout']['metrics']['mIoU']:.1f}, "
            f"centre {baselines[name]['center']['heldout']['metrics']['mIoU']:.1f}")
    res["baselines"] = baselines

    # 3. model and training
    init = build_init_model(work, args)
    cfg = recipe(args, train_file, work / "train" / "videos", n_train)
    res["recipe"] = cfg
    summary = train(work, init, cfg, cuda)
    res["timings"]["train_s"] = summary["wall_seconds"]
    res["train"] = {k: summary.get(k) for k in ("global_step", "micro_steps", "seconds", "stopped_early",
                                                   "checkpoints")}
    res["train"]["config_toml"] = (work / "sft" / "train_config.toml").read_text()
    log_rows = read_log(work / "sft" / "train_log.jsonl")
    res["curves"] = {"step": [r["step"] for r in log_rows], "loss": [r["loss"] for r in log_rows],
                     "lr": [r["lr"] for r in log_rows], "grad_norm": [r.get("grad_norm") for r in log_rows],
                     "elapsed_s": [round(r["elapsed_s"], 3) for r in log_rows]}
    with open(work / "sft" / "train_log.jsonl", "rb") as src, gzip.open(out / "train_log.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)

    # 4. selection on val, among the evenly spaced checkpoints and the last one (not the end-of-epoch ones)
    t0 = time.perf_counter()
    every = cfg["log"]["save_steps"]
    candidates = [ck for ck in summary["checkpoints"]
                  if int(Path(ck).name.split("-")[1]) % every == 0 or ck == summary["checkpoints"][-1]]
    val_rows, best = select_checkpoint(candidates, work, args)
    res["val"] = [{"checkpoint": r["checkpoint"], "step": r["step"], "mean_mIoU": r["mean_mIoU"],
                   **{n: {k: r[n][k] for k in ("n", "metrics", "ci95", "failure_rate", "picks") if k in r[n]}
                      for n in TASKS}}
                  for r in val_rows]
    res["selected"] = {"checkpoint": best["checkpoint"], "step": best["step"], "mean_val_mIoU": best["mean_mIoU"],
                       "rule": "highest mean val mIoU over both tasks (later step on ties)"}
    res["timings"]["select_s"] = time.perf_counter() - t0

    # 5. export bf16, then held-out and test with the exported weights (float32 compute, as on a CPU)
    t0 = time.perf_counter()
    package = export_package(work / "sft" / best["checkpoint"], work / "model-files", work / "tiny-synthetic", args)
    shutil.copy2(package / "model.safetensors", out / "model.safetensors")
    weights = out / "model.safetensors"
    res["weights"] = {"file": weights.name, "bytes": weights.stat().st_size, "sha256": sha256_file(weights),
                      "parameters": count_parameters(weights), "dtype": "bfloat16",
                      "from_checkpoint": best["checkpoint"]}
    log(f"weights: {weights} ({weights.stat().st_size / 1e6:.2f} MB, sha256 {res['weights']['sha256']})")
    # the package's other files, whole (install_tiny_synthetic.py writes them beside the weights)
    res["package_files"] = {f.name: {"sha256": sha256_file(f), "text": f.read_bytes().decode("utf-8")}
                            for f in sorted(package.iterdir()) if f.name != "model.safetensors"}
    res["model"] = {n: {s: evaluate(str(package), n, s, work, args, "tiny-synthetic", {"dtype": "float32"})
                        for s in ("heldout", "test")} for n in TASKS}
    res["timings"]["final_eval_s"] = time.perf_counter() - t0
    checks = {}
    for name in TASKS:
        h = res["model"][name]["heldout"]
        checks[name] = {"mIoU": h["metrics"]["mIoU"], "target": TARGETS[name], "failure_rate": h["failure_rate"],
                        "met": h["metrics"]["mIoU"] >= TARGETS[name] and h["failure_rate"] <= MAX_FAILURE_RATE}
        log(f"heldout {name}: mIoU {h['metrics']['mIoU']:.2f} {h['ci95'].get('mIoU')} R1@0.5 "
            f"{h['metrics']['R1@0.5']:.2f}, failures {h['failure_rate']:.2f}% (target {TARGETS[name]}: "
            f"{'met' if checks[name]['met'] else 'NOT met'}); centre baseline "
            f"{baselines[name]['center']['heldout']['metrics']['mIoU']:.2f}")
    res["targets"]["checks"] = checks
    res["targets"]["all_met"] = all(c["met"] for c in checks.values())

    figure(out / "curves.png", log_rows, val_rows, baselines, best)
    res["timings"]["total_s"] = time.perf_counter() - T0
    (out / "train_tiny_synthetic.json").write_text(json.dumps(res, indent=2) + "\n")
    log(f"done in {res['timings']['total_s']:.0f} s; targets {'met' if res['targets']['all_met'] else 'NOT met'}")
    (out / "log.txt").write_text("\n".join(LOG) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
