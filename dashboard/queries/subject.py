"""One subject's whole record: identity (DM), eligibility (IE with the criterion wording), disposition
(DS), adverse events (AE), doses (EX), visits (SV) and findings.

The subject is looked up by study, code (USUBJID) and the viewer's site scope in one statement; every
other read goes by the subject's primary key, so the page never loads more than one subject's rows.
A subject outside the scope is not found, exactly like an unknown code (a code outside the scope
says nothing about whether it exists).
"""

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
from dashboard.results.subject import (
    ADVERSE_EVENT_COLUMNS,
    DISPOSITION_COLUMNS,
    ELIGIBILITY_COLUMNS,
    EXPOSURE_COLUMNS,
    FINDING_COLUMNS,
    VISIT_COLUMNS,
    SubjectRecord,
)

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
            col(EligibilityFinding.natural_key),
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
