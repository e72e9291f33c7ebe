"""The safety tables read from the load-time AE counts (``dashboard.precomputed``).

Same functions, arguments and results as their namesakes in ``queries.adverse_events``, which
compute them from the raw AEs: the counts are those queries' figures per site, counted at load
time (from one read of the AEs with the same SQL rules, ``adverse_event_facts``), so a scoped view
sums its sites' rows and the unscoped view reads the all-sites rows. A study loaded before the
counts existed is answered from the raw rows.
"""

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from dashboard.models import AdverseEventCount, Site, StudyFlag
from dashboard.models import AdverseEventMeasure as Measure
from dashboard.queries import adverse_events as raw
from dashboard.queries import changes
from dashboard.queries.scope import Period, SiteScope, site_in_scope
from dashboard.results.adverse_events import AdverseEventCounts, SafetySummary, TermIncidence
from dashboard.results.changes import AdverseEventChanges, ChangesSince

counted = AdverseEventCount
P = ParamSpec("P")
R = TypeVar("R")


def _counted(session: Session, study_id: str) -> bool:
    """Whether the study's AE counts were built (every build writes the study-wide row)."""
    # all_sites in the filter lets the lookup seek the read index instead of scanning the
    # study's quarter of a million per-site rows.
    stmt = select(col(counted.id)).where(
        col(counted.study_id) == study_id,
        col(counted.all_sites) == True,  # noqa: E712 (SQL, not Python truth)
        col(counted.measure) == str(Measure.STUDY),
    )
    return session.execute(stmt.limit(1)).first() is not None


