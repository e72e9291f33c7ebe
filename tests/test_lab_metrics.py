"""Labs metrics and charts (#21): range classes, baseline and post-baseline, shift tables, abnormal
incidence, eDISH quadrants and the Hy's law window, on hand-built frames with hand-derived
figures, and on the CDISC pilot's chemistry against an independent computation."""

import json
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from dashboard.charts import labs as lab_charts
from dashboard.metrics import labs
from tests.conftest import SHARED_DATA, reference_absent

PILOT_DIR = SHARED_DATA / "sdtm" / "cdiscpilot01"

DEFAULTS: dict[str, Any] = {
    "site_id": "01",
    "arm": "A",
    "domain": "LB",
    "test_code": "ALT",
    "test": "Alanine Aminotransferase",
    "unit": "U/L",
    "category": "CHEMISTRY",
    "specimen": None,
    "position": None,
    "timepoint": None,
    "value": np.nan,
    "low": np.nan,
    "high": np.nan,
    "indicator": None,
    "grade_given": None,
    "is_baseline": False,
    "date": None,
    "study_day": np.nan,
    "visit": None,
    "visit_number": np.nan,
    "first_dose": "2024-01-01",
}


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    """Records in the frame contract: each row's values over ``DEFAULTS``."""
    out = pd.DataFrame([{**DEFAULTS, **row} for row in rows])
    out["date"] = pd.to_datetime(out["date"])
    out["first_dose"] = pd.to_datetime(out["first_dose"])
    for column in ("value", "low", "high", "study_day", "visit_number"):
        out[column] = out[column].astype(float)
    return out


def alt(
    usubjid: str, date: str | None, value: float, *, baseline: bool = False, **other: Any
) -> dict[str, Any]:
    """An ALT record, normal range 10..40 U/L."""
    return {
        "usubjid": usubjid,
        "date": date,
        "value": value,
        "low": 10.0,
        "high": 40.0,
        "is_baseline": baseline,
        **other,
    }


# -- range classes ---------------------------------------------------------------------------------


def test_range_class_follows_the_indicator_then_the_limits() -> None:
    records = frame(
        {"usubjid": "1", "value": 50.0, "high": 40.0, "indicator": "NORMAL"},  # indicator wins
        {"usubjid": "2", "value": np.nan, "indicator": "ABNORMAL"},  # urinalysis text
        {"usubjid": "3", "value": 5.0, "low": 10.0, "high": 40.0},
        {"usubjid": "4", "value": 41.0, "low": 10.0, "high": 40.0},
        {"usubjid": "5", "value": 40.0, "high": 40.0},  # at the limit, one limit known
        {"usubjid": "6", "value": 12.0},  # no limits
        {"usubjid": "7", "value": np.nan, "low": 1.0, "high": 2.0},  # no value
        {"usubjid": "8", "value": 3.0, "low": 1.0, "high": 2.0, "indicator": " "},  # blank
    )
    assert labs.range_class(records).tolist() == [
        "NORMAL",
        "ABNORMAL",
        "LOW",
        "HIGH",
        "NORMAL",
        None,
        None,
        "HIGH",
    ]


# -- the range shift -------------------------------------------------------------------------------


def shift_records() -> pd.DataFrame:
    """Arm A: S1 NORMAL -> HIGH; S2 LOW -> LOW AND HIGH; S3 baseline without a value -> NORMAL;
    S4 baseline only (not counted); S5 a HIGH after baseline but before the first dose (not
    post-baseline) then NORMAL -> NORMAL. Arm B: S6 HIGH -> NORMAL; S7 two baseline-flagged
    records (the later one, HIGH, is the baseline) and a HIGH on the baseline's own day (not
    after it) -> HIGH -> NORMAL; S8 no baseline record, a HIGH after the first dose -> MISSING ->
    HIGH."""
    return frame(
        alt("S1", "2023-12-30", 20, baseline=True),
        alt("S1", "2024-01-10", 50),
        alt("S1", "2024-01-20", 30),
        alt("S2", "2023-12-30", 5, baseline=True),
        alt("S2", "2024-01-10", 6),
        alt("S2", "2024-01-20", 45),
        alt("S3", "2023-12-30", np.nan, baseline=True),
        alt("S3", "2024-01-10", 25),
        alt("S4", "2023-12-30", 25, baseline=True),
        alt("S5", "2023-12-20", 25, baseline=True, first_dose="2024-01-05"),
        alt("S5", "2023-12-28", 90, first_dose="2024-01-05"),
        alt("S5", "2024-01-10", 25, first_dose="2024-01-05"),
        alt("S6", "2023-12-30", 60, baseline=True, arm="B"),
        alt("S6", "2024-01-10", 30, arm="B"),
        alt("S7", "2023-12-20", 20, baseline=True, arm="B"),
        alt("S7", "2023-12-30", 70, baseline=True, arm="B"),
        alt("S7", "2023-12-30", 80, arm="B"),
        alt("S7", "2024-01-10", 35, arm="B"),
        alt("S8", "2024-01-10", 55, arm="B"),
    )


