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
from test_leaderboard import seed_board

from tempbench.leaderboard import build_leaderboard

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


def test_index_html_in_chromium(browser, tmp_path):
    subs = seed_board(tmp_path)
    out = tmp_path / "leaderboard"
    build_leaderboard(subs, out)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
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
    assert page.locator("#f-count").inner_text() == "6 entries shown"
    assert page.eval_on_selector_all("img", "imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")

    table = "#charades-test table"
    ranks = _column_values(page, table, 0)
    assert ranks == ["1", "2", "3", "4", "5"]
    # sort by R1@0.3 (column 4): first click sorts numbers descending, missing values last
    header = page.locator(f"{table} th", has_text="R1@0.3")
    header.click()
    values = _column_values(page, table, 4)
    nums = [float(v) for v in values if v]
    assert nums == sorted(nums, reverse=True) and values[-1] == ""
    assert _column_values(page, table, 0) != ranks  # the rows moved
    assert header.get_attribute("aria-sort") == "descending"
    header.click()
    values = _column_values(page, table, 4)
    nums = [float(v) for v in values if v]
    assert nums == sorted(nums) and values[-1] == "" and header.get_attribute("aria-sort") == "ascending"
    # sort by model name (text)
    page.locator(f"{table} th", has_text="model").first.click()
    names = _column_values(page, table, 1)
    assert names == sorted(names)

    # filters: setting hides the zero-shot rows; task hides the other section
    page.select_option("#f-setting", "fine-tuned")
    visible = page.eval_on_selector_all("tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.setting)")
    assert visible and set(visible) == {"fine-tuned"}
    assert page.locator("#charades-test tbody tr[data-setting='zero-shot']").first.is_hidden()
    assert page.locator("#qvhighlights-val").is_hidden()  # its only entry is zero-shot
    page.select_option("#f-setting", "")
    page.select_option("#f-task", "qvhighlights")
    assert page.locator("#charades-test").is_hidden() and page.locator("#qvhighlights-val").is_visible()
    page.select_option("#f-task", "")
    page.select_option("#f-source", "reported")
    assert page.locator("#f-count").inner_text() == "2 entries shown"
    page.select_option("#f-source", "")
    page.select_option("#f-split", "val")
    assert page.locator("#charades-test").is_hidden()
    page.select_option("#f-split", "")
    assert page.locator("#f-count").inner_text() == "6 entries shown"
    assert problems == []

    artefacts = Path(os.environ.get("TEMPBENCH_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    shot = artefacts / "leaderboard-index.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    page.close()
