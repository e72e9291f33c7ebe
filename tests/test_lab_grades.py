"""CTCAE v5 laboratory grades (dashboard.metrics.lab_grades): boundary values written by hand from
the CTCAE wording, the baseline rule, the given grades, a cross-check against admiral's own
grading code, and the CDISC pilot's ALT and haemoglobin grades against plain pandas."""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from dashboard.metrics.lab_grades import CRITERIA, grade_records

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NAN = math.nan


def records(rows: list[dict[str, Any]], index: list[int] | None = None) -> pd.DataFrame:
    """A contract frame of ``rows`` (each naming at least test_code and value), the rest filled:
    one subject, no range, not baseline, no given grade."""
    defaults: dict[str, Any] = {
        "usubjid": "S1",
        "test_code": None,
        "unit": None,
        "value": NAN,
        "low": NAN,
        "high": NAN,
        "indicator": None,
        "is_baseline": False,
        "grade_given": None,
        "date": pd.NaT,
        "specimen": None,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["date"] = pd.to_datetime(frame["date"])
    if index is not None:
        frame.index = pd.Index(index)
    return frame


def grades_of(frame: pd.DataFrame, term: str) -> list[int | None]:
    """The grades of ``term``, in the order of the input's records (None: <NA>)."""
    out = grade_records(frame)
    mine = out[out["term"] == term].set_index("record")["grade"].reindex(frame.index)
    return [None if pd.isna(g) else int(g) for g in mine]


# -- boundary values, written from the CTCAE v5 wording --------------------------------------------


@dataclass(frozen=True)
class Boundaries:
    test_code: str
    unit: str | None
    low: float
    high: float
    term: str
    cases: list[tuple[float, int]]  # (value, the CTCAE grade)


# Just below, at and just above each threshold. Ranges are chosen so that float products are not
# exact (0.7 * 1.5 is 1.0499999999999998): a value of exactly 1.5 x ULN is still "1.5 x ULN".
BOUNDARIES = [
    Boundaries("HGB", "g/L", 120, 160, "Anemia",
               [(120, 0), (119.9, 1), (100, 1), (99.9, 2), (80, 2), (79.9, 3), (30, 3)]),
    Boundaries("HGB", "mmol/L", 7.5, 10, "Anemia",
               [(7.5, 0), (7.49, 1), (6.2, 1), (6.19, 2), (4.9, 2), (4.89, 3)]),
    Boundaries("HGB", "g/dL", 12, 16, "Anemia",
               [(12, 0), (11.9, 1), (10, 1), (9.99, 2), (8, 2), (7.99, 3)]),
    Boundaries("HGB", "g/L", 120, 160, "Hemoglobin increased",
               [(160, 0), (160.1, 1), (180, 1), (180.1, 2), (200, 2), (200.1, 3)]),
    Boundaries("HGB", "g/dL", 12, 16, "Hemoglobin increased",
               [(16, 0), (16.01, 1), (18, 1), (18.01, 2), (20, 2), (20.01, 3)]),
    # No mmol/L figure in CTCAE: 2 and 4 g/dL above the ULN are 1.241 and 2.482 mmol/L.
    Boundaries("HGB", "mmol/L", 7.5, 10, "Hemoglobin increased",
               [(10, 0), (10.01, 1), (11.241, 1), (11.25, 2), (12.482, 2), (12.49, 3)]),
    Boundaries("WBC", "10^9/L", 4, 11, "Leukocytosis", [(11.5, 0), (100, 0), (100.1, 3)]),
    Boundaries("WBC", "10^9/L", 4, 11, "White blood cell decreased",
               [(4, 0), (3.99, 1), (3, 1), (2.99, 2), (2, 2), (1.99, 3), (1, 3), (0.99, 4)]),
    # The same counts per mm3 (cells/uL): 2500/mm3 is 2.5 x 10e9/L.
    Boundaries("WBC", "/mm3", 4000, 11000, "White blood cell decreased",
               [(4000, 0), (3990, 1), (3000, 1), (2500, 2), (1000, 3), (990, 4)]),
    Boundaries("WBC", "10^3/uL", 4, 11, "White blood cell decreased", [(2.99, 2), (0.99, 4)]),
    Boundaries("LYM", "10^9/L", 1, 4, "Lymphocyte count decreased",
               [(1, 0), (0.99, 1), (0.8, 1), (0.79, 2), (0.5, 2), (0.49, 3), (0.2, 3), (0.19, 4)]),
    Boundaries("LYM", "10^9/L", 1, 3.5, "Lymphocyte count increased",
               [(3.6, 0), (4, 0), (4.01, 2), (20, 2), (20.01, 3)]),
    Boundaries("NEUT", "10^9/L", 2, 7, "Neutrophil count decreased",
               [(2, 0), (1.99, 1), (1.5, 1), (1.49, 2), (1, 2), (0.99, 3), (0.5, 3), (0.49, 4)]),
    Boundaries("ANC", "10^9/L", 2, 7, "Neutrophil count decreased", [(1.49, 2)]),
    Boundaries("PLAT", "10^9/L", 150, 400, "Platelet count decreased",
               [(150, 0), (149, 1), (75, 1), (74.9, 2), (50, 2), (49.9, 3), (25, 3), (24.9, 4)]),
    Boundaries("CD4", "10^9/L", 0.6, 1.5, "CD4 lymphocytes decreased",
               [(0.6, 0), (0.59, 1), (0.5, 1), (0.49, 2), (0.2, 2), (0.19, 3), (0.05, 3), (0.049, 4)]),
    Boundaries("APTT", "sec", 25, 35, "Activated partial thromboplastin time prolonged",
               [(35, 0), (35.01, 1), (52.5, 1), (52.51, 2), (87.5, 2), (87.51, 3)]),
    Boundaries("ALT", "U/L", 0, 40, "Alanine aminotransferase increased",
               [(40, 0), (40.01, 1), (120, 1), (120.01, 2), (200, 2), (200.01, 3), (800, 3), (800.01, 4)]),
    # ULN 0.1: 3 * 0.1 is 0.30000000000000004 in floating point, and 0.3 is still 3.0 x ULN.
    Boundaries("AST", "U/L", 0, 0.1, "Aspartate aminotransferase increased",
               [(0.1, 0), (0.1001, 1), (0.3, 1), (0.3001, 2), (0.5, 2), (0.5001, 3), (2, 3), (2.001, 4)]),
    Boundaries("ALP", "U/L", 40, 100, "Alkaline phosphatase increased",
               [(100, 0), (100.1, 1), (250, 1), (250.1, 2), (500, 2), (500.1, 3), (2000, 3), (2000.1, 4)]),
    Boundaries("GGT", "U/L", 5, 50, "GGT increased",
               [(50, 0), (50.1, 1), (125, 1), (125.1, 2), (250, 2), (250.1, 3), (1000, 3), (1000.1, 4)]),
    # ULN 0.7: 1.5 x 0.7 is 1.0499999999999998 and 3 x 0.7 is 2.0999999999999996 in floating point.
    Boundaries("BILI", "mg/dL", 0.1, 0.7, "Blood bilirubin increased",
               [(0.7, 0), (0.7001, 1), (1.05, 1), (1.0501, 2), (2.1, 2), (2.1001, 3), (7, 3), (7.001, 4)]),
    Boundaries("LDH", "U/L", 100, 250, "Blood lactate dehydrogenase increased",
               [(250, 0), (250.1, 1), (10000, 1)]),
    Boundaries("CK", "U/L", 20, 200, "CPK increased",
               [(200, 0), (200.1, 1), (500, 1), (500.1, 2), (1000, 2), (1000.1, 3), (2000, 3), (2000.1, 4)]),
    Boundaries("CREAT", "umol/L", 50, 100, "Creatinine increased",
               [(100, 0), (100.1, 1), (150, 1), (150.1, 2), (300, 2), (300.1, 3), (600, 3), (600.1, 4)]),
    # LLN 4 g/L: 0.25 x LLN is 1.0, apart from the absolute 0.5 g/L.
    Boundaries("FIBRINO", "g/L", 4, 8, "Fibrinogen decreased",
               [(4, 0), (3.99, 1), (3, 1), (2.99, 2), (2, 2), (1.99, 3), (1, 3), (0.99, 4)]),
    # LLN 1 g/L: below 0.5 g/L (<50 mg/dL) is grade 4 whatever the LLN multiple says.
    Boundaries("FIBRINO", "g/L", 1, 4, "Fibrinogen decreased", [(0.5, 2), (0.49, 4)]),
    Boundaries("FIBRINO", "mg/dL", 100, 400, "Fibrinogen decreased", [(50, 2), (49, 4)]),
    Boundaries("HAPTOG", "g/L", 0.3, 2, "Haptoglobin decreased", [(0.3, 0), (0.29, 1), (0.01, 1)]),
    Boundaries("INR", None, 0.8, 1.2, "INR increased",
               [(1.2, 0), (1.21, 1), (1.5, 1), (1.51, 2), (2.5, 2), (2.51, 3)]),
    # Grade 2 over 2.0 x ULN and grade 3 over 5.0 x ULN are the grades without symptoms.
    Boundaries("LIPASE", "U/L", 10, 60, "Lipase increased",
               [(60, 0), (60.1, 1), (90, 1), (90.1, 2), (120.1, 2), (300, 2), (300.1, 3)]),
    Boundaries("AMYLASE", "U/L", 30, 100, "Serum amylase increased",
               [(100, 0), (100.1, 1), (150, 1), (150.1, 2), (500, 2), (500.1, 3)]),
    Boundaries("CHOL", "mmol/L", 3, 5.2, "Cholesterol high",
               [(5.2, 0), (5.21, 1), (7.75, 1), (7.76, 2), (10.34, 2), (10.35, 3), (12.92, 3), (12.93, 4)]),
    Boundaries("CHOL", "mg/dL", 100, 200, "Cholesterol high",
               [(200, 0), (200.1, 1), (300, 1), (300.1, 2), (400, 2), (400.1, 3), (500, 3), (500.1, 4)]),
    # Grade 1 is "1.71 - 3.42 mmol/L": 1.71 itself is grade 1.
    Boundaries("TRIG", "mmol/L", 0.5, 1.7, "Hypertriglyceridemia",
               [(1.70, 0), (1.71, 1), (3.42, 1), (3.43, 2), (5.7, 2), (5.71, 3), (11.4, 3), (11.41, 4)]),
    Boundaries("TRIG", "mg/dL", 40, 150, "Hypertriglyceridemia",
               [(149.9, 0), (150, 1), (300, 1), (300.1, 2), (500, 2), (500.1, 3), (1000, 3), (1000.1, 4)]),
    Boundaries("URATE", "umol/L", 150, 400, "Hyperuricemia", [(400, 0), (400.1, 1), (2000, 1)]),
    Boundaries("ALB", "g/L", 35, 50, "Hypoalbuminemia",
               [(35, 0), (34.9, 1), (30, 1), (29.9, 2), (20, 2), (19.9, 3)]),
    Boundaries("ALB", "g/dL", 3.5, 5, "Hypoalbuminemia", [(3, 1), (2.99, 2), (2, 2), (1.99, 3)]),
    Boundaries("CA", "mmol/L", 2.1, 2.6, "Hypercalcemia",
               [(2.6, 0), (2.61, 1), (2.9, 1), (2.91, 2), (3.1, 2), (3.11, 3), (3.4, 3), (3.41, 4)]),
    Boundaries("CA", "mmol/L", 2.1, 2.6, "Hypocalcemia",
               [(2.1, 0), (2.09, 1), (2, 1), (1.99, 2), (1.75, 2), (1.74, 3), (1.5, 3), (1.49, 4)]),
    Boundaries("CA", "mg/dL", 8.5, 10.5, "Hypercalcemia",
               [(11.5, 1), (11.51, 2), (12.5, 2), (12.51, 3), (13.5, 3), (13.51, 4)]),
    Boundaries("CA", "mg/dL", 8.5, 10.5, "Hypocalcemia",
               [(8, 1), (7.99, 2), (7, 2), (6.99, 3), (6, 3), (5.99, 4)]),
    Boundaries("CAION", "mmol/L", 1.1, 1.3, "Hypercalcemia (Ionized)",
               [(1.3, 0), (1.31, 1), (1.5, 1), (1.51, 2), (1.6, 2), (1.61, 3), (1.8, 3), (1.81, 4)]),
    Boundaries("CAION", "mmol/L", 1.1, 1.3, "Hypocalcemia (Ionized)",
               [(1.1, 0), (1.09, 1), (1, 1), (0.99, 2), (0.9, 2), (0.89, 3), (0.8, 3), (0.79, 4)]),
    Boundaries("K", "mmol/L", 3.5, 5, "Hyperkalemia",
               [(5, 0), (5.01, 1), (5.5, 1), (5.51, 2), (6, 2), (6.01, 3), (7, 3), (7.01, 4)]),
    # Grade 2 (symptomatic, <LLN - 3.0) needs clinical input: <LLN - 3.0 is grade 1.
    Boundaries("K", "mmol/L", 3.5, 5, "Hypokalemia",
               [(3.5, 0), (3.49, 1), (3, 1), (2.99, 3), (2.5, 3), (2.49, 4)]),
    Boundaries("SODIUM", "mmol/L", 135, 145, "Hypernatremia",
               [(145, 0), (145.1, 1), (150, 1), (150.1, 2), (155, 2), (155.1, 3), (160, 3), (160.1, 4)]),
    # 125-129 mmol/L is grade 2 without symptoms; 120-124 grade 3 regardless.
    Boundaries("SODIUM", "mmol/L", 135, 145, "Hyponatremia",
               [(135, 0), (134.9, 1), (130, 1), (129.9, 2), (125, 2), (124.9, 3), (120, 3), (119.9, 4)]),
    Boundaries("NA", "mmol/L", 135, 145, "Hyponatremia", [(129, 2)]),
    # No grade 2: over 1.23 mmol/L is grade 3.
    Boundaries("MG", "mmol/L", 0.7, 1, "Hypermagnesemia",
               [(1, 0), (1.01, 1), (1.23, 1), (1.24, 3), (3.3, 3), (3.31, 4)]),
    Boundaries("MG", "mmol/L", 0.7, 1, "Hypomagnesemia",
               [(0.7, 0), (0.69, 1), (0.5, 1), (0.49, 2), (0.4, 2), (0.39, 3), (0.3, 3), (0.29, 4)]),
    Boundaries("MG", "mg/dL", 1.7, 2.5, "Hypermagnesemia", [(3, 1), (3.01, 3), (8, 3), (8.01, 4)]),
    Boundaries("MG", "mg/dL", 1.7, 2.5, "Hypomagnesemia",
               [(1.2, 1), (1.19, 2), (0.9, 2), (0.89, 3), (0.7, 3), (0.69, 4)]),
    Boundaries("GLUC", "mmol/L", 3.9, 6.1, "Hypoglycemia",
               [(3.9, 0), (3.89, 1), (3, 1), (2.99, 2), (2.2, 2), (2.19, 3), (1.7, 3), (1.69, 4)]),
    Boundaries("GLUC", "mg/dL", 70, 110, "Hypoglycemia",
               [(55, 1), (54.9, 2), (40, 2), (39.9, 3), (30, 3), (29.9, 4)]),
    Boundaries("PH", None, 7.35, 7.45, "Acidosis", [(7.35, 0), (7.34, 1), (7.3, 1), (7.29, 3)]),
    Boundaries("PH", None, 7.35, 7.45, "Alkalosis", [(7.45, 0), (7.46, 1), (7.5, 1), (7.51, 3)]),
]  # fmt: skip


@pytest.mark.parametrize("case", BOUNDARIES, ids=lambda c: f"{c.term}-{c.unit}")
def test_boundary_values(case: Boundaries) -> None:
    frame = records(
        [
            {
                "test_code": case.test_code,
                "unit": case.unit,
                "value": value,
                "low": case.low,
                "high": case.high,
            }
            for value, _ in case.cases
        ]
    )
    assert grades_of(frame, case.term) == [grade for _, grade in case.cases]


def test_every_term_of_the_table_has_boundary_values() -> None:
    assert set(CRITERIA["term"]) == {case.term for case in BOUNDARIES}


def test_output_shape_types_and_record_labels() -> None:
    frame = records(
        [
            {"test_code": "K", "unit": "mmol/L", "value": 6.2, "low": 3.5, "high": 5.0},
            {"test_code": "TSH", "unit": "mU/L", "value": 9.0},  # no CTCAE term: no row
            {"test_code": "alt", "unit": "U/L", "value": 50.0, "high": 40.0},  # code's case
        ],
        index=[10, 20, 30],
    )
    out = grade_records(frame)
    assert list(out.columns) == ["record", "term", "direction", "grade", "source"]
    assert str(out["grade"].dtype) == "Int64"
    assert out[["record", "term", "direction", "grade", "source"]].values.tolist() == [
        [10, "Hyperkalemia", "H", 3, "derived"],
        [10, "Hypokalemia", "L", 0, "derived"],
        [30, "Alanine aminotransferase increased", "H", 1, "derived"],
    ]


def test_no_records_give_an_empty_frame() -> None:
    out = grade_records(records([{"test_code": "TSH", "value": 1.0}]).iloc[:0])
    assert out.empty
    assert list(out.columns) == ["record", "term", "direction", "grade", "source"]


def test_urine_records_are_not_graded() -> None:
    frame = records(
        [
            {"test_code": "PH", "value": 5.0, "low": 7.35, "high": 7.45, "specimen": "URINE"},
            {"test_code": "PH", "value": 7.2, "low": 7.35, "high": 7.45, "specimen": "BLOOD"},
        ]
    )
    out = grade_records(frame)
    assert out["record"].tolist() == [1, 1]
    assert grades_of(frame, "Acidosis") == [None, 3]


# -- what cannot be graded --------------------------------------------------------------------------


def test_missing_value_limit_or_unit_gives_no_grade() -> None:
    frame = records(
        [
            {"test_code": "ALT", "unit": "U/L", "value": NAN, "high": 40.0},  # no value
            {"test_code": "ALT", "unit": "U/L", "value": 900.0},  # no ULN: every criterion needs it
            {"test_code": "HGB", "unit": "g/L", "value": 90.0},  # no LLN, but <100 g/L is grade 2
            {"test_code": "HGB", "unit": "g/L", "value": 110.0},  # no LLN: 1 or 0 cannot be told
            {"test_code": "HGB", "unit": "mg/mL", "value": 90.0, "low": 120.0},  # unit not in table
            {"test_code": "HGB", "unit": None, "value": 90.0, "low": 120.0},  # no unit
            {"test_code": "HGB", "unit": "G/L", "value": 90.0, "low": 120.0},  # spelling of g/L
        ]
    )
    assert grades_of(frame, "Anemia")[2:] == [2, None, None, None, 2]
    assert grades_of(frame, "Alanine aminotransferase increased")[:2] == [None, None]


def test_missing_limit_with_an_absolute_grade_above_it() -> None:
    frame = records(
        [
            {"test_code": "K", "unit": "mmol/L", "value": 6.5},  # >6.0 mmol/L: grade 3
            {"test_code": "K", "unit": "mmol/L", "value": 5.2},  # >ULN? cannot be told
            {"test_code": "K", "unit": "mmol/L", "value": 2.8},  # <3.0: hypokalemia 3
        ]
    )
    assert grades_of(frame, "Hyperkalemia") == [3, None, None]
    assert grades_of(frame, "Hypokalemia") == [None, None, 3]


# -- baseline-dependent criteria --------------------------------------------------------------------


def baseline_then(
    test_code: str,
    baseline: float,
    values: list[float],
    *,
    low: float = NAN,
    high: float = NAN,
    unit: str = "U/L",
) -> pd.DataFrame:
    """One subject's baseline record (dated 2020-01-01) and later records of ``values``."""
    return records(
        [
            {
                "test_code": test_code,
                "unit": unit,
                "value": baseline,
                "low": low,
                "high": high,
                "is_baseline": True,
                "date": "2020-01-01",
            },
            *[
                {
                    "test_code": test_code,
                    "unit": unit,
                    "value": v,
                    "low": low,
                    "high": high,
                    "date": "2020-02-01",
                }
                for v in values
            ],
        ]
    )


def test_alt_with_an_abnormal_baseline_is_graded_on_multiples_of_the_baseline() -> None:
    # ULN 40, baseline 60 (above it): 1.5 - 3.0 x baseline grade 1, >3.0 - 5.0 grade 2, ...
    values = [89.9, 90, 180, 180.1, 300, 300.1, 1200, 1200.1]
    frame = baseline_then("ALT", 60, values, high=40)
    # The baseline record itself has no baseline of its own: graded against the ULN (60 > 40).
    assert grades_of(frame, "Alanine aminotransferase increased") == [1, 0, 1, 1, 2, 2, 3, 3, 4]


def test_alt_with_a_normal_baseline_is_graded_on_the_uln() -> None:
    frame = baseline_then("ALT", 30, [40, 41, 121], high=40)
    assert grades_of(frame, "Alanine aminotransferase increased") == [0, 0, 1, 2]


def test_the_baseline_class_comes_from_the_indicator_where_given() -> None:
    # The baseline's value is inside the range, but the laboratory flagged it HIGH.
    frame = baseline_then("ALT", 30, [50], high=40)
    frame.loc[0, "indicator"] = "HIGH"
    # 50 is 1.67 x baseline (grade 1 either way); 44 would be 1.47 x baseline: grade 0.
    frame.loc[1, "value"] = 44.0
    assert grades_of(frame, "Alanine aminotransferase increased") == [0, 0]


@pytest.mark.parametrize(
    ("test_code", "term", "cases"),
    [
        # "2.0 - 2.5 x baseline": 2.0 x baseline is grade 1.
        ("ALP", "Alkaline phosphatase increased", [(199.9, 0), (200, 1), (250, 1), (250.1, 2)]),
        ("GGT", "GGT increased", [(199.9, 0), (200, 1), (250, 1), (250.1, 2)]),
        # "> 1.0 - 1.5 x baseline": the baseline value itself is grade 0.
        ("BILI", "Blood bilirubin increased", [(100, 0), (100.1, 1), (150, 1), (150.1, 2)]),
        ("AST", "Aspartate aminotransferase increased", [(149.9, 0), (150, 1), (300.1, 2)]),
    ],
)
def test_abnormal_baseline_multiples(
    test_code: str, term: str, cases: list[tuple[float, int]]
) -> None:
    frame = baseline_then(test_code, 100, [v for v, _ in cases], high=50)
    assert grades_of(frame, term)[1:] == [g for _, g in cases]


def test_creatinine_multiples_of_baseline_apply_whatever_the_baseline() -> None:
    # Baseline 50 (normal, ULN 100): >1.5 x baseline is grade 2 below the ULN; >3.0 x grade 3.
    frame = baseline_then("CREAT", 50, [75, 75.1, 150, 150.1], high=100)
    assert grades_of(frame, "Creatinine increased") == [0, 0, 2, 2, 3]
    # Without a baseline the ULN criteria alone apply.
    assert grades_of(frame[frame.index > 0], "Creatinine increased")[2:] == [1, 2]


def test_fibrinogen_decrease_from_baseline_when_below_the_lln() -> None:
    # LLN 2, baseline 5: a value below the LLN is graded by its decrease from baseline too.
    frame = baseline_then("FIBRINO", 5, [2.0, 1.9, 1.26, 1.25], low=2, unit="g/L")
    assert grades_of(frame, "Fibrinogen decreased") == [0, 0, 3, 3, 4]


def test_the_last_baseline_by_date_is_used_per_subject_and_unit() -> None:
    frame = records(
        [
            # S1 has two baseline records: the later (60, high) counts, not the earlier (30).
            {"test_code": "ALT", "unit": "U/L", "value": 60.0, "high": 40.0,
             "is_baseline": True, "date": "2020-01-05"},
            {"test_code": "ALT", "unit": "U/L", "value": 30.0, "high": 40.0,
             "is_baseline": True, "date": "2020-01-01"},
            {"test_code": "ALT", "unit": "U/L", "value": 80.0, "high": 40.0, "date": "2020-02-01"},
            # S2's baseline is normal: 80 is 2 x ULN, grade 1; S1's 80 is 1.33 x baseline: 0.
            {"usubjid": "S2", "test_code": "ALT", "unit": "U/L", "value": 30.0, "high": 40.0,
             "is_baseline": True, "date": "2020-01-01"},
            {"usubjid": "S2", "test_code": "ALT", "unit": "U/L", "value": 80.0, "high": 40.0,
             "date": "2020-02-01"},
            # S1's record in another unit has no baseline in that unit.
            {"test_code": "ALT", "unit": "ukat/L", "value": 1.4, "high": 0.6, "date": "2020-02-01"},
        ]
    )  # fmt: skip
    assert grades_of(frame, "Alanine aminotransferase increased") == [1, 0, 0, 0, 1, 1]


# -- given grades -----------------------------------------------------------------------------------


def test_a_given_grade_is_used_in_the_direction_the_value_lies() -> None:
    k = {"test_code": "K", "unit": "mmol/L", "low": 3.5, "high": 5.0}
    frame = records(
        [
            {**k, "value": 6.2, "grade_given": "1"},  # above: hyper 1 (derived would be 3)
            {**k, "value": 3.2, "grade_given": "2"},  # below: hypo 2
            {**k, "value": 4.0, "grade_given": "1"},  # inside: 0 both
            {"test_code": "K", "value": 3.2, "indicator": "LOW", "grade_given": "2"},  # by flag
            {"test_code": "K", "value": NAN, "grade_given": "2"},  # where? cannot be told
            {"test_code": "K", "value": 4.0, "indicator": "NORMAL", "grade_given": "1"},
            {**k, "value": 6.2, "grade_given": ""},  # not given: derived (6.2 > 6.0: 3)
            {"test_code": "ALT", "unit": "U/L", "value": 30.0, "high": 40.0, "grade_given": "2"},
        ]
    )
    out = grade_records(frame)
    assert grades_of(frame, "Hyperkalemia")[:7] == [1, 0, 0, 0, None, 0, 3]
    assert grades_of(frame, "Hypokalemia")[:7] == [0, 2, 0, 2, None, 0, 0]
    assert grades_of(frame, "Alanine aminotransferase increased")[7] == 2
    source = out.groupby("record")["source"].agg(set)
    assert source.tolist() == [{"given"}] * 6 + [{"derived"}, {"given"}]


# -- against admiral's grading code -----------------------------------------------------------------

NUMBER = r"(\d+(?:\.\d+)?)"
AVAL = r"signif\(AVAL, signif_dig\)"
# signif(AVAL, signif_dig) > signif(2.5*ANRHI, signif_dig) | ... > signif(ANRHI + 40, ...) |
# ... < 80 | ... > signif(1.2, signif_dig)
COMPARISON = re.compile(
    rf"^{AVAL}\s*(<=|>=|<|>)\s*(?:signif\((?:{NUMBER}\*)?(ANRHI|ANRLO)(?:\s*\+\s*{NUMBER})?,"
    rf" signif_dig\)|signif\({NUMBER}, signif_dig\)|{NUMBER})$"
)
MISSING = re.compile(r"^is\.na\((AVAL|ANRLO|ANRHI)\)(?:\s*\|\s*is\.na\((AVAL|ANRLO|ANRHI)\))?$")
CLAUSE = re.compile(r"\s*(.+?)\s*~\s*(\"\d\"|NA_character_)\s*,?")

# Terms where this module reads CTCAE differently from admiral on purpose (docs/lab-grading.md):
# admiral assumes the worst case for symptoms; these grade what the value alone shows.
LOWER_THAN_ADMIRAL = {
    "Hyperuricemia",
    "Lipase increased",
    "Serum amylase increased",
    "Hypokalemia",
}
# Hyponatremia: admiral's "<= 129" reads the integer range 125-129 on a continuous value; here it
# is "< 130". Hypertriglyceridemia: "1.71 - 3.42 mmol/L" includes 1.71 here, not in admiral.
DIFFERENT_READING = {"Hyponatremia": [], "Hypertriglyceridemia": [1.71, 150.0]}
# Ionized calcium in mg/dL: CTCAE gives no figure (admiral converted its mmol/L ones), so the
# table has none and grades such records <NA>.
NOT_IN_TABLE = {("Hypercalcemia (Ionized)", "mg/dL"), ("Hypocalcemia (Ionized)", "mg/dL")}


def signif(x: float) -> float:
    """R's signif(x, 15)."""
    return float(f"{x:.14e}") if math.isfinite(x) else x


Rule = tuple[Any, str | None]  # (condition on (value, low, high), grade or None for NA)


def parse_condition(text: str) -> Any | None:
    """The condition as a function of (value, low, high); None where it cannot be parsed."""
    found = MISSING.match(text)
    if found:
        names = [n for n in found.groups() if n]
        return lambda v, lo, hi: any(
            math.isnan({"AVAL": v, "ANRLO": lo, "ANRHI": hi}[n]) for n in names
        )
    found = COMPARISON.match(text)
    if not found:
        return None
    op, factor, limit, offset, number_a, number_b = found.groups()

    def holds(v: float, lo: float, hi: float) -> bool:
        if limit:
            ref = (hi if limit == "ANRHI" else lo) * float(factor or 1) + float(offset or 0)
        else:
            ref = float(number_a or number_b)
        a, b = signif(v), signif(ref)
        if math.isnan(a) or math.isnan(b):
            return False  # NA in a case_when condition: not taken
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]

    return holds


