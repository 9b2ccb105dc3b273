"""Tests find the official data the way users have it (issue 12, item 9): $TEMPBENCH_TEST_DATA, then ../shared/data,
then the user's own cache; the skip reason names those places; TEMPBENCH_REQUIRE_DATA=1 turns the skip into a
failure (CI)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import conftest
import pytest
from conftest import REPO, find_test_data, imported_cache_annotations, require_shared_data


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No data in any place: TEMPBENCH_TEST_DATA unset, ../shared/data absent, an empty cache."""
    monkeypatch.delenv("TEMPBENCH_TEST_DATA", raising=False)
    monkeypatch.delenv("TEMPBENCH_REQUIRE_DATA", raising=False)
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "no-shared-data")
    monkeypatch.setattr(conftest, "USER_CACHE", tmp_path / "empty-cache")
    return tmp_path


def test_the_skip_reason_names_every_place(nowhere):
    path, message = find_test_data("charades_sta", "charades_sta_test.txt")
    assert path is None
    for place in ("charades_sta/charades_sta_test.txt not found", "$TEMPBENCH_TEST_DATA (not set)",
                  "../shared/data (absent)", "`tempbench data fetch TASK`", "README"):
        assert place in message, (place, message)
    with pytest.raises(pytest.skip.Exception, match="TEMPBENCH_TEST_DATA"):
        require_shared_data("charades_sta")


def test_require_data_turns_the_skip_into_a_failure(nowhere, monkeypatch):
    monkeypatch.setenv("TEMPBENCH_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="TEMPBENCH_REQUIRE_DATA=1 makes this a failure"):
        require_shared_data("qvhighlights")


def test_tempbench_test_data_comes_first(nowhere, monkeypatch):
    mine = nowhere / "mine"
    (mine / "charades_sta").mkdir(parents=True)
    (mine / "charades_sta" / "charades_sta_test.txt").write_text("x")
    shared = nowhere / "shared"
    (shared / "charades_sta").mkdir(parents=True)
    (shared / "charades_sta" / "charades_sta_test.txt").write_text("y")
    monkeypatch.setattr(conftest, "SHARED_DATA", shared)
    assert require_shared_data("charades_sta", "charades_sta_test.txt").read_text() == "y"
    monkeypatch.setenv("TEMPBENCH_TEST_DATA", str(mine))
    assert require_shared_data("charades_sta", "charades_sta_test.txt").read_text() == "x"


def test_files_fetched_into_the_users_cache_are_found(nowhere, monkeypatch):
    cache = nowhere / "cache"
    (cache / "raw" / "qvhighlights").mkdir(parents=True)
    (cache / "raw" / "qvhighlights" / "highlight_val_release.jsonl").write_text("{}\n")
    monkeypatch.setattr(conftest, "USER_CACHE", cache)
    path = require_shared_data("qvhighlights", "highlight_val_release.jsonl")
    assert path.read_text() == "{}\n" and path.resolve() == \
        (cache / "raw" / "qvhighlights" / "highlight_val_release.jsonl").resolve()
    _, message = find_test_data("charades_sta", "charades_sta_test.txt")
    assert f"the tempbench cache ({cache}/raw/<task>/)" in message


def _imported(cache: Path, verified: bool = True, edit: bool = False) -> None:
    for task in conftest.TASK_FOLDERS.values():
        folder = cache / "annotations" / task
        folder.mkdir(parents=True)
        text = json.dumps({"qid": 0, "vid": "v", "query": "q", "duration": 1.0, "windows": [[0, 1]]}) + "\n"
        (folder / "test.jsonl").write_text(text + ("edited\n" if edit else ""))
        (folder / "manifest.json").write_text(json.dumps({"test": {
            "hash_verified": verified, "records_sha256": hashlib.sha256(text.encode()).hexdigest()}}))


def test_the_users_imported_annotations_are_used_only_when_verified(tmp_path):
    good, unverified, edited, partial = (tmp_path / n for n in ("good", "unverified", "edited", "partial"))
    _imported(good)
    _imported(unverified, verified=False)
    _imported(edited, edit=True)
    (partial / "annotations" / "charades").mkdir(parents=True)
    assert imported_cache_annotations(good) == good / "annotations"
    assert imported_cache_annotations(unverified) is None
    assert imported_cache_annotations(edited) is None
    assert imported_cache_annotations(partial) is None


def test_a_data_test_without_data_skips_with_the_reason_and_fails_in_ci(tmp_path):
    """The suite as a user without the data runs it, and as CI runs it (TEMPBENCH_REQUIRE_DATA=1)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPBENCH_TEST_DATA", "TEMPBENCH_REQUIRE_DATA")}
    env.update(TEMPBENCH_SHARED_DATA=str(tmp_path / "absent"), TEMPBENCH_HOME=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
           "tests/test_metrics_qvhighlights.py::test_terms_reproduce_full_precision_values"]
    user = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert user.returncode == 0 and "1 skipped" in user.stdout, user.stdout
    assert "$TEMPBENCH_TEST_DATA (not set)" in user.stdout and "../shared/data (absent)" in user.stdout
    ci = subprocess.run(cmd, cwd=REPO, env={**env, "TEMPBENCH_REQUIRE_DATA": "1"}, capture_output=True, text=True,
                        timeout=300)
    assert ci.returncode == 1 and "TEMPBENCH_REQUIRE_DATA=1 makes this a failure" in ci.stdout, ci.stdout