def cell(table: labs.ShiftTable, arm: str, baseline: str, worst: str) -> tuple[int, int]:
    row = table.cells[
        (table.cells["arm"] == arm)
        & (table.cells["baseline"] == baseline)
        & (table.cells["worst"] == worst)
    ]
    assert len(row) == 1
    return int(row["n"].iloc[0]), int(row["N"].iloc[0])


def nonzero_cells(table: labs.ShiftTable) -> dict[tuple[str, str, str], tuple[int, int]]:
    """{(arm, baseline, worst): (n, N)} of the cells with subjects."""
    cells = table.cells[table.cells["n"] > 0]
    rows = cells[["arm", "baseline", "worst", "n", "N"]].itertuples(index=False, name=None)
    return {(str(a), str(b), str(w)): (int(n), int(whole)) for a, b, w, n, whole in rows}


def test_range_shift_cells_by_arm() -> None:
    table = labs.range_shift(shift_records(), "ALT")
    assert nonzero_cells(table) == {
        ("A", "NORMAL", "HIGH"): (1, 4),
        ("A", "LOW", "LOW AND HIGH"): (1, 4),
        ("A", "MISSING", "NORMAL"): (1, 4),
        ("A", "NORMAL", "NORMAL"): (1, 4),
        ("B", "HIGH", "NORMAL"): (2, 3),
        ("B", "MISSING", "HIGH"): (1, 3),
    }
    assert cell(table, "A", "HIGH", "LOW") == (0, 4)  # zero cells are kept
    assert table.baseline_order == ["LOW", "NORMAL", "HIGH", "MISSING"]
    assert table.worst_order == ["LOW", "NORMAL", "HIGH", "LOW AND HIGH"]


def test_range_shift_wide_table_and_cell_subjects() -> None:
    table = labs.range_shift(shift_records(), "ALT")
    wide = table.wide("A")
    assert wide.loc["NORMAL", "HIGH"] == "1 (25.0%)"
    assert wide.loc["NORMAL", "Total"] == "2 (50.0%)"
    assert wide.loc["MISSING", "NORMAL"] == "1 (25.0%)"
    assert wide.loc["Total", "NORMAL"] == "2 (50.0%)"
    assert wide.loc["Total", "Total"] == "4 (100.0%)"
    assert wide.loc["HIGH", "HIGH"] == "0 (0.0%)"
    pooled = table.wide(None)
    assert pooled.loc["Total", "Total"] == "7 (100.0%)"
    assert pooled.loc["HIGH", "NORMAL"] == "2 (28.6%)"

    subjects = labs.shift_subjects(shift_records(), "ALT", arm="A", baseline="NORMAL", post="HIGH")
    assert subjects["usubjid"].tolist() == ["S1"]
    assert subjects["baseline_value"].tolist() == [20.0]
    assert subjects["worst_value"].tolist() == [50.0]
    assert subjects["worst_date"].tolist() == [pd.Timestamp("2024-01-10")]
    both = table.subjects_of("A", "LOW", "LOW AND HIGH")
    assert both["worst_value"].tolist() == [45.0]  # the highest high value decides
    arm_b = table.subjects_of("B", "Total", None)
    assert arm_b["usubjid"].tolist() == ["S6", "S7", "S8"]
    s7 = arm_b[arm_b["usubjid"] == "S7"]
    assert s7["baseline_value"].tolist() == [70.0]  # the later of the two flagged


def test_baseline_and_post_marks() -> None:
    records = shift_records()
    marked = labs.baseline_and_post(records)
    assert marked.index.equals(records.index)
    post_rows = marked[marked["is_post"]]
    post = set(zip(post_rows["usubjid"], post_rows["date"], strict=True))
    day = pd.Timestamp
    assert ("S5", day("2023-12-28")) not in post  # before the first dose
    assert ("S5", day("2024-01-10")) in post
    assert ("S7", day("2023-12-30")) not in post  # the baseline's own day
    assert ("S8", day("2024-01-10")) in post  # no baseline record: on treatment counts
    chosen = marked[marked["is_baseline_record"]]
    assert sorted(chosen["usubjid"]) == ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]
    assert chosen.loc[chosen["usubjid"] == "S7", "value"].tolist() == [70.0]
    assert marked.loc[marked["usubjid"] == "S3", "baseline_class"].unique().tolist() == ["MISSING"]


def test_undated_or_undosed_records_are_not_post_baseline() -> None:
    records = frame(
        alt("U1", "2024-01-10", 50, first_dose=None),  # no baseline, no first dose
        alt("U2", "2023-12-30", 20, baseline=True),
        alt("U2", None, 50),  # undated
    )
    assert not labs.baseline_and_post(records)["is_post"].any()


