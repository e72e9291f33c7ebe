"""A filter matching nothing gives a plain message, no traceback (issue #2).

On a copy of the demo database (DEMO-MULTI) with one more site, activated but with nobody screened
yet: picking that site in the sidebar matches no subject on every page; on the pages with a
"Screened between" filter, a day inside the study's screening span on which nobody was screened
matches no subject either. Each page must then say so in words, draw no exception and no error,
and show no ratio as if it were a real 0%.
"""

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select
from streamlit.testing.v1 import AppTest

from dashboard.db import make_engine, session_scope
from dashboard.models import Site, Subject
from dashboard.results.population import SCREEN_FAILURE
from dashboard.ui.shell import SITES_KEY
from dashboard.views.format import nobody_screened, period_words, plural
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
STUDY = "DEMO-MULTI"
EMPTY_SITE = "199"  # added below: a site activated with nobody screened yet
PAGES = {
    "overview": None,  # the default page
    "enrollment": "../pages/enrollment.py",
    "screen-failures": "../pages/screen_failures.py",
    "baseline": "../pages/baseline.py",
    "adverse-events": "../pages/adverse_events.py",
}
PERIOD_PAGES = ["enrollment", "screen-failures"]  # the pages with the "Screened between" filter
NO_SUBJECTS_AT_SITES = "No subjects at the selected sites"
NOBODY_IN_PERIOD = "No subjects screened between"


@pytest.fixture(scope="module")
def filters_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo database with a site of DEMO-MULTI that has no subject (tests do not write)."""
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("empty-filters"), "empty_filters")
    engine = make_engine(url)
    with session_scope(engine) as session:
        session.add(
            Site(
                study_id=STUDY,
                site_id=EMPTY_SITE,
                name="Demo site 199 (new)",
                country="Iran",
                activated_on=dt.date(2025, 11, 1),
                planned_enrollment=10,
            )
        )
    engine.dispose()
    yield url


@pytest.fixture(scope="module")
def empty_day(filters_db_url: str) -> dt.date:
    """A day inside DEMO-MULTI's screening span on which no subject was screened, found from the
    subject rows themselves."""
    engine = make_engine(filters_db_url)
    with Session(engine) as session:
        dates = sorted(
            {
                day
                for day in session.exec(
                    select(col(Subject.screening_date)).where(col(Subject.study_id) == STUDY)
                )
                if day is not None
            }
        )
    engine.dispose()
    assert len(dates) > 10, "DEMO-MULTI has no screening dates to filter on"
    gap = next(
        (
            day + dt.timedelta(days=1)
            for day, following in itertools.pairwise(dates)
            if (following - day).days > 1
        ),
        None,
    )
    assert gap is not None, "every day of DEMO-MULTI's screening span has a screening"
    return gap


def subjects_where(url: str, *conditions: ColumnElement[bool]) -> int:
    engine = make_engine(url)
    with Session(engine) as session:
        count = session.exec(
            select(func.count(col(Subject.id))).where(col(Subject.study_id) == STUDY, *conditions)
        ).one()
    engine.dispose()
    return count


def open_study(db_url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["study"] = STUDY
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go_to(at: AppTest, page: str) -> None:
    path = PAGES[page]
    if path is not None:
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]


def infos(at: AppTest) -> list[str]:
    return [str(i.value) for i in at.info]


def assert_plain_and_honest(at: AppTest, message: str) -> None:
    """The page's plain message, no exception, no error, and no ratio shown as if it were 0%."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(message in text for text in infos(at)), infos(at)
    values = {m.label: str(m.value) for m in at.metric}
    assert values, "the page shows no headline figures"
    for label, value in values.items():
        assert "%" not in value and "nan" not in value.lower(), f"{label}: {value}"
    assert at.session_state["study"] == STUDY


def metric_number(at: AppTest, label: str) -> int:
    value = next(str(m.value) for m in at.metric if m.label == label)
    return int(value.split(" ")[0])


