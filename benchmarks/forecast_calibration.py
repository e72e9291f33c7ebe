"""How well the recruitment forecasts would have done on real and demo studies (issue #22).

Run: ``.venv/bin/python benchmarks/forecast_calibration.py [--pilot PATH] [--scale-db URL]``.

For each study the data are cut at earlier month-ends and both models forecast from what was
known then: the multicentre model (``metrics.site_forecast.calibration_table``, the table the
Enrollment page shows) and the pooled one (``metrics.forecast.forecast_completion`` from the
planned start, as the page's fallback). It prints, per cut, the 80% interval and median of the
target date and of the subjects enrolled by the study's cut-off, against what happened, and then
the coverage of the 80% intervals and the median absolute error of the median date.

- CDISC pilot (``../shared/data/sdtm/cdiscpilot01``, imported into a temporary SQLite file): the
  target is taken as 200 (the 200th subject was enrolled on 2013-12-09), so the target date is
  known; the cut of 2013-06-30 (131 enrolled) is the one the issue names.
- DEMO-MULTI (built here) and, with ``--scale-db``, DEMO-SCALE: their own targets, not reached
  by their cut-offs, so only the enrolled-by-cut-off intervals can be judged.

A benchmark prints figures; it does not pass or fail.
"""

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlmodel import Session, create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard.metrics.enrollment import enrollment_dates  # noqa: E402
from dashboard.metrics.forecast import forecast_completion  # noqa: E402
from dashboard.metrics.site_forecast import (  # noqa: E402
    calibration_cuts,
    calibration_table,
    site_openings,
)
from dashboard.queries import enrollment, studies  # noqa: E402

PILOT = ROOT.parent / "shared" / "data" / "sdtm" / "cdiscpilot01"
PILOT_TARGET = 200
PILOT_CUT = dt.date(2013, 6, 30)


def _command(*args: str) -> None:
    subprocess.run([str(ROOT / ".venv" / "bin" / "study-monitor"), *args], check=True)


def _pooled(daily: pd.DataFrame, cut: dt.date, target: int, start: dt.date | None) -> str:
    dates = [d for d in enrollment_dates(daily) if d <= cut]
    use_start = start if start and dates and start <= min(dates) else None
    forecast = forecast_completion(dates, target=target, cutoff=cut, start=use_start)
    if forecast.median_date is None:
        return forecast.status
    return f"{forecast.median_date} ({forecast.lower_date} – {forecast.upper_date})"


def calibrate_study(url: str, study_id: str, *, target: int | None = None) -> None:
    engine = create_engine(url)
    with Session(engine) as session:
        study = studies.study_info(session, study_id=study_id)
        assert study is not None
        cutoff = max(
            c.cutoff_date for c in studies.data_cuts(session, study_id=study_id) if c.cutoff_date
        )
        by_site = enrollment.enrollment_by_site(session, study_id=study_id, scope=None)
        days = enrollment.site_enrollment_days(session, study_id=study_id, scope=None)
        daily = enrollment.daily_accrual(session, study_id=study_id, scope=None)
    target = target or study.planned_enrollment
    assert target
    openings = site_openings(by_site, cutoff=cutoff, registry_start=study.planned_start)
    first = min(d for d in openings["opened_on"] if d is not None)
    cuts = sorted(
        {*calibration_cuts(first, cutoff)} | ({PILOT_CUT} if study_id == "CDISCPILOT01" else set())
    )
    started = time.perf_counter()
    table = calibration_table(openings, days, cutoff=cutoff, target=target, cuts=cuts)
    took = time.perf_counter() - started
    table["pooled"] = [_pooled(daily, c, target, study.planned_start) for c in table["cut"]]
    print(f"\n## {study_id}: target {target}, cut-off {cutoff}, {len(openings)} sites")
    print(f"   opening dates: {openings['source'].value_counts().to_dict()}")
    print(table.to_string(index=False))
    judged = table[table["by_cutoff_covered"].notna()]
    print(
        f"   enrolled by the cut-off: the 80% interval held {int(judged['by_cutoff_covered'].sum())}"
        f" of {len(judged)}"
    )
    reached = table[table["covered"].notna()]
    if not reached.empty:
        print(
            f"   target date: the 80% interval held {int(reached['covered'].sum())} of "
            f"{len(reached)}; median absolute error of the median "
            f"{float(np.median(np.abs(reached['error_days']))):.0f} days"
        )
    print(f"   the multicentre calibration took {took:.2f} s for {len(cuts)} cuts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pilot", type=Path, default=PILOT)
    parser.add_argument("--scale-db", help="a database holding DEMO-SCALE (study-monitor demo)")
    args = parser.parse_args()
    pd.set_option("display.width", 250)
    with tempfile.TemporaryDirectory() as folder:
        pilot_url = f"sqlite:///{folder}/pilot.db"
        _command("import", "sdtm", str(args.pilot), "--db", pilot_url)
        calibrate_study(pilot_url, "CDISCPILOT01", target=PILOT_TARGET)
        demo_url = f"sqlite:///{folder}/multi.db"
        _command("demo", "--study", "multisite", "--db", demo_url)
        calibrate_study(demo_url, "DEMO-MULTI")
    if args.scale_db:
        calibrate_study(args.scale_db, "DEMO-SCALE")


if __name__ == "__main__":
    main()
