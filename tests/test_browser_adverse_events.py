"""The Adverse events page in a real browser: it draws for the three studies the test server holds,
and a click on a cell of the summary table (a bar segment for DEMO-MULTI) lists the events behind
it. Screenshots: tests/artifacts/adverse-events-<study>.png and -<study>-drilldown.png.

Fixtures (``browser``, ``server``): tests/browser_support.py. The expected counts are the seed's
tuples and the CDISC pilot's files (tests/test_adverse_events.py checks both independently); the
DEMO-MULTI figures are read from the demo database with plain SQL.
"""

from typing import Any

import pandas as pd
import pytest

from dashboard.db import make_engine
from dashboard.demo import SEED_ADVERSE_EVENTS
from dashboard.views.format import plural
from tests.browser_support import ARTIFACTS, settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

# A tall window: Streamlit scrolls inside its own container, so a full-page screenshot only holds
# what the window shows (the pilot's page, with its 23 system organ classes, is the longest).
VIEWPORT = {"width": 1400, "height": 7500}
ROW = 35  # the data grid's header and row height, in pixels


def _expected_any_ae(study: str, demo_db_url: str) -> tuple[int, int]:
    """(events, subjects) of every AE of the study, from an independent source."""
    if study == "NCT06466850":
        return len(SEED_ADVERSE_EVENTS), len({ae[0] for ae in SEED_ADVERSE_EVENTS})
    if study == "CDISCPILOT01":
        return 961, 225  # ../shared/data/README.md, counted from ae.xpt
    ae = pd.read_sql_query(
        "SELECT ae.subject_pk FROM adverseevent ae JOIN subject s ON s.id = ae.subject_pk "
        f"WHERE s.study_id = '{study}'",
        make_engine(demo_db_url),
    )
    return len(ae), int(ae["subject_pk"].nunique())


def _click_summary_cell(page: Any, row: int) -> None:
    """Click the last column (the total, or a single arm) of a row of the summary table: the grid
    draws on a canvas, so the click goes to the cell's position."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    box = grid.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 40, box["y"] + ROW + ROW * row + ROW // 2)


@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI", "CDISCPILOT01"])
def test_page_draws_and_a_cell_lists_its_events(
    browser: Any, server: str, demo_db_url: str, study: str
) -> None:
    if study == "CDISCPILOT01" and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/adverse-events?study={study}")
    settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / f"adverse-events-{study}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Adverse events"
    main = page.locator('[data-testid="stMain"]')
    for heading in (
        "Summary by arm",
        "Serious adverse events",
        "Subjects by severity, seriousness and relationship",
        "Incidence by system organ class and preferred term",
        "Timelines",
    ):
        assert heading in main.inner_text()
    # Severity bars and the SOC dots; no timeline until a subject or a figure is chosen.
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 2

    _click_summary_cell(page, row=0)  # "Any AE"
    page.get_by_text("Events behind: Any AE").wait_for(timeout=30_000)
    settle(page, chart=True)
    events, subjects = _expected_any_ae(study, demo_db_url)
    page.get_by_text(f"{plural(events, 'event')} in {plural(subjects, 'subject')}.").wait_for(
        timeout=30_000
    )
    assert page.get_by_text("Download Excel").count() == 2  # the SAE listing's and the drilldown's
    # The timeline of the subjects behind the figure is drawn.
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 3
    page.screenshot(path=str(ARTIFACTS / f"adverse-events-{study}-drilldown.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_a_severity_segment_lists_its_events(browser: Any, server: str) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/adverse-events?study=DEMO-MULTI")
    settle(page, chart=True)
    # Vega draws the bars as SVG paths labelled with their tooltip fields.
    segment = page.locator(
        '[data-testid="stVegaLiteChart"] svg g.mark-rect '
        'path[aria-label*="Arm: Total"][aria-label*="Highest level: Severe"]'
    )
    segment.first.click()
    page.get_by_text("Events behind: Maximum severity (AESEV): Severe · all arms").wait_for(
        timeout=30_000
    )
    settle(page, chart=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("the subjects behind the selection").click()
    settle(page, chart=True)
    page.wait_for_timeout(1000)
    page.screenshot(
        path=str(ARTIFACTS / "adverse-events-DEMO-MULTI-severe-timeline.png"), full_page=True
    )
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_a_cell_of_the_worst_level_table_lists_its_events(
    browser: Any, server: str, demo_db_url: str
) -> None:
    """The table beside the severity bars is a click target too: its "Severe" row's total cell
    lists the severe AEs (severe is the top level, so: every severe AE of the study)."""
    expected = pd.read_sql_query(
        "SELECT ae.subject_pk FROM adverseevent ae JOIN subject s ON s.id = ae.subject_pk "
        "WHERE s.study_id = 'DEMO-MULTI' AND upper(ae.severity) = 'SEVERE'",
        make_engine(demo_db_url),
    )
    assert len(expected) > 0
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/adverse-events?study=DEMO-MULTI")
    settle(page, chart=True)
    # The grids in page order: the summary, the SAE listing, then the worst-level table.
    grid = page.locator('[data-testid="stDataFrame"]').nth(2)
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 40, box["y"] + ROW + ROW // 2)  # row 0: Severe
    page.get_by_text("Events behind: Maximum severity (AESEV): Severe · all arms").wait_for(
        timeout=30_000
    )
    settle(page, chart=True)
    events, subjects = len(expected), int(expected["subject_pk"].nunique())
    page.get_by_text(f"{plural(events, 'event')} in {plural(subjects, 'subject')}.").wait_for(
        timeout=30_000
    )
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