@pytest.mark.parametrize("page", list(PAGES))
def test_a_site_with_no_subjects(
    filters_db_url: str, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    assert subjects_where(filters_db_url) > 0
    empty_site = select(col(Site.id)).where(
        col(Site.study_id) == STUDY, col(Site.site_id) == EMPTY_SITE
    )
    assert subjects_where(filters_db_url, col(Subject.site_pk).in_(empty_site)) == 0
    at = open_study(filters_db_url, monkeypatch)
    go_to(at, page)
    # Unfiltered, the page has figures and no such message (the message is the filter's doing).
    assert not any(NO_SUBJECTS_AT_SITES in text for text in infos(at))

    at.multiselect(key=SITES_KEY).set_value([EMPTY_SITE]).run()
    assert not at.exception, [e.value for e in at.exception]
    go_to(at, page)  # the filter is kept on the page (and survives the move)
    assert_plain_and_honest(at, NO_SUBJECTS_AT_SITES)
    assert f"sites: {EMPTY_SITE}" in " ".join(str(c.value) for c in at.caption)
    if page == "overview":
        assert metric_number(at, "Screened") == 0
    elif page == "baseline":
        assert metric_number(at, "Enrolled") == 0
    elif page == "adverse-events":
        assert metric_number(at, "AE events") == 0
    elif page == "screen-failures":
        assert metric_number(at, "Screen failures") == 0


@pytest.mark.parametrize("page", PERIOD_PAGES)
def test_a_screening_period_with_nobody(
    filters_db_url: str, empty_day: dt.date, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    assert subjects_where(filters_db_url, col(Subject.screening_date) == empty_day) == 0
    at = open_study(filters_db_url, monkeypatch)
    go_to(at, page)
    assert not any(NOBODY_IN_PERIOD in text for text in infos(at))
    (period,) = at.sidebar.date_input  # "Screened between", the sidebar's only date input
    span = period.value
    assert isinstance(span, tuple) and len(span) == 2
    first, last = span
    assert first < empty_day < last  # inside the span: the widget accepts it

    period.set_value((empty_day, empty_day)).run()
    assert_plain_and_honest(at, nobody_screened((empty_day, empty_day)))
    if page == "enrollment":
        assert metric_number(at, "Enrolled / target") == 0
    else:
        assert metric_number(at, "Screen failures") == 0


def test_the_overview_ignores_a_period_set_elsewhere(
    filters_db_url: str, empty_day: dt.date, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Overview has no period filter: a period matching nobody, set on another page, leaves
    its figures whole (they are the study's, not zeros)."""
    at = open_study(filters_db_url, monkeypatch)
    go_to(at, "enrollment")
    at.sidebar.date_input[0].set_value((empty_day, empty_day)).run()
    assert any(NOBODY_IN_PERIOD in text for text in infos(at))
    at.switch_page("../pages/overview.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert metric_number(at, "Screened") == subjects_where(filters_db_url)


def test_the_empty_day_is_really_inside_the_span(filters_db_url: str, empty_day: dt.date) -> None:
    before = subjects_where(filters_db_url, col(Subject.screening_date) < empty_day)
    after = subjects_where(filters_db_url, col(Subject.screening_date) > empty_day)
    assert before > 0 and after > 0


def test_a_screening_period_without_screen_failures(
    filters_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A period whose subjects all passed screening: the Screen failures page says so in words,
    with no criteria chart of zero bars (an axis of "0.000000") and no empty heat map."""
    engine = make_engine(filters_db_url)
    with Session(engine) as session:
        rows = session.exec(
            select(col(Subject.screening_date), col(Subject.population)).where(
                col(Subject.study_id) == STUDY, col(Subject.screening_date).is_not(None)
            )
        ).all()
    engine.dispose()
    dated = [(day, population) for day, population in rows if day is not None]
    failed_on = {day for day, population in dated if population == SCREEN_FAILURE}
    day = min(day for day, _ in dated if day not in failed_on)
    screened = sum(1 for d, _ in dated if d == day)
    assert screened and day not in failed_on

    at = open_study(filters_db_url, monkeypatch)
    go_to(at, "screen-failures")
    charts_before = len(at.get("vega_lite_chart"))
    at.sidebar.date_input[0].set_value((day, day)).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = f"No screen failures among the {plural(screened, 'subject')} screened "
    assert expected + f"{period_words((day, day))}." in infos(at), infos(at)
    assert "No screen failures at any site in this selection." in infos(at)
    assert metric_number(at, "Screen failures") == 0
    # Only the screening-over-time chart is left: no criteria bars, no heat map.
    assert len(at.get("vega_lite_chart")) == 1 < charts_before
