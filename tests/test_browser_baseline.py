"""The Baseline page in a real browser for the three studies (screenshots in tests/artifacts/)."""

from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, settle
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI", "CDISCPILOT01"])
def test_baseline_page_for_each_study(browser: Any, server: str, study: str) -> None:
    if study == "CDISCPILOT01" and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        pytest.skip("reference data folder is absent: no CDISC pilot to show")
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    page.goto(f"{server}/baseline?study={study}")
    settle(page, chart=True)
    page.get_by_text("Overall (n=").first.wait_for(state="attached", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / f"baseline-{study}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator("h1").first.inner_text().strip() == "Baseline characteristics"
    page.close()
