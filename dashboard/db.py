"""Engine and session creation, the schema and its migrations, SQLite pragmas.

The schema is versioned with Alembic (migrations in ``dashboard/migrations``). Every entry point (the
app's engine, each CLI command, the importers, the demo builders) calls ``ensure_schema``: an empty
database gets the current schema, a database at the latest migration is used as it is, and any other
is refused with a message naming ``study-monitor db upgrade`` (``upgrade_schema`` does the upgrade).
"""

import ast
import functools
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, event, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, col, create_engine

from dashboard import models
from dashboard.config import DEFAULT_DB_PATH, database_url

if TYPE_CHECKING:  # named in annotations only
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic is imported in the functions that use it (about 0.3 s of imports): a database at the
# latest migration, every command's and every page's case, is told so without it
# (``_stamped_at_head``).

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "study-monitor db upgrade"
# Any constant will do: it only has to be the same in every process creating the schema.
_SCHEMA_LOCK_KEY = 80_466_850
# The first key of PostgreSQL's two-key advisory locks taken for a study's import (the second is a
# hash of the study id); two-key locks never meet the one-key schema lock.
_STUDY_LOCK_SPACE = 17
# How long a SQLite write waits for another writer (sqlite3's default is 5 s). An import holds
# the write lock from reading the study's current rows to its commit: the CDISC pilot's write
# phase took 3.9 s (a later cut) to 9.0 s (the first, with other work on this 2-core machine), a
# 200,000-record IE's about 16 s, so a sign-in's or a download's audit event, or a second import,
# failed with "database is locked" after 5 s. 60 s is several times the longest write phase
# measured, and still short enough for someone waiting in a browser to be told plainly that the
# database is busy.
SQLITE_BUSY_TIMEOUT_S = 60.0
BUSY_MESSAGE = "the database is busy (an import is being written); try again in a minute"


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
    every connection. Other databases (PostgreSQL) need nothing of the kind.
    """
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def shown_url(engine: Engine) -> str:
    """The engine's URL as it may be printed (the password hidden)."""
    return engine.url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------------------------------
# The schema and its migrations
# ---------------------------------------------------------------------------------------------


class SchemaError(Exception):
    """The database's schema is not the one this version of the code reads; the message says
    what to do about it."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: ``revision`` is its Alembic revision (None where it has none),
    ``has_tables`` whether any of this app's tables are there, ``head`` the latest migration."""

    revision: str | None
    has_tables: bool
    head: str

    @property
    def is_empty(self) -> bool:
        return self.revision is None and not self.has_tables

    @property
    def is_current(self) -> bool:
        return self.revision == self.head


@functools.cache
def migration_scripts() -> "ScriptDirectory":
    """The migrations shipped in the package (read once per process)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def alembic_config(connection: Connection | None = None) -> "Config":
    """Alembic's configuration, made in code (no alembic.ini): the package's migrations, run on
    ``connection`` (env.py takes it from ``attributes``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _state(connection: Connection) -> SchemaState:
    from alembic.runtime.migration import MigrationContext

    tables = set(inspect(connection).get_table_names())
    return SchemaState(
        revision=MigrationContext.configure(connection).get_current_revision(),
        has_tables=bool(tables & set(SQLModel.metadata.tables)),
        head=_head(),
    )


def _head() -> str:
    head = migration_scripts().get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise SchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def schema_state(engine: Engine) -> SchemaState:
    """Where ``engine``'s database stands against this code's migrations."""
    with engine.connect() as connection:
        return _state(connection)


def refusal(engine: Engine, state: SchemaState) -> SchemaError:
    """Why a database that is neither current nor empty is refused, and what to do about it."""
    where = f"The database {shown_url(engine)}"
    how = (
        f"run `{UPGRADE_COMMAND}` on it (with the same DATABASE_URL, or --db URL), "
        "then reload or rerun"
    )
    if state.revision is None:
        return SchemaError(
            f"{where} was made by a version of study-monitor from before schema migrations: {how}."
        )
    if not _is_known(state.revision):
        return SchemaError(
            f"{where} is at schema revision {state.revision}, which this version of study-monitor "
            f"does not know (its latest is {state.head}): it was made by a newer version; "
            "use that version."
        )
    return SchemaError(
        f"{where} is at schema revision {state.revision}, behind the {state.head} this version "
        f"of study-monitor reads: {how}."
    )


def _is_known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return migration_scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _create_at_head(connection: Connection) -> bool:
    """Create every table and stamp the latest migration, if the database is still empty once
    no one else can be creating it; returns whether it was."""
    from alembic.runtime.migration import MigrationContext

    if connection.dialect.name == "postgresql":
        # Two app replicas starting on one new database must not both create the tables.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
    if not _state(connection).is_empty:
        return False
    # The models and the migrations describe the same schema (a test compares them), and
    # create_all is one step where replaying every migration would be many.
    SQLModel.metadata.create_all(connection)
    MigrationContext.configure(connection).stamp(migration_scripts(), "head")
    return True


def ensure_schema(engine: Engine) -> None:
    """Make sure ``engine``'s database has the schema this code reads, before anything else uses
    it: an empty database gets it (every table, stamped at the latest migration); a database at
    the latest migration is used as it is. Raises SchemaError for any other database (behind, from
    before migrations, or from a newer version), with a message that says what to do."""
    if _stamped_at_head(engine):
        return
    state = schema_state(engine)
    if state.is_current:
        return
    if state.is_empty:
        with engine.begin() as connection:
            if _create_at_head(connection):
                return
        state = schema_state(engine)  # someone else created it meanwhile
        if state.is_current:
            return
    raise refusal(engine, state)


def _stamped_at_head(engine: Engine) -> bool:
    """Whether the database is stamped with the latest migration and nothing else, told without
    Alembic: its ``alembic_version`` row against ``_head_in_files``. False whenever either is
    unsure, and ``schema_state`` (Alembic's own reading) then decides, and words any refusal."""
    head = _head_in_files(MIGRATIONS_DIR)
    if head is None:
        return False
    with engine.connect() as connection:
        # The version table Alembic's MigrationContext reads by default (env.py names no other).
        if not inspect(connection).has_table("alembic_version"):
            return False
        stamped = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in stamped] == [head]


