"""Review in a real browser (issue #20): on the Adverse events page of DEMO-MULTI a tick in the
SAE listing's Reviewed box writes the mark, and after a reload the row is reviewed; the AE and
Subject pages drawn at 1024 and 1440 px wide, with their review columns (screenshots:
tests/artifacts/review-<page>-<width>.png).

The server runs on its own copy of the demo database (this test writes to it). The grid draws on
a canvas; its cells are read from the accessible table Streamlit's grid keeps beside it
(``glide-cell-<column>-<row>``), and a tick is a click on the cell and the space bar.
"""

import os
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from dashboard.db import make_engine
from tests.browser_support import ARTIFACTS, settle, streamlit_server
from tests.databases import copy_database

pytestmark = pytest.mark.browser

MULTI = "DEMO-MULTI"
ROW = 35  # the grid's header and row height, in pixels
SAE_GRID = 1  # the SAE listing: the page's second grid (after the summary table)


@pytest.fixture(scope="module")
def review_server(
    demo_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The app's base URL, and the URL of the database copy it serves."""
    copy = copy_database(demo_db_url, tmp_path_factory.mktemp("browser-review"), "review")
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(
        env={**os.environ, "DATABASE_URL": copy}, log=ARTIFACTS / "server-review.log"
    ) as base:
        yield base, copy


def _log(db_url: str) -> pd.DataFrame:
    engine = make_engine(db_url)
    try:
        return pd.read_sql_query("SELECT * FROM reviewevent ORDER BY id", engine)
    finally:
        engine.dispose()


def _cells(grid: Any, column: int) -> list[str]:
    """The texts of one column of a grid, row by row (the accessible table's cells)."""
    found = grid.locator(f'[data-testid^="glide-cell-{column}-"]')
    return [str(t) for t in found.all_text_contents()]


def _column(grid: Any, header: str) -> int:
    headers = [h.strip() for h in grid.locator('[role="columnheader"]').all_text_contents()]
    return headers.index(header)


def _open_ae_page(page: Any, base: str) -> Any:
    page.goto(f"{base}/adverse-events?study={MULTI}")
    settle(page, chart=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    grid = page.locator('[data-testid="stDataFrame"]').nth(SAE_GRID)
    grid.locator('[role="columnheader"]').first.wait_for(state="attached", timeout=30_000)
    assert _column(grid, "Subject") == 0 and _column(grid, "Reviewed") == 1
    return grid


def test_a_tick_marks_the_sae_and_a_reload_finds_it_reviewed(
    browser: Any, review_server: tuple[str, str]
) -> None:
    base, db_url = review_server
    before = _log(db_url)
    page = browser.new_page(viewport={"width": 1440, "height": 3000})
    grid = _open_ae_page(page, base)
    subject_column = _column(grid, "Subject")
    state_column = _column(grid, "Review")
    states = _cells(grid, state_column)
    subjects = _cells(grid, subject_column)
    row = states.index("unreviewed")
    usubjid = subjects[row].rsplit("subject=", 1)[1]
    # A click on the row's rightmost cell in view (not the subject link, which opens a tab),
    # then the keyboard to its Reviewed box: the first column, the subject, then one right.
    box = grid.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 40, box["y"] + ROW + ROW * row + ROW // 2)
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowRight")
    page.keyboard.press(" ")
    page.get_by_text("marked reviewed as Medical monitor").wait_for(timeout=30_000)
    settle(page, chart=True)

    log = _log(db_url)
    assert len(log) == len(before) + 1
    written = log.iloc[-1]
    assert (written["entity"], written["kind"], written["role"]) == (
        "ae",
        "reviewed",
        "medical-monitor",
    )
    assert str(written["natural_key"]).startswith(f"{usubjid}/")

    page.reload()
    grid = _open_ae_page(page, base)
    page.screenshot(path=str(ARTIFACTS / "review-adverse-events-ticked.png"), full_page=True)
    subjects = _cells(grid, _column(grid, "Subject"))
    states = _cells(grid, _column(grid, "Review"))
    ticks = _cells(grid, _column(grid, "Reviewed"))
    reloaded = [i for i, s in enumerate(subjects) if s.endswith(f"subject={usubjid}")]
    assert any(states[i] == "reviewed" and ticks[i] == "true" for i in reloaded)
    # (Who and when are the last columns: the grid draws only the columns in view.)


@pytest.mark.parametrize("width", [1024, 1440])
def test_review_columns_fit_at_width(
    browser: Any, review_server: tuple[str, str], width: int
) -> None:
    base, _ = review_server
    page = browser.new_page(viewport={"width": width, "height": 3000})
    grid = _open_ae_page(page, base)
    page.screenshot(path=str(ARTIFACTS / f"review-adverse-events-{width}.png"), full_page=True)
    # The tick box and the state are the first columns, in view without scrolling the grid.
    box = grid.bounding_box()
    assert box["width"] <= width
    assert page.get_by_text("Only unreviewed / changed since review").is_visible()
    subject = _cells(grid, _column(grid, "Subject"))[0].rsplit("subject=", 1)[1]
    page.goto(f"{base}/subject?study={MULTI}&subject={subject}")
    settle(page, chart=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("Subject review (Medical monitor)").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / f"review-subject-{width}.png"), full_page=True)
