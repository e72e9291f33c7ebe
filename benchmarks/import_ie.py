"""Time and memory of importing a large IE domain (issue #17): a synthetic package of 10,000
subjects x 20 criteria = 200,000 IE records (each a criterion not met, as SDTM IE holds).

Run: .venv/bin/python benchmarks/import_ie.py [--subjects N] [--criteria C] [--profile]
Writes the package as CSV into a temporary folder (in a child process), imports it into a fresh
SQLite file twice (a first cut, then the same package as a second cut: the diff against 200,000
current rows) and prints the time of each phase and the importing process's peak RSS. With
--profile it prints cProfile's top functions instead. A benchmark prints figures; it does not pass
or fail.
"""

import argparse
import cProfile
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.importers.sdtm import read_package
from dashboard.importers.store import store_package


def write_package(folder: Path, subjects: int, criteria: int) -> None:
    usubjids = [f"BIG-{i // 100:03d}-{i:05d}" for i in range(subjects)]
    pd.DataFrame(
        {
            "STUDYID": "BIG",
            "USUBJID": usubjids,
            "SITEID": [u.split("-")[1] for u in usubjids],
            "ARMCD": "A",
            "ARM": "Arm A",
            "RFICDTC": "2024-01-15",
        }
    ).to_csv(folder / "dm.csv", index=False)
    codes = [f"{'IN' if c < criteria // 2 else 'EX'}{c:02d}" for c in range(criteria)]
    pd.DataFrame(
        {
            "STUDYID": "BIG",
            "IETESTCD": codes,
            "IETEST": [f"Criterion {c}" for c in codes],
            "IECAT": ["INCLUSION" if c.startswith("IN") else "EXCLUSION" for c in codes],
        }
    ).to_csv(folder / "ti.csv", index=False)
    n = subjects * criteria
    subject = [usubjids[i // criteria] for i in range(n)]
    code = [codes[i % criteria] for i in range(n)]
    inclusion = [c.startswith("IN") for c in code]
    pd.DataFrame(
        {
            "STUDYID": "BIG",
            "DOMAIN": "IE",
            "USUBJID": subject,
            "IESEQ": [i % criteria + 1 for i in range(n)],
            "IETESTCD": code,
            "IETEST": [f"Criterion {c}" for c in code],
            "IECAT": ["INCLUSION" if inc else "EXCLUSION" for inc in inclusion],
            # IE holds the criteria not met (SDTM): every record is one.
            "IEORRES": ["N" if inc else "Y" for inc in inclusion],
            "IESTRESC": ["N" if inc else "Y" for inc in inclusion],
            "IEDTC": "2024-01-15",
        }
    ).to_csv(folder / "ie.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--criteria", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.write:
        write_package(args.write, args.subjects, args.criteria)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Written by a child process, so that the peak RSS printed is the import's alone.
        command = [sys.executable, __file__, "--write", tmp, "--subjects", str(args.subjects)]
        subprocess.run([*command, "--criteria", str(args.criteria)], check=True)
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        ensure_schema(engine)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        start = time.perf_counter()
        package = read_package(folder)
        read = time.perf_counter() - start
        with session_scope(engine) as session:
            store_package(session, package)
        stored = time.perf_counter() - start - read
        del package  # the second cut is read anew, as a second import would
        # A second cut of the same package: the diff against 200,000 current rows, no changes.
        again = time.perf_counter()
        with session_scope(engine) as session:
            store_package(session, read_package(folder))
        second = time.perf_counter() - again
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        engine.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"IE {args.subjects * args.criteria:,} records ({args.subjects:,} subjects x "
        f"{args.criteria} criteria): read + map {read:.1f} s, store {stored:.1f} s, "
        f"total {read + stored:.1f} s; second cut (read, diff, store) {second:.1f} s; "
        f"peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
