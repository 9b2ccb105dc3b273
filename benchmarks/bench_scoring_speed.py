"""Scoring speed: tempbench's numpy metrics side by side with the official QVHighlights scorer.

Sections (all in one run, results printed as a table and optionally written as JSON with --out):
  (a) QVHighlights metric computation alone (parsed inputs in memory, no CIs) vs the official moment_detr
      `standalone_eval.eval.eval_submission` on the same in-memory rows; also checks both give the same dict.
  (b) clustered bootstrap (1,000 resamples, clusters = videos) vs scoring without CIs, on ActivityNet
      Captions val_2-sized data (17,031 queries, 4,885 videos; the real val_2 ground truth when present).
      "Scoring" = parse every raw answer with tempbench.parsing.parse_span + IoU + metrics (in process);
      "metrics only" = IoU + metrics on arrays.
  (c) scaling of grounding scoring (IoU + R1/mIoU) from 1e3 to 1e6 queries.
  (d) whole `tempbench score` process vs the official eval.py process: `bench_process` below; run with
      --process-cmd once the CLI exists (e.g. --process-cmd "tempbench score {pred} --task qvhighlights").

Usage:
  python benchmarks/bench_scoring_speed.py --moment-detr /tmp/moment_detr [--data ../shared/data] [--out x.json]
The moment_detr checkout can be made from a mirror with
  git --git-dir=MIRROR archive HEAD standalone_eval | tar -x -C /tmp/moment_detr
The official scorer imports scikit-learn (not a tempbench dependency): install it where you run this.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tempbench.metrics import qvhighlights as qvh  # noqa: E402
from tempbench.metrics.grounding import grounding_metrics, grounding_terms, temporal_iou  # noqa: E402
from tempbench.metrics.stats import bootstrap_ci  # noqa: E402

QVH_VAL_FILES = [
    "moment_detr_sample/sample_val_preds.jsonl",
    "qd_detr_video/best_hl_val_preds.jsonl",
]


def timeit(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time (s) over `repeats` calls after one warm-up call; returns (median, last result)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _rows(path: Path) -> list[dict]:
    text = path.read_text()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------- (a)


def qvh_inputs(sub: list[dict], gt: list[dict]) -> dict:
    """Official rows -> the parsed, in-memory arrays `qvh.evaluate` takes (done once, outside the timing)."""
    by_qid = {r["qid"]: r for r in gt}
    g = [by_qid[s["qid"]] for s in sub]
    return {
        "qids": [s["qid"] for s in sub],
        "gt_windows": [np.asarray(x["relevant_windows"], float) for x in g],
        "durations": np.array([x["duration"] for x in g], float),
        "gt_clip_ids": [np.asarray(x["relevant_clip_ids"]) for x in g],
        "gt_saliency": [np.asarray(x["saliency_scores"], float) for x in g],
        "pred_windows": [np.asarray(s["pred_relevant_windows"], float) for s in sub],
        "pred_saliency": [np.asarray(s["pred_saliency_scores"], float) for s in sub],
    }


def load_official(moment_detr: Path):
    """Import the official eval_submission from a moment_detr checkout; (fn, None) or (None, reason)."""
    if not (moment_detr / "standalone_eval" / "eval.py").is_file():
        return None, f"{moment_detr}/standalone_eval/eval.py not found"
    sys.path.insert(0, str(moment_detr))
    try:
        from standalone_eval.eval import eval_submission  # type: ignore
    except ImportError as e:  # scikit-learn is the usual one
        return None, f"official scorer cannot be imported ({e}); install scikit-learn to run it"
    return eval_submission, None


def section_a(data: Path, moment_detr: Path, repeats: int, official_repeats: int) -> dict:
    qdir = data / "qvhighlights"
    gt = _rows(qdir / "highlight_val_release.jsonl")
    official, reason = load_official(moment_detr)
    out = {"files": [], "official_available": official is not None, "note": reason}
    for rel in QVH_VAL_FILES:
        sub = _rows(qdir / "preds" / rel)
        inp = qvh_inputs(sub, gt)
        t_ours, res = timeit(lambda inp=inp: qvh.evaluate(**inp), repeats)
        row = {"file": rel, "queries": len(sub), "ours_s": t_ours}
        if official is not None:

            def run_official(sub=sub):
                with contextlib.redirect_stdout(io.StringIO()):
                    return official(sub, gt, verbose=False)

            t_off, ref = timeit(run_official, official_repeats)
            row.update(
                official_s=t_off,
                speedup=t_off / t_ours,
                identical=json.loads(json.dumps(ref)) == res.official,
            )
        out["files"].append(row)
    return out


# ------------------------------------------------------------------------------------------------- (b)


def anet_val2(data: Path, rng: np.random.Generator):
    """(gt windows (N, 2), video ids (N,)) of ActivityNet val_2, or a synthetic stand-in of the same size."""
    path = data / "activitynet_captions" / "val_2.json"
    if path.is_file():
        raw = json.loads(path.read_text())
        vids, gt = [], []
        for vid, rec in raw.items():
            for w in rec["timestamps"]:
                vids.append(vid)
                gt.append(w)
        return np.asarray(gt, float), np.asarray(vids), "val_2.json"
    n, g = 17031, 4885
    vids = np.sort(rng.integers(0, g, n)).astype(str)
    start = rng.uniform(0, 100, n)
    return np.stack([start, start + rng.uniform(1, 60, n)], 1), vids, "synthetic"


def section_b(data: Path, repeats: int, n_resamples: int) -> dict:
    rng = np.random.default_rng(0)
    gt, vids, source = anet_val2(data, rng)
    n = gt.shape[0]
    noisy = gt + rng.normal(0, 8, gt.shape)
    texts = [f"The event happens from {a:.1f} to {b:.1f} seconds." for a, b in noisy]
    for i in rng.choice(n, n // 20, replace=False):
        texts[i] = "I cannot tell from the video."  # 5% failures: IoU 0, counted
    try:
        from tempbench.parsing import parse_span

        parser = "tempbench.parsing.parse_span (canonical)"
    except ImportError:  # pragma: no cover - before parsing.py exists
        import re

        pat = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:to|-)\s*(-?\d+(?:\.\d+)?)")

        def parse_span(text):
            m = pat.search(text)
            return type("P", (), {"span": (float(m[1]), float(m[2])) if m else None})()

        parser = "regex stand-in"

    def score_without_ci():
        spans = [parse_span(t).span for t in texts]
        pred = np.array([s if s is not None else (np.nan, np.nan) for s in spans], float)
        return grounding_metrics(temporal_iou(pred, gt))

    pred_arr = np.array([parse_span(t).span or (np.nan, np.nan) for t in texts], float)
    t_score, metrics = timeit(score_without_ci, repeats)
    t_metrics, _ = timeit(lambda: grounding_metrics(temporal_iou(pred_arr, gt)), repeats)

    def boot():
        _, values = grounding_terms(temporal_iou(pred_arr, gt))
        return bootstrap_ci(values, None, vids, n_resamples=n_resamples, seed=0)

    t_boot, (lo, hi) = timeit(boot, repeats)
    return {
        "source": source,
        "queries": n,
        "videos": int(len(np.unique(vids))),
        "parser": parser,
        "n_resamples": n_resamples,
        "scoring_without_ci_s": t_score,
        "metrics_only_s": t_metrics,
        "bootstrap_s": t_boot,
        "bootstrap_over_scoring": t_boot / t_score,
        "bootstrap_over_metrics_only": t_boot / t_metrics,
        "R1@0.5": metrics["R1@0.5"],
        "R1@0.5_ci95": [float(lo[1]), float(hi[1])],
    }


# ------------------------------------------------------------------------------------------------- (c)


def section_c(repeats: int, sizes=(10**3, 10**4, 10**5, 10**6)) -> dict:
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        s = rng.uniform(0, 100, n)
        gt = np.stack([s, s + rng.uniform(1, 60, n)], 1)
        pred = gt + rng.normal(0, 8, gt.shape)
        t, _ = timeit(lambda pred=pred, gt=gt: grounding_metrics(temporal_iou(pred, gt)), repeats)
        rows.append({"queries": n, "seconds": t, "ns_per_query": 1e9 * t / n})
    return {"rows": rows}


# ------------------------------------------------------------------------------------------------- (d)


def official_process_cmd(moment_detr: Path, pred: Path, gt: Path, save: Path) -> list[str]:
    """The official scorer as a process: python -m standalone_eval.eval ... (run with cwd = checkout)."""
    return [
        sys.executable,
        "-m",
        "standalone_eval.eval",
        "--submission_path",
        str(pred),
        "--gt_path",
        str(gt),
        "--save_path",
        str(save),
        "--not_verbose",
    ]


def bench_process(ours_cmd: list[str], official_cmd: list[str], official_cwd: Path, repeats: int = 3) -> dict:
    """Hook for (d): median wall time of two whole processes (start-up, reading files, scoring, writing)."""

    def run(cmd, cwd=None):
        env = dict(os.environ)
        if cwd is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(cwd), env.get("PYTHONPATH", "")])

        def go():
            subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)

        return timeit(go, repeats)[0]

    t_ours = run(ours_cmd)
    t_off = run(official_cmd, official_cwd)
    return {
        "ours_cmd": shlex.join(ours_cmd),
        "ours_s": t_ours,
        "official_s": t_off,
        "speedup": t_off / t_ours,
    }


def section_d(data: Path, moment_detr: Path, template: str | None, repeats: int) -> dict:
    if not template:
        return {"skipped": "pass --process-cmd 'tempbench score {pred} ...' to time the whole CLI process"}
    qdir = data / "qvhighlights"
    pred = qdir / "preds" / QVH_VAL_FILES[0]
    gt = qdir / "highlight_val_release.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        ours = shlex.split(template.format(pred=pred, gt=gt, out=Path(tmp) / "ours.json"))
        off = official_process_cmd(moment_detr, pred, gt, Path(tmp) / "official.json")
        return bench_process(ours, off, moment_detr, repeats)


# ----------------------------------------------------------------------------------------------- main


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moment-detr", type=Path, required=True, help="checkout of jayleicn/moment_detr")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared/data folder")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of our side (median)")
    ap.add_argument("--official-repeats", type=int, default=1, help="timed repeats of the official scorer")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--sections", default="abcd", help="which of a, b, c, d to run")
    ap.add_argument(
        "--process-cmd", default=None, help="(d) our scorer as a command; {pred} {gt} {out} filled"
    )
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)

    res: dict = {"machine": machine(), "command": shlex.join([sys.executable, *sys.argv])}
    if "a" in args.sections:
        res["a"] = section_a(args.data, args.moment_detr, args.repeats, args.official_repeats)
        for r in res["a"]["files"]:
            line = f"(a) {r['file']} ({r['queries']} queries): ours {1e3 * r['ours_s']:.1f} ms"
            if "official_s" in r:
                line += (
                    f", official eval_submission {r['official_s']:.2f} s -> {r['speedup']:.0f}x faster,"
                    f" identical output: {r['identical']}"
                )
            print(line)
        if res["a"]["note"]:
            print(f"(a) note: {res['a']['note']}")
    if "b" in args.sections:
        b = res["b"] = section_b(args.data, args.repeats, args.resamples)
        print(
            f"(b) {b['queries']} queries / {b['videos']} videos ({b['source']}): scoring without CIs"
            f" {1e3 * b['scoring_without_ci_s']:.0f} ms (metrics only {1e3 * b['metrics_only_s']:.1f} ms);"
            f" bootstrap x{b['n_resamples']} {1e3 * b['bootstrap_s']:.0f} ms ="
            f" {b['bootstrap_over_scoring']:.2f}x scoring, {b['bootstrap_over_metrics_only']:.0f}x metrics only"
        )
    if "c" in args.sections:
        res["c"] = section_c(args.repeats)
        for r in res["c"]["rows"]:
            print(
                f"(c) {r['queries']:>8} queries: {1e3 * r['seconds']:8.2f} ms ({r['ns_per_query']:.0f} ns/query)"
            )
    if "d" in args.sections:
        res["d"] = section_d(args.data, args.moment_detr, args.process_cmd, max(1, args.official_repeats))
        print(f"(d) {res['d']}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
