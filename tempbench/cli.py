"""The `tempbench` command line: a thin click front that parses options, calls the library and renders with rich.

Exit codes: 0 success, 1 a check failed (e.g. `leaderboard --check`), 2 bad input or usage (one clear line,
no traceback), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import TempbenchError


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


class Group(click.Group):
    """Turns TempbenchError into `error: ...` + `hint: ...` on stderr with exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TempbenchError as exc:
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: everything written so far is kept (re-run to resume)", err=True)
            ctx.exit(130)
        except OSError as exc:  # a write the library did not expect to fail: the disk, not a bug
            from .io import WRITE_ERRNOS

            if exc.errno not in WRITE_ERRNOS:
                raise
            click.echo(f"error: {exc.filename or 'a file'}: {WRITE_ERRNOS[exc.errno]}", err=True)
            click.echo("hint: free space or choose another path, then run again", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="tempbench")
def main():
    """tempbench: comparable numbers for video temporal grounding with multimodal LLMs.

    \b
    Examples:
      tempbench tasks
      tempbench data import charades --from ~/data/charades_sta
      tempbench run --model Qwen/Qwen2.5-VL-7B-Instruct --task charades --videos ~/videos/Charades_v1
      tempbench score runs/charades-test/MODEL/predictions.jsonl
      tempbench leaderboard
    """


# ------------------------------------------------------------------------------------------------------------------
# tasks and data


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def tasks(as_json):
    """List the tasks, their splits (default first), sizes, and whether each is in the local cache.

    \b
    Example:
      tempbench tasks --json
    """
    from .annotations import is_present
    from .tasks import all_tasks

    rows = []
    for task in all_tasks().values():
        for i, split in enumerate(task.splits):
            info = task.card["splits"][split]
            rows.append({"task": task.name, "title": task.title, "kind": task.kind, "split": split,
                         "default": i == 0, "queries": info["size"], "videos": info.get("videos"),
                         "present": is_present(task, split)})
    if as_json:
        _print_json(rows)
        return
    from rich.table import Table

    table = Table(title="tempbench tasks")
    for col in ("task", "title", "split", "queries", "videos", "present"):
        table.add_column(col, justify="right" if col in ("queries", "videos") else "left")
    for r in rows:
        split = r["split"] + (" (default)" if r["default"] else "")
        table.add_row(r["task"], r["title"], split, f"{r['queries']:,}", f"{r['videos']:,}" if r["videos"] else "-",
                      "yes" if r["present"] else "no")
    _console().print(table)


@main.group()
def data():
    """Annotations: import official files, fetch pinned copies, show, export, check videos."""


