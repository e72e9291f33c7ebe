"""The listings a monitoring meeting reads row by row (the pack's workbook): every subject, every
screen failure with the criteria it failed, every AE. Query frames, arms dropped for a viewer who
sees none; the report lays them out."""

from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.ae_listing import derive_listing
from dashboard.queries import listings
from dashboard.views.adverse_events import events
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader


@dataclass(frozen=True)
class Listings:
    subjects: pd.DataFrame  # ``subject_listing``
    screen_failures: pd.DataFrame  # ``screen_failure_listing``
    adverse_events: pd.DataFrame  # every AE in scope (``derive_listing``), new ones first


def build_listings(session: Session, ctx: ViewContext, *, since_cut_id: int | None) -> Listings:
    read = Reader(session, ctx)
    every_event, _ = events(
        session, ctx, limit=None, in_population=False, new_first_since=since_cut_id
    )
    return Listings(
        subjects=read(listings.subject_listing),
        screen_failures=read(listings.screen_failure_listing),
        adverse_events=derive_listing(every_event, compare_cut_id=since_cut_id),
    )
