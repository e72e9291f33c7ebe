"""The monitoring pack at scale (issue #19): `study-monitor report` on the 50,000-subject study.

Run: ``.venv/bin/python benchmarks/pack_scale.py --db sqlite:////tmp/scale-copy.db`` (a database
holding DEMO-SCALE; `report` records the export in its audit table, so use a copy).
The command runs in a process of its own, as a user runs it: the wall time is the whole process's
(start-up, queries, PDF and workbook, files written) and the peak RSS is that process's only
(``child.run_measured``: started by a small launcher, so that the benchmark's own size does not
count). A benchmark prints figures; it does not pass or fail.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from child import run_measured

TARGET_S = 30.0
TARGET_RSS_MB = 1024.0
# The `study-monitor` command in this interpreter, whatever its install: typer reads sys.argv.
_COMMAND = "import sys; from dashboard.cli import app; sys.argv[0] = 'study-monitor'; app()"


def pack_figures(db_url: str, study_id: str, out: Path) -> dict[str, float]:
    """Run ``study-monitor report`` for ``study_id`` into ``out`` in a child process; its wall
    time in seconds and its peak RSS in MB. Raises RuntimeError if the command fails."""
    args = [sys.executable, "-c", _COMMAND, "report", "--study", study_id, "--out", str(out)]
    with tempfile.TemporaryFile() as errors:
        measured = run_measured([*args, "--db", db_url], errors)
        if measured["code"] != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise RuntimeError(f"study-monitor report exited {measured['code']}: {message}")
    return {
        "pack_scale_s": round(measured["wall_s"], 2),
        "pack_scale_rss_mb": round(measured["rss_mb"], 1),
    }


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
