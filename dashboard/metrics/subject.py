"""One subject's record as the Subject page shows it: the events of the timeline and the listings
with their study days.

Study days count from the subject's day 1, the reference start date (RFSTDTC: the enrollment date
here), with no day 0 (``metrics.study_days.study_day``). A screen failure has no day 1: its timeline
is on dates only and its listings have no study days.
"""

import datetime as dt

import pandas as pd

from dashboard.metrics.study_days import study_day
from dashboard.metrics.visits import DUE, MISSED, OVERDUE, UPCOMING
from dashboard.results.dates import as_date, is_missing, known_date
from dashboard.results.subject import (
    DOSE,
    MILESTONE,
    SEVERITY_CATEGORIES,
    VISIT,
    VISIT_OVERDUE,
    VISIT_WINDOW,
)

TIMELINE_COLUMNS = [
    "lane",
    "lane_order",
    "kind",
    "label",
    "category",
    "serious",
    "start_date",
    "end_date",
    "start_day",
    "end_day",
    "x_start",
    "x_end",
    "detail",
]


def with_study_days(
    frame: pd.DataFrame, *, day_one: dt.date | None, dates: dict[str, str]
) -> pd.DataFrame:
    """``frame`` with a study-day column for each date column (``dates``: date column -> name of
    the study-day column); None where the date or day 1 is unknown."""
    added = {
        day_column: pd.Series(
            [study_day(as_date(d), day_one) for d in frame[date_column]],
            index=frame.index,
            dtype="Int64",
        )
        for date_column, day_column in dates.items()
    }
    return frame.assign(**added)


def _offset(day: dt.date | None, day_one: dt.date | None) -> int | None:
    """Days from day 1 (day 1 is 0, day -1 is -1): the timeline's x position, on which the axis
    labels study days, so that no day 0 is drawn between -1 and 1."""
    if day is None or day_one is None:
        return None
    return (day - day_one).days


