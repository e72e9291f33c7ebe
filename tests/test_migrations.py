"""Schema migrations: the migrations build exactly the models' schema; an empty database is created
at the latest migration by any entry point; a database whose schema is behind (or from before
migrations) is refused by the CLI and the app with a message naming `study-monitor db upgrade`, and
that command fixes it. Each test runs on SQLite, and on PostgreSQL where TEST_POSTGRES_URL is set."""

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text
from sqlmodel import SQLModel
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

import dashboard.db
from dashboard.cli import app
from dashboard.db import (
    SchemaError,
    alembic_config,
    ensure_schema,
    make_engine,
    schema_state,
    session_scope,
)
from dashboard.demo import build_seed_study
from tests.conftest import PROJECT_ROOT
from tests.databases import new_database_url

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
UPGRADE = "study-monitor db upgrade"
runner = CliRunner()

# The package's latest migration, and a migration after it for the tests only (PROBE). On SQLite
# the probe alters the study table by copying it, with subjects, sites and cuts pointing at it: the
# case where foreign keys must be off meanwhile.
HEAD = dashboard.db.migration_scripts().get_current_head()
assert HEAD is not None
PROBE = f"{int(HEAD) + 1:04d}"
SECOND_MIGRATION = f'''"""a probe column

Revision ID: {PROBE}
Revises: {HEAD}
"""

import sqlalchemy as sa
from alembic import op

revision = "{PROBE}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("study", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(sa.Column("probe", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("study") as batch:
        batch.drop_column("probe")
'''


def _use_migrations(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard.db, "MIGRATIONS_DIR", folder)
    dashboard.db.migration_scripts.cache_clear()


