"""The Screen failures page's view: failures by criterion with the new ones, criteria failed
together, the rate by month, sites by criterion, what DS says where there is no IE domain, and
the eligibility checks of the enrolled subjects. The drilldown (who failed one criterion) is
``failed_subjects``."""

from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.eligibility import checked_criteria
from dashboard.metrics.screen_failures import (
    monthly_failure_rate,
    site_criterion_grid,
    with_new_failures,
)
from dashboard.queries import enrollment, screen_failures, studies
from dashboard.queries.changes import new_failures_by_criterion, subject_changes_since
from dashboard.results.changes import SubjectChanges
from dashboard.results.enrollment import PopulationCounts
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.format import percent, plural, verb
from dashboard.views.reader import Reader

UNKNOWN = "unknown"
# Where the latest cut has no IE domain, nobody's failed criteria are known: the counts by
# criterion are unknown, not 0 (the workbook's sheet and the page's table say so).
NO_IE_COUNTS = "unknown: no IE domain in the data cut"

DS_REASON_LABELS = {
    "term": "DS reason (DSDECOD)",
    "verbatim": "Verbatim (DSTERM)",
    "subjects": "Subjects",
}


@dataclass(frozen=True)
class EligibilityChecks:
    """Enrolled subjects whose screening values break a rule (possible protocol deviations)."""

    deviations: pd.DataFrame
    checked: tuple[str, ...]  # "CODE: rule" of every rule checked
    unreadable: tuple[str, ...]  # rules that could not be read
    no_data: tuple[str, ...]  # variables with no screening data


@dataclass(frozen=True)
class ScreenFailuresView:
    frame: StudyFrame
    counts: PopulationCounts
    changes: SubjectChanges | None
    metrics: tuple[Metric, ...]
    ie_missing: bool  # the latest cut has no IE domain: failures by criterion are unknown
    # failures_by_criterion (code, protocol_version, category, text, subjects) with new_subjects
    # (0 without a cut to compare with): the chart's input
    by_criterion: pd.DataFrame
    criteria_table: pd.DataFrame  # the page's table: display headers, % as text
    failures_table: pd.DataFrame  # the pack's sheet: display headers, % as a number
    failures_with_reason: int
    failures_more_than_one: int
    criteria_caption: str  # one sentence under the chart
    criteria_rule: str  # behind its help icon: why the bars do not add up
    cooccurrence: pd.DataFrame  # Criterion, with, Subjects
    monthly: pd.DataFrame  # ``monthly_failure_rate``
    by_site: pd.DataFrame  # screened and screen failures per site in scope (enrollment_by_site)
    site_grid: pd.DataFrame | None  # site x criterion (None: no criteria, or one site)
    site_rates: pd.DataFrame | None  # Site, Screened, Screen failures, Rate (where no grid)
    dispositions: pd.DataFrame  # what DS says about the screen failures (display headers)
    eligibility: EligibilityChecks


def eligibility_checks(read: Reader) -> EligibilityChecks:
    study = read(studies.study_info)
    rules = read(screen_failures.criteria_with_rules)
    criteria, unreadable = checked_criteria(
        rules,
        min_age=study.min_age if study else None,
        max_age=study.max_age if study else None,
    )
    variables = tuple(sorted({c.rule.variable for c in criteria}))
    return EligibilityChecks(
        deviations=read(screen_failures.eligibility_violations, criteria=criteria),
        checked=tuple(f"{c.code}: {c.rule.text}" for c in criteria),
        unreadable=tuple(unreadable),
        no_data=read(screen_failures.variables_without_data, variables=variables),
    )


def _failures_table(
    by_criterion: pd.DataFrame, *, screened: int, since: int | None
) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "Code": by_criterion["code"],
            "Version": by_criterion["protocol_version"],
            "Category": by_criterion["category"],
            "Criterion (protocol wording)": by_criterion["text"],
            "Subjects": by_criterion["subjects"].astype(int),
            "% of screened": [
                round(100 * n / screened, 1) if screened else None for n in by_criterion["subjects"]
            ],
        }
    )
    if not table["Version"].astype(bool).any():
        table = table.drop(columns="Version")  # one protocol version: nothing to show
    if since is not None:
        table[f"New (since cut {since})"] = by_criterion["new_subjects"].astype(int)
    return table


def _counts_if_known(table: pd.DataFrame, *, known: bool) -> pd.DataFrame:
    """A criteria table as it is where the counts are known; where IE is missing, the protocol's
    criteria with their counts said to be unknown (0 would claim nobody failed them)."""
    if known:
        return table
    counts = [c for c in table.columns if c in ("Subjects", "% of screened") or c.startswith("New")]
    return table.drop(columns=counts).assign(Subjects=NO_IE_COUNTS)


def _criteria_table(
    by_criterion: pd.DataFrame, *, screened: int, since: int | None
) -> pd.DataFrame:
    table = by_criterion.assign(
        share=lambda f: f["subjects"].map(lambda n: percent(n, screened, 1))
    )[
        ["code", "protocol_version", "category", "text", "subjects", "share"]
        + (["new_subjects"] if since is not None else [])
    ]
    if not table["protocol_version"].astype(bool).any():
        table = table.drop(columns="protocol_version")  # one protocol version: nothing to show
    return table.rename(
        columns={
            "code": "Code",
            "protocol_version": "Version",
            "category": "Category",
            "text": "Criterion (protocol wording)",
            "subjects": "Subjects",
            "share": "% of screened",
            "new_subjects": f"New since cut {since}",
        }
    )


