"""Browser timings of issue #19: what a user waits for, in Chromium, on every page of a study.

Run: ``.venv/bin/python benchmarks/browser.py DATABASE_URL [--study DEMO-SCALE] [--runs 3]``
(``benchmarks/run.py`` calls ``browser_figures``).

A page is *fully drawn* when the app's script run has ended (``stApp`` reports ``notRunning``
and the connection is up), its title is there, no element is a loading skeleton or a stale
leftover of the previous run, the status widget shows no "Running...", and every chart holds its
drawn canvas or SVG (vega-embed draws after the run has ended). The time is read in the page
(``performance.now()``, which counts from the navigation's start), polled on every animation frame.

For each page of DESIGN.md (medians of ``runs``), with the server's caches warmed by one visit that
is not counted (a cold page script is ``benchmarks/run.py``'s ``cold_s``; a cold server is
``server_first_visit_s``):
- ``first_s``: the page opened in a new browser context (a new Streamlit session, an empty browser
  cache);
- ``repeat_s``: the same page reloaded in that context (a new session, the browser's cache warm);
- ``filter_s``: a site picked in the sidebar's site filter, until the page is drawn again (another
  site on every run, so the filtered figures are never already cached);
- ``floor_s``: a page that only draws a title, served by a second server started the same way,
  opened in a new context right before the page's own runs: what Streamlit and the browser cost
  whatever the app does (the floor of issue #19's targets); ``floor_repeat_s``: that page reloaded
  (the floor of a reload, shown beside: a reload of the empty page costs far less than its first
  view, whose browser cache is empty).
And ``server_first_visit_s``: a server started anew on the database, the Overview opened as soon as
it answers ``/_stcore/health``, until drawn (``server_launch_to_drawn_s``: from the process launch).

A benchmark prints figures; it does not pass or fail.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP = PROJECT_ROOT / "dashboard" / "app.py"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The browser tests' flags (tests/browser_support.py): no sandbox as root, no background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "overview": "",
    "enrollment": "enrollment",
    "screen-failures": "screen-failures",
    "baseline": "baseline",
    "adverse-events": "adverse-events",
    "site-risk": "site-risk",
}
# The Labs page (issue #21) once it exists, at ``labs?study=...`` like the others.
if (PROJECT_ROOT / "pages" / "labs.py").is_file():
    PAGES["labs"] = "labs"
# Over the browser floor (issue #19).
TARGETS = {"first_s": 1.5, "repeat_s": 0.5, "filter_s": 1.0, "server_first_visit_s": 5.0}
VIEWPORT = {"width": 1440, "height": 1000}
TIMEOUT_MS = 180_000

# The page is drawn (see the module's docstring): returns the time since the navigation began, in
# ms, or false. ``window.__runsSince`` counts the script runs begun since a widget change (set by
# ``_watch_runs``); undefined after a navigation, where the first run is the page's own.
DRAWN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  if (window.__runsSince !== undefined && window.__runsSince < 1) return false;
  if (!document.querySelector('[data-testid="stMain"] h1')) return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  if (document.querySelector('[data-stale="true"]')) return false;
  if (document.querySelector('[data-testid^="stStatusWidgetRunning"]')) return false;
  for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
    if (!chart.querySelector('canvas, svg')) return false;
  }
  return performance.now();
}"""

# Counts the script runs that begin after it is installed (the app's script state turning to
# "running"), so that a widget change is timed until its own run has ended.
WATCH_RUNS = """() => {
  window.__runsSince = 0;
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__runsSince += 1;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  return performance.now();
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def streamlit_server(
    script: Path, env: dict[str, str], log: Path
) -> Iterator[tuple[str, float, float]]:
    """``script`` served as `make run` serves the app (``dashboard/ui/serve.py``); yields its base
    URL, the ``time.perf_counter()`` of its launch and of its first answer to ``/_stcore/health``."""
    port = _free_port()
    with log.open("w") as out:
        launched = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dashboard.ui.serve",  # as `make run` starts it: the app's modules imported first
                "run",
                str(script),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = launched + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"streamlit did not start; see {log}")
                time.sleep(0.05)
            yield base, launched, time.perf_counter()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _drawn_s(page: Any) -> float:
    """Seconds from the page's navigation (or ``_watch_runs``) to fully drawn."""
    handle = page.wait_for_function(DRAWN, polling="raf", timeout=TIMEOUT_MS)
    return float(handle.json_value()) / 1000


def _check(page: Any, where: str) -> None:
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"{where}: the page shows an exception")