@pytest.fixture
def newer_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The package's migrations plus SECOND_MIGRATION, in place of the package's own: the code
    has moved on, so a database at the package's latest migration is now behind."""
    folder = tmp_path / "migrations"
    shutil.copytree(
        dashboard.db.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    (folder / "versions" / f"{PROBE}_probe.py").write_text(SECOND_MIGRATION)
    _use_migrations(folder, monkeypatch)
    yield folder
    dashboard.db.migration_scripts.cache_clear()


@pytest.fixture
def seed_db(tmp_path: Path) -> str:
    """A database at the package's latest migration, holding the NCT06466850 demo study."""
    url = new_database_url(tmp_path, "seed")
    engine = make_engine(url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_seed_study(session)
    engine.dispose()
    return url


def _app_error(url: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return str(at.error[0].value) if at.error else None


def _enrolled(url: str) -> int:
    result = runner.invoke(app, ["summary", "--study", "NCT06466850", "--json", "--db", url])
    assert result.exit_code == 0, result.stderr
    return int(json.loads(result.stdout)["enrolled"])


# -- the migrations and the models ------------------------------------------------------------


def _differences(url: str, metadata: MetaData) -> list[Any]:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences: list[Any] = compare_metadata(context, metadata)
    engine.dispose()
    return differences


def test_the_migrations_build_the_models_schema(tmp_path: Path) -> None:
    # Fails when dashboard/models.py changes without a migration: add one with
    # `study-monitor db revision -m "..."` (README, "Database").
    url = new_database_url(tmp_path, "migrated")
    engine = make_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    engine.dispose()
    assert _differences(url, SQLModel.metadata) == []

    # The comparison sees a change: one more table in the models would be reported.
    extended = MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(extended)
    Table("not_migrated", extended, Column("id", Integer, primary_key=True))
    assert [d[0] for d in _differences(url, extended)] == ["add_table"]


def test_an_empty_database_is_created_at_the_latest_migration(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "new")
    engine = make_engine(url)
    assert schema_state(engine).is_empty
    result = runner.invoke(app, ["demo", "--db", url])
    assert result.exit_code == 0, result.stderr
    state = schema_state(engine)
    assert state.is_current and state.revision == state.head
    assert _differences(url, SQLModel.metadata) == []
    engine.dispose()


def test_the_app_creates_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_database_url(tmp_path, "app-new")
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.info[0].value.startswith("No study in the database yet")
    assert schema_state(make_engine(url)).is_current


# -- a database behind the code ----------------------------------------------------------------


def test_a_database_behind_is_refused_until_db_upgrade(
    seed_db: str, newer_code: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine = make_engine(seed_db)
    assert (schema_state(engine).revision, schema_state(engine).head) == (HEAD, PROBE)

    for args in (
        ["summary", "--json"],
        ["demo"],
        ["import", "ctgov", str(PROJECT_ROOT / "dashboard" / "studies" / "NCT06466850.json")],
        ["import", "sdtm", str(tmp_path)],
    ):
        refused = runner.invoke(app, [*args, "--db", seed_db])
        assert refused.exit_code == 2, (args, refused.stdout, refused.stderr)
        assert UPGRADE in refused.stderr and f"revision {HEAD}" in refused.stderr, args
        assert "Traceback" not in refused.stderr
    error = _app_error(seed_db, monkeypatch)
    assert error is not None and UPGRADE in error
    current = runner.invoke(app, ["db", "current", "--db", seed_db])
    assert current.exit_code == 0 and f"revision {HEAD}, behind the {PROBE}" in current.stdout
    with pytest.raises(SchemaError, match=UPGRADE):
        ensure_schema(engine)
    assert schema_state(engine).revision == HEAD  # refusing changed nothing

    upgraded = runner.invoke(app, ["db", "upgrade", "--db", seed_db])
    assert upgraded.exit_code == 0, upgraded.stderr
    assert f"from schema revision {HEAD} to {PROBE}" in upgraded.stdout
    assert schema_state(engine).is_current
    assert "probe" in {c["name"] for c in inspect(engine).get_columns("study")}
    assert _enrolled(seed_db) == 20  # the study came through the copy of its table
    assert _app_error(seed_db, monkeypatch) is None

    again = runner.invoke(app, ["db", "upgrade", "--db", seed_db])
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    current = runner.invoke(app, ["db", "current", "--db", seed_db])
    assert f"schema revision {PROBE}, latest {PROBE} (current)" in current.stdout
    engine.dispose()


def test_db_upgrade_needs_no_option_with_database_url(
    seed_db: str, newer_code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", seed_db)
    assert runner.invoke(app, ["summary", "--json"]).exit_code == 2
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["summary", "--json"]).exit_code == 0


# -- databases from before migrations, and from a newer version ---------------------------------


def test_a_database_from_before_migrations_is_stamped_and_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What this project made before migrations: the first migration's tables, no alembic_version.
    url = new_database_url(tmp_path, "pre-alembic")
    engine = make_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(SchemaError, match="before schema migrations"):
        ensure_schema(engine)
    refused = runner.invoke(app, ["demo", "--db", url])
    assert refused.exit_code == 2 and UPGRADE in refused.stderr
    error = _app_error(url, monkeypatch)
    assert error is not None and UPGRADE in error

    upgraded = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "from schema revision none (before migrations)" in upgraded.stdout
    assert schema_state(engine).is_current
    assert runner.invoke(app, ["demo", "--db", url]).exit_code == 0
    assert _enrolled(url) == 20
    engine.dispose()


def test_a_database_from_before_migrations_with_other_tables_is_not_stamped(
    tmp_path: Path,
) -> None:
    url = new_database_url(tmp_path, "old-shape")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE study (study_id VARCHAR PRIMARY KEY)"))
    refused = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert refused.exit_code == 2
    assert "cannot be upgraded" in refused.stderr
    assert "tables missing: adverseevent, " in refused.stderr and ", subject, " in refused.stderr
    assert "columns missing: study.allocation, " in refused.stderr
    assert ", study.title)" in refused.stderr
    assert schema_state(engine).revision is None  # nothing stamped
    engine.dispose()


def test_a_database_from_a_newer_version_is_refused(seed_db: str) -> None:
    engine = make_engine(seed_db)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for args in (["summary", "--json"], ["db", "upgrade"]):
        refused = runner.invoke(app, [*args, "--db", seed_db])
        assert refused.exit_code == 2
        assert "revision 9999" in refused.stderr and "newer version" in refused.stderr
    engine.dispose()


# -- adding a migration --------------------------------------------------------------------------


def test_db_revision_writes_a_migration_in_the_project_style(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no migration yet, the new one is the whole schema: every table of the models.
    folder = tmp_path / "migrations"
    shutil.copytree(
        dashboard.db.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    for old in (folder / "versions").glob("*.py"):
        old.unlink()
    _use_migrations(folder, monkeypatch)
    try:
        result = runner.invoke(app, ["db", "revision", "-m", "every table"])
    finally:
        dashboard.db.migration_scripts.cache_clear()
    assert result.exit_code == 0, result.stderr
    (written,) = (folder / "versions").glob("*.py")
    assert written.name == "0001_every_table.py"
    source = written.read_text()
    for table in SQLModel.metadata.tables:
        assert f'op.create_table(\n        "{table}",' in source, table
    ruff = Path(sys.executable).parent / "ruff"
    lint = subprocess.run(
        [str(ruff), "check", "--no-cache", str(written)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert lint.returncode == 0, lint.stdout