def timeline_events(
    *,
    day_one: dt.date | None,
    screening_date: dt.date | None,
    consent_dtc: str | None,
    first_dose_date: dt.date | None,
    dispositions: pd.DataFrame,
    exposures: pd.DataFrame,
    visits: pd.DataFrame,
    adverse_events: pd.DataFrame,
    schedule: pd.DataFrame | None = None,
    until: dt.date | None = None,
) -> pd.DataFrame:
    """The timeline of one subject: one row per mark or bar, lanes top to bottom.

    Lanes: "Milestones" (screening, consent, day 1, first dose, each disposition record), "Doses"
    (EX, a bar from start to end), "Visits" (SV as held; the planned windows of ``schedule``, the
    output of ``metrics.visits.derive_visit_status``, as light bars behind them), then one lane per
    AE ("AE <seq> <term>") with a bar from onset to end. An AE still ongoing runs to ``until`` (the
    subject's last disposition record, else the cut-off), never before its onset. Dates are the
    first day of partial periods. Rows without a date are left out.

    Columns (``TIMELINE_COLUMNS``): lane, lane_order, kind (milestone/dose/visit/window/ae), label,
    category (``CATEGORIES``), serious, start_date, end_date (the last day covered), start_day,
    end_day (study days, None without day 1), x_start, x_end (days from day 1; a bar covers its
    days whole, so x_end is the day after the last), detail (tooltip text).
    """
    records: list[dict[str, object]] = []

    def add(
        lane: str,
        lane_order: int,
        kind: str,
        label: str,
        category: str,
        start: dt.date | None,
        end: dt.date | None = None,
        *,
        serious: bool = False,
        detail: str = "",
    ) -> None:
        if start is None:
            return
        last = end if end is not None and end >= start else start
        x_start = _offset(start, day_one)
        x_end = _offset(last, day_one)
        records.append(
            {
                "lane": lane,
                "lane_order": lane_order,
                "kind": kind,
                "label": label,
                "category": category,
                "serious": serious,
                "start_date": start,
                "end_date": last,
                "start_day": study_day(start, day_one),
                "end_day": study_day(last, day_one),
                "x_start": x_start,
                "x_end": None if x_end is None else x_end + 1,
                "detail": detail or label,
            }
        )

    add("Milestones", 0, "milestone", "Screening", MILESTONE, screening_date)
    consent = known_date(consent_dtc)
    if consent is not None and consent != screening_date:
        add("Milestones", 0, "milestone", "Informed consent", MILESTONE, consent)
    add("Milestones", 0, "milestone", "Day 1 (RFSTDTC)", MILESTONE, day_one)
    if first_dose_date is not None and first_dose_date != day_one:
        add("Milestones", 0, "milestone", "First dose", MILESTONE, first_dose_date)
    for row in dispositions.to_dict("records"):
        term = str(row["term"] or row["verbatim"] or "")
        add(
            "Milestones",
            0,
            "milestone",
            term.capitalize(),
            MILESTONE,
            as_date(row["date"]),
            detail=f"{row['category'] or ''}: {term} ({row['epoch'] or 'no epoch'})",
        )
    for row in exposures.to_dict("records"):
        dose = "" if is_missing(row["dose"]) else f" {row['dose']:g} {row['unit'] or ''}".rstrip()
        add(
            "Doses",
            1,
            "dose",
            f"{row['treatment']}{dose}",
            DOSE,
            as_date(row["start_date"]),
            as_date(row["end_date"]),
            detail=f"{row['treatment']}{dose}, {row['route'] or 'route not given'}",
        )
    if schedule is not None and not schedule.empty and day_one is not None:
        for row in schedule.to_dict("records"):
            if row["status"] not in (UPCOMING, DUE, OVERDUE, MISSED):
                continue  # a visit held is drawn itself; one not expected has no window to keep
            add(
                "Visits",
                2,
                "window",
                str(row["visit"]),
                VISIT_OVERDUE if row["status"] == OVERDUE else VISIT_WINDOW,
                as_date(row["opens"]),
                as_date(row["closes"]),
                detail=f"{row['visit']}: planned day {row['planned_day']:g}, {row['status']}",
            )
    for row in visits.to_dict("records"):
        number = "" if is_missing(row["visit_num"]) else f" (VISITNUM {row['visit_num']:g})"
        add(
            "Visits",
            2,
            "visit",
            str(row["visit"]),
            VISIT,
            as_date(row["date"]),
            detail=f"{row['visit']}{number}",
        )
    for order, row in enumerate(adverse_events.to_dict("records"), start=3):
        start = as_date(row["start_date"])
        end = as_date(row["end_date"])
        ongoing = end is None
        if ongoing and start is not None:
            end = until if until is not None and until >= start else start
        severity = str(row["severity"] or "").strip().title()
        term = str(row["decoded_term"] or row["term"])
        serious = str(row["serious"] or "").strip().upper() == "Y"
        seq = "" if is_missing(row["seq"]) else f"{row['seq']:g} "
        add(
            f"AE {seq}{term}",
            order,
            "ae",
            term,
            severity if severity in SEVERITY_CATEGORIES else "Severity unknown",
            start,
            end,
            serious=serious,
            detail=(
                f"{term}: {row['severity'] or 'severity not given'}"
                + (", serious" if serious else "")
                + f", {row['start_dtc'] or '?'} to {row['end_dtc'] or 'ongoing'}"
            ),
        )
    return pd.DataFrame.from_records(records, columns=TIMELINE_COLUMNS)


def observed_until(*, status: str | None, dispositions: pd.DataFrame, cutoff: dt.date) -> dt.date:
    """How far the record reaches, where an ongoing AE's bar ends: the last disposition record of
    a subject who completed or discontinued, else the cut-off (the subject is still on study)."""
    dates = [d for d in map(as_date, dispositions["date"]) if d is not None]
    if status in ("COMPLETED", "DISCONTINUED") and dates:
        return max(dates)
    return cutoff


def identity_facts(
    *,
    site_id: str | None,
    arm: str | None,
    actual_arm: str | None,
    population: str,
    status: str | None,
    age: float | None,
    age_unit: str | None,
    sex: str | None,
) -> dict[str, str]:
    """The subject's identity as the page's headline shows it: site, arm (the actual arm beside
    it where it differs from the planned one), status, age, sex."""
    arm_text = arm or "no arm"
    if actual_arm and arm and actual_arm != arm:
        arm_text = f"{arm} (treated: {actual_arm})"
    unit = (age_unit or "years").lower()
    return {
        "Site": site_id or "–",
        "Arm": arm_text,
        "Status": (status or population).capitalize(),  # a screen failure has no status
        "Age": "–" if is_missing(age) or age is None else f"{age:g} {unit}",
        "Sex": sex or "–",
    }


