"""The databases tests run on: a new SQLite file by default; a new PostgreSQL database on the
server that ``TEST_POSTGRES_URL`` names (``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``),
where it is set. ``.ci/run`` runs the whole suite both ways.

Every test that needs a database of its own asks ``new_database_url``; only the tests about SQLite
itself (a missing, empty or broken database file) build SQLite URLs by hand.
"""

import datetime as dt
import itertools
import json
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL") or None
_created: list[str] = []
_numbers = itertools.count(1)


def _server() -> Engine:
    assert POSTGRES_URL is not None
    # CREATE and DROP DATABASE cannot run inside a transaction.
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def _postgres_name(name: str) -> str:
    # Unique across runs sharing a server (and readable in pg_stat_activity): test_NNN_name_xxxxxx.
    safe = "".join(c if c.isalnum() else "_" for c in name.lower())[:30]
    return f"test_{next(_numbers):03d}_{safe}_{uuid.uuid4().hex[:6]}"


def _postgres_url(database: str) -> str:
    assert POSTGRES_URL is not None
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def new_database_url(folder: Path, name: str) -> str:
    """The URL of a new, empty database: ``folder/name.db`` with SQLite, else a new PostgreSQL
    database named after ``name`` (dropped when the test session ends)."""
    if POSTGRES_URL is None:
        return f"sqlite:///{folder / f'{name}.db'}"
    database = _postgres_name(name)
    server = _server()
    with server.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    server.dispose()
    _created.append(database)
    return _postgres_url(database)


def copy_database(url: str, folder: Path, name: str) -> str:
    """A new database holding what ``url`` holds (a test that writes works on a copy)."""
    if POSTGRES_URL is None:
        copy = folder / f"{name}.db"
        shutil.copy(make_url(url).database or "", copy)
        return f"sqlite:///{copy}"
    source = make_url(url).database
    database = _postgres_name(name)
    server = _server()
    with server.connect() as connection:
        # A template database must have no other session: pooled connections of the tests'
        # engines are closed here (their engines reconnect: pool_pre_ping).
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :source AND pid <> pg_backend_pid()"
            ),
            {"source": source},
        )
        connection.execute(text(f'CREATE DATABASE "{database}" TEMPLATE "{source}"'))
    server.dispose()
    _created.append(database)
    return _postgres_url(database)


def drop_created_databases() -> None:
    """Drop the PostgreSQL databases this test session created (even with sessions still open)."""
    if POSTGRES_URL is None or not _created:
        return
    server = _server()
    with server.connect() as connection:
        for database in _created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    server.dispose()
    _created.clear()


def read_sql(sql: str, engine: Engine) -> pd.DataFrame:
    """``pd.read_sql_query`` with the values in one form on both databases: SQLite hands back dates
    and JSON as the text it stores, psycopg as ``date`` objects and parsed JSON; tests that read raw
    tables compare the text."""
    frame = pd.read_sql_query(sql, engine)
    for name in frame.columns:
        frame[name] = frame[name].map(_as_stored_text, na_action="ignore")
    return frame


def _as_stored_text(value: object) -> object:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def _tables_but_the_audit_trail() -> tuple[str, ...]:
    """Every table of the model except the audit trail, from the SQLModel metadata: a table added
    later is covered without a change here."""
    from sqlmodel import SQLModel

    import dashboard.models  # noqa: F401  (registers the tables)
    from dashboard.models import AuditEvent

    audit = AuditEvent.__tablename__
    return tuple(t.name for t in SQLModel.metadata.sorted_tables if t.name != audit)


# Every table but the audit trail (which records the attempt): what a failed load must leave as it
# was, row by row.
STUDY_TABLES = _tables_but_the_audit_trail()


def study_tables(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every table's rows but the audit trail's, in a stable order (by primary key), to compare a
    database before and after an attempt."""
    from sqlmodel import SQLModel

    frames = {}
    for name in STUDY_TABLES:
        table = SQLModel.metadata.tables[name]
        order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
        frames[name] = read_sql(f'SELECT * FROM "{name}" ORDER BY {order}', engine)
    return frames