@data.command("import")
@click.argument("task")
@click.option("--from", "src", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the official raw files (searched recursively).")
@click.option("--split", "splits", multiple=True, help="Import only these splits (default: every split found).")
@click.option("--allow-hash-mismatch", is_flag=True, help="Import files whose sha256 differs from the task card.")
def data_import(task, src, splits, allow_hash_mismatch):
    """Import a task's official files from a folder (offline), check sha256, convert, cache.

    \b
    Example:
      tempbench data import charades --from ~/data/charades_sta
    """
    from .annotations import import_task

    result = import_task(task, src, list(splits) or None, allow_hash_mismatch=allow_hash_mismatch)
    con = _console()
    for split, info in result["imported"].items():
        note = "" if info["n"] == info["expected_n"] else f" (card says {info['expected_n']:,})"
        con.print(f"imported {task} {split}: {info['n']:,} queries{note} -> {info['path']}")
    for split, missing in result["skipped"].items():
        con.print(f"[yellow]skipped {task} {split}: not found: {', '.join(missing)}[/]")


@data.command("fetch")
@click.argument("task")
@click.option("--base-url", default=None, help="Mirror laid out as BASE/<folder>/<file> (or env TEMPBENCH_MIRROR).")
@click.option("--split", "splits", multiple=True, help="Fetch only these splits.")
def data_fetch(task, base_url, splits):
    """Download a task's pinned raw files (resumable, sha256-checked), then import them.

    \b
    Example:
      tempbench data fetch qvhighlights
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .annotations import fetch_task

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=_console(stderr=True)) as bar:
        ids = {}

        def progress(name, done, total):
            if name not in ids:
                ids[name] = bar.add_task(name, total=total)
            bar.update(ids[name], completed=done, total=total)

        result = fetch_task(task, base_url=base_url, splits=list(splits) or None, progress=progress)
    for split, info in result["imported"].items():
        _console().print(f"fetched and imported {task} {split}: {info['n']:,} queries -> {info['path']}")


@data.command("show")
@click.argument("task")
@click.option("--split", default=None, help="Split (default: the task's default split).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def data_show(task, split, as_json):
    """Counts, hashes and ground-truth quirks of a split (reported, never fixed).

    \b
    Example:
      tempbench data show charades --split test --json
    """
    from .annotations import describe_split

    info = describe_split(task, split)
    if as_json:
        _print_json(info)
        return
    from rich.table import Table

    table = Table(title=f"{info['title']} {info['split']}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("queries", f"{info['queries']:,} (card: {info['expected_queries']:,})")
    table.add_row("videos", f"{info['videos']:,}")
    table.add_row("annotation file", info["annotation_file"])
    table.add_row("sha256", info["annotation_sha256"] + ("" if info["hash_verified"] else "  [red](not the card's)[/]"))
    for kind, count in info["quirks"].items():
        table.add_row(f"quirk: {kind.replace('_', ' ')}", str(count))
    _console().print(table)


@data.command("export")
@click.argument("task")
@click.option("--split", default=None, help="Split (default: the task's default split).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE (atomically) instead of stdout.")
def data_export(task, split, output):
    """The unified annotation records as JSONL.

    \b
    Example:
      tempbench data export anet --split val_2 -o anet_val2.jsonl
    """
    from .annotations import load_annotations, records_to_jsonl
    from .io import atomic_write_text

    text = records_to_jsonl(load_annotations(task, split))
    if output:
        atomic_write_text(output, text)
    else:
        sys.stdout.write(text)


# ------------------------------------------------------------------------------------------------------------------
# scoring


def _fmt(value) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"


def _result_table(result):
    from rich.table import Table

    title = (f"{result.task} {result.split} · profile {result.profile} · n={result.n:,} · "
             f"failures {result.failure_rate:.2f}%")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    for name, value in result.metrics.items():
        ci = result.ci95.get(name)
        table.add_row(name, _fmt(value), f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-")
    return table


def _profiles_table(results):
    """One row per profile, the task card's headline columns (readable at 100 columns; --json has every metric)."""
    from rich.table import Table

    from .tasks import table_columns

    first = results[0]
    columns = [(m, label) for m, label in table_columns(first.task, first.kind) if m in first.metrics] or \
        [(m, m) for m in list(first.metrics)[:6]]
    table = Table(title=f"{first.task} {first.split} · n={first.n:,}: one file under every profile")
    for col in ["profile", *[label for _, label in columns], "failures %"]:
        table.add_column(col, justify="left" if col == "profile" else "right", no_wrap=col == "profile")
    for r in results:
        table.add_row(r.profile, *[_fmt(r.metrics.get(m)) for m, _ in columns], _fmt(r.failure_rate))
    return table


def _counts_line(result) -> str:
    c = result.counts
    parts = [f"{c.predictions:,} predictions", f"{c.ok:,} ok", f"{c.repaired:,} repaired",
             f"{c.failed:,} parse failures", f"{c.errors:,} error rows", f"{c.missing:,} missing"]
    if c.outside_video:
        parts.append(f"{c.outside_video:,} outside the video")
    return "; ".join(parts)


def _annotation_options(f):
    """--annotations FILE and --kind: score or run against a user's own unified annotation records."""
    f = click.option("--kind", type=click.Choice(["grounding", "highlights"]), default=None,
                     help="Kind of a custom --annotations task (default: highlights if records have saliency).")(f)
    return click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="A custom task: unified annotation records as JSONL (see `tempbench data export`).")(f)


