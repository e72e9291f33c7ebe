"""The monitoring pack: the pages' views, laid out for a PDF and a workbook.

``build_pack`` builds the views the pages draw (``dashboard.views``) for one ``ViewContext`` and
keeps them; the pack's fields are those views' frames and sentences, with the listings given
display headers and "new" / "changed" markers. No query is called here, and nothing here pools
arms: a blinded viewer's views are pooled where they are read (``views.reader``), so the pack,
the pages and ``summary --json`` cannot disagree.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.ae_listing import listing_table
from dashboard.metrics.forecast import AccrualForecast
from dashboard.queries.scope import SiteScope
from dashboard.report.labs import LabSafety, build_lab_safety
from dashboard.results.changes import ChangesSince
from dashboard.results.consort import ConsortFlow
from dashboard.results.dates import as_date
from dashboard.results.review import AUDIENCES, ENTITIES
from dashboard.results.studies import CutInfo, StudyInfo
from dashboard.views.adverse_events import (
    BLINDED_NOTE,
    AdverseEventsOptions,
    AdverseEventsView,
    build_adverse_events,
)
from dashboard.views.baseline import BaselineView, TableOneOptions, build_baseline
from dashboard.views.common import UnknownCutError, UnknownStudyError
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import EnrollmentView, build_enrollment
from dashboard.views.listings import Listings, build_listings
from dashboard.views.overview import OverviewView, build_overview, changes_sentence
from dashboard.views.review import open_queries, unreviewed_saes
from dashboard.views.screen_failures import ScreenFailuresView, build_screen_failures
from dashboard.views.site_risk import SiteRiskOptions, SiteRiskView, build_site_risk

__all__ = [
    "BLINDED_NOTE",
    "CHANGED",
    "NEW",
    "MonitoringPack",
    "UnknownCutError",
    "UnknownStudyError",
    "as_date",
    "build_pack",
    "changes_sentence",
]

NEW = "new"
CHANGED = "changed"

SUBJECT_LABELS = {
    "usubjid": "USUBJID",
    "site_id": "SITEID",
    "screening_date": "Screening date",
    "population": "Population",
    "arm": "Planned arm (ARM)",
    "actual_arm": "Actual arm (ACTARM)",
    "enrollment_date": "Enrollment date",
    "first_dose_date": "First dose date",
    "status": "Status",
    "sex": "SEX",
    "age": "AGE",
    "first_cut_id": "First in cut",
    "updated_cut_id": "Last changed in cut",
}
SITE_RISK_LABELS = {
    "site_id": "Site",
    "kri": "KRI id",
    "abbreviation": "KRI",
    "name": "Name",
    "numerator": "Numerator",
    "denominator": "Denominator",
    "metric": "Metric (ratio)",
    "score": "Score",
    "flag": "Flag",
}
# The Enrollment page's site table headers (its column_config), for the PDF and the workbook.
SITE_LABELS = {
    "site_id": "Site",
    "name": "Name",
    "country": "Country",
    "active_since": "Active since",
    "screened": "Screened",
    "screen_failures": "Screen failures",
    "screen_failure_rate": "SF rate",
    "enrolled": "Enrolled",
    "enrolled_per_month": "Enrolled / month",
    "days_since_last_enrollment": "Days since last enrollment",
    "planned_enrollment": "Site target",
    "share_of_target": "Of target",
    "expected": "Expected",
    "p_at_most": "P(≤ enrolled)",
}
SCREEN_FAILURE_LABELS = {
    "usubjid": "USUBJID",
    "site_id": "SITEID",
    "screening_date": "Screening date",
    "failed_criteria": "Criteria failed",
    "criteria_text": "Criteria failed (protocol wording)",
    "first_cut_id": "First in cut",
    "updated_cut_id": "Last changed in cut",
}


def marker_column(since: CutInfo | None) -> str | None:
    """The listings' "new since" column, None without a cut to compare with."""
    return f"Since cut {since.number}" if since else None


def _dates(values: pd.Series) -> list[dt.date | None]:
    return [as_date(v) for v in values]


def _markers(first: pd.Series, updated: pd.Series, since: CutInfo) -> list[str]:
    """ "new" for a row first held after ``since``, "changed" for an older one altered since."""
    return [
        NEW if (f or 0) > since.id else CHANGED if (u or 0) > since.id else ""
        for f, u in zip(first.fillna(0).astype(int), updated.fillna(0).astype(int), strict=True)
    ]


