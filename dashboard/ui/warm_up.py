"""The warm-up of a new server process: the modules every page imports, imported once in the
background after the first page a visitor opened is drawn.

Streamlit has no start hook: a process imports nothing of the app until its first session runs
``dashboard/app.py``, and each page's modules (views, metrics, charts, scipy) only when the page
is first opened, a second or more each on a busy machine. The first page is drawn first (a thread
importing beside it would hold the interpreter it needs), then the others' imports are done while
the visitor reads it, so the next page opened does not pay them. Nothing is read from the
database here: what a page caches depends on the viewer's rights, which only its own run knows.
"""

import ast
import importlib
import importlib.util
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import streamlit as st

LOGGER = logging.getLogger(__name__)


def imported_modules(scripts: Iterable[Path]) -> list[str]:
    """The absolute modules the page scripts import, in the order first met; for ``from a
    import b``, both ``a`` and ``a.b`` (which may be a name rather than a module)."""
    found: dict[str, None] = {}
    for script in scripts:
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update((alias.name, None) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found[node.module] = None
                found.update((f"{node.module}.{alias.name}", None) for alias in node.names)
    return list(found)


def import_all(modules: list[str]) -> None:
    for module in modules:
        try:
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
        except ModuleNotFoundError:  # a name imported from a module, not a module
            continue
        except Exception:  # a warm-up only: the page that needs the module reports the failure
            LOGGER.warning("warm-up: %s could not be imported", module, exc_info=True)


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def app_scripts() -> list[Path]:
    """The entry point and every page script Streamlit may run."""
    return [PROJECT_ROOT / "dashboard" / "app.py", *sorted((PROJECT_ROOT / "pages").glob("*.py"))]


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Import the modules of the app's scripts in a background thread, once per process."""
    modules = imported_modules(app_scripts())
    thread = threading.Thread(target=import_all, args=(modules,), name="warm-up", daemon=True)
    thread.start()
    return thread
