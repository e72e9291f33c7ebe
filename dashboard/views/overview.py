"""The Overview's view: the study's identity, the headline figures with what is new since the
compared cut, and the figures of ``study-monitor summary --json`` (DESIGN.md contract), which
are this view's ``figures``."""

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.enrollment import target_in_scope
from dashboard.queries import enrollment, safety_counts, screen_failures, studies
from dashboard.results.adverse_events import AdverseEventCounts
from dashboard.results.changes import ChangesSince
from dashboard.results.enrollment import PopulationCounts
from dashboard.results.studies import CutInfo
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import AccrualChart, build_accrual_chart
from dashboard.views.format import (
    ages_label,
    count_of,
    percent,
    plural,
    registry_enrollment,
    target_word,
)
from dashboard.views.reader import Reader


@dataclass(frozen=True)
class OverviewView:
    frame: StudyFrame
    figures: dict[str, Any]  # ``summary --json``: the contract's keys, in its order
    counts: PopulationCounts
    adverse_events: AdverseEventCounts
    changes: ChangesSince | None
    # The enrollment target of what is in view: the study's, or the chosen sites' own (None
    # where a site has none). A viewer limited to some sites sees their sites' own, never the
    # study's: the Enrollment page's target, so the Overview, that page and the pack agree.
    target: int | None
    metrics: tuple[Metric, ...]
    identity: tuple[tuple[str, str], ...]  # (label, value) rows of the study's identity
    planned_recruitment: str | None  # "Planned recruitment Jan 2025 to Dec 2025 ..."
    changes_sentence: str | None
    changes_table: pd.DataFrame  # What, Count: the changes one per row (empty: nothing to compare)
    headline: pd.DataFrame  # Figure, Value[, New since cut N]: the pack's headline table
    study_wide: PopulationCounts | None  # every site's totals, for a viewer limited to some
    study_wide_sentence: str | None
    accrual_chart: AccrualChart  # the Enrollment page's chart, drawn small (every screening date)

    @property
    def study_id(self) -> str:
        return self.frame.study.study_id


def changes_sentence(changes: ChangesSince, since: CutInfo) -> str:
    """What is new since the compared cut, in one sentence."""
    c = changes
    cutoff = f", cut-off {since.cutoff_date:%d %b %Y}" if since.cutoff_date else ""
    return (
        f"Since cut {since.number}{cutoff}: {plural(c.new_subjects, 'new subject')} screened "
        f"({plural(c.new_screen_failures, 'screen failure')}, {c.new_enrolled} enrolled), "
        f"{plural(c.changed_subjects, 'earlier subject')} changed; "
        f"{plural(c.new_adverse_events, 'new adverse event')}, "
        f"{c.new_serious_adverse_events} of them serious, and "
        f"{plural(c.changed_adverse_events, 'earlier adverse event')} changed."
    )


# Registry statuses that say enrollment is still going on.
STILL_ENROLLING = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION")


def registry_status(status: str | None, target: int | None, counts: PopulationCounts) -> str:
    """The registry's status in words, with a comment where the data contradict it: a registry
    record lags the study, so "Recruiting" beside a reached target is said to be the registry's."""
    shown = (status or "–").replace("_", " ").capitalize()
    if (status or "").upper() in STILL_ENROLLING and target and counts.enrolled >= target:
        return f"{shown} (the registry still says so; the data reach the target of {target})"
    return shown


