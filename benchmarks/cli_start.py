"""How long the command line takes, as a user waits for it (issue #19): whole processes, wall time.

Run: ``.venv/bin/python benchmarks/cli_start.py [--runs N]`` (imports the CDISC pilot into a
temporary database first). ``cli_figures`` is what ``benchmarks/run.py`` calls. A benchmark prints
figures; it does not pass or fail.

Each command is run once before it is timed, and without PYTHONDONTWRITEBYTECODE: that first run
compiles the modules and writes their bytecode, as a user's first run after installing does, and
the runs timed are the ones a user makes every day after it. (With bytecode writing switched off,
every run would compile the project's modules anew, some 0.5 s a run no user pays.)
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = str(Path(sys.executable).parent / "study-monitor")
PILOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "sdtm" / "cdiscpilot01"
PILOT_STUDY = "CDISCPILOT01"
TARGETS = {"cli_help_s": 0.5, "cli_summary_s": 1.5}


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def median_wall(command: list[str], runs: int) -> float:
    """The median wall time, in seconds, of ``command`` run as a process of its own ``runs`` times
    (it must succeed), after one run that is not counted."""
    env = _environment()
    subprocess.run(command, check=True, capture_output=True, env=env)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def cli_figures(pilot_db_url: str | None, runs: int = 5) -> dict[str, float | None]:
    """``cli_help_s``: the median wall time of ``study-monitor --help``; ``cli_summary_s``: of
    ``study-monitor summary --study CDISCPILOT01 --json --db pilot_db_url`` (None without a pilot
    database)."""
    figures: dict[str, float | None] = {"cli_help_s": median_wall([CLI, "--help"], runs)}
    figures["cli_summary_s"] = (
        median_wall([CLI, "summary", "--study", PILOT_STUDY, "--json", "--db", pilot_db_url], runs)
        if pilot_db_url
        else None
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        url = None
        if PILOT.is_dir():
            url = f"sqlite:///{folder}/pilot.db"
            subprocess.run(
                [CLI, "import", "sdtm", str(PILOT), "--db", url],
                check=True,
                capture_output=True,
                env=_environment(),
            )
        else:
            print(f"no CDISC pilot at {PILOT}: the summary is not timed")
        figures = cli_figures(url, runs=args.runs)
    for key, target in TARGETS.items():
        value = figures[key]
        shown = "not measured" if value is None else f"{value:.2f} s"
        verdict = "" if value is None else ("  met" if value <= target else "  MISSED")
        print(f"{key:15} {shown:>13}  (target <= {target} s){verdict}")


if __name__ == "__main__":
    main()
