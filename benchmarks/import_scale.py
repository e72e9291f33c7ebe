"""Import at scale (issue #19): DEMO-SCALE exported as SDTM (SAS transport files, an LB of
1,400,000 records at 50,000 screened), imported into an empty SQLite database, then a second cut with
1% of its records changed imported over it; and the CDISC pilot's import.

Each import runs as ``study-monitor import sdtm`` in a process of its own, so its time is the whole
command's (start-up included) and its peak RSS is that process's alone (``child.run_measured``: it
is started by a small launcher, so that the benchmark's own size does not count). A benchmark
prints figures; it does not pass or fail.

Run: .venv/bin/python benchmarks/import_scale.py [--subjects N] [--db URL_OF_A_SCALE_STUDY]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from child import run_measured
from dashboard.db import make_engine
from dashboard.demo_export import export_sdtm, write_changed_cut
from dashboard.demo_scale import CUTOFF, SCALE_STUDY_ID

CLI = str(Path(sys.executable).parent / "study-monitor")
PILOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sdtm" / "cdiscpilot01"
TARGETS = {
    "import_scale_s": 120.0,
    "import_scale_rss_mb": 1536.0,
    "reimport_scale_s": 120.0,
    "import_cdiscpilot_s": 5.0,
}


def run_child(command: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``command`` run as a process of its own (it must
    succeed; its output goes to ``log``)."""
    with log.open("wb") as output:
        measured = run_measured(command, output)
    if measured["code"]:
        raise RuntimeError(f"{' '.join(command)} failed:\n{log.read_text()[-2000:]}")
    return measured["wall_s"], measured["rss_mb"]


def import_figures(folder: Path, subjects: int, db_url: str | None = None) -> dict[str, Any]:
    """Generate the scale study (unless ``db_url`` names a database holding one), export it as
    xpt, import it into an empty SQLite database, then import the 1%-changed second cut over it.

    Returns import_scale_s, import_scale_rss_mb, reimport_scale_s, reimport_scale_rss_mb,
    lb_records (LB records imported) and export_scale_s (the export, in this process)."""
    if db_url is None:
        db_url = f"sqlite:///{folder}/scale.db"
        run_child(
            [CLI, "demo", "--study", "scale", "--subjects", str(subjects), "--db", db_url],
            folder / "generate.log",
        )
    engine = make_engine(db_url)
    start = time.perf_counter()
    with Session(engine) as session:
        package = export_sdtm(
            session,
            study_id=SCALE_STUDY_ID,
            cutoff=CUTOFF,
            folder=folder / "package",
            file_format="xpt",
        )
    export_s = time.perf_counter() - start
    engine.dispose()
    second = folder / "second"
    write_changed_cut(package, second)
    target = f"sqlite:///{folder}/imported.db"
    import_s, import_rss = run_child(
        [CLI, "import", "sdtm", str(package), "--db", target], folder / "import.log"
    )
    reimport_s, reimport_rss = run_child(
        [CLI, "import", "sdtm", str(second), "--db", target], folder / "reimport.log"
    )
    imported = make_engine(target)
    with imported.connect() as connection:
        lb_records = connection.execute(
            text("SELECT COUNT(*) FROM finding WHERE domain = 'LB'")
        ).scalar_one()
    imported.dispose()
    return {
        "import_scale_s": round(import_s, 2),
        "import_scale_rss_mb": round(import_rss, 1),
        "reimport_scale_s": round(reimport_s, 2),
        "reimport_scale_rss_mb": round(reimport_rss, 1),
        "lb_records": int(lb_records),
        "export_scale_s": round(export_s, 2),
    }


def pilot_import_s(folder: Path) -> float:
    """Wall seconds of ``study-monitor import sdtm`` of the CDISC pilot into an empty database."""
    elapsed, _rss = run_child(
        [CLI, "import", "sdtm", str(PILOT), "--db", f"sqlite:///{folder}/pilot.db"],
        folder / "pilot.log",
    )
    return round(elapsed, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=50_000)
    parser.add_argument("--db", help="a database that holds DEMO-SCALE already (not written to)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        figures = import_figures(Path(tmp), args.subjects, args.db)
        if PILOT.is_dir():
            figures["import_cdiscpilot_s"] = pilot_import_s(Path(tmp))
    for key, value in figures.items():
        target = TARGETS.get(key)
        beside = f"(target <= {target:g})" if target is not None else ""
        print(f"{key:24} {value:>12} {beside}")


if __name__ == "__main__":
    main()
