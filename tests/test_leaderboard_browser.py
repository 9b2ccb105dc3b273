"""index.html in headless Chromium (Playwright): loads without console errors or network requests, sorting a column
reorders the rows, the filters hide rows. A screenshot is saved to $TEMPBENCH_TEST_ARTIFACTS (default
tests/artifacts/, git-ignored) and its path printed.

Chromium is the Debian package at /usr/bin/chromium (never `playwright install`). Without it the test skips,
except in CI (env CI=true), where it fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_leaderboard import board_dirs, shared_data_module  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("TEMPBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires the browser test to run (apt-get install chromium; "
                    "pip install playwright)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright for Python is not installed")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"chromium not found at {CHROMIUM}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _column_values(page, table_sel: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"{table_sel} tbody tr:not([hidden])", f"rows => rows.map(r => r.cells[{col}].getAttribute('data-value'))")


def test_index_html_in_chromium(browser, board_dirs):  # noqa: F811
    _subs, out = board_dirs
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems, requests = [], []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("request", lambda req: requests.append(req.url))
    url = (out / "index.html").resolve().as_uri()
    page.goto(url)
    page.wait_for_load_state("load")
    assert problems == []
    assert [r for r in requests if not (r == url or r.startswith("data:"))] == []  # self-contained
    assert page.title() == "tempbench leaderboard"
    assert page.locator("section.board").count() == 2
    assert page.locator("#f-count").inner_text() == "7 entries shown"
    assert page.eval_on_selector_all("img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    # the columns fit 1,400 px: no horizontal scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    # verified, unverified and reported are separate tables
    assert page.locator("#charades-test table.verified tbody tr").count() == 3
    assert page.locator("#charades-test table.unverified tbody tr").count() == 1
    assert page.locator("#charades-test table.reported tbody tr").count() == 2

    table = "#charades-test table.verified"
    ranks = _column_values(page, table, 0)
    assert ranks == ["1", "2", "3"]
    header = page.locator(f"{table} th", has_text="R1@0.3")  # column 3: first click sorts numbers descending
    header.click()
    values = [float(v) for v in _column_values(page, table, 3)]
    assert values == sorted(values, reverse=True) and _column_values(page, table, 0) != ranks
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    values = [float(v) for v in _column_values(page, table, 3)]
    assert values == sorted(values) and header.get_attribute("aria-sort") == "ascending"
    page.locator(f"{table} th", has_text="model").first.click()
    names = _column_values(page, table, 1)
    assert names == sorted(names)

    # significance mark, and provenance on demand with the reference as a link
    assert page.locator(f"{table} .ns").count() == 1
    link = page.locator("#qvhighlights-val table.verified td.more a").first
    assert link.get_attribute("href").startswith("https://github.com/jayleicn/moment_detr/blob/")
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    details = page.locator("#charades-test table.verified details").first
    assert not details.evaluate("d => d.open")
    details.locator("summary").click()
    assert details.evaluate("d => d.open") and "predictions sha256" in details.inner_text()

    # filters: status, setting, task, split
    page.select_option("#f-status", "reported")
    assert page.locator("#f-count").inner_text() == "2 entries shown"
    assert page.locator("#charades-test div.part.verified").is_hidden()
    page.select_option("#f-status", "")
    page.select_option("#f-setting", "fine-tuned")
    visible = page.eval_on_selector_all("tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.setting)")
    assert visible and set(visible) == {"fine-tuned"}
    page.select_option("#f-setting", "")
    page.select_option("#f-task", "qvhighlights")
    assert page.locator("#charades-test").is_hidden() and page.locator("#qvhighlights-val").is_visible()
    page.select_option("#f-task", "")
    page.select_option("#f-split", "val")
    assert page.locator("#charades-test").is_hidden()
    page.select_option("#f-split", "")
    assert page.locator("#f-count").inner_text() == "7 entries shown"
    assert problems == []

    artefacts = Path(os.environ.get("TEMPBENCH_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "leaderboard-index.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    page.close()
