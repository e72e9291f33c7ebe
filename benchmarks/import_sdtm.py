"""Time the SDTM import of the CDISC pilot (issue #3 asks for under 10 s on this machine).

Run: .venv/bin/python benchmarks/import_sdtm.py [PACKAGE_FOLDER] [--runs N]
Prints the time of each run (read + map + store in one transaction, a fresh SQLite file each time)
and the median. A benchmark prints figures; it does not pass or fail.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sdtm" / "cdiscpilot01"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    timings = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.db")
            start = time.perf_counter()
            report = import_sdtm(engine, args.folder)
            elapsed = time.perf_counter() - start
            engine.dispose()
        timings.append(elapsed)
        records = sum(report.row_counts.values())
        print(f"run {run}: {elapsed:.2f} s for {records} records ({args.folder.name})")
    print(f"median: {statistics.median(timings):.2f} s over {len(timings)} runs")


if __name__ == "__main__":
    main()
