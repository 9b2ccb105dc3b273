"""Issue 15: TempSamp-R1 vs GRPO (and SFT on the same ground truth), measured on `synthetic-hard` with seeds.

The study (settings in `STUDY`, fixed before any GPU run; docs/training.md, "TempSamp-R1 vs GRPO, measured"):
- start: the shipped `tiny-synthetic` (SFT; held-out mIoU 27.4 on synthetic-hard: the weak regime of the paper);
- queries: `N_TRAIN` fresh videos of synthetic-hard's train seed (indices from `TRAIN_OFFSET`, never seen by the
  start model, whose SFT used the first 4,096), the same for every arm;
- arms (`ARMS`): GRPO, TempSamp-R1 with each off-policy control (none, downscale, anchor, shaping) and SFT continued
  on the GT answers: the same queries in the same seeded order, the same steps and optimizer, G rows per query
  (GRPO: G sampled; TempSamp-R1: G-1 sampled + the GT row; SFT: the GT row); seeds 0, 1, 2;
- extra (`EXTRAS`): the hybrid CoT schedule once (TempSamp-R1 shaping; epoch 1 plain, epoch 2 `<think>/<answer>`
  with the format reward), evaluated with both prompts;
- every final checkpoint is run by `tempbench run` (greedy, float32) on synthetic-hard `heldout` (256, judges) and
  `val` (128, the only split any choice may use); the start checkpoint once as `start`.

Subcommands:

    python benchmarks/rl_study.py prestudy --out DIR          # the start's group-best IoU distribution (CPU is fine)
    python benchmarks/rl_study.py study --out $OUT --tag c1 [--seeds 0,1] [--arms ...] [--extra hybrid-cot]
                                        [--rerun grpo:0] [--done docs/results/rl_study] [--parallel K]
    python benchmarks/rl_study.py probe --out $OUT            # optional: steps/s at several concurrencies
    python benchmarks/rl_study.py study --smoke --out /tmp/o  # the whole pipeline on a CPU, tiny sizes

`study` runs its runs (arm x seed) as separate processes, up to `--parallel` at a time on the one GPU, highest
priority first (seed 0's arms, then seed 1's, ..., extras, reruns). It never starts a run that its measured speed
says cannot end before `--deadline` seconds, and stops the lowest-priority running run when the others would not
end in time; a run that does not end is left for the next command (`--done` skips the runs already in the archives
of a folder). Everything it writes goes into --out, at most three files, rewritten as each run ends:
`rl_study_<tag>.tar.gz` (per run: summary.json, the trainer's config and log, every evaluation's run.json,
predictions, result and details), `rl_study_<tag>.json` (status: the plan, what ran, what is left, the timings,
the concurrency), `rl_study_<tag>_log.txt`. Then, on a CPU: `python benchmarks/rl_study_report.py`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
T0 = time.perf_counter()
WALL0 = time.time()
LOG: list[str] = []
PRODUCED_BY = "benchmarks/rl_study.py"
SCRIPT = Path(__file__).resolve()

TASK = "synthetic-hard"
START = "tiny-synthetic"
# The start is pinned: tiny-synthetic as shipped by commit START_COMMIT (held-out mIoU 27.4 on synthetic-hard). The
# shipped model may be replaced later; these weights stay reachable in git history (`--start`, `prepare_start`).
START_COMMIT = "33e2f2486c7dc31901912a459b2283de0057bd7f"
START_DIR = "tempbench/models/tiny_synthetic"
START_FILES = {  # file -> sha256 of the start model's folder
    "model.safetensors": "0d0472969b6667575f59c176b6ca0d417f672820c72959aa5b91a16190c8de72",
    "config.json": "9c6728f935cc793921099a12185837491d0264ee0dd2715c876949f66cf49427",
    "generation_config.json": "ea9f1cd1a17af62cbee8736e6bc2e898f365f65d688cfb1f0f532eb84d5aa565",
    "preprocessor_config.json": "80441039a296b74d0c21890a8c36bb25edd5b0812ca543196c2252bac65d35d4",
    "tokenizer.json": "61edd336f7e25d8b44737c438f34772f901d996c8a9660b31ab1b6c275a29610",
    "tokenizer_config.json": "b6aff73c5b56642a4fe954a2b9a5cdb32cc3d8ff1fd94087f00f8e3c35546e1b",
    "chat_template.jinja": "a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb",
}
PLAIN_PROMPT = "tempsamp-r1-plain"
COT_PROMPT = "tempsamp-r1-cot"

# the study's settings (fixed before the GPU runs; the smoke test shrinks the sizes, never the logic)
STUDY = {
    "task": TASK, "start": START, "train_offset": 4096, "n_train": 256, "epochs": 2, "batch": 8, "group": 4,
    "lr": 1e-4, "beta": 0.04, "temperature": 1.0, "max_new_tokens": 48, "seeds": [0, 1, 2],
    "eval_splits": ["heldout", "val"], "eval_max_new_tokens": 48, "eval_cot_max_new_tokens": 64,
    "eval_batch": 64, "eval_limit": None,
    # the zoo's video settings of tiny-synthetic (the paper's: 2 fps, 3584 * 28 * 28 pixels per video)
    "video": {"fps": 2.0, "min_frames": 4, "max_frames": 768, "min_pixels": 16 * 28 * 28,
              "max_pixels": 768 * 28 * 28, "total_pixels": 3584 * 28 * 28},
}
SMOKE = {"n_train": 2, "batch": 2, "group": 3, "max_new_tokens": 24, "seeds": [0, 1], "eval_limit": 3,
         "eval_max_new_tokens": 24, "eval_cot_max_new_tokens": 32, "eval_batch": 4,
         "video": {"fps": 2.0, "min_frames": 2, "max_frames": 8, "min_pixels": 4 * 28 * 28,
                   "max_pixels": 16 * 28 * 28, "total_pixels": 4 * 16 * 28 * 28}}

ARMS = {  # name -> trainer overrides (dotted keys of tempbench/train/default_config.toml) and a label
    "grpo": {"label": "GRPO", "config": {"method": "grpo"}},
    "tempsamp-none": {"label": "TempSamp-R1, control none",
                      "config": {"method": "tempsamp", "advantage.control": "none"}},
    "tempsamp-downscale": {"label": "TempSamp-R1, reward downscaling",
                           "config": {"method": "tempsamp", "advantage.control": "downscale"}},
    "tempsamp-anchor": {"label": "TempSamp-R1, advantage anchoring",
                        "config": {"method": "tempsamp", "advantage.control": "anchor"}},
    "tempsamp-shaping": {"label": "TempSamp-R1, reward shaping (the paper's method)",
                         "config": {"method": "tempsamp", "advantage.control": "shaping"}},
    "sft": {"label": "SFT on the GT answers (same queries and steps)", "config": {"method": "sft"}},
}
EXTRAS = {
    "hybrid-cot": {"label": "TempSamp-R1 shaping, hybrid CoT (epoch 1 plain, epoch 2 CoT + format reward)",
                   "config": {"method": "tempsamp", "advantage.control": "shaping", "schedule.cot": "hybrid"}},
}
EVAL_RESERVE_S = {"rl": 60.0, "sft": 50.0, "hybrid": 110.0, "eval": 60.0}  # evaluation + write-up after training
PACK_MARGIN_S = 20.0


def log(msg: str) -> None:
    line = f"[{time.perf_counter() - T0:6.1f}s] {msg}"
    LOG.append(line)
    print(line, flush=True)


def study_settings(smoke: bool) -> dict:
    s = json.loads(json.dumps(STUDY))
    if smoke:
        s.update(json.loads(json.dumps(SMOKE)))
    s["steps"] = (s["n_train"] // s["batch"]) * s["epochs"]
    return s


def query_form(query: str) -> str:
    """synthetic-hard names the target by colour and shape ("the red circle appears"), colour ("the red object
    appears") or shape ("the circle appears")."""
    words = query.split()
    if "object" in words:
        return "colour"
    return "shape" if len(words) == 3 else "colour+shape"


# ------------------------------------------------------------------------------------------------------- data


def make_train_set(work: Path, s: dict, workers: int) -> tuple[Path, Path, list[dict]]:
    """The RL train queries: videos TRAIN_OFFSET .. TRAIN_OFFSET + N - 1 of synthetic-hard's train seed (the
    first N of a seed are always the same; these follow the 4,096 the start model was trained on)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tempbench.synthetic import write_scene_video
    from tempbench.tasks import synthetic

    folder = work / "train"
    videos = folder / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    lo, n = int(s["train_offset"]), int(s["n_train"])
    info = synthetic.generate(folder / "annotations", "train", TASK, n_videos=lo + n, videos=False)
    records = [dict(r) for r in info["records"][lo:lo + n]]  # qid = the video's index in the train seed
    settings = synthetic.settings(TASK)
    seed = synthetic.TASKS[TASK]["splits"]["train"]["seed"]
    jobs = [(settings, seed, lo + k, str(videos), None) for k, r in enumerate(records)
            if not (videos / f"{r['vid']}.mp4").is_file()]
    t0 = time.perf_counter()
    if jobs:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                     mp_context=multiprocessing.get_context("spawn")) as pool:
                list(pool.map(write_scene_video, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
        else:
            for job in jobs:
                write_scene_video(job)
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    log(f"data: {len(records)} train queries (train seed {seed}, videos {lo}..{lo + n - 1}); {len(jobs)} videos "
        f"generated in {time.perf_counter() - t0:.1f} s")
    return path, videos, records


def make_eval_splits(s: dict) -> None:
    """heldout and val of synthetic-hard into the private cache (TEMPBENCH_HOME), before any worker starts."""
    from tempbench.annotations import ensure_synthetic

    t0 = time.perf_counter()
    for split in s["eval_splits"]:
        ensure_synthetic(split, TASK, first=s["eval_limit"])
    log(f"data: synthetic-hard {', '.join(s['eval_splits'])} ready in {time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------------------------------------------------------- start


def sha256_of(path: Path) -> str:
    from tempbench.io import sha256_file

    return sha256_file(path)


def prepare_start(start: Path | None, work: Path, shipped: Path | None = None) -> tuple[Path, dict]:
    """The study's start model as a folder `work/start`: every file of START_FILES with its pinned sha256.

    `start`: a model folder, or a `model.safetensors` (its other files then come from the shipped tiny-synthetic
    folder); None: the shipped tiny-synthetic folder (`shipped`, default the package's). Any file that is not the
    pinned one stops the study with a one-line error that says how to get the start from git history."""
    if shipped is None:
        from tempbench.models.zoo import PACKAGE_MODELS

        shipped = PACKAGE_MODELS / Path(START_DIR).name
    if start is None:
        sources, origin = {f: shipped / f for f in START_FILES}, "the shipped tiny-synthetic"
    elif start.is_dir():
        sources, origin = {f: start / f for f in START_FILES}, str(start)
    else:
        sources = {f: shipped / f for f in START_FILES}
        sources["model.safetensors"] = start
        origin = str(start)
    weights_how = (f"extract the pinned weights with `git show {START_COMMIT}:{START_DIR}/model.safetensors > "
                   "rl_study_start.safetensors` and pass --start rl_study_start.safetensors")
    folder_how = (f"extract the pinned folder with `mkdir -p rl_study_start && git archive {START_COMMIT} {START_DIR}"
                  " | tar -x -C rl_study_start --strip-components=3` and pass --start rl_study_start")
    for name, src in sources.items():
        if not src.is_file():
            raise SystemExit(f"error: the study's start file {src} does not exist; "
                             + (weights_how if name == "model.safetensors" else folder_how))
        digest = sha256_of(src)
        if digest != START_FILES[name]:
            raise SystemExit(
                f"error: the study starts from tiny-synthetic as of commit {START_COMMIT[:10]} ({name} sha256 "
                f"{START_FILES[name][:10]}), but {origin} has {name} sha256 {digest[:10]} (replaced since?); "
                + (weights_how if name == "model.safetensors" and (start is None or not start.is_dir())
                   else folder_how))
    folder = work / "start"
    folder.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        dst = folder / name
        if not (dst.is_file() and sha256_of(dst) == START_FILES[name]):
            shutil.copyfile(src, dst)
    info = {"name": START, "commit": START_COMMIT, "source": origin, "sha256": dict(START_FILES)}
    log(f"start: {origin} -> {folder} (weights sha256 {START_FILES['model.safetensors'][:10]}, commit "
        f"{START_COMMIT[:10]})")
    return folder, info


# ------------------------------------------------------------------------------------------------------- runs


@dataclass
class RunPlan:
    """One run of the study: an arm (or extra, or the start's evaluation) with one seed."""

    name: str
    arm: str
    seed: int
    kind: str  # rl | sft | hybrid | eval
    priority: int
    rerun_of: str | None = None

    @property
    def reserve_s(self) -> float:
        return EVAL_RESERVE_S[self.kind]


def run_name(arm: str, seed: int | None, rerun: bool = False) -> str:
    return arm if seed is None else f"{arm}-s{seed}" + ("-rerun" if rerun else "")


def make_plan(arms: list[str], seeds: list[int], extras: list[str], reruns: list[tuple[str, int]],
              start_eval: bool, more_seeds: list[int] | None = None) -> list[RunPlan]:
    """Priority order: the start's evaluation, then seed-major (every arm of seed 0, then seed 1, ...), the
    extras (seed 0), the reruns, then `more_seeds` seed-major: runs that fill the time left when the GPU is faster
    than planned (the scheduler starts them only when they are predicted to end before the deadline)."""
    plan: list[RunPlan] = []
    if start_eval:
        plan.append(RunPlan("start", "start", 0, "eval", 0))
    for seed in seeds:
        for arm in arms:
            plan.append(RunPlan(run_name(arm, seed), arm, seed, "sft" if arm == "sft" else "rl", len(plan)))
    for extra in extras:
        plan.append(RunPlan(run_name(extra, 0), extra, 0, "hybrid", len(plan)))
    for arm, seed in reruns:
        kind = "sft" if arm == "sft" else ("hybrid" if arm in EXTRAS else "rl")
        plan.append(RunPlan(run_name(arm, seed, rerun=True), arm, seed, kind, len(plan),
                            rerun_of=run_name(arm, seed)))
    for seed in more_seeds or []:
        if seed in seeds:
            raise SystemExit(f"error: seed {seed} is in both --seeds and --more-seeds")
        for arm in arms:
            plan.append(RunPlan(run_name(arm, seed), arm, seed, "sft" if arm == "sft" else "rl", len(plan)))
    return plan


def trainer_config(plan: RunPlan, s: dict, train_file: Path, videos: Path, out: Path) -> dict:
    """The `tempbench train` configuration of one run (keys that differ from default_config.toml)."""
    arm = {**ARMS, **EXTRAS}[plan.arm]
    cfg = {
        "model": s["start_path"], "task": TASK, "annotations": str(train_file), "videos": str(videos), "out": str(out),
        "seed": plan.seed,
        "schedule.epochs": s["epochs"], "schedule.cot": "plain",
        "rollout.group_size": s["group"], "rollout.max_new_tokens": s["max_new_tokens"],
        "rollout.temperature": s["temperature"], "rollout.batch_generate": True,
        "loss.beta": s["beta"],
        "optim.lr": s["lr"], "optim.batch_size": s["batch"], "optim.grad_accum": 1, "optim.scheduler": "constant",
        "optim.warmup_steps": 0, "optim.weight_decay": 0.0, "optim.max_grad_norm": 1.0,
        # float32 weights and compute (a 4.4 M model gains nothing from bf16; the shipped model was trained so)
        "model_opts.bf16": False, "model_opts.gradient_checkpointing": False,
        "data.workers": 0, "data.cache": True, "data.cache_on_device": True,
        "log.save_steps": s["steps"], "log.save_total_limit": 1, "log.progress": False,
        **{f"video.{k}": v for k, v in s["video"].items()},
        **arm["config"],
    }
    return cfg


def evaluate(model: str, split: str, out_dir: Path, s: dict, prompt: str, max_new_tokens: int) -> dict:
    """`tempbench run` (greedy, float32) of one model on one synthetic-hard split; the numbers a summary keeps."""
    from tempbench.runner import run as tb_run

    shutil.rmtree(out_dir, ignore_errors=True)
    t0 = time.perf_counter()
    summary = tb_run(model, TASK, split, out_dir=out_dir, batch_size=s["eval_batch"], resume=False,
                     limit=s["eval_limit"], video_settings=dict(s["video"]), prompt=prompt, workers=1,
                     prefetch="thread", progress=False, setting="fine-tuned",
                     generation={"max_new_tokens": max_new_tokens}, model_options={"dtype": "float32"})
    r = summary.result
    return {"split": split, "prompt": prompt, "n": r.n, "metrics": dict(r.metrics),
            "ci95": {k: list(v) for k, v in r.ci95.items()}, "failure_rate": r.failure_rate,
            "parse_failures": r.counts.failed, "seconds": round(time.perf_counter() - t0, 3)}


def write_state(run_dir: Path, phase: str, **extra) -> None:
    tmp = run_dir / "state.json.tmp"
    tmp.write_text(json.dumps({"phase": phase, "t": time.time(), **extra}))
    os.replace(tmp, run_dir / "state.json")


def worker_main(spec_path: Path) -> int:
    """One run: train (unless the start's evaluation), then evaluate; run_dir/summary.json says what happened."""
    spec = json.loads(spec_path.read_text())
    plan = RunPlan(**spec["plan"])
    s = spec["settings"]
    run_dir = Path(spec["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    write_state(run_dir, "starting")
    import torch

    torch.set_num_threads(1)
    if spec["deterministic"]:  # a rerun of one arm and seed gives the same numbers (CUBLAS_WORKSPACE_CONFIG is set)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    summary: dict = {"produced_by": PRODUCED_BY, "name": plan.name, "arm": plan.arm, "seed": plan.seed,
                     "kind": plan.kind, "rerun_of": plan.rerun_of, "label": spec["label"], "device": device,
                     "settings": s, "deterministic": spec["deterministic"], "complete": False, "timings": {}}
    t0 = time.perf_counter()
    model = s["start_path"]
    if plan.kind != "eval":
        from tempbench.train.config import load_config
        from tempbench.train.loop import train

        over = trainer_config(plan, s, Path(spec["train_file"]), Path(spec["videos"]), run_dir / "train")
        left = spec["deadline"] - time.time() - plan.reserve_s if spec["deadline"] else 0.0
        over["schedule.max_seconds"] = max(30.0, left) if spec["deadline"] else 0.0
        cfg = load_config(None, over)
        write_state(run_dir, "train", steps=s["steps"])
        res = train(cfg)
        summary["train"] = {"global_step": res["global_step"], "seconds": res["seconds"],
                            "stopped_early": res["stopped_early"],
                            "checkpoint": Path(res["checkpoints"][-1]).name if res["checkpoints"] else None}
        if torch.cuda.is_available():
            summary["train"]["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        summary["timings"]["train_s"] = time.perf_counter() - t0
        if res["stopped_early"] or res["global_step"] != s["steps"]:
            summary["incomplete"] = res["stopped_early"] or f"{res['global_step']} of {s['steps']} steps"
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            write_state(run_dir, "stopped")
            return 3
        model = str(run_dir / "train" / summary["train"]["checkpoint"])
    write_state(run_dir, "eval")
    t1 = time.perf_counter()
    evals = {}
    for split in s["eval_splits"]:
        evals[split] = evaluate(model, split, run_dir / "eval" / split, s, PLAIN_PROMPT, s["eval_max_new_tokens"])
        if plan.kind == "hybrid":
            evals[f"{split}-cot"] = evaluate(model, split, run_dir / "eval" / f"{split}-cot", s, COT_PROMPT,
                                             s["eval_cot_max_new_tokens"])
    summary["evals"] = evals
    summary["timings"]["eval_s"] = time.perf_counter() - t1
    summary["timings"]["total_s"] = time.perf_counter() - t0
    summary["complete"] = True
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if spec.get("drop_checkpoint") and summary.get("train", {}).get("checkpoint"):  # weights never leave the machine
        shutil.rmtree(run_dir / "train" / summary["train"]["checkpoint"], ignore_errors=True)
    write_state(run_dir, "done")
    return 0


# ------------------------------------------------------------------------------------------------------- archive


def run_files(run_dir: Path) -> list[Path]:
    """What a finished run keeps (no weights): its summary, the trainer's config and log, the evaluations."""
    keep = [run_dir / "summary.json", run_dir / "train" / "train_config.toml", run_dir / "train" / "train_log.jsonl",
            run_dir / "worker.log"]
    for ev in sorted((run_dir / "eval").glob("*")) if (run_dir / "eval").is_dir() else []:
        keep += [ev / n for n in ("run.json", "predictions.jsonl", "result.json", "details.jsonl.gz")]
    return [p for p in keep if p.is_file()]


def write_archive(path: Path, runs: dict[str, Path], extra: dict[str, bytes]) -> None:
    """`rl_study_<tag>.tar.gz` holding `runs/<name>/...` of every finished run and the `extra` files; atomic."""
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        for name, run_dir in sorted(runs.items()):
            for f in run_files(run_dir):
                tar.add(f, arcname=f"runs/{name}/{f.relative_to(run_dir)}")
    os.replace(tmp, path)


def archived_runs(folders: list[Path]) -> dict[str, str]:
    """name -> archive of every complete run found in the `rl_study_*.tar.gz` files of `folders`."""
    found: dict[str, str] = {}
    for folder in folders:
        files = sorted(folder.glob("rl_study_*.tar.gz")) if folder.is_dir() else [folder]
        for f in files:
            with tarfile.open(f) as tar:
                for m in tar.getmembers():
                    parts = m.name.split("/")
                    if len(parts) == 3 and parts[0] == "runs" and parts[2] == "summary.json":
                        summary = json.loads(tar.extractfile(m).read())
                        if summary.get("complete"):
                            found.setdefault(parts[1], f.name)
    return found


# ------------------------------------------------------------------------------------------------------- scheduling


@dataclass
class Running:
    plan: RunPlan
    proc: subprocess.Popen
    run_dir: Path
    started: float  # time.time()
    steps: int
    history: list = field(default_factory=list)  # (time.time(), optimizer step) while training


def train_progress(run_dir: Path) -> tuple[int, float] | None:
    """(last optimizer step, its time) from the run's train log, None before the first step."""
    path = run_dir / "train" / "train_log.jsonl"
    if not path.is_file():
        return None
    last = None
    with open(path, "rb") as fh:
        try:
            fh.seek(-4096, os.SEEK_END)
        except OSError:
            fh.seek(0)
        for line in fh.read().splitlines():
            try:
                last = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass
    return None if last is None else (int(last["step"]), path.stat().st_mtime)


def phase_of(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "state.json").read_text())["phase"]
    except (OSError, json.JSONDecodeError, KeyError):
        return "starting"


def predicted_end(r: Running, now: float, window_s: float = 20.0) -> float | None:
    """When the run should end (time.time()), from its recent step rate; None while unknown."""
    h = r.history
    if len(h) < 2 or h[-1][1] < 3:
        return None
    recent = [p for p in h if p[0] >= h[-1][0] - window_s]
    first = recent[0] if len(recent) >= 2 and recent[-1][1] > recent[0][1] else h[0]
    dt, ds = h[-1][0] - first[0], h[-1][1] - first[1]
    if ds <= 0 or dt <= 0:
        return None
    return now + (r.steps - h[-1][1]) * dt / ds + r.plan.reserve_s


def choose_preemption(running: list[Running], now: float, deadline: float) -> Running | None:
    """The lowest-priority running run, when some run is predicted to end after the deadline (stopping it frees
    the GPU and CPU time the others need); None when every known prediction fits."""
    late = [r for r in running if (e := predicted_end(r, now)) is not None and e > deadline - PACK_MARGIN_S]
    if not late:
        return None
    return max(running, key=lambda r: r.plan.priority)


def estimate_duration(plan: RunPlan, running: list[Running], finished: dict[str, dict], steps: int) -> float | None:
    """Seconds a new run of this kind should take now: steps at the slowest current rate of a running run of the
    same kind (else of a finished one), plus start-up and evaluation; None when nothing is known yet."""
    rates = []
    for r in running:
        if r.plan.kind in (plan.kind, "rl" if plan.kind == "hybrid" else plan.kind) and len(r.history) >= 2:
            (t0, s0), (t1, s1) = r.history[0], r.history[-1]
            if s1 > s0 and t1 > t0:
                rates.append((s1 - s0) / (t1 - t0))
    if not rates:
        rates = [f["steps_per_s"] for f in finished.values()
                 if f.get("kind") in (plan.kind, "rl" if plan.kind == "hybrid" else plan.kind)
                 and f.get("steps_per_s")]
    if plan.kind == "eval":
        return 20.0 + plan.reserve_s
    if not rates:
        return None
    return 20.0 + steps / min(rates) + plan.reserve_s


def study_main(args) -> int:
    s = study_settings(args.smoke)
    out = args.out.resolve()
    work = (args.work or Path("/tmp") / "rl-study-work").resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(work / "home")
    start_dir, start_info = prepare_start(args.start, work)
    s["start_path"], s["start_sha256"] = str(start_dir), START_FILES["model.safetensors"]
    deadline = WALL0 + args.deadline if args.deadline else 0.0
    archive = out / f"rl_study_{args.tag}.tar.gz"
    status_path = out / f"rl_study_{args.tag}.json"
    log_path = out / f"rl_study_{args.tag}_log.txt"
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] if args.seeds else list(s["seeds"])
    extras = [e.strip() for e in args.extra.split(",") if e.strip()] if args.extra else []
    reruns = []
    for item in args.rerun or []:
        arm, _, seed = item.partition(":")
        reruns.append((arm, int(seed or 0)))
    for a in arms + extras + [a for a, _ in reruns]:
        if a not in ARMS and a not in EXTRAS:
            raise SystemExit(f"error: unknown arm {a!r}; arms: {', '.join(ARMS)}; extras: {', '.join(EXTRAS)}")
    more = [int(x) for x in args.more_seeds.split(",") if x.strip()] if args.more_seeds else []
    plan = make_plan(arms, seeds, extras, reruns, not args.no_start_eval, more)
    done_before = archived_runs([Path(d) for d in args.done or []])
    todo = [p for p in plan if p.name not in done_before]

    import torch

    import tempbench
    from tempbench.io import git_revision

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    argv = sys.argv[1:]
    log(f"{PRODUCED_BY} {' '.join(argv)}")
    log(f"device {device}, {os.cpu_count()} CPUs, torch {torch.__version__}; {len(plan)} runs planned, "
        f"{len(plan) - len(todo)} already in {', '.join(args.done or []) or '-'}, {len(todo)} to run"
        + (f"; deadline {args.deadline:.0f} s" if deadline else ""))
    status: dict = {
        "produced_by": PRODUCED_BY, "command": " ".join(["benchmarks/rl_study.py", *argv]), "tag": args.tag,
        "tempbench_version": tempbench.__version__, "git_revision": git_revision(), "device": device,
        "cpu_count": os.cpu_count(), "versions": {"torch": torch.__version__}, "settings": s,
        "arms": {k: {"label": v["label"], "config": v["config"]} for k, v in {**ARMS, **EXTRAS}.items()},
        "start": start_info, "plan": [p.name for p in plan], "already_done": done_before, "parallel": args.parallel,
        "deadline_s": args.deadline, "deterministic": not args.nondeterministic,
        "runs": {}, "concurrency": [], "timings": {},
    }

    def save(final: bool = False) -> None:
        status["timings"]["elapsed_s"] = time.perf_counter() - T0
        status["left"] = [p.name for p in plan if p.name not in done_before
                          and status["runs"].get(p.name, {}).get("state") != "complete"]
        status["final"] = final
        text = json.dumps(status, indent=2) + "\n"
        status_path.write_text(text)
        log_path.write_text("\n".join(LOG) + "\n")
        finished = {n: work / "runs" / n for n, r in status["runs"].items() if r.get("state") == "complete"}
        write_archive(archive, finished, {"study.json": text.encode(), "log.txt": ("\n".join(LOG) + "\n").encode()})

    if not todo:
        log("nothing to run")
        save(final=True)
        return 0

    t0 = time.perf_counter()
    train_file, videos, _ = make_train_set(work, s, args.workers)
    make_eval_splits(s)
    status["timings"]["data_s"] = time.perf_counter() - t0
    save()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONHASHSEED": "0"}
    queue = list(todo)
    running: list[Running] = []
    finished: dict[str, dict] = {}
    last_preempt = 0.0
    next_sample = 0.0
    while queue or running:
        now = time.time()
        # start what fits
        while queue and len(running) < args.parallel:
            pick = None
            for p in queue:
                est = estimate_duration(p, running, finished, s["steps"])
                if not deadline or est is None or now + est < deadline - PACK_MARGIN_S:
                    pick = p
                    break
            if pick is None:
                break
            queue.remove(pick)
            running.append(start_worker(pick, s, work, train_file, videos, deadline, env,
                                        not args.nondeterministic))
            status["runs"][pick.name] = {"state": "running", "started_s": time.time() - WALL0}
            log(f"start {pick.name} ({len(running)} running)")
        if deadline and queue and not running:
            for p in queue:
                status["runs"][p.name] = {"state": "not started", "reason": "would not end before the deadline"}
            log(f"not started (would not end before the deadline): {', '.join(p.name for p in queue)}")
            queue.clear()
        # progress, ends
        for r in list(running):
            prog = train_progress(r.run_dir)
            if prog is not None and (not r.history or prog[0] != r.history[-1][1]):
                r.history.append((prog[1], prog[0]))
            rc = r.proc.poll()
            if rc is None:
                continue
            running.remove(r)
            rec = status["runs"][r.plan.name]
            rec["ended_s"] = time.time() - WALL0
            summary = r.run_dir / "summary.json"
            info = json.loads(summary.read_text()) if summary.is_file() else {}
            if rc == 0 and info.get("complete"):
                steps = info.get("train", {}).get("global_step") or 0
                secs = info.get("train", {}).get("seconds") or 0
                rec.update({"state": "complete", "train_s": secs, "steps": steps,
                            "steps_per_s": steps / secs if secs else None,
                            "eval_s": info["timings"].get("eval_s"),
                            "heldout_mIoU": info["evals"]["heldout"]["metrics"]["mIoU"]})
                finished[r.plan.name] = {"kind": r.plan.kind, "steps_per_s": rec["steps_per_s"]}
                log(f"done {r.plan.name}: held-out mIoU {rec['heldout_mIoU']:.2f}, R1@0.7 "
                    f"{info['evals']['heldout']['metrics']['R1@0.7']:.2f} ({steps} steps in {secs:.0f} s, "
                    f"{rec['ended_s'] - rec['started_s']:.0f} s in all)")
            else:
                tail = (r.run_dir / "worker.log").read_text(errors="replace")[-1500:] \
                    if (r.run_dir / "worker.log").is_file() else ""
                state = rec.get("state")
                rec.update({"state": state if state == "preempted" else "failed", "rc": rc,
                            "incomplete": info.get("incomplete"), "log_tail": tail})
                log(f"{rec['state']} {r.plan.name} (exit {rc}){': ' + str(info['incomplete']) if info.get('incomplete') else ''}"
                    + ("" if state == "preempted" else f"\n{tail[-600:]}"))
            save()
        # keep the deadline: stop the lowest-priority run when some run would end too late
        if deadline and running and now - last_preempt > 20.0:
            victim = choose_preemption(running, now, deadline)
            if victim is not None:
                status["runs"][victim.plan.name]["state"] = "preempted"
                log(f"preempt {victim.plan.name}: the running runs would not end before the deadline "
                    f"({len(running) - 1} left running)")
                stop_worker(victim)
                last_preempt = now
        if now >= next_sample:
            status["concurrency"].append([round(now - WALL0, 1), len(running)])
            next_sample = now + 10.0
        if deadline and now > deadline - PACK_MARGIN_S / 2:
            for r in running:
                status["runs"][r.plan.name]["state"] = "preempted"
            stop_workers(running)
            for p in queue:
                status["runs"][p.name] = {"state": "not started", "reason": "deadline"}
            queue.clear()
        time.sleep(0.5 if args.smoke else 2.0)
    status["timings"]["runs_s"] = time.perf_counter() - t0
    status["timings"]["total_s"] = time.perf_counter() - T0
    done_now = [n for n, r in status["runs"].items() if r.get("state") == "complete"]
    log(f"{len(done_now)} of {len(todo)} runs complete in {time.perf_counter() - T0:.0f} s; left: "
        f"{', '.join(p.name for p in plan if p.name not in done_before and p.name not in done_now) or 'none'}")
    save(final=True)
    return 0 if len(done_now) == len(todo) else 1


def start_worker(plan: RunPlan, s: dict, work: Path, train_file: Path, videos: Path, deadline: float, env: dict,
                 deterministic: bool) -> Running:
    run_dir = work / "runs" / plan.name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    label = {**ARMS, **EXTRAS}.get(plan.arm, {"label": "the start checkpoint (tiny-synthetic)"})["label"]
    spec = {"plan": plan.__dict__, "settings": s, "run_dir": str(run_dir), "train_file": str(train_file),
            "videos": str(videos), "deadline": deadline, "deterministic": deterministic, "label": label,
            "drop_checkpoint": True}
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=2))
    with open(run_dir / "worker.log", "w") as fh:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "worker", "--spec", str(run_dir / "spec.json")],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    steps = 0 if plan.kind == "eval" else s["steps"]
    return Running(plan, proc, run_dir, time.time(), steps)


