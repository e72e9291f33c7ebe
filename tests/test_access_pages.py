"""Sign-in, roles and site scope in the app (AppTest, signed in through ``at.user`` with an
``[auth]`` section in ``at.secrets``).

The scope is asserted in the data the pages load, not only in what they draw: every cached loader
is wrapped while a page runs, and each call's scope and returned data are checked; every download's
data is built and checked, and its audit event read back.
"""

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.elements.widgets.button import ButtonMixin
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.db import make_engine
from dashboard.markdown import shown as shown_text
from dashboard.queries.audit import audit_events
from dashboard.results.audit import AuditFilter
from dashboard.results.enrollment import PopulationCounts
from dashboard.ui import ae_drilldown, auth, loaders, views
from dashboard.ui.ae_picks import EventPick
from dashboard.ui.shell import CONTEXT_KEY, SITES_KEY, PageContext
from dashboard.views.context import ViewContext
from tests.access_support import (
    ADMIN,
    INVESTIGATOR,
    INVESTIGATOR_SITE,
    MONITOR,
    MONITOR_SITES,
    MULTI,
    SPONSOR,
    STRANGER,
    add_demo_users,
    readable,
    sites_named,
)
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PAGES = {
    "overview": None,
    "enrollment": "../pages/enrollment.py",
    "screen-failures": "../pages/screen_failures.py",
    "baseline": "../pages/baseline.py",
    "adverse-events": "../pages/adverse_events.py",
    "labs": "../pages/labs.py",
    "site-risk": "../pages/site_risk.py",
    "queries": "../pages/queries.py",
    "subject": "../pages/subject.py",
}
ADMIN_PAGES = {"import": "../pages/data_import.py", "audit": "../pages/audit.py"}
# Any values will do: AppTest never talks to the provider, it only needs [auth] to be there.
AUTH_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
        "client_id": "study-monitor",
        "client_secret": "not-a-secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
}
# Loaders that take no scope: study-level facts (identity, cuts, site list for the sidebar) and
# a PNG of a diagram. Every view and drilldown (``dashboard.ui.views``) is built for a
# ViewContext, whose scope is the one recorded.
UNSCOPED = {
    "load_study_ids",
    "load_cuts",
    "load_study",
    "load_sites",
    "png_of",
}


