"""Adverse events: headline counts and incidence by system organ class."""

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import ColumnElement, case, func, select
from sqlmodel import Session, col

from dashboard.models import AdverseEvent, Subject
from dashboard.queries.scope import SiteScope, rows, subject_in_scope

# Blank AEDECOD/AEBODSYS (the SDTM-MSG sample has them blank): the page groups by the verbatim term
# and an explicit "uncoded" class rather than dropping the events.
UNCODED_SOC = "(not coded)"


@dataclass(frozen=True)
class AdverseEventCounts:
    events: int
    subjects: int
    serious_events: int
    serious_subjects: int


def is_serious() -> ColumnElement[bool]:
    """AESER = Y (any case): the SQL condition every serious-event count uses."""
    return func.upper(func.coalesce(col(AdverseEvent.serious), "")) == "Y"


def adverse_event_counts(
    session: Session, *, study_id: str, scope: SiteScope
) -> AdverseEventCounts:
    """Every AE in the data for the study's subjects in scope: events and distinct subjects, all and
    serious (AESER = Y)."""
    serious = is_serious()
    stmt = (
        select(
            func.count(col(AdverseEvent.id)),
            func.count(func.distinct(col(AdverseEvent.subject_pk))),
            func.coalesce(func.sum(case((serious, 1), else_=0)), 0),
            func.count(func.distinct(case((serious, col(AdverseEvent.subject_pk)), else_=None))),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope))
    )
    events, subjects, serious_events, serious_subjects = session.execute(stmt).one()
    return AdverseEventCounts(
        int(events), int(subjects), int(serious_events), int(serious_subjects)
    )


def incidence_by_soc(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    """Subjects and events per system organ class (AEBODSYS; blank as ``UNCODED_SOC``).

    Columns: body_system, subjects, events. Sorted by subjects, most first.
    """
    soc = func.coalesce(func.nullif(col(AdverseEvent.body_system), ""), UNCODED_SOC)
    stmt = (
        select(
            soc.label("body_system"),
            func.count(func.distinct(col(AdverseEvent.subject_pk))).label("subjects"),
            func.count(col(AdverseEvent.id)).label("events"),
        )
        .join(Subject, col(Subject.id) == col(AdverseEvent.subject_pk))
        .where(subject_in_scope(study_id=study_id, scope=scope))
        .group_by(soc)
        .order_by(func.count(func.distinct(col(AdverseEvent.subject_pk))).desc(), soc)
    )
    return pd.DataFrame(rows(session.execute(stmt)), columns=["body_system", "subjects", "events"])
