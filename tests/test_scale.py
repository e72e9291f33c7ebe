"""At scale: the page queries stay right on the bulk-generated study, and no page reads a whole raw
table (rows fetched are counted at the database driver while every page renders)."""

import sqlite3
from collections.abc import Iterator
from typing import Any, ClassVar

import pandas as pd
import pytest
import sqlmodel
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

import dashboard.db
from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.demo_scale import build_scale_study
from dashboard.queries.adverse_events import count_adverse_events, incidence_by_soc
from dashboard.queries.enrollment import enrollment_by_site, funnel, population_counts
from dashboard.queries.screen_failures import failures_by_criterion
from tests.conftest import PROJECT_ROOT
from tests.databases import new_database_url

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
STUDY = "DEMO-SCALE"
PAGES = (
    "../pages/overview.py",
    "../pages/enrollment.py",
    "../pages/screen_failures.py",
    "../pages/baseline.py",
    "../pages/adverse_events.py",
)


@pytest.fixture(scope="module")
def scale_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = new_database_url(tmp_path_factory.mktemp("scale"), "scale")
    engine = make_engine(url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_scale_study(session, n_subjects=3000, n_sites=30)
    engine.dispose()
    return url


def _raw(engine: Engine, sql: str) -> pd.DataFrame:
    return pd.read_sql_query(sql, engine)


def test_page_queries_agree_with_pandas_at_scale(scale_db: str) -> None:
    engine = make_engine(scale_db)
    subjects = _raw(
        engine,
        f"SELECT s.*, site.site_id AS siteid FROM subject s JOIN site "
        f"ON site.id = s.site_pk WHERE s.study_id = '{STUDY}'",
    )
    ae = _raw(engine, "SELECT * FROM adverseevent")
    ie = _raw(
        engine,
        "SELECT f.subject_pk, c.code FROM eligibilityfinding f "
        "JOIN criterion c ON c.id = f.criterion_pk",
    )
    with Session(engine) as session:
        counts = population_counts(session, study_id=STUDY, scope=None)
        steps = funnel(session, study_id=STUDY, scope=None)
        by_site = enrollment_by_site(session, study_id=STUDY, scope=None).set_index("site_id")
        criteria = failures_by_criterion(session, study_id=STUDY, scope=None)
        events = count_adverse_events(session, study_id=STUDY, scope=None)
        by_soc = incidence_by_soc(session, study_id=STUDY, scope=None)
    assert counts.screened == len(subjects) == 3000
    assert counts.enrolled == (subjects["population"] == "ENROLLED").sum()
    assert (
        steps.completed
        == ((subjects["population"] == "ENROLLED") & (subjects["status"] == "COMPLETED")).sum()
    )
    site_screened = subjects.groupby("siteid").size()
    assert (
        by_site["screened"].to_dict()
        == site_screened.reindex(by_site.index, fill_value=0).to_dict()
    )
    failed_ids = set(subjects.loc[subjects["population"] == "SCREEN FAILURE", "id"])
    expected = ie[ie["subject_pk"].isin(failed_ids)].groupby("code")["subject_pk"].nunique()
    assert (
        criteria.set_index("code")["subjects"].to_dict()
        == expected.reindex(criteria["code"], fill_value=0).to_dict()
    )
    assert (events.events, events.subjects) == (len(ae), ae["subject_pk"].nunique())
    assert events.serious_events == (ae["serious"] == "Y").sum()
    soc = ae.groupby("body_system")["subject_pk"].nunique()
    assert by_soc.set_index("body_system")["subjects"].to_dict() == soc.to_dict()


class _CountingCursor(sqlite3.Cursor):
    """A cursor that counts the rows the application fetches."""

    fetched: ClassVar[list[int]] = []

    @staticmethod
    def _count(n: int) -> None:
        # Statements SQLAlchemy runs on its own at connect time come before any event.
        if not _CountingCursor.fetched:
            _CountingCursor.fetched.append(0)
        _CountingCursor.fetched[-1] += n

    def fetchone(self) -> Any:
        row = super().fetchone()
        if row is not None:
            self._count(1)
        return row

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = super().fetchmany(size) if size is not None else super().fetchmany()
        self._count(len(rows))
        return rows

    def fetchall(self) -> list[Any]:
        rows = super().fetchall()
        self._count(len(rows))
        return rows


class _CountingConnection(sqlite3.Connection):
    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return super().cursor(_CountingCursor)


@pytest.fixture
def counted(scale_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every engine the app makes in this test counts the rows each statement fetches; the list
    holds one count per statement. SQLite: through the counting cursor. PostgreSQL: psycopg's
    client-side cursors hold a statement's whole result, and rowcount says how many rows."""
    fetched: list[int] = _CountingCursor.fetched
    fetched.clear()
    if make_url(scale_db).get_backend_name() == "sqlite":
        path = scale_db.removeprefix("sqlite:///")
        original = sqlmodel.create_engine  # what dashboard.db.make_engine calls

        def counting_engine(url: str, **kwargs: Any) -> Engine:
            kwargs.pop("connect_args", None)
            return original(
                url,
                creator=lambda: sqlite3.connect(
                    path, factory=_CountingConnection, check_same_thread=False
                ),
                **kwargs,
            )

        monkeypatch.setattr(dashboard.db, "create_engine", counting_engine)

        def new_statement(*_args: Any) -> None:
            fetched.append(0)

        event.listen(Engine, "before_cursor_execute", new_statement)
        yield fetched
        event.remove(Engine, "before_cursor_execute", new_statement)
        return

    def statement_done(_conn: Any, cursor: Any, *_args: Any) -> None:
        # Only statements that return rows (a SELECT's rowcount is its rows; DDL says -1).
        fetched.append(max(cursor.rowcount, 0) if cursor.description is not None else 0)

    event.listen(Engine, "after_cursor_execute", statement_done)
    yield fetched
    event.remove(Engine, "after_cursor_execute", statement_done)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_reads_a_whole_raw_table(
    page: str, scale_db: str, counted: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(scale_db)
    largest = {
        table: int(_raw(engine, f"SELECT count(*) AS n FROM {table}").iloc[0]["n"])
        for table in ("finding", "adverseevent", "visit", "disposition")
    }
    monkeypatch.setenv("DATABASE_URL", scale_db)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["study"] = STUDY
    at.run()
    counted.clear()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert counted, "the page ran no query: the counter is not wired"
    # Aggregates come back as summaries: no statement brings even half of a raw table's rows,
    # and the whole page fetches less than the AE table alone.
    assert max(counted) < min(largest.values()) / 2, (page, max(counted), largest)
    assert sum(counted) < largest["adverseevent"], (page, sum(counted), largest)


def test_the_counter_sees_a_raw_read(scale_db: str, counted: list[int]) -> None:
    # The check above must be able to fail: a naive read of the AE table is counted in full.
    engine = dashboard.db.make_engine(scale_db)
    with engine.connect() as connection:
        counted.clear()
        rows = connection.exec_driver_sql("SELECT * FROM adverseevent").fetchall()
    assert max(counted) == len(rows) > 0


def test_timeline_picker_offers_a_limited_list_serious_first(
    scale_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More subjects with an AE than the picker offers: the first TIMELINE_CHOICES of them,
    those with a serious AE first, each part by code, and the page says the list is cut."""
    from dashboard.views.adverse_events import TIMELINE_CHOICES

    engine = make_engine(scale_db)
    ae = _raw(
        engine,
        "SELECT s.usubjid, a.serious FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
        f"WHERE s.study_id = '{STUDY}'",
    )
    serious = sorted(set(ae.loc[ae["serious"].str.upper() == "Y", "usubjid"]))
    others = sorted(set(ae["usubjid"]) - set(serious))
    assert len(serious) + len(others) > TIMELINE_CHOICES  # the cut is exercised
    monkeypatch.setenv("DATABASE_URL", scale_db)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["study"] = STUDY
    at.run()
    at.switch_page("../pages/adverse_events.py").run()
    assert not at.exception, [e.value for e in at.exception]
    picker = next(box for box in at.selectbox if box.label == "Subject")
    assert list(picker.options) == (serious + others)[:TIMELINE_CHOICES]
    assert any(f"The first {TIMELINE_CHOICES:,} subjects" in c.value for c in at.caption)