def open_page(browser: Any, url: str) -> tuple[Any, float]:
    """A new browser context on ``url``: the context and the seconds until drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url, wait_until="commit")
    seconds = _drawn_s(page)
    _check(page, url)
    return context, seconds


def reload_page(page: Any) -> float:
    page.reload(wait_until="commit")
    seconds = _drawn_s(page)
    _check(page, page.url)
    return seconds


def pick_site(page: Any, index: int) -> float:
    """Pick the ``index``-th site offered by the sidebar's site filter; seconds from the pick
    until the page is drawn again."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    box = sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text="Sites")
    box.locator("input").click()
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=TIMEOUT_MS)
    option = options.nth(index % options.count())
    started = float(page.evaluate(WATCH_RUNS))
    option.click()
    seconds = _drawn_s(page) - started / 1000
    page.keyboard.press("Escape")
    _check(page, page.url)
    return seconds


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _empty_page(folder: Path) -> Path:
    script = folder / "empty.py"
    script.write_text("import streamlit as st\n\nst.title('Empty')\n", encoding="utf-8")
    return script


def browser_figures(db_url: str, study_id: str, runs: int = 3) -> dict[str, Any]:
    """The browser figures of issue #19 on ``study_id`` in ``db_url`` (medians of ``runs``):
    ``{"browser": {page: {"first_s", "repeat_s", "filter_s", "floor_s", "floor_repeat_s"}},
    "server_first_visit_s": float, "server_launch_to_drawn_s": float}``."""
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "DATABASE_URL": db_url}
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as name:
        folder = Path(name)
        empty = _empty_page(folder)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                first_visits, from_launch = [], []
                for run in range(runs):
                    with streamlit_server(APP, env, folder / f"first-{run}.log") as (
                        base,
                        launched,
                        healthy,
                    ):
                        context, _ = open_page(browser, f"{base}/?study={study_id}")
                        drawn = time.perf_counter()
                        context.close()
                    first_visits.append(drawn - healthy)
                    from_launch.append(drawn - launched)
                pages = _page_figures(browser, env, folder, empty, study_id, runs)
            finally:
                browser.close()
    return {
        "browser": pages,
        "server_first_visit_s": _median(first_visits),
        "server_launch_to_drawn_s": _median(from_launch),
    }


def _page_figures(
    browser: Any, env: dict[str, str], folder: Path, empty: Path, study_id: str, runs: int
) -> dict[str, dict[str, float]]:
    with (
        streamlit_server(APP, env, folder / "app.log") as (base, _, _),
        streamlit_server(empty, env, folder / "empty.log") as (empty_base, _, _),
    ):
        context, _ = open_page(browser, empty_base)  # the empty server's first run, not counted
        context.close()
        figures = {}
        for name, path in PAGES.items():
            url = f"{base}/{path}?study={study_id}"
            context, _ = open_page(browser, url)  # the server's caches for this page
            context.close()
            times: dict[str, list[float]] = {
                "first_s": [],
                "repeat_s": [],
                "filter_s": [],
                "floor_s": [],
                "floor_repeat_s": [],
            }
            for run in range(runs):
                context, seconds = open_page(browser, empty_base)
                times["floor_s"].append(seconds)
                times["floor_repeat_s"].append(reload_page(context.pages[0]))
                context.close()
                context, seconds = open_page(browser, url)
                times["first_s"].append(seconds)
                page = context.pages[0]
                times["repeat_s"].append(reload_page(page))
                times["filter_s"].append(pick_site(page, run))
                context.close()
            figures[name] = {key: _median(values) for key, values in times.items()}
            print(f"  {name}: {figures[name]}", file=sys.stderr, flush=True)
    return figures


def print_table(figures: dict[str, Any]) -> None:
    print(
        f"{'page':16} {'first s':>8} {'repeat s':>9} {'filter s':>9} {'floor s':>8}"
        f" {'(reload)':>8}  first<=floor+1.5 repeat<=floor+0.5 filter<=floor+1.0"
    )
    for name, f in figures["browser"].items():
        checks = [
            f[key] <= f["floor_s"] + TARGETS[key] for key in ("first_s", "repeat_s", "filter_s")
        ]
        marks = "".join(f"{'✓' if ok else '✗':>18}" for ok in checks)
        print(
            f"{name:16} {f['first_s']:8.2f} {f['repeat_s']:9.2f} {f['filter_s']:9.2f} "
            f"{f['floor_s']:8.2f} {f['floor_repeat_s']:8.2f}{marks}"
        )
    first = figures["server_first_visit_s"]
    mark = "✓" if first <= TARGETS["server_first_visit_s"] else "✗"
    print(
        f"first visit after the server starts: {first:.2f} s from its health answer (target 5) "
        f"{mark}; {figures['server_launch_to_drawn_s']:.2f} s from its launch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db_url", help="a database holding the study, e.g. sqlite:///scale.db")
    parser.add_argument("--study", default="DEMO-SCALE")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = browser_figures(args.db_url, args.study, args.runs)
    print_table(figures)


if __name__ == "__main__":
    main()