def _event_table(derived: pd.DataFrame, since: CutInfo | None) -> pd.DataFrame:
    """An AE listing (``derive_listing``) as the workbook and the PDF show it: the page's columns
    (``listing_table``), the marker column first, and the onset and end as dates beside the ISO
    text as given (a partial date on the first day of its period)."""
    table = listing_table(derived, show_new=False)
    for text_column, date_column, label in (
        ("AESTDTC", "start_date", "Start date"),
        ("AEENDTC", "end_date", "End date"),
    ):
        table.insert(
            list(table.columns).index(text_column) + 1, label, _dates(derived[date_column])
        )
    marker = marker_column(since)
    if marker is not None:
        table.insert(
            0,
            marker,
            [
                NEW if new else CHANGED if changed else ""
                for new, changed in zip(derived["new"], derived["changed"], strict=True)
            ]
            if not derived.empty
            else [],
        )
    return table


# The Review section (issue #20): the SAEs the medical monitor has not reviewed in their present
# version, and the queries not closed, per site.
REVIEW_SAE_LABELS = {
    "site_id": "Site",
    "usubjid": "USUBJID",
    "natural_key": "Record",
    "review_state": "Review state",
    "version_cut": "Last changed in cut",
    "reviewed_by": "Reviewed by",
    "reviewed_in_cut": "Reviewed in cut",
}
OPEN_QUERY_LABELS = {
    "site_id": "Site",
    "thread_id": "Query",
    "record": "Record",
    "audience": "Audience",
    "state": "State",
    "age_days": "Age (days)",
    "question": "Question",
}


def review_saes_table(saes: pd.DataFrame, cuts: tuple[CutInfo, ...]) -> pd.DataFrame:
    """``views.review.unreviewed_saes`` with display headers, cuts by the study's own number."""
    numbers = {c.id: c.number for c in cuts}
    shown = saes.copy()
    for column in ("version_cut", "reviewed_in_cut"):
        shown[column] = [numbers.get(int(v), v) if pd.notna(v) else None for v in saes[column]]
    return shown[list(REVIEW_SAE_LABELS)].rename(columns=REVIEW_SAE_LABELS).reset_index(drop=True)


def open_queries_table(queries: pd.DataFrame) -> pd.DataFrame:
    """``views.review.open_queries`` with display headers: the record as "<type> <key>", the
    audience in words, the question as the viewer may read it."""
    shown = queries.assign(
        record=[
            f"{ENTITIES.get(e, e)} {k}"
            for e, k in zip(queries["entity"], queries["natural_key"], strict=True)
        ],
        audience=queries["audience"].map(lambda a: AUDIENCES.get(a, a)),
    )
    return shown[list(OPEN_QUERY_LABELS)].rename(columns=OPEN_QUERY_LABELS).reset_index(drop=True)


def _listing(
    frame: pd.DataFrame,
    labels: dict[str, str],
    since: CutInfo | None,
    date_columns: tuple[str, ...],
    cuts: tuple[CutInfo, ...] = (),
) -> pd.DataFrame:
    """A listing with display headers (the columns the view holds, in the labels' order), dates
    as dates, cuts by the study's own number (``cuts``) and the marker column first."""
    shown = frame.copy()
    numbers = {c.id: c.number for c in cuts}
    for column in ("first_cut_id", "updated_cut_id"):
        if column in shown and numbers:
            shown[column] = [numbers.get(int(v), v) if pd.notna(v) else v for v in shown[column]]
    for column in date_columns:
        shown[column] = _dates(shown[column])
    present = {k: v for k, v in labels.items() if k in shown.columns}
    shown = shown[list(present)].rename(columns=present)
    marker = marker_column(since)
    if marker is not None and since is not None:
        shown.insert(0, marker, _markers(frame["first_cut_id"], frame["updated_cut_id"], since))
    return shown


