"""Real-browser test of the Site risk page on the multi-site demo at two widths: the headline
metrics, the flag table and the funnel plot drawn, no exception.

Screenshots: tests/artifacts/site-risk-DEMO-MULTI-<width>.png.
Fixtures: tests/browser_support.py (browser, server).
"""

from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1024, 1440])
def test_site_risk_page_renders(browser: Any, server: str, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.goto(f"{server}/site-risk?study=DEMO-MULTI")
    settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / f"site-risk-DEMO-MULTI-{width}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Site risk"
    labels = page.locator('[data-testid="stMetricLabel"]').all_inner_texts()
    assert "Red-flag sites" in " ".join(labels)
    assert page.get_by_text("Flags by site and KRI").count() >= 1
    # The flag table (a data grid) and the funnel plot (a Vega canvas or SVG with marks).
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    assert charts.count() >= 1
    assert charts.first.locator("canvas, svg").count() >= 1
    assert charts.first.bounding_box()["height"] > 100
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Traceback" not in text
    page.close()