def supine_standing() -> pd.DataFrame:
    base = {"domain": "VS", "test_code": "DIABP", "test": "Diastolic Blood Pressure"}
    supine = {**base, "unit": "mmHg", "position": "SUPINE", "low": 60.0, "high": 90.0}
    standing = {**supine, "position": "STANDING"}
    return frame(
        {**supine, "usubjid": "V1", "date": "2023-12-30", "value": 80.0, "is_baseline": True},
        {**standing, "usubjid": "V1", "date": "2023-12-30", "value": 100.0, "is_baseline": True},
        {**supine, "usubjid": "V1", "date": "2024-01-10", "value": 95.0},
        {**standing, "usubjid": "V1", "date": "2024-01-10", "value": 85.0},
    )


def test_two_baseline_measurements_are_not_merged() -> None:
    records = supine_standing()
    listed = labs.measurements(records)
    assert listed["label"].tolist() == [
        "Diastolic Blood Pressure (mmHg), STANDING",
        "Diastolic Blood Pressure (mmHg), SUPINE",
    ]
    with pytest.raises(ValueError, match="several measurements"):
        labs.range_shift(records, "DIABP")
    supine = labs.range_shift(records, "DIABP", "Diastolic Blood Pressure (mmHg), SUPINE")
    standing = labs.range_shift(records, "DIABP", "Diastolic Blood Pressure (mmHg), STANDING")
    assert cell(supine, "A", "NORMAL", "HIGH") == (1, 1)
    assert cell(standing, "A", "HIGH", "NORMAL") == (1, 1)
    marked = labs.baseline_and_post(records)
    assert marked["is_baseline_record"].tolist() == [True, True, False, False]
    assert marked["baseline_value"].tolist() == [80.0, 100.0, 80.0, 100.0]


def test_measurement_labels_name_the_timepoint_and_several_specimens() -> None:
    records = frame(
        {
            "usubjid": "1",
            "test_code": "GLUC",
            "test": "Glucose",
            "unit": "mmol/L",
            "specimen": "SERUM",
        },
        {
            "usubjid": "1",
            "test_code": "GLUC",
            "test": "Glucose",
            "unit": "mmol/L",
            "specimen": "URINE",
        },
        {"usubjid": "1", "specimen": "SERUM", "timepoint": "AFTER LYING DOWN FOR 5 MINUTES"},
    )
    assert labs.measurements(records)["label"].tolist() == [
        "Alanine Aminotransferase (U/L), AFTER LYING DOWN FOR 5 MINUTES",
        "Glucose (mmol/L), SERUM",
        "Glucose (mmol/L), URINE",
    ]


# -- the grade shift and the incidence -------------------------------------------------------------

TERM = "Alanine aminotransferase increased"


def graded() -> tuple[pd.DataFrame, pd.DataFrame]:
    """G1: baseline grade 0, post grades 1 and 3 (and a grade 4 of another term, ignored) ->
    Grade 0 -> Grade 3; G2: baseline not gradable -> MISSING -> Grade 2; G3: post-baseline
    records without a grade (not counted). Arm B: G4 Grade 1 -> Grade 1; G5 without a baseline
    record -> MISSING -> Grade 2."""
    records = frame(
        alt("G1", "2023-12-30", 30, baseline=True),  # 0
        alt("G1", "2024-01-10", 70),  # 1
        alt("G1", "2024-01-20", 300),  # 2
        alt("G2", "2023-12-30", 30, baseline=True),  # 3
        alt("G2", "2024-01-10", 150),  # 4
        alt("G3", "2023-12-30", 30, baseline=True),  # 5
        alt("G3", "2024-01-10", 35),  # 6
        alt("G4", "2023-12-30", 50, baseline=True, arm="B"),  # 7
        alt("G4", "2024-01-10", 60, arm="B"),  # 8
        alt("G5", "2024-01-10", 130, arm="B"),  # 9: no baseline record
    )
    grades = pd.DataFrame(
        {
            "record": [0, 1, 2, 2, 4, 6, 7, 8, 9],
            "term": [TERM, TERM, TERM, "Other term", TERM, TERM, TERM, TERM, TERM],
            "direction": ["H"] * 9,
            "grade": pd.array([0, 1, 3, 4, 2, None, 1, 1, 2], dtype="Int64"),
            "source": ["test"] * 9,
        }
    )
    return records, grades


def test_grade_shift_cells_and_subjects() -> None:
    records, grades = graded()
    table = labs.grade_shift(records, grades, "ALT", TERM)
    assert nonzero_cells(table) == {
        ("A", "Grade 0", "Grade 3"): (1, 2),
        ("A", "MISSING", "Grade 2"): (1, 2),
        ("B", "Grade 1", "Grade 1"): (1, 2),
        ("B", "MISSING", "Grade 2"): (1, 2),
    }
    assert table.baseline_order[-1] == "MISSING"
    assert table.wide("A").loc["Grade 0", "Grade 3"] == "1 (50.0%)"
    subjects = labs.grade_shift_subjects(
        records, grades, "ALT", TERM, arm="A", baseline="Grade 0", post="Grade 3"
    )
    assert subjects["usubjid"].tolist() == ["G1"]
    assert subjects["worst_value"].tolist() == [300.0]
    assert subjects["worst_date"].tolist() == [pd.Timestamp("2024-01-20")]