def _head_in_files(folder: Path) -> str | None:
    """The latest migration in ``folder``, read from the ``revision = "..."`` and ``down_revision
    = ...`` lines of its versions/*.py files (the files Alembic reads) rather than by running each
    one as Alembic does. None where a file does not state each once as a plain string on its line
    (a merge's tuple, say), where one points to a revision not there, or where there is not exactly
    one head: Alembic is asked then. Not cached: a migration written in this process
    (``new_migration``, the tests' newer code) is seen at once, and the files are few."""
    revisions: dict[str, str | None] = {}
    for path in sorted((folder / "versions").glob("*.py")):
        if path.name.startswith((".#", "__init__")):  # as Alembic skips them
            continue
        match _assigned_literals(path.read_text(encoding="utf-8")):
            case {"revision": [str(revision)], "down_revision": [str() | None as down]} if (
                revision not in revisions
            ):
                revisions[revision] = down
            case _:
                return None
    if any(down is not None and down not in revisions for down in revisions.values()):
        return None
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


# ``revision: str = "0004"`` as Alembic's template writes it, with or without the annotation. A
# regular expression, not ast.parse: parsing the migrations took tens of ms, reading lines <1 ms.
_ASSIGNED = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.*?)\s*(?:#.*)?$", re.MULTILINE
)


