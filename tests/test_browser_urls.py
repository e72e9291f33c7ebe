"""Links that carry the view: every sidebar link, opened in a new browser context (a new tab, or a
link pasted into a colleague's browser), shows the same study, sites and screening period, and so
does the page's own URL copied from the address bar. The header names the latest cut by the
study's own count ("data cut 2 of 2"), counted here from the database.

Screenshots: tests/artifacts/urls-<study>-<width>.png (the sidebar's page links at 1024 and 1440
px). Fixtures: tests/browser_support.py (browser, server).
"""

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from sqlalchemy import text

from dashboard.db import make_engine
from tests.browser_support import ARTIFACTS
from tests.conftest import SHARED_DATA, reference_absent

pytestmark = pytest.mark.browser

SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"
# Two sites where the study has several (the seed has one site: no site filter to carry).
SITES = {SEED: (), MULTI: ("102", "105"), PILOT: ("701", "705")}
# The sidebar's pages for an admin (local mode), by link title: the path each must open.
PATHS = {
    "Overview": "/",
    "Enrollment": "/enrollment",
    "Screen failures": "/screen-failures",
    "Baseline": "/baseline",
    "Adverse events": "/adverse-events",
    "Labs": "/labs",
    "Site risk": "/site-risk",
    "Queries": "/queries",
    "Subject": "/subject",
    "Import": "/import",
    "Audit trail": "/audit",
}
PERIOD_PAGES = ("/enrollment", "/screen-failures")  # the pages that draw "Screened between"
NAV = '[data-testid="stSidebar"] a[data-testid="stPageLink-NavLink"]'


def _need(study: str) -> None:
    if study == PILOT and not (SHARED_DATA / "sdtm" / "cdiscpilot01").is_dir():
        reference_absent("the CDISC pilot is absent")


def _source(request: pytest.FixtureRequest, study: str) -> str:
    """A database holding ``study`` as the server's copy holds it: the demo database (the
    server's is a copy of it), or the pilot imported on its own (the server imports the same
    package beside the demos)."""
    return str(request.getfixturevalue("pilot_db_url" if study == PILOT else "demo_db_url"))


def _period(db_url: str, study: str, sites: tuple[str, ...]) -> tuple[dt.date, dt.date]:
    """A period strictly inside the study's screening dates at ``sites`` (SQL on the subject
    rows, not the app's query): a month in from each end."""
    where = "s.study_id = :study"
    params: dict[str, Any] = {"study": study}
    if sites:
        where += " AND st.site_id IN (" + ",".join(f":s{i}" for i in range(len(sites))) + ")"
        params |= {f"s{i}": s for i, s in enumerate(sites)}
    engine = make_engine(db_url)
    with engine.connect() as connection:
        first, last = connection.execute(
            text(
                "SELECT min(s.screening_date), max(s.screening_date) FROM subject s "
                f"JOIN site st ON st.id = s.site_pk WHERE {where}"
            ),
            params,
        ).one()
    engine.dispose()
    first, last = (dt.date.fromisoformat(str(d)[:10]) for d in (first, last))
    assert (last - first).days > 90, "the study's screening dates span too little to narrow"
    return first + dt.timedelta(days=30), last - dt.timedelta(days=30)


def _shown_id(db_url: str, study: str) -> str:
    """How the header names the study: its registry id, else its study id."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        registry = connection.execute(
            text("SELECT registry_id FROM study WHERE study_id = :study"), {"study": study}
        ).scalar_one()
    engine.dispose()
    return str(registry or study)


def _cut_count(db_url: str, study: str) -> int:
    """How many data cuts the study has (SQL on the cut table)."""
    engine = make_engine(db_url)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM datacut WHERE study_id = :study"), {"study": study}
        ).scalar_one()
    engine.dispose()
    return int(found)


def _ready(page: Any) -> None:
    """The run has drawn the sidebar and the page's title, and has finished."""
    page.wait_for_selector('[data-testid="stSidebar"] input[aria-label="Study"]', timeout=60_000)
    page.wait_for_selector("h1", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid^=\"stStatusWidgetRunning\"]').length === 0",
        timeout=90_000,
    )
    page.wait_for_timeout(300)


def _shown_sites(page: Any) -> tuple[str, ...]:
    """The site codes the "Sites" picker holds (each chip has a "Remove <code> <name>" button)."""
    remove = page.locator(
        '[data-testid="stSidebar"] [data-testid="stMultiSelect"] [aria-label^="Remove "]'
    )
    labels = [str(remove.nth(i).get_attribute("aria-label")) for i in range(remove.count())]
    return tuple(dict.fromkeys(label.split()[1] for label in labels))