def summary_figures(read: Reader, frame: StudyFrame) -> dict[str, Any]:
    """The contract's JSON object for the context's study and sites (keys in the contract's
    order); enrolled by arm is one pooled figure for a viewer who sees no arms."""
    counts = read(enrollment.population_counts, period=None)
    arms = read(enrollment.enrolled_by_arm, period=None)
    by_criterion = read(screen_failures.failures_by_criterion, period=None)
    # The CLI lists criteria with at least one failure, keyed by code; a code amended across
    # protocol versions is one key (its versions' subjects are distinct people, so they add).
    failed = (
        by_criterion[by_criterion["subjects"] > 0].groupby("code", sort=False)["subjects"].sum()
    )
    ae = read(safety_counts.stored_adverse_event_counts)
    latest = frame.cut
    study = frame.study
    return {
        "study_id": study.study_id,
        "registry_id": study.registry_id,
        "planned_enrollment": study.planned_enrollment,
        "sites": read(studies.site_count),
        "screened": counts.screened,
        "screen_failures": counts.screen_failures,
        "enrolled": counts.enrolled,
        "enrolled_by_arm": {
            str(row["arm"] or row["arm_code"] or "(no arm)"): int(row["enrolled"])
            for row in arms.to_dict("records")
        },
        "screen_failures_by_criterion": {
            str(code): int(n)
            for code, n in zip(failed.index, failed.to_numpy(dtype=int), strict=True)
        },
        "ae_events": ae.events,
        "ae_subjects": ae.subjects,
        "sae_events": ae.serious_events,
        "sae_subjects": ae.serious_subjects,
        "data_cut": (
            # "number": the study's own count (1-based), beside the database id of the contract.
            {"id": latest.id, "number": latest.number, "loaded_at": latest.loaded_at.isoformat()}
            if latest
            else None
        ),
    }