def _or_from_raw(compute: Callable[..., R]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Read from the counts where the study has them, else ``compute`` from the raw AEs (the same
    keyword arguments)."""

    def decorate(read: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(read)
        def query(*args: P.args, **kwargs: P.kwargs) -> R:
            session, study_id = args[0], kwargs["study_id"]
            assert isinstance(session, Session) and isinstance(study_id, str)
            use = read if _counted(session, study_id) else compute
            return use(*args, **kwargs)

        return query

    return decorate


def _read(
    session: Session, *, study_id: str, scope: SiteScope, measure: str, emergent: bool
) -> pd.DataFrame:
    """The rows of one measure summed over the sites in scope: arm, key1, key2, subjects,
    events."""
    stmt = (
        select(
            col(counted.arm),
            col(counted.key1),
            col(counted.key2),
            func.sum(col(counted.subjects)).label("subjects"),
            func.sum(col(counted.events)).label("events"),
        )
        .where(
            col(counted.study_id) == study_id,
            col(counted.all_sites) == (scope is None),
            col(counted.measure) == str(measure),
            col(counted.emergent) == emergent,
        )
        .group_by(col(counted.arm), col(counted.key1), col(counted.key2))
    )
    if scope is not None:
        sites = select(col(Site.id)).where(site_in_scope(study_id=study_id, scope=scope))
        stmt = stmt.where(col(counted.site_pk).in_(sites))
    found = pd.DataFrame(
        [tuple(r) for r in session.execute(stmt).all()],
        columns=["arm", "key1", "key2", "subjects", "events"],
    )
    found["subjects"] = found["subjects"].astype(int)
    return found


def _figure(found: pd.DataFrame, key: str, column: str) -> int:
    """One figure of a measure keyed by key1 (0 where the key has no row)."""
    value: Any = found.set_index("key1")[column].get(key)
    return 0 if value is None or pd.isna(value) else int(value)


@_or_from_raw(raw.count_adverse_events)
def stored_adverse_event_counts(
    session: Session, *, study_id: str, scope: SiteScope, treatment_emergent: bool = False
) -> AdverseEventCounts:
    """The headline AE counts (``adverse_events.count_adverse_events``) read from the stored
    counts."""
    found = _read(
        session,
        study_id=study_id,
        scope=scope,
        measure=Measure.HEADLINE,
        emergent=treatment_emergent,
    )
    return AdverseEventCounts(
        events=_figure(found, "any", "events"),
        subjects=_figure(found, "any", "subjects"),
        serious_events=_figure(found, "serious", "events"),
        serious_subjects=_figure(found, "serious", "subjects"),
    )


@_or_from_raw(raw.incidence_by_soc)
def incidence_by_soc(session: Session, *, study_id: str, scope: SiteScope) -> pd.DataFrame:
    found = _read(session, study_id=study_id, scope=scope, measure=Measure.SOC_ALL, emergent=False)
    frame = found.rename(columns={"key1": "body_system"})[["body_system", "subjects", "events"]]
    frame["events"] = frame["events"].astype(int)
    return frame.sort_values(
        ["subjects", "body_system"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


@_or_from_raw(raw.safety_summary)
def safety_summary(
    session: Session, *, study_id: str, scope: SiteScope, treatment_emergent: bool = False
) -> SafetySummary:
    kwargs: dict[str, Any] = {"study_id": study_id, "scope": scope, "emergent": treatment_emergent}
    categories = _read(session, measure=Measure.CATEGORY, **kwargs)
    outside = _read(session, measure=Measure.OUTSIDE, **kwargs)
    from_ds = _read(session, study_id=study_id, scope=None, measure=Measure.STUDY, emergent=False)
    counts = categories.rename(columns={"key1": "category"})[
        ["arm", "category", "subjects", "events"]
    ]
    counts["events"] = counts["events"].astype(float)  # NaN: discontinuation read from DS
    return SafetySummary(
        counts=counts,
        discontinuation_from_ds=bool(
            from_ds.loc[from_ds["key1"] == str(StudyFlag.DISCONTINUATION_FROM_DS), "subjects"].sum()
        ),
        outside_events=_figure(outside, "outside", "events"),
        outside_subjects=_figure(outside, "outside", "subjects"),
        graded_events=_figure(outside, "graded", "events"),
        uncoded_events=_figure(outside, "uncoded", "events"),
    )


@_or_from_raw(raw.incidence_by_term)
def incidence_by_term(
    session: Session, *, study_id: str, scope: SiteScope, treatment_emergent: bool = False
) -> TermIncidence:
    kwargs: dict[str, Any] = {"study_id": study_id, "scope": scope, "emergent": treatment_emergent}
    by_pt = _read(session, measure=Measure.PT, **kwargs).rename(
        columns={"key1": "soc", "key2": "pt"}
    )
    by_soc = _read(session, measure=Measure.SOC, **kwargs).rename(columns={"key1": "soc"})
    return TermIncidence(
        by_pt=by_pt[["arm", "soc", "pt", "subjects", "events"]].astype({"events": int}),
        by_soc=by_soc[["arm", "soc", "subjects", "events"]].astype({"events": int}),
    )


@_or_from_raw(raw.subjects_by_worst_level)
def subjects_by_worst_level(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    dimension: str,
    treatment_emergent: bool = False,
) -> pd.DataFrame:
    measure = Measure.WORST.of(dimension)
    found = _read(
        session, study_id=study_id, scope=scope, measure=measure, emergent=treatment_emergent
    )
    frame = found.assign(rank=found["key1"].astype(int))[["arm", "rank", "subjects"]]
    return frame.sort_values(["arm", "rank"], kind="stable").reset_index(drop=True)


@_or_from_raw(raw.events_by_source_value)
def events_by_source_value(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    dimension: str,
    treatment_emergent: bool = False,
) -> pd.DataFrame:
    measure = Measure.VALUE.of(dimension)
    found = _read(
        session, study_id=study_id, scope=scope, measure=measure, emergent=treatment_emergent
    )
    frame = found.rename(columns={"key1": "value"})[["arm", "value", "events", "subjects"]]
    frame["events"] = frame["events"].astype(int)
    return frame.sort_values(["arm", "value"], kind="stable").reset_index(drop=True)


def adverse_event_changes_since(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> AdverseEventChanges:
    """``changes.adverse_event_changes_since`` from the load-time counts; from the raw AEs for a
    screening period (the counts are per site, not per date) or a study counted before they
    existed."""
    markers = (
        _read(session, study_id=study_id, scope=None, measure=Measure.STUDY, emergent=False)
        if period is None and _counted(session, study_id)
        else None
    )
    if markers is None or str(StudyFlag.CHANGES_COUNTED) not in set(markers["key1"]):
        return changes.adverse_event_changes_since(
            session, study_id=study_id, scope=scope, since_cut_id=since_cut_id, period=period
        )
    found = _read(session, study_id=study_id, scope=scope, measure=Measure.CHANGES, emergent=False)
    # key1: the cut compared with; key2: the figure; the count is under events.
    figures = found[found["key1"] == str(since_cut_id)].set_index("key2")["events"]
    return AdverseEventChanges(
        since_cut_id=since_cut_id,
        **{
            name: int(figures.get(name, 0))
            for name in (
                "new_adverse_events",
                "new_serious_adverse_events",
                "changed_adverse_events",
            )
        },
    )


def changes_since(
    session: Session, *, study_id: str, scope: SiteScope, since_cut_id: int, period: Period = None
) -> ChangesSince:
    """Subjects and AEs new or changed since ``since_cut_id``: ``changes.subject_changes_since``
    and the AE half above. The Enrollment and Screen failures pages need only the subjects' half,
    the Adverse events page only the AEs': each reads its own."""
    kwargs: dict[str, Any] = {
        "study_id": study_id,
        "scope": scope,
        "since_cut_id": since_cut_id,
        "period": period,
    }
    subjects = changes.subject_changes_since(session, **kwargs)
    events = adverse_event_changes_since(session, **kwargs)
    return ChangesSince(**{**vars(subjects), **vars(events)})
