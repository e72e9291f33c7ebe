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
from pathlib import Path
from typing import Any

import pytest

from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm

PROJECT_ROOT_DIR = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT_DIR.parent / "shared" / "data"

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


def _free_port() -> int:
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
    copy = tmp_path_factory.mktemp("browser") / "demo.db"
    shutil.copy(demo_db_url.removeprefix("sqlite:///"), copy)
    pilot = SHARED / "sdtm" / "cdiscpilot01"
    if pilot.is_dir():  # the CDISC pilot beside the demos, for the pages that must serve it too
        import_sdtm(make_engine(f"sqlite:///{copy}"), pilot)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{copy}"}
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "dashboard/app.py",
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=PROJECT_ROOT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
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
                process.kill()
                pytest.fail(f"streamlit did not start; see {log}")
            time.sleep(0.3)
        yield base
        process.terminate()
        process.wait(timeout=10)


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
    page.wait_for_timeout(300)
