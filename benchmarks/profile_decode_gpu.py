"""Where the decode step's time goes (issue 16): tempbench's static and CUDA-graph steps, stock against grouped
attention, timed, bounded and profiled on the Qwen2.5-VL-7B architecture at batch 16.

The model: `bench_run_gpu.random_7b_model` (public config values, random bf16 weights; the work per token does not
depend on weight values), kept in memory. The batch: `--rows` text-only rows of random token ids, about `--context`
tokens each, a few rows shorter and left padded (so that the mask is real), prefilled once into a dynamic cache.
Then, for each step variant (`static` and `cuda-graph` x `stock` and `grouped` attention,
`tempbench.models.qwen.decoding.STEP_ATTENTION`), a fresh step over a copy of that cache decodes `--warmup` +
`--steps` greedy tokens; each step is timed on its own between two `torch.cuda.synchronize()` (median, min, mean of
the last `--steps`; the CUDA-graph capture is in the first step, untimed). Also:

- the bound: (language-model weight bytes without the input embedding + the batch's K and V bytes at the middle of
  the timed steps) / the copy bandwidth measured in this run (`bench_shapes_gpu.measure_device`, a 4 GiB device
  copy); `kv_bytes_read` is what the static step's attention reads in fact (every preallocated slot, padding and
  later steps' slots included, masked);
- token agreement between stock and grouped attention (and between the static and graph steps) over all steps;
- `torch.profiler` over `--profile-steps` steps of each variant: the top 25 kernels by total device time (and
  the key_averages table sorted by self device time, printed and saved), kernel time and launches per step, and
  kernel time by kind (matmul, attention, copy, reduce, elementwise: by kernel name);
- the attention alone at one layer's shapes: stock (the installed transformers' sdpa function), `repeat_kv` then
  SDPA (transformers 5.17's path with a mask), grouped (SDPA auto, and each SDPA backend forced), grouped with an
  additive instead of a boolean mask, with the length rounded up to a multiple of 16, and plain matmul + softmax.

One JSON to `--out` (written after each part, `complete` true at the end) and a table on stdout.

    python benchmarks/profile_decode_gpu.py --out $OUT/profile_decode.json          # one H200, < 150 s
    python benchmarks/profile_decode_gpu.py --tiny --out /tmp/profile_decode.json   # CPU smoke test, tiny float32 model
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

VARIANTS = (("static", "stock"), ("static", "grouped"), ("cuda-graph", "stock"), ("cuda-graph", "grouped"))
KINDS = (  # kernel kind by name, first match wins
    ("attention", ("fmha", "attention", "flash", "attn", "softmax")),
    ("matmul", ("gemm", "gemv", "cutlass", "xmma", "nvjet", "cublas", "splitk", "matmul")),
    ("copy", ("copy", "memcpy", "memset", "cat", "index", "scatter", "gather", "fill")),
    ("reduce", ("reduce", "norm", "mean", "sum", "argmax")),
    ("elementwise", ("elementwise", "vectorized", "unrolled", "pointwise")),
)


def kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, words in KINDS:
        if any(w in low for w in words):
            return kind
    return "other"


def versions() -> dict:
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None}
    try:
        import accelerate

        out["accelerate"] = accelerate.__version__
    except ImportError:  # pragma: no cover
        out["accelerate"] = None
    from transformers.integrations import sdpa_attention

    # transformers >= 5.2x packs a single query token per KV head itself (pack_gqa); 5.17 expands K/V (repeat_kv)
    out["transformers_sdpa_packs_gqa"] = hasattr(sdpa_attention, "pack_gqa")
    try:
        from tempbench.io import git_revision

        out["tempbench_git"] = git_revision()
    except Exception:  # pragma: no cover
        out["tempbench_git"] = None
    return out


# --------------------------------------------------------------------------------------------------- the batch


def make_batch(rows: int, context: int, pads: list[int], vocab: int, seed: int = 0):
    """(input_ids, 2-D mask, (4, R, L) position ids, (2, R) base): random text rows, row i `pads[i]` tokens shorter
    and left padded; positions count the real tokens (text and M-RoPE rows alike)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab // 8, vocab - 64, (rows, context), generator=g)
    mask = torch.ones(rows, context, dtype=torch.long)
    for r, p in enumerate(pads[:rows]):
        mask[r, :p] = 0
        ids[r, :p] = 0
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    positions = pos[None].expand(4, rows, context).contiguous()
    n = mask.sum(1)
    base = torch.stack([n, n], 0)
    return ids, mask, positions, base


