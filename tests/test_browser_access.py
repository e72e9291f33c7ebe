"""Sign-in in a real browser: the app served by `streamlit run` with an ``[auth]`` section that
points at an OpenID Connect provider the test runs on loopback (tests/oidc_provider.py), so the
whole flow runs for real: Streamlit's /auth/login, the provider's authorize and token endpoints, an
RS256 id_token checked against the provider's JWKS, the signed identity cookie.

Signed in as the investigator of site 101 of DEMO-MULTI, the browser opens every page and every
download and finds no subject of another site; as the sponsor it sees them all; not signed in it
sees only the sign-in page. Screenshots land in tests/artifacts/.
"""

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session

from dashboard.db import make_engine
from dashboard.markdown import JOINER
from dashboard.queries.audit import audit_events
from dashboard.results.audit import AuditFilter
from tests.access_support import (
    INVESTIGATOR,
    INVESTIGATOR_SITE,
    MULTI,
    SPONSOR,
    STRANGER,
    add_demo_users,
    readable,
    sites_named,
)
from tests.browser_support import ARTIFACTS, PROJECT_ROOT_DIR, free_port, streamlit_server
from tests.browser_support import settle as _settle
from tests.databases import copy_database
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1400, "height": 2400}
DATA_PAGES = ["", "enrollment", "screen-failures", "baseline", "adverse-events", "subject"]
ALL_SITES = {f"{n}" for n in range(101, 111)}


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcProvider]:
    provider = OidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def signed_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("browser-auth"), "browser-auth")
    add_demo_users(url)
    return url


@pytest.fixture(scope="module")
def auth_server(
    oidc: OidcProvider, signed_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app with sign-in configured: a copy of .streamlit/ with a secrets.toml whose [auth]
    names the loopback provider, served from that folder. The browser uses ``localhost``: the
    redirect URI's host, so the cookies of the flow are the app's."""
    folder = tmp_path_factory.mktemp("auth-app")
    shutil.copytree(PROJECT_ROOT_DIR / ".streamlit", folder / ".streamlit")
    (folder / ".streamlit" / "secrets.toml").unlink(missing_ok=True)
    port = free_port()
    (folder / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{oidc.metadata_url}"\n',
        encoding="utf-8",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    # No AUTHLIB_INSECURE_TRANSPORT: Authlib accepts plain http to loopback addresses (RFC 8252).
    env = {**os.environ, "DATABASE_URL": signed_db_url}
    with streamlit_server(env=env, log=ARTIFACTS / "server-auth.log", cwd=folder, port=port):
        yield f"http://localhost:{port}"


def _sign_in(browser: Any, oidc: OidcProvider, base: str, email: str) -> Any:
    """A new browser context signed in as ``email`` through the loopback provider."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    oidc.email = email  # who the provider signs in when the browser reaches it
    page.goto(f"{base}/?study={MULTI}")
    page.get_by_role("button", name="Sign in").click(timeout=30_000)
    # Back from the provider, the app draws something other than the sign-in page.
    page.wait_for_function(
        "() => { const h = document.querySelector('h1');"
        " return h !== null && h.innerText.trim() !== 'Study monitor'; }",
        timeout=30_000,
    )
    return page


def _text(page: Any) -> str:
    """What the page holds: its text, and the HTML (data grids keep their cells in an accessible
    table that is attached but not shown)."""
    return str(page.locator('[data-testid="stApp"]').inner_text()) + str(page.content())


def _download(page: Any, button: Any) -> Any:
    """The file a download button gives. A rerun that ends after the click (a busy machine) can
    replace the button's file, and that click then gives nothing: one more click, on the button
    as drawn now, does."""
    for attempt in (1, 2):
        try:
            with page.expect_download(timeout=30_000) as started:
                button.click()
            return started.value
        except Exception:  # playwright's TimeoutError
            if attempt == 2:
                raise
            page.wait_for_timeout(1_000)
    raise AssertionError("unreachable")


def _downloads(page: Any, name: str) -> dict[str, Any]:
    """Click every download button on the page; the files as ``readable`` makes them."""
    files: dict[str, Any] = {}
    # Visible ones only: a button with help text also holds a hidden copy for its tooltip.
    buttons = page.locator('[data-testid="stDownloadButton"] button:visible')
    for index in range(buttons.count()):
        download = _download(page, buttons.nth(index))
        path = Path(download.path())
        file_name = download.suggested_filename
        files[file_name] = readable(file_name, path.read_bytes())
        shutil.copy(path, ARTIFACTS / f"auth-{name}-{file_name}")
    return files


def _first_code(db_url: str, site_id: str) -> str:
    engine = make_engine(db_url)
    codes = pd.read_sql_table("subject", engine)["usubjid"]
    engine.dispose()
    return str(sorted(c for c in codes if c.startswith(f"{MULTI}-{site_id}-"))[0])


def _open(page: Any, base: str, path: str, *, chart: bool = True) -> None:
    page.goto(f"{base}/{path}")
    try:
        _settle(page, chart=chart)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "auth-failed.png"), full_page=True)
        raise
    assert page.locator('[data-testid="stException"]').count() == 0


