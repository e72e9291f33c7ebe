"""The Enrollment page's view: progress against the target, the forecast, the screening funnel,
the sites and the flow of subjects. The visit schedule, which depends on the page's own window
setting, is read through ``views.visits``."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.charts.consort import consort_svg
from dashboard.metrics.consort import consort_flow
from dashboard.metrics.countries import country_label
from dashboard.metrics.enrollment import (
    cumulative_accrual,
    funnel_steps,
    reasons_text,
    recent_and_overall_rate,
    site_table,
    study_forecast,
    target_in_scope,
)
from dashboard.metrics.forecast import AccrualForecast
from dashboard.queries import enrollment, screen_failures, studies, visits
from dashboard.queries.changes import subject_changes_since
from dashboard.results.changes import SubjectChanges
from dashboard.results.consort import ConsortFlow
from dashboard.results.enrollment import FunnelCounts
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.format import (
    count_of,
    percent,
    plural,
    projected_completion_label,
    projected_completion_title,
    projected_interval_label,
    target_word,
)
from dashboard.views.reader import Reader

FORECAST_METHOD = (
    "Poisson accrual with a gamma-distributed rate fitted to the observed enrollments "
    "(Gajewski, Simon and Carlson 2008, without prior weight on the planned schedule)."
)


@dataclass(frozen=True)
class AccrualChart:
    """Cumulative screened and enrolled against the target and the plan: drawn on the
    Enrollment page, in small on the Overview, and in the pack, from this one composition."""

    frame: StudyFrame
    accrual: pd.DataFrame  # ``cumulative_accrual`` up to the cut-off: the chart's frame
    chart_target: int | None  # the target line of the chart (none over a screening period)
    planned_drawn: bool  # the chart draws the planned recruitment line
    sentence: str  # the caption on the page: what the lines are
    rule: str  # behind the caption's help icon: how the points are binned

    @property
    def caption(self) -> str:
        """The whole caption, as the pack prints it (a page has no help icon on paper)."""
        return f"{self.sentence} {self.rule}"

    @property
    def inputs(self) -> dict[str, Any]:
        """The accrual chart's arguments (``charts.enrollment.accrual_chart``), the planned line
        only where the caption says so."""
        study = self.frame.study
        return {
            "accrual": self.accrual,
            "target": self.chart_target,
            "cutoff": self.frame.cutoff,
            "planned_start": study.planned_start if self.planned_drawn else None,
            "planned_end": study.planned_end if self.planned_drawn else None,
        }


def build_accrual_chart(
    read: Reader, frame: StudyFrame, *, target: int | None, daily: pd.DataFrame | None = None
) -> AccrualChart:
    """The accrual chart of ``read``'s context: ``daily`` is ``enrollment.daily_accrual`` where
    the caller has it already; ``target`` the target of what is in view."""
    ctx = read.ctx
    study = frame.study
    if daily is None:
        daily = read(enrollment.daily_accrual)
    chart_target = None if ctx.period is not None else target
    planned_drawn = bool(
        not ctx.filtered and study.planned_enrollment and study.planned_start and study.planned_end
    )
    return AccrualChart(
        frame=frame,
        accrual=cumulative_accrual(daily, until=frame.cutoff),
        chart_target=chart_target,
        planned_drawn=planned_drawn,
        sentence=_accrual_caption(planned_drawn=planned_drawn, ctx=ctx, chart_target=chart_target),
        rule=ACCRUAL_BINS,
    )


@dataclass(frozen=True)
class EnrollmentView:
    frame: StudyFrame
    counts: FunnelCounts  # the funnel's counts are also the headline's
    changes: SubjectChanges | None
    target: int | None  # the target of what is in view (the chosen sites' own, or none)
    metrics: tuple[Metric, ...]
    accrual_chart: AccrualChart
    undated: dict[str, int]  # subjects the chart cannot place: screened, enrolled
    undated_sentence: str | None
    forecast: AccrualForecast | None  # None under a filter (the forecast is the study's)
    forecast_sentence: str  # markdown: the projection, or why there is none
    forecast_method: str | None  # the caption naming the model (a projection only)
    funnel: pd.DataFrame  # ``funnel_steps``
    treated_known: bool  # the data hold exposure (else no "Treated" step)
    reasons: pd.DataFrame  # discontinuation reasons: arm, reason, subjects
    by_arm: pd.DataFrame  # the outcome by arm (the flow's arm boxes)
    by_criterion: pd.DataFrame  # failures by criterion (the flow's exclusions)
    failures_with_reason: int
    flow: ConsortFlow
    flow_svg: str
    sites: pd.DataFrame | None  # ``site_table`` (None: the viewer sees one site only)
    filtered: bool  # a site or screening-period filter is on
    planned_schedule: pd.DataFrame  # the study's planned visits (``queries.visits``)

    @property
    def accrual(self) -> pd.DataFrame:
        return self.accrual_chart.accrual

    @property
    def chart_target(self) -> int | None:
        return self.accrual_chart.chart_target

    @property
    def planned_drawn(self) -> bool:
        return self.accrual_chart.planned_drawn

    @property
    def accrual_caption(self) -> str:
        return self.accrual_chart.caption

    @property
    def accrual_chart_inputs(self) -> dict[str, Any]:
        """The accrual chart's arguments: the page, the Overview and the pack draw one chart."""
        return self.accrual_chart.inputs


