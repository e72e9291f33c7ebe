"""The command line starts at once (issue #19): `study-monitor --help` imports no heavy module.

Not timed (the benchmark measures the seconds, benchmarks/cli_start.py): what is checked is the
cause of a slow start, the modules loaded. Each one below costs a tenth of a second or more to
import.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from dashboard import access
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


def test_the_role_choices_are_the_access_roles() -> None:
    # cli.Role spells the roles out so that --help needs no database module.
    assert tuple(role.value for role in Role) == ROLES
    assert [role.value for role in Role] == [
        access.ADMIN,
        access.SPONSOR,
        access.MONITOR,
        access.INVESTIGATOR,
    ]