def test_abnormal_incidence_without_grades() -> None:
    table = labs.abnormal_incidence(shift_records(), None)
    by_arm = table.set_index("arm")
    # A: S1, S2, S3, S5 have post-baseline values; S2 low; S1 and S2 high (S5's pre-dose high
    # is not post-baseline). B: S6, S7, S8; S8 high.
    assert list(by_arm.loc["A", ["N", "low_n", "high_n"]]) == [4, 1, 2]
    assert list(by_arm.loc["B", ["N", "low_n", "high_n"]]) == [3, 0, 1]
    assert by_arm.loc["A", "high_pct"] == pytest.approx(50.0)
    assert by_arm.loc["B", "high_pct"] == pytest.approx(100 / 3)
    assert table["grade3_n"].isna().all()
    label = "Alanine Aminotransferase (U/L)"
    high = labs.incidence_subjects(shift_records(), None, label, "A", "high")
    assert high["usubjid"].tolist() == ["S1", "S2"]
    assert high["highest"].tolist() == [50.0, 45.0]
    everyone = labs.incidence_subjects(shift_records(), None, label, None, None)
    assert everyone["usubjid"].tolist() == ["S1", "S2", "S3", "S5", "S6", "S7", "S8"]


def test_abnormal_incidence_grade_3() -> None:
    records, grades = graded()
    vitals = supine_standing()  # no grades at all: grade 3 unknown, not 0
    table = labs.abnormal_incidence(pd.concat([records, vitals], ignore_index=True), grades)
    alt_rows = table[table["test_code"] == "ALT"].set_index("arm")
    # A: G1 (grade 3 on its own record; the grade 4 is another term of the same record, also
    # counted as a grade >= 3 record), G2 grade 2, G3 ungraded: 1 of 3. B: G4 grade 1, G5 grade 2: 0 of 2.
    assert list(alt_rows.loc["A", ["N", "grade3_n"]]) == [3, 1]
    assert list(alt_rows.loc["B", ["N", "grade3_n"]]) == [2, 0]
    assert alt_rows.loc["A", "grade3_pct"] == pytest.approx(100 / 3)
    assert table.loc[table["test_code"] == "DIABP", "grade3_n"].isna().all()


# -- eDISH and Hy's law ----------------------------------------------------------------------------


def liver(usubjid: str, code: str, date: str, value: float, **other: Any) -> dict[str, Any]:
    """ULNs: ALT 40, AST 40, BILI 20."""
    uln = {"ALT": 40.0, "AST": 40.0, "BILI": 20.0}[code]
    unit = "umol/L" if code == "BILI" else "U/L"
    return {
        "usubjid": usubjid,
        "test_code": code,
        "test": code,
        "unit": unit,
        "date": date,
        "value": value,
        "high": uln,
        **other,
    }


def liver_records() -> pd.DataFrame:
    return frame(
        # H1: exactly 3.0 and 2.0 x ULN, the bilirubin 31 days after the ALT.
        liver("H1", "ALT", "2024-01-10", 120),
        liver("H1", "BILI", "2024-02-10", 40),
        # H2: AST 4 x, bilirubin 1.5 x.
        liver("H2", "AST", "2024-01-10", 160),
        liver("H2", "BILI", "2024-01-10", 30),
        # H3: ALT 2 x, bilirubin 2.5 x.
        liver("H3", "ALT", "2024-01-10", 80),
        liver("H3", "BILI", "2024-01-10", 50),
        # H4: just under both.
        liver("H4", "ALT", "2024-01-10", 119),
        liver("H4", "BILI", "2024-01-10", 39),
        # H5: bilirubin without a ULN.
        liver("H5", "ALT", "2024-01-10", 200),
        liver("H5", "BILI", "2024-01-10", 50, high=np.nan),
        # H6: a high ALT before the first dose (not on treatment), normal after.
        liver("H6", "ALT", "2023-12-20", 400),
        liver("H6", "ALT", "2024-01-10", 40),
        liver("H6", "BILI", "2024-01-10", 20),
        # H7: no first dose: post-baseline records (after the baseline) count.
        liver("H7", "ALT", "2023-12-20", 400, first_dose=None, is_baseline=True),
        liver("H7", "ALT", "2024-01-10", 200, first_dose=None),
        liver("H7", "BILI", "2023-12-20", 20, first_dose=None, is_baseline=True),
        liver("H7", "BILI", "2024-01-11", 60, first_dose=None),
        # H8: the bilirubin 30 days after the ALT, and an earlier peak AST.
        liver("H8", "ALT", "2024-01-10", 120),
        liver("H8", "AST", "2024-01-05", 200),
        liver("H8", "BILI", "2024-02-09", 45),
        # H9: the bilirubin before the transaminase only.
        liver("H9", "BILI", "2024-01-05", 60),
        liver("H9", "ALT", "2024-01-10", 150),
    )