def _forecast_sentence(
    forecast: AccrualForecast | None, frame: StudyFrame, *, filtered: bool, target: int | None
) -> str:
    study = frame.study
    if filtered:
        return "The forecast is for the whole study: clear the site and date filters to see it."
    if forecast is None:
        return "No data cut-off date: nothing to forecast from."
    needed = forecast.required_rate_per_month
    if forecast.status == "ok" and forecast.median_date is not None:
        assert forecast.lower_date is not None and forecast.upper_date is not None
        return (
            f"At the fitted rate of **{forecast.rate_per_month:.1f} enrollments a month**, the "
            f"target of {target} is projected for **{forecast.median_date:%d %b %Y}** (80% "
            f"interval {forecast.lower_date:%d %b %Y} to {forecast.upper_date:%d %b %Y})."
            + (
                f" Finishing by the planned end ({study.planned_end:%d %b %Y}) needs "
                f"**{needed:.1f} a month** from the cut-off."
                if needed is not None and study.planned_end
                else ""
            )
        )
    # Even without a projected date, the pace the plan needs is known and worth saying.
    if needed is not None and study.planned_end:
        return (
            f"{forecast.message}\n\nFinishing by the planned end ({study.planned_end:%d %b %Y}) "
            f"needs **{needed:.1f} enrollments a month** from the cut-off "
            f"({target - forecast.enrolled if target else 0} to go)."
        )
    return forecast.message


ACCRUAL_BINS = (
    "Weekly bins for a recruitment period up to a year, monthly beyond (yearly where the chart "
    "spans more than twenty years); the planned recruitment is linear from the planned start to "
    "the planned end."
)


def _accrual_caption(*, planned_drawn: bool, ctx: ViewContext, chart_target: int | None) -> str:
    caption = "Screened by screening date, enrolled by enrollment date" + (
        "; the dashed grey line is the planned recruitment." if planned_drawn else "."
    )
    if ctx.period is not None:
        caption += " The study target is hidden while a filter is on."
    elif ctx.scope and chart_target is not None:
        caption += f" The target line is the chosen sites' own ({chart_target})."
    elif ctx.scope:
        caption += " The study target is hidden while a filter is on (the sites have no targets)."
    return caption


