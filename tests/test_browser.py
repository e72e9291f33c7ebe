"""Real-browser tests: the app served by `streamlit run`, driven in headless Debian Chromium.

Skipped with a reason where Chromium is absent, except in CI (CI=true), where that is a failure.
Screenshots of every page land in tests/artifacts/. Fixtures: tests/browser_support.py.
"""

from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, upload
from tests.browser_support import settle as _settle
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

PAGES = {
    "overview": ("", None),
    "enrollment": ("enrollment", "Enrollment"),
    "screen-failures": ("screen-failures", "Screen failures"),
    "baseline": ("baseline", "Baseline characteristics"),
    "adverse-events": ("adverse-events", "Adverse events"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_opens_by_url(browser: Any, server: str, name: str) -> None:
    path, heading = PAGES[name]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/{path}?study=DEMO-MULTI")
    _settle(page, chart=name != "overview")
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    if heading:
        assert page.locator("h1").first.inner_text().strip() == heading
    assert page.locator('[data-testid="stMetric"]').count() >= 3
    if name != "overview":
        assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
    assert "study=DEMO-MULTI" in page.url
    page.close()


def test_default_overview_shows_the_seed_study(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / "overview-NCT06466850.png"), full_page=True)
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Mesenchymal Stem Cells Derived Exosomes in Osteoarthritis Patients" in text
    assert "Target enrollment: 20" in text
    assert "20 / 20" in text
    assert "study=NCT06466850" in page.url
    page.close()


def test_sidebar_navigation_keeps_the_study(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/?study=DEMO-MULTI")
    _settle(page)
    # The app's own page links (Streamlit's navigation is hidden: its links drop the query).
    nav = '[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]'
    for name in ("enrollment", "screen-failures", "baseline", "adverse-events", "overview"):
        path, heading = PAGES[name]
        page.locator(f'{nav}[href^="{path or "."}?"]').first.click()
        page.wait_for_url(f"**/{path}?study=DEMO-MULTI", timeout=30_000)
        _settle(page, chart=name != "overview")
        assert page.locator('[data-testid="stException"]').count() == 0
        if heading:
            assert page.locator("h1").first.inner_text().strip() == heading
        study_box = page.locator('[data-testid="stSidebar"] input[aria-label="Study"]')
        assert study_box.input_value() == "DEMO-MULTI"
    # A reload keeps the study too.
    page.reload()
    _settle(page)
    assert "study=DEMO-MULTI" in page.url
    assert "Synthetic randomized study" in page.locator("h1").first.inner_text()
    page.close()


def test_upload_an_sdtm_package(browser: Any, server: str, tmp_path: Path) -> None:
    from tests.sdtm_builders import write_package

    folder = write_package(tmp_path / "package")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/import?study=NCT06466850")
    page.wait_for_selector("h1", timeout=30_000)
    upload(page.locator('[data-testid="stFileUploader"]').first, *sorted(folder.iterdir()))
    page.get_by_role("button", name="Import package", exact=True).click()
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    success.wait_for(timeout=30_000)
    assert "study TINY: data cut" in success.inner_text()
    page.wait_for_url("**/import?study=TINY", timeout=30_000)
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "import.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert (
        page.locator('[data-testid="stSidebar"] input[aria-label="Study"]').input_value() == "TINY"
    )
    page.close()


def test_upload_a_registry_record(browser: Any, server: str, tmp_path: Path) -> None:
    record = tmp_path / "NCT09999999.json"
    record.write_text(
        '{"protocolSection": {"identificationModule": {"nctId": "NCT09999999", '
        '"briefTitle": "A registered study"}, "designModule": {"enrollmentInfo": '
        '{"count": 0, "type": "ACTUAL"}}, "eligibilityModule": {"eligibilityCriteria": '
        '"Inclusion Criteria:\\n\\n* Adults\\n\\nExclusion Criteria:\\n\\n* Pregnancy\\n"}}}',
        encoding="utf-8",
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/import?study=NCT06466850")
    page.wait_for_selector("h1", timeout=30_000)
    # The uploader by its label: the page has others (the SDTM package, an EDC export's files).
    upload(
        page.locator('[data-testid="stFileUploader"]').filter(
            has_text="ClinicalTrials.gov API v2 study record"
        ),
        record,
    )
    page.get_by_role("button", name="Import record", exact=True).click()
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    success.wait_for(timeout=30_000)
    assert "study NCT09999999 created from NCT09999999.json" in success.inner_text()
    page.wait_for_url("**/import?study=NCT09999999", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.goto(f"{server}/?study=NCT09999999")
    page.wait_for_selector("h1", timeout=30_000)
    assert "A registered study" in page.locator("h1").first.inner_text()
    page.get_by_text("has no subjects yet").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_upload_a_redcap_export(browser: Any, server: str, tmp_path: Path) -> None:
    # The seed demo's REDCap export, under another study id (the server's seed study stays).
    shipped = Path("dashboard/studies/NCT06466850-redcap")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        (shipped / "mapping.toml")
        .read_text(encoding="utf-8")
        .replace('id = "NCT06466850"', 'id = "REDCAP-SEED"'),
        encoding="utf-8",
    )
    page = browser.new_page(viewport={"width": 1024, "height": 1000})
    page.goto(f"{server}/import?study=NCT06466850")
    page.wait_for_selector("h1", timeout=30_000)
    for label, path in (
        ("Records (.csv)", shipped / "records.csv"),
        ("Data dictionary", shipped / "dictionary.csv"),
        ("Mapping file", mapping),
    ):
        upload(page.locator('[data-testid="stFileUploader"]').filter(has_text=label), path)
    page.get_by_role("button", name="Preview mapping", exact=True).click()
    answer = page.get_by_text("36 subjects in 172 records").or_(
        page.locator('[data-testid="stAlertContentError"]')
    )
    answer.first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0, page.locator(
        '[data-testid="stAlertContentError"]'
    ).first.inner_text()
    assert "dob, initials" in page.locator('[data-testid="stAlertContentWarning"]').inner_text()
    page.screenshot(path=str(ARTIFACTS / "import-redcap-preview.png"))
    page.get_by_role("button", name="Import export", exact=True).click()
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    success.wait_for(timeout=60_000)
    assert "study REDCAP-SEED: data cut 1 loaded (cut-off 2025-11-30)" in success.inner_text()
    page.wait_for_url("**/import?study=REDCAP-SEED", timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


@pytest.mark.parametrize("study", ["NCT06466850", "DEMO-MULTI", "CDISCPILOT01"])
def test_enrollment_page_for_each_study(browser: Any, server: str, study: str) -> None:
    if study == "CDISCPILOT01" and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("reference data folder is absent: no CDISC pilot to show")
    # A tall window: Streamlit scrolls inside its own container, so a full-page screenshot only
    # holds what the window shows.
    page = browser.new_page(viewport={"width": 1400, "height": 4200})
    page.goto(f"{server}/enrollment?study={study}")
    _settle(page, chart=True)
    page.wait_for_selector('[data-testid="stImage"] img', timeout=30_000)  # the flow diagram
    page.screenshot(path=str(ARTIFACTS / f"enrollment-{study}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Accrual and funnel; DEMO-MULTI (ten sites recruiting) adds the multicentre forecast's bands.
    charts = 3 if study == "DEMO-MULTI" else 2
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == charts
    page.get_by_text("Download PNG").wait_for(timeout=30_000)
    page.close()


def test_click_a_criterion_bar_lists_who_failed_it(browser: Any, server: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(f"{server}/screen-failures?study=NCT06466850")
    _settle(page, chart=True)
    # Vega draws the chart as SVG and labels each bar with its tooltip fields: click the BMI one.
    bar = page.locator(
        '[data-testid="stVegaLiteChart"] svg g.mark-rect path[aria-label*="Criterion: INCL02;"]'
    )
    bar.first.click()
    page.get_by_text("5 subjects failed INCL02").wait_for(timeout=30_000)
    # The grid draws on a canvas; its cells are in an accessible table that is attached, not shown.
    page.get_by_text("NCT06466850-01-017").wait_for(state="attached", timeout=30_000)
    _settle(page, chart=True)
    page.screenshot(path=str(ARTIFACTS / "screen-failures-drilldown.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("Download Excel").wait_for(timeout=30_000)  # drawn after the list
    page.close()