def test_edish_quadrants_and_peaks() -> None:
    points = labs.edish_points(liver_records()).set_index("usubjid")
    assert points["quadrant"].to_dict() == {
        "H1": labs.HYS_LAW,  # 3.0 and 2.0 count as at or above
        "H2": labs.TEMPLE,
        "H3": labs.HYPERBILIRUBINAEMIA,
        "H4": labs.NORMAL_RANGE,
        "H5": labs.NOT_ASSESSABLE,
        "H6": labs.NORMAL_RANGE,
        "H7": labs.HYS_LAW,
        "H8": labs.HYS_LAW,
        "H9": labs.HYS_LAW,
    }
    assert points.loc["H1", "peak_alt_uln"] == 3.0
    assert points.loc["H1", "peak_bili_uln"] == 2.0
    assert points["peak_ast_uln"].isna()["H1"]
    assert points.loc["H1", "peak_transaminase_uln"] == 3.0
    assert points["peak_bili_uln"].isna()["H5"]
    assert points.loc["H6", "peak_alt_uln"] == 1.0  # the pre-dose 10 x is left out
    assert points.loc["H7", "peak_alt_uln"] == 5.0  # the baseline 10 x is left out
    assert points.loc["H8", "peak_transaminase_uln"] == 5.0  # AST 200 / 40
    assert points.loc["H8", "peak_ast_date"] == pd.Timestamp("2024-01-05")
    assert points.loc["H8", "peak_bili_date"] == pd.Timestamp("2024-02-09")
    assert labs.hys_law_candidates(points.reset_index()) == ["H1", "H7", "H8", "H9"]


def test_hys_law_window() -> None:
    records = liver_records()
    within_30 = labs.edish_points(records, window_days=30).set_index("usubjid")["quadrant"]
    # H1: 31 days apart, out; H8: 30 days after the ALT, in (the AST, 35 days before, is not
    # needed); H9: bilirubin only before; H7: the next day.
    assert within_30["H1"] == labs.OUTSIDE_WINDOW
    assert within_30["H8"] == labs.HYS_LAW
    assert within_30["H9"] == labs.OUTSIDE_WINDOW
    assert within_30["H7"] == labs.HYS_LAW
    assert within_30["H2"] == labs.TEMPLE  # the window changes Hy's law only
    within_31 = labs.edish_points(records, window_days=31).set_index("usubjid")["quadrant"]
    assert within_31["H1"] == labs.HYS_LAW
    assert labs.hys_law_candidates(within_30.reset_index()) == ["H7", "H8"]
    assert "{days}" in labs.HYS_LAW_WINDOW_RULE and "3 x ULN" in labs.HYS_LAW_RULE


# -- values over time ------------------------------------------------------------------------------


def test_values_over_time_by_visit_number() -> None:
    records = frame(
        alt("S1", "2024-01-20", 30, visit="WEEK 2", visit_number=3.0),
        alt("S1", "2023-12-30", 20, visit="SCREENING", visit_number=1.0, baseline=True),
        alt("S1", "2024-01-10", 25, visit="UNSCHEDULED 1.1", visit_number=1.1),
        alt("S2", "2024-01-10", np.nan, visit="WEEK 2", visit_number=3.0),
    )
    label = "Alanine Aminotransferase (U/L)"
    values = labs.values_over_time(records, label)
    assert values["value"].tolist() == [20.0, 25.0, 30.0]  # S2's empty record left out
    assert labs.visit_order(values) == ["SCREENING", "UNSCHEDULED 1.1", "WEEK 2"]
    # The boxes: scheduled visits only (UNSCHEDULED 1.1 left out), by visit number.
    scheduled = labs.scheduled_values(values)
    assert scheduled["visit"].tolist() == ["SCREENING", "WEEK 2"]
    boxes = labs.box_stats(scheduled)
    assert boxes["visit"].tolist() == ["SCREENING", "WEEK 2"]
    assert boxes[["n", "lowest", "median", "highest"]].values.tolist() == [
        [1, 20.0, 20.0, 20.0],
        [1, 30.0, 30.0, 30.0],
    ]
    series = labs.subject_series(records, label, "S1")
    assert series["date"].tolist() == sorted(series["date"].tolist())


