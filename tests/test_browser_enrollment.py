"""Real-browser tests of the Enrollment page: the three studies, and the CDISC pilot as it stood on
2013-06-30 (131 enrolled of a target of 200), whose forecast the note quotes.

Screenshots: tests/artifacts/enrollment-<study>.png and enrollment-pilot-truncated.png.
Fixtures: tests/browser_support.py (browser, server); the truncated pilot gets its own server.
"""

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle, streamlit_server
from tests.conftest import SHARED_DATA, reference_absent
from tests.test_enrollment_figures import (
    PILOT,
    TRUNCATED_CUTOFF,
    TRUNCATED_TARGET,
    _expected_site_forecast,
    _sdtm_raw,
    build_truncated_pilot,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI", "CDISCPILOT01"])
def test_enrollment_page_renders(browser: Any, server: str, study: str) -> None:
    if study == "CDISCPILOT01" and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("the CDISC pilot is absent")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/enrollment?study={study}")
    settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / f"enrollment-{study}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Enrollment"
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 2
    page.close()


@pytest.fixture(scope="module")
def truncated_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not PILOT.is_dir():
        reference_absent(f"reference data folder {PILOT} is absent")
    url, package = build_truncated_pilot(tmp_path_factory.mktemp("pilot-2013-browser"))
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(
        env={**os.environ, "DATABASE_URL": url}, log=ARTIFACTS / "server-pilot-truncated.log"
    ) as base:
        yield base, package


def test_truncated_pilot_forecast_in_the_browser(
    browser: Any, truncated_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, package = truncated_server
    truncated = _sdtm_raw(package)  # the pilot as it stood on 2013-06-30
    assert (truncated.cutoff, truncated.target) == (TRUNCATED_CUTOFF, TRUNCATED_TARGET)
    expected = _expected_site_forecast(truncated)
    assert expected is not None
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/enrollment?study=CDISCPILOT01")
    settle(page, chart=True)
    page.get_by_text("How the forecast did at earlier cuts").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "enrollment-pilot-truncated.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "131 / 200" in text
    assert f"{expected.median:%d %b %Y}" in text
    assert f"80% interval {expected.low:%d %b %Y} to {expected.high:%d %b %Y}" in text
    assert expected.low <= dt.date(2013, 12, 9) <= expected.high
    # The bands chart beside the accrual and funnel charts, and the calibration table.
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 3
    assert "Multicentre model: 16 sites open" in text
    page.close()