def admiral_rules(entry: dict[str, str]) -> list[Rule] | None:
    """The case_when clauses of an admiral entry in order (NA first, then grade 4 down to 1);
    None where any clause cannot be parsed or depends on the baseline."""
    rules: list[Rule] = []
    for key in ["GRADE_NA_CODE", "GRADE_4_CODE", "GRADE_3_CODE", "GRADE_2_CODE", "GRADE_1_CODE"]:
        code = entry.get(key)
        if not code:
            continue
        if re.search(r"BASE|BNRIND|PCHG", code):
            return None
        for condition, outcome in CLAUSE.findall(code):
            parsed = parse_condition(condition)
            if parsed is None:
                return None
            rules.append((parsed, None if outcome == "NA_character_" else outcome.strip('"')))
    return rules


def admiral_grade(rules: list[Rule], v: float, lo: float, hi: float) -> int | None:
    for condition, outcome in rules:
        if condition(v, lo, hi):
            return None if outcome is None else int(outcome)
    return 0


def grid(rules_text: str, low: float, high: float) -> list[float]:
    """Values around every number in the code and every multiple of the limits."""
    numbers = [float(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", rules_text)]
    anchors = {0.0, low, high, *numbers}
    anchors |= {n * limit for n in numbers for limit in (low, high)}
    anchors |= {high + n for n in numbers}
    return sorted(
        {a * f for a in anchors for f in (0.999, 1.0, 1.001)} | set(np.linspace(0, 3 * high, 61))
    )


def cross_check(path: Path, unit_of: dict[str, float]) -> tuple[int, list[str]]:
    """Grades of every parseable, baseline-free admiral entry in ``path`` against this module's
    on a grid of values and ranges (with a missing LLN or ULN too); returns the number compared
    and the mismatches."""
    entries = json.loads(path.read_text("utf-8"))
    codes = {t: c.split()[0] for t, c in zip(CRITERIA["term"], CRITERIA["test_codes"], strict=True)}
    compared, mismatches = 0, []
    for entry in entries:
        term, unit = entry["TERM"], entry.get("UNIT_CHECK") or ""
        rules = admiral_rules(entry)
        skipped = term in DIFFERENT_READING and not DIFFERENT_READING[term]
        if rules is None or unit not in unit_of or skipped:
            continue
        code_text = " ".join(entry.get(k, "") for k in entry if k.endswith("_CODE"))
        rows = []
        for low, high in [
            (unit_of[unit] * 0.4, unit_of[unit]),
            (unit_of[unit] * 0.8, unit_of[unit] * 1.3),
        ]:
            for v in grid(code_text, low, high):
                for lo, hi in [(low, high), (NAN, high), (low, NAN)]:
                    rows.append(
                        {
                            "test_code": codes[term],
                            "unit": unit or "U/L",
                            "value": v,
                            "low": lo,
                            "high": hi,
                        }
                    )
        frame = records(rows)
        ours = grades_of(frame, term)
        theirs = [admiral_grade(rules, r["value"], r["low"], r["high"]) for r in rows]
        compared += (term, unit) not in NOT_IN_TABLE
        for row, mine, admiral in zip(rows, ours, theirs, strict=True):
            if (term, unit) in NOT_IN_TABLE:
                ok = mine is None
            elif term in LOWER_THAN_ADMIRAL:
                ok = (mine is None and admiral is None) or (
                    mine is not None and admiral is not None and mine <= admiral
                )
            elif term in DIFFERENT_READING and row["value"] in DIFFERENT_READING[term]:
                ok = True
            else:
                ok = mine == admiral
            if not ok:
                mismatches.append(f"{term} [{unit}] {row}: ours {mine}, admiral {admiral}")
    return compared, mismatches


# A typical ULN per unit for the grid (the LLN is taken below it); "" for unitless (pH, INR) and
# for admiral's range-relative entries, graded here in U/L.
SI_SCALES = {"": 40.0, "g/L": 160.0, "10^9/L": 4.0, "mmol/L": 5.0, "MMOL/L": 5.0}
# admiral's "10^3/mL" entries hold per-mm3 figures under a mistaken unit: left out.
US_SCALES = {"g/dL": 16.0, "10^3/uL": 4.0, "1/uL": 1000.0, "mg/dL": 10.0, "MMOL/L": 5.0, "": 40.0}


@pytest.mark.parametrize(("file", "scales", "at_least"), [
    ("ncictcaev5.json", SI_SCALES, 20),
    ("ncictcaev5_uscv.json", US_SCALES, 15),
])  # fmt: skip
def test_grades_agree_with_admiral(
    shared_data: Path, file: str, scales: dict[str, float], at_least: int
) -> None:
    compared, mismatches = cross_check(shared_data / "labs" / "admiral" / file, scales)
    assert not mismatches[:20], f"{len(mismatches)} mismatches"
    assert compared >= at_least


# -- the CDISC pilot --------------------------------------------------------------------------------


def pilot_records(shared_data: Path) -> pd.DataFrame:
    frames = []
    for name in ["lbch", "lbhe", "lbur"]:
        frame, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "cdiscpilot01" / f"{name}.xpt"))
        frames.append(frame)
    lb = pd.concat(frames, ignore_index=True)
    return pd.DataFrame(
        {
            "usubjid": lb["USUBJID"],
            "test_code": lb["LBTESTCD"],
            "unit": lb["LBSTRESU"].replace("", None),
            "value": lb["LBSTRESN"],
            "low": lb["LBSTNRLO"],
            "high": lb["LBSTNRHI"],
            "indicator": lb["LBNRIND"].replace("", None),
            "is_baseline": lb["LBBLFL"] == "Y",
            "grade_given": None,
            "date": pd.to_datetime(lb["LBDTC"].str[:10], errors="coerce"),
            "specimen": lb["LBCAT"].map({"URINALYSIS": "URINE"}),
        }
    )