# -- the CDISC pilot -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pilot() -> pd.DataFrame:
    """The pilot's chemistry (lbch) in the frame contract, arms and first doses from dm."""
    if not PILOT_DIR.is_dir():
        reference_absent(f"reference data folder {PILOT_DIR} is absent")
    lb, _ = pyreadstat.read_xport(str(PILOT_DIR / "lbch.xpt"))
    dm, _ = pyreadstat.read_xport(str(PILOT_DIR / "dm.xpt"))
    lb = lb.merge(dm[["USUBJID", "SITEID", "ACTARM", "RFXSTDTC"]], on="USUBJID", how="left")

    def text(column: pd.Series) -> pd.Series:
        return column.astype(object).where(column.astype(str).str.strip() != "", None)

    return pd.DataFrame(
        {
            "usubjid": lb["USUBJID"],
            "site_id": lb["SITEID"],
            "arm": lb["ACTARM"],
            "domain": lb["DOMAIN"],
            "test_code": lb["LBTESTCD"],
            "test": lb["LBTEST"],
            "unit": text(lb["LBSTRESU"]),
            "category": text(lb["LBCAT"]),
            "specimen": None,
            "position": None,
            "timepoint": None,
            "value": lb["LBSTRESN"].astype(float),
            "low": lb["LBSTNRLO"].astype(float),
            "high": lb["LBSTNRHI"].astype(float),
            "indicator": text(lb["LBNRIND"]),
            "grade_given": None,
            "is_baseline": lb["LBBLFL"].eq("Y"),
            "date": pd.to_datetime(lb["LBDTC"].str[:10], errors="coerce"),
            "study_day": lb["LBDY"].astype(float),
            "visit": lb["VISIT"],
            "visit_number": lb["VISITNUM"].astype(float),
            "first_dose": pd.to_datetime(text(lb["RFXSTDTC"]), errors="coerce"),
        }
    )


def independent_alt_shift() -> dict[tuple[str, str, str], int]:
    """The ALT shift counts straight from the xpt files, subject by subject: baseline LBNRIND of
    the LBBLFL record (the latest), worst LBNRIND of the later, non-baseline records on or after
    RFXSTDTC."""
    lb, _ = pyreadstat.read_xport(str(PILOT_DIR / "lbch.xpt"))
    dm, _ = pyreadstat.read_xport(str(PILOT_DIR / "dm.xpt"))
    lb = lb[lb["LBTESTCD"] == "ALT"]
    dose = dict(zip(dm["USUBJID"], dm["RFXSTDTC"], strict=True))
    arm = dict(zip(dm["USUBJID"], dm["ACTARM"], strict=True))
    counts: dict[tuple[str, str, str], int] = {}
    for usubjid, rows in lb.groupby("USUBJID"):
        days = rows["LBDTC"].str[:10]
        flagged = rows[rows["LBBLFL"] == "Y"]
        base_day = max(flagged["LBDTC"].str[:10]) if len(flagged) else None
        base_class = "MISSING"
        if base_day is not None:
            latest = flagged[flagged["LBDTC"].str[:10] == base_day].iloc[-1]
            if latest["LBNRIND"] in ("LOW", "NORMAL", "HIGH"):
                base_class = latest["LBNRIND"]
        first = dose[usubjid] or None
        classes = set()
        for day, flag, indicator in zip(days, rows["LBBLFL"], rows["LBNRIND"], strict=True):
            if flag == "Y" or (base_day is None and first is None):
                continue
            if (base_day is not None and day <= base_day) or (first is not None and day < first):
                continue
            if indicator in ("LOW", "NORMAL", "HIGH"):
                classes.add(indicator)
        if not classes:
            continue
        worst = (
            "LOW AND HIGH"
            if {"LOW", "HIGH"} <= classes
            else "HIGH"
            if "HIGH" in classes
            else "LOW"
            if "LOW" in classes
            else "NORMAL"
        )
        key = (arm[usubjid], base_class, worst)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_pilot_alt_shift_matches_an_independent_count(pilot: pd.DataFrame) -> None:
    table = labs.range_shift(pilot, "ALT")
    found = {key: n for key, (n, _whole) in nonzero_cells(table).items()}
    expected = independent_alt_shift()
    assert found == expected
    assert sum(expected.values()) > 200  # the pilot's treated subjects, not an empty table
    for arm_name in table.arms:
        whole = sum(n for (a, _b, _w), n in expected.items() if a == arm_name)
        assert set(table.cells.loc[table.cells["arm"] == arm_name, "N"]) == {whole}


