"""The Labs view at scale (issue #21): ``views.labs`` on DEMO-SCALE, without Streamlit.

Run: ``.venv/bin/python benchmarks/labs_scale.py DATABASE_URL [--study DEMO-SCALE] [--runs 3]
[--profile]`` (``benchmarks/run.py``'s ``labs`` part calls ``labs_figures``, which runs this file
in a process of its own).

Times (median of ``runs``, each on a new session, so nothing is reused between runs):
- ``build_labs_lb_s``: ``build_labs`` for LB with the default measurement (ALT): range and grade
  shift, abnormal values by arm, eDISH points and potential Hy's law cases, values over time;
- ``build_labs_vs_s``: the same for VS (its default measurement);
- ``hys_law_s``: ``hys_law_candidates`` (the liver tests only: ``summary --json``);
and ``lb_records`` / ``vs_records`` (rows the view reads), ``hys_law_cases`` and the process's peak
RSS (``labs_rss_mb``, measured by ``child.run_measured`` around the whole process). With
``--profile``, a cProfile of one LB build: the 25 functions with most cumulative time, to stderr.
A benchmark prints figures; it does not pass or fail.
"""

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from child import run_measured

TARGET_S = 3.0  # the view of one page, whatever the study's size (DESIGN.md: a page within 1 s)


def _median_time(action: Callable[[], Any], runs: int) -> tuple[float, Any]:
    timings, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


def measure(db_url: str, study_id: str, runs: int, *, profile: bool = False) -> dict[str, Any]:
    """The view-level figures, in this process (see the module's docstring)."""
    from sqlalchemy import text
    from sqlmodel import Session

    from dashboard.db import make_engine
    from dashboard.views.context import ViewContext
    from dashboard.views.labs import LabsOptions, build_labs, hys_law_candidates

    engine = make_engine(db_url)
    ctx = ViewContext(study_id)

    def build(domain: str) -> Any:
        with Session(engine) as session:
            return build_labs(session, ctx, LabsOptions(domain=domain))

    def hys_law() -> list[str] | None:
        with Session(engine) as session:
            return hys_law_candidates(session, ctx)

    with engine.connect() as connection:
        records: dict[str, int] = dict(
            connection.execute(
                text(
                    "SELECT f.domain, count(*) FROM finding f JOIN subject s "
                    "ON s.id = f.subject_pk WHERE s.study_id = :study "
                    "AND f.domain IN ('LB', 'VS') GROUP BY f.domain"
                ),
                {"study": study_id},
            ).all()
        )
    build("LB")  # imports and the database's own cache, not counted
    lb_s, lb = _median_time(lambda: build("LB"), runs)
    vs_s, vs = _median_time(lambda: build("VS"), runs)
    hys_s, cases = _median_time(hys_law, runs)
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(build, "LB")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return {
        "build_labs_lb_s": round(lb_s, 3),
        "build_labs_vs_s": round(vs_s, 3),
        "hys_law_s": round(hys_s, 3),
        "lb_measurement": lb.options.measurement,
        "vs_measurement": vs.options.measurement,
        "lb_records": int(records.get("LB", 0)),
        "vs_records": int(records.get("VS", 0)),
        "hys_law_cases": len(cases),
    }


def labs_figures(db_url: str, study_id: str, runs: int = 3) -> dict[str, Any]:
    """``measure`` in a process of its own (so that its peak RSS is the view's alone), plus that
    process's wall time and peak RSS (``labs_rss_mb``)."""
    with tempfile.TemporaryDirectory(prefix="bench-labs-") as folder:
        out = Path(folder) / "labs.json"
        command = [sys.executable, __file__, db_url, "--study", study_id, "--runs", str(runs)]
        with tempfile.TemporaryFile() as errors:
            measured = run_measured([*command, "--json", str(out)], errors)
            if measured["code"] != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()
                raise RuntimeError(f"labs_scale.py exited {measured['code']}: {message}")
        figures: dict[str, Any] = json.loads(out.read_text())
    figures["labs_rss_mb"] = round(measured["rss_mb"], 1)
    return figures


def print_figures(figures: dict[str, Any]) -> None:
    print("Labs view (views.labs, no Streamlit; median)")
    for key, label in (
        ("build_labs_lb_s", f"build_labs LB ({figures['lb_measurement']})"),
        ("build_labs_vs_s", f"build_labs VS ({figures['vs_measurement']})"),
        ("hys_law_s", "hys_law_candidates"),
    ):
        mark = "✓" if figures[key] <= TARGET_S else "✗"
        print(f"  {label:52} {figures[key]:8.2f} s  (target {TARGET_S:g}) {mark}")
    print(
        f"  {figures['lb_records']:,} LB and {figures['vs_records']:,} VS records; potential "
        f"Hy's law cases {figures['hys_law_cases']}"
    )
    if "labs_rss_mb" in figures:
        print(f"  peak RSS of the process  {figures['labs_rss_mb']:8.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("db_url", help="a database holding the study, e.g. sqlite:///scale.db")
    parser.add_argument("--study", default="DEMO-SCALE")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one LB build (stderr)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    figures = measure(args.db_url, args.study, args.runs, profile=args.profile)
    if args.json is not None:
        args.json.write_text(json.dumps(figures), encoding="utf-8")
    else:
        print_figures(figures)


if __name__ == "__main__":
    main()