def prefill(model, ids, mask, positions, dev):
    import torch
    from transformers import DynamicCache

    from tempbench.models.qwen import decoding

    cache = DynamicCache(config=model.config.get_text_config())
    with torch.inference_mode():
        out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev),
                    use_cache=True, logits_to_keep=1, **{decoding.cache_kwarg(model): cache})
    return cache, out.logits[:, -1].float()


# --------------------------------------------------------------------------------------------------- steps


def make_variant(backend, attention, model, cache, mask, base, new_tokens, dev):
    from tempbench.models.qwen import decoding

    stats = decoding.DecodeStats()
    if backend == "cuda-graph":
        step = decoding.GraphStep(model, cache, mask.to(dev), base.to(dev), new_tokens, stats, attention)
    else:
        step = decoding.StaticStep(model, cache, mask.to(dev), base.to(dev), new_tokens, attention)
    return step, stats


def run_variant(step, first, n_steps: int, warmup: int, sync) -> tuple[list[float], list[list[int]]]:
    """Greedy tokens through `step`; seconds of each step after the first `warmup` ones, and all tokens (R, T)."""
    import torch

    tok = first.argmax(-1)
    tokens = [tok.tolist()]
    seconds = []
    with torch.inference_mode():
        for k in range(warmup + n_steps):
            sync()
            t0 = time.perf_counter()
            logits = step(tok, k)
            sync()
            if k >= warmup:
                seconds.append(time.perf_counter() - t0)
            tok = logits.float().argmax(-1)
            tokens.append(tok.tolist())
    return seconds, [list(r) for r in zip(*tokens)]


def agreement(a: list[list[int]], b: list[list[int]]) -> dict:
    firsts = []
    for x, y in zip(a, b):
        diff = [i for i, (u, v) in enumerate(zip(x, y)) if u != v]
        firsts.append(diff[0] if diff else None)
    return {"rows_identical": sum(f is None for f in firsts), "rows": len(firsts), "first_difference_at": firsts}


