"""Real-browser tests of the Subject page: a subject code in a drilldown list is a link, and a click
on it opens that subject's page (in a new tab, as Streamlit's link cells do). Fixtures:
tests/browser_support.py."""

from typing import Any

import pytest

from tests.browser_support import ARTIFACTS
from tests.browser_support import settle as _settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

SEED = "NCT06466850"
# One of the five subjects who failed INCL02 (BMI).
BMI_FAILURE = "NCT06466850-01-017"
# Glide's grid (st.dataframe) draws cells on a canvas: rows and the header are 35 px high, and a
# link cell opens its URL only when the click lands on the link text, which starts 8 px in.
ROW_HEIGHT = 35


def test_click_a_subject_code_in_the_drilldown_opens_the_subject(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    page = context.new_page()
    page.goto(f"{server}/screen-failures?study={SEED}")
    _settle(page, chart=True)
    # Pick a criterion first, as a monitor does: click the BMI bar.
    page.locator(
        '[data-testid="stVegaLiteChart"] svg g.mark-rect path[aria-label*="Criterion: INCL02;"]'
    ).first.click()
    page.get_by_text("5 subjects failed INCL02").wait_for(timeout=30_000)
    # The drilldown grid's accessible copy holds each link's URL: the code is a Subject-page link.
    page.get_by_text(f"subject?study={SEED}&subject={BMI_FAILURE}").wait_for(
        state="attached", timeout=30_000
    )
    _settle(page, chart=True)
    # The drilldown is the grid whose accessible copy holds that link.
    grid = page.locator('[data-testid="stDataFrame"]').filter(has_text=f"subject={BMI_FAILURE}")
    # The first row's link, from the grid's accessible copy: the code the click below must open.
    first_link = (grid.locator('[role="gridcell"]').first.text_content() or "").strip()
    assert first_link.startswith(f"subject?study={SEED}&subject=")
    code = first_link.rsplit("=", 1)[1]
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    # Hover first: the grid hit-tests a link cell against the pointer it last saw.
    x, y = box["x"] + 8 + 20, box["y"] + ROW_HEIGHT + ROW_HEIGHT / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "subject-link-hover.png"))
    with context.expect_page(timeout=30_000) as opened:
        page.mouse.click(x, y)
    subject_page = opened.value
    subject_page.wait_for_load_state()
    _settle(subject_page, chart=True)
    subject_page.screenshot(path=str(ARTIFACTS / "subject-from-drilldown.png"), full_page=True)
    assert subject_page.url.endswith(f"/subject?study={SEED}&subject={code}")
    assert subject_page.locator('[data-testid="stException"]').count() == 0
    assert subject_page.locator("h1").first.inner_text().strip() == "Subject"
    assert subject_page.locator("h3").first.inner_text().strip() == code
    # A screen failure: the criterion it did not meet, with the protocol's wording.
    subject_page.get_by_text("Criteria not met (1)").wait_for(timeout=30_000)
    context.close()


def test_subject_page_by_url_for_an_enrolled_subject(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    page.goto(f"{server}/subject?study={SEED}&subject=NCT06466850-01-030")
    _settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / "subject-enrolled.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "1 visit overdue and 0 due" in text and "WEEK 12 (overdue)" in text
    page.close()


def test_unknown_subject_is_a_message(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/subject?study={SEED}&subject=NOT-A-SUBJECT")
    page.get_by_text("No subject NOT-A-SUBJECT in study").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_pilot_subject_with_adverse_events(browser: Any, server: str) -> None:
    if not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    page = browser.new_page(viewport={"width": 1400, "height": 4000})
    page.goto(f"{server}/subject?study=CDISCPILOT01&subject=01-701-1023")
    _settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / "subject-CDISCPILOT01.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h3").first.inner_text().strip() == "01-701-1023"
    # Three AEs, each a lane of the timeline (Vega labels the axis in SVG text).
    page.get_by_text("AE 2 ERYTHEMA").first.wait_for(state="attached", timeout=30_000)
    page.close()


@pytest.mark.parametrize("width", [1024, 1440])
def test_pilot_subject_lab_values_over_time(browser: Any, server: str, width: int) -> None:
    """The pilot's potential Hy's law case: its ALT over time is drawn in the lab section, with
    its AE beneath (Vega draws the AE term as axis text), at a laptop's and a desktop's width."""
    if not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(f"{server}/subject?study=CDISCPILOT01&subject=01-705-1186")
    _settle(page, chart=True)
    section = page.locator(".st-key-subject_labs")
    section.scroll_into_view_if_needed()
    chart = section.locator('[data-testid="stVegaLiteChart"]').locator("canvas, svg").first
    chart.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    section.screenshot(path=str(ARTIFACTS / f"subject-labs-{width}.png"))
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "Outside the normal range: 6 of 6 values (6 high, 0 low)." in section.inner_text()
    # Drawn, and within the section's width (nothing cut at the right edge).
    box, outer = chart.bounding_box(), section.bounding_box()
    assert box is not None and outer is not None
    assert box["width"] > 300 and box["height"] > 200
    assert box["x"] + box["width"] <= outer["x"] + outer["width"] + 1
    page.get_by_text("HYPERBILIRUBINAEMIA").first.wait_for(state="attached", timeout=30_000)
    page.close()
