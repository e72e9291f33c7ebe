"""Two imports of one study at once, and audited writes during an import (issue #17).

An import takes a per-study write lock before it reads the rows it compares with (PostgreSQL: an
advisory lock; SQLite: BEGIN IMMEDIATE), so a second import waits and compares with the first's
cut; a sign-in's or a download's audit event waits for an import's write phase instead of failing
with "database is locked" (SQLite's busy wait, ``db.SQLITE_BUSY_TIMEOUT_S``).
"""

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.db import make_engine
from dashboard.importers import store
from dashboard.importers.run import SdtmImportReport, import_sdtm
from dashboard.models import DataCut
from tests.conftest import PROJECT_ROOT
from tests.databases import POSTGRES_URL, new_database_url, read_sql
from tests.sdtm_builders import write_package
from tests.test_access_pages import AUTH_SECRETS

# Longer than sqlite3's default busy timeout (5 s), under which the audited write used to fail.
HOLD_S = 6.0


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[str, Path]:
    """A database holding the base package as study TINY (cut 1), and the package's folder."""
    url = new_database_url(tmp_path, "concurrent")
    folder = write_package(tmp_path / "base")
    import_sdtm(make_engine(url), folder)
    return url, folder


def _pausing_after_reading(
    monkeypatch: pytest.MonkeyPatch, seconds: float, cuts_seen: list[int] | None = None
) -> threading.Event:
    """Make every import pause ``seconds`` after reading the study's current rows (inside its
    write lock), which widens the window two imports would race in; the event is set when an
    import holds the lock. ``cuts_seen`` gets the number of data cuts each import saw then."""
    holding = threading.Event()
    read = store._current_rows

    def pausing(session: Any, study_id: str) -> Any:
        rows = read(session, study_id)
        if cuts_seen is not None:
            cuts_seen.append(
                session.execute(select(func.count()).select_from(DataCut)).scalar_one()
            )
        holding.set()
        time.sleep(seconds)
        return rows

    monkeypatch.setattr(store, "_current_rows", pausing)
    return holding


def test_two_imports_of_one_study_at_once_both_compare_with_the_cut_before(
    loaded: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = loaded
    cuts_seen: list[int] = []
    _pausing_after_reading(monkeypatch, 0.5, cuts_seen)
    start = threading.Barrier(2)
    reports: list[SdtmImportReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(url)  # as two processes would: an engine each
        start.wait()
        try:
            reports.append(import_sdtm(engine, folder))
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(r.result.cut_id for r in reports) == [2, 3]
    # The second read the study's rows once the first had committed its cut: it waited.
    assert sorted(cuts_seen) == [1, 2]
    for report in reports:  # the same package as cut 1: nothing added, changed or removed
        assert {n for counts in report.result.changes.values() for n in counts.values()} == {0}
    engine = make_engine(url)
    assert read_sql("SELECT COUNT(*) AS n FROM cutchange WHERE cut_id > 1", engine)[
        "n"
    ].tolist() == [0]
    assert read_sql("SELECT id FROM datacut ORDER BY id", engine)["id"].tolist() == [1, 2, 3]
    for table, rows in (("subject", 3), ("adverseevent", 2), ("disposition", 2)):
        cuts = read_sql(f"SELECT first_cut_id, updated_cut_id FROM {table}", engine)
        assert len(cuts) == rows
        assert set(cuts["first_cut_id"]) == set(cuts["updated_cut_id"]) == {1}, table


def test_an_audited_write_during_an_import_waits_and_succeeds(
    loaded: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, folder = loaded
    holding = _pausing_after_reading(monkeypatch, HOLD_S)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            import_sdtm(make_engine(url), folder)
        except BaseException as error:
            errors.append(error)

    importing = threading.Thread(target=run)
    importing.start()
    assert holding.wait(timeout=60)  # the import holds its write lock from here
    began = time.monotonic()
    access.record_event(
        make_engine(url),
        email="monitor@example.org",
        action=access.EXPORT,
        study_id="TINY",
        detail={"file": "listing.csv"},
    )
    waited = time.monotonic() - began
    importing.join(timeout=120)
    assert not errors, errors
    if POSTGRES_URL is None:
        # SQLite has one writer at a time: the audit event waited for the import's commit, longer
        # than sqlite3's default 5 s.
        assert waited > HOLD_S - 1.5, waited
    events = read_sql("SELECT email, action FROM auditevent ORDER BY id", make_engine(url))
    assert events.values.tolist()[-2:] in (
        [["cli", "import"], ["monitor@example.org", "export"]],
        [["monitor@example.org", "export"], ["cli", "import"]],
    )
    assert read_sql("SELECT id FROM datacut ORDER BY id", make_engine(url))["id"].tolist() == [1, 2]


def test_a_sign_in_during_a_long_import_is_told_the_database_is_busy(
    loaded: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock that outlasts the wait is not "the user table cannot be read"."""
    url, _folder = loaded

    def locked(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("INSERT INTO auditevent ...", {}, Exception("database is locked"))

    monkeypatch.setattr(access, "record_event", locked)
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "someone@example.org"}
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The database is busy (an import is being written); try again in a minute."
    ]
