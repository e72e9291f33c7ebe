"""One subject's record (``queries.subject.subject_record``), and the categories of the timeline
drawn from it (``metrics.subject.timeline_events`` -> ``charts.subject``)."""

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

# The timeline's colour categories: the record's own kinds, then AE severities mildest first.
MILESTONE = "Milestone"
DOSE = "Dose"
VISIT = "Visit held"
VISIT_WINDOW = "Planned visit window"
VISIT_OVERDUE = "Overdue visit window"
SEVERITY_CATEGORIES = ("Mild", "Moderate", "Severe", "Severity unknown")
CATEGORIES = (MILESTONE, DOSE, VISIT, VISIT_WINDOW, VISIT_OVERDUE, *SEVERITY_CATEGORIES)

ELIGIBILITY_COLUMNS = [
    "code",
    "protocol_version",
    "category",
    "text",
    "result",
    "assessed_dtc",
    "assessed_date",
    "natural_key",  # the record's key in the cuts' history and the review log
]
DISPOSITION_COLUMNS = [
    "seq", "category", "term", "verbatim", "epoch", "dtc", "date", "natural_key",
]  # fmt: skip
ADVERSE_EVENT_COLUMNS = [
    "seq",
    "term",
    "decoded_term",
    "body_system",
    "severity",
    "grade",
    "serious",
    "relationship",
    "outcome",
    "action",
    "start_dtc",
    "end_dtc",
    "start_day",
    "start_date",
    "end_date",
    "natural_key",
]
EXPOSURE_COLUMNS = [
    "treatment",
    "dose",
    "unit",
    "route",
    "start_dtc",
    "end_dtc",
    "start_date",
    "end_date",
]
VISIT_COLUMNS = ["visit_num", "visit", "planned_day", "dtc", "date"]
FINDING_COLUMNS = [
    "domain",
    "test_code",
    "test",
    "location",
    "value_num",
    "value_text",
    "unit",
    "visit",
    "dtc",
    "date",
    "is_baseline",
]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


@dataclass(frozen=True)
class SubjectRecord:
    """A subject's identity and every record of the subject, as plain values and DataFrames."""

    usubjid: str
    subjid: str | None
    site_id: str | None
    site_name: str | None
    country: str | None
    population: str
    status: str | None
    arm_code: str | None
    arm: str | None
    actual_arm_code: str | None
    actual_arm: str | None
    arm_not_assigned_reason: str | None
    sex: str | None
    age: float | None
    age_unit: str | None
    race: str | None
    ethnicity: str | None
    screening_dtc: str | None
    screening_date: dt.date | None
    consent_dtc: str | None
    enrollment_dtc: str | None
    enrollment_date: dt.date | None
    first_dose_dtc: str | None
    first_dose_date: dt.date | None
    eligibility: pd.DataFrame = field(default_factory=lambda: _empty(ELIGIBILITY_COLUMNS))
    dispositions: pd.DataFrame = field(default_factory=lambda: _empty(DISPOSITION_COLUMNS))
    adverse_events: pd.DataFrame = field(default_factory=lambda: _empty(ADVERSE_EVENT_COLUMNS))
    exposures: pd.DataFrame = field(default_factory=lambda: _empty(EXPOSURE_COLUMNS))
    visits: pd.DataFrame = field(default_factory=lambda: _empty(VISIT_COLUMNS))
    findings: pd.DataFrame = field(default_factory=lambda: _empty(FINDING_COLUMNS))
