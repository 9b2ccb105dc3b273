"""A CLI that never lies (issue 12, item 8): every `--flag` and every `tempbench VERB` that any string in the package
names (hints, errors, help texts, docstrings) exists; `data check-videos` fails when videos are missing or broken;
`--shard` says that shard 0 waits and for how long; `--batch-size 0` is refused; `--profile all` fits 100 columns."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import tempbench
from tempbench.cli import main

PACKAGE = Path(tempbench.__file__).resolve().parent
REPO = PACKAGE.parent

# Flags of other programs that the package names on purpose; each must appear next to the program's name.
FOREIGN_FLAGS = {
    "--allowed-local-media-path": "vLLM",  # vLLM's server option for file:// video URLs
    "--nproc-per-node": "torchrun",
    "--reasoning_tags": "lmms-eval",
    "--log_samples": "lmms-eval",
}


def _strings() -> list[tuple[str, str]]:
    """(where, text) for every string constant (f-string pieces included) in the package's modules."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append((f"{path.relative_to(REPO)}:{node.lineno}", node.value))
    return out


def _commands(group: click.Group, prefix=()) -> dict[tuple[str, ...], click.Command]:
    out: dict[tuple[str, ...], click.Command] = {prefix: group}
    for name, cmd in group.commands.items():
        out[prefix + (name,)] = cmd
        if isinstance(cmd, click.Group):
            out.update(_commands(cmd, prefix + (name,)))
    return out


COMMANDS = _commands(main)


def _flags(cmd: click.Command) -> set[str]:
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")} | {"--help"}


ALL_FLAGS = set().union(*(_flags(c) for c in COMMANDS.values()))
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]")
# a command line as written in backticks or on a line of its own: `tempbench data import TASK --from DIR`
COMMAND_LINE = re.compile(r"`(tempbench(?: [^`]+)?)`|^\s*(tempbench [^\n]*)$|(?:^|[(;:] )(tempbench [a-z][^;)\n]*)",
                          re.MULTILINE)


