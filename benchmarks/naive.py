"""The reference a user would otherwise write: each page's figures from raw tables loaded with pandas.

Run by benchmarks/run.py in a process of its own: ``naive.py DB_URL STUDY_ID RUNS``. Prints
{page: median seconds} as JSON. Each run reads the tables the page needs in full (as a hand-made
Streamlit or Shiny app typically does) and aggregates in memory to the figures its page shows
(the page's charts, widgets and rendering are not counted: the reference is generous to itself).
"""

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text

from dashboard.metrics.eligibility import parse_rule


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

    def rows_of(name: str) -> pd.DataFrame:
        return table(
            f"SELECT x.* FROM {name} x JOIN subject s ON s.id = x.subject_pk "
            "WHERE s.study_id = :study"
        )

    def adverse() -> pd.DataFrame:
        return rows_of("adverseevent")

    def treated(dm: pd.DataFrame) -> pd.Series:
        exposed = set(rows_of("exposure")["subject_pk"])
        return dm["first_dose_date"].notna() | dm["id"].isin(exposed)

    # Each page computes the figures its real page shows (not its charts or widgets), from whole
    # tables read with pandas: what a hand-made app does.
    def overview() -> None:
        dm, ae = subjects(), adverse()
        cuts = table("SELECT * FROM datacut WHERE study_id = :study")
        changes = table(
            "SELECT c.* FROM cutchange c JOIN datacut d ON d.id = c.cut_id "
            "WHERE d.study_id = :study"
        )
        dm.groupby("population").size()
        dm["siteid"].nunique()
        ae.groupby("body_system")["subject_pk"].agg(["nunique", "size"])
        ae.loc[ae["serious"] == "Y", "subject_pk"].nunique()
        changes[changes["cut_id"] == cuts["id"].max()].groupby(["entity", "change"]).size()

    def enrollment() -> None:
        dm = subjects()
        ds = rows_of("disposition")
        ie = rows_of("eligibilityfinding")
        dm["treated"] = treated(dm)
        dm.groupby("population").size()
        weeks = pd.to_datetime(dm["screening_date"]).dt.to_period("W")
        dm.groupby([weeks, "population"]).size().unstack(fill_value=0).cumsum()
        enrolled = dm[dm["population"] == "ENROLLED"]
        enrolled.groupby("treated").size()
        last = ds.sort_values("date").groupby("subject_pk").tail(1)
        last.merge(enrolled[["id", "arm"]], left_on="subject_pk", right_on="id").groupby(
            ["arm", "term"]
        ).size()
        ds.groupby("term")["subject_pk"].nunique()
        sites = dm.groupby(["siteid", "population"]).size().unstack(fill_value=0)
        dates = pd.to_datetime(enrolled["enrollment_date"])
        sites.join(enrolled.assign(d=dates).groupby("siteid")["d"].agg(["min", "max"]))
        recent = dates[dates >= dates.max() - pd.Timedelta(days=90)]
        len(recent) / 90
        ie.groupby("criterion_pk")["subject_pk"].nunique()

    def screen_failures() -> None:
        dm = subjects()
        ie = table(
            "SELECT f.*, c.code FROM eligibilityfinding f JOIN criterion c ON "
            "c.id = f.criterion_pk WHERE c.study_id = :study"
        )
        ds = rows_of("disposition")
        failed = ie.merge(dm[["id", "siteid", "population"]], left_on="subject_pk", right_on="id")
        failed.groupby("code")["subject_pk"].nunique()
        (failed.groupby("subject_pk")["code"].nunique() > 1).sum()
        failed.groupby(["siteid", "code"])["subject_pk"].nunique()
        pairs = failed.merge(failed, on="subject_pk")
        pairs[pairs["code_x"] < pairs["code_y"]].groupby(["code_x", "code_y"]).size()
        months = pd.to_datetime(dm["screening_date"]).dt.to_period("M")
        dm.groupby([months, "population"]).size().unstack(fill_value=0)
        screen_failed = dm.loc[dm["population"] == "SCREEN FAILURE", "id"]
        ds[ds["subject_pk"].isin(screen_failed)].groupby("term")["subject_pk"].nunique()
        dm.groupby(["siteid", "population"]).size().unstack(fill_value=0)
        # The eligibility check: enrolled subjects' screening values against each rule.
        criteria = table("SELECT * FROM criterion WHERE study_id = :study AND rule IS NOT NULL")
        findings = rows_of("finding")
        enrolled = dm[dm["population"] == "ENROLLED"]
        screening = findings[
            findings["subject_pk"].isin(enrolled["id"])
            & (
                findings["is_baseline"].astype(bool)
                | findings["visit"].fillna("").str.upper().str.contains("SCREEN")
            )
        ]
        for criterion in criteria.to_dict("records"):
            try:
                rule = parse_rule(criterion["rule"])
            except ValueError:
                continue
            values = screening.loc[screening["test_code"] == rule.variable, "value_num"].dropna()
            holds = values.map(rule.holds)
            (holds if criterion["category"].upper() == "EXCLUSION" else ~holds).sum()

    def baseline() -> None:
        dm = subjects()
        findings = rows_of("finding")
        enrolled = dm[dm["population"] == "ENROLLED"]
        merged = findings[findings["is_baseline"].astype(bool)].merge(
            enrolled[["id", "arm"]], left_on="subject_pk", right_on="id"
        )
        merged.groupby(["arm", "test_code"])["value_num"].describe()
        enrolled.groupby("arm")["age"].describe()
        enrolled.groupby(["arm", "sex"]).size()

    def adverse_events() -> None:
        dm, ae = subjects(), adverse()
        dm["treated"] = treated(dm)
        merged = ae.merge(
            dm.loc[dm["treated"], ["id", "actual_arm"]], left_on="subject_pk", right_on="id"
        )
        dm[dm["treated"]].groupby("actual_arm").size()
        code = {
            c: merged[c].fillna("").str.strip().str.upper()
            for c in ("serious", "relationship", "severity", "action", "outcome")
        }
        for flag in (
            code["serious"] == "Y",
            code["relationship"].isin(["RELATED", "PROBABLE", "POSSIBLE", "Y"]),
            code["severity"] == "SEVERE",
            code["action"] == "DRUG WITHDRAWN",
            code["outcome"] == "FATAL",
        ):
            merged[flag].groupby("actual_arm")["subject_pk"].agg(["nunique", "size"])
        merged.groupby(["actual_arm", "body_system", "decoded_term"])["subject_pk"].agg(
            ["nunique", "size"]
        )
        merged.groupby(["actual_arm", "body_system"])["subject_pk"].nunique()
        rank = code["severity"].map({"MILD": 1, "MODERATE": 2, "SEVERE": 3}).fillna(0)
        merged.assign(rank=rank).groupby(["actual_arm", "subject_pk"])["rank"].max().groupby(
            level=0
        ).value_counts()
        merged[code["serious"] == "Y"].sort_values(["subject_pk", "start_date"]).head(2000)
        ae.groupby("subject_pk").size().sort_values(ascending=False).head(5000)

    def site_risk() -> None:
        # Each KRI's counts per site from whole tables, then gsm's score by hand (mu, z0, phi).
        dm, ae = subjects(), adverse()
        deviations = rows_of("protocoldeviation")
        enrolled = dm[dm["population"] == "ENROLLED"]
        start = pd.to_datetime(enrolled["enrollment_date"])
        days = ((pd.Timestamp.today() - start).dt.days + 1).groupby(enrolled["siteid"]).sum()
        site_of = dm.set_index("id")["siteid"]
        counts = {
            "ae": ae["subject_pk"].map(site_of).value_counts(),
            "sae": ae.loc[ae["serious"] == "Y", "subject_pk"].map(site_of).value_counts(),
            "pd": deviations["subject_pk"].map(site_of).value_counts(),
        }
        for numerator in counts.values():
            n = numerator.reindex(days.index).fillna(0)
            mu = n.sum() / days.sum()
            z0 = (n / days - mu) / (mu / days) ** 0.5
            (n / days - mu) / ((z0**2).mean() * mu / days) ** 0.5
        failed = dm.groupby("siteid")["population"].apply(lambda p: (p == "SCREEN FAILURE").mean())
        failed.rank()
        dm[dm["status"] == "DISCONTINUED"].groupby("siteid").size()

    def lab_page() -> None:
        # The Labs page's figures for ALT: baseline class against the worst after the first dose
        # by arm, the eDISH peaks (ALT, AST, bilirubin / ULN after the first dose) per subject.
        dm = subjects()
        lb = rows_of("finding")
        lb = lb[lb["domain"] == "LB"].merge(
            dm[["id", "actual_arm", "first_dose_date"]], left_on="subject_pk", right_on="id"
        )
        cls = pd.Series("NORMAL", index=lb.index)
        cls[lb["value_num"] < lb["normal_low"]] = "LOW"
        cls[lb["value_num"] > lb["normal_high"]] = "HIGH"
        lb = lb.assign(cls=cls)
        after = lb[~lb["is_baseline"].astype(bool) & (lb["date"] >= lb["first_dose_date"])]
        alt = lb[lb["test_code"] == "ALT"]
        base = alt[alt["is_baseline"].astype(bool)].groupby("subject_pk")["cls"].last()
        worst = (
            after[after["test_code"] == "ALT"]
            .groupby("subject_pk")["cls"]
            .agg(
                lambda c: (
                    "HIGH" if (c == "HIGH").any() else "LOW" if (c == "LOW").any() else "NORMAL"
                )
            )
        )
        pd.crosstab(base.reindex(worst.index).fillna("MISSING"), worst)
        liver = after[after["test_code"].isin(["ALT", "AST", "BILI"])]
        ratio = liver["value_num"] / liver["normal_high"]
        liver.assign(ratio=ratio).pivot_table(
            index="subject_pk", columns="test_code", values="ratio", aggfunc="max"
        )
        alt.groupby("visit")["value_num"].describe()

    pages: dict[str, Callable[[], None]] = {
        "overview": overview,
        "enrollment": enrollment,
        "screen-failures": screen_failures,
        "baseline": baseline,
        "adverse-events": adverse_events,
        "site-risk": site_risk,
        "labs": lab_page,
    }
    if not (Path(__file__).resolve().parents[1] / "pages" / "labs.py").is_file():
        del pages["labs"]  # measured with the page (issue #21), once it exists
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
