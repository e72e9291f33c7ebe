"""The Labs page in a real browser on the CDISC pilot (screenshots in tests/artifacts/), at 1024 and
1440 px: the shift table, the abnormal-values table and the charts are drawn within the page's
width, nothing raises, and a click on a shift-table count lists its subjects, each a link to the
Subject page. The figures themselves are checked against pandas in tests/test_labs.py."""

from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

CHART = '[data-testid="stVegaLiteChart"]'
GRID = '[data-testid="stDataFrame"]'
ROW = 35  # a grid row's height in pixels (the header's too)


@pytest.mark.parametrize("width", [1024, 1440])
def test_labs_page_on_the_pilot(browser: Any, server: str, width: int) -> None:
    if not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    page = browser.new_page(viewport={"width": width, "height": 4000})
    page.goto(f"{server}/labs?study=CDISCPILOT01")
    settle(page, chart=True)
    page.locator(CHART).nth(1).locator("canvas, svg").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / f"labs-CDISCPILOT01-{width}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Labs"
    # The eDISH plot and the box plots, each within the main column's width.
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    assert page.locator(CHART).count() == 2
    for index in range(2):
        drawing = page.locator(CHART).nth(index).locator("canvas, svg").first.bounding_box()
        assert drawing["height"] > 150
        assert drawing["x"] >= main["x"] - 1
        assert drawing["x"] + drawing["width"] <= main["x"] + main["width"] + 1
    # The potential Hy's law case is listed (its grid's cells are in the page's accessible
    # table: the grid draws on a canvas).
    case = page.locator('[role="gridcell"]', has_text="01-705-1186").first
    case.wait_for(state="attached", timeout=30_000)
    # A click on a count of the shift table lists its subjects: the grid draws on a canvas, so
    # the click goes to the cell's position: the last column (Total) of the second row (Placebo,
    # baseline NORMAL: 80 subjects on ALT, tests/test_labs.py has the cells against pandas).
    grid = page.locator(GRID).first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 40, box["y"] + ROW + ROW + ROW // 2)
    page.get_by_text("Subjects in the cell").wait_for(timeout=30_000)
    settle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("80 subjects").count() >= 1
    page.close()