@main.command()
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", default=None, help="Task (default: from run.json next to the predictions).")
@click.option("--split", default=None, help="Split (default: run.json's, else the task's default).")
@_annotation_options
@click.option("--profile", default="canonical", show_default=True,
              help="Parsing/scoring convention, or `all` for one row per profile.")
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON on stdout.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the result record here.")
@click.option("--details", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-query rows (qid, parsed span, IoU, status) as gzipped JSONL.")
@click.option("--by", type=click.Choice(["length", "position", "duration"]), default=None,
              help="Break the metrics down by GT moment length, relative position, or video duration.")
@click.option("--strict", is_flag=True, help="Refuse files with missing queries instead of counting them as failures.")
@click.option("--no-ci", is_flag=True, help="Skip the bootstrap confidence intervals.")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True, help="Bootstrap seed.")
def score(predictions, task, split, annotations, kind, profile, as_json, out, details, by, strict, no_ci, resamples,
          seed):
    """Score a predictions file: metrics, 95% CIs, failure counts, provenance.

    \b
    Examples:
      tempbench score runs/charades-test/qwen2.5-vl-7b-1a2b3c4d/predictions.jsonl
      tempbench score preds.jsonl --task qvhighlights --split val --json
      tempbench score preds.jsonl --task charades --profile all
      tempbench score preds.jsonl --task anet --by length
      tempbench score preds.jsonl --annotations my_queries.jsonl
    """
    import warnings

    from .api import score_profiles, write_result
    from .scoring import ScoringWarning

    with warnings.catch_warnings():  # the result's notes carry every warning; they are printed below
        warnings.simplefilter("ignore", ScoringWarning)
        results = score_profiles(predictions, task, split, annotations=annotations, kind=kind,
                                 profiles=None if profile == "all" else [profile], ci=not no_ci,
                                 n_resamples=resamples, seed=seed, strict=strict, by=by,
                                 keep_details=details is not None)
    if profile != "all":
        write_result(results[0], out, details)
    if as_json:
        _print_json(results[0].to_json() if profile != "all" else [r.to_json() for r in results])
        return
    con = _console()
    if profile == "all":
        con.print(_profiles_table(results))
        con.print("[dim]every metric of every profile: --json[/]")
        return
    result = results[0]
    con.print(_result_table(result))
    con.print(_counts_line(result))
    if result.breakdown is not None:
        from rich.table import Table

        rows = result.breakdown.rows
        names = list(rows[0].metrics) if rows else []
        table = Table(title=f"by {result.breakdown.by}")
        for col in ["bucket", "n", *names]:
            table.add_column(col, justify="left" if col == "bucket" else "right")
        for row in rows:
            table.add_row(row.bucket, f"{row.n:,}", *[_fmt(row.metrics[n]) for n in names])
        con.print(table)
    for note in result.notes:
        con.print(f"[dim]note: {note}[/]")
    if out:
        con.print(f"result record -> {out}")


@main.command()
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", default=None, help="Task (default: from run.json next to A).")
@click.option("--split", default=None, help="Split.")
@_annotation_options
@click.option("--profile", default="canonical", show_default=True, help="Parsing/scoring convention.")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap/permutation resamples.")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def compare(a, b, task, split, annotations, kind, profile, resamples, seed, as_json):
    """Paired comparison of two predictions files: B - A per metric, 95% CI and p-value (clustered by video).

    \b
    Example:
      tempbench compare base/predictions.jsonl tuned/predictions.jsonl --task charades
    """
    from .api import compare as compare_files

    result = compare_files(a, b, task, split, annotations=annotations, kind=kind, profile=profile,
                           n_resamples=resamples, seed=seed)
    if as_json:
        _print_json(result.to_json())
        return
    from rich.table import Table

    table = Table(title=f"{result.task} {result.split}: B - A on {result.n:,} paired queries")
    for col in ("metric", "A", "B", "B - A", "95% CI", "p"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in result.rows:
        table.add_row(row.metric, _fmt(row.a), _fmt(row.b), f"{row.difference:+.2f}",
                      f"[{row.ci95[0]:+.2f}, {row.ci95[1]:+.2f}]", f"{row.p_value:.4f}")
    _console().print(table)
    _console().print(f"A: {a}\nB: {b}\nfailure rates: A {result.failure_rate_a:.2f}%, B {result.failure_rate_b:.2f}%")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "source", required=True,
              type=click.Choice(["lmms-eval", "xiaomi-time-r1", "timezero", "videochat-r1", "timelens", "tempsamp-r1"]),
              help="The tool that wrote FILE.")
