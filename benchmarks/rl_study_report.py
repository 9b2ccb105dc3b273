"""Issue 15's analysis: the archives of `benchmarks/rl_study.py study` -> the results JSON, figures, docs section.

Reads every `rl_study_*.tar.gz` under --runs (the GPU commands' outputs, copied into docs/results/rl_study/) and the
pre-study (`rl_study_prestudy.json`), then writes:
- `--json` (docs/results/rl_study_synthetic.json): the settings, the start checkpoint, the pre-study, `methods` ->
  arm -> `seeds` -> held-out and val metrics with 95% CIs and the training's last-steps means, per-arm means over
  seeds, the paired tests, the val-based choice of control, the hybrid CoT run, the rerun check (against the run
  it repeats and against the arm's seed spread: range and the 95% prediction interval of one more seed), the
  predicted window widths (median predicted / GT width per arm), the timings, the verdict's text, what is missing;
- figures in --figures: `rl_study_prestudy.png`, `rl_study_curves.png`, `rl_study_heldout.png`,
  `rl_study_hybrid_cot.png`;
- the markdown block of docs/training.md between `<!-- rl-study:begin -->` and `<!-- rl-study:end -->` (--docs),
  or into a file (--markdown).

Paired tests (held-out, 256 queries): per seed with `tempbench.api.compare` (paired bootstrap CI over videos and a
sign-flip permutation p-value, 1,000 resamples); pooled over seeds with `tempbench.metrics.stats.paired_test` on
the (query, seed) pairs clustered by video (one cluster holds a video's pairs of every seed); across seeds, the mean
of the per-seed differences with a t interval (n - 1 degrees of freedom). Holm's correction within each family of
comparisons (per metric). Heldout chooses nothing: the control named "best" is the one with the highest mean val
mIoU. The verdict's rules are fixed here, before the numbers (see `verdict`).

    python benchmarks/rl_study_report.py --runs docs/results/rl_study --docs docs/training.md
    python benchmarks/rl_study_report.py --runs /tmp/o --json /tmp/r.json --figures /tmp/r --markdown /tmp/r.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PRODUCED_BY = "benchmarks/rl_study_report.py"
TASK = "synthetic-hard"
METRICS = ("R1@0.5", "R1@0.7", "mIoU")
PRIMARY = "mIoU"  # fixed before the GPU run: the verdict's metric (the others are reported beside it)
ARM_ORDER = ("grpo", "tempsamp-none", "tempsamp-downscale", "tempsamp-anchor", "tempsamp-shaping", "sft")
CONTROLS = ("tempsamp-none", "tempsamp-downscale", "tempsamp-anchor", "tempsamp-shaping")
SHORT = {"start": "start (tiny-synthetic)", "grpo": "GRPO", "tempsamp-none": "TempSamp-R1 none",
         "tempsamp-downscale": "TempSamp-R1 downscale", "tempsamp-anchor": "TempSamp-R1 anchor",
         "tempsamp-shaping": "TempSamp-R1 shaping", "sft": "SFT (GT answers)", "hybrid-cot": "hybrid CoT"}
CURVES = (("reward_on_mean", "on-policy reward (IoU)"), ("top1_iou", "IoU of the most likely sample"),
          ("kl", "KL to the start (k3)"), ("adv_gt", "GT row's advantage"),
          ("zero_groups", "groups whose on-policy rows all scored 0"), ("gt_logp", "GT answer: mean token log-prob"))
BEGIN, END = "<!-- rl-study:begin -->", "<!-- rl-study:end -->"
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
RESAMPLES = 1000


# ------------------------------------------------------------------------------------------------------- loading


class Run:
    """One finished run from an archive: its summary, training log and evaluations (typed `Result`s)."""

    def __init__(self, name: str, folder: Path, archive: Path):
        from tempbench.results import Result

        self.name, self.folder, self.archive = name, folder, archive
        self.summary = json.loads((folder / "summary.json").read_text())
        self.arm, self.seed, self.kind = self.summary["arm"], int(self.summary["seed"]), self.summary["kind"]
        self.rerun_of = self.summary.get("rerun_of")
        log = folder / "train" / "train_log.jsonl"
        self.log = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
        self.results = {}
        for ev in sorted((folder / "eval").iterdir()) if (folder / "eval").is_dir() else []:
            self.results[ev.name] = Result.read(ev / "result.json", details=ev / "details.jsonl.gz")

    def predictions(self, label: str) -> Path:
        return self.folder / "eval" / label / "predictions.jsonl"


def load_runs(paths: list[Path], tmp: Path) -> tuple[dict[str, Run], list[dict], list[dict], list[str]]:
    """Runs by name (the first archive in name order wins; a rerun found again in a later archive is kept as
    `NAME@TAG`, each rerun being its own reproducibility check), the archives read (file, sha256, runs), the study
    statuses they carry, and warnings (a run found twice)."""
    archives = []
    for p in paths:
        archives += sorted(p.glob("rl_study_*.tar.gz")) if p.is_dir() else [p]
    runs: dict[str, Run] = {}
    sources, statuses, warnings = [], [], []
    for k, arc in enumerate(archives):
        dest = tmp / f"a{k}"
        with tarfile.open(arc) as tar:
            tar.extractall(dest, filter="data")
        names = sorted(p.name for p in (dest / "runs").iterdir()) if (dest / "runs").is_dir() else []
        sources.append({"file": arc.name, "sha256": hashlib.sha256(arc.read_bytes()).hexdigest(), "runs": names})
        if (dest / "study.json").is_file():
            statuses.append(json.loads((dest / "study.json").read_text()))
        for name in names:
            folder = dest / "runs" / name
            if not (folder / "summary.json").is_file():
                continue
            if not json.loads((folder / "summary.json").read_text()).get("complete"):
                continue
            if name in runs:
                tag = arc.name.removeprefix("rl_study_").removesuffix(".tar.gz")
                if runs[name].rerun_of and f"{name}@{tag}" not in runs:  # a rerun repeated elsewhere: each is a check
                    runs[f"{name}@{tag}"] = Run(f"{name}@{tag}", folder, arc)
                    continue
                warnings.append(f"{name} is in {runs[name].archive.name} and {arc.name}: the first is used")
                continue
            runs[name] = Run(name, folder, arc)
    return runs, sources, statuses, warnings


# ------------------------------------------------------------------------------------------------------- statistics


def mean_sd(values: list[float]) -> dict:
    n = len(values)
    if not n:
        return {"n_seeds": 0}
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"n_seeds": n, "mean": m, "sd": sd, "min": min(values), "max": max(values)}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def metric_arrays(result, qids: list[int], metric: str):
    """Per-query numerator and denominator of a metric, in `qids` order (None: not in its denominator)."""
    import numpy as np

    by = {d.qid: d for d in result.details}
    vals = [by[q].scores.get(metric) for q in qids]
    return (np.array([0.0 if v is None else float(v) for v in vals]),
            np.array([v is not None for v in vals], dtype=float))


def pooled_test(pairs: list[tuple], metric: str) -> dict:
    """B - A over the (query, seed) pairs of every seed, clustered by video: paired bootstrap CI and sign-flip
    permutation p-value (`tempbench.metrics.stats.paired_test`). `pairs`: [(Result A, Result B), ...]."""
    import numpy as np

    from tempbench.metrics.stats import paired_test

    na, nb, da, db, clusters = [], [], [], [], []
    for ra, rb in pairs:
        qa = {d.qid: d.vid for d in ra.details}
        qids = sorted(q for q in qa if q in {d.qid for d in rb.details})
        a, dena = metric_arrays(ra, qids, metric)
        b, denb = metric_arrays(rb, qids, metric)
        na.append(a)
        nb.append(b)
        da.append(dena)
        db.append(denb)
        clusters += [qa[q] for q in qids]
    res = paired_test(np.concatenate(nb), np.concatenate(na), (np.concatenate(db), np.concatenate(da)),
                      np.array(clusters, dtype=object), n_resamples=RESAMPLES, seed=0)
    return {"difference": float(res.difference), "ci95": [float(res.low), float(res.high)],
            "p": float(res.p_value), "pairs": int(sum(len(x) for x in na)), "seeds": len(pairs)}


def seed_level(diffs: list[float]) -> dict:
    """Mean of per-seed differences, its t interval (n - 1 df), and how many seeds are positive."""
    st = mean_sd(diffs)
    out = {"n_seeds": len(diffs), "positive": sum(d > 0 for d in diffs), "negative": sum(d < 0 for d in diffs),
           "mean": st.get("mean"), "sd": st.get("sd")}
    if len(diffs) > 1 and st["sd"] is not None:
        half = T975.get(len(diffs) - 1, 2.0) * st["sd"] / math.sqrt(len(diffs))
        out["t_ci95"] = [st["mean"] - half, st["mean"] + half]
    return out


def compare_arms(runs: dict[str, Run], a: str, b: str, label: str = "heldout") -> dict | None:
    """B - A on the held-out queries: per seed (`tempbench.api.compare`), pooled, across seeds."""
    from tempbench.api import compare

    seeds = sorted({r.seed for r in runs.values() if r.arm == a and not r.rerun_of}
                   & {r.seed for r in runs.values() if r.arm == b and not r.rerun_of})
    if a == "start":
        seeds = sorted({r.seed for r in runs.values() if r.arm == b and not r.rerun_of}) if "start" in runs else []
    if not seeds:
        return None

    def get(arm, seed):
        return runs["start"] if arm == "start" else runs[f"{arm}-s{seed}"]

    out = {"a": a, "b": b, "split": label.split("-")[0], "prompt": "cot" if label.endswith("-cot") else "plain",
           "seeds": seeds, "metrics": {}}
    per_seed = {}
    for seed in seeds:
        ra, rb = get(a, seed), get(b, seed)
        c = compare(ra.predictions(label), rb.predictions(label), task=TASK, split=out["split"],
                    n_resamples=RESAMPLES, seed=0)
        per_seed[seed] = {row.metric: row for row in c.rows}
    for m in METRICS:
        ps = {str(s): {"a": per_seed[s][m].a, "b": per_seed[s][m].b, "difference": per_seed[s][m].difference,
                       "ci95": list(per_seed[s][m].ci95), "p": per_seed[s][m].p_value} for s in seeds}
        pooled = pooled_test([(get(a, s).results[label], get(b, s).results[label]) for s in seeds], m)
        out["metrics"][m] = {"per_seed": ps, "pooled": pooled,
                             "across_seeds": seed_level([v["difference"] for v in ps.values()])}
    return out


def width_stats(runs: dict[str, Run], label: str = "heldout") -> dict:
    """Per arm (and the start): the median over held-out queries of predicted / GT window width and the share of
    answers wider than 1.5 x the GT window, each the mean over seeds (a wider window trades R1@0.7 for overlap)."""
    import statistics

    from tempbench.api import load_annotations

    try:
        gt = {a["qid"]: a["windows"][0][1] - a["windows"][0][0] for a in load_annotations(TASK, label)}
    except Exception:  # the split is not generated here
        return {}
    per: dict[str, list] = {}
    for r in runs.values():
        res = r.results.get(label)
        if r.kind == "hybrid" or res is None:
            continue
        ratios = [(d.windows[0][1] - d.windows[0][0]) / gt[d.qid] for d in res.details
                  if d.windows and gt.get(d.qid)]
        if ratios:
            per.setdefault(r.name if r.rerun_of else r.arm, []).append(
                (statistics.median(ratios), sum(x > 1.5 for x in ratios) / len(ratios)))
    order = ["start", *ARM_ORDER] + sorted(a for a in per if a not in ARM_ORDER and a != "start")
    return {a: {"median_ratio": sum(x[0] for x in per[a]) / len(per[a]),
                "wide_share": sum(x[1] for x in per[a]) / len(per[a]), "seeds": len(per[a])}
            for a in order if a in per}


# ------------------------------------------------------------------------------------------------------- assembling


def eval_block(result) -> dict:
    return {"n": result.n, "metrics": {m: result.metrics[m] for m in (*METRICS, "R1@0.3") if m in result.metrics},
            "ci95": {m: list(result.ci95[m]) for m in METRICS if m in result.ci95},
            "failure_rate": result.failure_rate}


def last_means(log: list[dict], frac: float = 0.2) -> dict:
    """Means over the last `frac` of the steps (at least one) of the logged curves."""
    if not log:
        return {}
    tail = log[-max(1, int(len(log) * frac)):]
    out = {}
    for key, _ in CURVES + (("loss", ""), ("format_rate", ""), ("best_on_mean", "")):
        vals = [r[key] for r in tail if isinstance(r.get(key), (int, float))]
        if vals:
            out[key] = sum(vals) / len(vals)
    return out


def first_means(log: list[dict], steps: int = 8) -> dict:
    head = log[:steps]
    out = {}
    for key in ("reward_on_mean", "top1_iou", "zero_groups", "best_on_mean", "adv_gt"):
        vals = [r[key] for r in head if isinstance(r.get(key), (int, float))]
        if vals:
            out[key] = sum(vals) / len(vals)
    return out


def train_block(run: Run) -> dict:
    t = run.summary.get("train", {})
    return {"steps": t.get("global_step"), "seconds": t.get("seconds"),
            "steps_per_s": (t["global_step"] / t["seconds"]) if t.get("seconds") else None,
            "stopped_early": t.get("stopped_early"), "max_memory_allocated_gib": t.get("max_memory_allocated_gib"),
            "first_steps": first_means(run.log), "last_steps": last_means(run.log), "device": run.summary["device"]}


def format_rate(path: Path) -> float | None:
    from tempbench.train.rewards import format_reward

    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
    outs = [r.get("output") for r in rows if isinstance(r.get("output"), str)]
    return 100.0 * sum(format_reward(o) for o in outs) / len(outs) if outs else None


def assemble(runs: dict[str, Run], sources: list[dict], statuses: list[dict], prestudy: dict | None,
             warnings: list[str]) -> dict:
    from tempbench.io import git_revision

    settings = next((st["settings"] for st in statuses), None) or next(
        (r.summary["settings"] for r in runs.values()), {})
    arms_info = next((st["arms"] for st in statuses), {})
    seeds_planned = [int(s) for s in settings.get("seeds", [0, 1, 2])]
    data: dict = {
        "produced_by": PRODUCED_BY, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_revision": git_revision(), "task": TASK, "split": "heldout", "primary_metric": PRIMARY,
        "settings": settings, "arms": arms_info, "sources": sources, "warnings": warnings,
        "study_commands": [{"tag": st.get("tag"), "command": st.get("command"), "device": st.get("device"),
                            "git_revision": st.get("git_revision"), "timings": st.get("timings"),
                            "parallel": st.get("parallel"), "concurrency": st.get("concurrency"),
                            "runs": {n: {k: v for k, v in r.items() if k != "log_tail"}
                                     for n, r in st.get("runs", {}).items()}}
                           for st in statuses],
    }
    if "start" in runs:
        data["start"] = {label: eval_block(r) for label, r in runs["start"].results.items()}
    if prestudy is not None:
        data["prestudy"] = {k: prestudy[k] for k in ("produced_by", "command", "git_revision", "device", "start",
                                                       "queries", "group", "study_group", "temperature", "n",
                                                       "summary", "best_of_k", "by_form", "histogram_best",
                                                       "seconds") if k in prestudy}
    methods = {}
    for arm in ARM_ORDER:
        seeds = {}
        found = {r.seed for r in runs.values() if r.arm == arm and not r.rerun_of}  # --more-seeds runs too
        for seed in sorted(set(seeds_planned) | found):
            r = runs.get(f"{arm}-s{seed}")
            if r is None:
                continue
            seeds[str(seed)] = {"run": r.name, "archive": r.archive.name,
                                **{label: eval_block(res) for label, res in r.results.items()},
                                "train": train_block(r)}
        mean = {}
        for label in ("heldout", "val"):
            mean[label] = {m: mean_sd([v[label]["metrics"][m] for v in seeds.values() if label in v])
                           for m in METRICS}
        methods[arm] = {"label": arms_info.get(arm, {}).get("label", SHORT[arm]),
                        "config": arms_info.get(arm, {}).get("config"), "seeds": seeds, "mean": mean}
    data["methods"] = methods
    data["missing"] = [f"{arm}-s{s}" for arm in ARM_ORDER for s in seeds_planned if str(s) not in methods[arm]["seeds"]]
    data["complete"] = not data["missing"] and "start" in runs

    # the val-based choice among the controls (heldout chooses nothing)
    val = {a: methods[a]["mean"]["val"]["mIoU"].get("mean") for a in CONTROLS
           if methods[a]["mean"]["val"]["mIoU"].get("n_seeds")}
    data["selection"] = {"rule": "the TempSamp-R1 control with the highest val mIoU (mean over seeds)",
                         "val_mIoU": val, "chosen": max(val, key=val.get) if val else None}

    # paired tests
    families = {
        "tempsamp_vs_grpo": [("grpo", c) for c in CONTROLS],
        "tempsamp_vs_sft": [("sft", c) for c in CONTROLS],
        "vs_start": [("start", a) for a in ARM_ORDER],
        "grpo_vs_sft": [("sft", "grpo")],
    }
    comps = {}
    for fam, pairs in families.items():
        rows = [c for a, b in pairs if (c := compare_arms(runs, a, b)) is not None]
        for m in METRICS:
            adj = holm([c["metrics"][m]["pooled"]["p"] for c in rows])
            for c, p in zip(rows, adj):
                c["metrics"][m]["pooled"]["p_holm"] = p
        comps[fam] = rows
    data["comparisons"] = comps
    data["widths"] = width_stats(runs)

    # hybrid CoT (seed 0)
    hy = runs.get("hybrid-cot-s0")
    if hy is not None:
        block = {"run": hy.name, "label": arms_info.get("hybrid-cot", {}).get("label"), "train": train_block(hy),
                 "evals": {label: {**eval_block(res), "prompt": "cot" if label.endswith("-cot") else "plain",
                                   "format_rate": format_rate(hy.predictions(label))}
                           for label, res in hy.results.items()}}
        phases = [r.get("phase") for r in hy.log]
        block["cot_from_step"] = next((r["step"] for r in hy.log if r.get("phase") == "cot"), None)
        block["phase_means"] = {ph: last_means([r for r in hy.log if r.get("phase") == ph], frac=1.0)
                                for ph in ("plain", "cot") if ph in phases}
        if "tempsamp-shaping-s0" in runs:
            from tempbench.api import compare

            base = runs["tempsamp-shaping-s0"]
            c = compare(base.predictions("heldout"), hy.predictions("heldout"), task=TASK, split="heldout",
                        n_resamples=RESAMPLES, seed=0)
            block["vs_tempsamp_shaping_s0_plain_prompt"] = {
                row.metric: {"difference": row.difference, "ci95": list(row.ci95), "p": row.p_value}
                for row in c.rows if row.metric in METRICS}
        data["hybrid_cot"] = block

    # reruns
    reruns = []
    for r in runs.values():
        if r.rerun_of and r.rerun_of in runs:
            rc = rerun_check(runs[r.rerun_of], r)
            seeds = methods.get(r.arm, {}).get("seeds", {})
            spread = {}
            for m in METRICS:
                vals = [v["heldout"]["metrics"][m] for v in seeds.values() if "heldout" in v]
                if len(vals) > 1:
                    st = mean_sd(vals)
                    x = rc["heldout"][m]["rerun"]
                    half = T975.get(len(vals) - 1, 2.0) * st["sd"] * math.sqrt(1 + 1 / len(vals))
                    spread[m] = {**st, "rerun": x, "inside_seed_range": min(vals) <= x <= max(vals),
                                 "z": (x - st["mean"]) / st["sd"] if st.get("sd") else None,
                                 "prediction_interval95": [st["mean"] - half, st["mean"] + half],
                                 "inside_prediction_interval95": abs(x - st["mean"]) <= half}
            rc["seed_spread"] = spread
            reruns.append(rc)
    data["reruns"] = reruns
    data["verdict"] = verdict(data)
    return data


def rerun_check(orig: Run, again: Run) -> dict:
    from tempbench.api import compare

    c = compare(orig.predictions("heldout"), again.predictions("heldout"), task=TASK, split="heldout",
                n_resamples=RESAMPLES, seed=0)
    out_a = [json.loads(x).get("output") for x in orig.predictions("heldout").read_text().splitlines()]
    out_b = [json.loads(x).get("output") for x in again.predictions("heldout").read_text().splitlines()]
    curve = {}
    for key in ("loss", "reward_on_mean", "top1_iou", "kl", "gt_logp"):
        xa = [r.get(key) for r in orig.log]
        xb = [r.get(key) for r in again.log]
        d = [abs(a - b) for a, b in zip(xa, xb) if isinstance(a, (int, float)) and isinstance(b, (int, float))]
        if d:
            curve[key] = {"max_abs_diff": max(d), "identical_steps": sum(x == 0 for x in d), "steps": len(d)}
    return {"run": again.name, "of": orig.name, "devices": [orig.summary["device"], again.summary["device"]],
            "archives": [orig.archive.name, again.archive.name],
            "heldout": {row.metric: {"original": row.a, "rerun": row.b, "difference": row.difference,
                                     "ci95": list(row.ci95), "p": row.p_value} for row in c.rows
                        if row.metric in METRICS},
            "identical_outputs": sum(a == b for a, b in zip(out_a, out_b)), "n": len(out_a), "curves": curve}


# ------------------------------------------------------------------------------------------------------- verdict


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def judge(c: dict, metric: str = PRIMARY) -> str:
    """The rule, fixed before the numbers: B beats A when the pooled difference is > 0 with Holm-adjusted p < 0.05
    and every seed's difference is > 0; loses by the mirror rule; else no detectable difference."""
    m = c["metrics"][metric]
    p = m["pooled"].get("p_holm", m["pooled"]["p"])
    n = m["across_seeds"]["n_seeds"]
    if p < 0.05 and m["pooled"]["difference"] > 0 and m["across_seeds"]["positive"] == n:
        return "better"
    if p < 0.05 and m["pooled"]["difference"] < 0 and m["across_seeds"]["negative"] == n:
        return "worse"
    return "no detectable difference"


