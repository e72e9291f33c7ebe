"""The reference a user would otherwise write: each page's figures from raw tables loaded with pandas.

Run by benchmarks/run.py in a process of its own: ``naive.py DB_URL STUDY_ID RUNS``. Prints
{page: median seconds} as JSON. Each run reads the tables the page needs in full (as a hand-made
Streamlit or Shiny app typically does) and aggregates in memory.
"""

import json
import statistics
import sys
import time
from collections.abc import Callable

import pandas as pd
from sqlalchemy import create_engine, text


def main() -> None:
    db_url, study_id, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    engine = create_engine(db_url)

    def table(sql: str) -> pd.DataFrame:
        with engine.connect() as connection:
            return pd.read_sql_query(text(sql), connection, params={"study": study_id})

    def subjects() -> pd.DataFrame:
        return table(
            "SELECT s.*, site.site_id AS siteid FROM subject s "
            "LEFT JOIN site ON site.id = s.site_pk WHERE s.study_id = :study"
        )

    def adverse() -> pd.DataFrame:
        return table(
            "SELECT a.* FROM adverseevent a JOIN subject s ON s.id = a.subject_pk "
            "WHERE s.study_id = :study"
        )

    def overview() -> None:
        dm, ae = subjects(), adverse()
        dm.groupby("population").size()
        ae.groupby("body_system")["subject_pk"].nunique()
        (ae["serious"] == "Y").sum()

    def enrollment() -> None:
        dm = subjects()
        ds = table(
            "SELECT d.* FROM disposition d JOIN subject s ON s.id = d.subject_pk "
            "WHERE s.study_id = :study"
        )
        dm.groupby("population").size()
        dm.groupby(pd.to_datetime(dm["screening_date"]).dt.to_period("W")).size().cumsum()
        dm.groupby(["siteid", "population"]).size().unstack(fill_value=0)
        ds.groupby("term")["subject_pk"].nunique()

    def screen_failures() -> None:
        dm = subjects()
        ie = table(
            "SELECT f.*, c.code FROM eligibilityfinding f JOIN criterion c ON "
            "c.id = f.criterion_pk WHERE c.study_id = :study"
        )
        failed = ie.merge(dm[["id", "siteid", "population"]], left_on="subject_pk", right_on="id")
        failed.groupby("code")["subject_pk"].nunique()
        failed.groupby(["siteid", "code"]).size()
        pairs = failed.merge(failed, on="subject_pk")
        pairs[pairs["code_x"] < pairs["code_y"]].groupby(["code_x", "code_y"]).size()

    def baseline() -> None:
        dm = subjects()
        findings = table(
            "SELECT f.* FROM finding f JOIN subject s ON s.id = f.subject_pk "
            "WHERE s.study_id = :study"
        )
        enrolled = dm[dm["population"] == "ENROLLED"]
        merged = findings.merge(enrolled[["id", "arm"]], left_on="subject_pk", right_on="id")
        merged.groupby(["arm", "test_code"])["value_num"].describe()
        enrolled.groupby("arm")["age"].describe()

    def adverse_events() -> None:
        dm, ae = subjects(), adverse()
        merged = ae.merge(dm[["id", "actual_arm"]], left_on="subject_pk", right_on="id")
        merged.groupby(["actual_arm", "body_system", "decoded_term"])["subject_pk"].nunique()
        merged.groupby(["actual_arm", "severity"]).size()

    pages: dict[str, Callable[[], None]] = {
        "overview": overview,
        "enrollment": enrollment,
        "screen-failures": screen_failures,
        "baseline": baseline,
        "adverse-events": adverse_events,
    }
    results = {}
    for name, page in pages.items():
        timings = []
        for _ in range(runs):
            start = time.perf_counter()
            page()
            timings.append(time.perf_counter() - start)
        results[name] = statistics.median(timings)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