@dataclass(frozen=True)
class MonitoringPack:
    """The pack's content: the pages' views for one context, and the listings.

    The fields the PDF and the workbook read are properties over the views (frames hold display
    column names and dates as ``datetime.date``; ``marker`` names the column that says "new" /
    "changed" since ``since_cut``, absent where there is nothing to compare with).
    """

    context: ViewContext
    overview: OverviewView
    enrollment: EnrollmentView
    screen_failures_view: ScreenFailuresView
    baseline: BaselineView
    safety: AdverseEventsView
    listings: Listings
    generated_at: dt.datetime
    site_risk: SiteRiskView  # gsm's default scoring, as the Site risk page opens
    # Review (issue #20): views.review.unreviewed_saes and open_queries, as they are read.
    review_saes_frame: pd.DataFrame
    review_queries_frame: pd.DataFrame
    # Laboratory safety (issue #21): the Labs page's shift tables of the pack's tests, eDISH.
    lab_safety: LabSafety

    # -- the study and its cuts
    @property
    def study(self) -> StudyInfo:
        return self.overview.frame.study

    @property
    def cut(self) -> CutInfo | None:
        return self.overview.frame.cut

    @property
    def since_cut(self) -> CutInfo | None:
        return self.overview.frame.since_cut

    @property
    def scope(self) -> SiteScope:
        return self.context.scope

    @property
    def shows_arms(self) -> bool:
        return self.context.shows_arms

    @property
    def marker(self) -> str | None:
        return marker_column(self.since_cut)

    @property
    def cut_label(self) -> str:
        """The latest cut as titles give it: "cut 2 of 2" (the study's own count)."""
        return self.cut.name if self.cut else "no cut"

    # -- the Overview
    @property
    def figures(self) -> dict[str, Any]:
        return self.overview.figures

    @property
    def headline(self) -> pd.DataFrame:
        return self.overview.headline

    @property
    def changes(self) -> ChangesSince | None:
        return self.overview.changes

    # -- Enrollment
    @property
    def accrual(self) -> pd.DataFrame:
        return self.enrollment.accrual

    @property
    def undated(self) -> dict[str, int]:
        return self.enrollment.undated

    @property
    def forecast(self) -> AccrualForecast | None:
        return self.enrollment.forecast

    @property
    def funnel(self) -> pd.DataFrame:
        return self.enrollment.funnel

    @property
    def treated_known(self) -> bool:
        return self.enrollment.treated_known

    @property
    def flow(self) -> ConsortFlow:
        return self.enrollment.flow

    @property
    def flow_svg(self) -> str:
        return self.enrollment.flow_svg

    @property
    def sites(self) -> pd.DataFrame:
        """The Enrollment page's site table with its headers, figures as numbers (rates and
        shares 0-1); no rows where the viewer sees one site (the page shows none)."""
        sites = self.enrollment.sites
        if sites is None:
            return pd.DataFrame(columns=list(SITE_LABELS.values()))
        present = {k: v for k, v in SITE_LABELS.items() if k in sites.columns}
        return sites[list(present)].rename(columns=present).reset_index(drop=True)

    # -- Screen failures
    @property
    def by_criterion(self) -> pd.DataFrame:
        return self.screen_failures_view.by_criterion

    @property
    def failures_with_reason(self) -> int:
        return self.screen_failures_view.failures_with_reason

    @property
    def failures_more_than_one(self) -> int:
        return self.screen_failures_view.failures_more_than_one

    @property
    def ie_missing(self) -> bool:
        return self.screen_failures_view.ie_missing

    @property
    def failure_dispositions(self) -> pd.DataFrame:
        return self.screen_failures_view.dispositions

    @property
    def failures_table(self) -> pd.DataFrame:
        return self.screen_failures_view.failures_table

    # -- Baseline
    @property
    def table_one(self) -> pd.DataFrame:
        """Table 1 (the Baseline page's default, no tests), led by the new subjects per column."""
        return self.baseline.table_with_new

    # -- Adverse events
    @property
    def safety_note(self) -> str:
        """Whom the AE percentages are of, what is counted (every AE: the pack has no
        treatment-emergent switch), blinding, and the AEs outside the tables by arm."""
        safety = self.safety
        counted = (
            "Every AE in the data is counted; subjects n (%) with at least one such AE, and "
            "[events]."
        )
        notes = (safety.population_note, counted, safety.blinding_note, safety.outside_sentence)
        return " ".join(n for n in notes if n)

    @property
    def ae_summary(self) -> pd.DataFrame:
        if not self.safety.population.subjects:
            return pd.DataFrame(columns=["Category"])
        return self.safety.summary_table.drop(columns="category")

    @property
    def ae_terms(self) -> pd.DataFrame:
        if not self.safety.population.subjects:
            return pd.DataFrame(columns=["level", "Term"])
        return self.safety.terms_sheet()

    # -- the listings
    @property
    def subjects(self) -> pd.DataFrame:
        return _listing(
            self.listings.subjects,
            SUBJECT_LABELS,
            self.since_cut,
            ("screening_date", "enrollment_date", "first_dose_date"),
            self.overview.frame.cuts,
        )

    @property
    def screen_failures(self) -> pd.DataFrame:
        return _listing(
            self.listings.screen_failures,
            SCREEN_FAILURE_LABELS,
            self.since_cut,
            ("screening_date",),
            self.overview.frame.cuts,
        )

    @property
    def adverse_events(self) -> pd.DataFrame:
        return _event_table(self.listings.adverse_events, self.since_cut)

    @property
    def saes(self) -> pd.DataFrame:
        return _event_table(self.safety.sae_events, self.since_cut)

    @property
    def site_risk_scores(self) -> pd.DataFrame:
        """The Site risk sheet: each site in view and computed KRI, the view's figures with
        display headers, and the metric as the page shows it (per 1,000 days, per cent)."""
        return site_risk_sheet(self.site_risk)

    # -- Review
    @property
    def review_saes(self) -> pd.DataFrame:
        """The SAEs not reviewed by the medical monitor in their present version (display
        headers), per site."""
        return review_saes_table(self.review_saes_frame, self.overview.frame.cuts)

    @property
    def review_queries(self) -> pd.DataFrame:
        """The queries not closed (display headers), per site then oldest first."""
        return open_queries_table(self.review_queries_frame)

    @property
    def new_saes(self) -> int:
        return int(self.safety.sae_events["new"].sum()) if not self.safety.sae_events.empty else 0


