"""The queries as a view reads them, with blinding applied in one place.

Every view builder and every drilldown reads the database through a ``Reader``: it fills in the
context's study, site scope and screening period, and for a viewer who may not see arms
(``ViewContext.shows_arms`` False) it pools or drops every arm in the answer before anything
else sees it, by the rule registered for that query below. A query whose answer names arms and
has no rule is refused for such a viewer (``BlindingError``): a new query cannot leak arms by
being forgotten here, it fails the blinded-viewer test instead.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.blinding import (
    ARM_COLUMNS,
    POOLED,
    blind_subject_record,
    drop_arm_columns,
    pool_arms,
    pool_numeric,
    pool_reasons,
    pool_safety_population,
    pool_safety_summary,
    pool_term_incidence,
)
from dashboard.queries import (
    adverse_events,
    baseline,
    enrollment,
    labs,
    listings,
    safety_counts,
    subject,
    visits,
)
from dashboard.views.context import ViewContext

R = TypeVar("R")


class BlindingError(RuntimeError):
    """A query's answer would name arms to a viewer who may not see them."""


def _listing(found: Any, _: Mapping[str, Any]) -> Any:
    """A listing (or a (listing, total) pair) without its arm columns."""
    if isinstance(found, tuple):
        return (drop_arm_columns(found[0]), *found[1:])
    return drop_arm_columns(found)


def _pooled_rows(found: pd.DataFrame, _: Mapping[str, Any]) -> pd.DataFrame:
    """Rows of the safety population each kept, their arm the pooled one: the lab figures are
    counted from them as from one arm."""
    return found.assign(arm=POOLED)


def _not_by_arm(found: Any, kwargs: Mapping[str, Any]) -> Any:
    """Table 1 and its drilldowns have a column per arm when ``by="arm"``: for a viewer who sees
    no arms they are by site (the Overall column is the pooled one)."""
    if kwargs.get("by") == "arm":
        raise BlindingError("figures by arm were asked for a viewer who sees no arms")
    return found


def _enrolled_by_arm(found: pd.DataFrame, _: Mapping[str, Any]) -> pd.DataFrame:
    if found.empty:
        return found
    return pd.DataFrame(
        {"arm_code": [None], "arm": [POOLED], "enrolled": [found["enrolled"].sum()]}
    )


def _pooled_boxes(found: pd.DataFrame, kwargs: Mapping[str, Any]) -> pd.DataFrame:
    """Quartiles do not add up over arms: a viewer who sees no arms gets the boxes the load
    counted over all arms together, or none."""
    if not kwargs.get("pooled"):
        raise BlindingError("boxes by arm were asked for a viewer who sees no arms")
    return found.assign(arm=POOLED)


# The answer of each query that names arms, as a viewer who may not see them gets it.
POOLING: dict[Callable[..., Any], Callable[[Any, Mapping[str, Any]], Any]] = {
    enrollment.discontinuation_reasons: lambda found, _: pool_reasons(found),
    enrollment.outcome_by_arm: lambda found, _: pool_numeric(found),
    enrollment.enrolled_by_arm: _enrolled_by_arm,
    enrollment.site_subjects: _listing,
    adverse_events.safety_population: lambda found, _: pool_safety_population(found),
    safety_counts.safety_summary: lambda found, _: pool_safety_summary(found),
    safety_counts.incidence_by_term: lambda found, _: pool_term_incidence(found),
    safety_counts.subjects_by_worst_level: lambda found, _: pool_arms(found, counts=["subjects"]),
    safety_counts.events_by_source_value: lambda found, _: pool_arms(
        found, counts=["events", "subjects"]
    ),
    adverse_events.adverse_event_listing: _listing,
    adverse_events.discontinuations_from_ds: _listing,
    listings.subject_listing: _listing,
    visits.subject_schedules: _listing,
    # The protocol's schedule names the arm of an arm-specific visit: kept, without the arm.
    visits.planned_schedule: lambda found, _: found.assign(arm_code=""),
    visits.subject_visit_schedule: _listing,
    subject.subject_record: lambda found, _: found and blind_subject_record(found),
    # A blinded viewer's lab figures are of the pooled safety population.
    labs.lab_records: _pooled_rows,
    labs.lab_values: _pooled_rows,
    labs.shift_subjects: _pooled_rows,
    labs.stored_boxes: _pooled_boxes,
    labs.shift_counts: lambda found, _: pool_arms(found, counts=["n"]),
    labs.liver_peaks: _pooled_rows,
    labs.lab_counts: lambda found, _: pool_arms(found, counts=labs.COUNTS),
    baseline.table_one_counts: _not_by_arm,
    baseline.subjects_with_value: _not_by_arm,
}


def names_arms(found: Any) -> bool:
    """Whether an answer carries an arm column anywhere (frames, dataclass fields, pairs)."""
    if isinstance(found, pd.DataFrame):
        return any(str(c).lower() in ARM_COLUMNS for c in found.columns)
    if isinstance(found, tuple | list):
        return any(names_arms(item) for item in found)
    if dataclasses.is_dataclass(found) and not isinstance(found, type):
        return any(names_arms(getattr(found, f.name)) for f in dataclasses.fields(found))
    return False


@functools.cache
def _parameters(query: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(query).parameters)


class Reader:
    """Calls queries for one ``ViewContext``: ``read(enrollment.funnel)`` is
    ``enrollment.funnel(session, study_id=..., scope=..., period=...)`` with the context's values
    (each only where the query takes it and the caller did not give it), pooled for a viewer who
    sees no arms."""

    def __init__(self, session: Session, ctx: ViewContext) -> None:
        self.session = session
        self.ctx = ctx

    def __call__(self, query: Callable[..., R], /, **kwargs: Any) -> R:
        accepted = _parameters(query)
        given = {"study_id": self.ctx.study_id, "scope": self.ctx.scope, "period": self.ctx.period}
        for name, value in given.items():
            if name in accepted and name not in kwargs:
                kwargs[name] = value
        if not self.ctx.shows_arms and "arm" in accepted:
            # A pooled view has no arm to pick: a pick of the pooled column, or one kept in
            # session state from elsewhere, must not narrow the answer to an arm.
            kwargs["arm"] = None
        found = query(self.session, **kwargs)
        if self.ctx.shows_arms:
            return found
        rule = POOLING.get(query)
        if rule is not None:
            pooled: R = rule(found, kwargs)
            return pooled
        if names_arms(found):
            raise BlindingError(
                f"{query.__module__}.{query.__qualname__} names arms and has no pooling rule in "
                "dashboard.views.reader.POOLING"
            )
        return found
