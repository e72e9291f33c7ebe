"""The pages' imports (DESIGN.md "Import direction"). ``lint-imports`` checks the package, but the
pages are scripts, not modules of it, so they are read here: a page reads data only through the
ui loaders (and the views), never a query, a session or a table."""

import ast
from pathlib import Path

import pytest

PAGES = sorted((Path(__file__).parent.parent / "pages").glob("*.py"))
# What a page must not import, itself or any module under it.
FORBIDDEN = ("dashboard.queries", "dashboard.db", "dashboard.models", "sqlmodel", "sqlalchemy")


def imported_modules(source: str) -> set[str]:
    """Every module a script imports, at any depth of its code ("from a.b import c" -> "a.b" and
    "a.b.c", since c may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def test_the_check_sees_an_import_however_it_is_written() -> None:
    source = (
        "from dashboard import queries\n"
        "def f():\n"
        "    import sqlalchemy.orm\n"
        "    from dashboard.models import Subject\n"
        "from dashboard.ui import loaders\n"
    )
    assert sorted(m for m in imported_modules(source) if forbidden(m)) == [
        "dashboard.models",
        "dashboard.models.Subject",
        "dashboard.queries",
        "sqlalchemy.orm",
    ]


def test_there_are_pages_to_check() -> None:
    assert len(PAGES) >= 6


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_reads_no_query_session_or_table(page: Path) -> None:
    offending = sorted(m for m in imported_modules(page.read_text()) if forbidden(m))
    assert offending == [], f"{page.name} imports {offending}: go through dashboard.ui loaders"