def _despite_a_rule(eligibility: EligibilityChecks, *, ie_missing: bool) -> Metric:
    """Enrolled subjects whose screening values break a checked rule: a count where rules were
    checked, "unknown" where none could be, or where IE (which records the criteria an enrolled
    subject did not meet) is missing and a count found would understate it."""
    found = int(eligibility.deviations["usubjid"].nunique())
    rules = plural(len(eligibility.checked), "rule")
    if not eligibility.checked:
        return Metric(
            "Enrolled despite a rule",
            UNKNOWN,
            help="No criterion of this study has a rule the app can check against the screening "
            "values, so this is unknown (not 0).",
        )
    if ie_missing and not found:
        return Metric(
            "Enrolled despite a rule",
            UNKNOWN,
            help=f"No IE domain in the latest data cut, and only {rules} could be checked against "
            "the screening values (none broken): whether anyone was enrolled despite the other "
            "criteria is unknown.",
        )
    return Metric(
        "Enrolled despite a rule",
        found,
        help=f"Enrolled subjects whose screening values break one of the {rules} the app can "
        "check: possible protocol deviations, listed at the foot of the page.",
    )


def build_screen_failures(session: Session, ctx: ViewContext) -> ScreenFailuresView:
    read = Reader(session, ctx)
    frame = study_frame(read)
    since = frame.since_cut
    counts = read(enrollment.population_counts)
    changes = read(subject_changes_since, since_cut_id=since.id) if since else None
    failed = read(screen_failures.failed_subject_counts)
    # Without a cut to compare with every count of new failures is 0.
    by_criterion = with_new_failures(
        read(screen_failures.failures_by_criterion),
        read(new_failures_by_criterion, since_cut_id=since.id)
        if since
        else pd.DataFrame(columns=["code", "protocol_version", "new_subjects"]),
    )
    eligibility = eligibility_checks(read)
    latest = frame.cut
    ie_missing = latest is not None and "IE" not in latest.domains
    screened = counts.screened
    unexplained = counts.screen_failures - failed["with_reason"]
    sites = read(enrollment.enrollment_by_site)
    every_site = read(studies.sites, scope=None)
    viewer_sites = ctx.site_count(len(every_site))
    grid = rates = None
    if viewer_sites > 1:
        if ie_missing or by_criterion.empty:
            rates = (
                sites[["site_id", "screened", "screen_failures"]]
                .assign(
                    rate=lambda f: [
                        percent(a, b)
                        for a, b in zip(f["screen_failures"], f["screened"], strict=True)
                    ]
                )
                .rename(
                    columns={
                        "site_id": "Site",
                        "screened": "Screened",
                        "screen_failures": "Screen failures",
                        "rate": "Rate",
                    }
                )
            )
        else:
            grid = site_criterion_grid(
                read(screen_failures.site_criterion_counts), sites=sites, criteria=by_criterion
            )
    since_number = since.number if since else None  # the study's own count, not the id
    return ScreenFailuresView(
        frame=frame,
        counts=counts,
        changes=changes,
        metrics=(
            Metric(
                "Screen failures",
                counts.screen_failures,
                f"+{changes.new_screen_failures} new since cut {since_number}" if changes else None,
            ),
            Metric("Screen-failure rate", percent(counts.screen_failures, screened)),
            Metric(
                "Failed more than one criterion",
                UNKNOWN if ie_missing else failed["more_than_one"],
                help=(
                    "No IE domain in the latest data cut: which criteria a screen failure failed "
                    "is not recorded, so this is unknown (not 0)."
                    if ie_missing
                    else "Screen failures with two or more criteria failed in IE."
                ),
            ),
            _despite_a_rule(eligibility, ie_missing=ie_missing),
        ),
        ie_missing=ie_missing,
        by_criterion=by_criterion,
        criteria_table=_counts_if_known(
            _criteria_table(by_criterion, screened=screened, since=since_number),
            known=not ie_missing,
        ),
        failures_table=_counts_if_known(
            _failures_table(by_criterion, screened=screened, since=since_number),
            known=not ie_missing,
        ),
        failures_with_reason=failed["with_reason"],
        failures_more_than_one=failed["more_than_one"],
        criteria_caption=(
            "Bars count distinct screen-failed subjects per criterion; click a bar (or tick a row "
            "below) to list them."
        ),
        criteria_rule=(
            "A subject can fail several criteria, so the bars do not add up to the "
            f"{counts.screen_failures} screen failures: {failed['more_than_one']} failed more "
            "than one."
            + (
                f" {plural(unexplained, 'screen failure')} "
                f"{verb(unexplained, 'has', 'have')} no criterion recorded."
                if unexplained
                else ""
            )
        ),
        cooccurrence=read(screen_failures.failure_cooccurrence).rename(
            columns={"first": "Criterion", "second": "with", "subjects": "Subjects"}
        ),
        monthly=monthly_failure_rate(read(screen_failures.daily_screening)),
        by_site=sites,
        site_grid=grid,
        site_rates=rates,
        dispositions=read(screen_failures.screen_failure_dispositions).rename(
            columns=DS_REASON_LABELS
        ),
        eligibility=eligibility,
    )


def failed_subjects(
    session: Session, ctx: ViewContext, code: str, protocol_version: str
) -> pd.DataFrame:
    """The drilldown: subjects who failed one criterion, with their screening values of the
    variables the study's rules name."""
    read = Reader(session, ctx)
    variables, _ = checked_criteria(
        read(screen_failures.criteria_with_rules), min_age=None, max_age=None
    )
    return read(
        screen_failures.failed_subjects,
        code=code,
        protocol_version=protocol_version,
        value_codes=tuple(sorted({c.rule.variable for c in variables})),
    )
