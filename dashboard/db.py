"""Engine and session creation, schema creation, SQLite pragmas."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, col, create_engine

from dashboard import models
from dashboard.config import database_url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while an import writes; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: ``DATABASE_URL``, else the SQLite file under ``data/``).

    For a SQLite file the folder is created, and WAL mode and foreign keys are switched on for
    every connection.
    """
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create every table that does not exist yet (idempotent)."""
    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: all or nothing."""
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def has_schema(engine: Engine) -> bool:
    """Whether the database holds this app's tables (a study table at least)."""
    return inspect(engine).has_table("study")


def delete_subject_rows(session: Session, study_id: str) -> None:
    """Remove a study's subjects and every row that hangs off them, children first (foreign keys
    are on): what an SDTM snapshot replaces, and the first step of deleting a study."""
    subject_ids = select(col(models.Subject.id)).where(col(models.Subject.study_id) == study_id)
    for child in (
        models.EligibilityFinding,
        models.Disposition,
        models.Finding,
        models.AdverseEvent,
        models.Exposure,
        models.Visit,
    ):
        session.execute(delete(child).where(col(child.subject_pk).in_(subject_ids)))
    session.execute(delete(models.Subject).where(col(models.Subject.study_id) == study_id))
