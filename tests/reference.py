"""Where the public reference data is: ``../shared`` beside the project (its ``data/`` and
``seeds/``). A clone made elsewhere (CI clones main into a temporary folder) finds it beside the
repository it was cloned from; ``STUDY_MONITOR_SHARED`` names it outright."""

import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _origin_folder() -> Path | None:
    """The local repository this one was cloned from (None: no origin, or a remote one)."""
    try:
        found = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not found or "://" in found or found.startswith("git@"):
        return None
    return Path(found).expanduser().resolve()


def shared_folder() -> Path:
    named = os.environ.get("STUDY_MONITOR_SHARED")
    if named:
        return Path(named)
    beside = PROJECT_ROOT.parent / "shared"
    if beside.is_dir():
        return beside
    origin = _origin_folder()
    if origin is not None and (origin.parent / "shared").is_dir():
        return origin.parent / "shared"
    return beside


SHARED = shared_folder()
SHARED_DATA = SHARED / "data"