def seeds_needed(c: dict, target: float, metric: str) -> int | None:
    """Seeds for 80% power to detect `target` points at the 5% level, from the sd of the per-seed differences."""
    sd = c["metrics"][metric]["across_seeds"].get("sd")
    if not sd:
        return None
    return max(2, math.ceil(((1.96 + 0.84) * sd / target) ** 2))


def verdict(data: dict) -> dict:
    """The verdict's paragraphs (markdown) from the assembled results; every number comes from `data`."""
    comps = data.get("comparisons", {})
    vs_grpo = {c["b"]: c for c in comps.get("tempsamp_vs_grpo", [])}
    vs_sft = {c["b"]: c for c in comps.get("tempsamp_vs_sft", [])}
    methods = data["methods"]
    n_done = sum(len(m["seeds"]) for m in methods.values())
    n_planned = n_done + len(data.get("missing", []))
    paras = []
    if not vs_grpo:
        return {"status": "pending", "paragraphs": [
            f"**Pending the GPU runs** ({n_done} of {n_planned} trainings archived): no comparison yet."]}
    status = "final" if data.get("complete") else "partial"
    if status == "partial":
        paras.append(f"**Partial: {n_done} of {n_planned} trainings archived** (missing: "
                     f"{', '.join(data['missing'])}); the numbers below will change when the rest is in.")
    pre = data.get("prestudy")
    g = int(data.get("settings", {}).get("group") or 0)
    if pre and g and str(g) in pre.get("best_of_k", {}):
        s, gr, ts = pre["summary"], pre["best_of_k"][str(g)], pre["best_of_k"].get(str(g - 1))
        text = (f"**The regime.** At the start ({pre['n']} train queries, {pre['group']} samples each at "
                f"temperature {pre['temperature']:g}), {100 * s['sample_zero']:.1f}% of the samples scored IoU 0 and "
                f"{100 * s['sample_ge_0.7']:.1f}% reached 0.7; with G = {g}, GRPO's group held no sample above IoU 0 "
                f"for {100 * gr['all_zero']:.1f}% of the queries (all advantages 0: no signal) and none at 0.7 or "
                f"more for {100 * (1 - gr['best_ge_0.7']):.1f}%")
        if ts:
            text += (f"; TempSamp-R1's {g - 1} on-policy rows: {100 * ts['all_zero']:.1f}% and "
                     f"{100 * (1 - ts['best_ge_0.7']):.1f}%")
        first = [v["train"]["first_steps"].get("zero_groups") for v in data["methods"]["grpo"]["seeds"].values()]
        first = [x for x in first if x is not None]
        if first:
            text += (f". In GRPO's first 8 steps {100 * sum(first) / len(first):.1f}% of the groups had every "
                     f"on-policy row at 0")
        paras.append(text + ". This is the weak-sampling regime in which the paper argues that the ground-truth "
                            "row should help.")
    judged = {b: judge(c) for b, c in vs_grpo.items()}
    sel = data.get("selection", {}).get("chosen")
    lines = []
    for b in CONTROLS:
        if b not in vs_grpo:
            continue
        c = vs_grpo[b]["metrics"]
        bits = []
        for m in (PRIMARY, "R1@0.7"):
            pm = c[m]["pooled"]
            bits.append(f"{m} {pm['difference']:+.2f} {_fmt_ci(pm['ci95'])} (Holm p {_p(pm['p_holm'])}, "
                        f"{c[m]['across_seeds']['positive']}/{c[m]['across_seeds']['n_seeds']} seeds > 0"
                        + ("" if m == PRIMARY else f"; by the same rule: {judge(vs_grpo[b], m)}") + ")")
        lines.append(f"{SHORT[b]} − GRPO: " + "; ".join(bits) + f" → **{judged[b]}** on {PRIMARY}")
    better = [b for b, j in judged.items() if j == "better"]
    worse = [b for b, j in judged.items() if j == "worse"]
    if better:
        head = (f"**Does TempSamp-R1 beat GRPO here? Yes, with {', '.join(SHORT[b] for b in better)}** (held-out "
                f"{PRIMARY}, pooled over seeds, Holm-adjusted over the four controls).")
    elif worse and len(worse) == len(judged):
        head = "**Does TempSamp-R1 beat GRPO here? No: every control is worse than GRPO.**"
    else:
        head = (f"**Does TempSamp-R1 beat GRPO here? Not detectably** (held-out {PRIMARY}, pooled over seeds, "
                f"Holm-adjusted over the four controls)" + (f"; worse: {', '.join(SHORT[b] for b in worse)}."
                                                             if worse else "."))
    paras.append(head + " " + " ".join(f"{x}." for x in lines))
    secondary = {m: [b for b in vs_grpo if judge(vs_grpo[b], m) == "better"] for m in METRICS if m != PRIMARY}
    secondary = {m: bs for m, bs in secondary.items() if bs}
    if secondary:
        paras.append(
            "**On the secondary metrics** (reported beside the primary; the rule applied to them as well): "
            + "; ".join(f"on {m}, {', '.join(SHORT[b] for b in bs)} beat{'s' if len(bs) == 1 else ''} GRPO"
                        for m, bs in secondary.items())
            + ". Whether that is TempSamp-R1 gaining or GRPO losing is read against the start and SFT below.")
    if sel:
        sv = data["selection"]["val_mIoU"]
        order = sorted(sv, key=sv.get, reverse=True)
        paras.append(
            f"**Which control.** Chosen on val (mean val mIoU over seeds): {SHORT[sel]} "
            f"({sv[sel]:.2f}); the val order is " + " > ".join(f"{SHORT[a]} {sv[a]:.2f}" for a in order) +
            ". The paper's order on Charades-STA (Tab. 4, R1@0.7) is shaping 49.6 > anchor 49.1 > downscale 48.1 > "
            "GRPO 46.0 > none 41.3.")
    if vs_sft:
        b = sel if sel in vs_sft else "tempsamp-shaping"
        if b in vs_sft:
            c = vs_sft[b]
            pm = c["metrics"][PRIMARY]["pooled"]
            j = judge(c)
            others = [f"{SHORT[x]} {vs_sft[x]['metrics'][PRIMARY]['pooled']['difference']:+.2f} (Holm p "
                      f"{_p(vs_sft[x]['metrics'][PRIMARY]['pooled']['p_holm'])})" for x in CONTROLS
                      if x in vs_sft and x != b]
            word = {"better": "Yes", "worse": "No: it is worse", "no detectable difference": "Not detectably"}[j]
            p7 = c["metrics"]["R1@0.7"]["pooled"]
            paras.append(f"**Does it beat SFT on the same ground truth? {word}.** {SHORT[b]} − SFT, held-out "
                         f"{PRIMARY}: {pm['difference']:+.2f} {_fmt_ci(pm['ci95'])}, Holm p {_p(pm['p_holm'])} "
                         f"(R1@0.7 {p7['difference']:+.2f} {_fmt_ci(p7['ci95'])}, Holm p {_p(p7['p_holm'])})"
                         + (f"; the other controls: {', '.join(others)}." if others else "."))
    gs = [c for c in comps.get("grpo_vs_sft", [])]
    if gs:
        paras.append("GRPO − SFT: " + "; ".join(
            f"{m} {x['pooled']['difference']:+.2f} {_fmt_ci(x['pooled']['ci95'])} (p {_p(x['pooled']['p'])}, "
            f"{x['across_seeds']['positive']}/{x['across_seeds']['n_seeds']} seeds > 0)"
            for m in (PRIMARY, "R1@0.7") for x in [gs[0]["metrics"][m]]) + ".")
    vs_start = {c["b"]: c for c in comps.get("vs_start", [])}
    if vs_start:
        moved = [f"{SHORT[b]} {c['metrics'][PRIMARY]['pooled']['difference']:+.2f} (Holm p "
                 f"{_p(c['metrics'][PRIMARY]['pooled']['p_holm'])}; R1@0.7 "
                 f"{c['metrics']['R1@0.7']['pooled']['difference']:+.2f}, Holm p "
                 f"{_p(c['metrics']['R1@0.7']['pooled']['p_holm'])})" for b, c in vs_start.items()]
        n_better = sum(judge(c) == "better" for c in vs_start.values())
        paras.append(f"**Against the start** (held-out {PRIMARY} {data['start']['heldout']['metrics']['mIoU']:.2f}, "
                     f"R1@0.7 {data['start']['heldout']['metrics']['R1@0.7']:.2f}; "
                     f"{'no arm' if not n_better else str(n_better) + ' arm(s)'} better by the rule): "
                     + "; ".join(moved) + ".")
    widths = data.get("widths")
    if widths and "start" in widths and "grpo" in widths:
        paras.append("**Predicted window width** (held-out, median of predicted / GT width, mean over seeds; share "
                     "of answers wider than 1.5 x the GT): " + "; ".join(
                         f"{SHORT.get(a, a)} {w['median_ratio']:.2f} ({100 * w['wide_share']:.0f}%)"
                         for a, w in widths.items()) + ".")
    if not better:
        c = vs_grpo.get(sel or "tempsamp-shaping") or next(iter(vs_grpo.values()))
        pm, p7 = c["metrics"][PRIMARY]["pooled"], c["metrics"]["R1@0.7"]["pooled"]
        need = seeds_needed(c, 1.0, PRIMARY)
        paras.append(
            f"**What would settle it.** On {PRIMARY} the pooled 95% interval of {SHORT[c['b']]} − GRPO is "
            f"{_fmt_ci(pm['ci95'])}: a gain larger than {pm['ci95'][1]:+.2f} points is excluded here, a smaller one "
            f"is not" + (f"; with the seed-to-seed spread measured here (sd "
                         f"{c['metrics'][PRIMARY]['across_seeds']['sd']:.2f}), about {need} seeds per arm would "
                         f"detect a 1-point difference with 80% power" if need else "")
            + f". On R1@0.7 the interval {_fmt_ci(p7['ci95'])} "
            + ("contains" if p7["ci95"][0] <= 2.7 <= p7["ci95"][1] else "excludes")
            + " the paper's Charades-STA gain of +2.7. Longer training (the paper trains 2 epochs of far more "
              "queries), and a learning-rate choice made on val for each method, are the other open settings.")
    return {"status": status, "paragraphs": paras}


