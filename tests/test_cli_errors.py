"""Bad input and faults get one line (`error: FILE, line N, field 'F': problem` + `hint: what to do`), exit code 2,
no traceback, and nothing already written is lost (issue 12, items 3 and 4). Full and read-only disks are simulated
with RLIMIT_FSIZE in a subprocess (real EFBIG from the kernel) and with ENOSPC / EROFS raised from the write, since
tests run as root where permissions stop nothing. No test here needs the official data."""

from __future__ import annotations

import errno
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from tempbench.cli import _kv_options, main

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *needles, code=2):
    """The CLI failed the promised way: exit code, `error:` line(s) holding the needles, no traceback."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out and not isinstance(result.exception, (AssertionError, TypeError)), out
    assert out.startswith("error: ") or "\nerror: " in out, out
    for needle in needles:
        assert needle in out, (needle, out)
    return out


def tempbench_subprocess(args, cwd, fsize: int | None = None, timeout: float = 120, env=None):
    """`tempbench ARGS` in its own process, optionally with RLIMIT_FSIZE (writes past it fail with EFBIG)."""
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-c", "from tempbench.cli import main; main()", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout, preexec_fn=limit,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def ann(tmp_path) -> Path:
    """A custom grounding task of 3,000 queries (unified annotation records)."""
    return write_jsonl(tmp_path / "ann.jsonl", [
        {"qid": i, "vid": f"v{i // 3}", "query": f"query {i}", "duration": 60.0,
         "windows": [[float(i % 40), float(i % 40 + 8)]]} for i in range(3000)])


@pytest.fixture
def hl_ann(tmp_path) -> Path:
    return write_jsonl(tmp_path / "hl.jsonl", [
        {"qid": i, "vid": f"v{i}", "query": f"query {i}", "duration": 150.0, "windows": [[10.0, 30.0]],
         "saliency": {"clip_ids": [5, 6], "scores": [[1, 2, 3], [2, 2, 4]]}} for i in range(20)])


# ---------------------------------------------------------------------------------------------------------------
# predictions files that are not what they claim


@pytest.mark.parametrize("name, data, needle", [
    ("binary", bytes(range(256)) * 4, "line 2: is not UTF-8 text (byte 128)"),
    ("gzip", gzip.compress(b'{"qid": 0, "output": "1 to 2"}\n'), "is gzip-compressed"),
    ("utf16", '{"qid": 0, "output": "1 to 2"}\n'.encode("utf-16"), "line 1: is not UTF-8 text (byte 0)"),
    ("latin1", '{"qid": 0, "output": "1 to 2"}\n{"qid": 1, "output": "caf\xe9 3 to 4"}\n'.encode("latin-1"),
     "line 2: is not UTF-8 text"),
    ("nested-list", b"[" * 100_000, "JSON nested too deeply"),
    ("nested-row", b'{"qid": 0, "windows": ' + b"[" * 100_000 + b"\n", "line 1: JSON nested too deeply"),
    ("long-qid", b'{"qid": 1, "output": "1 to 2"}\n{"qid": ' + b"9" * 5000 + b', "output": "1 to 2"}\n',
     "line 2: an integer with too many digits"),
    ("long-string-qid", b'{"qid": "' + b"9" * 5000 + b'", "output": "1 to 2"}\n',
     "line 1, field 'qid': qid (not an integer) is not a query of this split"),
])
def test_undecodable_predictions_are_one_line(ann, tmp_path, name, data, needle):
    pred = tmp_path / f"{name}.jsonl"
    pred.write_bytes(data)
    one_line_error(cli("score", pred, "--annotations", ann, "--no-ci"), f"{pred}", needle)


def test_a_fifo_is_refused_instead_of_blocking(ann, tmp_path):
    fifo = tmp_path / "preds.jsonl"
    os.mkfifo(fifo)
    proc = tempbench_subprocess(["score", fifo, "--annotations", ann], tmp_path, timeout=60)
    assert proc.returncode == 2 and f"error: {fifo}: is not a regular file" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("field", ["windows", "pred_relevant_windows"])
@pytest.mark.parametrize("value", [[["1", "2"]], [[True, False]], [[1, "2", 0.5]], [[0, 1, True]]])
def test_windows_as_strings_or_booleans_are_refused(ann, hl_ann, tmp_path, field, value):
    """Item 4: they used to be scored as numbers; the row and field are named, in tempbench's and the official
    QVHighlights fields."""
    annotations = hl_ann if field == "pred_relevant_windows" else ann
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "1 to 2"}, {"qid": 1, field: value}])
    one_line_error(cli("score", pred, "--annotations", annotations, "--no-ci"),
                   f"{pred}, line 2, field '{field}[0]'", "holds a value that is not a number")


@pytest.mark.parametrize("field", ["saliency", "pred_saliency_scores"])
@pytest.mark.parametrize("value", [["0.5", "1"], [True, 0.5]])
def test_saliency_as_strings_or_booleans_is_refused(hl_ann, tmp_path, field, value):
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "windows": [[10, 30]], field: value}])
    one_line_error(cli("score", pred, "--annotations", hl_ann, "--no-ci"), f"{pred}, line 1, field '{field}'",
                   "not a list of numbers")


# ---------------------------------------------------------------------------------------------------------------
# run.json that is not a run record


def _run_folder(ann, tmp_path) -> Path:
    out = tmp_path / "run"
    result = cli("run", "--model", "baseline:random", "--annotations", ann, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("content, needle", [
    ("[1, 2]", "run.json: the top level is a list, not a dict"),
    ("task-123", "run.json: field 'task': 123 is not of type 'string'"),
    ("{", "run.json, line 1: not valid JSON"),
])
def test_a_broken_run_json_is_one_line_for_score_and_run(ann, tmp_path, content, needle):
    out = _run_folder(ann, tmp_path)
    run_json = out / "run.json"
    if content == "task-123":
        data = json.loads(run_json.read_text())
        data["task"] = 123
        content = json.dumps(data)
    run_json.write_text(content)
    one_line_error(cli("score", out / "predictions.jsonl", "--annotations", ann, "--no-ci"), needle)
    one_line_error(cli("run", "--model", "baseline:random", "--annotations", ann, "--out", out, "--no-progress"),
                   needle)
    assert (out / "predictions.jsonl").stat().st_size > 0  # nothing written is lost


# ---------------------------------------------------------------------------------------------------------------
# options


def test_negative_resamples_are_refused(ann, tmp_path):
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "1 to 2"}])
    one_line_error(cli("score", pred, "--annotations", ann, "--resamples", "-5"), "--resamples -5: must be at least 1")
    one_line_error(cli("compare", pred, pred, "--annotations", ann, "--resamples", "0"), "must be at least 1")


def test_unknown_or_mistyped_generation_settings_are_refused(ann, tmp_path):
    base = ["run", "--model", "baseline:random", "--annotations", ann, "--out", tmp_path / "r", "--no-progress"]
    one_line_error(cli(*base, "--gen", "nosuch=1"), "unknown generation setting(s): nosuch", "--gen takes")
    one_line_error(cli(*base, "--gen", "max_new_tokens=many"), "generation setting max_new_tokens='many' must be "
                                                               "an integer")
    one_line_error(cli(*base, "--gen", "temperature=hot,do_sample=true"), "temperature='hot' must be a number")
    one_line_error(cli(*base, "--gen", "do_sample=maybe"), "do_sample='maybe' must be true or false")
    one_line_error(cli(*base, "--video", "fps=fast"), "video setting fps='fast' must be a positive number",
                   "--video fps=2")
    assert not (tmp_path / "r").exists()


def test_generation_settings_take_lmms_evals_comma_form():
    assert _kv_options(["max_new_tokens=64,temperature=0"], "--gen") == {"max_new_tokens": 64, "temperature": 0}
    assert _kv_options(["max_new_tokens=64", "do_sample=true,top_p=0.9"], "--gen") == \
        {"max_new_tokens": 64, "do_sample": True, "top_p": 0.9}
    assert _kv_options(["extra_body={\"a\": 1, \"b\": 2}"], "--model-args") == {"extra_body": {"a": 1, "b": 2}}


def test_comma_form_reaches_the_server_and_run_json(tmp_path):
    """`--gen "max_new_tokens=64,temperature=0"` through a run against a real OpenAI-compatible server."""
    pytest.importorskip("av")
    from openai_test_server import OpenAITestServer

    from tempbench.tasks import synthetic

    videos = tmp_path / "videos"
    synthetic.generate(videos, "test")
    with OpenAITestServer() as server:
        result = cli("run", "--model", "openai:test-model", "--api-base", server.base_url, "--annotations",
                     videos / "annotations.jsonl", "--videos", videos, "--out", tmp_path / "run", "--limit", "2",
                     "--gen", "max_new_tokens=64,temperature=0,seed=3", "--video", "max_frames=4", "--no-progress")
        assert result.exit_code == 0, result.output
        bodies = list(server.requests)
    assert {b["max_tokens"] for b in bodies} == {64} and {b["temperature"] for b in bodies} == {0.0}
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["generation"]["max_new_tokens"] == 64 and run["generation"]["seed"] == 3


# ---------------------------------------------------------------------------------------------------------------
# where the output goes


def test_out_under_a_file_is_one_line(ann, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "1 to 2"}])
    one_line_error(cli("score", pred, "--annotations", ann, "--no-ci", "--out", blocker / "r.json"),
                   f"{blocker / 'r.json'}: cannot write the result: a part of the path is a file, not a folder",
                   "hint: choose another path")
    one_line_error(cli("score", pred, "--annotations", ann, "--no-ci", "--details", blocker / "d.jsonl.gz"),
                   "a part of the path is a file, not a folder")
    one_line_error(cli("run", "--model", "baseline:random", "--annotations", ann, "--out", blocker / "run"),
                   f"run folder {blocker / 'run'}: a part of the path is a file, not a folder")
    key = "3MSZA.mp4>>>person turn a light on>>>[24.3, 30.4]"
    lmms = write_jsonl(tmp_path / "samples.jsonl", [{"doc_id": 0, "filtered_resps": "1 - 2", "target": "[24.3, 30.4]",
                                                      "charades_sta_mIOU": {key: "1 - 2"}}])
    one_line_error(cli("convert", lmms, "--from", "lmms-eval", "-o", blocker / "c.jsonl"),  # the CLI's safety net
                   "a part of the path is a file, not a folder")
    assert blocker.read_text() == "x"


def _fail_on(monkeypatch, target: str, code: int, after: int = 0, times: int | None = None):
    """Make `target` (os.fsync, tempfile.mkstemp, ...) raise OSError(code) from its (after+1)-th call on
    (`times` calls, default all)."""
    module, name = target.rsplit(".", 1)
    owner = {"os": os, "tempfile": tempfile}[module]
    real = getattr(owner, name)
    calls = {"n": 0}

    def fake(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > after and (times is None or calls["n"] <= after + times):
            raise OSError(code, os.strerror(code), str(args[0]) if args and isinstance(args[0], (str, Path)) else None)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, fake)
    return calls


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "the file system is read-only"),
                                          (errno.ENOSPC, "the disk is full")])
def test_result_on_a_read_only_or_full_disk_is_one_line(ann, tmp_path, monkeypatch, code, reason):
    pred = write_jsonl(tmp_path / "p.jsonl", [{"qid": 0, "output": "1 to 2"}])
    _fail_on(monkeypatch, "tempfile.mkstemp", code)
    one_line_error(cli("score", pred, "--annotations", ann, "--no-ci", "--out", tmp_path / "r.json"),
                   f"cannot write the result: {reason}")


def test_run_folder_on_a_read_only_disk_is_one_line(ann, tmp_path, monkeypatch):
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "ro-run":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    one_line_error(cli("run", "--model", "baseline:random", "--annotations", ann, "--out", tmp_path / "ro-run"),
                   "cannot be created (the file system is read-only)")


def test_disk_full_at_the_first_write_of_run_json(ann, tmp_path, monkeypatch):
    _fail_on(monkeypatch, "tempfile.mkstemp", errno.ENOSPC)
    out = one_line_error(cli("run", "--model", "baseline:random", "--annotations", ann, "--out", tmp_path / "run",
                             "--no-progress"), "run.json: cannot write run.json: the disk is full")
    assert "everything written so far is kept" in out


def test_disk_full_during_a_run_keeps_what_was_written_and_resumes(ann, tmp_path):
    """RLIMIT_FSIZE: the predictions file hits the limit mid-run (a real EFBIG from write/flush). One line, exit 2;
    run.json is there and says `failed`; the rows written before are kept; the resumed run finishes with the
    same predictions as a run that never failed."""
    out = tmp_path / "run"
    args = ["run", "--model", "baseline:random", "--annotations", ann, "--out", out, "--no-progress",
            "--batch-size", "100"]
    proc = tempbench_subprocess(args, tmp_path, fsize=60_000)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"error: {out / 'predictions.jsonl'}: cannot write predictions: the file size limit is reached" \
        in proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["outcome"]["status"] == "failed"
    kept = (out / "predictions.jsonl").read_bytes()
    assert 0 < len(kept) <= 60_000
    resumed = tempbench_subprocess(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    clean = tempbench_subprocess([*args[:6], tmp_path / "clean", *args[7:]], tmp_path)
    assert clean.returncode == 0, clean.stderr
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(rows, key=lambda r: r["qid"]) == \
        [json.loads(x) for x in (tmp_path / "clean" / "predictions.jsonl").read_text().splitlines()]
    assert kept.rsplit(b"\n", 1)[0] == (out / "predictions.jsonl").read_bytes()[:len(kept.rsplit(b"\n", 1)[0])]


def test_disk_full_on_fsync_during_a_run_is_one_line(ann, tmp_path, monkeypatch):
    _fail_on(monkeypatch, "os.fsync", errno.ENOSPC, after=3, times=1)  # the 4th fsync: a predictions batch
    out = tmp_path / "run"
    one_line_error(cli("run", "--model", "baseline:random", "--annotations", ann, "--out", out, "--no-progress",
                       "--batch-size", "256"), "cannot write predictions: the disk is full")
    assert json.loads((out / "run.json").read_text())["outcome"]["status"] == "failed"
    assert cli("run", "--model", "baseline:random", "--annotations", ann, "--out", out,
               "--no-progress").exit_code == 0
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3000


# ---------------------------------------------------------------------------------------------------------------
# data import


def _qvh_raw(folder: Path, n: int, shift: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "highlight_val_release.jsonl", [
        {"qid": i, "vid": f"v{i}", "query": f"q {i}", "duration": 150, "relevant_windows": [[10 + shift, 30]],
         "relevant_clip_ids": [5, 6], "saliency_scores": [[1, 2, 3], [2, 2, 4]]} for i in range(n)])
    return folder


def test_disk_full_during_data_import_is_one_line_and_changes_nothing(tb_home, tmp_path):
    src = _qvh_raw(tmp_path / "raw", 3000)
    args = ["data", "import", "qvhighlights", "--from", src, "--split", "val", "--allow-hash-mismatch"]
    proc = tempbench_subprocess(args, tmp_path, fsize=100_000)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write the qvhighlights annotations: the file size limit is reached" in proc.stderr
    assert not (tb_home / "annotations" / "qvhighlights" / "val.jsonl").exists()
    assert tempbench_subprocess(args, tmp_path).returncode == 0


def test_a_failed_manifest_write_puts_the_previous_records_back(tb_home, tmp_path, monkeypatch):
    from tempbench.annotations import load_split

    first = _qvh_raw(tmp_path / "a", 10)
    assert cli("data", "import", "qvhighlights", "--from", first, "--allow-hash-mismatch").exit_code == 0
    before = load_split("qvhighlights", "val")
    second = _qvh_raw(tmp_path / "b", 12, shift=1.0)
    with monkeypatch.context() as m:
        _fail_on(m, "tempfile.mkstemp", errno.ENOSPC, after=1, times=1)  # records written, the manifest not
        one_line_error(cli("data", "import", "qvhighlights", "--from", second, "--allow-hash-mismatch"),
                       "manifest.json: cannot write the qvhighlights manifest: the disk is full")
    after = load_split("qvhighlights", "val")
    assert after.records == before.records and after.annotation_sha256 == before.annotation_sha256


def test_cached_records_that_do_not_match_the_manifest_are_refused(tb_home, tmp_path):
    from tempbench.annotations import load_split

    assert cli("data", "import", "qvhighlights", "--from", _qvh_raw(tmp_path / "a", 10),
               "--allow-hash-mismatch").exit_code == 0
    cached = tb_home / "annotations" / "qvhighlights" / "val.jsonl"
    cached.write_text(cached.read_text().replace('"q 3"', '"q three"'))
    with pytest.raises(Exception, match="the cached records are not the ones .* describes"):
        load_split("qvhighlights", "val")


@pytest.mark.parametrize("task, files", [
    ("charades", ["charades_sta_test.txt", "Charades_v1_test.csv"]),
    ("anet", ["val_2.json"]),
    ("qvhighlights", ["highlight_val_release.jsonl"]),
])
def test_import_of_binary_raw_files_is_one_line(tb_home, tmp_path, task, files):
    src = tmp_path / "raw"
    src.mkdir()
    for name in files:
        (src / name).write_bytes(b"\x00\xff\xfe binary \x80" * 100)
    split = {"charades": "test", "anet": "val_2", "qvhighlights": "val"}[task]
    out = one_line_error(cli("data", "import", task, "--from", src, "--split", split, "--allow-hash-mismatch"),
                         str(src))
    assert "is not UTF-8 text" in out or "not valid JSON" in out or "cannot be read" in out


@pytest.mark.parametrize("content", [
    '{"v1": {"duration": 10, "timestamps": 5, "sentences": ["a"]}}',
    '{"v1": {"duration": 10, "timestamps": [[1, 2]], "sentences": 7}}',
    '{"v1": {"duration": 10, "timestamps": [[1, 2]], "sentences": ["a"]}, "v2": 3}',
])
def test_import_of_misshapen_official_json_is_one_line(tb_home, tmp_path, content):
    src = tmp_path / "raw"
    src.mkdir()
    (src / "val_2.json").write_text(content)
    one_line_error(cli("data", "import", "anet", "--from", src, "--split", "val_2", "--allow-hash-mismatch"),
                   "val_2.json")
