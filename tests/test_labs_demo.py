"""The demos' laboratory data (issue #21): a panel with normal ranges at baseline and after the
first dose, DEMO-MULTI's planted liver cases, and every figure the demos had before unchanged.

Expected values are computed here from the rows with plain pandas (value against range, ALT / ULN
and bilirubin / ULN per subject), not through ``metrics.labs``; the view is then checked against
them.
"""

from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.demo import (
    MULTI_HYS_LAW_CASE,
    MULTI_TEMPLE_CASE,
    MULTISITE_STUDY_ID,
    SEED_STUDY_ID,
)
from dashboard.metrics.labs import HYS_LAW, TEMPLE
from dashboard.views.context import ViewContext
from dashboard.views.labs import LabsOptions, build_labs, hys_law_candidates

PANEL = {"ALT", "AST", "BILI", "CREAT", "HGB"}


@pytest.fixture(scope="module")
def lab_rows(demo_engine: Engine) -> pd.DataFrame:
    rows = pd.read_sql_query(
        "SELECT s.study_id, s.usubjid, s.sex, s.first_dose_date, f.* FROM finding f "
        "JOIN subject s ON s.id = f.subject_pk WHERE f.domain = 'LB'",
        demo_engine,
    )
    for column in ("date", "first_dose_date"):
        rows[column] = pd.to_datetime(rows[column])
    rows["is_baseline"] = rows["is_baseline"].astype(bool)
    return rows


def test_indicators_agree_with_values_and_ranges(lab_rows: pd.DataFrame) -> None:
    assert lab_rows["normal_low"].notna().all() and lab_rows["normal_high"].notna().all()
    assert (lab_rows["normal_low"] < lab_rows["normal_high"]).all()
    expected = pd.Series("NORMAL", index=lab_rows.index)
    expected[lab_rows["value_num"] < lab_rows["normal_low"]] = "LOW"
    expected[lab_rows["value_num"] > lab_rows["normal_high"]] = "HIGH"
    assert (lab_rows["normal_indicator"] == expected).all()
    # Mostly normal, a few out of range in each study.
    for _, rows in lab_rows.groupby("study_id"):
        share = (rows["normal_indicator"] == "NORMAL").mean()
        assert 0.8 < share < 1.0


def test_panel_units_and_sex_specific_ranges(lab_rows: pd.DataFrame) -> None:
    multi = lab_rows[lab_rows["study_id"] == MULTISITE_STUDY_ID]
    assert set(multi["test_code"]) == PANEL
    units = multi.groupby("test_code")["unit"].unique().map(list).to_dict()
    assert units == {
        "ALT": ["U/L"],
        "AST": ["U/L"],
        "BILI": ["umol/L"],
        "CREAT": ["umol/L"],
        "HGB": ["g/L"],
    }
    hgb = multi[multi["test_code"] == "HGB"].groupby("sex")["normal_high"].unique()
    assert hgb.map(list).to_dict() == {"F": [160.0], "M": [175.0]}
    # The seed's haemoglobin stays in g/dL, the unit its screening criterion reads (EXCL07).
    seed = lab_rows[lab_rows["study_id"] == SEED_STUDY_ID]
    assert set(seed["test_code"]) == PANEL
    assert set(seed.loc[seed["test_code"] == "HGB", "unit"]) == {"g/dL"}


def test_baseline_and_post_baseline_visits(lab_rows: pd.DataFrame, demo_engine: Engine) -> None:
    baseline, later = lab_rows[lab_rows["is_baseline"]], lab_rows[~lab_rows["is_baseline"]]
    post = later[later["visit"] != "SCREENING"]
    # Baseline at screening (VISITNUM 1), before the first dose; every later value after it, on
    # a visit the subject attended (same VISITNUM and date as SV), with its study day.
    assert (baseline["visit"] == "SCREENING").all() and (baseline["visit_number"] == 1).all()
    assert (baseline["date"] < baseline["first_dose_date"]).all()
    assert (baseline["study_day"] < 0).all()
    assert len(post) > 0 and (post["date"] > post["first_dose_date"]).all()
    days = (post["date"] - post["first_dose_date"]).dt.days + 1
    assert (post["study_day"] == days).all()
    visits = pd.read_sql_query("SELECT subject_pk, visit, visit_num, date FROM visit", demo_engine)
    visits["date"] = pd.to_datetime(visits["date"])
    held = post.merge(visits, on=["subject_pk", "visit", "date"], how="left")
    assert (held["visit_num"] == held["visit_number"]).all()
    assert set(post["visit"]) == {"WEEK 4", "WEEK 12", "WEEK 24 (FOLLOW-UP)"}
    # DEMO-MULTI: the whole panel flagged at baseline for every treated subject. The seed: its
    # screening haemoglobin for every screened subject (36), and the rest of the panel, flagged,
    # for the 20 enrolled (Table 1's list stays the issue's: it takes haemoglobin alone).
    multi = baseline[baseline["study_id"] == MULTISITE_STUDY_ID]
    treated = lab_rows.loc[lab_rows["study_id"] == MULTISITE_STUDY_ID, "usubjid"].nunique()
    assert multi.groupby("test_code")["usubjid"].nunique().to_dict() == dict.fromkeys(
        sorted(PANEL), treated
    )
    seed = lab_rows[(lab_rows["study_id"] == SEED_STUDY_ID) & (lab_rows["visit"] == "SCREENING")]
    assert seed.groupby("test_code")["usubjid"].nunique().to_dict() == {
        "ALT": 20,
        "AST": 20,
        "BILI": 20,
        "CREAT": 20,
        "HGB": 36,
    }
    chemistry = seed[seed["test_code"] != "HGB"]
    assert chemistry["is_baseline"].all() and len(chemistry) == 4 * 20


