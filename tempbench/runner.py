"""Runner: task x model -> a run folder (run.json, predictions.jsonl, result.json, details.jsonl.gz).

- A run is its identity (`tempbench.results.RunConfig`, written as `run.json` before the first prediction): the
  task, split, annotations, the model and its weight bytes, the prompt text, the video and generation settings.
  Into a folder that holds another identity nothing is written: the refusal names each differing field, and the
  ways out (another `--out`, or `--restart`, which moves the old folder aside). The default folder is named after
  the identity (`runs/<task>-<split>/<model>-<fingerprint8>/`), so a changed setting gets a folder of its own.
- One writer per predictions file: an OS lock (released when the process dies) whose file names the holder's pid.
- Predictions are appended and flushed (fsync) per batch, so a killed run loses at most the batch in flight; a
  resumed run skips queries already answered and cuts a half-written last line. `retry_errors` runs again the
  queries whose row is an `error` row (a video that was missing); the new row supersedes the old one.
- A missing or undecodable video becomes an `error` row and the run goes on.
- Queries are grouped by video and cut into batches by `tempbench.batching` (a deterministic function of the whole
  query list, optionally under a token budget: a resumed run forms the same batches); each video is decoded (and
  preprocessed, for adapters that offer it) once for all its queries, in worker processes ahead of the model (one
  torch and one ffmpeg thread each); the workers exit when the run's process dies. Every query of a video gets the
  same prepared clip object, which lets an adapter encode and prefill the video once (the Qwen path's prefix
  sharing). Neither changes an answer, so neither is part of the identity; both are recorded in `execution`.
- Data-parallel: under torchrun / accelerate launch (env RANK/WORLD_SIZE) or with `shard=(i, n)`, each rank runs
  every n-th query into `predictions.rank{i}-of-{n}.jsonl`; rank 0 merges them into `predictions.jsonl` (sorted by
  qid) once every rank has finished, then scores.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__, io
from .errors import TempbenchError
from .models.base import BatchError, FailedAnswer
from .results import Execution, Result, RunConfig, RunOutcome, VideoCoverage, write_details


@dataclass(frozen=True)
class RunSummary:
    """What `run` returns: the run folder, its identity and settings, and (after scoring) the result."""

    run_dir: Path
    config: RunConfig
    predictions: Path
    status: str  # finished | rank finished (a non-zero rank of a sharded run) | predicted (score=False)
    result: Result | None = None
    moved_aside: Path | None = None  # where --restart moved the old run


def model_slug(model: str) -> str:
    """A folder name for a model spec: `Qwen/Qwen2.5-VL-7B-Instruct` -> `Qwen--Qwen2.5-VL-7B-Instruct`."""
    slug = model.rstrip("/").replace(":", "-")
    if os.sep in slug and Path(model).exists():
        slug = Path(model).name
    return re.sub(r"[^A-Za-z0-9._-]+", "--", slug).strip("-") or "model"


def default_run_dir(config: RunConfig) -> Path:
    """`runs/<task>-<split>/<model-slug>-<fingerprint8>`: one folder per run identity."""
    return Path("runs") / f"{config.task}-{config.split}" / f"{model_slug(config.model.spec)}-{config.fingerprint[:8]}"


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
    """qid -> the LAST row of each qid in a run's predictions file (a retried error row supersedes the first);
    a half-written last line (a killed run) is cut off, keeping the rest (with `repair=False` it is only ignored:
    for reading another process's file)."""
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
            done[int(row["qid"])] = row
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            lineno = data[:pos].count(b"\n")
            raise TempbenchError(f"{path}: line {lineno} is not a row written by `tempbench run`",
                                 "the file was edited by hand; fix or remove that line, then resume") from None
        good_end = pos
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return done


class PredictionWriter:
    """Append JSON lines and make them durable (flush + fsync) once per batch."""

    def __init__(self, path: Path):
        self.path = path
        self.fh = open(path, "a", encoding="utf-8")

    def write_batch(self, rows: list[dict]) -> None:
        try:
            self.fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            self.fh.flush()
            os.fsync(self.fh.fileno())
        except OSError as exc:
            raise io.disk_error(exc, self.path, "predictions") from None

    def close(self) -> None:
        if not self.fh.closed:
            try:
                self.fh.close()
            except OSError:  # the write that failed already said why
                pass


def merge_shards(run_dir: Path, n: int, out: Path) -> int:
    """Merge `predictions.rank{i}-of-{n}.jsonl` into `out`, sorted by qid; returns the row count."""
    rows: dict[int, dict] = {}
    for i in range(n):
        rows.update(read_done(run_dir / f"predictions.rank{i}-of-{n}.jsonl", repair=False))
    io.atomic_write_text(out, "".join(json.dumps(rows[q], ensure_ascii=False) + "\n" for q in sorted(rows)))
    return len(rows)


# ---------------------------------------------------------------------------------------------------------------
# the run folder


def _move_aside(run_dir: Path) -> Path:
    """Rename a run folder to the first free `<name>.old-N` (nothing is deleted)."""
    n = 1
    while (aside := run_dir.with_name(f"{run_dir.name}.old-{n}")).exists():
        n += 1
    os.replace(run_dir, aside)
    return aside


def _refuse(run_dir: Path, differences: list[str]) -> TempbenchError:
    shown = "; ".join(differences[:8]) + (f"; and {len(differences) - 8} more" if len(differences) > 8 else "")
    return TempbenchError(f"{run_dir} holds another run ({shown})",
                          "write to another --out, or pass --restart to move the old run aside (nothing is deleted)")


def _check_identity(run_dir: Path, config: RunConfig, names: list[str], pred_path: Path) -> RunConfig:
    """Compare `config` with the run.json files already in `run_dir`; the config to write (carrying the server's
    model id a previous run learnt), or a refusal."""
    known = None
    for name in names:
        if (run_dir / name).is_file():
            old = RunConfig.read(run_dir / name)
            diffs = config.differences(old)
            if diffs:
                raise _refuse(run_dir, diffs)
            numerics = config.numerics_differences(old)
            if numerics and pred_path.is_file() and pred_path.stat().st_size:
                shown = "; ".join(numerics)
                raise TempbenchError(
                    f"{run_dir} holds answers made with other settings ({shown}): in {config.model.dtype} on "
                    f"{config.execution.device} these change answers, so one run folder would mix two ways of "
                    "decoding", "resume with the same --batch-size/--token-budget/--model-args and device, write "
                    "to another --out, or pass --restart to move the old run aside")
            known = known or old
    if known is None:
        if pred_path.is_file() and pred_path.stat().st_size:
            raise TempbenchError(f"{pred_path} exists but no run.json says what made it",
                                 "write to another --out, or pass --restart to move the old files aside")
        return config
    if config.model.served_model is None and known.model.served_model is not None:
        config = config.replace(model=_with_served(config.model, known.model.served_model))
    return config


def _with_served(model, served: str):
    return replace(model, served_model=served)


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


class VideoLoader:
    """Find, decode and preprocess one query's video (picklable: it runs in prefetch worker processes, so the
    CPU work neither waits for nor slows down, through the GIL, the thread that drives the accelerator)."""

    def __init__(self, video_dir, settings, preprocess, use_video: bool):
        self.video_dir, self.settings, self.preprocess, self.use_video = video_dir, settings, preprocess, use_video

    def __call__(self, rec):
        if not self.use_video:
            return None
        from .video import decode_video, find_video, set_decode_threads

        try:  # one intra-op thread per worker: the workers already use every core
            import torch

            torch.set_num_threads(1)
        except ImportError:
            pass
        set_decode_threads(1)  # and one ffmpeg thread: no oversubscription either
        path = find_video(self.video_dir, rec["vid"])
        if path is None:
            raise TempbenchError(f"video {rec['vid']} not found in {self.video_dir}")
        clip = decode_video(path, self.settings)
        return self.preprocess(clip) if self.preprocess is not None else clip


class RenderedLoader:
    """Render one generated query's video without its file (`data.frames = "render"` in training; picklable, for
    prefetch worker processes): `tempbench.tasks.synthetic.rendered_clip`. It returns the clip's uint8 frames
    (about 0.7 MB for a 128x96 video, against 4.5 MB once preprocessed to float32), which the trainer preprocesses
    on its accelerator."""

    def __init__(self, settings):
        self.settings = settings

    def __call__(self, rec):
        from .tasks.synthetic import rendered_clip

        return rendered_clip(rec["vid"], self.settings)


def _generation(options: dict):
    from .models.base import GenerationSettings

    known = set(GenerationSettings.__dataclass_fields__)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TempbenchError(f"unknown generation setting(s): {', '.join(unknown)}",
                             f"--gen takes {', '.join(sorted(known))}")
    return GenerationSettings(**options)


def _created() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------------------------------------------
# the run


def run(model: str, task: str | None = None, split: str | None = None, *, annotations=None, kind: str | None = None,
        videos: str | Path | None = None, out_dir: str | Path | None = None, limit: int | None = None,
        batch_size: int = 8, shard: str | tuple[int, int] | None = None, resume: bool = True,
        restart: bool = False, retry_errors: bool = False, setting: str | None = None, prompt: str | None = None,
        profile: str = "canonical", video_settings: dict | None = None, generation: dict | None = None,
        workers: int | None = None, progress: bool = True, prefetch: str = "process", score: bool = True,
        model_options: dict | None = None, notify=None, token_budget: int | None = None) -> RunSummary:
    """Run `model` over a task split (or a custom `annotations` file) into a run folder and score it.

    `model` follows the --model grammar (docs/design.md): `baseline:prior|random|center`, `openai:NAME`,
    a zoo alias, a local folder, or a hub id. See the module docstring for identity, locks, resume and shards.
    `notify(message)` is told what the run waits for (shard 0 waiting for the other shards). `token_budget`
    caps a batch's padded prompt tokens (rows x the longest row, as the adapter estimates them; `tempbench.batching`).
    """
    from .annotations import ensure_synthetic, load_annotation_file, load_split
    from .models import load_model, zoo
    from .models.base import ModelInput, needs_video
    from .prompts import load_prompt, render
    from .video import Prefetcher, VideoSettings

    if batch_size < 1:
        raise TempbenchError(f"--batch-size {batch_size}: must be at least 1")
    if token_budget is not None and (isinstance(token_budget, bool) or not isinstance(token_budget, int)
                                     or token_budget < 1):
        raise TempbenchError(f"--token-budget {token_budget}: must be a positive number of tokens",
                             "e.g. --token-budget 65536")
    if limit is not None and limit < 1:
        raise TempbenchError(f"--limit {limit}: must be >= 1")
    if prefetch not in ("process", "thread"):
        raise TempbenchError(f"prefetch {prefetch!r}: use 'process' or 'thread'")
    if annotations is not None:
        data = load_annotation_file(annotations, kind)
    elif task is None:
        raise TempbenchError("which task?", "pass --task NAME (`tempbench tasks` lists them) or --annotations FILE")
    else:
        data = load_split(task, split)
    spec = data.task
    rank, world = parse_shard(shard)
    records = data.records[:limit] if limit is not None else data.records
    mine = records[rank::world]

    # the zoo's recommended video settings, with the caller's overrides on top
    entry = None if model.startswith(("baseline:", "openai:")) else zoo.find(model)
    vs = VideoSettings.from_dict({**(dict(entry.video) if entry is not None else {}), **(video_settings or {})})
    gen = _generation(dict(generation or {}))
    options = dict(model_options or {})
    if (world > 1 and "LOCAL_RANK" in os.environ and "device" not in options
            and not model.startswith(("baseline:", "openai:")) and _cuda_available()):
        options["device"] = f"cuda:{int(os.environ['LOCAL_RANK'])}"  # one GPU per local rank
    if model.startswith("baseline:") and not spec.custom:
        options.setdefault("task", spec.name)
    adapter = load_model(model, generation=gen, video_settings=vs, **options)
    identity = replace(adapter.identity(), spec=model)
    # the zoo entry's prompt when it is made for this kind of task, else the task card's default
    zoo_prompt = entry.prompt if entry is not None and entry.prompt else None
    if zoo_prompt is not None and load_prompt(zoo_prompt).kind != spec.kind:
        zoo_prompt = None
    prompt_obj = load_prompt(prompt or zoo_prompt or spec.default_prompt)
    use_video = needs_video(adapter)
    if use_video and videos is None and not spec.builtin:
        raise TempbenchError(f"model {model} needs the videos of {spec.title}",
                             f"pass --videos DIR (check them first: `tempbench data check-videos {spec.name} "
                             "--videos DIR`)" if not spec.custom else "pass --videos DIR")
    video_dir = Path(videos) if videos else (ensure_synthetic(data.split, spec.name, videos=use_video, first=limit)
                                            if spec.builtin else None)
    setting = setting or (entry.setting.get(spec.name) if entry is not None else None) or "zero-shot"
    predict_windows = getattr(adapter, "predict", None)
    direct = predict_windows is not None and not use_video
    n_workers = workers or max(1, min(16, (os.cpu_count() or 2) - 1))
    config = RunConfig(
        task=spec.name, split=data.split, annotation_file=data.annotation_file,
        annotation_sha256=data.annotation_sha256, model=identity,
        prompt=None if direct else prompt_obj.name, prompt_sha256=None if direct else prompt_obj.sha256,
        video=vs.to_dict() if use_video else None, generation=None if direct else gen.to_dict(), setting=setting,
        execution=Execution(profile=profile, limit=limit, batch_size=batch_size,
                            shard=f"{rank}/{world}" if world > 1 else None, world_size=world,
                            device=identity.info.get("device"), workers=n_workers if use_video else None,
                            prefetch=prefetch if use_video else None, hardware=hardware(),
                            grouping=None if direct else "video", token_budget=None if direct else token_budget),
        tempbench_version=__version__, git_revision=io.git_revision(), created=_created(),
        outcome=RunOutcome("running"))
    run_dir = Path(out_dir) if out_dir else default_run_dir(config)
    suffix = "" if world == 1 else f".rank{rank}-of-{world}"
    pred_path = run_dir / f"predictions{suffix}.jsonl"
    run_json = run_dir / f"run{suffix}.json"
    io.check_writable_dir(run_dir, "run folder")
    lock = io.FileLock(run_dir / f".predictions{suffix}.lock", f"run folder {run_dir}").acquire()
    aside = None
    try:
        if restart and any(p.name != lock.path.name for p in run_dir.iterdir()):
            lock.release()
            aside = _move_aside(run_dir)
            io.check_writable_dir(run_dir, "run folder")
            lock = io.FileLock(run_dir / f".predictions{suffix}.lock", f"run folder {run_dir}").acquire()
        if not resume and pred_path.exists():
            raise TempbenchError(f"{pred_path} exists and --no-resume was given",
                                 "choose another --out, resume (the default), or --restart")
        names = [run_json.name] + (["run.json"] if world > 1 else [])
        config = _check_identity(run_dir, config, names, pred_path)
        if world > 1:  # a marker of an earlier run (e.g. with another --limit) must not let rank 0 merge early
            (run_dir / f"rank{rank}-of-{world}.done").unlink(missing_ok=True)
        _write_config(config, run_json)
        done = read_done(pred_path)
        todo = [r for r in mine if r["qid"] not in done or (retry_errors and "error" in done[r["qid"]])]
        status, config = _predict(
            adapter, config, todo, mine, pred_path, run_json, direct=direct, use_video=use_video,
            batch_size=batch_size, n_workers=n_workers, prefetch=prefetch, progress=progress,
            video_loader=VideoLoader(video_dir, vs, getattr(adapter, "video_preprocessor", None) if use_video
                                     else None, use_video),
            render_prompt=lambda rec: render(prompt_obj, rec["query"], rec["duration"]), prefetcher=Prefetcher,
            model_input=ModelInput, label=f"{spec.name} {data.split} · {model_slug(model)}",
            token_budget=token_budget, cost=_cost_estimate(adapter, lambda rec: render(prompt_obj, rec["query"],
                                                                                       rec["duration"])))
    finally:
        lock.release()
        if hasattr(adapter, "close"):
            adapter.close()
    if world > 1:
        (run_dir / f"rank{rank}-of-{world}.done").write_text("done\n")
        if rank != 0:
            return RunSummary(run_dir, config, pred_path, "rank finished", moved_aside=aside)
        config = _merge_ranks(run_dir, world, records, config, notify)
    final = run_dir / "predictions.jsonl"
    if not score:
        return RunSummary(run_dir, config, final, "predicted", moved_aside=aside)
    from .predictions import read_predictions
    from .scoring import score as score_split

    result = score_split(data, read_predictions(final), profile, created=_created(), git_revision=io.git_revision())
    try:
        result.write(run_dir / "result.json")
        write_details(run_dir / "details.jsonl.gz", result.details)
    except OSError as exc:
        raise io.disk_error(exc, run_dir, "the result") from None
    return RunSummary(run_dir, config, final, status, result, aside)


def _write_config(config: RunConfig, path: Path) -> None:
    try:
        config.write(path)
    except OSError as exc:
        raise io.disk_error(exc, path, "run.json") from None


def _cost_estimate(adapter, render_prompt):
    """rec -> the adapter's upper-bound estimate of the query's prompt tokens (for the token budget), or None."""
    estimate = getattr(adapter, "prompt_tokens_estimate", None)
    if estimate is None:
        return None
    return lambda rec: estimate(float(rec.get("duration") or 0.0), render_prompt(rec))


def _predict(adapter, config: RunConfig, todo, mine, pred_path, run_json, *, direct, use_video, batch_size,
             n_workers, prefetch, progress, video_loader, render_prompt, prefetcher, model_input, label,
             token_budget=None, cost=None):
    """Answer `todo` into `pred_path`; returns (status, config with the outcome and the server's model id)."""
    coverage = {"errors": 0, "video_missing": 0, "video_undecodable": 0}
    t_start = time.perf_counter()
    model_seconds = 0.0
    status = "finished"
    state = {"config": config}

    def check_served_model() -> None:
        """The first answer names a server's model: it becomes part of the identity, and must match the run's."""
        served = adapter.identity().served_model
        known = state["config"].model.served_model
        if served is None or served == known:
            return
        if known is not None:
            raise TempbenchError(f"{pred_path.parent} holds answers of served model {known!r}, but the server now "
                                 f"answers as {served!r}", "write to another --out, or --restart")
        state["config"] = state["config"].replace(model=_with_served(state["config"].model, served))
        _write_config(state["config"], run_json)

    writer = PredictionWriter(pred_path)
    try:
        with _progress(progress) as bar:
            task_id = bar.add_task(label, total=len(mine), completed=len(mine) - len(todo), rate="-")
            if direct:
                step = max(batch_size, 256)
                for start in range(0, len(todo), step):
                    chunk = todo[start:start + step]
                    wins = adapter.predict(chunk)
                    writer.write_batch([{"qid": r["qid"], "vid": r["vid"], "windows": [list(map(float, w))]}
                                        for r, w in zip(chunk, wins)])
                    bar.update(task_id, advance=len(chunk))
            else:
                from .batching import pending, plan_batches

                done_now = 0
                # the plan is a function of this rank's whole query list (`mine`): a resumed run forms the same
                # batches, less the queries already answered
                plan = pending(plan_batches(mine, batch_size, token_budget, cost), {r["qid"] for r in todo})

                def flush(batch):
                    nonlocal model_seconds, done_now
                    if not batch:
                        return
                    inputs = [model_input(clip=value, prompt=render_prompt(rec), qid=rec["qid"],
                                          meta={"vid": rec["vid"], "duration": rec["duration"]})
                              for rec, value in batch]
                    t0 = time.perf_counter()
                    stop = None
                    try:
                        texts = adapter.generate(inputs)
                    except BatchError as exc:  # keep what the batch did answer, then stop
                        texts, stop = exc.answers + [None] * (len(inputs) - len(exc.answers)), exc
                    model_seconds += time.perf_counter() - t0
                    check_served_model()
                    rows = []
                    for (rec, _), text in zip(batch, texts):
                        if isinstance(text, FailedAnswer):
                            coverage["errors"] += 1
                            rows.append({"qid": rec["qid"], "vid": rec["vid"], "error": text.message})
                        elif text is not None:
                            rows.append({"qid": rec["qid"], "vid": rec["vid"], "output": text})
                    writer.write_batch(rows)
                    if stop is not None:
                        raise stop
                    done_now += len(batch)
                    bar.update(task_id, advance=len(batch),
                               rate=f"{done_now / (time.perf_counter() - t_start):.2f}")

                kind = prefetch if use_video else "thread"
                if kind == "process" and video_loader.preprocess is not None:
                    import pickle

                    try:
                        pickle.dumps(video_loader.preprocess)
                    except Exception:  # a custom in-memory processor: threads instead
                        kind = "thread"
                # one prefetch item per video, in plan order (a video's queries are consecutive in the plan)
                videos, seen = [], set()
                for b in plan:
                    for part in b.parts:
                        if part.vid not in seen:
                            seen.add(part.vid)
                            videos.append(part.records[0])
                with prefetcher(videos, fn=video_loader, workers=n_workers, ahead=max(2 * batch_size, 4),
                                kind=kind) as pre:
                    loaded = iter(pre)
                    current = None  # (vid, Prefetched) of the video in use
                    for b in plan:
                        batch: list = []
                        for part in b.parts:
                            if current is None or current[0] != part.vid:
                                current = (part.vid, next(loaded))
                            item = current[1]
                            if not item.ok:
                                key = "video_missing" if "not found" in item.error else "video_undecodable"
                                coverage[key] += len(part.records)
                                coverage["errors"] += len(part.records)
                                writer.write_batch([{"qid": rec["qid"], "vid": rec["vid"], "error": item.error}
                                                    for rec in part.records])
                                bar.update(task_id, advance=len(part.records))
                                continue
                            batch.extend((rec, item.value) for rec in part.records)
                        flush(batch)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:  # e.g. a server that stopped answering: run.json must not say "finished"
        status = "failed"
        raise
    finally:
        writer.close()
        elapsed = time.perf_counter() - t_start
        outcome = RunOutcome(status=status, seconds=round(elapsed, 3),
                             queries_per_s=round(len(todo) / elapsed, 4) if elapsed > 0 and todo else None,
                             model_seconds=round(model_seconds, 3),
                             coverage=VideoCoverage(queries=len(todo), **coverage))
        # the adapter's provenance as it stands now (a server's request counts); not part of the identity
        model = replace(state["config"].model, info=adapter.identity().info)
        state["config"] = state["config"].replace(outcome=outcome, model=model)
        try:
            _write_config(state["config"], run_json)
        except TempbenchError:
            if status == "finished":
                raise
    return status, state["config"]


def merge_timeout() -> float:
    """Seconds shard 0 waits for the other shards (`TEMPBENCH_MERGE_TIMEOUT`, default 3600)."""
    value = os.environ.get("TEMPBENCH_MERGE_TIMEOUT", "3600")
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise TempbenchError(f"TEMPBENCH_MERGE_TIMEOUT={value!r} is not a number of seconds",
                             "e.g. export TEMPBENCH_MERGE_TIMEOUT=7200")
    return seconds


def _merge_ranks(run_dir: Path, world: int, records: list[dict], config: RunConfig, notify=None) -> RunConfig:
    """Rank 0: wait for every rank's marker and queries, merge their files, write the merged run.json."""
    timeout = merge_timeout()
    deadline = time.time() + timeout
    waiting = set(range(1, world))
    told = False

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
        if notify is not None and not told:
            shards = ", ".join(f"{i}/{world}" for i in sorted(waiting))
            notify(f"shard 0/{world} is done; waiting up to {timeout:g} s (TEMPBENCH_MERGE_TIMEOUT) for shard "
                   f"{shards} to finish, then merging and scoring (start the other shards with --shard i/{world})")
            told = True
        if time.time() > deadline:
            raise TempbenchError(f"{run_dir}: rank(s) {sorted(waiting)} of {world} did not finish",
                                 "re-run the missing ranks (they resume), or raise TEMPBENCH_MERGE_TIMEOUT")
        time.sleep(0.5)
    merge_shards(run_dir, world, run_dir / "predictions.jsonl")
    ranks = [RunConfig.read(run_dir / f"run.rank{i}-of-{world}.json") for i in range(world)]
    outcomes = [r.outcome for r in ranks if r.outcome is not None]
    queries = sum(o.coverage.queries for o in outcomes)
    seconds = max((o.seconds for o in outcomes), default=0.0)
    merged = config.replace(
        execution=Execution(**{**config.execution.__dict__, "shard": None}),
        outcome=RunOutcome(
            status="finished" if all(o.status == "finished" for o in outcomes) else "failed", seconds=seconds,
            queries_per_s=round(queries / seconds, 4) if seconds else None,
            model_seconds=max((o.model_seconds for o in outcomes), default=0.0),
            coverage=VideoCoverage(**{k: sum(getattr(o.coverage, k) for o in outcomes)
                                      for k in VideoCoverage.__dataclass_fields__})))
    _write_config(merged, run_dir / "run.json")
    return merged