def profile_variant(step, first, k0: int, n: int, cuda: bool) -> dict:
    """torch.profiler over `n` steps starting at step index k0: top 25 kernels by total device time (CPU ops on a
    CPU run), the table, kernel time per step and by kind."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    tok = first.argmax(-1)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with torch.inference_mode():
        step(tok, k0)  # a graph is captured outside the profile
        sync()
        with profile(activities=acts) as prof:
            for k in range(k0 + 1, k0 + 1 + n):
                step(tok, k)
            sync()
    avg = prof.key_averages()
    rows = []
    for e in avg:
        dev_self = float(getattr(e, "self_device_time_total", 0.0) or getattr(e, "self_cuda_time_total", 0.0) or 0.0)
        kernel = "cuda" in str(getattr(e, "device_type", "")).lower() or (
            dev_self > 0 and not e.key.startswith(("aten::", "cuda", "ProfilerStep")))
        rows.append({"name": e.key, "count": int(e.count), "kernel": bool(kernel) if cuda else False,
                     "self_device_us": dev_self, "self_cpu_us": float(e.self_cpu_time_total)})
    if cuda:
        kernels = [r for r in rows if r["kernel"]]
        kernels.sort(key=lambda r: -r["self_device_us"])
        total = sum(r["self_device_us"] for r in kernels)
    else:
        kernels = sorted(rows, key=lambda r: -r["self_cpu_us"])
        total = sum(r["self_cpu_us"] for r in kernels)
    by_kind: dict[str, float] = {}
    for r in kernels:
        by_kind[kernel_kind(r["name"])] = by_kind.get(kernel_kind(r["name"]), 0.0) + (
            r["self_device_us"] if cuda else r["self_cpu_us"])
    table = None
    for key in (("self_device_time_total", "self_cuda_time_total") if cuda else ("self_cpu_time_total",)):
        try:
            table = avg.table(sort_by=key, row_limit=25)
            break
        except Exception:  # pragma: no cover - older / newer torch names
            continue
    return {"steps": n, "kernels_seen": len(kernels), "kernel_ms_per_step": total / 1000.0 / n,
            "kernel_launches_per_step": sum(r["count"] for r in kernels) / n,
            "by_kind_ms_per_step": {k: v / 1000.0 / n for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top": kernels[:25], "table": table}


# --------------------------------------------------------------------------------------------------- attention alone


def attention_alone(rows, heads, kv_heads, dim, length, pads, dtype, dev, reps: int) -> dict:
    """One layer's step attention at the batch's shapes, milliseconds per call (x layers in `per_step`)."""
    import torch
    import torch.nn.functional as F
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from tempbench.models.qwen import step_attention

    cuda = dev.type == "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    q = torch.randn(rows, 1, heads, dim, device=dev, dtype=dtype, generator=g).transpose(1, 2)
    k = torch.randn(rows, kv_heads, length, dim, device=dev, dtype=dtype, generator=g)
    v = torch.randn(rows, kv_heads, length, dim, device=dev, dtype=dtype, generator=g)
    mask = torch.ones(rows, 1, 1, length, dtype=torch.bool, device=dev)
    for r, p in enumerate(pads[:rows]):
        mask[r, ..., :p] = False
    additive = torch.zeros(mask.shape, dtype=dtype, device=dev).masked_fill(~mask, float("-inf"))
    groups = heads // kv_heads
    module = type("M", (), {"num_key_value_groups": groups, "is_causal": True, "training": False})()
    scale = dim**-0.5
    aligned = -(-length // 16) * 16
    k16 = torch.nn.functional.pad(k, (0, 0, 0, aligned - length))
    v16 = torch.nn.functional.pad(v, (0, 0, 0, aligned - length))
    mask16 = torch.nn.functional.pad(mask, (0, aligned - length), value=False)

    def grouped(m=mask, kk=k, vv=v):
        return step_attention.grouped_step_attention(module, q, kk, vv, m, scaling=scale)[0]

    def repeat_then_sdpa():
        kr = k.repeat_interleave(groups, dim=1)
        vr = v.repeat_interleave(groups, dim=1)
        return F.scaled_dot_product_attention(q, kr, vr, attn_mask=mask, scale=scale).transpose(1, 2)

    def matmul_softmax():
        qg = q.reshape(rows, kv_heads, groups, dim)
        s = torch.matmul(qg, k.transpose(-1, -2)).float() * scale
        p = s.masked_fill(~mask, float("-inf")).softmax(-1).to(dtype)
        return torch.matmul(p, v).reshape(rows, heads, 1, dim).transpose(1, 2)

    cases = {"stock_transformers_sdpa": lambda: ALL_ATTENTION_FUNCTIONS["sdpa"](module, q, k, v, mask,
                                                                                 scaling=scale)[0],
             "repeat_kv_then_sdpa": repeat_then_sdpa, "grouped": grouped,
             "grouped_additive_mask": lambda: grouped(additive),
             "grouped_length_multiple_of_16": lambda: grouped(mask16, k16, v16),
             "matmul_softmax": matmul_softmax}
    if cuda:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def forced(backend):
            def run():
                with sdpa_kernel([backend]):
                    return grouped()
            return run

        for name in ("EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH", "FLASH_ATTENTION"):
            if hasattr(SDPBackend, name):
                cases[f"grouped_{name.lower()}"] = forced(getattr(SDPBackend, name))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    ref = matmul_softmax().float()
    out = {"shape": {"rows": rows, "heads": heads, "kv_heads": kv_heads, "dim": dim, "length": length},
           "cases": {}}
    for name, fn in cases.items():
        try:
            with torch.inference_mode():
                y = fn()
                sync()
                err = float((y.float() - ref).abs().max())
                for _ in range(3):
                    fn()
                sync()
                t0 = time.perf_counter()
                for _ in range(reps):
                    fn()
                sync()
            out["cases"][name] = {"ms": (time.perf_counter() - t0) / reps * 1000.0, "max_abs_diff_vs_matmul": err}
        except Exception as e:  # a backend that does not take these shapes
            out["cases"][name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    return out


# --------------------------------------------------------------------------------------------------- main


def build(args, work: Path):
    import torch

    if args.tiny:
        from transformers import Qwen2_5_VLForConditionalGeneration

        from tempbench.models.qwen.tiny import tiny_model_dir

        folder = tiny_model_dir(cache_dir=work / "tiny")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32,
                                                                   attn_implementation="sdpa")
        return model.eval(), torch.device("cpu")
    from bench_run_gpu import random_7b_model

    model, _ = random_7b_model(work / "tiny")
    if model.config.get_text_config()._attn_implementation != "sdpa":
        model.set_attn_implementation("sdpa")
    return model.eval(), torch.device("cuda")


def render(result: dict) -> None:
    lines = []
    bound = result.get("bound", {})
    head = f"{'variant':<22}{'median ms':>11}{'min ms':>9}{'x bound':>9}{'kernels ms':>12}{'launches':>10}"
    lines.append(head)
    for name, v in result.get("variants", {}).items():
        prof = result.get("profiles", {}).get(name) or {}
        x = v["median_ms"] / bound["bound_ms"] if bound.get("bound_ms") else float("nan")
        lines.append(f"{name:<22}{v['median_ms']:>11.2f}{v['min_ms']:>9.2f}{x:>9.2f}"
                     f"{prof.get('kernel_ms_per_step', float('nan')):>12.2f}"
                     f"{prof.get('kernel_launches_per_step', float('nan')):>10.0f}")
    if bound:
        lines.append(f"bound {bound['bound_ms']:.2f} ms = ({bound['weight_bytes'] / 1e9:.2f} GB weights + "
                     f"{bound['kv_bytes'] / 1e9:.2f} GB K/V) / {bound['bandwidth_gb_s']:.0f} GB/s; "
                     f"the static step's attention reads {bound['kv_bytes_read'] / 1e9:.2f} GB of K/V")
    for name, a in result.get("agreement", {}).items():
        lines.append(f"tokens {name}: {a['rows_identical']}/{a['rows']} rows identical")
    att = result.get("attention_alone", {})
    if att:
        lines.append(f"attention alone, one layer {att['shape']} (ms per call, x{result['model']['layers']} layers):")
        for name, c in att["cases"].items():
            lines.append(f"  {name:<34}" + (f"{c['ms']:.4f} ({c['ms'] * result['model']['layers']:.2f} per step)"
                                            if "ms" in c else c["error"]))
    for name in result.get("skipped", []):
        lines.append(f"skipped {name}")
    for name, prof in result.get("profiles", {}).items():
        if "error" in prof:
            lines.append(f"--- {name}: profile failed: {prof['error']}")
            continue
        kinds = {k: round(v, 3) for k, v in prof["by_kind_ms_per_step"].items()}
        lines.append(f"--- {name}: {prof['kernels_seen']} kernels, {prof['kernel_ms_per_step']:.2f} ms and "
                     f"{prof['kernel_launches_per_step']:.0f} launches per step; by kind {json.dumps(kinds)}")
        if prof.get("table"):
            lines.append(prof["table"])
    print("\n".join(lines), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test: the tiny float32 Qwen2.5-VL, small batch")
    ap.add_argument("--rows", type=int, default=None, help="batch rows (16; tiny 4)")
    ap.add_argument("--context", type=int, default=None, help="prompt tokens per unpadded row (3400; tiny 40)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per variant (30; tiny 4)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--profile-steps", type=int, default=3)
    args = ap.parse_args(argv)
    import torch

    rows = args.rows or (4 if args.tiny else 16)
    context = args.context or (40 if args.tiny else 3400)
    n_steps = args.steps or (4 if args.tiny else 30)
    # a few rows shorter and left padded (the mask is real): 0, 17, 0, 113, 0, 457, 0, 1029, ... tokens of padding
    pads = [0 if r % 2 == 0 else min(context // 3, [17, 113, 457, 1029][(r // 2) % 4]) for r in range(rows)]
    if args.tiny:
        pads = [0, 3, 0, 11][:rows] + [0] * max(0, rows - 4)
    cuda = not args.tiny
    if cuda and not torch.cuda.is_available():
        print("error: no CUDA device (use --tiny for the CPU smoke test)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    result: dict = {"schema": "tempbench.profile_decode/1", "complete": False, "tiny": bool(args.tiny),
                    "versions": versions(), "device": torch.cuda.get_device_name(0) if cuda else platform.processor()
                    or "cpu", "settings": {"rows": rows, "context": context, "pads": pads, "steps": n_steps,
                                           "warmup": args.warmup, "profile_steps": args.profile_steps}}

    def write():
        result["seconds"] = time.perf_counter() - t_start
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")

    from bench_shapes_gpu import ModelShape, kv_bytes, measure_device

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="profile-decode-") as tmp:
        t = time.perf_counter()
        model, dev = build(args, Path(tmp))
        result["seconds_build"] = time.perf_counter() - t
    cfg = model.config.get_text_config()
    shape = ModelShape.of(model)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    result["model"] = {"dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
                       "layers": cfg.num_hidden_layers, "heads": cfg.num_attention_heads,
                       "kv_heads": cfg.num_key_value_heads, "head_dim": head_dim, "vocab": cfg.vocab_size,
                       "attn_implementation": cfg._attn_implementation, "shape": shape.to_dict()}
    result["device_rates"] = measure_device(cuda)
    bandwidth = result["device_rates"]["bandwidth_gb_s_measured"] * 1e9
    write()

    ids, mask, positions, base = make_batch(rows, context, pads, cfg.vocab_size)
    t = time.perf_counter()
    cache, first = prefill(model, ids, mask, positions, dev)
    sync()
    result["seconds_prefill"] = time.perf_counter() - t
    lengths = mask.sum(1).tolist()
    new_tokens = args.warmup + n_steps + args.profile_steps + 2
    mid = args.warmup + n_steps / 2
    weights = float(shape.body + shape.head) * shape.bytes_per_param
    kv = kv_bytes(shape, [n + mid for n in lengths])
    from tempbench.models.qwen.decoding import ALIGN

    kv_read = kv_bytes(shape, [-(-(context + new_tokens) // ALIGN) * ALIGN] * rows)  # every slot of the buffers
    result["bound"] = {"weight_bytes": weights, "kv_bytes": kv, "kv_bytes_read": kv_read,
                       "bandwidth_gb_s": bandwidth / 1e9, "bound_ms": (weights + kv) / bandwidth * 1000.0,
                       "row_tokens": lengths}

    backends = [v for v in VARIANTS if cuda or v[0] != "cuda-graph"]
    result["variants"], result["skipped"], tokens = {}, [], {}
    if not cuda:
        result["skipped"] = [f"{b}/{a}: no CUDA device" for b, a in VARIANTS if b == "cuda-graph"]
    for backend, attention in backends:
        name = f"{backend}/{attention}"
        try:
            step, stats = make_variant(backend, attention, model, cache, mask, base, new_tokens, dev)
            seconds, toks = run_variant(step, first, n_steps, args.warmup, sync)
        except Exception as e:  # pragma: no cover - recorded, the other variants still run
            result["skipped"].append(f"{name}: {type(e).__name__}: {str(e)[:300]}")
            step = None
            write()
            continue
        ms = [s * 1000.0 for s in seconds]
        result["variants"][name] = {"median_ms": statistics.median(ms), "min_ms": min(ms),
                                    "mean_ms": statistics.fmean(ms), "steps_ms": ms,
                                    "capture_seconds": stats.capture_seconds or None}
        tokens[name] = toks
        del step
        if cuda:
            torch.cuda.empty_cache()
        write()
    pairs = [("static/stock", "static/grouped"), ("cuda-graph/stock", "cuda-graph/grouped"),
             ("static/stock", "cuda-graph/stock"), ("static/grouped", "cuda-graph/grouped")]
    result["agreement"] = {f"{a} vs {b}": agreement(tokens[a], tokens[b]) for a, b in pairs
                           if a in tokens and b in tokens}
    result["tokens"] = tokens
    write()

    result["profiles"] = {}
    for backend, attention in backends:
        name = f"{backend}/{attention}"
        if name not in result["variants"]:
            continue
        step, _ = make_variant(backend, attention, model, cache, mask, base, new_tokens, dev)
        try:
            result["profiles"][name] = profile_variant(step, first, args.warmup, args.profile_steps, cuda)
        except Exception as e:  # pragma: no cover - a profiler that cannot trace here
            result["profiles"][name] = {"error": f"{type(e).__name__}: {e}"}
        del step
        if cuda:
            torch.cuda.empty_cache()
        write()

    width = context + new_tokens
    result["attention_alone"] = attention_alone(rows, cfg.num_attention_heads, cfg.num_key_value_heads, head_dim,
                                                width, pads, next(model.parameters()).dtype, dev,
                                                reps=50 if cuda else 3)
    result["complete"] = True
    write()
    render(result)
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