def study_summary(
    session: Session, *, study_id: str, scope: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """``summary --json`` for a viewer who sees every arm (the Overview view's ``figures``)."""
    read = Reader(session, ViewContext(study_id=study_id, scope=scope))
    return summary_figures(read, study_frame(read))


def _headline(
    figures: dict[str, Any],
    target: int | None,
    changes: ChangesSince | None,
    since: CutInfo | None,
    target_label: str = "Target enrollment",
) -> pd.DataFrame:
    """The headline figures with what is new since the compared cut beside each."""
    new = changes
    rows: list[tuple[str, int | None, int | None]] = [
        ("Screened", figures["screened"], new.new_subjects if new else None),
        ("Screen failures", figures["screen_failures"], new.new_screen_failures if new else None),
        ("Enrolled", figures["enrolled"], new.new_enrolled if new else None),
        (target_label, target, None),
        ("Sites", figures["sites"], None),
        ("Subjects with an AE", figures["ae_subjects"], None),
        ("AE events", figures["ae_events"], new.new_adverse_events if new else None),
        ("Subjects with an SAE", figures["sae_subjects"], None),
        ("SAE events", figures["sae_events"], new.new_serious_adverse_events if new else None),
    ]
    if new:
        rows += [
            ("Earlier subjects with changes", None, new.changed_subjects),
            ("Earlier AEs with changes", None, new.changed_adverse_events),
        ]
    rows += [(f"Enrolled, {arm}", int(n), None) for arm, n in figures["enrolled_by_arm"].items()]
    table = pd.DataFrame(
        {
            "Figure": [r[0] for r in rows],
            "Value": pd.array([r[1] for r in rows], dtype="Int64"),
        }
    )
    if since is not None:
        table[f"New since cut {since.number}"] = pd.array([r[2] for r in rows], dtype="Int64")
    return table


def _metrics(
    ctx: ViewContext,
    counts: PopulationCounts,
    ae: AdverseEventCounts,
    changes: ChangesSince | None,
    target: int | None,
    called: str = "target",
) -> tuple[Metric, ...]:
    def new(n: int | None) -> str:
        return f"+{n} new · " if n is not None else ""

    new_failures = new(changes.new_screen_failures if changes else None)
    new_enrolled = new(changes.new_enrolled if changes else None)
    # A viewer limited to some sites: against their sites' own target (the study's is compared
    # study-wide, below).
    enrolled = Metric(
        "Enrolled at your sites" if ctx.restricted else f"Enrolled / {called}",
        count_of(counts.enrolled, target),
        f"{new_enrolled}{percent(counts.enrolled, target or 0)} of {called}"
        if target
        else new_enrolled.removesuffix(" · ") or None,
    )
    return (
        Metric(
            "Screened",
            counts.screened,
            f"+{changes.new_subjects} new" if changes and changes.new_subjects else None,
        ),
        Metric(
            "Screen failures",
            counts.screen_failures,
            f"{new_failures}{percent(counts.screen_failures, counts.screened)} of screened",
        ),
        enrolled,
        Metric(
            "Subjects with an AE",
            ae.subjects,
            f"{ae.events} events"
            + (f" (+{changes.new_adverse_events} new)" if changes else "")
            + f" · {ae.serious_subjects} with an SAE",
        ),
    )


def _changes_table(changes: ChangesSince | None) -> pd.DataFrame:
    if changes is None:
        return pd.DataFrame(columns=["What", "Count"])
    return pd.DataFrame(
        {
            "What": [
                "New subjects screened",
                "of whom screen failures",
                "of whom enrolled",
                "Earlier subjects with changes",
                "New adverse events",
                "New serious adverse events",
                "Earlier adverse events with changes",
            ],
            "Count": [
                changes.new_subjects,
                changes.new_screen_failures,
                changes.new_enrolled,
                changes.changed_subjects,
                changes.new_adverse_events,
                changes.new_serious_adverse_events,
                changes.changed_adverse_events,
            ],
        }
    )


def build_overview(session: Session, ctx: ViewContext) -> OverviewView:
    """The Overview of ``ctx``'s study (its period is ignored: the Overview counts every
    screening date). Raises UnknownStudyError / UnknownCutError."""
    read = Reader(session, ctx)
    frame = study_frame(read)
    study = frame.study
    since = frame.since_cut
    figures = summary_figures(read, frame)
    counts = read(enrollment.population_counts, period=None)
    ae = read(safety_counts.stored_adverse_event_counts)
    changes = (
        read(safety_counts.changes_since, since_cut_id=since.id, period=None) if since else None
    )
    every_site = read(studies.sites, scope=None)
    # The Enrollment view's rule (``target_in_scope``): a restricted viewer's scope is their
    # sites, so they get those sites' own target or none, never the study's.
    target = target_in_scope(study.planned_enrollment, every_site, ctx.scope)
    study_wide = (
        read(enrollment.population_counts, scope=None, period=None) if ctx.restricted else None
    )
    wide_sentence = None
    if study_wide is not None:
        planned = (
            f" ({target_word(study.enrollment_type)} {study.planned_enrollment})"
            if study.planned_enrollment is not None
            else ""
        )
        wide_sentence = (
            f"Study-wide, all {len(every_site)} sites (aggregate only): {study_wide.enrolled} "
            f"enrolled{planned}, {study_wide.screened} screened. Every other figure in the app "
            f"counts your sites only ({', '.join(ctx.viewer_sites or ())})."
        )
    viewer_sites = ctx.site_count(len(every_site))
    identity = (
        ("Registry id", study.registry_id or "–"),
        ("Sponsor", study.sponsor or "–"),
        ("Registry status", registry_status(study.status, study.planned_enrollment, counts)),
        ("Design", study.design or "–"),
        ("Condition", study.condition or "–"),
        ("Intervention", study.intervention or "–"),
        registry_enrollment(study.planned_enrollment, study.enrollment_type),
        ("Ages", ages_label(study.min_age, study.max_age)),
        (
            "Sites",
            str(len(every_site)) + (f" (you see {viewer_sites})" if ctx.restricted else ""),
        ),
    )
    planned_recruitment = None
    if study.planned_start and study.planned_end:
        assumed = (
            " (assumed for the demo: the registry gives no dates)" if study.is_synthetic else ""
        )
        planned_recruitment = (
            f"Planned recruitment {study.planned_start:%b %Y} to {study.planned_end:%b %Y}{assumed}"
        )
    return OverviewView(
        frame=frame,
        figures=figures,
        counts=counts,
        adverse_events=ae,
        changes=changes,
        target=target,
        metrics=_metrics(ctx, counts, ae, changes, target, target_word(study.enrollment_type)),
        identity=identity,
        planned_recruitment=planned_recruitment,
        changes_sentence=changes_sentence(changes, since) if changes and since else None,
        changes_table=_changes_table(changes),
        headline=_headline(
            figures, target, changes, since, registry_enrollment(None, study.enrollment_type)[0]
        ),
        study_wide=study_wide,
        study_wide_sentence=wide_sentence,
        # The Overview counts every screening date: its chart too.
        accrual_chart=build_accrual_chart(
            Reader(session, dataclasses.replace(ctx, period=None)), frame, target=target
        ),
    )
