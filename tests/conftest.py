"""Shared fixtures.

Tests that need the official files find them where a user has them, in this order (README, "Running the tests"):

1. `$TEMPBENCH_TEST_DATA`: a folder laid out like ../shared/data (`charades_sta/`, `activitynet_captions/`,
   `qvhighlights/`, each holding the official files);
2. `../shared/data` beside the repository (`$TEMPBENCH_SHARED_DATA` overrides where that is);
3. the user's own tempbench cache (`$TEMPBENCH_HOME` as it was when the tests started, else ~/.cache/tempbench):
   the raw files `tempbench data fetch` downloaded (`raw/<task>/`) and, for the fixtures that need imported
   annotations, the splits `tempbench data import` wrote (`annotations/<task>/`, copied, never changed).

They skip with a reason naming those places when the data is absent, and fail instead when
TEMPBENCH_REQUIRE_DATA=1 (as in CI)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TEMPBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
# captured at import: tests point TEMPBENCH_HOME at their own temporary caches
USER_CACHE = Path(os.environ.get("TEMPBENCH_HOME") or Path.home() / ".cache" / "tempbench").expanduser()
# ../shared/data's folders and the tasks whose raw files they hold
TASK_FOLDERS = {"charades_sta": "charades", "activitynet_captions": "anet", "qvhighlights": "qvhighlights"}


@functools.cache
def _cache_as_data_root(cache: Path) -> Path | None:
    """The cache's raw files (`raw/<task>/`) seen through the ../shared/data layout (a folder of links)."""
    present = {folder: cache / "raw" / task for folder, task in TASK_FOLDERS.items() if (cache / "raw" / task).is_dir()}
    if not present:
        return None
    root = Path(tempfile.mkdtemp(prefix="tempbench-cache-data-"))
    for folder, target in present.items():
        (root / folder).symlink_to(target, target_is_directory=True)
    return root


def data_roots(cache: Path | None = None) -> list[tuple[str, Path | None]]:
    """(where, folder) in search order; the folder is None where that place is not set up."""
    env = os.environ.get("TEMPBENCH_TEST_DATA")
    return [("$TEMPBENCH_TEST_DATA", Path(env).expanduser() if env else None),
            ("../shared/data", SHARED_DATA if SHARED_DATA.is_dir() else None),
            ("the tempbench cache", _cache_as_data_root(cache or USER_CACHE))]


def find_test_data(*parts: str, cache: Path | None = None) -> tuple[Path | None, str]:
    """The first of `data_roots()` that holds `parts` (the root itself when no parts are given), and a sentence
    naming every place looked in (for the skip reason)."""
    looked = []
    for where, root in data_roots(cache):
        if root is None:
            looked.append(f"{where} ({'not set' if where.startswith('$') else 'absent'})")
            continue
        path = root.joinpath(*parts)
        if path.exists():
            return path, ""
        looked.append(f"{where} ({root})" if where != "the tempbench cache" else
                      f"the tempbench cache ({cache or USER_CACHE}/raw/<task>/)")
    target = "/".join(parts) or "the official data"
    return None, (f"{target} not found; looked in " + ", ".join(looked) +
                  ". Point $TEMPBENCH_TEST_DATA at a folder of the official files, or fetch them with "
                  "`tempbench data fetch TASK` (README, 'Running the tests')")


def _skip_or_fail(message: str):
    if os.environ.get("TEMPBENCH_REQUIRE_DATA") == "1":
        pytest.fail(message + "; TEMPBENCH_REQUIRE_DATA=1 makes this a failure")
    pytest.skip(message)


def require_shared_data(*parts: str) -> Path:
    """The official data at `parts` (e.g. "charades_sta", "charades_sta_test.txt"), from the first place that has
    it (module docstring), or skip (fail when TEMPBENCH_REQUIRE_DATA=1) with a reason naming the places."""
    path, message = find_test_data(*parts)
    if path is None:
        _skip_or_fail(message)
    return path


def imported_cache_annotations(cache: Path, tasks=tuple(TASK_FOLDERS.values())) -> Path | None:
    """The cache's `annotations/` folder when every task in `tasks` was imported there with files whose sha256
    the task cards pin (each split's records matching its manifest), else None."""
    import hashlib

    for task in tasks:
        manifest = cache / "annotations" / task / "manifest.json"
        try:
            entries = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        if not entries:
            return None
        for split, entry in entries.items():
            records = cache / "annotations" / task / f"{split}.jsonl"
            if not entry.get("hash_verified") or not records.is_file() or \
                    hashlib.sha256(records.read_bytes()).hexdigest() != entry.get("records_sha256"):
                return None
    return cache / "annotations"


def _full_data_root() -> Path | None:
    """The first place that holds all three tasks' folders."""
    return next((root for _, root in data_roots() if root is not None
                 and all((root / folder).is_dir() for folder in TASK_FOLDERS)), None)


@pytest.fixture
def shared_data() -> Path:
    """A folder laid out like ../shared/data with the three tasks' official files (first place that has them)."""
    root = _full_data_root()
    if root is None:
        _skip_or_fail(find_test_data(*TASK_FOLDERS)[1].replace("/".join(TASK_FOLDERS), "the three tasks' folders"))
    return root


@pytest.fixture
def tb_home(tmp_path, monkeypatch) -> Path:
    """An empty tempbench cache for one test."""
    home = tmp_path / "tbhome"
    monkeypatch.setenv("TEMPBENCH_HOME", str(home))
    monkeypatch.delenv("TEMPBENCH_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def imported_home(tmp_path_factory) -> Path:
    """A cache with every official task imported once per test session (read-only for tests): imported from the
    official files (first place that has all three), else copied from the user's own imported cache."""
    from tempbench.annotations import import_task

    home = tmp_path_factory.mktemp("tbhome-imported")
    data = _full_data_root()
    if data is None:
        cached = imported_cache_annotations(USER_CACHE)
        if cached is None:
            _skip_or_fail(find_test_data("charades_sta")[1] + f"; nor are all three tasks imported in {USER_CACHE}")
        shutil.copytree(cached, home / "annotations")
        return home
    old = os.environ.get("TEMPBENCH_HOME")
    os.environ["TEMPBENCH_HOME"] = str(home)
    try:
        for task, folder in (("charades", "charades_sta"), ("anet", "activitynet_captions"),
                             ("qvhighlights", "qvhighlights")):
            import_task(task, data / folder)
    finally:
        if old is None:
            os.environ.pop("TEMPBENCH_HOME")
        else:
            os.environ["TEMPBENCH_HOME"] = old
    return home


@pytest.fixture
def use_imported(imported_home, monkeypatch) -> Path:
    monkeypatch.setenv("TEMPBENCH_HOME", str(imported_home))
    return imported_home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny float32 Qwen2.5-VL model folder (`tempbench.models.qwen.tiny.tiny_model_dir(0)`), built once per session
    into a session tmp dir (the layout of `$TEMPBENCH_HOME/models/`, so it can be linked into a test's cache)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tempbench.models.qwen.tiny import tiny_model_dir

    return tiny_model_dir(0, cache_dir=tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def synthetic_split(tmp_path_factory) -> Path:
    """The synthetic test split (16 real mp4 files + annotations.jsonl), generated once per test session
    (read-only for tests: link it into a test's own TEMPBENCH_HOME)."""
    pytest.importorskip("av")
    from tempbench.tasks import synthetic

    out = tmp_path_factory.mktemp("synthetic") / "test"
    synthetic.generate(out, "test")
    return out