def stop_worker(r: Running) -> None:
    stop_workers([r])


def stop_workers(runs: list[Running], grace_s: float = 10.0) -> None:
    """SIGTERM every worker's own process group (start_new_session) at once, then SIGKILL what is left after
    `grace_s` in all: stopping many runs at the deadline costs one grace period, not one per run."""
    for r in runs:
        try:
            os.killpg(r.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.time() + grace_s
    for r in runs:
        try:
            r.proc.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(r.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            r.proc.wait()


# ------------------------------------------------------------------------------------------------------- prestudy


def prestudy_main(args) -> int:
    """Sample G answers per RL train query from the start checkpoint (the rollout sampler of the trainer, at the
    study's temperature), plus its greedy answer; the distribution of the group's best IoU."""
    import numpy as np
    import torch

    import tempbench
    from tempbench.io import git_revision
    from tempbench.train.config import load_config
    from tempbench.train.loop import Trainer, _seed_everything
    from tempbench.train.rollout import SamplingSettings, sample_completions

    s = study_settings(args.smoke)
    out = args.out.resolve()
    work = (args.work or out / "work").resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(work / "home")
    start_dir, start_info = prepare_start(args.start, work)
    s["start_path"], s["start_sha256"] = str(start_dir), START_FILES["model.safetensors"]
    torch.set_num_threads(args.threads or torch.get_num_threads())
    train_file, videos, records = make_train_set(work, s, args.workers)
    if args.limit:
        records = records[: args.limit]
    g = args.group or s["group"]
    if args.smoke:
        g = min(g, 3)
    cfg = load_config(None, {**trainer_config(RunPlan("prestudy", "grpo", args.seed, "rl", 0), s, train_file, videos,
                                              work / "prestudy-trainer"), "rollout.group_size": g,
                             "loss.beta": 0.0})
    _seed_everything(args.seed)
    tr = Trainer(cfg)
    model = tr.unwrapped_model()
    greedy = SamplingSettings(max_new_tokens=s["max_new_tokens"], do_sample=False)
    rows = []
    t0 = time.perf_counter()
    for k, rec in enumerate(records):
        item = tr.make_item(rec, "grounding", False)
        sampled = sample_completions(model, item.prompt_ids, item.video, g, tr.sampling, tr.eos, tr.pad_id)
        top = sample_completions(model, item.prompt_ids, item.video, 1, greedy, tr.eos, tr.pad_id)[0]
        texts = [tr.tokenizer.decode(c, skip_special_tokens=True) for c in sampled]
        ious = [tr.reward_fn(t, rec, "grounding", False).accuracy for t in texts]
        g_text = tr.tokenizer.decode(top, skip_special_tokens=True)
        rows.append({"qid": rec["qid"], "vid": rec["vid"], "form": query_form(rec["query"]),
                     "ious": [round(float(x), 6) for x in ious],
                     "greedy_iou": round(float(tr.reward_fn(g_text, rec, "grounding", False).accuracy), 6),
                     "greedy": g_text, "example": texts[0]})
        if (k + 1) % 64 == 0 or k + 1 == len(records):
            log(f"prestudy: {k + 1}/{len(records)} queries ({time.perf_counter() - t0:.0f} s)")
    best = np.array([max(r["ious"]) for r in rows])
    greedy_iou = np.array([r["greedy_iou"] for r in rows])

    def share(mask) -> float:
        return float(np.mean(mask)) if len(mask) else float("nan")

    def block(sel) -> dict:
        """Shares (0-1) of one set of queries: the group's best IoU, every sample, the greedy answer."""
        b, gi = best[sel], greedy_iou[sel]
        e = np.array([x for r, keep in zip(rows, sel) if keep for x in r["ious"]])
        out = {"n": int(sel.sum()), "best_mean": float(b.mean()), "all_zero": share(b <= 0.0)}
        out.update({f"best_ge_{t}": share(b >= t) for t in (0.3, 0.5, 0.7, 0.9)})
        out.update({"sample_mean": float(e.mean()), "sample_zero": share(e <= 0.0), "sample_ge_0.5": share(e >= 0.5),
                    "sample_ge_0.7": share(e >= 0.7), "greedy_mean": float(gi.mean()),
                    "greedy_ge_0.5": share(gi >= 0.5), "greedy_ge_0.7": share(gi >= 0.7)})
        return out

    summary = block(np.ones(len(rows), dtype=bool))
    # the samples of a query are i.i.d.: the first k of the G are a group of k (GRPO with G = k; TempSamp-R1's
    # on-policy rows with G = k + 1)
    by_k = {}
    for k in range(1, g + 1):
        bk = np.array([max(r["ious"][:k]) for r in rows])
        by_k[str(k)] = {"best_mean": float(bk.mean()), "all_zero": share(bk <= 0.0),
                        **{f"best_ge_{t}": share(bk >= t) for t in (0.3, 0.5, 0.7, 0.9)}}
    forms = {}
    for form in ("colour+shape", "colour", "shape"):
        sel = np.array([r["form"] == form for r in rows])
        if sel.any():
            forms[form] = block(sel)
    hist, edges = np.histogram(best, bins=np.linspace(0, 1, 11))
    zero = int((best <= 0).sum())
    res = {
        "produced_by": PRODUCED_BY + " prestudy", "command": " ".join(["benchmarks/rl_study.py", *sys.argv[1:]]),
        "tempbench_version": tempbench.__version__, "git_revision": git_revision(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "start": s["start"], "start_pin": start_info, "task": TASK, "queries": f"the study's RL train queries (train seed videos "
                                                      f"{s['train_offset']}..{s['train_offset'] + len(rows) - 1})",
        "group": g, "temperature": s["temperature"], "max_new_tokens": s["max_new_tokens"], "seed": args.seed,
        "video": s["video"], "n": len(rows), "study_group": s["group"], "summary": summary, "by_form": forms,
        "best_of_k": by_k,
        "histogram_best": {"edges": [round(float(e), 2) for e in edges], "counts": [int(c) for c in hist],
                           "zero": zero},
        "seconds": time.perf_counter() - t0, "rows": rows,
    }
    (out / "rl_study_prestudy.json").write_text(json.dumps(res, indent=2) + "\n")
    log(f"prestudy: n {len(rows)}, G {g}: best-of-G IoU mean {summary['best_mean']:.3f}; all {g} samples at IoU 0: "
        f"{100 * summary['all_zero']:.1f}%; best >= 0.5: {100 * summary['best_ge_0.5']:.1f}%, >= 0.7: "
        f"{100 * summary['best_ge_0.7']:.1f}%; greedy IoU mean {summary['greedy_mean']:.3f}")
    return 0


# ------------------------------------------------------------------------------------------------------- probe


def probe_main(args) -> int:
    """Optimizer steps per second of GRPO runs with the study's settings, K processes at once on the device, for
    each K of --levels, `--seconds` each (then stopped): picks --parallel for `study` and checks the estimate."""
    import torch

    s = study_settings(args.smoke)
    s["n_train"] = max(s["batch"], args.queries)
    out = args.out.resolve()
    work = (args.work or Path("/tmp") / "rl-study-probe").resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TEMPBENCH_HOME"] = str(work / "home")
    start_dir, _ = prepare_start(args.start, work)
    s["start_path"], s["start_sha256"] = str(start_dir), START_FILES["model.safetensors"]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    train_file, videos, _ = make_train_set(work, s, args.workers)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    res = {"produced_by": PRODUCED_BY + " probe", "command": " ".join(["benchmarks/rl_study.py", *sys.argv[1:]]),
           "device": device, "cpu_count": os.cpu_count(), "settings": s, "levels": []}
    for k in [int(x) for x in args.levels.split(",")]:
        runs = []
        for i in range(k):
            p = RunPlan(f"probe-k{k}-{i}", "grpo", 100 + i, "rl", i)
            runs.append(start_worker(p, s, work, train_file, videos, time.time() + args.seconds + 60, env, True))
        t_end = time.time() + args.seconds + 45  # start-up (imports, model, first epoch's videos) + the window
        while time.time() < t_end:
            for r in runs:
                prog = train_progress(r.run_dir)
                if prog is not None and (not r.history or prog[0] != r.history[-1][1]):
                    r.history.append((prog[1], prog[0]))
            time.sleep(1.0)
        rates = []
        for r in runs:
            stop_worker(r)
            h = [p for p in r.history if p[0] >= r.history[-1][0] - args.seconds] if r.history else []
            if len(h) >= 2 and h[-1][1] > h[0][1]:
                rates.append((h[-1][1] - h[0][1]) / (h[-1][0] - h[0][0]))
        level = {"processes": k, "measured": len(rates), "steps_per_s": rates,
                 "mean_steps_per_s": sum(rates) / len(rates) if rates else None,
                 "aggregate_steps_per_s": sum(rates) if rates else None}
        if rates:
            level["run_seconds_estimate"] = s["steps"] / min(rates)
        res["levels"].append(level)
        log(f"probe: {k} processes: " + (f"{level['mean_steps_per_s']:.3f} steps/s each, aggregate "
                                         f"{level['aggregate_steps_per_s']:.3f}; a {s['steps']}-step run would take "
                                         f"{level['run_seconds_estimate']:.0f} s" if rates else "no steps measured"))
        (out / "rl_study_probe.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "rl_study_probe_log.txt").write_text("\n".join(LOG) + "\n")
    return 0


# ------------------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    default_workers = max(1, min(15, (os.cpu_count() or 2) - 1))

    st = sub.add_parser("study", help="the study's runs (see above)")
    st.add_argument("--out", type=Path, required=True, help="archive, status and log (at most 3 files)")
    st.add_argument("--work", type=Path, default=None, help="videos, runs, checkpoints (default /tmp/rl-study-work)")
    st.add_argument("--tag", default="chunk", help="names the files in --out: rl_study_<tag>.tar.gz ...")
    st.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    st.add_argument("--seeds", default=None, help="comma-separated (default: the study's 0,1,2)")
    st.add_argument("--more-seeds", default="", help="comma-separated seeds run last, only as time allows")
    st.add_argument("--extra", default="", help=f"comma-separated extras (seed 0): {', '.join(EXTRAS)}")
    st.add_argument("--rerun", action="append", help="ARM:SEED again, as ARM-sSEED-rerun (reproducibility check)")
    st.add_argument("--done", action="append", help="folder (or archive) of earlier rl_study_*.tar.gz: skip their "
                                                    "complete runs (repeatable)")
    st.add_argument("--no-start-eval", action="store_true", help="do not evaluate the start checkpoint")
    st.add_argument("--parallel", type=int, default=max(1, min(14, (os.cpu_count() or 2) - 2)),
                    help="runs at once (one process each)")
    st.add_argument("--deadline", type=float, default=500.0, help="seconds from the start by which every run "
                                                                   "has ended and the files are written; 0 = none")
    st.add_argument("--workers", type=int, default=default_workers, help="processes that generate the videos")
    st.add_argument("--nondeterministic", action="store_true", help="skip torch.use_deterministic_algorithms")
    st.add_argument("--smoke", action="store_true", help="CPU smoke test: tiny sizes (SMOKE), 2 seeds")
    st.add_argument("--start", type=Path, default=None,
                    help="the start model: a folder, or its model.safetensors (default: the shipped tiny-synthetic); "
                         "checked against the pinned sha256 (START_FILES)")

    ps = sub.add_parser("prestudy", help="group-best IoU distribution of the start checkpoint")
    ps.add_argument("--out", type=Path, required=True)
    ps.add_argument("--work", type=Path, default=None)
    ps.add_argument("--seed", type=int, default=0)
    ps.add_argument("--group", type=int, default=8, help="samples per query (their first k give best-of-k, k <= G)")
    ps.add_argument("--limit", type=int, default=0, help="the first N train queries only")
    ps.add_argument("--threads", type=int, default=0)
    ps.add_argument("--workers", type=int, default=default_workers)
    ps.add_argument("--smoke", action="store_true")
    ps.add_argument("--start", type=Path, default=None,
                    help="the start model: a folder, or its model.safetensors (default: the shipped tiny-synthetic); "
                         "checked against the pinned sha256 (START_FILES)")

    pr = sub.add_parser("probe", help="steps/s at several concurrencies (optional, before `study`)")
    pr.add_argument("--out", type=Path, required=True)
    pr.add_argument("--work", type=Path, default=None)
    pr.add_argument("--levels", default="1,6,12", help="process counts to measure")
    pr.add_argument("--seconds", type=float, default=40.0, help="measured window per level")
    pr.add_argument("--queries", type=int, default=64, help="train queries (the first epoch prepares them)")
    pr.add_argument("--workers", type=int, default=default_workers)
    pr.add_argument("--smoke", action="store_true")
    pr.add_argument("--start", type=Path, default=None,
                    help="the start model: a folder, or its model.safetensors (default: the shipped tiny-synthetic); "
                         "checked against the pinned sha256 (START_FILES)")

    wk = sub.add_parser("worker", help="one run (started by `study`)")
    wk.add_argument("--spec", type=Path, required=True)

    args = ap.parse_args(argv)
    if args.cmd == "worker":
        return worker_main(args.spec)
    if args.cmd == "prestudy":
        return prestudy_main(args)
    if args.cmd == "probe":
        return probe_main(args)
    return study_main(args)


if __name__ == "__main__":
    sys.exit(main())
