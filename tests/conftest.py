"""Shared fixtures. Tests that need the official files read them from ../shared/data: they skip with a reason when
it is absent, and fail instead when TEMPBENCH_REQUIRE_DATA=1 (as in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TEMPBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def require_shared_data(*parts: str) -> Path:
    """The path under ../shared/data, or skip (fail when TEMPBENCH_REQUIRE_DATA=1) if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"official data not found at {path} (put the shared data folder beside the repository)"
        if os.environ.get("TEMPBENCH_REQUIRE_DATA") == "1":
            pytest.fail(message + "; TEMPBENCH_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture
def tb_home(tmp_path, monkeypatch) -> Path:
    """An empty tempbench cache for one test."""
    home = tmp_path / "tbhome"
    monkeypatch.setenv("TEMPBENCH_HOME", str(home))
    monkeypatch.delenv("TEMPBENCH_MIRROR", raising=False)
    return home


@pytest.fixture(scope="session")
def imported_home(tmp_path_factory) -> Path:
    """A cache with every official task imported once per test session (read-only for tests)."""
    data = require_shared_data()
    from tempbench.annotations import import_task

    home = tmp_path_factory.mktemp("tbhome-imported")
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