def build_pack(
    session: Session, ctx: ViewContext, *, generated_at: dt.datetime | None = None
) -> MonitoringPack:
    """The pack of ``ctx``: its study at its sites, for its viewer, new and changed rows marked
    against its compared cut (default: the cut before the latest). The screening period is the
    whole study's.

    Raises UnknownStudyError for a study not in the database, UnknownCutError for a cut that is
    not an earlier cut of the study.
    """
    overview = build_overview(session, ctx)
    since = overview.frame.since_cut
    # Every view compares with the cut the Overview resolved (the default, when none was asked).
    ctx = ViewContext(
        study_id=ctx.study_id,
        scope=ctx.scope,
        since_cut_id=since.id if since else None,
        shows_arms=ctx.shows_arms,
        viewer_sites=ctx.viewer_sites,
    )
    generated_at = generated_at or dt.datetime.now(dt.UTC)
    return MonitoringPack(
        context=ctx,
        overview=overview,
        enrollment=build_enrollment(session, ctx),
        screen_failures_view=build_screen_failures(session, ctx),
        baseline=build_baseline(session, ctx, TableOneOptions(with_tests=False)),
        safety=build_adverse_events(session, ctx, AdverseEventsOptions(sae_limit=None)),
        listings=build_listings(session, ctx, since_cut_id=since.id if since else None),
        generated_at=generated_at,
        site_risk=build_site_risk(session, ctx, SiteRiskOptions()),
        review_saes_frame=unreviewed_saes(session, ctx),
        review_queries_frame=open_queries(session, ctx, today=generated_at.date()),
        lab_safety=build_lab_safety(session, ctx),
    )


def site_risk_sheet(view: SiteRiskView) -> pd.DataFrame:
    """``view.scores`` as the workbook's Site risk sheet (display headers; the metric also on the
    scale the page shows, with its unit)."""
    scale = {k.id: k.scale for k in view.computed}
    per = {k.id: k.per for k in view.computed}
    scores = view.scores
    sheet = scores[list(SITE_RISK_LABELS)].rename(columns=SITE_RISK_LABELS)
    metric_at = list(sheet.columns).index("Metric (ratio)") + 1
    sheet.insert(metric_at, "Metric", scores["metric"] * scores["kri"].map(scale))
    sheet.insert(metric_at + 1, "Unit", scores["kri"].map(per))
    return sheet.reset_index(drop=True)
