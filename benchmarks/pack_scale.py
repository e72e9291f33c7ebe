"""The monitoring pack at scale (issue #19): `study-monitor report` on the 50,000-subject study.

Run: ``.venv/bin/python benchmarks/pack_scale.py --db sqlite:////tmp/scale-copy.db`` (a database
holding DEMO-SCALE; `report` records the export in its audit table, so use a copy).
The command runs in a process of its own, as a user runs it: the wall time is the whole process's
(start-up, queries, PDF and workbook, files written) and the peak RSS is that process's only
(``os.wait4`` returns the child's own resource usage). A benchmark prints figures; it does not
pass or fail.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0
TARGET_RSS_MB = 1024.0
# The `study-monitor` command in this interpreter, whatever its install: typer reads sys.argv.
_COMMAND = "import sys; from dashboard.cli import app; sys.argv[0] = 'study-monitor'; app()"


def pack_figures(db_url: str, study_id: str, out: Path) -> dict[str, float]:
    """Run ``study-monitor report`` for ``study_id`` into ``out`` in a child process; its wall
    time in seconds and its peak RSS in MB. Raises RuntimeError if the command fails."""
    args = [sys.executable, "-c", _COMMAND, "report", "--study", study_id, "--out", str(out)]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen([*args, "--db", db_url], stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if child.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"study-monitor report exited {child.returncode}: {message}")
    # Linux gives ru_maxrss in kilobytes.
    return {"pack_scale_s": round(wall, 2), "pack_scale_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default=os.environ.get("DATABASE_URL"), required=False)
    parser.add_argument("--study", default="DEMO-SCALE")
    args = parser.parse_args()
    if not args.db:
        parser.error("give --db URL (or set DATABASE_URL): a database holding the study")
    with tempfile.TemporaryDirectory() as out:
        figures = pack_figures(args.db, args.study, Path(out))
    print(f"pack (PDF + workbook), {args.study}")
    print(f"  wall      {figures['pack_scale_s']:8.1f} s   target <= {TARGET_S:.0f} s")
    print(f"  peak RSS  {figures['pack_scale_rss_mb']:8.0f} MB  target <= {TARGET_RSS_MB:.0f} MB")


if __name__ == "__main__":
    main()
