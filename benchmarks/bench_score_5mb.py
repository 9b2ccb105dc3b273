"""Hostile 5 MB predictions files: `tempbench score` must take < 1 GB and < 5 s on any of them (issue 12, item 2).

Each case is one predictions file of about 5 MB shaped to make the scorer's cost follow something other than the
file's size (one row of a huge window list, a huge saliency list, ...). Every case is scored by the command line in
a fresh process (`tempbench score FILE --task T`, bootstrap CIs included, as a user runs it); the benchmark reports
the wall time and the peak resident memory of that process (its VmHWM, read at exit), and whether it scored (exit 0) or
refused the file with one line (exit 2, the message shown).

`--before REV` runs the same cases with the `tempbench/` package of another git revision (exported with `git
archive`) side by side in the same run. Child processes get an address-space limit (`--cap-gb`, default 8) so that
a runaway case ends with a MemoryError instead of taking the machine.

Needs the official Charades-STA test and QVHighlights val annotations imported ($TEMPBENCH_HOME), or the raw files
in ../shared/data (imported into a temporary cache).

    python benchmarks/bench_score_5mb.py --before 2b38308 --json docs/results/bench_score_5mb.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE = 5_000_000


def _rows_file(path: Path, rows) -> int:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
    return path.stat().st_size


def _windows(n: int, rng: random.Random, scores: bool = False) -> list:
    out = []
    for _ in range(n):
        s = round(rng.uniform(0, 100), 1)
        w = [s, round(s + rng.uniform(0.5, 20), 1)]
        if scores:
            w.append(round(rng.random(), 2))
        out.append(w)
    return out


def build_cases(folder: Path, charades: list[dict], qvh: list[dict]) -> dict[str, tuple[str, str, Path]]:
    """name -> (task, split, file). Every file is about SIZE bytes."""
    rng = random.Random(0)
    cases: dict[str, tuple[str, str, Path]] = {}

    def add(name, task, split, rows):
        path = folder / f"{name}.jsonl"
        _rows_file(path, rows)
        cases[name] = (task, split, path)

    c0, q0 = charades[0], qvh[0]
    per_window = len(json.dumps(_windows(100, rng), separators=(",", ":"))) / 100
    add("grounding-one-row-all-windows", "charades", "test",
        [{"qid": c0["qid"], "windows": _windows(int(SIZE / per_window), rng)}])
    add("grounding-40-rows-of-10k-windows", "charades", "test",
        [{"qid": r["qid"], "windows": _windows(10_000, rng)} for r in charades[:40]])
    n_each = int(SIZE / len(charades) / per_window)
    add("grounding-every-row-many-windows", "charades", "test",
        [{"qid": r["qid"], "windows": _windows(n_each, rng)} for r in charades])
    add("grounding-one-5mb-answer", "charades", "test",
        [{"qid": c0["qid"], "output": ("the person 1 " * (SIZE // 13))[:SIZE] + " 3 to 5"}])
    add("grounding-every-row-long-answer", "charades", "test",
        [{"qid": r["qid"], "output": "<think>" + "1 " * (SIZE // len(charades) // 2 - 30) + "</think>12.5 to 17.5"}
         for r in charades])
    per_score = len(json.dumps([round(rng.random(), 3) for _ in range(100)], separators=(",", ":"))) / 100
    add("qvh-one-row-huge-saliency", "qvhighlights", "val",
        [{"qid": q0["qid"], "pred_relevant_windows": [[0, 10, 0.9]],
          "pred_saliency_scores": [round(rng.random(), 3) for _ in range(int(SIZE / per_score))]}])
    add("qvh-12-rows-of-100k-saliency", "qvhighlights", "val",
        [{"qid": r["qid"], "pred_relevant_windows": [[0, 10, 0.9]],
          "pred_saliency_scores": [round(rng.random(), 3) for _ in range(100_000)]} for r in qvh[:12]])
    per_scored = len(json.dumps(_windows(100, rng, True), separators=(",", ":"))) / 100
    add("qvh-one-row-all-windows", "qvhighlights", "val",
        [{"qid": q0["qid"], "pred_relevant_windows": _windows(int(SIZE / per_scored), rng, True)}])
    n_each = int(SIZE / len(qvh) / per_scored)
    add("qvh-every-row-many-windows", "qvhighlights", "val",
        [{"qid": r["qid"], "pred_relevant_windows": _windows(n_each, rng, True),
          "pred_saliency_scores": [round(rng.random(), 2) for _ in range(int(r["duration"] // 2))]} for r in qvh])
    add("qvh-one-5mb-answer", "qvhighlights", "val",
        [{"qid": q0["qid"], "output": ("The highlight timestamps are in the 82, 84 seconds. " * (SIZE // 52))[:SIZE]}])
    return cases


# The scoring process reports its own peak resident memory (VmHWM of its address space, read at exit; a process
# stopped by the time limit reports none). getrusage's ru_maxrss would also count the RSS it had when forked.
PEAK_REPORTER = ("import atexit, sys\n"
                 "def _peak():\n"
                 "    kb = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
                 "    sys.stderr.write(f'peak-rss-kb {kb}\\n')\n"
                 "atexit.register(_peak)\n"
                 "from tempbench.cli import main\n"
                 "main()\n")


def _limit(cap_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    return apply


def run_case(pythonpath: str, task: str, split: str, path: Path, home: str, cap_gb: float, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "TEMPBENCH_HOME": home}
    cmd = [sys.executable, "-c", PEAK_REPORTER, "score", str(path), "--task", task, "--split", split]
    began = time.perf_counter()
    # cwd: a neutral folder, or `python -c` would import the tempbench/ of the current directory first
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tempfile.gettempdir(), preexec_fn=_limit(int(cap_gb * 2**30)))
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    seconds = time.perf_counter() - began
    lines = (err or "").splitlines()
    peak_kb = next((int(x.split()[1]) for x in lines if x.startswith("peak-rss-kb ")), None)
    text = [x for x in (err or out).strip().splitlines() if not x.startswith("peak-rss-kb ")]
    last = next((line for line in text if line.startswith("error:")), text[-1] if text else "")
    return {"seconds": round(seconds, 3), "peak_rss_mb": None if peak_kb is None else round(peak_kb / 1024, 1),
            "exit": proc.returncode, "timed_out": timed_out, "message": last[:200]}


def _home() -> str:
    home = os.environ.get("TEMPBENCH_HOME") or str(Path.home() / ".cache" / "tempbench")
    need = [Path(home, "annotations", "charades", "test.jsonl"), Path(home, "annotations", "qvhighlights", "val.jsonl")]
    if all(p.exists() for p in need):
        return home
    sys.path.insert(0, str(ROOT))
    from tempbench.annotations import import_task

    data = ROOT.parent / "shared" / "data"
    home = tempfile.mkdtemp(prefix="tbhome-bench-")
    os.environ["TEMPBENCH_HOME"] = home
    import_task("charades", data / "charades_sta", ["test"])
    import_task("qvhighlights", data / "qvhighlights", ["val"])
    return home


def _export(rev: str) -> str:
    folder = tempfile.mkdtemp(prefix=f"tempbench-{rev}-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tempbench", "annotations"], check=True,
                             capture_output=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=None, help="git revision whose tempbench/ runs side by side")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="address-space limit of each scoring process")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--cases", nargs="*", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    home = _home()

    def records(task, split):
        with open(Path(home, "annotations", task, f"{split}.jsonl"), encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    folder = Path(tempfile.mkdtemp(prefix="bench-5mb-"))
    cases = build_cases(folder, records("charades", "test"), records("qvhighlights", "val"))
    cases = {k: v for k, v in cases.items() if not args.cases or k in args.cases}
    trees = {"after": str(ROOT)}  # each tree's tempbench/ is the one imported (checked below)
    if args.before:
        trees["before"] = _export(args.before)
    for which, tree in trees.items():
        where = subprocess.run([sys.executable, "-c", "import tempbench; print(tempbench.__file__)"], check=True,
                               capture_output=True, text=True, cwd=tempfile.gettempdir(),
                               env={**os.environ, "PYTHONPATH": tree}).stdout.strip()
        if not where.startswith(tree):
            raise SystemExit(f"{which}: tempbench imported from {where}, not from {tree}")
    results: dict = {name: {} for name in cases}
    for name, (task, split, path) in cases.items():
        for which, tree in trees.items():
            results[name][which] = run_case(tree, task, split, path, home, args.cap_gb, args.timeout)
        results[name]["file_mb"] = round(path.stat().st_size / 1e6, 2)
        print(name, json.dumps(results[name]), flush=True)
    print(f"\n5 MB predictions files, `tempbench score FILE --task T` (bootstrap CIs on), cap {args.cap_gb:g} GB")
    print("case | MB | " + " | ".join(f"{w} s | {w} peak MB | {w} exit" for w in trees))
    for name in cases:
        r = results[name]
        cells = []
        for w in trees:
            x = r[w]
            peak = "-" if x["peak_rss_mb"] is None else f"{x['peak_rss_mb']:.0f}"
            cells += [">timeout" if x["timed_out"] else f"{x['seconds']:.2f}", peak, str(x["exit"])]
        print(" | ".join([name, f"{r['file_mb']:.1f}", *cells]))
    if args.json:
        Path(args.json).write_text(json.dumps({"before_rev": args.before, "cap_gb": args.cap_gb,
                                               "python": sys.version.split()[0], "cases": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
