"""The visit schedule on a reference date with a window (the Enrollment page's section and the
Subject page's table): planned visits by site and status, and one row per subject."""

import datetime as dt

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.visits import derive_visit_status, schedule_grid
from dashboard.queries import visits
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader

# The per-subject visit table lists at most this many subjects.
SCHEDULE_SUBJECTS = 500


def planned(session: Session, ctx: ViewContext) -> pd.DataFrame:
    return Reader(session, ctx)(visits.planned_schedule)


def by_site(
    session: Session, ctx: ViewContext, *, as_of: dt.date, window_days: int
) -> tuple[pd.DataFrame, int]:
    """(planned visits by site and status on ``as_of``; enrolled subjects without a day 1)."""
    read = Reader(session, ctx)
    return (
        read(visits.visits_by_site, as_of=as_of, window_days=window_days),
        read(visits.enrolled_without_day_one),
    )


def grid(
    session: Session, ctx: ViewContext, *, as_of: dt.date, window_days: int, needing_action: bool
) -> tuple[pd.DataFrame, int]:
    """(one row per subject, one column per planned visit, at most ``SCHEDULE_SUBJECTS`` rows;
    how many subjects matched in all)."""
    schedules, total = Reader(session, ctx)(
        visits.subject_schedules,
        as_of=as_of,
        window_days=window_days,
        needing_action=needing_action,
        limit=SCHEDULE_SUBJECTS,
    )
    derived = derive_visit_status(schedules, as_of=as_of, window_days=window_days)
    return schedule_grid(derived), total


def subject_schedule(
    session: Session, ctx: ViewContext, usubjid: str, *, as_of: dt.date, window_days: int
) -> pd.DataFrame:
    """One subject's planned visits with their status on ``as_of``."""
    schedule = Reader(session, ctx)(
        visits.subject_visit_schedule, usubjid=usubjid, as_of=as_of, window_days=window_days
    )
    return derive_visit_status(schedule, as_of=as_of, window_days=window_days)
