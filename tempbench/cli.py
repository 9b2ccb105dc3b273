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
    from .annotations import atomic_write_text, load_annotations, records_to_jsonl

    text = records_to_jsonl(load_annotations(task, split))
    if output:
        atomic_write_text(output, text)
    else:
        sys.stdout.write(text)


def run_main():  # pragma: no cover - console entry for `python -m tempbench`
    main(prog_name="tempbench")
