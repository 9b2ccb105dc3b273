"""`tempbench run` against the stock per-sample loop on query shapes like the real benchmarks' (issue 16, item 4).

Scenarios (`--scenario charades`, `--scenario anet`, or both, comma separated): synthetic videos whose durations and
queries per video follow Charades-STA test / ActivityNet Captions val_2 (`benchmarks/query_shapes.json`: a fixed,
deterministic subset of `--videos` videos, `query_shapes.scenario`), on the Qwen2.5-VL-7B architecture with random
bf16 weights (`bench_run_gpu.build_random_7b`), 2 fps under the TempSamp-R1 pixel budget, batch 16. Answer lengths
(`--answers short,cot`): `short` = exactly 32 new tokens with the plain prompt, `cot` = exactly 256 with the CoT
prompt (min = max, so random weights cannot end an answer early). Per answer length, in this one process:

1. the stock loop: `bench_run_gpu.per_sample_loop` (decode, preprocess, `model.generate` with batch 1, transformers'
   stock vision attention), unchanged, on a fixed subset of the same queries (`--stock-queries`, evenly spaced in qid
   order), after one warm-up query;
2. checks on the first full batch of the run's own plan (`tempbench.batching.plan_batches`), with the benchmark's own
   copy of the model: tempbench's token loop with per-video prefix sharing against the same loop without it (token
   ids per query: `outputs_identical`), and, for `short`, the decode step of every step backend;
3. `tempbench run` over all the scenario's queries (the real runner: prefetch workers, queries grouped by video,
   shared prefixes, tempbench's own decoder `--decoder`), which loads the model again like a user would; nothing is
   warmed up for it: CUDA-graph captures and first-batch costs are in its time. The adapter records each batch's
   shape and synchronised stage seconds (model arg `stage_times=true`, `run.json` model.info.decoding.batches).

Also measured in the same process: the bf16 matmul peak (8192^3, `peak_tflops_measured`) and the memory bandwidth
(a 4 GiB device copy, `bandwidth_gb_s_measured`), which the FLOP shares and the decode-step bound are relative to.
Executed FLOPs are counted from the recorded shapes (`flops_*` below): each video's prefix once per batch it is in,
each query's suffix, each decoded token.

    python benchmarks/bench_shapes_gpu.py --scenario charades --out $OUT/shapes_charades.json
    python benchmarks/bench_shapes_gpu.py --scenario anet --videos 24 --out $OUT/shapes_anet.json
    python benchmarks/bench_shapes_gpu.py --merge shapes_charades.json shapes_anet.json \\
        --out docs/results/bench_run_gpu_h200.json
    python benchmarks/bench_shapes_gpu.py --tiny --out /tmp/shapes_tiny.json     # CPU smoke test, tiny model

`--merge` merges blocks of one scenario answer length by answer length: a command cut by its time limit (its
`complete` false; what it finished is saved after each answer length) plus a command that ran only what was
missing (`--scenario anet --answers cot`) make one file; the merged file lists each command under `commands` and
is `complete` when every scenario has both answer lengths (`--note` adds a note).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ANSWERS = {"short": (32, "tempsamp-r1-plain"), "cot": (256, "tempsamp-r1-cot")}  # new tokens, prompt
TINY_TOKENS = {"short": 4, "cot": 8}
VIDEO_FORMAT = {"charades": ((480, 360), 24), "anet": ((640, 360), 30)}  # (width, height), fps of the synthetic files
DEFAULT_VIDEOS = {"charades": 48, "anet": 24}
QUERY_WORDS = {"charades": 8, "anet": 14}  # about the mean length of the official queries, in words
WORDS = ("person opens the door then walks across the room holding a cup of coffee and sits down on the sofa "
         "while another man throws a ball towards the camera near the window").split()
NOMINAL_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16, SXM


# --------------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelShape:
    """What the FLOP and byte counts need of a Qwen2.5-VL model: parameter counts by part and attention sizes."""

    vision: int  # vision tower without its merger
    merger: int  # the patch merger (runs on patches / 4 tokens)
    body: int  # language model without the input embedding and the output head
    head: int  # output head (vocab x hidden)
    layers: int
    hidden: int  # attention width (heads x head_dim)
    kv_width: int  # kv heads x head_dim
    bytes_per_param: int

    @classmethod
    def of(cls, model) -> ModelShape:
        cfg = model.config.get_text_config()
        vision = merger = embed = total = 0
        seen = set()
        for name, p in model.named_parameters(remove_duplicate=False):
            if id(p) in seen and "lm_head" not in name:
                continue
            seen.add(id(p))
            n = p.numel()
            if ".visual." in f".{name}":
                if ".merger." in name:
                    merger += n
                else:
                    vision += n
            elif "embed_tokens" in name:
                embed += n
            elif "lm_head" not in name:
                total += n
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(vision=vision, merger=merger, body=total, head=cfg.vocab_size * cfg.hidden_size,
                   layers=cfg.num_hidden_layers, hidden=cfg.num_attention_heads * head_dim,
                   kv_width=cfg.num_key_value_heads * head_dim,
                   bytes_per_param=next(model.parameters()).element_size())

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --------------------------------------------------------------------------------------------------- FLOPs (pure)


def flops_vision(m: ModelShape, patches: int) -> float:
    """The vision tower's matmuls over `patches` (the merger over patches / 4); its attention is left out."""
    return 2.0 * m.vision * patches + 2.0 * m.merger * patches / 4