def test_pilot_edish_points_for_three_subjects(pilot: pd.DataFrame) -> None:
    points = labs.edish_points(pilot).set_index("usubjid")
    # 01-705-1186 (Placebo, site 705): ALT 107 / 32 on 2014-01-29, AST 135 / 34 the same day,
    # bilirubin 124.83 / 21 first on 2014-01-26 (again on 01-29: the earliest is kept).
    hy = points.loc["01-705-1186"]
    assert hy["site_id"] == "705" and hy["arm"] == "Placebo"
    assert hy["peak_alt_uln"] == pytest.approx(107 / 32)
    assert hy["peak_ast_uln"] == pytest.approx(135 / 34)
    assert hy["peak_transaminase_uln"] == pytest.approx(135 / 34)
    assert hy["peak_bili_uln"] == pytest.approx(124.83 / 21)
    assert hy["peak_bili_date"] == pd.Timestamp("2014-01-26")
    assert hy["quadrant"] == labs.HYS_LAW
    # 01-709-1029 (Xanomeline High Dose): ALT peak 18 / 35 (2013-06-26), AST 27 / 36
    # (2013-06-12), bilirubin 53.01 / 21 (2013-05-15): hyperbilirubinaemia.
    bili = points.loc["01-709-1029"]
    assert bili["peak_alt_uln"] == pytest.approx(18 / 35)
    assert bili["peak_ast_uln"] == pytest.approx(27 / 36)
    assert bili["peak_bili_uln"] == pytest.approx(53.01 / 21)
    assert bili["peak_alt_date"] == pd.Timestamp("2013-06-26")
    assert bili["quadrant"] == labs.HYPERBILIRUBINAEMIA
    # 01-701-1015 (Placebo): the baseline AST 40 / 34 is left out; on treatment ALT 41 / 34 and
    # AST 33 / 34 on 2014-01-16, bilirubin 8.55 / 21 (first on 2014-01-16).
    normal = points.loc["01-701-1015"]
    assert normal["peak_alt_uln"] == pytest.approx(41 / 34)
    assert normal["peak_ast_uln"] == pytest.approx(33 / 34)
    assert normal["peak_bili_uln"] == pytest.approx(8.55 / 21)
    assert normal["peak_bili_date"] == pd.Timestamp("2014-01-16")
    assert normal["quadrant"] == labs.NORMAL_RANGE
    assert labs.hys_law_candidates(points.reset_index()) == ["01-705-1186"]


# -- charts ----------------------------------------------------------------------------------------


def datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def test_edish_chart_spec() -> None:
    points = labs.edish_points(liver_records())
    spec = lab_charts.edish_chart(points, "STUDY 1").to_dict()
    layers = spec["layer"]
    dots = next(layer for layer in layers if layer["mark"]["type"] == "circle")
    assert dots["encoding"]["x"]["scale"]["type"] == "log"
    assert dots["encoding"]["y"]["scale"]["type"] == "log"
    assert dots["encoding"]["href"]["field"] == "href"
    rules = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    rule_data = spec["datasets"][rules[0]["data"]["name"]]
    assert rule_data == [{"x": 3.0, "y": 2.0}]
    assert {next(iter(r["encoding"])) for r in rules} == {"x", "y"}
    rows = spec["datasets"][dots["data"]["name"]]
    # One datum per assessable subject (H5 has no bilirubin ULN).
    assert sorted(r["usubjid"] for r in rows) == ["H1", "H2", "H3", "H4", "H6", "H7", "H8", "H9"]
    h1 = next(r for r in rows if r["usubjid"] == "H1")
    assert h1["href"] == "subject?study=STUDY%201&subject=H1"
    assert h1["x_plot"] == 3.0 and h1["bili_plot"] == 2.0
    names = {r["name"] for data in datasets(spec) for r in data if "name" in r}
    assert names == {labs.HYS_LAW, labs.TEMPLE, labs.HYPERBILIRUBINAEMIA, labs.NORMAL_RANGE}


def test_edish_chart_shades_the_normal_range_above_the_dot_limit() -> None:
    points = labs.edish_points(liver_records())
    normal = points[points["quadrant"] == labs.NORMAL_RANGE]
    outside = points[~points["quadrant"].isin([labs.NORMAL_RANGE, labs.NOT_ASSESSABLE])]
    assert len(normal) >= 1 and len(outside) >= 1
    # Under the limit: every assessable subject a dot, no cells.
    spec = lab_charts.edish_chart(points, "S").to_dict()
    assert "rect" not in {layer["mark"]["type"] for layer in spec["layer"]}
    # Over it (a limit of 2 here): the normal-range subjects counted in cells, the others dots.
    spec = lab_charts.edish_chart(points, "S", dot_limit=2).to_dict()
    dots = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    shade = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rect")
    dotted = {r["usubjid"] for r in spec["datasets"][dots["data"]["name"]]}
    assert dotted == set(outside["usubjid"])
    cells = spec["datasets"][shade["data"]["name"]]
    assert sum(c["subjects"] for c in cells) == len(normal)
    # Each normal-range subject lies in a cell that counts it.
    for _, row in normal.iterrows():
        x, y = row["peak_transaminase_uln"], row["peak_bili_uln"]
        assert any(c["x"] <= x < c["x2"] and c["y"] <= y < c["y2"] for c in cells)


