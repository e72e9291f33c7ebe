"""The pack's laboratory safety section (issue #21): for each of the pack's tests (ALT, AST,
bilirubin, creatinine) the shift of the range class and of the CTCAE grade from baseline to the
worst post-baseline value by arm, the eDISH points and the potential Hy's law cases.

The figures are the Labs page's (``views.labs``): the same records read through the viewer's
``Reader`` (site scope, and arms pooled for a blinded viewer), the same shift tables and the same
default CTCAE term per measurement, read from what the load counted per subject
(``models.LabSubjectSummary``): no raw lab record is read.
"""

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session

from dashboard.metrics import labs
from dashboard.queries import labs as lab_queries
from dashboard.results.dates import as_date
from dashboard.views.context import ViewContext
from dashboard.views.labs import PACK_TESTS, edish, lab_measurements, measurement_shifts
from dashboard.views.reader import Reader

NO_LAB_DATA = "No laboratory data in this cut."
# A study stored before the load counted its lab figures (migration 0007), as the page says it.
SUMMARY_MISSING = (
    "This study's laboratory figures are counted when a data cut is imported, and its current "
    "cut was stored before they were: import the study again to fill in this section."
)
TOTAL_ARM = "Total"  # the all-arms column of a shift table, where there are several arms
RANGE = "Range"
GRADE = "CTCAE grade"

HYS_LAW_LABELS = {
    "usubjid": "USUBJID",
    "site_id": "Site",
    "arm": "Arm",
    "peak_alt_uln": "Peak ALT (x ULN)",
    "peak_alt_date": "Peak ALT date",
    "peak_ast_uln": "Peak AST (x ULN)",
    "peak_ast_date": "Peak AST date",
    "peak_bili_uln": "Peak bilirubin (x ULN)",
    "peak_bili_date": "Peak bilirubin date",
}
SHIFT_SHEET_COLUMNS = [
    "Test code",
    "Measurement",
    "Table",
    "CTCAE term",
    "Arm",
    "Baseline",
    "Worst post-baseline",
    "n",
    "N",
    "%",
]


@dataclass(frozen=True)
class LabTestShifts:
    """One measurement of a pack test: its range shift and the grade shift of its first CTCAE
    term (the Labs page's default term), None where no term grades it."""

    test_code: str
    measurement: str  # the label of ``labs.measurements``
    range_shift: labs.ShiftTable
    term: str | None
    grade_shift: labs.ShiftTable | None


@dataclass(frozen=True)
class LabSafety:
    has_lab_data: bool  # any LB record of the safety population in scope
    tests: tuple[LabTestShifts, ...]
    missing_tests: tuple[str, ...]  # the pack's tests the cut has no record of
    edish: pd.DataFrame  # ``labs.edish_points``
    hys_law: tuple[str, ...]  # ``labs.hys_law_candidates``: subject codes, sorted
    rules: tuple[str, ...]  # baseline, post-baseline and worst rules, as the page states them
    hys_law_rule: str = labs.HYS_LAW_RULE
    # The study has findings and no load-time summary (``views.labs.LabsView.summary_missing``).
    summary_missing: bool = False

    @property
    def hys_law_cases(self) -> pd.DataFrame:
        """The potential Hy's law cases with display headers: subject, site, arm, the peaks as
        multiples of the ULN and their dates (dates as ``datetime.date``)."""
        cases = self.edish[self.edish["quadrant"] == labs.HYS_LAW]
        shown = cases.reindex(columns=list(HYS_LAW_LABELS)).copy()
        for column in ("peak_alt_date", "peak_ast_date", "peak_bili_date"):
            shown[column] = [as_date(v) for v in shown[column]]
        shown = shown.sort_values("usubjid", kind="stable")
        return shown.rename(columns=HYS_LAW_LABELS).reset_index(drop=True)

    @property
    def shift_sheet(self) -> pd.DataFrame:
        """Every shift table's cells, long: per arm and (with several arms) in total, n of the
        N subjects with a post-baseline value, and the per cent."""
        parts = []
        for test in self.tests:
            tables: list[tuple[str, str | None, labs.ShiftTable]] = [
                (RANGE, None, test.range_shift)
            ]
            if test.grade_shift is not None:
                tables.append((GRADE, test.term, test.grade_shift))
            for kind, term, table in tables:
                parts.append(_long_cells(table, test.test_code, test.measurement, kind, term))
        if not parts:
            return pd.DataFrame(columns=SHIFT_SHEET_COLUMNS)
        return pd.concat(parts, ignore_index=True)[SHIFT_SHEET_COLUMNS]


def shift_arms(table: labs.ShiftTable) -> list[str | None]:
    """The arms a shift table is shown for: each arm, then None (all arms together) where there
    are several (a blinded viewer's one pooled arm is its own total)."""
    arms: list[str | None] = list(table.arms)
    return [*arms, None] if len(arms) > 1 else arms


def arm_subjects(table: labs.ShiftTable, arm: str | None) -> int:
    """N of ``arm`` (None: all arms): its subjects with a post-baseline value."""
    cells = table.cells if arm is None else table.cells[table.cells["arm"] == arm]
    return int(cells.drop_duplicates("arm")["N"].sum())


def _long_cells(
    table: labs.ShiftTable, code: str, measurement: str, kind: str, term: str | None
) -> pd.DataFrame:
    cells = table.cells[["arm", "baseline", "worst", "n", "N"]].copy()
    if len(table.arms) > 1:
        n = cells.groupby(["baseline", "worst"], sort=False)["n"].sum().reset_index()
        n["N"] = arm_subjects(table, None)
        n["arm"] = TOTAL_ARM
        cells = pd.concat([cells, n[cells.columns]], ignore_index=True)
    cells["pct"] = (100 * cells["n"] / cells["N"].where(cells["N"] > 0)).round(1)
    return pd.DataFrame(
        {
            "Test code": code,
            "Measurement": measurement,
            "Table": kind,
            "CTCAE term": term,
            "Arm": cells["arm"].astype(str),
            "Baseline": cells["baseline"].astype(str),
            "Worst post-baseline": cells["worst"].astype(str),
            "n": cells["n"].astype(int),
            "N": cells["N"].astype(int),
            "%": cells["pct"].astype(float),
        }
    )


def build_lab_safety(session: Session, ctx: ViewContext) -> LabSafety:
    """The laboratory safety section of ``ctx``'s pack (see the module's docstring)."""
    read = Reader(session, ctx)
    measurements = lab_measurements(read, "LB")
    has_lab_data = not measurements.empty
    rules = (labs.BASELINE_RULE, labs.POST_BASELINE_RULE, labs.WORST_RULE)
    points = edish(read)
    shifts: list[LabTestShifts] = []
    for code in PACK_TESTS:
        for label in measurements.loc[measurements["test_code"] == code, "label"]:
            found = measurement_shifts(read, measurements, str(label))
            shifts.append(
                LabTestShifts(code, str(label), found.range_shift, found.term, found.grade_shift)
            )
    present = {s.test_code for s in shifts}
    return LabSafety(
        has_lab_data=has_lab_data,
        tests=tuple(shifts),
        missing_tests=tuple(c for c in PACK_TESTS if c not in present),
        edish=points,
        hys_law=tuple(labs.hys_law_candidates(points)),
        rules=rules,
        summary_missing=read(lab_queries.summary_missing),
    )


def peak_text(value: object) -> str:
    """A peak as a multiple of the ULN, two decimals (blank where unknown)."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    return f"{float(value):.2f}"  # type: ignore[arg-type]


def date_text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else ""
