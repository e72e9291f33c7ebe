"""Settings from the environment. No streamlit import: the CLI and the tests read these too."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_DB_PATH = DATA_DIR / "study-monitor.db"
DEFAULT_STUDY_ID = "NCT06466850"


def database_url() -> str:
    """``DATABASE_URL`` if set, else the embedded SQLite file under ``data/``."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_DB_PATH}"


def default_study_id() -> str:
    """The study a session opens on when the URL names none (``STUDY_MONITOR_STUDY``)."""
    return os.environ.get("STUDY_MONITOR_STUDY") or DEFAULT_STUDY_ID


def sign_in_required() -> bool:
    """``STUDY_MONITOR_REQUIRE_SIGN_IN`` set (to anything but 0/false/no): the app refuses to run in
    local mode, so a server whose ``[auth]`` secrets went missing fails closed instead of open."""
    value = os.environ.get("STUDY_MONITOR_REQUIRE_SIGN_IN", "").strip().lower()
    return value not in ("", "0", "false", "no")