@pytest.fixture(scope="module")
def users_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database with the demo users (a copy: sign-ins and downloads write to it)."""
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("access-pages"), "access-pages")
    add_demo_users(url)
    return url


@pytest.fixture
def engine(users_db_url: str) -> Iterator[Engine]:
    engine = make_engine(users_db_url)
    yield engine
    engine.dispose()


@dataclasses.dataclass
class Call:
    loader: str
    scoped: bool
    scope: Any
    result: Any


class Spy:
    """Every loader call of a run (its scope and what it returned), the pages each navigation
    listed, and every download's data callable."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.navigation: list[list[str]] = []
        self.downloads: list[tuple[str, Any]] = []  # (file name, data or its callable)

    def scopes(self) -> set[Any]:
        return {c.scope for c in self.calls if c.scoped}

    def unscoped(self) -> set[str]:
        return {c.loader for c in self.calls if not c.scoped}

    def sites(self) -> set[str]:
        return sites_named([c.result for c in self.calls if c.loader not in UNSCOPED])


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    recorded = Spy()
    for name, function in list(vars(loaders).items()):
        if (name.startswith("load_") or name == "png_of") and callable(function):
            monkeypatch.setattr(loaders, name, _wrap(recorded, name, function))
    for name, function in list(vars(views).items()):
        if getattr(function, "__module__", None) == views.__name__ and callable(function):
            monkeypatch.setattr(views, name, _wrap(recorded, name, function))

    real_navigation = st.navigation

    def navigation(pages: list[Any], **kwargs: Any) -> Any:
        recorded.navigation.append([p.url_path for p in pages])
        return real_navigation(pages, **kwargs)

    monkeypatch.setattr(st, "navigation", navigation)
    # Every download button, however a page draws it (st.download_button or a column's): its file
    # name and its data (a callable where the file is built on click).
    real_download = ButtonMixin.download_button
    real_st_download = st.download_button

    def download_button(self: Any, label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.downloads.append((str(kwargs.get("file_name", args[0] if args else "")), data))
        return real_download(self, label, data, *args, **kwargs)

    def st_download_button(label: str, data: Any, *args: Any, **kwargs: Any) -> Any:
        recorded.downloads.append((str(kwargs.get("file_name", args[0] if args else "")), data))
        return real_st_download(label, data, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", download_button)
    monkeypatch.setattr(st, "download_button", st_download_button)
    return recorded


def _wrap(recorded: Spy, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        # Every view and drilldown takes (db_url, cut_id, ViewContext, ...); the shell's scoped
        # loader (db_url, study_id, cut_id, scope).
        context = next((a for a in args if isinstance(a, ViewContext)), None)
        scoped = name not in UNSCOPED
        if context is not None:
            scope = context.scope
        else:
            scope = kwargs.get("scope", args[3] if scoped and len(args) > 3 else None)
        recorded.calls.append(Call(name, scoped, scope, result))
        return result

    return wrapper


def open_as(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    email: str | None,
    page: str | None = None,
    *,
    query: dict[str, str] | None = None,
    state: dict[str, Any] | None = None,
) -> AppTest:
    """The app as ``email`` (None: not signed in) on ``page`` of DEMO-MULTI."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": False} if email is None else {"is_logged_in": True, "email": email}
    for key, value in {"study": MULTI, **(query or {})}.items():
        at.query_params[key] = value
    at.run()
    if page is not None:
        at.switch_page(page).run()
    if state:  # as a click leaves it, once the page has run (a pick belongs to its study)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def context_of(at: AppTest) -> PageContext:
    context = at.session_state[CONTEXT_KEY]
    assert isinstance(context, PageContext)
    return context


def site_counts(engine: Engine, site_id: str) -> PopulationCounts:
    """One site's subjects by population, counted in pandas from the raw tables."""
    subjects = pd.read_sql_table("subject", engine)
    sites = pd.read_sql_table("site", engine)
    pk = sites.loc[(sites["study_id"] == MULTI) & (sites["site_id"] == site_id), "id"]
    mine = subjects[(subjects["study_id"] == MULTI) & subjects["site_pk"].isin(pk)]
    by = mine["population"].value_counts()
    return PopulationCounts(
        screened=len(mine),
        screen_failures=int(by.get("SCREEN FAILURE", 0)),
        enrolled=int(by.get("ENROLLED", 0)),
        not_assigned=int(by.get("NOT ASSIGNED", 0)),
        in_screening=int(by.get("IN SCREENING", 0)),
    )


def first_code(engine: Engine, site_id: str) -> str:
    subjects = pd.read_sql_table("subject", engine)
    return str(sorted(c for c in subjects["usubjid"] if c.startswith(f"{MULTI}-{site_id}-"))[0])


def trail(engine: Engine, **wanted: Any) -> pd.DataFrame:
    with Session(engine) as session:
        events, _ = audit_events(session, wanted=AuditFilter(**wanted), limit=1000)
    return events


# -- not signed in, not in the user table --------------------------------------------------------


@pytest.mark.parametrize("page", [*PAGES, *ADMIN_PAGES])
def test_not_signed_in_sees_only_the_sign_in_page(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch, spy: Spy, page: str
) -> None:
    path = {**PAGES, **ADMIN_PAGES}[page]
    at = open_as(users_db_url, monkeypatch, None, path)
    assert [t.value for t in at.title] == ["Study monitor"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not at.sidebar.selectbox
    assert spy.calls == [] and spy.navigation == []  # no data read, no page listed


def test_an_unknown_email_sees_no_access_and_is_audited_once(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, STRANGER.upper(), PAGES["enrollment"])
    at.run()  # a rerun of the same session records nothing more
    assert [t.value for t in at.title] == ["No access"]
    assert STRANGER in shown_text(at.markdown[0].value)  # the e-mail is shown as text
    assert [b.label for b in at.button] == ["Sign out"]
    assert not at.metric and not at.dataframe
    assert spy.calls == [] and spy.navigation == []
    refused = trail(engine, emails=(STRANGER,))
    assert refused["action"].tolist() == ["sign-in-refused"]


def test_an_unverified_email_is_refused(users_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", users_db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": SPONSOR, "email_verified": False}
    at.run()
    assert [t.value for t in at.title] == ["No access"]


# -- an investigator of site 101 ----------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_an_investigators_pages_load_only_their_site(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy, page: str
) -> None:
    query = {"subject": first_code(engine, INVESTIGATOR_SITE)} if page == "subject" else None
    at = open_as(users_db_url, monkeypatch, INVESTIGATOR, PAGES[page], query=query)
    context = context_of(at)
    assert context.scope == context.allowed == (INVESTIGATOR_SITE,)
    assert context.user.email == INVESTIGATOR.lower() and context.user.role == "investigator"
    # Every query ran with the investigator's scope; the only others are study-level facts.
    assert spy.scopes() == {(INVESTIGATOR_SITE,)}
    assert spy.unscoped() <= UNSCOPED
    # The data that came back names no other site (and, where it lists subjects, theirs).
    assert spy.sites() <= {INVESTIGATOR_SITE}
    if page in ("enrollment", "screen-failures", "adverse-events", "subject"):
        assert spy.sites() == {INVESTIGATOR_SITE}
    expected = site_counts(engine, INVESTIGATOR_SITE)
    for call in spy.calls:
        counts = getattr(call.result, "counts", None)  # the Overview's, Screen failures', ...
        if isinstance(counts, PopulationCounts):
            assert counts == expected
    # One site: no site filter to offer; the Import and Audit pages are not in the navigation.
    assert SITES_KEY not in [m.key for m in at.sidebar.multiselect]
    assert spy.navigation[-1] == list(access.DATA_PAGES)
    assert "Signed in as **investigator.101@site.example** (investigator)" in [
        shown_text(c.value) for c in at.sidebar.caption
    ]


def test_the_overview_marks_study_wide_totals_as_aggregates(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, INVESTIGATOR)
    own = site_counts(engine, INVESTIGATOR_SITE)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Screened"] == str(own.screened)
    # Against the site's own target (the Enrollment page's), never the study's.
    sites = pd.read_sql_table("site", engine)
    (own_target,) = sites.loc[
        (sites["study_id"] == MULTI) & (sites["site_id"] == INVESTIGATOR_SITE), "planned_enrollment"
    ]
    assert shown["Enrolled at your sites"] == f"{own.enrolled} / {int(own_target)}"
    every_site = [site_counts(engine, f"{n}") for n in range(101, 111)]
    enrolled = sum(c.enrolled for c in every_site)
    screened = sum(c.screened for c in every_site)
    wide = next(i.value for i in at.info if "Study-wide" in i.value)
    assert "(aggregate only)" in wide
    assert f"{enrolled} enrolled" in wide and f"{screened} screened" in wide
    aggregate = [c.result.study_wide for c in spy.calls if c.loader == "overview_view"]
    assert aggregate and all(isinstance(r, PopulationCounts) for r in aggregate)  # counts only


def test_another_sites_subject_does_not_open_by_url(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    other = first_code(engine, "102")
    at = open_as(
        users_db_url, monkeypatch, INVESTIGATOR, PAGES["subject"], query={"subject": other}
    )
    assert any(f"No subject **{other}**" in w.value for w in at.warning)
    assert [c.result for c in spy.calls if c.loader == "subject_record"] == [None]
    assert other not in str(at.selectbox[-1].options)  # the picker lists site 101 only


def test_an_investigator_opens_no_other_study(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, INVESTIGATOR, query={"study": "NCT06466850"})
    assert "**NCT06466850** is not open to your account" in at.warning[0].value
    assert context_of(at).study_id == MULTI
    assert at.sidebar.selectbox(key="study").options == [MULTI]


def _exports(spy: Spy) -> dict[str, Any]:
    """Every download of the last run, built as a click builds it (which writes its audit
    event)."""
    return {
        name: readable(name, data() if callable(data) else data)
        for name, data in dict(spy.downloads).items()  # the last run's button of each file
    }


@pytest.mark.parametrize(
    ("page", "state", "files"),
    [
        ("overview", {}, None),  # the monitoring pack, PDF and workbook
        ("enrollment", {}, {"visit-schedule.csv", "visit-schedule.xlsx", "flow.svg", "flow.png"}),
        ("baseline", {}, {"table1.csv", "table1.xlsx"}),
        (
            "screen-failures",
            {"screen_failures_criterion": ("INCL03", "")},
            {"INCL03-screen-failures.csv", "INCL03-screen-failures.xlsx"},
        ),
        (
            "adverse-events",
            {ae_drilldown.PICK_KEY: EventPick(source="summary", title="Any AE", category="any")},
            None,  # the SAE listing and the drilldown's listing: names of their own
        ),
    ],
)
def test_an_investigators_downloads_hold_only_their_site(
    users_db_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    spy: Spy,
    page: str,
    state: dict[str, Any],
    files: set[str] | None,
) -> None:
    before = len(trail(engine, actions=("export",)))
    at = open_as(users_db_url, monkeypatch, INVESTIGATOR, PAGES[page], state=state)
    spy.downloads.clear()  # the buttons of this page alone, not of the runs that led to it
    at.run()
    names = {name.removeprefix(f"{MULTI}-") for name, _ in spy.downloads}
    if files is not None:
        assert names == files
    elif page == "overview":
        assert sorted(n.rsplit(".", 1)[-1] for n in names) == ["pdf", "xlsx"]
    else:
        assert len(names) >= 4  # CSV and Excel of the SAE listing and of the drilldown
    labels = [b.proto.label for b in at.get("download_button")]
    exports = _exports(spy)
    assert len(labels) == len(exports)  # every download button went through the audit
    for name, data in exports.items():
        assert sites_named(data) <= {INVESTIGATOR_SITE}, name
    listings = [
        d for n, d in exports.items() if n.endswith((".csv", ".xlsx")) and "table1" not in n
    ]
    if listings:
        assert sites_named(listings) == {INVESTIGATOR_SITE}
    if page == "baseline":
        table = exports[f"{MULTI}-table1.csv"]
        enrolled = site_counts(engine, INVESTIGATOR_SITE).enrolled
        assert any(c.startswith("Overall") and f"{enrolled}" in c for c in table.columns)
    # Each file built wrote one export event: who, which study, the sites in force, which file.
    events = trail(engine, actions=("export",))
    new = events.iloc[: len(events) - before]
    assert len(new) == len(exports)
    assert set(new["email"]) == {INVESTIGATOR.lower()}
    assert set(new["study_id"]) == {MULTI}
    assert all(s == [INVESTIGATOR_SITE] for s in new["sites"])
    assert {d["file"] for d in new["detail"]} == set(exports)


# -- other roles -----------------------------------------------------------------------------


def test_a_sponsor_sees_every_site_and_no_admin_page(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, SPONSOR, PAGES["enrollment"])
    context = context_of(at)
    assert context.scope is None and context.allowed is None
    assert spy.scopes() == {None}
    assert spy.sites() == {f"{n}" for n in range(101, 111)}
    assert len(at.sidebar.multiselect(key=SITES_KEY).options) == 10
    assert spy.navigation[-1] == list(access.DATA_PAGES)


def test_a_monitor_chooses_among_their_sites_only(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, MONITOR)
    sites = at.sidebar.multiselect(key=SITES_KEY)
    assert len(sites.options) == 2
    assert context_of(at).scope == ("102", "103")
    sites.set_value(["103"]).run()
    assert context_of(at).scope == ("103",)
    # A site kept in session state from elsewhere (another account, a crafted state) is dropped.
    at.session_state[SITES_KEY] = ["105"]
    at.run()
    assert not at.exception
    assert context_of(at).scope == ("102", "103")
    assert spy.scopes() <= {("102", "103"), ("103",)}


def test_hidden_pages_check_the_role_themselves(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run the page script directly, as a URL would if the navigation listed it: the page refuses.
    monkeypatch.setenv("DATABASE_URL", users_db_url)
    for path in ADMIN_PAGES.values():
        page = AppTest.from_file(str(PROJECT_ROOT / "pages" / path.removeprefix("../pages/")))
        page.session_state[auth.USER_KEY] = access.CurrentUser(
            email=SPONSOR, role="sponsor", unblinded=False
        )
        page.run()
        assert not page.exception
        assert [t.value for t in page.title] == ["Not available"]
        assert "not open to the sponsor role" in page.error[0].value
        assert not page.get("file_uploader") and not page.dataframe


def test_an_admin_reads_and_filters_the_audit_trail(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    at = open_as(users_db_url, monkeypatch, ADMIN, ADMIN_PAGES["audit"])
    assert spy.navigation[-1] == [*access.DATA_PAGES, "import", "audit"]
    assert at.title[0].value == "Audit trail"
    shown = at.dataframe[0].value
    assert set(shown["action"]) >= {"user-add", "sign-in"}
    at.multiselect(key="audit_what").set_value(["sign-in"]).run()
    signed_in = at.dataframe[0].value
    assert set(signed_in["action"]) == {"sign-in"}
    assert ADMIN in set(signed_in["email"])
    expected = trail(engine, actions=("sign-in",))
    assert len(signed_in) == len(expected)


def test_local_mode_runs_as_admin_and_says_so(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = MULTI
    at.run()
    assert not at.exception
    assert any("Local mode" in c.value for c in at.sidebar.caption)
    assert any("local mode: no sign-in configured" in c.value for c in at.caption)
    assert context_of(at).user == access.LOCAL_USER
    assert spy.navigation[-1] == [*access.DATA_PAGES, "import", "audit"]


def test_a_server_that_requires_sign_in_refuses_local_mode(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    monkeypatch.setenv("DATABASE_URL", demo_db_url)
    monkeypatch.setenv("STUDY_MONITOR_REQUIRE_SIGN_IN", "1")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "Sign-in is required on this server" in at.error[0].value
    assert spy.calls == []


def test_a_sign_in_is_audited_once_per_session(
    users_db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(trail(engine, emails=(MONITOR,), actions=("sign-in",)))
    at = open_as(users_db_url, monkeypatch, MONITOR, PAGES["baseline"])
    at.run()
    after = trail(engine, emails=(MONITOR,), actions=("sign-in",))
    assert len(after) == before + 1


def test_a_monitors_site_risk_lists_only_their_sites(
    users_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = open_as(users_db_url, monkeypatch, MONITOR, PAGES["site-risk"])
    table = next(d.value for d in at.dataframe if "Risk score" in d.value.columns)
    table = getattr(table, "data", table)  # drawn as a Styler
    assert set(table["Site"]) == set(MONITOR_SITES)
    # No country level for a viewer limited to sites (a country's sum would show its other sites).
    assert "Flags by country" not in [s.value for s in at.subheader]
    assert "Only your sites are listed." in " ".join(c.value for c in at.caption)