def flops_prefill(m: ModelShape, tokens: int, past: int = 0) -> float:
    """Prefill of `tokens` new tokens after `past` cached ones (logits of the last one only): matmuls, plus causal
    attention (QK^T and AV: 4 x width per attended pair, each token attends to `past` + the tokens up to itself)."""
    pairs = tokens * past + tokens * (tokens + 1) / 2
    return 2.0 * m.body * tokens + 2.0 * m.head + 4.0 * m.layers * m.hidden * pairs


def flops_decode(m: ModelShape, context: int, steps: int) -> float:
    """`steps` decode steps of one row whose prompt holds `context` tokens (step k attends to context + k + 1)."""
    pairs = steps * context + steps * (steps + 1) / 2
    return 2.0 * (m.body + m.head) * steps + 4.0 * m.layers * m.hidden * pairs


def flops_of_batch(m: ModelShape, b: dict) -> dict:
    """Executed FLOPs of one recorded batch (`DecodeStats.batches` entry) by stage: each prefix once, each suffix,
    each decode step (new_tokens - 1 steps per row: the first token comes from the prefill's logits)."""
    prefix = [int(p) for p in b["prefix_tokens"]]
    row_prefix = [prefix[g] for g in b["group_of"]]
    steps = max(0, int(b["new_tokens"]) - 1)
    out = {"vision": sum(flops_vision(m, int(p)) for p in b["patches"]),
           "prefix": sum(flops_prefill(m, p) for p in prefix),
           "suffix": sum(flops_prefill(m, int(s), int(p)) for s, p in zip(b["suffix_tokens"], row_prefix)),
           "decode": sum(flops_decode(m, int(s) + int(p), steps) for s, p in zip(b["suffix_tokens"], row_prefix))}
    return out


def kv_bytes(m: ModelShape, contexts: list[float]) -> float:
    """Bytes of K and V over all layers for rows holding `contexts` tokens each."""
    return 2.0 * m.layers * m.kv_width * m.bytes_per_param * sum(contexts)


# --------------------------------------------------------------------------------------------------- device rates


