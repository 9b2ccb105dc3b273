"""Runner: task x model -> a run folder (predictions.jsonl, run.json, result.json, details.jsonl.gz).

- predictions are appended and flushed (fsync) per batch, so a killed run loses at most the batch in flight;
  `resume` (default) skips queries already in the file and repairs a half-written last line;
- a missing or undecodable video becomes an `error` row and the run goes on (the count is in the result);
- videos are decoded (and, for adapters that offer `prepare_video`, preprocessed) in parallel worker threads
  ahead of the model, so the accelerator does not wait on the CPU;
- data-parallel: under torchrun / accelerate launch (env RANK/WORLD_SIZE) or with `shard=(i, n)`, each rank runs
  every n-th query into `predictions.rank{i}-of-{n}.jsonl`; rank 0 merges them into `predictions.jsonl`
  (sorted by qid) once every rank has finished, then scores.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from pathlib import Path

from . import __version__
from .errors import TempbenchError


def model_slug(model: str) -> str:
    """A folder name for a model spec: `Qwen/Qwen2.5-VL-7B-Instruct` -> `Qwen--Qwen2.5-VL-7B-Instruct`."""
    slug = model.rstrip("/").replace(":", "-")
    if os.sep in slug and Path(model).exists():
        slug = Path(model).name
    return re.sub(r"[^A-Za-z0-9._-]+", "--", slug).strip("-") or "model"


def default_run_dir(task: str, split: str, model: str) -> Path:
    return Path("runs") / f"{task}-{split}" / model_slug(model)


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int]:
    """`"i/n"` (0-based i) -> (i, n); the environment of torchrun/accelerate when not given."""
    if shard is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        return rank, world
    if isinstance(shard, tuple):
        i, n = shard
    else:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
        if not m:
            raise TempbenchError(f"--shard {shard!r} is not i/n", "e.g. --shard 0/4 for the first of 4 shards")
        i, n = int(m.group(1)), int(m.group(2))
    if not (n >= 1 and 0 <= i < n):
        raise TempbenchError(f"--shard {i}/{n}: need 0 <= i < n", "e.g. --shard 0/4 ... --shard 3/4")
    return i, n


# ---------------------------------------------------------------------------------------------------------------
# append-only predictions


def read_done(path: Path, repair: bool = True) -> dict[int, dict]:
    """qid -> row of a predictions file; a half-written last line (a killed run) is cut off, keeping the rest
    (with `repair=False` it is only ignored: for reading another process's file)."""
    done: dict[int, dict] = {}
    if not path.exists():
        return done
    data = path.read_bytes()
    good_end = 0
    pos = 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        if not line.endswith(b"\n"):
            break  # unterminated last line: written by a run that was killed mid-write
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            lineno = data[:pos].count(b"\n")
            raise TempbenchError(f"{path}: line {lineno} is not valid JSON",
                                 "the file was edited by hand; fix or remove that line, then resume") from None
        done[int(row["qid"])] = row
        good_end = pos
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return done


class PredictionWriter:
    """Append JSON lines and make them durable (flush + fsync) once per batch."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh = open(path, "a", encoding="utf-8")

    def write_batch(self, rows: list[dict]) -> None:
        self.fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()


def merge_shards(run_dir: Path, n: int, out: Path) -> int:
    """Merge `predictions.rank{i}-of-{n}.jsonl` into `out`, sorted by qid; returns the row count."""
    rows: dict[int, dict] = {}
    for i in range(n):
        rows.update(read_done(run_dir / f"predictions.rank{i}-of-{n}.jsonl", repair=False))
    text = "".join(json.dumps(rows[q], ensure_ascii=False) + "\n" for q in sorted(rows))
    from .annotations import atomic_write_text

    atomic_write_text(out, text)
    return len(rows)


# ---------------------------------------------------------------------------------------------------------------
# the run


class VideoLoader:
    """Find, decode and preprocess one query's video (picklable: it runs in prefetch worker processes, so the
    CPU work neither waits for nor slows down, through the GIL, the thread that drives the accelerator)."""

    def __init__(self, video_dir, settings, preprocess, use_video: bool):
        self.video_dir, self.settings, self.preprocess, self.use_video = video_dir, settings, preprocess, use_video

    def __call__(self, rec):
        if not self.use_video:
            return None
        from .video import decode_video, find_video

        try:  # one intra-op thread per worker: the workers already use every core
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        path = find_video(self.video_dir, rec["vid"])
        if path is None:
            raise TempbenchError(f"video {rec['vid']} not found in {self.video_dir}")
        clip = decode_video(path, self.settings)
        return self.preprocess(clip) if self.preprocess is not None else clip


def hardware() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpus"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]} q/s"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)


def run(model: str, task: str, split: str | None = None, videos: str | Path | None = None,
        out_dir: str | Path | None = None, limit: int | None = None, batch_size: int = 8,
        shard: str | tuple[int, int] | None = None, resume: bool = True, setting: str | None = None,
        prompt: str | None = None, profile: str = "canonical", video_settings: dict | None = None,
        generation: dict | None = None, workers: int | None = None, progress: bool = True,
        prefetch: str = "process",
        score: bool = True, model_options: dict | None = None) -> dict:
    """Run `model` over a task split and return the result record (or, on a non-zero rank, a status dict).

    `model` follows the --model grammar (docs/design.md): `baseline:prior|random|center`, `openai:NAME`,
    a zoo alias, a local folder, or a hub id. See the module docstring for files, resume and sharding.
    """
    from .annotations import load_annotations
    from .models import load_model
    from .models.base import GenerationSettings, ModelInput, needs_video
    from .prompts import get_prompt, render
    from .tasks import check_split, get_task
    from .video import Prefetcher, VideoSettings

    spec = get_task(task)
    split = check_split(spec, split or spec.default_split)
    rank, world = parse_shard(shard)
    records = load_annotations(spec.name, split)
    if limit is not None:
        if limit < 1:
            raise TempbenchError(f"--limit {limit}: must be >= 1")
        records = records[:limit]
    mine = records[rank::world]
    run_dir = Path(out_dir) if out_dir else default_run_dir(spec.name, split, model)
    pred_path = run_dir / ("predictions.jsonl" if world == 1 else f"predictions.rank{rank}-of-{world}.jsonl")
    if world > 1:  # a marker left by an earlier run (e.g. with another --limit) must not let rank 0 merge early
        (run_dir / f"rank{rank}-of-{world}.done").unlink(missing_ok=True)
    if not resume and pred_path.exists():
        raise TempbenchError(f"{pred_path} exists and --no-resume was given",
                             "remove it, choose another --out, or resume (the default)")
    done = read_done(pred_path)
    todo = [r for r in mine if r["qid"] not in done]

    # the zoo's recommended video settings, with the caller's overrides on top (passing only the overrides would
    # make load_model ignore the zoo's settings, and the runner would decode with the defaults)
    from .models import zoo

    entry = None if model.startswith(("baseline:", "openai:")) else zoo.find(model)
    vs = VideoSettings.from_dict({**(dict(entry.video) if entry is not None else {}), **(video_settings or {})})
    gen = GenerationSettings(**(generation or {}))
    options = dict(model_options or {})
    if (world > 1 and "LOCAL_RANK" in os.environ and "device" not in options
            and not model.startswith(("baseline:", "openai:")) and _cuda_available()):
        # one GPU per local rank for transformers models (baselines and servers take no device option)
        options["device"] = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    if model.startswith("baseline:"):
        options.setdefault("task", spec.name)
    adapter = load_model(model, generation=gen, video_settings=vs, **options)
    info = adapter.info() if hasattr(adapter, "info") else {"id": model}
    # the zoo entry's prompt (not info()["zoo"], which names it `recommended_prompt`) when it is made for this
    # kind of task (the zoo's prompts are grounding prompts), else TempSamp-R1's plain prompt for the kind
    zoo_prompt = entry.prompt if entry is not None and entry.prompt else None
    if zoo_prompt is not None and get_prompt(zoo_prompt).kind != spec.kind:
        zoo_prompt = None
    prompt_name = prompt or zoo_prompt or (
        "tempsamp-r1-highlight" if spec.kind == "highlights" else "tempsamp-r1-plain")
    prompt_obj = get_prompt(prompt_name)
    use_video = needs_video(adapter)
    if use_video and videos is None and not spec.builtin:
        raise TempbenchError(f"model {model} needs the videos of {spec.title}",
                             f"pass --videos DIR (check them first: `tempbench data check-videos {spec.name} "
                             "--videos DIR`)")
    video_dir = Path(videos) if videos else None
    if spec.builtin and video_dir is None:
        from .annotations import ensure_synthetic

        video_dir = ensure_synthetic(split)
    setting = setting or (entry.setting.get(spec.name) if entry is not None else None) or info.get("setting") \
        or "zero-shot"

    predict_windows = getattr(adapter, "predict", None)
    direct = predict_windows is not None and not use_video
    run_json = {
        "schema": "tempbench.run/1", "task": spec.name, "split": split, "model": model,
        "model_info": info, "setting": setting, "prompt": prompt_name, "prompt_sha256": prompt_obj.sha256,
        "video": vs.to_dict() if use_video else None,
        # adapters that predict windows directly (baselines) generate no text
        "generation": None if direct else gen.to_dict(),
        "backend": info.get("backend"), "hardware": hardware(), "tempbench_version": __version__,
        "limit": limit, "batch_size": batch_size, "world_size": world, "profile": profile,
    }
    run_dir.mkdir(parents=True, exist_ok=True)

    preprocess = getattr(adapter, "video_preprocessor", None) if use_video else None
    if prefetch not in ("process", "thread"):
        raise TempbenchError(f"prefetch {prefetch!r}: use 'process' or 'thread'")
    if prefetch == "process" and preprocess is not None:
        import pickle

        try:
            pickle.dumps(preprocess)
        except Exception:  # a custom in-memory processor: fall back to threads
            prefetch = "thread"
    load = VideoLoader(video_dir, vs, preprocess if use_video else None, use_video)

    writer = PredictionWriter(pred_path)
    n_workers = workers or max(1, min(16, (os.cpu_count() or 2) - 1))
    run_json["prefetch"] = {"kind": prefetch, "workers": n_workers}
    counts = {"queries": len(todo), "errors": 0, "video_missing": 0, "video_undecodable": 0}
    t_start = time.perf_counter()
    model_seconds = 0.0
    status = "finished"
    try:
        with _progress(progress) as bar:
            task_id = bar.add_task(f"{spec.name} {split} · {model_slug(model)}", total=len(mine),
                                   completed=len(mine) - len(todo), rate="-")
            if direct:
                for start in range(0, len(todo), max(batch_size, 256)):
                    chunk = todo[start:start + max(batch_size, 256)]
                    wins = predict_windows(chunk)
                    writer.write_batch([{"qid": r["qid"], "vid": r["vid"], "windows": [list(map(float, w))]}
                                        for r, w in zip(chunk, wins)])
                    bar.update(task_id, advance=len(chunk))
            else:
                batch: list[tuple[dict, object]] = []
                done_now = 0

                def flush():
                    nonlocal model_seconds, done_now
                    if not batch:
                        return
                    inputs = [ModelInput(clip=value, prompt=render(prompt_name, query=rec["query"],
                                                                   duration=rec["duration"]),
                                         qid=rec["qid"], meta={"vid": rec["vid"], "duration": rec["duration"]})
                              for rec, value in batch]
                    t0 = time.perf_counter()
                    texts = adapter.generate(inputs)
                    model_seconds += time.perf_counter() - t0
                    writer.write_batch([{"qid": rec["qid"], "vid": rec["vid"], "output": text}
                                        for (rec, _), text in zip(batch, texts)])
                    done_now += len(batch)
                    elapsed = time.perf_counter() - t_start
                    bar.update(task_id, advance=len(batch), rate=f"{done_now / elapsed:.2f}")
                    batch.clear()

                kind = prefetch if use_video else "thread"
                with Prefetcher(todo, fn=load, workers=n_workers, ahead=max(2 * batch_size, 4), kind=kind) as pre:
                    for item in pre:
                        rec = item.item
                        if not item.ok:
                            kind = "video_missing" if "not found" in item.error else "video_undecodable"
                            counts[kind] += 1
                            counts["errors"] += 1
                            writer.write_batch([{"qid": rec["qid"], "vid": rec["vid"], "error": item.error}])
                            bar.update(task_id, advance=1)
                            continue
                        batch.append((rec, item.value))
                        if len(batch) >= batch_size:
                            flush()
                    flush()
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:  # e.g. a server that stopped answering: run.json must not say "finished"
        status = "failed"
        raise
    finally:
        writer.close()
        if hasattr(adapter, "info"):  # again: a server's model name, fingerprints and request counts are known now
            run_json["model_info"] = info = adapter.info()
            run_json["backend"] = info.get("backend")
        if hasattr(adapter, "close"):
            adapter.close()
        elapsed = time.perf_counter() - t_start
        run_json["status"] = status
        run_json["throughput"] = {
            "queries": len(todo), "seconds": round(elapsed, 3),
            "queries_per_s": round(len(todo) / elapsed, 4) if elapsed > 0 and todo else None,
            "model_seconds": round(model_seconds, 3),
        }
        run_json["video_coverage"] = counts
        from .annotations import atomic_write_text

        name = "run.json" if world == 1 else f"run.rank{rank}-of-{world}.json"
        atomic_write_text(run_dir / name, json.dumps(run_json, indent=2) + "\n")
    if world > 1:
        (run_dir / f"rank{rank}-of-{world}.done").write_text("done\n")
        if rank != 0:
            return {"status": "rank finished", "rank": rank, "predictions": str(pred_path)}
        deadline = time.time() + float(os.environ.get("TEMPBENCH_MERGE_TIMEOUT", "3600"))
        waiting = set(range(1, world))

        def rank_complete(i: int) -> bool:
            # its marker, and every one of its queries in its file: a stale marker of a rank that has not yet
            # started (and removed it) does not count
            if not (run_dir / f"rank{i}-of-{world}.done").exists():
                return False
            have = read_done(run_dir / f"predictions.rank{i}-of-{world}.jsonl", repair=False)
            return all(r["qid"] in have for r in records[i::world])

        while waiting:
            waiting = {i for i in waiting if not rank_complete(i)}
            if not waiting:
                break
            if time.time() > deadline:
                raise TempbenchError(f"{run_dir}: rank(s) {sorted(waiting)} of {world} did not finish",
                                     "re-run the missing ranks (they resume), or raise TEMPBENCH_MERGE_TIMEOUT")
            time.sleep(0.5)
        merge_shards(run_dir, world, run_dir / "predictions.jsonl")
        ranks = [json.loads((run_dir / f"run.rank{i}-of-{world}.json").read_text()) for i in range(world)]
        run_json["throughput"] = {
            "queries": sum(r["throughput"]["queries"] for r in ranks),
            "seconds": max(r["throughput"]["seconds"] for r in ranks),
        }
        tp = run_json["throughput"]
        tp["queries_per_s"] = round(tp["queries"] / tp["seconds"], 4) if tp["seconds"] else None
        run_json["video_coverage"] = {k: sum(r["video_coverage"][k] for r in ranks) for k in counts}
        atomic_write_text(run_dir / "run.json", json.dumps(run_json, indent=2) + "\n")
    if not score:
        return {"status": status, "run_dir": str(run_dir)}
    import warnings

    from .scoring import score as score_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = score_file(run_dir / "predictions.jsonl", spec.name, split, profile=profile,
                            out=run_dir / "result.json", details=run_dir / "details.jsonl.gz")
    result["run_dir"] = str(run_dir)
    return result
