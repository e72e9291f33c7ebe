"""Real-browser checks of the words a reader meets (issue #18): the SAE listing headed in words,
chosen chips in the charts' blue (not an error red), "unknown" with its reason where the CDISC pilot
has no IE domain, the sites table's rates in whole percent. Fixtures: tests/browser_support.py."""

import re
from typing import Any

import pytest

from dashboard.charts.colours import PRIMARY_BLUE
from tests.browser_support import settle
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.browser

SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"


def _rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


@pytest.mark.parametrize("width", [1024, 1440])
def test_words_on_the_seed_pages(browser: Any, server: str, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 2400})
    page = context.new_page()

    # The SAE listing: headers in words, the SDTM names only behind the help icons.
    page.goto(f"{server}/adverse-events?study={SEED}")
    settle(page, chart=True)
    listing = page.locator('[data-testid="stDataFrame"]').filter(has_text="Appendicitis")
    headers = [h.strip() for h in listing.locator('[role="columnheader"]').all_text_contents()]
    # (The grid draws the columns in view only: at 1024 px, beside the review columns, the body
    # system and the dates are scrolled off.)
    shown = {"Subject", "Reviewed", "Review", "Site", "Preferred term"}
    assert shown | ({"Body system"} if width > 1024 else set()) <= set(headers), headers
    assert not {"USUBJID", "SITEID", "AEBODSYS", "AESTDTC"} & set(headers), headers
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "(s)" not in text

    # The chosen characteristics' chips in the charts' blue.
    page.goto(f"{server}/baseline?study={SEED}")
    settle(page, chart=True)
    chip = page.locator('[data-testid="stMultiSelect"] [data-tag]').first
    colour = chip.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == _rgb(PRIMARY_BLUE), colour
    context.close()


def test_rates_in_whole_percent(browser: Any, server: str) -> None:
    """DEMO-MULTI's sites table: every SF rate drawn as a whole percent (the grid's canvas is
    read back through the rate the page hands it: percentage points for a "%.0f%%" column)."""
    context = browser.new_context(viewport={"width": 1440, "height": 2400})
    page = context.new_page()
    page.goto(f"{server}/enrollment?study={MULTI}")
    settle(page, chart=True)
    grid = page.locator('[data-testid="stDataFrame"]').filter(has_text="SF rate")
    headers = [h.strip() for h in grid.locator('[role="columnheader"]').all_text_contents()]
    cells = grid.locator('[role="gridcell"]').all_text_contents()
    width = len(headers)
    rates = [cells[i] for i in range(headers.index("SF rate"), len(cells), width)]
    screened = [cells[i] for i in range(headers.index("Screened"), len(cells), width)]
    failed = [cells[i] for i in range(headers.index("Screen failures"), len(cells), width)]
    assert rates and len(rates) == len(screened)
    for rate, n, k in zip(rates, screened, failed, strict=True):
        # The value behind the cell is the rate in percentage points, formatted whole on screen.
        assert float(rate) == pytest.approx(100 * int(k) / int(n)), (rate, n, k)
    context.close()


def test_unknown_where_the_pilot_has_no_ie(browser: Any, server: str) -> None:
    if not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        pytest.skip("the CDISC pilot is not in the shared data")
    context = browser.new_context(viewport={"width": 1024, "height": 2000})
    page = context.new_page()
    page.goto(f"{server}/screen-failures?study={PILOT}")
    settle(page)
    metrics = {
        re.sub(r"\s+", " ", m.locator('[data-testid="stMetricLabel"]').inner_text()).strip(): m
        for m in page.locator('[data-testid="stMetric"]').all()
    }
    for label in ("Failed more than one criterion", "Enrolled despite a rule"):
        metric = metrics[label]
        assert metric.locator('[data-testid="stMetricValue"]').inner_text().strip() == "unknown"
        assert metric.locator('[data-testid="stTooltipIcon"]').count() == 1  # the reason
    context.close()