def _assigned_literals(source: str) -> dict[str, list[object]]:
    """Every line of ``source`` that assigns ``revision`` or ``down_revision``: the value where it
    is a literal (a string, None), ``...`` where it is anything else."""
    found: dict[str, list[object]] = {"revision": [], "down_revision": []}
    for name, value in _ASSIGNED.findall(source):
        try:
            found[name].append(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            found[name].append(...)
    return found


def _first_schema_columns() -> dict[str, set[str]]:
    """Tables and columns of the first migration, read from an in-memory database built by it."""
    from alembic import command

    scratch = create_engine("sqlite://")
    with scratch.begin() as connection:
        command.upgrade(alembic_config(connection), _base())
        inspector = inspect(connection)
        tables = {
            table: {c["name"] for c in inspector.get_columns(table)}
            for table in inspector.get_table_names()
            if table != "alembic_version"
        }
    scratch.dispose()
    return tables


def _base() -> str:
    bases = migration_scripts().get_bases()
    if len(bases) != 1:  # pragma: no cover - the package ships one line of migrations
        raise SchemaError(f"expected one first migration in {MIGRATIONS_DIR}, found {bases}")
    return bases[0]


def _differences_from_first_schema(connection: Connection) -> list[str]:
    """How the tables of ``connection``'s database differ from the first migration's."""
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    expected = _first_schema_columns()
    missing_tables = sorted(set(expected) - present)
    missing_columns, unknown_columns = [], []
    for table in sorted(set(expected) & present):
        found = {c["name"] for c in inspector.get_columns(table)}
        missing_columns += [f"{table}.{c}" for c in sorted(expected[table] - found)]
        unknown_columns += [f"{table}.{c}" for c in sorted(found - expected[table])]
    return [
        f"{what}: {', '.join(names)}"
        for what, names in (
            ("tables missing", missing_tables),
            ("columns missing", missing_columns),
            ("columns not in it", unknown_columns),
        )
        if names
    ]


def upgrade_schema(engine: Engine) -> tuple[str | None, str]:
    """Bring ``engine``'s database to the latest migration; returns (revision before, after).

    An empty database is created at the latest migration. A database from before migrations (no
    ``alembic_version`` table) is taken to be at the first migration when its tables and columns
    are that migration's (what this project made before migrations, if its models were the same
    then), and upgraded from there; a database whose tables differ is refused with the list of
    differences. Raises SchemaError for a database from a newer version.
    """
    state = schema_state(engine)
    if state.is_current:
        return state.revision, state.head
    if state.is_empty:
        ensure_schema(engine)
        return None, state.head
    if state.revision is not None and not _is_known(state.revision):
        raise refusal(engine, state)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            _upgrade_sqlite(engine, connection, state)
        else:
            with connection.begin():  # PostgreSQL's DDL is transactional: all or nothing
                _upgrade(engine, connection, state)
    return state.revision, state.head


def _upgrade(engine: Engine, connection: Connection, state: SchemaState) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    if state.revision is None:
        differences = _differences_from_first_schema(connection)
        if differences:
            raise SchemaError(
                f"The database {shown_url(engine)} was made before schema migrations and its "
                f"tables are not those of the first migration ({'; '.join(differences)}): it "
                "cannot be upgraded. Load its studies into a new database (study-monitor demo, "
                "study-monitor import)"
                + (
                    "; the embedded file can simply be deleted: `make run` rebuilds it."
                    if sqlite_path(str(engine.url)) == DEFAULT_DB_PATH
                    else "."
                )
            )
        MigrationContext.configure(connection).stamp(migration_scripts(), _base())
    command.upgrade(alembic_config(connection), "head")


def _upgrade_sqlite(engine: Engine, connection: Connection, state: SchemaState) -> None:
    """The upgrade on SQLite, where a table is altered by copying it (Alembic's batch mode):
    foreign keys are off meanwhile (they would cascade the drop of the old copy) and checked at
    the end, and the transaction is begun explicitly, as the driver leaves DDL outside it."""
    driver = connection.connection.driver_connection
    assert driver is not None
    kept_isolation = driver.isolation_level
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
    connection.commit()
    driver.isolation_level = None  # the driver's own BEGIN would come only before DML
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN")
            _upgrade(engine, connection, state)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(
                    f"upgrading {shown_url(engine)} would leave rows whose foreign key points "
                    f"nowhere ({broken[:5]}); nothing was changed"
                )
    finally:
        driver.isolation_level = kept_isolation
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def new_migration(message: str) -> Path:
    """Write a migration from ``dashboard/models.py`` to the latest migration: Alembic compares the
    models with a scratch database built by the migrations so far, so no real database is needed.
    Returns the new file (review it: autogenerate misses renames and some type changes)."""
    from alembic import command
    from alembic.script import Script

    scripts = migration_scripts()
    number = len(list(scripts.walk_revisions())) + 1
    scratch = create_engine("sqlite://")
    with scratch.begin() as connection:
        config = alembic_config(connection)
        command.upgrade(config, "head")
        written = command.revision(
            config, message=message, autogenerate=True, rev_id=f"{number:04d}"
        )
    scratch.dispose()
    migration_scripts.cache_clear()
    if not isinstance(written, Script):  # pragma: no cover - one head, one script
        raise SchemaError(f"Alembic wrote {written!r} instead of one migration")
    return Path(written.path)


# ---------------------------------------------------------------------------------------------
# Sessions and shared writes
# ---------------------------------------------------------------------------------------------


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


def lock_study_for_writing(session: Session, study_id: str) -> None:
    """Make ``session``'s transaction the only one writing ``study_id`` until it ends: call it
    first in the transaction, before reading what the write compares with. A second import of
    the study waits here until the first has committed, then sees its rows (two imports at once
    otherwise both compare with the cut before them).

    PostgreSQL: a transaction-scoped advisory lock on the study (other studies and readers go on).
    SQLite: ``BEGIN IMMEDIATE``, SQLite's one write lock for the whole database, taken now rather
    than at the first write (pysqlite begins a transaction only before the first INSERT, after the
    reads); a second writer waits up to ``SQLITE_BUSY_TIMEOUT_S``. Readers are not held up (WAL)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        key = zlib.crc32(study_id.encode()) - 2**31  # PostgreSQL's int4
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _STUDY_LOCK_SPACE, "key": key},
        )
    elif connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        if driver is not None and not driver.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


# SQLite's page cache for a connection writing a whole study (SQLite's default is 2 MB): the
# inserts of a load touch pages of every index of its tables, and with the default cache each
# touch is a read from the file. 200,000 findings of a 10,000-subject study went in 4.3 s instead
# of 6.1 s. The cache is memory of the importing process, counted in its peak.
_SQLITE_WRITE_CACHE_KIB = 64 * 1024


def cache_for_bulk_writes(session: Session) -> None:
    """Give ``session``'s connection a page cache fit for writing a whole study (SQLite; a
    PostgreSQL server keeps its own cache)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_WRITE_CACHE_KIB}")


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is another writer's lock that outlasted the wait (SQLite's "database is
    locked" after ``SQLITE_BUSY_TIMEOUT_S``; PostgreSQL's lock_not_available), not a fault."""
    cause = getattr(error, "orig", None) or error
    if getattr(cause, "sqlstate", None) == "55P03":
        return True
    said = str(cause).lower()
    return "database is locked" in said or "database is busy" in said


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def has_schema(engine: Engine) -> bool:
    """Whether the database holds this app's tables (a study table at least)."""
    return inspect(engine).has_table("study")


