"""The command line starts at once (issue #19): `study-monitor --help` imports no heavy module, and
`summary` neither Alembic nor what only the pages and the pack draw with.

Not timed (the benchmark measures the seconds, benchmarks/cli_start.py): what is checked is the
cause of a slow start, the modules loaded. Each one below costs a tenth of a second or more to
import.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from dashboard import access, db
from dashboard.cli import Role
from dashboard.models import ROLES

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("pandas", "numpy", "sqlalchemy", "sqlmodel", "alembic", "streamlit", "altair", "scipy")

# The help of the command, of a group and of a command in it, as a user asks for them; the modules
# loaded are printed once the help is written.
LOADED_AFTER_HELP = """
import json, sys
from dashboard.cli import app
for args in (["--help"], ["user", "--help"], ["summary", "--help"]):
    try:
        app(args)
    except SystemExit as done:
        assert done.code == 0, (args, done.code)
print(json.dumps(sorted(sys.modules)))
"""


# `summary --json` on a database at the latest migration: the database and pandas, not Alembic (the
# revision is read from its table), scipy (the forecast), nor the charts' and the app's modules.
LOADED_AFTER_SUMMARY = """
import json, sys
from dashboard.cli import app
try:
    app(["summary", "--study", "NCT06466850", "--json", "--db", sys.argv[1]])
except SystemExit as done:
    assert done.code == 0, done.code
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded(script: str, *args: str) -> list[str]:
    # The repository first on the path, and run from it: the code under test, not an installed one.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_help_imports_no_heavy_module() -> None:
    loaded = _modules_loaded(LOADED_AFTER_HELP)
    assert "dashboard.cli" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_summary_imports_neither_alembic_nor_the_forecast_or_the_charts(demo_db_url: str) -> None:
    loaded = _modules_loaded(LOADED_AFTER_SUMMARY, demo_db_url)
    assert "dashboard.views.overview" in loaded
    unneeded = ("alembic", "scipy", "altair", "streamlit", "reportlab", "openpyxl")
    assert sorted(m for m in loaded if m.split(".")[0] in unneeded) == []


def test_the_role_choices_are_the_access_roles() -> None:
    # cli.Role spells the roles out so that --help needs no database module.
    assert tuple(role.value for role in Role) == ROLES
    assert [role.value for role in Role] == [
        access.ADMIN,
        access.SPONSOR,
        access.MONITOR,
        access.INVESTIGATOR,
    ]


# -- the latest migration, read without Alembic (db._head_in_files) -----------------------------

EXTRA_MIGRATION = """\"\"\"A later migration (it changes nothing)\"\"\"

revision = "9000"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
"""


def _copy_of_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _alembic_head(folder: Path) -> str | None:
    return ScriptDirectory(str(folder)).get_current_head()


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert db._head_in_files(db.MIGRATIONS_DIR) == _alembic_head(db.MIGRATIONS_DIR)
    assert db._head_in_files(db.MIGRATIONS_DIR) is not None


def test_a_newer_migration_is_the_head(tmp_path: Path) -> None:
    folder = _copy_of_migrations(tmp_path)
    latest = _alembic_head(folder)
    (folder / "versions" / "9000_probe.py").write_text(EXTRA_MIGRATION.format(down=f'"{latest}"'))
    assert _alembic_head(folder) == "9000"
    assert db._head_in_files(folder) == "9000"


@pytest.mark.parametrize(
    "down",
    [
        '("0003", "0004")',  # a merge: Alembic decides
        '"00" + "04"',  # an expression, not a literal
        '"no-such-revision"',  # points nowhere
        '"0004"\ndown_revision = "0003"',  # stated twice
    ],
)
def test_the_files_leave_it_to_alembic_when_unsure(tmp_path: Path, down: str) -> None:
    folder = _copy_of_migrations(tmp_path)
    (folder / "versions" / "9000_probe.py").write_text(EXTRA_MIGRATION.format(down=down))
    assert db._head_in_files(folder) is None


def test_two_heads_or_none_leave_it_to_alembic(tmp_path: Path) -> None:
    folder = _copy_of_migrations(tmp_path)
    latest = _alembic_head(folder)
    assert latest is not None
    # A second branch from the same parent: two heads.
    for revision in ("9000", "9001"):
        (folder / "versions" / f"{revision}_probe.py").write_text(
            EXTRA_MIGRATION.format(down=f'"{latest}"').replace('"9000"', f'"{revision}"')
        )
    assert db._head_in_files(folder) is None
    for path in (folder / "versions").glob("*.py"):
        path.unlink()
    assert db._head_in_files(folder) is None
