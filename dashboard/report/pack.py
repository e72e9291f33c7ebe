"""Everything the monitoring pack shows, for one study, site scope and comparison cut.

``build_pack`` reads through the query functions the pages use (and ``study_summary``, the CLI's
``summary --json``), so the pack, the pages and the CLI never disagree. What it returns is plain
values and DataFrames: the PDF and the workbook are pure layouts of it.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.charts.consort import consort_svg
from dashboard.metrics.ae_listing import derive_listing, listing_table
from dashboard.metrics.ae_tables import display_incidence, incidence_table, summary_table
from dashboard.metrics.blinding import (
    ARM_COLUMNS,
    drop_arm_columns,
    pool_enrolled_by_arm,
    pool_numeric,
    pool_reasons,
    pool_safety_population,
    pool_safety_summary,
    pool_term_incidence,
)
from dashboard.metrics.consort import consort_flow
from dashboard.metrics.enrollment import (
    cumulative_accrual,
    funnel_steps,
    reasons_text,
    study_forecast,
)
from dashboard.metrics.forecast import AccrualForecast
from dashboard.metrics.screen_failures import with_new_failures
from dashboard.metrics.table_one import (
    SUBJECTS_KEY,
    Variable,
    column_order,
    default_keys,
    table_one,
)
from dashboard.queries import safety_counts
from dashboard.queries.adverse_events import adverse_event_listing, safety_population
from dashboard.queries.baseline import baseline_catalogue, table_one_counts
from dashboard.queries.changes import new_failures_by_criterion, new_subjects_by_column
from dashboard.queries.enrollment import (
    daily_accrual,
    discontinuation_reasons,
    funnel,
    outcome_by_arm,
    undated_subjects,
)
from dashboard.queries.listings import screen_failure_listing, subject_listing
from dashboard.queries.scope import SiteScope
from dashboard.queries.screen_failures import (
    failed_subject_counts,
    failures_by_criterion,
    screen_failure_dispositions,
)
from dashboard.queries.studies import data_cuts, study_info
from dashboard.queries.summary import UnknownStudyError, study_summary
from dashboard.results.adverse_events import TREATED
from dashboard.results.baseline import NOT_ALLOCATED_COLUMN, SCREEN_FAILURE_COLUMN
from dashboard.results.changes import ChangesSince
from dashboard.results.studies import CutInfo, StudyInfo

NEW = "new"
CHANGED = "changed"
# The event listings read this many rows, then all of them where there are more: the pack lists
# every event (one query for most studies, two for the largest).
EVENT_PAGE = 20_000
# The pages' words on blinding (DESIGN.md security model): which of the two a pack carries
# depends on whom it is built for (``build_pack(shows_arms=...)``).
BLINDED_NOTE = "The study is blinded: figures by arm are shown because you are unblinded."
POOLED_NOTE = (
    "The study is blinded: the arms are pooled into one column (only unblinded users see "
    "figures by arm)."
)
TABLE_ONE_POPULATION = "enrolled"  # the Baseline page's default population and columns
TABLE_ONE_BY = "arm"


class UnknownCutError(LookupError):
    """The cut to compare with is not an earlier data cut of the study."""


@dataclass(frozen=True)
class MonitoringPack:
    """The pack's content. Frames hold display column names (the workbook's headers) and dates as
    ``datetime.date``; ``marker`` names the column that says "new" / "changed" since
    ``since_cut`` (absent where there is nothing to compare with).

    ============================  ==================================================================
    field                         content
    ============================  ==================================================================
    figures                       ``study_summary`` (the CLI's ``summary --json`` object)
    headline                      Figure, Value, New since cut N: the headline figures
    changes                       ``changes_since`` the compared cut (None: one cut only)
    accrual                       ``cumulative_accrual`` up to the cut-off (the page's chart frame)
    undated                       subjects the accrual chart cannot place (screened, enrolled)
    forecast                      ``study_forecast`` (None under a site scope or without cut-off)
    funnel                        ``funnel_steps`` (the Enrollment page's funnel)
    treated_known                 the data hold exposure (else the funnel has no "Treated" step)
    flow_svg                      the CONSORT diagram (``consort_svg``)
    by_criterion                  ``failures_by_criterion`` plus new_subjects (new screen failures)
    failures_with_reason          screen failures with a criterion recorded; more_than_one likewise
    ie_missing                    the latest cut has no IE domain: failures by criterion unknown
    failure_dispositions          what DS says about the screen failures (shown where IE is missing)
    table_one                     Table 1 (enrolled, by planned arm), first row the new subjects
    safety_note                   whom the AE percentages are of
    ae_summary                    the AE summary by arm (``summary_table``)
    ae_terms                      SOC/PT incidence by arm: level ("SOC"/"PT"), Term, arm columns
    subjects, screen_failures     the listings (one row a subject)
    adverse_events, saes          every AE, every serious AE (new ones first), one row an event
    failures_table                failures by criterion as a listing (the workbook's sheet)
    ============================  ==================================================================
    """

    study: StudyInfo
    cut: CutInfo | None
    since_cut: CutInfo | None
    generated_at: dt.datetime
    scope: SiteScope
    figures: dict[str, Any]
    headline: pd.DataFrame
    changes: ChangesSince | None
    accrual: pd.DataFrame
    undated: dict[str, int]
    forecast: AccrualForecast | None
    funnel: pd.DataFrame
    treated_known: bool
    flow_svg: str
    by_criterion: pd.DataFrame
    failures_with_reason: int
    failures_more_than_one: int
    ie_missing: bool
    failure_dispositions: pd.DataFrame
    failures_table: pd.DataFrame
    table_one: pd.DataFrame
    safety_note: str
    ae_summary: pd.DataFrame
    ae_terms: pd.DataFrame
    subjects: pd.DataFrame
    screen_failures: pd.DataFrame
    adverse_events: pd.DataFrame
    saes: pd.DataFrame
    # False: built for a blinded user of a blinded study, every figure by arm pooled, Table 1 by
    # site and no arm column in the listings.
    shows_arms: bool = True

    @property
    def marker(self) -> str | None:
        """The listings' "new since" column, None without a cut to compare with."""
        return marker_column(self.since_cut)

    @property
    def cut_label(self) -> str:
        """The latest cut as file names and titles give it."""
        return f"cut{self.cut.id}" if self.cut else "no-cut"

    @property
    def new_saes(self) -> int:
        return _marked(self.saes, self.marker, NEW)


def changes_sentence(changes: ChangesSince, since: CutInfo) -> str:
    """What is new since the compared cut, in one sentence (the Overview page and the pack)."""
    c = changes
    cutoff = f", cut-off {since.cutoff_date:%d %b %Y}" if since.cutoff_date else ""
    return (
        f"Since cut {since.id}{cutoff}: {c.new_subjects} new subject(s) screened "
        f"({c.new_screen_failures} screen failure(s), {c.new_enrolled} enrolled), "
        f"{c.changed_subjects} earlier subject(s) changed; {c.new_adverse_events} new adverse "
        f"event(s), {c.new_serious_adverse_events} of them serious, and "
        f"{c.changed_adverse_events} earlier adverse event(s) changed."
    )


def marker_column(since: CutInfo | None) -> str | None:
    return f"Since cut {since.id}" if since else None


def _marked(frame: pd.DataFrame, marker: str | None, value: str) -> int:
    return int((frame[marker] == value).sum()) if marker and marker in frame else 0


def _earlier_cut(study_id: str, cuts: list[CutInfo], since_cut_id: int | None) -> CutInfo | None:
    """The cut "new since" refers to: the one asked for, else the one before the latest (the
    sidebar's default); None for a study with one cut or none."""
    earlier = cuts[:-1]
    if since_cut_id is None:
        return earlier[-1] if earlier else None
    found = next((c for c in earlier if c.id == since_cut_id), None)
    if found is None:
        if not earlier:
            raise UnknownCutError(
                f"study {study_id} has {'one data cut' if cuts else 'no data cut'}: there is no "
                f"earlier cut {since_cut_id} to compare with"
            )
        listed = ", ".join(str(c.id) for c in earlier)
        raise UnknownCutError(
            f"cut {since_cut_id} is not an earlier data cut of study {study_id} "
            f"(earlier cuts: {listed})"
        )
    return found


def as_date(value: object) -> dt.date | None:
    """A plain date from what a query or pandas gives (date, datetime, Timestamp, ISO text, NaT,
    None): the workbook writes dates as dates."""
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else None


def _dates(values: pd.Series) -> list[dt.date | None]:
    return [as_date(v) for v in values]


def _markers(first: pd.Series, updated: pd.Series, since: CutInfo) -> list[str]:
    """ "new" for a row first held after ``since``, "changed" for an older one altered since."""
    return [
        NEW if (f or 0) > since.id else CHANGED if (u or 0) > since.id else ""
        for f, u in zip(first.fillna(0).astype(int), updated.fillna(0).astype(int), strict=True)
    ]


def _headline(
    figures: dict[str, Any], changes: ChangesSince | None, since: CutInfo | None
) -> pd.DataFrame:
    """The headline figures with what is new since the compared cut beside each (column "New
    since cut N")."""
    new = changes
    rows: list[tuple[str, int | None, int | None]] = [
        ("Screened", figures["screened"], new.new_subjects if new else None),
        ("Screen failures", figures["screen_failures"], new.new_screen_failures if new else None),
        ("Enrolled", figures["enrolled"], new.new_enrolled if new else None),
        ("Target enrollment", figures["planned_enrollment"], None),
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
    frame = pd.DataFrame(
        {
            "Figure": [r[0] for r in rows],
            "Value": pd.array([r[1] for r in rows], dtype="Int64"),
        }
    )
    if since is not None:
        frame[f"New since cut {since.id}"] = pd.array([r[2] for r in rows], dtype="Int64")
    return frame


def _table_one(
    session: Session, *, study_id: str, scope: SiteScope, since: CutInfo | None, by: str
) -> pd.DataFrame:
    """The Baseline page's default Table 1 (enrolled, by planned arm, no tests), led by a row of
    the subjects new since the compared cut in each column."""
    catalogue = baseline_catalogue(session, study_id=study_id)
    keys = default_keys(catalogue) if not catalogue.empty else []
    counts = table_one_counts(
        session,
        study_id=study_id,
        scope=scope,
        population=TABLE_ONE_POPULATION,
        by=by,
        keys=tuple(keys),
    )
    sizes = counts[counts["key"] == SUBJECTS_KEY]
    if not keys or sizes["subjects"].sum() == 0:
        return pd.DataFrame(columns=["Characteristic", "Statistic"])
    columns = column_order(
        [str(c) for c in sizes["column"].unique()],
        last=(SCREEN_FAILURE_COLUMN, NOT_ALLOCATED_COLUMN),
    )
    kinds = catalogue.set_index("key")
    variables = []
    for key in keys:
        unit = kinds.loc[key, "unit"]
        variables.append(
            Variable(
                key=key,
                label=str(kinds.loc[key, "label"]),
                unit=unit if isinstance(unit, str) else None,
                categorical=bool(kinds.loc[key, "categorical"]),
            )
        )
    table = table_one(counts, variables, columns=columns, with_tests=False).rename(
        columns={"characteristic": "Characteristic", "statistic": "Statistic"}
    )
    if since is None:
        return table
    new = new_subjects_by_column(
        session,
        study_id=study_id,
        scope=scope,
        since_cut_id=since.id,
        population=TABLE_ONE_POPULATION,
        by=by,
    ).set_index("column")["new_subjects"]
    # table_one's columns: characteristic, statistic, one per group in ``columns`` order, Overall.
    headers = list(table.columns[2 : 2 + len(columns) + 1])
    counts_in_order = [int(new.get(c, 0)) for c in columns]
    first = {
        "Characteristic": f"New since cut {since.id}",
        "Statistic": "n",
        **{
            h: str(n)
            for h, n in zip(headers, [*counts_in_order, sum(counts_in_order)], strict=True)
        },
    }
    return pd.concat([pd.DataFrame([first]), table], ignore_index=True).fillna("")


def _all_events(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    serious_only: bool,
    since: CutInfo | None,
) -> pd.DataFrame:
    """Every AE in scope (the headline counts' events: the safety population or not), those new
    since the compared cut first."""
    kwargs: dict[str, Any] = {
        "study_id": study_id,
        "scope": scope,
        "in_population": False,
        "serious_only": serious_only,
        "new_first_since": since.id if since else None,
    }
    events, total = adverse_event_listing(session, limit=EVENT_PAGE, **kwargs)
    if total > len(events):
        events, _ = adverse_event_listing(session, limit=total, **kwargs)
    return events


def _event_table(events: pd.DataFrame, since: CutInfo | None) -> pd.DataFrame:
    """An AE listing as the workbook and the PDF show it: the page's columns (``listing_table``),
    the marker column first, and the onset and end as dates beside the ISO text as given (a
    partial date on the first day of its period)."""
    derived = derive_listing(events, compare_cut_id=since.id if since else None)
    table = listing_table(derived, show_new=False)
    for text_column, date_column, label in (
        ("AESTDTC", "start_date", "Start date"),
        ("AEENDTC", "end_date", "End date"),
    ):
        table.insert(
            list(table.columns).index(text_column) + 1, label, _dates(derived[date_column])
        )
    if since is not None:
        marker = marker_column(since)
        assert marker is not None
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
SCREEN_FAILURE_LABELS = {
    "usubjid": "USUBJID",
    "site_id": "SITEID",
    "screening_date": "Screening date",
    "failed_criteria": "Criteria failed",
    "criteria_text": "Criteria failed (protocol wording)",
    "first_cut_id": "First in cut",
    "updated_cut_id": "Last changed in cut",
}


def _without_arms(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in ARM_COLUMNS}


def _arms_dropped(frame: pd.DataFrame, pooled: bool) -> pd.DataFrame:
    return drop_arm_columns(frame) if pooled else frame


def _listing(
    frame: pd.DataFrame,
    labels: dict[str, str],
    since: CutInfo | None,
    date_columns: tuple[str, ...],
) -> pd.DataFrame:
    shown = frame.copy()
    for column in date_columns:
        shown[column] = _dates(shown[column])
    shown = shown[list(labels)].rename(columns=labels)
    if since is not None:
        marker = marker_column(since)
        assert marker is not None
        shown.insert(0, marker, _markers(frame["first_cut_id"], frame["updated_cut_id"], since))
    return shown


def _failures_table(
    by_criterion: pd.DataFrame, *, screened: int, marker: str | None
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
    if marker:
        table[f"New ({marker.lower()})"] = by_criterion["new_subjects"].astype(int)
    return table


def build_pack(
    session: Session,
    *,
    study_id: str,
    scope: SiteScope,
    shows_arms: bool,
    since_cut_id: int | None = None,
    generated_at: dt.datetime | None = None,
) -> MonitoringPack:
    """Gather the pack of ``study_id`` at the sites in ``scope`` (None: every site), new and
    changed rows marked against ``since_cut_id`` (default: the cut before the latest).

    ``shows_arms``: ``access.shows_arms`` of the user it is for; False pools every figure by arm
    (``metrics.blinding``), gives Table 1 by site and drops the arm columns of the listings.

    Raises UnknownStudyError for a study not in the database, UnknownCutError for a cut that is
    not an earlier cut of the study.
    """
    study = study_info(session, study_id=study_id)
    if study is None:
        raise UnknownStudyError(study_id)
    cuts = data_cuts(session, study_id=study_id)
    cut = cuts[-1] if cuts else None
    since = _earlier_cut(study_id, cuts, since_cut_id)
    marker = marker_column(since)
    pooled = not shows_arms
    figures = study_summary(session, study_id=study_id, scope=scope)
    if pooled:
        figures = pool_enrolled_by_arm(figures)
    changes = (
        safety_counts.changes_since(session, study_id=study_id, scope=scope, since_cut_id=since.id)
        if since
        else None
    )
    where: dict[str, Any] = {"study_id": study_id, "scope": scope}

    # Enrollment: the page's chart frame and forecast (a site's view has no study target).
    cutoff = cut.cutoff_date if cut else None
    daily = daily_accrual(session, **where)
    forecast = (
        study_forecast(
            daily,
            target=study.planned_enrollment,
            cutoff=cutoff,
            planned_start=study.planned_start,
            planned_end=study.planned_end,
        )
        if scope is None
        else None
    )
    counts = funnel(session, **where)
    reasons = discontinuation_reasons(session, **where)
    if pooled:
        reasons = pool_reasons(reasons)
    steps = funnel_steps(
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
    )

    # Screen failures by criterion, with the new failures beside each.
    by_criterion = failures_by_criterion(session, **where)
    failed = failed_subject_counts(session, **where)
    # Without a cut to compare with every count of new failures is 0.
    by_criterion = with_new_failures(
        by_criterion,
        new_failures_by_criterion(session, since_cut_id=since.id, **where)
        if since
        else pd.DataFrame(columns=["code", "protocol_version", "new_subjects"]),
    )
    by_arm = outcome_by_arm(session, **where)
    flow = consort_svg(
        consort_flow(
            funnel=counts,
            by_criterion=by_criterion,
            failures_with_reason=failed["with_reason"],
            reasons=reasons,
            by_arm=pool_numeric(by_arm) if pooled else by_arm,
        ),
        title=study.registry_id or study.study_id,
    )

    # Safety: the Adverse events page's tables (every AE, no treatment-emergent filter).
    population = safety_population(session, **where)
    summary = safety_counts.safety_summary(session, **where)
    if pooled:
        population, summary = pool_safety_population(population), pool_safety_summary(summary)
    if population.subjects:
        ae_summary = summary_table(
            summary.counts,
            population.by_arm,
            discontinuation_from_ds=summary.discontinuation_from_ds,
        ).drop(columns="category")
        incidence = safety_counts.incidence_by_term(session, **where)
        if pooled:
            incidence = pool_term_incidence(incidence)
        terms = incidence_table(incidence.by_pt, incidence.by_soc, population.by_arm)
        ae_terms = display_incidence(terms, population.by_arm)
        ae_terms["Term"] = [
            str(soc) if level == "SOC" else str(pt)
            for soc, pt, level in zip(terms["soc"], terms["pt"], terms["level"], strict=True)
        ]
        ae_terms.insert(0, "level", terms["level"].to_numpy())
    else:
        ae_summary = pd.DataFrame(columns=["Category"])
        ae_terms = pd.DataFrame(columns=["level", "Term"])
    basis = "treated subjects, by actual arm (ACTARM)"
    if population.basis != TREATED:
        basis = "enrolled subjects, by planned arm (ARM): the data hold no exposure"
    safety_note = (
        f"Percentages are of the {population.subjects} {basis}. Every AE in the data is counted; "
        "subjects n (%) with at least one such AE, and [events]."
    )
    if study.is_blinded:
        safety_note += " " + (BLINDED_NOTE if shows_arms else POOLED_NOTE)
    if summary.outside_events:
        safety_note += (
            f" {summary.outside_events} AE(s) of {summary.outside_subjects} subject(s) outside "
            "that population are in the headline counts but in no table by arm."
        )

    return MonitoringPack(
        study=study,
        cut=cut,
        since_cut=since,
        generated_at=generated_at or dt.datetime.now(dt.UTC),
        scope=scope,
        figures=figures,
        headline=_headline(figures, changes, since),
        changes=changes,
        accrual=cumulative_accrual(daily, until=cutoff),
        undated=undated_subjects(session, **where),
        forecast=forecast,
        funnel=steps,
        treated_known=counts.treated is not None,
        flow_svg=flow,
        by_criterion=by_criterion,
        failures_with_reason=failed["with_reason"],
        failures_more_than_one=failed["more_than_one"],
        ie_missing=cut is not None and "IE" not in cut.domains,
        failure_dispositions=screen_failure_dispositions(session, **where).rename(
            columns={
                "term": "DS reason (DSDECOD)",
                "verbatim": "Verbatim (DSTERM)",
                "subjects": "Subjects",
            }
        ),
        failures_table=_failures_table(
            by_criterion, screened=int(figures["screened"]), marker=marker
        ),
        table_one=_table_one(
            session,
            study_id=study_id,
            scope=scope,
            since=since,
            by=TABLE_ONE_BY if shows_arms else "site",
        ),
        safety_note=safety_note,
        ae_summary=ae_summary,
        ae_terms=ae_terms,
        subjects=_listing(
            subject_listing(session, **where),
            SUBJECT_LABELS if shows_arms else _without_arms(SUBJECT_LABELS),
            since,
            ("screening_date", "enrollment_date", "first_dose_date"),
        ),
        screen_failures=_listing(
            screen_failure_listing(session, **where),
            SCREEN_FAILURE_LABELS,
            since,
            ("screening_date",),
        ),
        adverse_events=_event_table(
            _arms_dropped(_all_events(session, serious_only=False, since=since, **where), pooled),
            since,
        ),
        saes=_event_table(
            _arms_dropped(_all_events(session, serious_only=True, since=since, **where), pooled),
            since,
        ),
        shows_arms=shows_arms,
    )