# -- listings ---------------------------------------------------------------------------------------
# Column headings name the SDTM variable the values come from: monitors compare them with the data.

ELIGIBILITY_LABELS = {
    "code": "Criterion (IETESTCD)",
    "protocol_version": "Protocol version (TIVERS)",
    "category": "Category (IECAT)",
    "text": "Criterion wording (IETEST)",
    "result": "Result (IEORRES)",
    "assessed_dtc": "Assessed (IEDTC)",
}
DISPOSITION_LABELS = {
    "seq": "DSSEQ",
    "category": "Category (DSCAT)",
    "term": "Term (DSDECOD)",
    "verbatim": "Verbatim (DSTERM)",
    "epoch": "Epoch (EPOCH)",
    "dtc": "Date (DSSTDTC)",
    "study_day": "Study day",
}
ADVERSE_EVENT_LABELS = {
    "seq": "AESEQ",
    "term": "Term (AETERM)",
    "decoded_term": "Preferred term (AEDECOD)",
    "body_system": "System organ class (AEBODSYS)",
    "severity": "Severity (AESEV)",
    "grade": "Grade (AETOXGR)",
    "serious": "Serious (AESER)",
    "relationship": "Relationship (AEREL)",
    "outcome": "Outcome (AEOUT)",
    "action": "Action (AEACN)",
    "start_dtc": "Start (AESTDTC)",
    "end_dtc": "End (AEENDTC)",
    "start_day": "Start day (AESTDY)",
    "end_day": "End study day",
}
EXPOSURE_LABELS = {
    "treatment": "Treatment (EXTRT)",
    "dose": "Dose (EXDOSE)",
    "unit": "Unit (EXDOSU)",
    "route": "Route (EXROUTE)",
    "start_dtc": "Start (EXSTDTC)",
    "end_dtc": "End (EXENDTC)",
    "start_day": "Start study day",
    "end_day": "End study day",
}
VISIT_LABELS = {
    "visit_num": "VISITNUM",
    "visit": "Visit (VISIT)",
    "planned_day": "Planned day (VISITDY)",
    "dtc": "Date (SVSTDTC)",
    "study_day": "Study day",
}
FINDING_LABELS = {
    "domain": "Domain",
    "test_code": "Test code (--TESTCD)",
    "test": "Test (--TEST)",
    "location": "Location (--LOC)",
    "value_text": "Value",
    "unit": "Unit",
    "visit": "Visit",
    "dtc": "Date (--DTC)",
    "study_day": "Study day",
}
SCHEDULE_LABELS = {
    "visit_num": "VISITNUM",
    "visit": "Visit",
    "planned_day": "Planned day",
    "planned_window": "Window",
    "due_date": "Due",
    "held_on": "Held on",
    "held_day": "Held on study day",
    "status": "Status",
}
# Columns a listing keeps even when every value is blank (the others are dropped: a study without
# CTCAE grades shows no empty grade column).
_ALWAYS_SHOWN = {"seq", "term", "visit", "visit_num", "dtc", "start_dtc", "code", "text", "test"}


def listing(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """The columns of ``frame`` that ``labels`` names, in its order, headed by its labels; a column
    blank in every row is left out unless it is a key column."""
    keep = [
        c
        for c in labels
        if c in frame.columns
        and (
            c in _ALWAYS_SHOWN
            or not frame[c].map(lambda v: is_missing(v) or (isinstance(v, str) and not v)).all()
        )
    ]
    return frame[keep].rename(columns=labels).reset_index(drop=True)


def baseline_values(findings: pd.DataFrame) -> pd.DataFrame:
    """The findings flagged baseline (--BLFL, or the last value before day 1 the importer flagged),
    one row each, by domain and test."""
    baseline = findings[findings["is_baseline"].astype(bool)]
    return baseline.sort_values(["domain", "test_code", "location"], na_position="first")