def _resolve(words: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The longest command path that `words` (after `tempbench`) start with, and the rest."""
    path: tuple[str, ...] = ()
    rest = list(words)
    while rest and path + (rest[0],) in COMMANDS:
        path = path + (rest.pop(0),)
    return path, rest


def test_every_flag_named_in_the_package_exists():
    wrong = []
    for where, text in _strings():
        for flag in FLAG.findall(text):
            if flag in ALL_FLAGS:
                continue
            tool = FOREIGN_FLAGS.get(flag)
            if tool is not None and tool.lower() in text.lower():
                continue
            wrong.append(f"{where}: {flag} in {text[:100]!r}")
    assert not wrong, "hints name options that do not exist:\n" + "\n".join(wrong)


def test_every_command_named_in_the_package_exists_with_its_flags():
    wrong, seen = [], 0
    for where, text in _strings():
        for match in COMMAND_LINE.finditer(text):
            line = next(g for g in match.groups() if g)
            try:
                words = shlex.split(line.replace("...", " "))[1:]
            except ValueError:
                words = line.split()[1:]
            if not words or not words[0].islower() or not words[0].isalpha() and "-" not in words[0]:
                continue  # `tempbench` alone, or an f-string piece
            path, rest = _resolve(words)
            if not path:
                if words and words[0] in ("is", "does", "from", "with", "version", "checkout", "keeps", "writes",
                                          "annotation", "metric", "prediction", "predictions", "the", "and"):
                    continue  # prose ("tempbench does not ..."), not a command
                wrong.append(f"{where}: unknown command in {line!r}")
                continue
            seen += 1
            cmd = COMMANDS[path]
            if isinstance(cmd, click.Group) and not cmd.invoke_without_command and rest and \
                    not rest[0].startswith("-") and rest[0].islower() and rest[0].isalpha():
                wrong.append(f"{where}: {' '.join(path)} has no subcommand {rest[0]!r} ({line!r})")
            for word in rest:
                flag = word.split("=")[0]
                if flag.startswith("--") and flag not in _flags(cmd):
                    wrong.append(f"{where}: `tempbench {' '.join(path)}` has no {flag} ({line!r})")
    assert seen > 30  # the scan sees the package's commands
    assert not wrong, "\n".join(wrong)


def test_the_scanner_catches_what_the_issue_found():
    """The hints of the issue, as they were: each one must be caught."""
    caught = {text: [f for f in FLAG.findall(text) if f not in ALL_FLAGS]
              for text in ("check the video options (e.g. --fps, --max-frames)", "raise --timeout / --max-retries",
                           "pass --download to fetch it")}
    assert all(caught.values()), caught
    assert _resolve(["models"]) == ((), ["models"])  # `tempbench models` is not a command
    assert _resolve(["data", "import", "charades"]) == (("data", "import"), ["charades"])


# ---------------------------------------------------------------------------------------------------------------
# commands whose exit code or output said less than the truth


def test_batch_size_zero_is_refused_by_the_cli(tmp_path):
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"qid": 0, "vid": "v", "query": "q", "duration": 10.0, "windows": [[1, 2]]}) + "\n")
    for value in ("0", "-3"):
        res = CliRunner().invoke(main, ["run", "--model", "baseline:random", "--annotations", str(ann),
                                        "--out", str(tmp_path / "r"), "--batch-size", value])
        assert res.exit_code == 2 and f"--batch-size {value}: must be at least 1" in res.output, res.output
        assert not (tmp_path / "r").exists()


@pytest.fixture
def synthetic_home(tb_home, synthetic_split):
    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    return tb_home


def test_check_videos_exits_non_zero_when_videos_are_missing_or_broken(synthetic_home, synthetic_split, tmp_path):
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(synthetic_split, videos)
    ok = CliRunner().invoke(main, ["data", "check-videos", "synthetic", "--videos", str(videos)])
    assert ok.exit_code == 0, ok.output
    mp4s = sorted(videos.glob("*.mp4"))
    mp4s[0].unlink()
    mp4s[1].write_bytes(b"not a video")
    res = CliRunner().invoke(main, ["data", "check-videos", "synthetic", "--videos", str(videos)])
    assert res.exit_code == 1, res.output
    assert "1 of 16 videos missing, 1 undecodable" in " ".join(res.output.split())
    js = CliRunner().invoke(main, ["data", "check-videos", "synthetic", "--videos", str(videos), "--json"])
    assert js.exit_code == 1 and len(json.loads(js.stdout)["missing"]) == 1
    gone = CliRunner().invoke(main, ["data", "check-videos", "synthetic", "--videos", str(tmp_path / "nowhere")])
    assert gone.exit_code == 2 and "no such folder" in gone.output


def test_shard_zero_says_it_waits_for_the_other_shards(tmp_path, monkeypatch):
    ann = tmp_path / "ann.jsonl"
    ann.write_text("".join(json.dumps({"qid": i, "vid": f"v{i}", "query": f"q{i}", "duration": 10.0,
                                       "windows": [[1, 2]]}) + "\n" for i in range(6)))
    monkeypatch.setenv("TEMPBENCH_MERGE_TIMEOUT", "1")
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", "baseline:random", "--annotations", str(ann), "--out",
                                    str(out), "--shard", "0/2", "--no-progress"])
    text = " ".join(res.output.split())
    assert "shard 0/2 is done; waiting up to 1 s (TEMPBENCH_MERGE_TIMEOUT) for shard 1/2" in text, text
    assert res.exit_code == 2 and "rank(s) [1] of 2 did not finish" in text
    res = CliRunner().invoke(main, ["run", "--model", "baseline:random", "--annotations", str(ann), "--out",
                                    str(out), "--shard", "1/2", "--no-progress"])
    assert res.exit_code == 0 and "shard 0/2 merges" in " ".join(res.output.split()), res.output
    help_text = " ".join(CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output.split())
    assert "shard 0 then waits for the others" in help_text
    monkeypatch.setenv("TEMPBENCH_MERGE_TIMEOUT", "soon")
    res = CliRunner().invoke(main, ["run", "--model", "baseline:random", "--annotations", str(ann), "--out",
                                    str(tmp_path / "r2"), "--shard", "0/2", "--no-progress"])
    assert res.exit_code == 2 and "TEMPBENCH_MERGE_TIMEOUT='soon'" in res.output


def _qvh_annotations(tmp_path) -> Path:
    ann = tmp_path / "hl.jsonl"
    ann.write_text("".join(json.dumps({"qid": i, "vid": f"v{i}", "query": f"q{i}", "duration": 150.0,
                                       "windows": [[10.0, 30.0]],
                                       "saliency": {"clip_ids": [5, 6], "scores": [[1, 2, 3], [2, 2, 4]]}}) + "\n"
                           for i in range(30)))
    return ann


def test_profile_all_on_qvhighlights_fits_100_columns(tmp_path, monkeypatch):
    ann = _qvh_annotations(tmp_path)
    pred = tmp_path / "p.jsonl"
    pred.write_text("".join(json.dumps({"qid": i, "output": f"The highlight timestamps are in the 12, 14 seconds. "
                                                            f"Their saliency scores are 3, 4. {i} to {i + 20}"}) + "\n"
                            for i in range(30)))
    monkeypatch.setenv("COLUMNS", "100")
    res = CliRunner().invoke(main, ["score", str(pred), "--annotations", str(ann), "--kind", "highlights",
                                    "--profile", "all", "--no-ci"], terminal_width=100)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    for name in ("canonical", "xiaomi-time-r1", "timezero", "videochat-r1", "lmms-eval", "timelens", "tempsamp-r1"):
        assert any(name in line for line in lines), name  # one row per profile, names whole
    header = " ".join(lines[:8])
    for label in ("MR R1@0.5", "MR mAP", "HD mAP (VG)", "HD HIT@1 (VG)"):
        assert label in header, (label, header)
    assert "--json" in res.output  # every metric is one option away


def test_every_command_in_the_readme_and_docs_exists_with_its_flags():
    """Commands a user copies: backticked `tempbench ...` and code-block lines starting with `tempbench `."""
    wrong, seen = [], 0
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        in_code = False
        for i, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            found = re.findall(r"`(tempbench [^`]+)`", line)
            if in_code and line.strip().startswith("tempbench "):
                found.append(line.strip().split("  #")[0])
            for cmdline in found:
                try:
                    words = shlex.split(cmdline.replace("...", " "))[1:]
                except ValueError:
                    words = cmdline.split()[1:]
                path, rest = _resolve(words)
                if not path:
                    wrong.append(f"{doc.name}:{i}: unknown command in {cmdline!r}")
                    continue
                seen += 1
                for word in rest:
                    flag = word.split("=")[0]
                    if flag.startswith("--") and flag not in _flags(COMMANDS[path]):
                        wrong.append(f"{doc.name}:{i}: `tempbench {' '.join(path)}` has no {flag}")
    assert seen > 20
    assert not wrong, "\n".join(wrong)
