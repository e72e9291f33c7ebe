"""Regenerate the README's screenshots from a real browser, at 1280 px wide.

    .venv/bin/python docs/screenshots.py

Builds a new database with the two demo studies (and the CDISC pilot where ../shared/data holds
it), serves the app on it with ``streamlit run``, opens each page in Debian's Chromium and writes
``docs/<name>.png``. The README embeds these files, so what it shows is what a browser draws from
today's code, not a picture kept from an older layout.
"""

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.db import make_engine  # noqa: E402
from dashboard.importers.run import import_sdtm  # noqa: E402
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, settle, streamlit_server  # noqa: E402
from tests.conftest import build_demo_database  # noqa: E402
from tests.reference import SHARED_DATA  # noqa: E402

WIDTH = 1280
HEIGHT = 900
# README name -> (page path, study, whether the page draws a chart to wait for)
SHOTS: dict[str, tuple[str, str, bool]] = {
    "overview": ("", "NCT06466850", False),
    "enrollment": ("enrollment", "DEMO-MULTI", True),
    "screen-failures": ("screen-failures", "NCT06466850", True),
    "adverse-events": ("adverse-events", "DEMO-MULTI", True),
    "site-risk": ("site-risk", "DEMO-MULTI", True),
}


def _shoot(browser: Any, base: str, folder: Path) -> None:
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    for name, (path, study, chart) in SHOTS.items():
        page.goto(f"{base}/{path}?study={study}")
        settle(page, chart=chart)
        page.wait_for_timeout(1000)  # Vega's canvas fades in after the run has finished
        if page.locator('[data-testid="stException"]').count():
            raise SystemExit(f"{name}: the page shows an exception; no screenshot written")
        # The first screen, as a reader of the README would see it on opening the page.
        page.screenshot(path=str(folder / f"{name}.png"))
        print(f"docs/{name}.png: {path or 'overview'}?study={study} at {WIDTH} px")
    page.close()


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = build_demo_database(Path(tmp))
        pilot = SHARED_DATA / "sdtm" / "cdiscpilot01"
        if pilot.is_dir():
            engine = make_engine(url)
            import_sdtm(engine, pilot)
            engine.dispose()
        env = {"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "HOME": tmp}
        with (
            streamlit_server(env=env, log=Path(tmp) / "server.log") as base,
            sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                _shoot(browser, base, ROOT / "docs")
            finally:
                browser.close()


if __name__ == "__main__":
    main()
