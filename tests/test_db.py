"""The SQLite settings of dashboard/db.py (WAL, foreign keys enforced) and the indexes the schema
gives every foreign key."""

from pathlib import Path

import pytest
from sqlalchemy import Table, UniqueConstraint, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from dashboard import models  # noqa: F401  (registers every table on SQLModel.metadata)
from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.models import Site, Study, Subject


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite file with the schema (these are SQLite settings: always SQLite here)."""
    url = f"sqlite:///{tmp_path / 'settings.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    engine.dispose()
    return url


def test_every_connection_has_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        for _ in range(2):  # a second connection too, not only the first
            with engine.connect() as connection:
                assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            engine.dispose()  # the pool's connection closed: the next one is a new connection
    finally:
        engine.dispose()


def test_wal_mode_is_stored_in_the_file(sqlite_url: str) -> None:
    """WAL is a property of the database file: a plain sqlite3 connection sees it too."""
    import sqlite3

    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_orphan_subject_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            session.add(Subject(study_id="NO-SUCH-STUDY", usubjid="NO-SUCH-STUDY-001"))
        with pytest.raises(IntegrityError), session_scope(engine) as session:
            session.add(Study(study_id="S1"))
            session.flush()
            session.add(Subject(study_id="S1", site_pk=999_999, usubjid="S1-001"))
        # Nothing of either attempt was written; a subject whose keys exist is accepted.
        with session_scope(engine) as session:
            assert session.get(Study, "S1") is None
            session.add(Study(study_id="S1"))
            session.flush()
            site = Site(study_id="S1", site_id="01")
            session.add(site)
            session.flush()
            session.add(Subject(study_id="S1", site_pk=site.id, usubjid="S1-001"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM subject")).scalar() == 1
    finally:
        engine.dispose()


def test_deleting_a_referenced_row_is_refused(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with session_scope(engine) as session:
            session.add(Study(study_id="S1"))
            session.flush()
            session.add(Subject(study_id="S1", usubjid="S1-001"))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text("DELETE FROM study WHERE study_id = 'S1'"))
    finally:
        engine.dispose()


def _foreign_key_columns(table: Table) -> list[tuple[str, ...]]:
    return [tuple(c.name for c in fk.columns) for fk in table.foreign_key_constraints]


def _index_leads(table: Table) -> list[tuple[str, ...]]:
    """The column lists each index of ``table`` starts with (the primary key counts as one)."""
    leads = [tuple(c.name for c in index.columns) for index in table.indexes]
    leads.append(tuple(c.name for c in table.primary_key.columns))
    leads += [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return leads


def test_every_foreign_key_column_leads_an_index() -> None:
    tables = SQLModel.metadata.sorted_tables
    foreign_keys = [(t.name, cols) for t in tables for cols in _foreign_key_columns(t)]
    assert len(foreign_keys) >= 15  # the check has something to check (Site, Subject, AE ...)
    unindexed = [
        f"{name}.{','.join(cols)}"
        for name, cols in foreign_keys
        if not any(
            lead[: len(cols)] == cols for lead in _index_leads(SQLModel.metadata.tables[name])
        )
    ]
    assert not unindexed, f"foreign keys that lead no index: {unindexed}"


def test_the_database_has_those_indexes(sqlite_url: str) -> None:
    """What the metadata declares is what the created database holds: every foreign-key column
    leads an index of the real SQLite schema (its primary key aside)."""
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'table'")
                )
            ]
            missing = []
            checked = 0
            for table in tables:
                fk_columns = {
                    row[3]
                    for row in connection.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")')
                }
                firsts = set()
                for index in connection.exec_driver_sql(f'PRAGMA index_list("{table}")'):
                    info = list(connection.exec_driver_sql(f'PRAGMA index_info("{index[1]}")'))
                    first = min(info, key=lambda r: r[0])  # seqno 0: the leading column
                    firsts.add(first[2])
                pk = [
                    row[1]
                    for row in connection.exec_driver_sql(f'PRAGMA table_info("{table}")')
                    if row[5] == 1
                ]
                firsts.update(pk)  # the first primary-key column is indexed (rowid or autoindex)
                checked += len(fk_columns)
                missing += [f"{table}.{c}" for c in sorted(fk_columns - firsts)]
        assert checked >= 15
        assert not missing, f"foreign-key columns without an index: {missing}"
    finally:
        engine.dispose()