@click.option("--task", default=None, help="Resolve qids against this task's annotations (needed for xiaomi-time-r1).")
@click.option("--split", default=None, help="Split of --task.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write tempbench predictions JSONL here (atomically) instead of stdout.")
def convert(file, source, task, split, output):
    """Turn another evaluator's output file into tempbench predictions, so old outputs can be re-scored.

    \b
    Examples:
      tempbench convert --from lmms-eval samples_charades_sta.jsonl --task charades -o preds.jsonl
      tempbench score preds.jsonl --task charades --profile all
    """
    from .annotations import load_annotations
    from .convert import convert_file
    from .io import atomic_write_text

    annotations = load_annotations(task, split) if task else None
    rows = convert_file(file, source, annotations=annotations)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if output:
        atomic_write_text(output, text)
        _console(stderr=True).print(f"{len(rows):,} predictions -> {output}")
    else:
        sys.stdout.write(text)


# ------------------------------------------------------------------------------------------------------------------
# running models


def _kv_options(pairs, what):
    """`--video fps=1 --video max_frames=64` or `--gen max_new_tokens=64,temperature=0` -> a dict."""
    import re

    out = {}
    for pair in pairs:
        for item in re.split(r",(?=\s*[A-Za-z_][A-Za-z0-9_]*\s*=)", pair):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
            try:
                out[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                out[key.strip()] = value.strip()
    return out


@main.command("run")
@click.option("--model", required=True,
              help="baseline:prior|random|center, openai:NAME (with --api-base), a zoo alias, a folder or a hub id.")
@click.option("--task", default=None, help="Task name (`tempbench tasks`), or --annotations for a custom task.")
@click.option("--split", default=None, help="Split (default: the task's default).")
@_annotation_options
@click.option("--videos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the task's videos (not needed for baselines and the synthetic task).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder (default runs/<task>-<split>/<model-slug>-<fingerprint8>/, one per run identity).")
@click.option("--restart", is_flag=True, help="Move a run folder that holds another run aside (to NAME.old-N) first.")
@click.option("--retry-errors", is_flag=True, help="Run again the queries whose row is an error (e.g. a missing video).")
@click.option("--limit", type=int, default=None, help="Only the first N queries (the result is marked partial).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--token-budget", type=int, default=None,
              help="Cap a batch's padded prompt tokens (rows x longest row, estimated from the annotated durations); "
                   "queries are always grouped by video first.")
@click.option("--shard", default=None,
              help="i/n: run every n-th query starting at i (default: from torchrun env); shard 0 then waits for the "
                   "others (up to TEMPBENCH_MERGE_TIMEOUT seconds, default 3600), merges and scores.")
@click.option("--resume/--no-resume", default=True, show_default=True, help="Skip queries already predicted.")
@click.option("--setting", type=click.Choice(["zero-shot", "fine-tuned"]), default=None,
              help="Recorded in the result (the zoo knows it for its models).")
@click.option("--prompt", default=None,
              help="A prompt name, or a template file with {query} (default: the zoo's, else the task's).")
@click.option("--profile", default="canonical", show_default=True, help="Parsing profile used for scoring.")
@click.option("--video", "video_opts", multiple=True, help="Video setting KEY=VALUE (fps, max_frames, total_pixels...).")
@click.option("--gen", "gen_opts", multiple=True,
              help="Generation setting KEY=VALUE[,KEY=VALUE] (max_new_tokens, do_sample, temperature...).")
@click.option("--model-args", "model_args", multiple=True,
              help="Adapter options KEY=VALUE[,KEY=VALUE], recorded in run.json. openai:NAME takes timeout (s per "
                   "attempt), deadline (s per request, retries included), max_retries, concurrency, "
                   "mode=frames|video_url, image_format, jpeg_quality, video_url_base, max_answer_bytes, backoff, "
                   "max_backoff, max_tokens_field, extra_body (JSON). transformers models take dtype, "
                   "attn_implementation, revision, device, trust_remote_code (off unless asked), and for Qwen3-VL / "
                   "Qwen3.5 timestamps=frame-indices|pts, layout=release|transformers, rope_index; the Qwen "
                   "family also decoder=auto|dynamic|static|cuda-graph|transformers (tempbench's token loop and its "
                   "step, or transformers' generate; auto = cuda-graph on a GPU, dynamic on a CPU; run.json records "
                   "the one used) and share_prefix=true|false (one prefill per video); in float32 "
                   "neither changes an answer; in bf16 or on a GPU they can, so a run folder keeps the ones it was "
                   "started with. stage_times=true records each batch's shape and stage seconds in run.json "
                   "(benchmarks).")
@click.option("--time-hint", is_flag=True,
              help="Add a 'Frame at t s' line per frame before the prompt of a model that sees no frame times.")
@click.option("--api-base", default=None, help="OpenAI-compatible server URL, for openai:NAME models.")
@click.option("--api-key-env", default=None,
              help="Env variable holding the API key for --api-base. OPENAI_API_KEY is sent only to "
                   "https://api.openai.com; any other server gets a key only from --api-key-env NAME, and over "
                   "plain http only on this machine (127.0.0.1, localhost). Redirects are never followed.")
@click.option("--workers", type=int, default=None, help="Video decoding workers (default: cores - 1, at most 16).")
@click.option("--prefetch", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="Decode and preprocess videos in worker processes or threads.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result record as JSON.")
def run_cmd(model, task, split, annotations, kind, videos, out_dir, restart, retry_errors, limit, batch_size,
            token_budget, shard, resume, setting, prompt, profile, video_opts, gen_opts, model_args, time_hint, api_base, api_key_env,
            workers, prefetch, no_progress, as_json):
    """Run a model over a task split: predictions, run.json, a scored result and a table.

    \b
    A run folder holds one run identity (model and weights, prompt, video and generation settings, annotations):
    running again with the same identity resumes; with another it is refused (use another --out, or --restart).
    \b
    Examples:
      tempbench run --model baseline:prior --task charades
      tempbench run --model tiny-synthetic --task synthetic
      tempbench run --model Qwen/Qwen2.5-VL-7B-Instruct --task charades --videos ~/Charades_v1_480
      tempbench run --model openai:Qwen2.5-VL-7B --api-base http://localhost:8000/v1 --task qvhighlights --videos DIR
      tempbench run --model qwen3-vl-8b --task charades --videos DIR --model-args dtype=bfloat16,attn_implementation=sdpa
      tempbench run --model openai:gpt-4o --api-base https://api.openai.com/v1 --model-args timeout=300,concurrency=4 ...
      tempbench run --model baseline:center --annotations my_queries.jsonl
      torchrun --nproc-per-node 2 -m tempbench run --model CKPT --task anet --videos DIR
    """
    from .models import model_args_for
    from .runner import run as run_model

    model_options = _kv_options(model_args, "--model-args")
    allowed = model_args_for(model)
    unknown = sorted(set(model_options) - set(allowed))
    if unknown:
        from .errors import UsageError

        raise UsageError(f"--model-args {', '.join(unknown)}: not an option of {model.split(':')[0]} models",
                         f"they take: {', '.join(sorted(allowed))}" if allowed else
                         "this kind of model takes no --model-args")
    if time_hint:
        if "time_hint" not in allowed:
            from .errors import UsageError

            raise UsageError(f"--time-hint does not apply to {model.split(':')[0]} models",
                             "openai: frames mode already writes 'Frame at t s:' before each frame; baselines see "
                             "no video")
        model_options["time_hint"] = True
    if api_base:
        model_options["api_base"] = api_base
    if model.startswith("openai:") and api_key_env:
        model_options["api_key_env"] = api_key_env
    summary = run_model(model, task, split, annotations=annotations, kind=kind, videos=videos, out_dir=out_dir,
                        limit=limit, batch_size=batch_size, shard=shard, resume=resume, restart=restart,
                        retry_errors=retry_errors, setting=setting, prompt=prompt, profile=profile,
                        video_settings=_kv_options(video_opts, "--video"),
                        generation=_kv_options(gen_opts, "--gen"), workers=workers, prefetch=prefetch,
                        progress=not no_progress and not as_json, model_options=model_options,
                        notify=lambda message: click.echo(message, err=True), token_budget=token_budget)
    con = _console(stderr=as_json)
    if summary.moved_aside is not None:
        con.print(f"moved the old run aside to {summary.moved_aside}", soft_wrap=True)
    if summary.result is None:
        con.print(f"{summary.status}: {summary.predictions}", soft_wrap=True)
        if summary.status == "rank finished":
            con.print(f"shard {summary.config.execution.shard} is done; shard 0/{summary.config.execution.world_size}"
                      " merges the shards and scores once every shard is done", soft_wrap=True)
        return
    if as_json:
        _print_json(summary.result.to_json())
        return
    con.print(_result_table(summary.result))
    con.print(_counts_line(summary.result))
    outcome = summary.config.outcome
    if outcome is not None and outcome.queries_per_s:
        con.print(f"throughput: {outcome.queries_per_s:.2f} queries/s over {outcome.coverage.queries:,} queries")
    con.print(f"run folder: {summary.run_dir}", soft_wrap=True)


@main.command()
@click.option("--task", type=click.Choice(["synthetic", "synthetic-hard"]), default="synthetic", show_default=True,
              help="A generated task.")
@click.option("--split", default="test", show_default=True, help="Split (test: 16 queries; heldout: 256).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo(task, split, batch_size, no_progress):
    """The embedded default model next to the video-free baselines, with 95% CIs (what `make demo` runs).

    \b
    Examples:
      tempbench demo
      tempbench demo --task synthetic-hard --split heldout
    """
    from rich.table import Table

    from .demo import run_demo

    rows = run_demo(task, split, batch_size=batch_size, progress=not no_progress)
    first = rows[0].result
    table = Table(title=f"{first.task} {first.split} · n={first.n:,} · profile {first.profile} · value [95% CI]")
    table.add_column("metric", no_wrap=True)
    for row in rows:
        table.add_column(row.model, justify="right", no_wrap=True)

    def cell(r, m):
        ci = r.ci95.get(m)
        return f"{r.metrics[m]:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else _fmt(r.metrics[m])

    for m in first.metrics:
        table.add_row(m, *(cell(row.result, m) for row in rows))
    table.add_row("failures", *(f"{row.result.failure_rate:.1f}%" for row in rows))
    con = _console()
    con.print(table)
    con.print("tiny-synthetic: a 4.4 M-parameter Qwen2.5-VL trained by tempbench (SFT) on the generated tasks; "
              "the baselines never look at the video. Run folders: " + ", ".join(r.run_dir for r in rows),
              soft_wrap=True)


@data.command("check-videos")
@click.argument("task")
@click.option("--videos", required=True, type=click.Path(file_okay=False, path_type=Path), help="Video folder.")
@click.option("--split", default=None, help="Split (default: the task's default).")
@click.option("--tolerance", default=1.0, show_default=True, help="Seconds of duration difference tolerated.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def data_check_videos(task, videos, split, tolerance, as_json):
    """Which of a split's videos are present, missing, undecodable, or of another length than annotated.

    Exit code 1 when a video is missing or cannot be decoded (a duration mismatch is reported, not failed).

    \b
    Example:
      tempbench data check-videos anet --videos ~/activitynet/videos
    """
    from .annotations import load_annotations
    from .video import check_videos

    if not videos.is_dir():
        raise TempbenchError(f"--videos {videos}: no such folder", "give the folder that holds the task's videos")
    records = load_annotations(task, split)
    durations = {r["vid"]: r["duration"] for r in records}
    report = check_videos(list(durations), durations, videos, tolerance=tolerance)
    bad = len(report["missing"]) + len(report["undecodable"])
    if as_json:
        _print_json(report)
        if bad:
            sys.exit(1)
        return
    from rich.table import Table

    table = Table(title=f"videos of {task} {split or ''} in {videos}")
    table.add_column("status")
    table.add_column("videos", justify="right")
    table.add_column("examples")
    for key in ("present", "missing", "undecodable", "duration_mismatch"):
        value = report.get(key)
        n = value if isinstance(value, int) else len(value or [])
        examples = "" if isinstance(value, int) else ", ".join(
            (v if isinstance(v, str) else str(v.get("vid", v))) for v in (value or [])[:3])
        table.add_row(key.replace("_", " "), f"{n:,}", examples)
    _console().print(table)
    if bad:  # exit code 1: a check failed (the runner would write error rows for these queries)
        click.echo(f"{len(report['missing']):,} of {report['n']:,} videos missing, {len(report['undecodable']):,} "
                   f"undecodable (--json lists them all)", err=True)
        sys.exit(1)


# ------------------------------------------------------------------------------------------------------------------
# leaderboard


@main.command()
@click.argument("result", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="Entry name (default: the model of the run).")
@click.option("--setting", type=click.Choice(["zero-shot", "fine-tuned"]), default=None,
              help="Needed when the result's run does not say.")
@click.option("--details", "details_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Per-query details (default: details.jsonl.gz next to the result).")
@click.option("--predictions", "predictions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The predictions the result was scored from (default: predictions.jsonl next to it).")
@click.option("--release", default=None,
              help="OWNER/REPO@COMMIT:PATH of a published predictions file (a re-scored release is verified).")
@click.option("--allow-partial", is_flag=True, help="Accept a run over fewer queries than the split (marked partial).")
@click.option("--submissions", "submissions_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("submissions"), show_default=True)
@click.option("--note", "notes", multiple=True, help="A note shown with the entry (one line, at most 500 characters).")
def submit(result, name, setting, details_path, predictions_path, release, allow_partial, submissions_dir, notes):
    """Re-score a result from its predictions and add it to the leaderboard's submissions.

    \b
    A result equal to the re-score of its predictions is VERIFIED when its run names the model (weights
    fingerprint; a baseline's kind, seed and train data) or --release names the published file; otherwise, or
    without predictions, it is UNVERIFIED and shown apart. A result that differs from its re-score is refused.
    \b
    Examples:
      tempbench submit runs/charades-test/my-model-1a2b3c4d/result.json --name "My model (7B)"
      tempbench submit result.json --predictions preds.jsonl --setting fine-tuned \\
          --release owner/repo@0123456789abcdef0123456789abcdef01234567:results/preds.jsonl
    """
    from .submissions import submit as submit_result

    entry = submit_result(result, name=name, allow_partial=allow_partial, submissions_dir=submissions_dir,
                          setting=setting, details_path=details_path, predictions_path=predictions_path,
                          release=release, notes=list(notes) or None)
    _console().print(f"added {entry.path} ({entry.status}); rebuild the board with `tempbench leaderboard`",
                     soft_wrap=True)


@main.command()
@click.option("--submissions", "submissions_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("submissions"), show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("leaderboard"),
              show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when the files in --out are not what the submissions produce.")
@click.option("--verify", is_flag=True,
              help="Re-score every verified entry from its predictions and the imported annotations; exit 1 on a "
                   "difference (released files are found by sha256 in TEMPBENCH_TEST_DATA or ../shared/data).")
def leaderboard(submissions_dir, out_dir, check, verify):
    """Build the leaderboard (markdown, CSV, JSON, figures, a static HTML page) from the submissions.

    \b
    Examples:
      tempbench leaderboard
      tempbench leaderboard --check
      tempbench leaderboard --verify
    """
    from .leaderboard import build_leaderboard, check_leaderboard

    if verify:
        import os

        from .submissions import load_submissions
        from .submissions import verify as verify_entries

        outcomes = verify_entries(load_submissions(submissions_dir))
        require = os.environ.get("TEMPBENCH_REQUIRE_DATA") == "1"
        failed = False
        for o in outcomes:
            mark = {"ok": "ok", "differs": "DIFFERS", "missing": "MISSING" if require else "skipped"}[o.status]
            click.echo(f"{mark:8s} {o.entry.id}" + (f": {o.message}" if o.message else ""))
            failed |= o.status == "differs" or (o.status == "missing" and require)
        ok = sum(o.status == "ok" for o in outcomes)
        click.echo(f"{ok} of {len(outcomes)} verified entries re-score to their published numbers")
        if failed:
            sys.exit(1)
        return
    if check:
        stale = check_leaderboard(submissions_dir, out_dir)
        if stale:
            for name in stale:
                click.echo(f"out of date: {out_dir / name}", err=True)
            click.echo("run `tempbench leaderboard` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{out_dir} is up to date with {submissions_dir}")
        return
    paths = build_leaderboard(submissions_dir, out_dir)
    _console().print(f"wrote {len(paths)} files to {out_dir} (open {out_dir / 'index.html'})")


# ------------------------------------------------------------------------------------------------------------------
# training


@main.group(invoke_without_command=True)
@click.option("--method", type=click.Choice(["tempsamp", "grpo", "sft"]), default=None,
              help="TempSamp-R1 (GT-guided mixed-policy GRPO), plain GRPO, or SFT.")
@click.option("--model", default=None, help="Model to fine-tune: a folder, a hub id or a zoo alias (`tiny-qwen2.5-vl`).")
@click.option("--task", default=None, help="Task to train on.")
@click.option("--split", default=None, help="Split (default: train).")
@click.option("--videos", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Video folder (not needed for the generated tasks).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML config (defaults: the paper's values, tempbench/train/default_config.toml).")
@click.option("--resume", default=None, help="`latest` or a checkpoint folder.")
@click.option("--limit", type=int, default=None, help="Train on the first N queries only.")
@click.pass_context
def train(ctx, method, model, task, split, videos, out, config_path, resume, limit):
    """Fine-tune a model with TempSamp-R1, GRPO or SFT; checkpoints are Hugging Face folders.

    \b
    Examples:
      tempbench train --method tempsamp --model Qwen/Qwen2.5-VL-7B-Instruct --task charades --videos DIR --out ckpt
      tempbench train --method sft --model tiny-qwen2.5-vl --task synthetic --out runs/train-sft
      tempbench train plot runs/train-sft
      tempbench run --model runs/train-sft/checkpoint-64 --task synthetic
    \b
    Built-in tasks (synthetic, synthetic-hard) need no --videos: their train split is generated.
    """
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--method", method), ("--model", model), ("--task", task), ("--out", out))
               if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    from .train.loop import train as train_model

    summary = train_model(str(config_path) if config_path else None,
                          {"method": method, "model": model, "task": task, "split": split,
                           "videos": str(videos) if videos else None, "out": str(out), "resume": resume,
                           "limit": limit})
    _print_json(summary)


@train.command("plot")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def train_plot(run_dir):
    """Draw a training run's curves (loss, reward, KL, IoU, format rate) as PNG files."""
    from .train.plot import plot_run

    for path in plot_run(run_dir):
        click.echo(str(path))


def run_main():  # pragma: no cover - console entry for `python -m tempbench`
    main(prog_name="tempbench")