def test_pilot_alt_grades_match_plain_pandas(shared_data: Path) -> None:
    frame = pilot_records(shared_data)
    out = grade_records(frame)
    ours = out[out["term"] == "Alanine aminotransferase increased"]["grade"].value_counts()

    alt = frame[frame["test_code"] == "ALT"]
    base = alt[alt["is_baseline"]].sort_values("date").groupby("usubjid").last()
    base_high = (base["indicator"] == "HIGH") | (
        base["indicator"].isna() & (base["value"] > base["high"])
    )
    baseline = alt["usubjid"].map(base["value"])
    abnormal = alt["usubjid"].map(base_high).fillna(False).astype(bool) & ~alt["is_baseline"]
    by_uln = alt["value"] / alt["high"]
    by_base = alt["value"] / baseline
    # >ULN - 3.0 x ULN: 1, >3.0 - 5.0: 2, >5.0 - 20.0: 3, >20.0: 4 (baseline normal)
    normal_grade = pd.cut(by_uln, [-np.inf, 1, 3, 5, 20, np.inf], labels=[0, 1, 2, 3, 4])
    # 1.5 - 3.0 x baseline: 1, >3.0 - 5.0: 2, ... (baseline abnormal)
    abnormal_grade = np.select(
        [by_base > 20, by_base > 5, by_base > 3, by_base >= 1.5], [4, 3, 2, 1], 0
    )
    expected = pd.Series(np.where(abnormal, abnormal_grade, normal_grade.astype(float)))
    expected = expected[alt["value"].notna().to_numpy() & alt["high"].notna().to_numpy()]
    assert abnormal.sum() > 0, "the pilot has subjects with a high baseline ALT"
    assert ours.sort_index().to_dict() == expected.astype(int).value_counts().sort_index().to_dict()
    assert ours.drop(0).sum() > 0


def test_pilot_haemoglobin_in_mmol_per_litre(shared_data: Path) -> None:
    frame = pilot_records(shared_data)
    out = grade_records(frame)
    ours = out[out["term"] == "Anemia"]["grade"].value_counts().sort_index().to_dict()
    hgb = frame[(frame["test_code"] == "HGB") & frame["value"].notna() & frame["low"].notna()]
    assert set(hgb["unit"]) == {"mmol/L"}
    # <LLN - 6.2 mmol/L: 1, <6.2 - 4.9: 2, <4.9: 3
    expected = np.select(
        [hgb["value"] < 4.9, hgb["value"] < 6.2, hgb["value"] < hgb["low"]], [3, 2, 1], 0
    )
    assert ours == pd.Series(expected).value_counts().sort_index().to_dict()


# -- the documentation ------------------------------------------------------------------------------


def test_the_documentation_lists_every_term_and_test_code() -> None:
    doc = (PROJECT_ROOT / "docs" / "lab-grading.md").read_text("utf-8")
    missing = [t for t in set(CRITERIA["term"]) if f"| {t} |" not in doc]
    assert not missing
    codes = {c for text in CRITERIA["test_codes"] for c in text.split()}
    assert not [c for c in codes if f"`{c}`" not in doc]