def _shown_period(page: Any) -> tuple[dt.date, ...] | None:
    """The "Screened between" picker's dates (its start and end fields hold them as ISO text)."""
    picker = page.locator('[data-testid="stSidebar"] [data-testid="stDateInput"]')
    if picker.count() == 0:
        return None
    boxes = picker.first.locator("input")
    values = " ".join(boxes.nth(i).input_value() for i in range(boxes.count()))
    return tuple(dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", values))


def _header(page: Any) -> str:
    """The page header's freshness line (the first caption of the page)."""
    caption = page.locator('[data-testid="stMain"] [data-testid="stCaptionContainer"]').first
    return str(caption.inner_text())


def _assert_view(
    page: Any,
    study: str,
    sites: tuple[str, ...],
    period: tuple[dt.date, dt.date],
    path: str,
    shown_id: str,
) -> None:
    """The page shows ``study``, ``sites`` and ``period`` in its sidebar, header and URL."""
    assert page.locator('[data-testid="stException"]').count() == 0
    url = urlsplit(page.url)
    assert url.path == path, page.url
    query = parse_qs(url.query)
    assert query["study"] == [study]
    assert query.get("sites", [""])[0].split(",") == list(sites or [""])
    assert (query["from"], query["to"]) == ([period[0].isoformat()], [period[1].isoformat()])
    study_box = page.locator('[data-testid="stSidebar"] input[aria-label="Study"]')
    assert study_box.input_value() == study
    assert _shown_sites(page) == sites
    if path in PERIOD_PAGES:
        # The page draws its period picker after its title, and a busy machine can show the
        # title before the running indicator: wait for the picker itself.
        page.wait_for_selector(
            '[data-testid="stSidebar"] [data-testid="stDateInput"]', timeout=60_000
        )
        assert _shown_period(page) == period
    if path not in ("/import", "/audit"):  # the data pages' header names the study and sites
        header = _header(page)
        assert header.startswith(f"{shown_id} · data cut ")
        if sites:
            assert f"sites: {', '.join(sites)}" in header
        else:
            assert "sites:" not in header


@pytest.mark.parametrize("study", [SEED, MULTI, PILOT])
def test_every_sidebar_link_and_the_copied_url_reproduce_the_view(
    browser: Any, server: str, request: pytest.FixtureRequest, study: str
) -> None:
    _need(study)
    sites = SITES[study]
    period = _period(_source(request, study), study, sites)
    shown_id = _shown_id(_source(request, study), study)
    query = f"study={study}" + (f"&sites={','.join(sites)}" if sites else "")
    query += f"&from={period[0].isoformat()}&to={period[1].isoformat()}"
    sender = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = sender.new_page()
    page.goto(f"{server}/screen-failures?{query}")
    _ready(page)
    _assert_view(page, study, sites, period, "/screen-failures", shown_id)
    assert not page.locator('[data-testid="stAlert"]').filter(has_text="in the link").count()

    links = page.locator(NAV)
    titles = [
        links.nth(i).locator('[data-testid="stMarkdownContainer"]').inner_text().strip()
        for i in range(links.count())
    ]
    assert titles == list(PATHS)  # the same list, in the same order, as the navigation's
    hrefs = {
        t: urljoin(page.url, str(links.nth(i).get_attribute("href"))) for i, t in enumerate(titles)
    }
    # The current page, and it alone, is shaded (as Streamlit's navigation marks it).
    shaded = [
        t
        for i, t in enumerate(titles)
        if links.nth(i).evaluate("a => getComputedStyle(a).backgroundColor") != "rgba(0, 0, 0, 0)"
    ]
    assert shaded == ["Screen failures"]
    for title, href in hrefs.items():
        receiver = browser.new_context(viewport={"width": 1400, "height": 1000})
        opened = receiver.new_page()
        opened.goto(href)
        _ready(opened)
        _assert_view(opened, study, sites, period, PATHS[title], shown_id)
        receiver.close()

    # The page's own URL, copied from the address bar after moving through a page without the
    # period picker (Overview) and back: the period survived the page change.
    page.locator(f'{NAV}[href^=".?"]').click()
    page.wait_for_url(re.compile(r"/\?"), timeout=30_000)
    _ready(page)
    page.locator(f'{NAV}[href^="enrollment?"]').click()
    page.wait_for_url(re.compile(r"/enrollment\?"), timeout=30_000)
    _ready(page)
    _assert_view(page, study, sites, period, "/enrollment", shown_id)
    receiver = browser.new_context(viewport={"width": 1400, "height": 1000})
    copied = receiver.new_page()
    copied.goto(page.url)
    _ready(copied)
    _assert_view(copied, study, sites, period, "/enrollment", shown_id)
    receiver.close()
    sender.close()


@pytest.mark.parametrize("study", [MULTI, PILOT, SEED])
def test_the_header_counts_the_studys_own_cuts(
    browser: Any, server: str, request: pytest.FixtureRequest, study: str
) -> None:
    """ "data cut 2 of 2" for DEMO-MULTI and "1 of 1" for the pilot, whatever ids the cuts have
    in a database that holds other studies' cuts too; the "Compare with" picker likewise."""
    _need(study)
    cuts = _cut_count(_source(request, study), study)
    for width in (1024, 1440):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{server}/?study={study}")
        _ready(page)
        page.screenshot(path=str(ARTIFACTS / f"urls-{study}-{width}.png"))
        assert f"data cut {cuts} of {cuts}," in _header(page)
        compare = page.locator('[data-testid="stSidebar"] input[aria-label="Compare with"]')
        if cuts > 1:
            assert f"compared with cut {cuts - 1} of {cuts}," in _header(page)
            assert compare.input_value().startswith(f"Cut {cuts - 1} of {cuts} · cut-off")
        else:
            assert compare.count() == 0 and "compared with" not in _header(page)
        context.close()
