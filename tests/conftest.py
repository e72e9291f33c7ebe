"""Shared fixtures: a real database with the demo studies (SQLite, or PostgreSQL where
TEST_POSTGRES_URL is set: tests/databases.py), sessions on it, clean caches."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.demo import build_multisite_study, build_seed_study
from tests.databases import drop_created_databases, new_database_url
from tests.reference import SHARED_DATA as SHARED_DATA

# The browser and server fixtures of the real-browser tests, shared by every module that uses them.
pytest_plugins = ["tests.browser_support"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP = str(PROJECT_ROOT / "dashboard" / "app.py")


def reference_absent(reason: str) -> NoReturn:
    """The reference data beside the project (../shared/data, ../shared/seeds) is missing: a skip on
    a developer's machine, a failure in CI (``CI=true``), where the tests against real files must
    run rather than pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI=true, and the tests against the reference data must run")
    pytest.skip(reason)


def open_study_page(
    db_url: str, study: str, page: str, monkeypatch: pytest.MonkeyPatch, *, timeout: float
) -> AppTest:
    """The app through AppTest on ``db_url``, opened on ``?study=<study>`` and switched to
    ``pages/<page>``; the page ran without an exception."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params["study"] = study
    at.run()
    at.switch_page(f"../pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="session", autouse=True)
def drop_test_databases() -> Iterator[None]:
    """The PostgreSQL databases the run created are dropped at its end."""
    yield
    drop_created_databases()


def build_demo_database(folder: Path) -> str:
    """A new database holding NCT06466850 and DEMO-MULTI; returns its URL."""
    url = new_database_url(folder, "demo")
    engine = make_engine(url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_seed_study(session)
        build_multisite_study(session)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def demo_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database, built once per test run. Tests must not write to it."""
    return build_demo_database(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_engine(demo_db_url: str) -> Iterator[Engine]:
    engine = make_engine(demo_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(demo_engine: Engine) -> Iterator[Session]:
    with Session(demo_engine) as session:
        yield session


@pytest.fixture
def empty_db_url(tmp_path: Path) -> str:
    """A database with the schema and nothing in it."""
    url = new_database_url(tmp_path, "empty")
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()
    return url


@pytest.fixture(autouse=True)
def clear_streamlit_caches() -> Iterator[None]:
    """Streamlit caches live for the process: every test starts and ends with empty ones."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def shared_data() -> Path:
    """The reference data beside the project (../shared/data); skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        reference_absent(f"reference data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pilot_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The CDISC pilot imported once per test run (read-only for tests); skipped without the data."""
    from dashboard.importers.run import import_sdtm

    folder = SHARED_DATA / "sdtm" / "cdiscpilot01"
    if not folder.is_dir():
        reference_absent(f"reference data folder {folder} is absent")
    url = new_database_url(tmp_path_factory.mktemp("pilot-shared"), "pilot")
    engine = make_engine(url)
    import_sdtm(engine, folder)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def msg_db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SDTM-MSG sample imported once per test run under its own study id, MSG (its STUDYID is
    the pilot's); read-only for tests; skipped without the data."""
    from dashboard.importers.run import import_sdtm

    folder = SHARED_DATA / "sdtm" / "cdisc_msg_v2"
    if not folder.is_dir():
        reference_absent(f"reference data folder {folder} is absent")
    url = new_database_url(tmp_path_factory.mktemp("msg-shared"), "msg")
    engine = make_engine(url)
    import_sdtm(engine, folder, study_id="MSG")
    engine.dispose()
    return url
