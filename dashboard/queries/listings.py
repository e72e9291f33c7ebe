"""Whole-study listings for exports (the monitoring pack's workbook): a row per subject and a row
per screen failure with the criteria it failed. Subject codes only, no direct identifiers."""

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session, col

from dashboard.models import Criterion, EligibilityFinding, Site, Subject
from dashboard.queries.scope import SiteScope, rows, subject_in_scope
from dashboard.results.population import SCREEN_FAILURE

SUBJECT_COLUMNS = [
    "usubjid",
    "site_id",
    "screening_date",
    "population",
    "arm",
    "actual_arm",
    "enrollment_date",
    "first_dose_date",
    "status",
    "sex",
    "age",
    "first_cut_id",
    "updated_cut_id",
]


def subject_listing(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Every subject in scope, by site and USUBJID.

    Columns: ``SUBJECT_COLUMNS``: usubjid, site_id, screening_date, population (enrolled, screen
    failure, ...), arm (ARM, planned), actual_arm (ACTARM), enrollment_date, first_dose_date,
    status, sex, age, first_cut_id, updated_cut_id (dates as ``datetime.date`` or None).
    """
    stmt = (
        select(
            col(Subject.usubjid),
            col(Site.site_id),
            col(Subject.screening_date),
            col(Subject.population),
            col(Subject.arm),
            col(Subject.actual_arm),
            col(Subject.enrollment_date),
            col(Subject.first_dose_date),
            col(Subject.status),
            col(Subject.sex),
            col(Subject.age),
            col(Subject.first_cut_id),
            col(Subject.updated_cut_id),
        )
        .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope))
        .order_by(col(Site.site_id).nulls_last(), col(Subject.usubjid))
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=SUBJECT_COLUMNS)


SCREEN_FAILURE_COLUMNS = [
    "usubjid",
    "site_id",
    "screening_date",
    "failed_criteria",
    "criteria_text",
    "first_cut_id",
    "updated_cut_id",
]


def screen_failure_listing(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Every screen failure in scope with the criteria it failed, by screening date.

    Columns: ``SCREEN_FAILURE_COLUMNS``: usubjid, site_id, screening_date, failed_criteria (the
    codes, protocol order, comma-separated; blank where IE records none), criteria_text ("CODE:
    wording" per criterion, semicolon-separated), first_cut_id, updated_cut_id.
    """
    where = [
        subject_in_scope(study_id=study_id, scope=scope),
        col(Subject.population) == SCREEN_FAILURE,
    ]
    subjects = pd.DataFrame(
        rows(
            session.execute(
                select(
                    col(Subject.id),
                    col(Subject.usubjid),
                    col(Site.site_id),
                    col(Subject.screening_date),
                    col(Subject.first_cut_id),
                    col(Subject.updated_cut_id),
                )
                .outerjoin(Site, col(Site.id) == col(Subject.site_pk))
                .where(*where)
                # Undated subjects last on every database (PostgreSQL and SQLite differ).
                .order_by(col(Subject.screening_date).nulls_last(), col(Subject.usubjid))
            )
        ),
        columns=["id", "usubjid", "site_id", "screening_date", "first_cut_id", "updated_cut_id"],
    )
    # One row per (subject, criterion failed), the subjects as a subquery: joined in pandas, where
    # a list per subject is one groupby (string aggregation differs between SQLite and PostgreSQL).
    failed = pd.DataFrame(
        rows(
            session.execute(
                select(
                    col(EligibilityFinding.subject_pk),
                    col(Criterion.code),
                    col(Criterion.protocol_version),
                    col(Criterion.text),
                )
                .join(Criterion, col(Criterion.id) == col(EligibilityFinding.criterion_pk))
                .where(
                    col(EligibilityFinding.subject_pk).in_(select(col(Subject.id)).where(*where))
                )
                .order_by(
                    col(EligibilityFinding.subject_pk),
                    col(Criterion.seq),
                    col(Criterion.code),
                    col(Criterion.protocol_version),
                )
            )
        ),
        columns=["subject_pk", "code", "protocol_version", "text"],
    )
    label = failed["code"] + failed["protocol_version"].map(lambda v: f" ({v})" if v else "")
    failed = failed.assign(label=label, wording=label + ": " + failed["text"])
    grouped = failed.groupby("subject_pk", sort=False)
    labels = grouped["label"].agg(", ".join).to_dict()
    wordings = grouped["wording"].agg("; ".join).to_dict()
    subjects["failed_criteria"] = [labels.get(pk, "") for pk in subjects["id"]]
    subjects["criteria_text"] = [wordings.get(pk, "") for pk in subjects["id"]]
    return subjects[SCREEN_FAILURE_COLUMNS].reset_index(drop=True)
