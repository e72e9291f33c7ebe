"""`make run` really works: it creates the demo database and serves the dashboard, on 127.0.0.1
only.

Run from the project with overrides (`make run PORT=<free port> DB=<temporary file>`), so it never
touches the developer's data/ nor a running app on 8501. The project environment is already there
(the suite runs in it), so make only checks it and goes straight to the database and the server.
"""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, free_port, settle
from tests.conftest import PROJECT_ROOT

STUDY = "NCT06466850"
STARTUP_TIMEOUT = 300  # seconds: a stale .venv makes `uv sync` run first
CLI = PROJECT_ROOT / ".venv" / "bin" / "study-monitor"


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    db: Path  # the database make created
    seconds: float  # from `make run` to the first answer of the health endpoint
    group: int  # the process group of make and the server


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode("utf-8", "replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop make and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            # make is gone; give streamlit (same group) the same signal and a moment to exit.
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                os.killpg(process.pid, 0)  # raises ProcessLookupError once the group is empty
                time.sleep(0.2)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    folder = tmp_path_factory.mktemp("make-run")
    db = folder / "data" / "study-monitor.db"
    port = free_port()
    log = folder / "make-run.log"
    # Not the suite's database, nor flags of an outer `make test`.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STUDY_MONITOR_STUDY")
    }
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}", f"DB={db}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
        try:
            base = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if _get(f"{base}/_stcore/health")[0] == 200:
                        break
                except OSError:
                    pass
                if process.poll() is not None:
                    pytest.fail(
                        f"make run exited ({process.returncode}) before serving:\n"
                        + log.read_text(errors="replace")[-3000:]
                    )
                if time.monotonic() - started > STARTUP_TIMEOUT:
                    pytest.fail(
                        f"make run did not serve within {STARTUP_TIMEOUT} s:\n"
                        + log.read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.3)
            seconds = time.monotonic() - started
            print(f"make run served after {seconds:.1f} s")
            yield Served(base=base, db=db, seconds=seconds, group=process.pid)
        finally:
            _stop(process)


def test_make_run_creates_the_demo_database_and_serves(served: Served) -> None:
    status, page = _get(f"{served.base}/?study={STUDY}")
    assert status == 200
    assert '<div id="root">' in page  # Streamlit's app page, not an error page

    # The database make created before the server started, with the seed study in it.
    assert served.db.is_file()
    with sqlite3.connect(served.db) as raw:
        (registry_id, target), *_ = raw.execute(
            "SELECT registry_id, planned_enrollment FROM study WHERE study_id = ?", (STUDY,)
        ).fetchall()
        screened = raw.execute(
            "SELECT count(*) FROM subject WHERE study_id = ?", (STUDY,)
        ).fetchone()[0]
        assigned = raw.execute(
            "SELECT count(*) FROM subject WHERE study_id = ? AND arm_code IS NOT NULL "
            "AND upper(arm_code) NOT IN ('', 'SCRNFAIL', 'NOTASSGN')",
            (STUDY,),
        ).fetchone()[0]

    # The CLI sees it at once, and its figures are the database's.
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [str(CLI), "summary", "--json", "--db", f"sqlite:///{served.db}"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["registry_id"] == registry_id == STUDY
    assert summary["planned_enrollment"] == target == 20
    assert summary["sites"] == 1
    assert summary["screened"] == screened
    assert summary["enrolled"] == assigned == 20  # the seed study enrolls its target of 20


def _group_environments(group: int) -> dict[str, dict[str, str]]:
    """The command lines and environments of the processes in process group ``group`` (Linux):
    make, the shell running the recipe and the server."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The fields after the command name, which is in parentheses and may hold spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:
                continue
            argv = (stat.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
            raw = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
        found[" ".join(argv).strip()] = {key: value for key, _, value in pairs}
    return found


def test_the_server_reads_the_database_make_created(served: Served) -> None:
    """The DB override reaches the server too: it runs on the temporary file, so the developer's
    data/study-monitor.db is neither read nor created."""
    if not Path("/proc/self/environ").exists():
        pytest.skip("no /proc to read the server's environment from")
    servers = {  # the server itself, not the shell whose command line names it
        cmd: env
        for cmd, env in _group_environments(served.group).items()
        if "dashboard.ui.serve run" in cmd
        and Path(cmd.split()[0]).name not in ("sh", "bash", "dash")
    }
    assert servers, "no streamlit process in make's process group"
    for env in servers.values():
        assert env.get("DATABASE_URL") == f"sqlite:///{served.db}"


def _listening(port: int) -> set[str]:
    """The local addresses that listen on TCP ``port`` (Linux /proc/net/tcp and tcp6), in hex
    as the kernel writes them: 0100007F is 127.0.0.1, 00000000 any IPv4 address."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_make_run_listens_on_this_machine_only(served: Served) -> None:
    """Streamlit listens on every interface by default: `make run` binds it to 127.0.0.1 unless
    told otherwise (`make run ADDRESS=0.0.0.0`)."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening sockets from")
    servers = [
        cmd
        for cmd in _group_environments(served.group)
        if "dashboard.ui.serve run" in cmd
        and Path(cmd.split()[0]).name not in ("sh", "bash", "dash")
    ]
    assert servers and all("--server.address 127.0.0.1" in cmd for cmd in servers), servers
    port = int(served.base.rsplit(":", 1)[1])
    assert _listening(port) == {"0100007F"}  # 127.0.0.1, and no other address, IPv4 or IPv6


@pytest.mark.browser
def test_make_run_serves_the_overview(served: Served, browser: Any) -> None:
    """In a real browser: the Overview of the seed study, from the database make created."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{served.base}/?study={STUDY}")
        settle(page)
        # The first run of a new server computes every view cold (the site risk scores among them):
        # wait for the study's identity, drawn last.
        page.get_by_text("Target enrollment: 20").wait_for(timeout=120_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "make-run-overview.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        with sqlite3.connect(served.db) as raw:
            title = raw.execute("SELECT title FROM study WHERE study_id = ?", (STUDY,)).fetchone()
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert title[0] and title[0] in text
        assert "Target enrollment: 20" in text
        assert "20 / 20" in text  # enrolled / target
        assert f"study={STUDY}" in page.url
    finally:
        page.close()