def test_edish_chart_clips_zero_at_the_floor() -> None:
    points = labs.edish_points(
        frame(liver("Z1", "ALT", "2024-01-10", 0.0), liver("Z1", "BILI", "2024-01-10", 10))
    )
    spec = lab_charts.edish_chart(points, "S").to_dict()
    rows = max(datasets(spec), key=lambda data: len(data[0]))
    assert rows[0]["x_plot"] == lab_charts.LOG_FLOOR
    assert rows[0]["x_value"] == 0.0  # the tooltip keeps the real value


def test_chart_constants_match_the_metrics() -> None:
    assert lab_charts.TRANSAMINASE_LIMIT == labs.TRANSAMINASE_LIMIT
    assert lab_charts.BILIRUBIN_LIMIT == labs.BILIRUBIN_LIMIT
    for name in ("HYS_LAW", "TEMPLE", "HYPERBILIRUBINAEMIA", "NORMAL_RANGE", "NOT_ASSESSABLE"):
        assert getattr(lab_charts, name) == getattr(labs, name)


def test_box_and_subject_charts() -> None:
    records = shift_records().assign(
        visit=lambda f: np.where(f["is_baseline"], "BASELINE", "WEEK 1"),
        visit_number=lambda f: np.where(f["is_baseline"], 1.0, 2.0),
        study_day=lambda f: (f["date"] - pd.Timestamp("2024-01-01")).dt.days + 1.0,
    )
    label = "Alanine Aminotransferase (U/L)"
    values = labs.values_over_time(records, label)
    boxes = labs.box_stats(values)
    box = lab_charts.box_by_visit(boxes, label).to_dict()
    assert [layer["mark"]["type"] for layer in box["layer"]] == ["rule", "bar", "tick"]
    assert box["layer"][0]["encoding"]["x"]["sort"] == ["BASELINE", "WEEK 1"]
    assert box["layer"][0]["encoding"]["xOffset"]["field"] == "arm"
    # The browser gets a row per visit and arm, not a row per value.
    assert len(datasets(box)[0]) == len(boxes) < len(values)
    series = labs.subject_series(records, label, "S1")
    alone = lab_charts.subject_values(series).to_dict()
    assert [layer["mark"]["type"] for layer in alone["layer"]] == ["area", "line", "point"]
    band = json.dumps(alone)
    assert '"band_high": 40.0' in band and '"band_low": 10.0' in band
    aes = pd.DataFrame({"term": ["Headache"], "start_day": [3.0], "end_day": [9.0]})
    both = lab_charts.subject_values(series, aes).to_dict()
    assert len(both["vconcat"]) == 2
    assert both["resolve"]["scale"]["x"] == "shared"


def test_no_records_gives_empty_tables_not_errors() -> None:
    empty = shift_records().iloc[0:0]
    assert labs.measurements(empty).empty
    table = labs.range_shift(empty, "ALT")
    assert table.cells.empty
    assert table.wide(None).loc["Total", "Total"] == "0"
    assert labs.abnormal_incidence(empty, None).empty
    points = labs.edish_points(empty)
    assert points.empty and "quadrant" in points
    spec = lab_charts.edish_chart(points, "S").to_dict()
    assert all(len(data) <= 1 for data in datasets(spec))  # the rules and corner names only


def test_a_subject_without_an_arm_is_counted() -> None:
    records = frame(
        alt("N1", "2023-12-30", 20, baseline=True, arm=None),
        alt("N1", "2024-01-10", 50, arm=None),
    )
    table = labs.range_shift(records, "ALT")
    assert nonzero_cells(table) == {(labs.NO_ARM, "NORMAL", "HIGH"): (1, 1)}
    assert list(labs.abnormal_incidence(records, None)["arm"]) == [labs.NO_ARM]


def test_box_stats_are_pandas_quartiles_per_visit_and_arm() -> None:
    rng = np.random.default_rng(7)
    values = pd.DataFrame(
        {
            "visit": rng.choice(["WEEK 2", "BASELINE", "WEEK 4"], 300),
            "arm": rng.choice(["A", "B"], 300),
            "value": rng.normal(30, 8, 300),
        }
    )
    values["visit_number"] = values["visit"].map({"BASELINE": 1.0, "WEEK 2": 2.0, "WEEK 4": 3.0})
    boxes = labs.box_stats(values)
    assert boxes["visit"].drop_duplicates().tolist() == ["BASELINE", "WEEK 2", "WEEK 4"]
    for row in boxes.to_dict("records"):
        mine = values.loc[
            (values["visit"] == row["visit"]) & (values["arm"] == row["arm"]), "value"
        ]
        assert row["n"] == len(mine)
        assert row["lowest"] == mine.min() and row["highest"] == mine.max()
        assert np.isclose(row["q1"], np.percentile(mine, 25))
        assert np.isclose(row["median"], np.percentile(mine, 50))
        assert np.isclose(row["q3"], np.percentile(mine, 75))
