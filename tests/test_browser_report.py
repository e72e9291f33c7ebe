"""The Overview page's monitoring-pack buttons in a real browser: both files are built on click and
downloaded, and they hold the study's figures (fixtures: tests/browser_support.py)."""

import io
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader
from sqlmodel import Session

from dashboard.queries.studies import data_cuts
from dashboard.report.workbook import SAE_SHEET
from dashboard.views.overview import study_summary
from tests.browser_support import ARTIFACTS, settle

pytestmark = pytest.mark.browser
MULTI = "DEMO-MULTI"


def test_overview_pack_buttons_download_both_files(
    browser: Any, server: str, session: Session
) -> None:
    figures = study_summary(session, study_id=MULTI)
    latest = data_cuts(session, study_id=MULTI)[-1]
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{server}/?study={MULTI}")
    settle(page)
    files: dict[str, bytes] = {}
    for label in ("Monitoring pack (PDF)", "Monitoring pack (Excel)"):
        with page.expect_download(timeout=120_000) as started:
            page.get_by_role("button", name=label).click()
        download = started.value
        path = Path(download.path())
        files[download.suggested_filename] = path.read_bytes()
        shutil.copy(path, ARTIFACTS / f"overview-{download.suggested_filename}")
    stem = f"{MULTI}-pack-{latest.id}"
    assert sorted(files) == [f"{stem}.pdf", f"{stem}.xlsx"]
    pdf = PdfReader(io.BytesIO(files[f"{stem}.pdf"]))
    assert pdf.pages[0].extract_text().startswith("Monitoring pack")
    book = openpyxl.load_workbook(io.BytesIO(files[f"{stem}.xlsx"]))
    assert book[SAE_SHEET].max_row - 1 == figures["sae_events"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Screened"] == figures["screened"]
    assert page.locator('[data-testid="stException"]').count() == 0
    context.close()
