"""Hostile 1 MB answers under every parsing profile: every profile must parse each in under 1 s (issue 12, item 1).

Each case is one answer of about 1 MB built to make a backtracking regex or a rebuild-the-string loop slow (runs of
spaces after a number, repeated tags, repeated labels, digit runs, ...). Every (case, profile) pair is timed with
`parse_span` (and `parse_highlights` once per case); a pair that runs past `--limit` seconds is stopped by a timer
signal (Python's regex engine checks signals) and reported as `>LIMIT`.

`--before REV` times the `tempbench/parsing.py` of another git revision side by side in the same run (parsing.py is
pure, so the old file is loaded on its own). Results go to stdout as a table and, with `--json FILE`, as JSON.

    python benchmarks/bench_parse_1mb.py --before 2b38308 --json docs/results/bench_parse_1mb.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 1_000_000


def _fill(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _answer_like(seed: int, size: int = SIZE) -> str:
    rng = random.Random(seed)
    tokens = ["1", "12.5", " ", "  ", " to ", " - ", "-", "–", "s", " s", "seconds", ":", "1:05", "0:01:02.5",
              "<think>", "</think>", "<answer>", "</answer>", "<analysis>", "</analysis>", "start", "end",
              "between ", " and ", "[", "]", "(", ")", ",", ".", "\n", "happens in", "timestamps", "saliency", "x"]
    out, n = [], 0
    while n < size:
        t = rng.choice(tokens)
        out.append(t)
        n += len(t)
    return "".join(out)[:size]


CASES: dict[str, str] = {
    "number-spaces-x": "1" + " " * (SIZE - 2) + "x",
    "number-tabs-newline": "1" + "\t" * (SIZE - 3) + "x\n",
    "spaces": " " * SIZE,
    "digits": "1" * SIZE,
    "digits-to-digits": "1" * (SIZE // 2) + " to " + "2" * (SIZE // 2 - 4),
    "number-space": _fill("1 "),
    "number-s": _fill("1 s "),
    "number-s-dash": _fill("1s-"),
    "number-dash": _fill("1 - "),
    "number-to": _fill("1 to "),
    "number-and": _fill("1 and "),
    "dotted": _fill("1."),
    "dots": "." * SIZE,
    "clock-colons": _fill("1:"),
    "clock-spaces": "1:11" + " " * (SIZE - 5) + "x",
    "clocks": _fill("1:11:11 "),
    "clock-fraction-run": "1:11." + "1" * (SIZE - 6) + "x",
    "think-open": _fill("<think>"),
    "think-close": _fill("</think>"),
    "think-blocks": _fill("<think>a</think>"),
    "text-then-think-blocks": "x" * (SIZE // 2) + _fill("<think>a</think>", SIZE // 2),
    "words-and-think-blocks": _fill("y <think>a</think>"),
    "think-nested": "<think>" * (SIZE // 16) + "</think>" * (SIZE // 16),
    "analysis-blocks": _fill("<analysis></analysis>"),
    "answer-open": _fill("<answer>"),
    "answer-close": _fill("</answer>"),
    "answer-lines": _fill("<answer>\nx\n"),
    "answer-blocks": _fill("<answer> 1 </answer>"),
    "start-labels": _fill("start "),
    "start-end-labels": _fill("start 1 end "),
    "start-word-run": "start" + "a" * (SIZE - 5),
    "between": _fill("between "),
    "between-and": _fill("between 1 and "),
    "pairs": _fill("[1, "),
    "parens": _fill("(1, 2"),
    "keywords": _fill("happens in "),
    "sentences": _fill("1!"),
    "newlines": "\n" * SIZE,
    "highlights": _fill("timestamps 1, 2, "),
    "saliency": _fill("saliency 1, "),
    "unicode-digits": "\u0663" * SIZE,
    "dashes": "-" * SIZE,
    "letters": "a" * SIZE,
    "answer-like-0": _answer_like(0),
    "answer-like-1": _answer_like(1),
}


class Stopped(Exception):
    pass


def _alarm(signum, frame):
    raise Stopped


def _timed(fn, limit: float) -> float | None:
    """Seconds `fn()` took, or None when it ran past `limit` (stopped by SIGALRM)."""
    signal.signal(signal.SIGALRM, _alarm)
    began = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn()
    except Stopped:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return time.perf_counter() - began


def _load_parsing(rev: str | None):
    if rev is None:
        from tempbench import parsing

        return parsing
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:tempbench/parsing.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "parsing_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("parsing_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["parsing_before"] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def measure(parsing, limit: float, cases: dict[str, str]) -> dict:
    out: dict = {}
    for case, text in cases.items():
        row = {}
        for name in parsing.PROFILES:
            row[name] = _timed(lambda t=text, n=name: parsing.parse_span(t, n), limit)
        row["highlights"] = _timed(lambda t=text: parsing.parse_highlights(t, 150.0), limit)
        out[case] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=None, help="git revision whose parsing.py is timed side by side")
    ap.add_argument("--limit", type=float, default=20.0, help="seconds after which a pair is stopped")
    ap.add_argument("--before-limit", type=float, default=None, help="limit for the --before revision")
    ap.add_argument("--cases", nargs="*", default=None, help="only these cases")
    ap.add_argument("--json", default=None, help="write the measurements here")
    args = ap.parse_args()
    cases = {k: v for k, v in CASES.items() if not args.cases or k in args.cases}
    runs = {"after": measure(_load_parsing(None), args.limit, cases)}
    if args.before:
        runs["before"] = measure(_load_parsing(args.before), args.before_limit or args.limit, cases)
    limit_of = {"after": args.limit, "before": args.before_limit or args.limit}

    def cell(v, which):
        return f">{limit_of[which]:g}" if v is None else f"{v:.3f}"

    profiles = list(next(iter(runs["after"].values())))
    print(f"1 MB answers ({SIZE:,} characters), seconds per answer; python {sys.version.split()[0]}")
    for which, data in runs.items():
        worst = {p: max((1e9 if r[p] is None else r[p]) for r in data.values()) for p in profiles}
        print(f"\n[{which}] worst case per profile: " + ", ".join(
            f"{p} {cell(None if w == 1e9 else w, which)}" for p, w in worst.items()))
    header = ["case"] + [f"{p}{' (before/after)' if args.before else ''}" for p in profiles]
    print("\n" + " | ".join(header))
    for case in cases:
        cells = []
        for p in profiles:
            a = cell(runs["after"][case][p], "after")
            cells.append(f"{cell(runs['before'][case][p], 'before')} / {a}" if args.before else a)
        print(" | ".join([case, *cells]))
    scaling = {}
    if args.before:  # how the slowest old case grows with the answer's length (1 MB was stopped at the limit)
        old = _load_parsing(args.before)
        print("\n[before] lmms-eval on '1' + N spaces + 'x': ", end="")
        for n in (12_500, 25_000, 50_000, 100_000):
            scaling[n] = _timed(lambda n=n: old.parse_span("1" + " " * n + "x", "lmms-eval"), args.limit * 10)
            print(f"N={n:,}: {cell(scaling[n], 'before')} s", end="; ", flush=True)
        print()
    if args.json:
        Path(args.json).write_text(json.dumps({"size": SIZE, "python": sys.version.split()[0], "limit": limit_of,
                                               "before_rev": args.before, "runs": runs,
                                               "before_lmms_scaling": scaling}, indent=1) + "\n")


if __name__ == "__main__":
    main()