# The natural keys the importer gives AE, IE and DS records (importers.sdtm; DESIGN.md History),
# written in SQL for rows stored without one: the demo builders' and those stored before the column
# existed (migration 0005). A key the importer made unique with a "#n" suffix cannot be rebuilt
# here; such rows were all stored by an importer that wrote their key.
_NATURAL_KEYS = {
    "adverseevent": "s.usubjid || '/' || CASE WHEN t.seq IS NOT NULL THEN CAST(t.seq AS TEXT) "
    "ELSE t.term || '/' || COALESCE(t.start_dtc, 'None') END",
    "disposition": "s.usubjid || '/' || CASE WHEN t.seq IS NOT NULL THEN CAST(t.seq AS TEXT) "
    "ELSE COALESCE(t.term, 'None') || '/' || COALESCE(t.dtc, 'None') END",
    "eligibilityfinding": "s.usubjid || '/' || (SELECT c.code || '/' || c.protocol_version "
    "FROM criterion c WHERE c.id = t.criterion_pk)",
}


def fill_natural_keys(connection: Connection) -> None:
    """Give every AE, IE and DS row without a natural key the one the importer would have."""
    for table, key in _NATURAL_KEYS.items():
        connection.execute(
            text(
                f"UPDATE {table} AS t SET natural_key = (SELECT {key} FROM subject s "
                "WHERE s.id = t.subject_pk) WHERE t.natural_key IS NULL"
            )
        )


def delete_subject_rows(session: Session, study_id: str) -> None:
    """Remove a study's subjects and every row that hangs off them, children first (foreign keys
    are on): what an SDTM snapshot replaces, and the first step of deleting a study."""
    subject_ids = select(col(models.Subject.id)).where(col(models.Subject.study_id) == study_id)
    for child in (
        models.EligibilityFinding,
        models.Disposition,
        models.Finding,
        models.AdverseEvent,
        models.ProtocolDeviation,
        models.Exposure,
        models.Visit,
    ):
        session.execute(delete(child).where(col(child.subject_pk).in_(subject_ids)))
    session.execute(delete(models.Subject).where(col(models.Subject.study_id) == study_id))


def delete_study(session: Session, study_id: str) -> None:
    """Remove a study and every row that belongs to it, children first (foreign keys are on): what
    a demo builder does before it writes its study anew."""
    delete_subject_rows(session, study_id)
    for counts in (
        models.AdverseEventCount,
        models.BaselineCount,
        models.BaselineVariable,
        models.SiteKriCount,
        models.LabSubjectSummary,
        models.LabCount,
        models.LabBoxStats,
        models.LabGradeSummary,
        models.LiverSummary,
        models.QtlExcursion,
        models.QualityToleranceLimit,
    ):
        session.execute(delete(counts).where(col(counts.study_id) == study_id))
    cut_ids = select(col(models.DataCut.id)).where(col(models.DataCut.study_id) == study_id)
    session.execute(delete(models.CutChange).where(col(models.CutChange.cut_id).in_(cut_ids)))
    for table in (
        models.DataCut,
        models.Criterion,
        models.Arm,
        models.Site,
        models.PlannedVisit,
    ):
        session.execute(delete(table).where(col(table.study_id) == study_id))
    session.execute(delete(models.Study).where(col(models.Study.study_id) == study_id))
    # The review log's rows may go only with their study, said first (models.append_only_guards).
    session.add(models.ReviewPurge(study_id=study_id))
    session.flush()
    session.execute(delete(models.ReviewEvent).where(col(models.ReviewEvent.study_id) == study_id))
    session.execute(delete(models.ReviewPurge).where(col(models.ReviewPurge.study_id) == study_id))
