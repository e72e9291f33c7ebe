"""The Enrollment page's view: progress against the target, the forecast, the screening funnel,
the sites and the flow of subjects. The visit schedule, which depends on the page's own window
setting, is read through ``views.visits``."""

import datetime as dt
from dataclasses import dataclass, replace
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
from dashboard.metrics.forecast import (
    DAYS_PER_MONTH,
    OK,
    AccrualForecast,
    required_rate_per_month,
)
from dashboard.metrics.site_forecast import (
    FIRST_SCREENING,
    MODEL_METHOD,
    SiteForecast,
    calibration_cuts,
    calibration_table,
    multicentre_reason,
    site_forecast,
    site_openings,
)
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
    model_note: str | None  # which model was used and why (none under a filter)
    site_forecast: SiteForecast | None  # the multicentre model, where it is used
    calibration: pd.DataFrame | None  # ``calibration_table`` at earlier cuts (multicentre only)
    calibration_sentence: str | None
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
    def calibration_shown(self) -> pd.DataFrame | None:
        """The calibration table as the page and the pack print it."""
        return None if self.calibration is None else calibration_display(self.calibration)

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
    by_site = read(enrollment.enrollment_by_site)
    by_model = _forecast_by_site(read, forecast, by_site, frame)
    site_model = by_model.forecast
    if site_model is not None and forecast is not None:
        forecast = _as_accrual_forecast(site_model, forecast)
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
        forecast_sentence=(
            _site_forecast_sentence(site_model, frame)
            if site_model is not None
            else _forecast_sentence(
                forecast, frame, filtered=filtered, target=study.planned_enrollment
            )
        ),
        forecast_method=(
            MODEL_METHOD
            if site_model is not None
            else FORECAST_METHOD
            if forecast is not None and forecast.status == OK
            else None
        ),
        model_note=by_model.note,
        site_forecast=site_model,
        calibration=by_model.calibration,
        calibration_sentence=by_model.calibration_sentence,
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
                _with_expectation(site_table(by_site, cutoff=cutoff), site_model).dropna(
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


@dataclass(frozen=True)
class _ByModel:
    forecast: SiteForecast | None
    note: str | None
    calibration: pd.DataFrame | None
    calibration_sentence: str | None


def _forecast_by_site(
    read: Reader, pooled: AccrualForecast | None, by_site: pd.DataFrame, frame: StudyFrame
) -> _ByModel:
    """The multicentre forecast where the study has what it needs, else why the pooled one is
    used (None under a filter or without a projection: the forecast sentence says why)."""
    study, cutoff = frame.study, frame.cutoff
    if pooled is None or pooled.status != OK or cutoff is None or not study.planned_enrollment:
        return _ByModel(None, None, None, None)
    openings = site_openings(by_site, cutoff=cutoff, registry_start=study.planned_start)
    days = read(enrollment.site_enrollment_days)
    reason = multicentre_reason(openings, days, cutoff=cutoff)
    if reason is not None:
        return _ByModel(
            None,
            f"Pooled model: {reason}. All enrollments are taken as one stream with one rate.",
            None,
            None,
        )
    model = site_forecast(openings, days, cutoff=cutoff, target=study.planned_enrollment)
    cuts = calibration_cuts(min(d for d in openings["opened_on"] if d is not None), cutoff)
    table = calibration_table(
        openings, days, cutoff=cutoff, target=study.planned_enrollment, cuts=cuts
    )
    return _ByModel(model, _model_note(model), table, _calibration_sentence(table, cutoff))


def _model_note(model: SiteForecast) -> str:
    fit = model.fit
    sources = ", ".join(f"{n} from the {source}" for source, n in sorted(model.sources.items()))
    spread = (
        "the sites differ no more than chance would make them, so they share one rate"
        if fit.common_rate
        else f"site rates vary with a coefficient of variation of {1 / fit.shape**0.5:.0%}"
    )
    note = (
        f"Multicentre model: {len(model.sites)} sites open, {len(model.planned)} planned; "
        f"a site recruits {fit.mean_rate * DAYS_PER_MONTH:.2f} a month on average and {spread}. "
        f"Opening dates: {sources}."
    )
    if FIRST_SCREENING in model.sources:
        note += (
            " A site without an activation date is taken as open from its first screening, "
            "which makes it look quicker than it is: `study-monitor import sites` loads the "
            "site table."
        )
    if model.undated_sites:
        note += f" {plural(model.undated_sites, 'site')} with no date at all left out."
    return note


def _calibration_sentence(table: pd.DataFrame, cutoff: dt.date) -> str | None:
    judged = table[table["by_cutoff_covered"].notna()]
    if judged.empty:
        return None
    held = int(judged["by_cutoff_covered"].sum())
    sentence = (
        f"Forecast at {plural(len(judged), 'earlier cut')}, the 80% interval of the subjects "
        f"enrolled by the cut-off ({cutoff:%d %b %Y}) held the true count {held} "
        f"{'time' if held == 1 else 'times'} of {len(judged)}."
    )
    reached = table[table["covered"].notna()]
    if not reached.empty:
        sentence += (
            f" The target date's 80% interval held the day it was reached "
            f"{int(reached['covered'].sum())} of {len(reached)} times; the median was off by "
            f"{float(reached['error_days'].abs().median()):.0f} days (median)."
        )
    return sentence


def what_if_sentence(
    model: SiteForecast,
    extra_sites: int,
    opening_on: dt.date,
    dates: tuple[dt.date, dt.date, dt.date],
) -> str:
    """The "what if" answer in words, against the forecast without the extra sites."""
    low, median, high = dates
    sentence = (
        f"With {plural(extra_sites, 'more site')} opening on {opening_on:%d %b %Y}, the target "
        f"of {model.target} is projected for **{median:%d %b %Y}** (80% interval "
        f"{low:%d %b %Y} to {high:%d %b %Y})"
    )
    if model.headline is not None:
        sentence += f", against {model.headline[1]:%d %b %Y} without them"
    return sentence + "."


def calibration_display(table: pd.DataFrame) -> pd.DataFrame:
    """``calibration_table`` in words: the cut and projected dates as "09 Dec 2013", the
    intervals as "Nov 2013 – Jan 2014" and "120 – 140", held as yes / no; the target date's
    truth columns only where some cut's target was reached by the cut-off."""

    def day(d: object) -> str:
        return f"{d:%d %b %Y}" if isinstance(d, dt.date) else ""

    def held(v: float) -> str:
        return "" if pd.isna(v) else "yes" if v else "no"

    def month(d: object) -> str:
        return f"{d:%b %Y}" if isinstance(d, dt.date) else ""

    shown = pd.DataFrame(
        {
            "Cut": [day(d) for d in table["cut"]],
            "Sites": table["sites_open"],
            "Enrolled": table["enrolled"],
            "Projected": [day(d) for d in table["median"]],
            "80% interval": [
                f"{month(lo)} – {month(hi)}" if isinstance(lo, dt.date) else ""
                for lo, hi in zip(table["low"], table["high"], strict=True)
            ],
            "By cut-off, 80%": [
                "" if pd.isna(lo) else f"{lo:.0f} – {hi:.0f}"
                for lo, hi in zip(table["by_cutoff_low"], table["by_cutoff_high"], strict=True)
            ],
            "Actual": ["" if pd.isna(v) else f"{v:.0f}" for v in table["by_cutoff"]],
            "Held": [held(v) for v in table["by_cutoff_covered"]],
        }
    )
    if table["covered"].notna().any():
        shown["Reached on"] = [day(d) for d in table["reached_on"]]
        shown["Date held"] = [held(v) for v in table["covered"]]
        shown["Off by (days)"] = ["" if pd.isna(v) else f"{v:+.0f}" for v in table["error_days"]]
    return shown


def _as_accrual_forecast(model: SiteForecast, pooled: AccrualForecast) -> AccrualForecast:
    """The headline's forecast from the multicentre model (the pooled one's other fields)."""
    dates = model.headline
    if dates is None:
        return pooled
    low, median, high = dates
    return replace(
        pooled,
        message=f"The target of {model.target} is expected around {median:%d %b %Y}.",
        rate_per_month=model.rate_per_month,
        median_date=median,
        lower_date=low,
        upper_date=high,
    )


def _site_forecast_sentence(model: SiteForecast, frame: StudyFrame) -> str:
    study = frame.study

    def dates(d: tuple[dt.date, dt.date, dt.date]) -> str:
        return f"**{d[1]:%d %b %Y}** (80% interval {d[0]:%d %b %Y} to {d[2]:%d %b %Y})"

    sentence = (
        f"With the {len(model.sites)} sites open recruiting about **{model.rate_per_month:.1f} "
        f"enrollments a month** together, the target of {model.target} is projected for "
        + (dates(model.open_now) if model.open_now else "no date (no open site recruits)")
        + "."
    )
    if model.with_planned is not None:
        sentence += (
            f" With the {plural(len(model.planned), 'planned site')} opening on "
            f"{'its date' if len(model.planned) == 1 else 'their dates'}: "
            f"{dates(model.with_planned)}."
        )
    needed = required_rate_per_month(
        remaining=model.target - model.enrolled,
        cutoff=model.cutoff,
        planned_end=study.planned_end,
    )
    if needed is not None and study.planned_end is not None:
        sentence += (
            f" Finishing by the planned end ({study.planned_end:%d %b %Y}) needs "
            f"**{needed:.1f} a month** from the cut-off."
        )
    return sentence


def _with_expectation(sites: pd.DataFrame, model: SiteForecast | None) -> pd.DataFrame:
    """The site table with what the multicentre model expects of each open site and the
    probability of recruiting at most what it did (blank without the model)."""
    if model is None:
        return sites
    known = model.sites.set_index("site_id")
    return sites.assign(
        expected=sites["site_id"].map(known["expected"]),
        p_at_most=sites["site_id"].map(known["p_at_most"]),
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