def measure_device(cuda: bool) -> dict:
    """bf16 matmul peak (8192^3; CPU: 1024^3 float32) and copy bandwidth (4 GiB; CPU: 64 MiB), best of the runs."""
    import torch

    dev = "cuda" if cuda else "cpu"
    n = 8192 if cuda else 1024
    dtype = torch.bfloat16 if cuda else torch.float32
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def best(fn, reps, rounds=3):
        fn()
        sync()
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(reps):
                fn()
            sync()
            times.append((time.perf_counter() - t) / reps)
        return min(times)

    def matmul_seconds() -> float:
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        return best(lambda: a @ b, 20 if cuda else 2)

    def copy_seconds(size: int) -> float:
        x = torch.empty(size // 2, device=dev, dtype=torch.bfloat16).fill_(1)
        y = torch.empty_like(x)
        return best(lambda: y.copy_(x), 10 if cuda else 3)

    size = (4 << 30) if cuda else (64 << 20)
    t_mm = matmul_seconds()
    t_cp = copy_seconds(size)
    if cuda:
        torch.cuda.empty_cache()
    return {"matmul": f"{n}^3 {str(dtype).replace('torch.', '')}", "peak_tflops_measured": 2 * n**3 / t_mm / 1e12,
            "copy_bytes": size, "bandwidth_gb_s_measured": 2 * size / t_cp / 1e9}


# --------------------------------------------------------------------------------------------------- videos


def _write_one(job: tuple) -> None:
    """One synthetic H.264 file of `seconds`, streamed frame by frame (a scrolling texture and a moving square)."""
    import av
    import numpy as np

    path, seconds, (w, h), fps, seed = job
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, size=(h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    tex = np.kron(small, np.ones((16, 16, 1), dtype=np.uint8))
    tex = np.concatenate([tex, tex], axis=1)
    n = max(2, int(round(seconds * fps)))
    side = max(8, h // 6)
    y0, x0, vy, vx = int(rng.integers(0, h - side)), int(rng.integers(0, w - side)), 2, 3
    tmp = Path(str(path) + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as out:
        stream = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "veryfast", "crf": "23"} if stream.codec_context.name == "libx264" else {}
        for k in range(n):
            dx = (k * 2) % w
            img = np.ascontiguousarray(tex[:h, dx:dx + w])
            y, x = (y0 + k * vy) % (2 * (h - side)), (x0 + k * vx) % (2 * (w - side))
            y, x = min(y, 2 * (h - side) - y), min(x, 2 * (w - side) - x)
            img[y:y + side, x:x + side] = (230, 40, 40)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)


def make_scenario(folder: Path, task: str, n_videos: int, size, fps: int, workers: int) -> list[dict]:
    """Write the scenario's videos and `annotations.jsonl` (unified records; qids in file order, each video's queries
    consecutive, as in the official files) into `folder` unless they are there; returns the records."""
    from concurrent.futures import ProcessPoolExecutor

    from query_shapes import scenario

    ann = folder / "annotations.jsonl"
    if ann.exists():
        return [json.loads(x) for x in ann.read_text().splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    shape = scenario(task, n_videos)
    jobs, records = [], []
    words = QUERY_WORDS[task]
    for i, (duration, queries) in enumerate(shape):
        vid = f"{task}{i:03d}"
        jobs.append((folder / f"{vid}.mp4", duration, size, fps, 1000 + i))
        for j in range(queries):
            start = (j * 0.13 * duration) % (0.7 * duration)
            text = " ".join(WORDS[(7 * i + 3 * j + k) % len(WORDS)] for k in range(words))
            records.append({"qid": len(records), "vid": vid, "query": text, "duration": float(duration),
                            "windows": [[round(start, 2), round(min(duration, start + 0.25 * duration), 2)]]})
    jobs.sort(key=lambda j: -j[1])  # longest first: the pool finishes sooner
    import multiprocessing

    # spawned (this process may already hold a CUDA context)
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_write_one, jobs))
    ann.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def spaced(items: list, k: int) -> list:
    """`k` items at evenly spaced positions (the middle of k equal slices): a fixed subset."""
    n = len(items)
    k = min(k, n)
    return [items[min(n - 1, int((i + 0.5) * n / k))] for i in range(k)]


# --------------------------------------------------------------------------------------------------- one scenario


def _inputs(adapter, records, videos: Path, vs, prompt) -> list:
    """Model inputs exactly as the runner builds them (its video loader, its prompt rendering)."""
    from tempbench.models.base import ModelInput
    from tempbench.prompts import render
    from tempbench.runner import VideoLoader

    loader = VideoLoader(videos, vs, adapter.video_preprocessor, True)
    cache = {}
    out = []
    for r in records:
        if r["vid"] not in cache:
            cache[r["vid"]] = loader(r)
        out.append(ModelInput(clip=cache[r["vid"]], prompt=render(prompt, r["query"], r["duration"]), qid=r["qid"],
                              meta={"vid": r["vid"], "duration": r["duration"]}))
    return out


def _ids(adapter, items, *, share: bool, decoder: str) -> tuple[list[list[int]], dict]:
    """Token ids per query from tempbench's loop with the given sharing and step backend, and the batch's record."""
    adapter.share_prefix, adapter.decoder = share, decoder
    adapter.decode_stats.record = True
    ids = adapter.generate_ids(items)
    rec = adapter.decode_stats.batches[-1]
    return [[int(t) for t in row] for row in ids.tolist()], rec


def _agreement(a: list[list[int]], b: list[list[int]]) -> dict:
    same = [x == y for x, y in zip(a, b)]
    first = [next((k for k, (s, t) in enumerate(zip(x, y)) if s != t), min(len(x), len(y)))
             for x, y in zip(a, b) if x != y]
    return {"all": all(same), "queries": len(same), "identical": sum(same), "fraction": sum(same) / len(same),
            "first_difference_at": first}


def step_time(rec: dict) -> float:
    """Seconds per decode step of a recorded batch (graph capture left out)."""
    steps = max(1, int(rec["new_tokens"]) - 1)
    return (rec["seconds"]["decode"] - rec["seconds"].get("capture", 0.0)) / steps


def step_bound(m: ModelShape, rec: dict, bandwidth: float) -> dict:
    """(LM weight bytes + the batch's KV bytes at the middle of the answer) / bandwidth, for a recorded batch."""
    contexts = [rec["prefix_tokens"][g] + s + rec["new_tokens"] / 2
                for g, s in zip(rec["group_of"], rec["suffix_tokens"])]
    weights = float(m.body + m.head) * m.bytes_per_param
    kv = kv_bytes(m, contexts)
    return {"weight_bytes": weights, "kv_bytes": kv, "bound_seconds": (weights + kv) / bandwidth}


def run_answers(name: str, *, adapter, model_dir: Path, records, videos: Path, vs, args, shape: ModelShape,
                device: dict, work: Path, cuda: bool) -> dict:
    import torch
    from bench_run_gpu import per_sample_loop

    from tempbench.batching import plan_batches
    from tempbench.models.base import GenerationSettings
    from tempbench.models.qwen.vision_attention import (
        install_fast_vision_tower,
        uninstall_fast_vision_tower,
    )
    from tempbench.prompts import load_prompt
    from tempbench.runner import run as tb_run

    new_tokens = TINY_TOKENS[name] if args.tiny else ANSWERS[name][0]
    if args.new_tokens and name in args.new_tokens:
        new_tokens = args.new_tokens[name]
    prompt = ANSWERS[name][1]
    adapter.generation = GenerationSettings(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    peak = device["peak_tflops_measured"] * 1e12
    bw = device["bandwidth_gb_s_measured"] * 1e9
    out: dict = {"new_tokens": new_tokens, "prompt": prompt, "queries": len(records),
                 "videos": len({r["vid"] for r in records}), "batch_size": args.batch_size, "decoder": args.decoder}

    # 1. the stock loop on a fixed subset, after one warm-up query
    subset = spaced(records, args.stock_queries[name])
    uninstall_fast_vision_tower(adapter.model)  # transformers' stock vision attention, as published scripts
    if not getattr(adapter, "_bench_warm", False):  # kernels and allocator, once per process
        per_sample_loop(adapter, subset[:1], videos, vs, {"vision_patches": 0, "prompt_tokens": 0}, prompt=prompt)
        adapter._bench_warm = True
    tokens = {"vision_patches": 0, "prompt_tokens": 0, "per_query": []}
    t_stock, mem_stock = per_sample_loop(adapter, subset, videos, vs, tokens, prompt=prompt)
    install_fast_vision_tower(adapter.model)
    stock_flops = sum(flops_vision(shape, p) + flops_prefill(shape, n) + flops_decode(shape, n, new_tokens - 1)
                      for p, n in tokens["per_query"])
    print(f"[{name}] stock loop: {len(subset)} queries in {t_stock:.1f}s", flush=True)

    # 2. sharing against no sharing, and the step backends, on the run's first full batch
    plan = plan_batches(records, args.batch_size)
    first = max(plan, key=len)
    items = _inputs(adapter, first.records, videos, vs, load_prompt(prompt))
    try:
        shared, rec_shared = _ids(adapter, items, share=True, decoder=args.decoder)
    except Exception as exc:  # the chosen step backend fails here: say so, and measure with the static step
        if args.decoder == "static":
            raise
        out["decoder_failed"] = f"{args.decoder}: {type(exc).__name__}: {exc}"[:300]
        print(f"[{name}] decoder {args.decoder} failed ({exc}); using static", flush=True)
        args.decoder = out["decoder"] = "static"
        shared, rec_shared = _ids(adapter, items, share=True, decoder=args.decoder)
    unshared, rec_unshared = _ids(adapter, items, share=False, decoder=args.decoder)
    agreement = _agreement(shared, unshared)
    agreement["compared"] = (f"tempbench's loop ({args.decoder}) with per-video prefix sharing vs without, token ids "
                             f"per query, {str(adapter.dtype).replace('torch.', '')}, the run's first full batch "
                             f"({len(items)} queries over {len(first.parts)} videos)")
    backends = {args.decoder: rec_shared}
    if name == "short":
        for backend in ("dynamic", "static", "cuda-graph"):
            if backend not in backends:
                try:  # a backend that fails here is reported, and the benchmark goes on
                    ids, rec = _ids(adapter, items, share=True, decoder=backend)
                except Exception as exc:
                    backends[backend] = f"{type(exc).__name__}: {exc}"[:300]
                    continue
                backends[backend] = rec
                agreement.setdefault("backends_vs_" + args.decoder, {})[backend] = _agreement(shared, ids)["fraction"]
    adapter.share_prefix, adapter.decoder = True, args.decoder
    print(f"[{name}] checks: shared == unshared on {agreement['identical']}/{agreement['queries']}", flush=True)

    # 3. tempbench run (the real runner), nothing warmed up for it
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated() / 2**30 if cuda else 0.0  # the benchmark's own copy of the model
    run_dir = work / f"run-{name}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = tb_run(str(model_dir), annotations=records_file(work, records), videos=videos, out_dir=run_dir,
                     batch_size=args.batch_size, prompt=prompt, video_settings=vs.to_dict(),
                     generation={"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}, progress=False,
                     score=True, prefetch="thread" if args.tiny else "process",
                     model_options={"decoder": args.decoder, "stage_times": True})
    t_total = time.perf_counter() - t0
    mem_run = torch.cuda.max_memory_allocated() / 2**30 - held if cuda else None
    outcome = summary.config.outcome
    decoding = dict(summary.config.model.info.get("decoding", {}))
    batches = decoding.pop("batches", [])
    print(f"[{name}] tempbench run: {len(records)} queries in {outcome.seconds:.1f}s", flush=True)

    # FLOPs and stage seconds of the run, from its recorded batches
    fl = {"vision": 0.0, "prefix": 0.0, "suffix": 0.0, "decode": 0.0}
    stages = {"plan": 0.0, "prefix_prefill": 0.0, "suffix_prefill": 0.0, "decode": 0.0, "capture": 0.0}
    vision_seconds = 0.0  # the vision tower's part of prefix_prefill (timed by hooks on it)
    for b in batches:
        for k, v in flops_of_batch(shape, b).items():
            fl[k] += v
        for k in stages:
            stages[k] += float(b["seconds"].get(k, 0.0))
        vision_seconds += float(b["seconds"].get("vision") or 0.0)
    total_flops = sum(fl.values())
    prefill_seconds = stages["prefix_prefill"] + stages["suffix_prefill"]
    lm_prefix_seconds = stages["prefix_prefill"] - vision_seconds
    in_model = sum(stages.values()) - stages["capture"]  # generate_ids (capture is inside decode)
    qps_stock = len(subset) / t_stock
    qps_run = outcome.queries_per_s
    full = [b for b in batches if b["rows"] == args.batch_size] or batches
    steps = [step_time(b) for b in full]
    bound = step_bound(shape, full[len(full) // 2], bw) if full else None
    by_backend = {}
    for backend, rec in backends.items():
        if isinstance(rec, str):
            by_backend[backend] = {"error": rec}
            continue
        bb = step_bound(shape, rec, bw)
        by_backend[backend] = {"step_seconds": step_time(rec), "bound_seconds": bb["bound_seconds"],
                               "ratio_to_bound": step_time(rec) / bb["bound_seconds"], "rows": rec["rows"],
                               "backend_used": rec["backend"], "capture_seconds": rec["seconds"].get("capture", 0.0)}
    out.update({
        "queries_per_s": {"stock_loop": qps_stock, "tempbench_run": qps_run},
        "speedup_vs_stock_loop": qps_run / qps_stock,
        "seconds": {"stock_loop": t_stock, "tempbench_run": outcome.seconds,
                    "tempbench_run_model_seconds": outcome.model_seconds,
                    "tempbench_run_with_model_load_and_scoring": t_total},
        "stock_loop_queries": [r["qid"] for r in subset],
        "peak_gib": {"stock_loop": mem_stock, "tempbench_run": mem_run,
                     "note": "tempbench_run: above what the benchmark's own copy of the model holds"},
        "flops": {**fl, "total": total_flops, "stock_loop_per_query": stock_flops / len(subset),
                  "tempbench_run_per_query": total_flops / len(records)},
        "flop_share": {
            "prefill": (fl["vision"] + fl["prefix"] + fl["suffix"]) / (prefill_seconds * peak) if prefill_seconds
            else None,
            "end_to_end": total_flops / (outcome.seconds * peak),
            "end_to_end_stock_loop": stock_flops / (t_stock * peak),
            "by_stage": {
                "vision": fl["vision"] / (vision_seconds * peak) if vision_seconds else None,
                "language_model_prefix": fl["prefix"] / (lm_prefix_seconds * peak) if vision_seconds else None,
                "suffix": fl["suffix"] / (stages["suffix_prefill"] * peak) if stages["suffix_prefill"] else None},
            "relative_to": "bf16 matmul peak measured in this run",
            "end_to_end_of_nominal_peak": total_flops / (outcome.seconds * device["peak_tflops_nominal"] * 1e12),
        },
        "stage_seconds": {**stages, "vision_in_prefix_prefill": vision_seconds, "in_model": in_model,
                          "not_in_model": outcome.seconds - in_model,
                          "batches": len(batches)},
        "decode_step_batch16": {
            "rows": full[0]["rows"] if full else None, "backend": decoding.get("backend"),
            "step_seconds_median": statistics.median(steps) if steps else None,
            **(bound or {}),
            "ratio_to_bound": statistics.median(steps) / bound["bound_seconds"] if steps and bound else None,
            "bandwidth_gb_s": bw / 1e9, "by_backend_first_batch": by_backend,
        },
        "outputs_identical": agreement,
        "decoding": decoding,
        "result_failure_rate": summary.result.failure_rate,
    })
    return out


def records_file(work: Path, records: list[dict]) -> Path:
    path = work / "queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_scenario(task: str, *, args, model_dir: Path, device: dict, cuda: bool, save=None) -> dict:
    """One scenario's figures; `save(partial)` is called after each answer length (a command cut by its time limit
    keeps what it measured)."""
    from tempbench.models.base import GenerationSettings
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.video import VideoSettings

    t0 = time.perf_counter()
    work = args.work / task
    (size, fps) = ((128, 96), 8) if args.tiny else VIDEO_FORMAT[task]
    n_videos = args.videos.get(task) or (3 if args.tiny else DEFAULT_VIDEOS[task])
    videos = work / "videos"
    records = make_scenario(videos, task, n_videos, size, fps, workers=max(1, (os.cpu_count() or 2) - 1))
    t_videos = time.perf_counter() - t0
    vs = VideoSettings(fps=1.0, total_pixels=256 * 28 * 28, max_pixels=64 * 28 * 28) if args.tiny else VideoSettings()
    adapter = HFQwenVL(str(model_dir), generation=GenerationSettings(), video_settings=vs, decoder=args.decoder)
    shape = ModelShape.of(adapter.model)
    per = Counter(r["vid"] for r in records)
    durations = {r["vid"]: r["duration"] for r in records}
    out = {"scenario": task, "split": {"charades": "Charades-STA test", "anet": "ActivityNet Captions val_2"}[task],
           "videos": len(per), "queries": len(records), "mean_duration": sum(durations.values()) / len(durations),
           "queries_per_video": {str(k): sum(1 for n in per.values() if n == k) for k in sorted(set(per.values()))},
           "video_format": {"size": list(size), "fps": fps, "codec": "H.264 (libx264 veryfast, default GOP)"},
           "sampling": vs.to_dict(), "model_shape": shape.to_dict(), "setup_seconds": {"videos": t_videos}}
    for name in args.answers:
        out[name] = run_answers(name, adapter=adapter, model_dir=model_dir, records=records, videos=videos, vs=vs,
                                args=args, shape=shape, device=device, work=work, cuda=cuda)
        if save is not None:
            save(out)
    adapter.close()
    out["seconds"] = time.perf_counter() - t0
    return out


NESTED_KEY = {"anet": "activitynet"}  # the key of a scenario below the top one (else its own name)
COMMAND_KEYS = ("commands", "command_seconds", "complete", "note")  # about a whole command or a merged file


def _blocks(d: dict) -> list[dict]:
    """The scenario blocks of a results dict, the top one first, each without the blocks nested in it."""
    nested = [v for v in d.values() if isinstance(v, dict) and "scenario" in v]
    top = {k: v for k, v in d.items() if not (isinstance(v, dict) and "scenario" in v) and k not in COMMAND_KEYS}
    return [top] + [b for v in nested for b in _blocks(v)]


def merge(primary: dict, others: list[dict]) -> dict:
    """One results file: the first scenario's figures at the top (`short`, `cot`), the others under their name
    (`activitynet` for anet). Blocks of the same scenario are merged answer length by answer length, so a command
    cut by its time limit plus a command that ran only the missing answer length make one scenario: an answer
    length that comes from another command than its scenario block keeps that command's `produced_by` and
    `device_rates` in it (its FLOP shares and bound are relative to them); a later file's answer length replaces
    an earlier one's."""
    import copy

    blocks: list[dict] = []
    for d in [primary, *others]:
        for b in _blocks(copy.deepcopy(d)):
            same = next((x for x in blocks if x["scenario"] == b["scenario"]), None)
            if same is None:
                blocks.append(b)
                continue
            for name in ANSWERS:
                if name in b:
                    ans = b[name]
                    if b.get("produced_by") != same.get("produced_by"):
                        ans.setdefault("produced_by", b.get("produced_by"))
                        ans.setdefault("device_rates", b.get("device_rates"))
                    same[name] = ans
    out = blocks[0]
    for b in blocks[1:]:
        out[NESTED_KEY.get(b["scenario"], b["scenario"])] = b
    return out


def merge_files(parts: list[dict], note: str | None = None) -> dict:
    """`--merge`: `merge` of whole files, plus `commands` (each file's command, whether it ran to its end, its seconds,
    and what it holds) and `complete`: every scenario of the merged file has every answer length."""
    out = merge(parts[0], parts[1:])
    commands = []
    for d in parts:
        for c in d.get("commands") or [{"produced_by": d.get("produced_by"), "complete": d.get("complete"),
                                         "command_seconds": d.get("command_seconds")}]:
            c = dict(c)
            c.setdefault("holds", [f"{b['scenario']}.{n}" for b in _blocks(d) for n in ANSWERS if n in b])
            commands.append(c)
    out["commands"] = commands
    out["complete"] = all(n in b for b in _blocks(out) for n in ANSWERS)
    if note:
        out["note"] = note
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="charades", help="charades, anet, or both: charades,anet")
    ap.add_argument("--answers", default="short,cot", help="short (32 tokens), cot (256 tokens), or both")
    ap.add_argument("--videos", default=None,
                    help="videos per scenario: N for all, or charades=N,anet=M (default charades=48, anet=24)")
    ap.add_argument("--batch-size", type=int, default=None, help="batch size (16; --tiny: 4)")
    ap.add_argument("--stock-queries", default=None, help="stock-loop subset per answer length, e.g. short=16,cot=6")
    ap.add_argument("--new-tokens", default=None, help="override, e.g. short=32,cot=256")
    ap.add_argument("--decoder", default=None, help="tempbench run's step backend (GPU: cuda-graph; CPU: dynamic)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tb-shapes")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test with the tiny float32 model")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                    help="merge the JSON files of separate commands (the first one's figures at the top) into --out")
    ap.add_argument("--note", default=None, help="with --merge: a note stored in the merged file (e.g. why a command "
                                                   "was cut)")
    args = ap.parse_args(argv)

    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        text = json.dumps(merge_files(parts, args.note), indent=2)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
        else:
            print(text)
        return 0

    def pairs(text, cast):
        return {k: cast(v) for k, v in (x.split("=") for x in text.split(","))} if text else {}

    args.scenario = [s for s in args.scenario.split(",") if s]
    args.answers = [a for a in args.answers.split(",") if a]
    bad = [s for s in args.scenario if s not in VIDEO_FORMAT] + [a for a in args.answers if a not in ANSWERS]
    if bad:
        ap.error(f"unknown scenario or answer length: {', '.join(bad)}")
    args.stock_queries = {**({"short": 2, "cot": 1} if args.tiny else {"short": 16, "cot": 6}),
                          **pairs(args.stock_queries, int)}
    args.new_tokens = pairs(args.new_tokens, int)
    args.videos = (pairs(args.videos, int) if args.videos and "=" in args.videos
                   else dict.fromkeys(VIDEO_FORMAT, int(args.videos)) if args.videos else {})
    args.batch_size = args.batch_size or (4 if args.tiny else 16)

    import torch

    cuda = torch.cuda.is_available() and not args.tiny
    args.decoder = args.decoder or ("cuda-graph" if cuda else "dynamic")
    t0 = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(args.work / "home")
    device = measure_device(cuda)
    gpu = torch.cuda.get_device_name(0) if cuda else "cpu"
    device["peak_tflops_nominal"] = next((v for k, v in NOMINAL_PEAK_TFLOPS.items() if k in gpu), 989.0)
    print(f"device: {json.dumps(device)}", flush=True)
    if args.tiny:
        from tempbench.models.qwen.tiny import tiny_model_dir

        model_dir = tiny_model_dir(cache_dir=args.work / "tiny")
    else:
        from bench_run_gpu import build_random_7b

        model_dir = args.work / "qwen2_5_vl_7b_random"
        if not (model_dir / "config.json").exists():
            build_random_7b(model_dir)
    t_model = time.perf_counter() - t0
    common = {"gpu": gpu, "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "model": "Qwen2.5-VL-7B architecture, random bf16 weights" if not args.tiny
              else "tiny Qwen2.5-VL (float32, CPU)", "device_rates": device,
              "produced_by": "benchmarks/bench_shapes_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    results: list[dict] = []

    def write(current: dict | None = None, final: bool = False) -> dict:
        parts = [{**r, **common} for r in results + ([current] if current is not None else [])]
        for r in parts:
            r["setup_seconds"]["model"] = t_model
        out = merge(parts[0], parts[1:])
        out["command_seconds"] = time.perf_counter() - t0
        out["complete"] = final
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2) + "\n")
        return out

    for task in args.scenario:
        results.append(run_scenario(task, args=args, model_dir=model_dir, device=device, cuda=cuda, save=write))
    print(json.dumps(write(final=True), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
