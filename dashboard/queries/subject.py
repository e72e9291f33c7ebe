"""One subject's whole record: identity (DM), eligibility (IE with the criterion wording), disposition
(DS), adverse events (AE), doses (EX), visits (SV) and findings.

The subject is looked up by study, code (USUBJID) and the viewer's site scope in one statement; every
other read goes by the subject's primary key, so the page never loads more than one subject's rows.
A subject outside the scope is not found, exactly like an unknown code (a code outside the scope
says nothing about whether it exists).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.models import (
    AdverseEvent,
    Criterion,
    Disposition,
    EligibilityFinding,
    Exposure,
    Finding,
    Site,
    Subject,
    Visit,
)
from dashboard.queries.scope import SiteScope, rows, subject_in_scope

ELIGIBILITY_COLUMNS = [
    "code",
    "protocol_version",
    "category",
    "text",
    "result",
    "assessed_dtc",
    "assessed_date",
]
DISPOSITION_COLUMNS = ["seq", "category", "term", "verbatim", "epoch", "dtc", "date"]
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


_IDENTITY = [
    "usubjid",
    "subjid",
    "population",
    "status",
    "arm_code",
    "arm",
    "actual_arm_code",
    "actual_arm",
    "arm_not_assigned_reason",
    "sex",
    "age",
    "age_unit",
    "race",
    "ethnicity",
    "screening_dtc",
    "screening_date",
    "consent_dtc",
    "enrollment_dtc",
    "enrollment_date",
    "first_dose_dtc",
    "first_dose_date",
]


def _frame(session: Session, stmt: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows(session.execute(stmt)), columns=columns)


def subject_record(
    session: Session, *, study_id: str, usubjid: str, scope: SiteScope
) -> SubjectRecord | None:
    """The subject ``usubjid`` of ``study_id`` with every record, or None if there is no such
    subject among those in ``scope``.

    Listings (columns as the ``*_COLUMNS`` lists name them): eligibility (the criteria the subject
    did not meet, protocol order), dispositions and adverse events (by date, then sequence),
    exposures and visits (by date), findings (by date, domain, test).
    """
    found = session.execute(
        select(
            col(Subject.id),
            *(col(getattr(Subject, name)) for name in _IDENTITY),
            col(Site.site_id),
            col(Site.name).label("site_name"),
            func.coalesce(col(Subject.country), col(Site.country)).label("country"),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope), col(Subject.usubjid) == usubjid)
    ).first()
    if found is None:
        return None
    identity = dict(found._mapping)
    pk = identity.pop("id")
    eligibility = _frame(
        session,
        select(
            col(Criterion.code),
            col(Criterion.protocol_version),
            col(Criterion.category),
            col(Criterion.text),
            col(EligibilityFinding.result),
            col(EligibilityFinding.assessed_dtc),
            col(EligibilityFinding.assessed_date),
        )
        .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
        .where(col(EligibilityFinding.subject_pk) == pk)
        .order_by(col(Criterion.seq), col(Criterion.code), col(Criterion.protocol_version)),
        ELIGIBILITY_COLUMNS,
    )

    def listing(table: Any, columns: list[str], *order: Any) -> pd.DataFrame:
        return _frame(
            session,
            select(*(col(getattr(table, name)) for name in columns))
            .where(col(table.subject_pk) == pk)
            # Undated records last on every database (PostgreSQL and SQLite differ by default).
            .order_by(*(o.nulls_last() for o in order), col(table.id)),
            columns,
        )

    return SubjectRecord(
        **identity,
        eligibility=eligibility,
        dispositions=listing(
            Disposition, DISPOSITION_COLUMNS, col(Disposition.date), col(Disposition.seq)
        ),
        adverse_events=listing(
            AdverseEvent,
            ADVERSE_EVENT_COLUMNS,
            col(AdverseEvent.start_date),
            col(AdverseEvent.seq),
        ),
        exposures=listing(Exposure, EXPOSURE_COLUMNS, col(Exposure.start_date)),
        visits=listing(Visit, VISIT_COLUMNS, col(Visit.date), col(Visit.visit_num)),
        findings=listing(
            Finding,
            FINDING_COLUMNS,
            col(Finding.date),
            col(Finding.domain),
            col(Finding.test_code),
        ),
    )


def subject_codes(
    session: Session, *, study_id: str, scope: SiteScope, contains: str = "", limit: int = 200
) -> tuple[list[str], int]:
    """Codes (USUBJID) of the study's subjects in scope that contain ``contains`` (any case), in
    code order, at most ``limit`` of them; and how many match in all."""
    where = [subject_in_scope(study_id=study_id, scope=scope)]
    if contains.strip():
        where.append(
            func.upper(col(Subject.usubjid)).contains(contains.strip().upper(), autoescape=True)
        )
    total = int(session.execute(select(func.count()).where(*where)).scalar_one())
    codes = session.execute(
        select(col(Subject.usubjid)).where(*where).order_by(col(Subject.usubjid)).limit(limit)
    ).scalars()
    return [str(code) for code in codes], total