def _liver_peaks(lab_rows: pd.DataFrame, study_id: str) -> pd.DataFrame:
    """Per subject: peak on-treatment transaminase / ULN and bilirubin / ULN."""
    rows = lab_rows[
        (lab_rows["study_id"] == study_id)
        & ~lab_rows["is_baseline"]
        & (lab_rows["date"] >= lab_rows["first_dose_date"])
    ]
    ratio = rows.assign(ratio=rows["value_num"] / rows["normal_high"])
    group = ratio["test_code"].map({"ALT": "transaminase", "AST": "transaminase", "BILI": "bili"})
    return ratio.assign(group=group).pivot_table(
        index="usubjid", columns="group", values="ratio", aggfunc="max"
    )


def test_the_planted_liver_cases_are_the_only_ones(
    lab_rows: pd.DataFrame, session: Session
) -> None:
    peaks = _liver_peaks(lab_rows, MULTISITE_STUDY_ID)
    hys = peaks.index[(peaks["transaminase"] >= 3) & (peaks["bili"] >= 2)].tolist()
    temple = peaks.index[(peaks["transaminase"] >= 3) & (peaks["bili"] < 2)].tolist()
    assert hys == [MULTI_HYS_LAW_CASE]
    assert temple == [MULTI_TEMPLE_CASE]
    assert hys_law_candidates(session, ViewContext(MULTISITE_STUDY_ID)) == [MULTI_HYS_LAW_CASE]
    view = build_labs(session, ViewContext(MULTISITE_STUDY_ID), LabsOptions(domain="LB"))
    quadrants = view.edish.set_index("usubjid")["quadrant"]
    assert quadrants[MULTI_HYS_LAW_CASE] == HYS_LAW
    assert quadrants[MULTI_TEMPLE_CASE] == TEMPLE
    assert (quadrants.drop([MULTI_HYS_LAW_CASE, MULTI_TEMPLE_CASE]) != HYS_LAW).all()
    assert view.hys_law == (MULTI_HYS_LAW_CASE,)
    # The seed (knee injections): no liver case at all.
    seed = _liver_peaks(lab_rows, SEED_STUDY_ID)
    assert (seed["transaminase"] < 3).all() and (seed["bili"] < 2).all()
    assert hys_law_candidates(session, ViewContext(SEED_STUDY_ID)) == []


# Figures of the demo before it had laboratory data (built from the commit before issue #21's demo
# data): every one must stay. Per study: subjects and the sum of their ages, rows per table, and
# (domain, test, rows, sum of values) of the screening findings other than the new panel.
BEFORE: dict[str, dict[str, Any]] = {
    SEED_STUDY_ID: {
        "subjects": (36, 2137),
        "tables": {
            "adverseevent": 17,
            "disposition": 66,
            "visit": 109,
            "exposure": 20,
            "protocoldeviation": 0,
            "eligibilityfinding": 19,
        },
        "findings": [
            ("LB", "HGB", 36, 485.2),
            ("MK", "KLGRADE", 72, 185.0),
            ("QS", "VASPAIN", 36, 2004.0),
            ("QS", "WOMACTOT", 36, 1642.0),
            ("SC", "PAINDUR", 36, 642.0),
            ("VS", "BMI", 36, 935.6),
            ("VS", "HEIGHT", 36, 6019.0),
            ("VS", "WEIGHT", 36, 2625.3),
        ],
    },
    MULTISITE_STUDY_ID: {
        "subjects": (350, 21199),
        "tables": {
            "adverseevent": 199,
            "disposition": 608,
            "visit": 1163,
            "exposure": 231,
            "protocoldeviation": 381,
            "eligibilityfinding": 126,
        },
        "findings": [("QS", "VASPAIN", 350, 22318.0), ("VS", "BMI", 350, 9347.2)],
    },
}


@pytest.mark.parametrize("study_id", sorted(BEFORE))
def test_no_earlier_figure_changed(study_id: str, demo_engine: Engine) -> None:
    expected = BEFORE[study_id]
    where = f"s.study_id = '{study_id}'"
    subjects = pd.read_sql_query(
        f"SELECT count(*) AS n, sum(age) AS ages FROM subject s WHERE {where}", demo_engine
    ).iloc[0]
    assert (int(subjects["n"]), int(subjects["ages"])) == expected["subjects"]
    for table, n in expected["tables"].items():
        rows = pd.read_sql_query(
            f"SELECT count(*) AS n FROM {table} x JOIN subject s ON s.id = x.subject_pk "
            f"WHERE {where}",
            demo_engine,
        )
        assert int(rows["n"].iloc[0]) == n, table
    screening = pd.read_sql_query(
        "SELECT domain, test_code, count(*) AS n, sum(value_num) AS total FROM finding x "
        f"JOIN subject s ON s.id = x.subject_pk WHERE {where} AND "
        "(x.domain != 'LB' OR (x.test_code = 'HGB' AND x.unit = 'g/dL' AND x.visit = 'SCREENING')) "
        "GROUP BY domain, test_code ORDER BY domain, test_code",
        demo_engine,
    )
    found = [
        (str(domain), str(code), int(n), round(float(total), 3))
        for domain, code, n, total in screening.itertuples(index=False)
    ]
    assert found == expected["findings"]
