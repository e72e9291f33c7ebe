"""The Baseline page in a real browser for the three studies (screenshots in tests/artifacts/):
the page renders, and the distribution charts (continuous, then categorical) fit the page's width,
on a wide and on a narrow window."""

import re
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

CHART = '[data-testid="stVegaLiteChart"]'


def assert_charts_fit(page: Any, what: str) -> None:
    """Every chart's drawing lies within the page's content width (Table 1's grid spans it)."""
    content = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    charts = page.locator(CHART)
    assert charts.count() >= 1, what
    for index in range(charts.count()):
        drawing = charts.nth(index).locator("canvas, svg").first.bounding_box()
        assert drawing["x"] >= content["x"] - 1, (what, index, drawing, content)
        right, limit = drawing["x"] + drawing["width"], content["x"] + content["width"]
        assert right <= limit + 1, (what, index, right, limit)


@pytest.mark.parametrize(
    ("study", "width"),
    [("NCT06466850", 1400), ("DEMO-MULTI", 1400), ("CDISCPILOT01", 1400), ("CDISCPILOT01", 900)],
)
def test_baseline_page_for_each_study(browser: Any, server: str, study: str, width: int) -> None:
    if study == "CDISCPILOT01" and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    name = f"baseline-{study}" + ("" if width == 1400 else f"-{width}")
    page = browser.new_page(viewport={"width": width, "height": 3000})
    page.goto(f"{server}/baseline?study={study}")
    settle(page, chart=True)
    # The grid's headers (on a narrow window the overall column is scrolled out of the DOM).
    page.get_by_text(re.compile(r"\(n=\d+\)")).first.wait_for(state="attached", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Baseline characteristics"
    # Age first: the box plot and the histogram, each as wide as the page at most.
    assert page.locator(CHART).count() == 2
    assert_charts_fit(page, "age")
    # The histogram's legend and axes leave its bars room: the tallest bar spans the plot.
    histogram = page.locator(CHART).nth(1)
    drawing = histogram.locator("svg").first.bounding_box()
    bars = histogram.locator("svg g.mark-rect").first.bounding_box()
    assert bars["height"] >= 0.45 * drawing["height"], (bars, drawing)
    # Sex: the stacked bars.
    picker = page.locator('[data-testid="stSelectbox"]').filter(
        has=page.get_by_text(re.compile(r"^Characteristic$"))
    )
    picker.locator("input").click()
    page.keyboard.type("Sex")
    page.keyboard.press("Enter")
    page.locator(f"{CHART} svg g.mark-rect path").first.wait_for(timeout=30_000)
    # The run has ended when the age histogram (an element of the previous run) is gone.
    page.wait_for_function(
        f"() => document.querySelectorAll('{CHART}').length === 1", timeout=30_000
    )
    settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-sex.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(CHART).count() == 1
    assert_charts_fit(page, "sex")
    page.close()