def test_not_signed_in_sees_only_the_sign_in_page(browser: Any, auth_server: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    for path in [*DATA_PAGES, "import", "audit"]:
        page.goto(f"{auth_server}/{path}?study={MULTI}")
        page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        assert page.locator("h1").first.inner_text().strip() == "Study monitor"
        assert page.locator('[data-testid="stPageLink"]').count() == 0
        assert page.locator('[data-testid="stMetric"]').count() == 0
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
        assert sites_named(_text(page)) == set()
    page.screenshot(path=str(ARTIFACTS / "auth-sign-in.png"), full_page=True)
    context.close()


def test_an_email_not_in_the_user_table_sees_no_access(
    browser: Any, oidc: OidcProvider, auth_server: str
) -> None:
    page = _sign_in(browser, oidc, auth_server, STRANGER)
    page.get_by_text("No access").first.wait_for(timeout=30_000)
    # The heading can be drawn before the text under it: wait for the text that names the e-mail.
    page.get_by_text("but this account has no access").first.wait_for(timeout=30_000)
    # Shown as text: a word joiner (invisible) after the '@' keeps it from becoming a mailto link.
    assert STRANGER in page.locator('[data-testid="stMain"]').inner_text().replace(JOINER, "")
    assert page.locator('[data-testid="stPageLink"]').count() == 0
    assert page.locator('[data-testid="stMetric"]').count() == 0
    page.context.close()


def test_an_investigator_sees_only_their_site_on_every_page_and_download(
    browser: Any, oidc: OidcProvider, auth_server: str, signed_db_url: str
) -> None:
    page = _sign_in(browser, oidc, auth_server, INVESTIGATOR)
    _settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text().replace(JOINER, "")
    assert "Signed in as investigator.101@site.example (investigator)" in sidebar
    nav = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
    assert nav.count() >= 5  # the data pages
    links = {str(nav.nth(i).evaluate("a => a.href")).split("?")[0] for i in range(nav.count())}
    assert not any(link.endswith(("/import", "/audit")) for link in links)
    assert oidc.issued[-1]["email"] == INVESTIGATOR and oidc.issued[-1]["nonce"]

    seen: dict[str, set[str]] = {}
    files: dict[str, Any] = {}
    _open(page, auth_server, f"?study={MULTI}", chart=False)
    # The pack's buttons are drawn last (after "Where to look"): waited for, as each page's own.
    page.get_by_text("Monitoring pack (PDF)").first.wait_for(timeout=60_000)
    assert "Study-wide, all 10 sites (aggregate only)" in _text(page)
    page.screenshot(path=str(ARTIFACTS / "auth-investigator-overview.png"), full_page=True)
    seen["overview"] = sites_named(_text(page))
    files |= _downloads(page, "investigator")  # the monitoring pack

    _open(page, auth_server, f"enrollment?study={MULTI}")
    page.get_by_text("Download PNG").wait_for(timeout=30_000)
    seen["enrollment"] = sites_named(_text(page))
    files |= _downloads(page, "investigator")

    _open(page, auth_server, f"screen-failures?study={MULTI}")
    bar = page.locator(
        '[data-testid="stVegaLiteChart"] svg g.mark-rect path[aria-label*="Criterion: INCL03;"]'
    )
    bar.first.click()
    page.get_by_text("failed INCL03").wait_for(timeout=30_000)
    page.get_by_text("Download Excel").wait_for(timeout=30_000)
    _settle(page, chart=True)
    seen["screen-failures"] = sites_named(_text(page))
    files |= _downloads(page, "investigator")

    _open(page, auth_server, f"baseline?study={MULTI}")
    seen["baseline"] = sites_named(_text(page))
    files |= _downloads(page, "investigator")

    _open(page, auth_server, f"adverse-events?study={MULTI}")
    page.get_by_text("Download Excel").first.wait_for(timeout=30_000)
    seen["adverse-events"] = sites_named(_text(page))
    files |= _downloads(page, "investigator")

    own, other = _first_code(signed_db_url, INVESTIGATOR_SITE), _first_code(signed_db_url, "102")
    _open(page, auth_server, f"subject?study={MULTI}&subject={own}")
    seen["subject"] = sites_named(_text(page))
    page.goto(f"{auth_server}/subject?study={MULTI}&subject={other}")
    page.get_by_text(f"No subject {other}").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "auth-investigator-other-subject.png"), full_page=True)

    # No page and no file names a subject of another site; the lists name theirs.
    assert all(sites <= {INVESTIGATOR_SITE} for sites in seen.values()), seen
    assert seen["subject"] == {INVESTIGATOR_SITE}
    assert {
        f.removeprefix(f"{MULTI}-")
        for f in files
    } >= {"visit-schedule.csv", "visit-schedule.xlsx", "flow.svg", "flow.png", "table1.csv",
          "INCL03-screen-failures.csv", "serious-adverse-events.csv"}  # fmt: skip
    assert {f.rsplit(".", 1)[-1] for f in files} >= {"pdf", "xlsx", "csv", "svg", "png"}
    for name, data in files.items():
        assert sites_named(data) <= {INVESTIGATOR_SITE}, name
    assert sites_named(files[f"{MULTI}-INCL03-screen-failures.csv"]) == {INVESTIGATOR_SITE}
    assert sites_named(files[f"{MULTI}-visit-schedule.csv"]) == {INVESTIGATOR_SITE}

    # The sign-in and every download are in the audit trail, with the scope in force.
    engine = make_engine(signed_db_url)
    with Session(engine) as session:
        exports, _ = audit_events(
            session,
            wanted=AuditFilter(emails=(INVESTIGATOR.lower(),), actions=("export",)),
            limit=100,
        )
        sign_ins, _ = audit_events(
            session,
            wanted=AuditFilter(emails=(INVESTIGATOR.lower(),), actions=("sign-in",)),
            limit=100,
        )
    engine.dispose()
    assert set(exports["detail"].map(lambda d: d["file"])) == set(files)
    assert all(s == [INVESTIGATOR_SITE] for s in exports["sites"])
    assert len(sign_ins) >= 1

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
    page.context.close()


def test_a_sponsor_sees_every_site(browser: Any, oidc: OidcProvider, auth_server: str) -> None:
    page = _sign_in(browser, oidc, auth_server, SPONSOR)
    _open(page, auth_server, f"enrollment?study={MULTI}")
    page.get_by_text("Only subjects with a visit due or overdue").click()
    _settle(page, chart=True)
    page.get_by_text("Download PNG").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "auth-sponsor-enrollment.png"), full_page=True)
    files = _downloads(page, "sponsor")
    assert sites_named(files[f"{MULTI}-visit-schedule.csv"]) == ALL_SITES
    nav = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"]')
    assert nav.count() >= 5  # the data pages
    links = [str(nav.nth(i).evaluate("a => a.href")).split("?")[0] for i in range(nav.count())]
    assert not any(link.endswith(("/import", "/audit")) for link in links)
    page.context.close()
