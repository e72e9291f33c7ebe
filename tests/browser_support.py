"""Real-browser test support: Debian Chromium driven by Playwright, and the app served by
`streamlit run` on a copy of the demo database (with the CDISC pilot beside it where the reference
data are there). Fixtures are registered in conftest.py, so every browser test module shares one
browser and one server.

A missing Chromium skips the browser tests with a reason, except in CI (CI=true), where it fails.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm
from tests.databases import copy_database
from tests.reference import SHARED_DATA

PROJECT_ROOT_DIR = Path(__file__).resolve().parent.parent
SHARED = SHARED_DATA

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT_DIR / "tests" / "artifacts"
# Flags the machine needs: no sandbox as root, and no background calls to hosts it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def server(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`streamlit run dashboard/app.py` on a free port, on a copy of the demo database (the upload
    test writes to it)."""
    copy = copy_database(demo_db_url, tmp_path_factory.mktemp("browser"), "browser")
    pilot = SHARED / "sdtm" / "cdiscpilot01"
    if pilot.is_dir():  # the CDISC pilot beside the demos, for the pages that must serve it too
        engine = make_engine(copy)
        import_sdtm(engine, pilot)
        engine.dispose()
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(
        env={**os.environ, "DATABASE_URL": copy}, log=ARTIFACTS / "server.log"
    ) as base:
        yield base


@contextmanager
def streamlit_server(
    *, env: dict[str, str], log: Path, cwd: Path = PROJECT_ROOT_DIR, port: int | None = None
) -> Iterator[str]:
    """`streamlit run dashboard/app.py` with ``env``, from ``cwd`` (whose .streamlit/ folder holds
    the config and secrets it reads), on ``port`` (default: a free one); yields its base URL once
    it answers, and stops it after."""
    port = port or free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(PROJECT_ROOT_DIR / "dashboard" / "app.py"),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                # A source edit during a run must not reload the app under the test.
                "--server.fileWatcherType",
                "none",
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start; see {log}")
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def settle(page: Any, *, chart: bool = False) -> None:
    """Wait until the app run has finished: a title drawn, no element still a loading skeleton,
    and (where the page has one) a chart drawn."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.wait_for_selector("h1", timeout=30_000)
    page.wait_for_selector('[data-testid="stMetric"]', timeout=30_000)
    if chart:
        page.wait_for_selector(
            '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
            timeout=30_000,
        )
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0",
        timeout=30_000,
    )
    idle(page)


def idle(page: Any) -> None:
    """Wait until no run is going: a rerun still going (a widget just changed) replaces what is
    drawn, download buttons' files with it."""
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid^=\"stStatusWidgetRunning\"]').length === 0",
        timeout=60_000,
    )
    page.wait_for_timeout(300)


def upload(uploader: Any, *paths: Path) -> None:
    """Put ``paths`` in a file uploader and wait until they are uploaded and the app has rerun:
    a file's chip shows before its upload ends, and a button clicked before then runs the page
    without the file."""
    uploader.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [str(path) for path in paths]
    )
    for path in paths:
        uploader.get_by_text(path.name).first.wait_for(timeout=30_000)
    uploader.locator('[data-testid="stFileChipIconSpinner"]').first.wait_for(
        state="detached", timeout=60_000
    )
    idle(uploader.page)