# ------------------------------------------------------------------------------------------------------- figures


def _smooth(y, k: int):
    import numpy as np

    y = np.asarray(y, dtype=float)
    if k <= 1 or len(y) < k:
        return y
    ok = np.isfinite(y)
    num = np.convolve(np.where(ok, y, 0.0), np.ones(k), mode="same")
    den = np.convolve(ok.astype(float), np.ones(k), mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _series(log: list[dict], key: str):
    import numpy as np

    return np.array([r[key] if isinstance(r.get(key), (int, float)) else np.nan for r in log], dtype=float)


def figures(runs: dict[str, Run], data: dict, prestudy: dict | None, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    foot = f"{PRODUCED_BY}, {data['created']}"
    colours = {a: f"C{i}" for i, a in enumerate(ARM_ORDER)}

    # pre-study
    if prestudy is not None:
        rows = prestudy["rows"]
        g = prestudy["group"]
        gs = int(prestudy.get("study_group") or g)
        fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=100)
        bins = np.linspace(0, 1, 21)
        ax = axes[0]
        for k, colour in ((gs, "C0"), (g, "C1")):
            ax.hist([max(r["ious"][:k]) for r in rows], bins=bins, color=colour, alpha=0.5,
                    label=f"best of {k} samples" + (" (the study's G)" if k == gs else ""))
        ax.hist([r["greedy_iou"] for r in rows], bins=bins, histtype="step", color="k", label="greedy answer")
        for t in (0.5, 0.7):
            ax.axvline(t, color="grey", ls=":", lw=1)
        ax.set_xlabel("IoU with the ground truth")
        ax.set_ylabel("train queries")
        ax.set_title(f"start ({prestudy['start']}): the group's best IoU, {len(rows)} train queries", fontsize=10)
        ax.legend(fontsize=8)
        ax = axes[1]
        ts = np.linspace(0, 1, 101)
        for k in sorted({1, max(1, gs - 1), gs, g}):
            b = np.array([max(r["ious"][:k]) for r in rows])
            ax.plot(ts, [(b >= t).mean() if t > 0 else (b > 0).mean() for t in ts], lw=2.5 if k == gs else 1.2,
                    label=f"best of {k}" + {1: " (one sample)", gs: " (GRPO, G)", gs - 1: " (TempSamp-R1 on-policy)"}
                    .get(k, ""))
        ax.set_xlabel("IoU threshold t")
        ax.set_ylabel("share of queries whose best sample >= t")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.text(0.99, 0.01, f"{foot} from {prestudy['produced_by']} ({prestudy['device']})", ha="right",
                 fontsize=6, color="grey")
        fig.tight_layout()
        path = folder / "rl_study_prestudy.png"
        fig.savefig(path)
        plt.close(fig)
        made.append(path)

    # learning curves
    arms = [a for a in ARM_ORDER if data["methods"][a]["seeds"]]
    if arms:
        steps = int(data["settings"].get("steps") or 1)
        k = max(1, steps // 16)
        fig, axes = plt.subplots(2, 3, figsize=(17, 8), dpi=100)
        for ax, (key, title) in zip(axes.ravel(), CURVES):
            for arm in arms:
                ys = [_series(runs[v["run"]].log, key) for v in data["methods"][arm]["seeds"].values()]
                ys = [y for y in ys if np.isfinite(y).any()]
                if not ys:
                    continue
                n = min(len(y) for y in ys)
                sm = np.array([_smooth(y[:n], k) for y in ys])
                x = np.arange(1, n + 1)
                ax.plot(x, np.nanmean(sm, 0), color=colours[arm], label=f"{SHORT[arm]} ({len(ys)} seeds)")
                if len(ys) > 1:
                    ax.fill_between(x, np.nanmin(sm, 0), np.nanmax(sm, 0), color=colours[arm], alpha=0.15)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("optimizer step")
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=7)
        axes[-1, -1].legend(fontsize=7)  # the GT log-prob panel: the only one with SFT
        fig.suptitle(f"TempSamp-R1 vs GRPO vs SFT on {TASK}: mean over seeds (band: min-max), moving average of {k} "
                     "steps", fontsize=10)
        fig.text(0.99, 0.005, foot, ha="right", fontsize=6, color="grey")
        fig.tight_layout()
        path = folder / "rl_study_curves.png"
        fig.savefig(path)
        plt.close(fig)
        made.append(path)

        # held-out metrics per arm and seed
        fig, axes = plt.subplots(1, 3, figsize=(17, 4.5), dpi=100)
        for ax, m in zip(axes, METRICS):
            for i, arm in enumerate(arms):
                seeds = data["methods"][arm]["seeds"]
                for j, (_s, v) in enumerate(sorted(seeds.items())):
                    y = v["heldout"]["metrics"][m]
                    lo, hi = v["heldout"]["ci95"][m]
                    xx = i + (j - (len(seeds) - 1) / 2) * 0.12
                    ax.errorbar(xx, y, yerr=[[y - lo], [hi - y]], fmt="o", color=colours[arm], ms=4, capsize=2)
                mean = data["methods"][arm]["mean"]["heldout"][m].get("mean")
                if mean is not None:
                    ax.hlines(mean, i - 0.3, i + 0.3, color=colours[arm], lw=2)
            if "start" in data:
                ax.axhline(data["start"]["heldout"]["metrics"][m], color="k", ls="--", lw=1, label="start")
                ax.legend(fontsize=7)
            ax.set_xticks(range(len(arms)))
            ax.set_xticklabels([SHORT[a].replace("TempSamp-R1 ", "TS-R1\n") for a in arms], fontsize=8)
            ax.set_title(f"held-out {m} (256 queries): seeds with 95% CI, bar = mean", fontsize=10)
            ax.grid(alpha=0.3, axis="y")
        fig.text(0.99, 0.005, foot, ha="right", fontsize=6, color="grey")
        fig.tight_layout()
        path = folder / "rl_study_heldout.png"
        fig.savefig(path)
        plt.close(fig)
        made.append(path)

    # hybrid CoT
    if "hybrid-cot-s0" in runs:
        log = runs["hybrid-cot-s0"].log
        steps = max(1, len(log))
        k = max(1, steps // 16)
        fig, axes = plt.subplots(1, 4, figsize=(18, 3.8), dpi=100)
        cut = data["hybrid_cot"].get("cot_from_step")
        for ax, (key, title) in zip(axes, (("accuracy_on_mean", "on-policy IoU"), ("format_rate", "format rate"),
                                           ("top1_iou", "IoU of the most likely sample"),
                                           ("adv_gt", "GT row's advantage"))):
            y = _series(log, key)
            ax.plot(np.arange(1, len(y) + 1), y, color="C4", alpha=0.3)
            ax.plot(np.arange(1, len(y) + 1), _smooth(y, k), color="C4")
            if cut:
                ax.axvline(cut, color="k", ls=":", lw=1)
            ax.set_title(title + " (dotted: CoT phase starts)", fontsize=9)
            ax.set_xlabel("optimizer step")
            ax.grid(alpha=0.3)
        fig.text(0.99, 0.01, foot, ha="right", fontsize=6, color="grey")
        fig.tight_layout()
        path = folder / "rl_study_hybrid_cot.png"
        fig.savefig(path)
        plt.close(fig)
        made.append(path)
    return made


# ------------------------------------------------------------------------------------------------------- markdown


def _cell(block: dict | None, m: str) -> str:
    if not block or m not in block["metrics"]:
        return "–"
    lo, hi = block["ci95"][m]
    return f"{block['metrics'][m]:.2f} [{lo:.1f}, {hi:.1f}]"


def _ms(st: dict) -> str:
    if not st.get("n_seeds"):
        return "–"
    return f"{st['mean']:.2f} ± {st['sd']:.2f}" if st.get("sd") is not None else f"{st['mean']:.2f}"


def markdown(data: dict, figure_dir: str) -> str:
    """The generated block of docs/training.md (between the rl-study markers)."""
    out = [BEGIN, ""]
    out.append(f"*Generated by `{PRODUCED_BY}` on {data['created']} from "
               f"{', '.join(s['file'] for s in data['sources']) or 'no archive'}; the numbers are in "
               f"`docs/results/rl_study_synthetic.json`.*")
    out.append("")
    for p in data["verdict"]["paragraphs"]:
        out += [p, ""]
    methods = data["methods"]
    if any(m["seeds"] for m in methods.values()):
        out += [f"Held-out ({TASK}, 256 queries), mean ± sd over seeds, and each seed's {PRIMARY} with its 95% CI; "
                "val mIoU (128 queries) is the only split any choice used:", ""]
        out.append("| arm | seeds | R1@0.5 | R1@0.7 | mIoU | mIoU per seed [95% CI] | val mIoU |")
        out.append("|---|---:|---:|---:|---:|---|---:|")
        if "start" in data:
            h = data["start"]["heldout"]
            out.append(f"| {SHORT['start']} | – | {h['metrics']['R1@0.5']:.2f} | {h['metrics']['R1@0.7']:.2f} | "
                       f"{h['metrics']['mIoU']:.2f} | {_cell(h, 'mIoU')} | "
                       f"{data['start'].get('val', {}).get('metrics', {}).get('mIoU', float('nan')):.2f} |")
        for arm in ARM_ORDER:
            m = methods[arm]
            if not m["seeds"]:
                out.append(f"| {SHORT[arm]} | 0 | – | – | – | pending | – |")
                continue
            per = "; ".join(f"s{s}: {_cell(v['heldout'], 'mIoU')}" for s, v in sorted(m["seeds"].items()))
            hm = m["mean"]["heldout"]
            out.append(f"| {SHORT[arm]} | {hm['mIoU']['n_seeds']} | {_ms(hm['R1@0.5'])} | {_ms(hm['R1@0.7'])} | "
                       f"{_ms(hm['mIoU'])} | {per} | {_ms(m['mean']['val']['mIoU'])} |")
        out.append("")
    comps = data["comparisons"]
    rows = [c for fam in ("tempsamp_vs_grpo", "tempsamp_vs_sft", "grpo_vs_sft") for c in comps.get(fam, [])]
    if rows:
        out += ["Paired tests on the held-out queries, B − A in points: pooled over seeds (pairs clustered by "
                "video; Holm within each family: TempSamp-R1 vs GRPO, TempSamp-R1 vs SFT), and the per-seed "
                "differences (`tempbench compare`):", ""]
        out.append("| B − A | metric | pooled difference [95% CI] | p | Holm p | per seed | seeds > 0 |")
        out.append("|---|---|---:|---:|---:|---|---:|")
        for c in rows:
            for m in METRICS:
                x = c["metrics"][m]
                per = ", ".join(f"{v['difference']:+.2f}" for _, v in sorted(x["per_seed"].items()))
                out.append(f"| {SHORT[c['b']]} − {SHORT[c['a']]} | {m} | {x['pooled']['difference']:+.2f} "
                           f"{_fmt_ci(x['pooled']['ci95'])} | {_p(x['pooled']['p'])} | "
                           f"{_p(x['pooled'].get('p_holm', x['pooled']['p']))} | {per} | "
                           f"{x['across_seeds']['positive']}/{x['across_seeds']['n_seeds']} |")
        out.append("")
    if any(m["seeds"] for m in methods.values()):
        out += ["Training, mean over seeds of the last 20% of the steps (reward and IoU: on-policy rows; zero "
                "groups: share of queries whose on-policy rows all scored 0), and the first 8 steps' zero groups:",
                ""]
        out.append("| arm | reward | top-1 IoU | KL | GT advantage | zero groups (first 8 → last) | GT log-prob | "
                   "s per run | steps/s |")
        out.append("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        for arm in ARM_ORDER:
            seeds = methods[arm]["seeds"].values()
            if not seeds:
                continue

            def avg(path, key, seeds=seeds):
                vals = [v["train"][path].get(key) for v in seeds if v["train"][path].get(key) is not None]
                return sum(vals) / len(vals) if vals else None

            def f(x, d=3):
                return "–" if x is None else f"{x:.{d}f}"

            secs = [v["train"]["seconds"] for v in seeds if v["train"].get("seconds")]
            rates = [v["train"]["steps_per_s"] for v in seeds if v["train"].get("steps_per_s")]
            zf, zl = avg("first_steps", "zero_groups"), avg("last_steps", "zero_groups")
            out.append(f"| {SHORT[arm]} | {f(avg('last_steps', 'reward_on_mean'))} | "
                       f"{f(avg('last_steps', 'top1_iou'))} | {f(avg('last_steps', 'kl'), 4)} | "
                       f"{f(avg('last_steps', 'adv_gt'), 2)} | "
                       f"{'–' if zf is None else f'{zf:.2f} → {zl:.2f}'} | {f(avg('last_steps', 'gt_logp'), 3)} | "
                       f"{f(sum(secs) / len(secs) if secs else None, 0)} | "
                       f"{f(sum(rates) / len(rates) if rates else None, 2)} |")
        out.append("")
        out += [f"![held-out metrics per arm and seed]({figure_dir}/rl_study_heldout.png)", "",
                f"![learning curves]({figure_dir}/rl_study_curves.png)", ""]
    hy = data.get("hybrid_cot")
    if hy:
        out += [f"**Hybrid CoT** ({hy['label']}, seed 0; CoT from step {hy.get('cot_from_step')}), held-out and val "
                "with either prompt:", ""]
        out.append("| split | prompt | R1@0.5 | R1@0.7 | mIoU [95% CI] | format rate | parse failures |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        for label, e in sorted(hy["evals"].items()):
            fr = "–" if e.get("format_rate") is None else f"{e['format_rate']:.1f}%"
            out.append(f"| {label.split('-')[0]} | {e['prompt']} | {e['metrics']['R1@0.5']:.2f} | "
                       f"{e['metrics']['R1@0.7']:.2f} | {_cell(e, 'mIoU')} | {fr} | {e['failure_rate']:.1f}% |")
        vs = hy.get("vs_tempsamp_shaping_s0_plain_prompt")
        if vs:
            out += ["", "Against TempSamp-R1 shaping, seed 0 (the same queries, plain in both epochs), plain prompt: "
                    + "; ".join(f"{m} {v['difference']:+.2f} {_fmt_ci(v['ci95'])} (p {_p(v['p'])})"
                                for m, v in vs.items()) + "."]
        out += ["", f"![hybrid CoT]({figure_dir}/rl_study_hybrid_cot.png)", ""]
    for r in data.get("reruns", []):
        bits = "; ".join(f"{m} {v['original']:.2f} → {v['rerun']:.2f} ({v['difference']:+.2f}, p {_p(v['p'])})"
                         for m, v in r["heldout"].items())
        c = r["curves"].get("reward_on_mean") or r["curves"].get("loss") or {}
        sp = r.get("seed_spread") or {}
        spread = "; ".join(f"{m} {v['rerun']:.2f} vs {v['n_seeds']} seeds {v['mean']:.2f} ± {v['sd']:.2f} "
                           f"(range {v['min']:.2f}–{v['max']:.2f}: "
                           f"{'inside' if v['inside_seed_range'] else 'outside'}; 95% prediction interval of one more "
                           f"seed {v['prediction_interval95'][0]:.2f}–{v['prediction_interval95'][1]:.2f}: "
                           f"{'inside' if v['inside_prediction_interval95'] else 'outside'})"
                           for m, v in sp.items())
        out += [f"**Rerun** of {r['of']} ({r['archives'][0]} → {r['archives'][1]}, devices: "
                f"{' / '.join(dict.fromkeys(r['devices']))}): held-out {bits}; {r['identical_outputs']} of {r['n']} "
                f"answers identical" + (f"; per-step reward identical at {c['identical_steps']} of {c['steps']} "
                                         f"steps (max |difference| {c['max_abs_diff']:.2g})" if c else "")
                + (f". Against the arm's seed spread: {spread}" if spread else "") + ".", ""]
    timing = [st for st in data.get("study_commands", [])]
    if timing:
        out += ["Commands run:", ""]
        for st in timing:
            done = [n for n, r in st["runs"].items() if r.get("state") == "complete"]
            peak = max((c[1] for c in st.get("concurrency") or []), default=0)
            t = st.get("timings") or {}
            out.append(f"- `{st['command']}` on {st['device']}: {len(done)} runs complete in "
                       f"{t.get('total_s', float('nan')):.0f} s (data {t.get('data_s', float('nan')):.0f} s, up to "
                       f"{peak} runs at once)")
        out.append("")
    if data.get("warnings"):
        out += ["Warnings: " + "; ".join(data["warnings"]), ""]
    out.append(END)
    return "\n".join(out) + "\n"


def replace_block(text: str, block: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: the docs file has no {BEGIN} ... {END} block")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    return pattern.sub(lambda _: block, text, count=1)


# ------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", default=[Path("docs/results/rl_study")],
                    help="folders of rl_study_*.tar.gz, or archives")
    ap.add_argument("--prestudy", type=Path, default=Path("docs/results/rl_study_prestudy.json"))
    ap.add_argument("--json", type=Path, default=Path("docs/results/rl_study_synthetic.json"))
    ap.add_argument("--figures", type=Path, default=Path("docs/results"))
    ap.add_argument("--figure-link", default="results", help="how the docs link the figures' folder")
    ap.add_argument("--docs", type=Path, default=None, help="docs file whose rl-study block is replaced")
    ap.add_argument("--markdown", type=Path, default=None, help="write the block here")
    args = ap.parse_args(argv)
    prestudy = json.loads(args.prestudy.read_text()) if args.prestudy and args.prestudy.is_file() else None
    tmp = Path(tempfile.mkdtemp(prefix="rl-study-report-"))
    try:
        runs, sources, statuses, warnings = load_runs([p for p in args.runs if p.exists()], tmp)
        data = assemble(runs, sources, statuses, prestudy, warnings)
        made = figures(runs, data, prestudy, args.figures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data["figures"] = [p.name for p in made]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    block = markdown(data, args.figure_link)
    if args.markdown:
        args.markdown.write_text(block)
    if args.docs:
        args.docs.write_text(replace_block(args.docs.read_text(), block))
    n = sum(len(m["seeds"]) for m in data["methods"].values())
    print(f"{PRODUCED_BY}: {len(runs)} runs from {len(sources)} archives ({n} arm x seed trainings; missing "
          f"{len(data['missing'])}); verdict {data['verdict']['status']}; wrote {args.json}, "
          f"{', '.join(str(p) for p in made)}" + (f", {args.docs}" if args.docs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