def build_enrollment(
    session: Session, ctx: ViewContext, *, today: dt.date | None = None
) -> EnrollmentView:
    """The Enrollment page of ``ctx``; ``today`` (default: the date today) tells a projected date
    that has already passed."""
    today = today or dt.date.today()
    read = Reader(session, ctx)
    frame = study_frame(read)
    study = frame.study
    cutoff = frame.cutoff
    counts = read(enrollment.funnel)
    reasons = read(enrollment.discontinuation_reasons)
    by_arm = read(enrollment.outcome_by_arm)
    daily = read(enrollment.daily_accrual)
    undated = read(enrollment.undated_subjects)
    since = frame.since_cut
    changes = read(subject_changes_since, since_cut_id=since.id) if since else None
    every_site = read(studies.sites, scope=None)
    target = target_in_scope(study.planned_enrollment, every_site, ctx.scope)
    filtered = ctx.filtered
    forecast = (
        None
        if filtered
        else study_forecast(
            daily,
            target=study.planned_enrollment,
            cutoff=cutoff,
            planned_start=study.planned_start,
            planned_end=study.planned_end,
        )
    )
    recent_rate, overall_rate = (
        recent_and_overall_rate(daily, cutoff=cutoff, start=study.planned_start)
        if cutoff
        else (None, None)
    )
    metrics = (
        Metric(
            f"Enrolled / {target_word(study.enrollment_type)}",
            count_of(counts.enrolled, target),
            f"+{changes.new_enrolled} since cut {since.number}" if since and changes else None,
        ),
        Metric(
            "Screen-failure rate",
            percent(counts.screen_failures, counts.screened),
            f"{counts.screen_failures} of {counts.screened} screened"
            + (f" (+{changes.new_subjects} new)" if changes else ""),
        ),
        Metric(
            "Enrolled per month, last 30 days",
            f"{recent_rate:.1f}" if recent_rate is not None else "–",
            f"overall {overall_rate:.1f} per month" if overall_rate is not None else None,
        ),
        Metric(
            projected_completion_title(forecast, filtered=filtered),
            projected_completion_label(forecast, filtered=filtered),
            projected_interval_label(forecast, filtered=filtered, today=today),
        ),
    )
    by_criterion = read(screen_failures.failures_by_criterion)
    failed = read(screen_failures.failed_subject_counts)
    flow = consort_flow(
        funnel=counts,
        by_criterion=by_criterion,
        failures_with_reason=failed["with_reason"],
        reasons=reasons,
        by_arm=by_arm,
    )
    viewer_sites = ctx.site_count(len(every_site))
    return EnrollmentView(
        frame=frame,
        counts=counts,
        changes=changes,
        target=target,
        metrics=metrics,
        accrual_chart=build_accrual_chart(read, frame, target=target, daily=daily),
        undated=undated,
        undated_sentence=(
            f"Not on the chart: {plural(undated['screened'], 'subject')} without a screening "
            f"date, {plural(undated['enrolled'], 'enrolled subject')} without an enrollment date."
            if undated["screened"] or undated["enrolled"]
            else None
        ),
        forecast=forecast,
        forecast_sentence=_forecast_sentence(
            forecast, frame, filtered=filtered, target=study.planned_enrollment
        ),
        forecast_method=FORECAST_METHOD
        if forecast is not None and forecast.status == "ok"
        else None,
        funnel=funnel_steps(
            screened=counts.screened,
            screen_failures=counts.screen_failures,
            in_screening=counts.in_screening,
            not_assigned=counts.not_assigned,
            enrolled=counts.enrolled,
            treated=counts.treated,
            completed=counts.completed,
            discontinued=counts.discontinued,
            ongoing=counts.ongoing,
            discontinuation_reasons=reasons_text(reasons),
        ),
        treated_known=counts.treated is not None,
        reasons=reasons,
        by_arm=by_arm,
        by_criterion=by_criterion,
        failures_with_reason=failed["with_reason"],
        flow=flow,
        flow_svg=consort_svg(flow, title=study.registry_id or study.study_id),
        sites=(
            _named_countries(
                site_table(read(enrollment.enrollment_by_site), cutoff=cutoff).dropna(
                    axis="columns",
                    how="all",  # e.g. SDTM gives no site names or site targets
                )
            )
            if viewer_sites > 1
            else None
        ),
        filtered=filtered,
        planned_schedule=read(visits.planned_schedule),
    )


def _named_countries(sites: pd.DataFrame) -> pd.DataFrame:
    """The site table with its countries named ("Germany (DEU)" for SDTM's alpha-3 code)."""
    if "country" not in sites.columns:
        return sites
    named = pd.Series(
        [country_label(c) if isinstance(c, str) else c for c in sites["country"]],
        index=sites.index,
        dtype=object,
    )
    return sites.assign(country=named)


def site_subjects(session: Session, ctx: ViewContext, site_id: str) -> pd.DataFrame:
    """The drilldown of the sites table: one site's subjects."""
    return Reader(session, ctx)(enrollment.site_subjects, site_id=site_id)
