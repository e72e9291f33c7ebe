"""The Adverse events page's view: the headline, the summary by arm, the serious AE listing (new
first), subjects by their worst level of one dimension, incidence by SOC and PT, and the notes
that say whom the percentages are of. Drilldowns list events through ``events``."""

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.ae_listing import derive_listing, listing_table
from dashboard.metrics.ae_rules import WORST_DIMENSIONS
from dashboard.metrics.ae_tables import (
    display_incidence,
    display_worst_levels,
    incidence_table,
    source_values,
    summary_table,
    worst_level_table,
)
from dashboard.queries import adverse_events, enrollment, safety_counts
from dashboard.results.adverse_events import (
    TREATED,
    AdverseEventCounts,
    SafetyPopulation,
    SafetySummary,
)
from dashboard.results.changes import AdverseEventChanges
from dashboard.results.studies import StudyInfo
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.format import percent, plural, verb
from dashboard.views.reader import Reader

# Listings are limited: a drilldown of more events than this says how many it left out.
LISTING_LIMIT = 2000
# The SAE listing opens every view of the page: a shorter first page keeps reruns quick (new
# SAEs come first; all of them are in the meeting pack's SAEs sheet).
SAE_LISTING_LIMIT = 500
# The timeline's subject picker offers at most this many (serious first).
TIMELINE_CHOICES = 1000

BLINDED_NOTE = "The study is blinded: figures by arm are shown because you are unblinded."
UNKNOWN_BLINDING = (
    "The study's blinding is unknown (no TS TBLIND, no registry masking), so it counts as blinded"
)
POOLED_NOTE = (
    "The study is blinded: the arms are pooled into one column (only unblinded users see "
    "figures by arm)."
)


@dataclass(frozen=True)
class AdverseEventsOptions:
    treatment_emergent: bool = False
    dimension: str = "severity"  # the per-subject worst level shown (``WORST_DIMENSIONS``)
    threshold: float = 0.0  # preferred terms in at least this % of some arm
    sae_limit: int | None = SAE_LISTING_LIMIT  # None: every SAE (the pack)


@dataclass(frozen=True)
class AdverseEventsView:
    frame: StudyFrame
    options: AdverseEventsOptions
    anyone: bool  # the study has a subject in scope
    population: SafetyPopulation
    headline: AdverseEventCounts
    changes: AdverseEventChanges | None  # over every AE: none beside treatment-emergent counts
    metrics: tuple[Metric, ...]
    population_note: str  # whom the percentages are of
    counting_note: str  # which AEs count
    blinding_note: str | None  # in a blinded study: pooled, or shown because unblinded
    summary: SafetySummary
    outside_sentence: str | None  # AEs in the headline but in no table by arm
    summary_table: pd.DataFrame  # ``summary_table`` (with its category column)
    definitions: str  # the summary's caption
    saes: pd.DataFrame  # the SAE listing as shown (``listing_table``), new first
    sae_events: pd.DataFrame  # the derived SAE rows behind it (``derive_listing``)
    sae_total: int  # how many SAEs match (the listing may show fewer)
    dimensions: tuple[str, ...]  # the per-subject dimensions this study's data allow
    worst_levels: pd.DataFrame  # ``worst_level_table`` of options.dimension
    worst_table: pd.DataFrame  # ``display_worst_levels``
    source_values: pd.DataFrame  # ``source_values`` of options.dimension
    terms: pd.DataFrame  # ``incidence_table`` at options.threshold
    terms_shown: pd.DataFrame  # ``display_incidence`` of ``terms``
    uncoded_events: int

    @property
    def notes(self) -> str:
        """The page's caption under the headline."""
        return " ".join(
            n for n in (self.population_note, self.counting_note, self.blinding_note) if n
        )

    @property
    def since_cut_id(self) -> int | None:
        return self.frame.since_cut.id if self.frame.since_cut else None

    def terms_sheet(self) -> pd.DataFrame:
        """Incidence by SOC and PT as one sheet: level ("SOC"/"PT"), Term, the arm columns."""
        if self.terms.empty:
            return pd.DataFrame(columns=["level", "Term"])
        sheet = self.terms_shown.copy()
        sheet["Term"] = [
            str(soc) if level == "SOC" else str(pt)
            for soc, pt, level in zip(
                self.terms["soc"], self.terms["pt"], self.terms["level"], strict=True
            )
        ]
        sheet.insert(0, "level", self.terms["level"].to_numpy())
        return sheet


def _population_note(population: SafetyPopulation) -> str:
    arm_word = "actual arm (ACTARM)" if population.basis == TREATED else "planned arm (ARM)"
    if population.basis == TREATED:
        return (
            f"Percentages are of the {population.subjects} treated subjects (a first dose or an "
            f"exposure record), by {arm_word}."
        )
    return (
        f"No exposure data: percentages are of the {population.subjects} enrolled subjects, "
        f"by {arm_word}."
    )


def _blinding_note(study: StudyInfo, *, shows_arms: bool) -> str | None:
    if not study.counts_as_blinded:
        return None
    note = BLINDED_NOTE if shows_arms else POOLED_NOTE
    if study.is_blinded is None:
        return note.replace("The study is blinded", UNKNOWN_BLINDING, 1)
    return note


def _counting_note(population: SafetyPopulation, *, treatment_emergent: bool) -> str:
    if treatment_emergent:
        return f"Treatment-emergent AEs only: {population.emergent_rule}."
    return "Every AE in the data is counted" + (
        f"; the switch above keeps the treatment-emergent ones ({population.emergent_rule})."
        if population.tells_emergent
        else "."
    )


def _definitions(summary: SafetySummary) -> str:
    text = (
        "Subjects n (%) with at least one such AE, and [events]. Related: AEREL Y, RELATED, "
        "DEFINITE, PROBABLE, POSSIBLE (or …LY RELATED); not related: N, NOT RELATED, NONE, "
        "UNLIKELY, REMOTE; anything else is unknown. Severe: AESEV SEVERE or AETOXGR 3 or more. "
        "Death: AESDTH = Y or AEOUT = FATAL. "
    )
    if summary.discontinuation_from_ds:
        return text + (
            "Leading to discontinuation: AEACN is blank for every AE of this study, so it counts "
            "the subjects whose disposition reason (DS DSDECOD) is ADVERSE EVENT; DS gives no "
            "event count. "
        )
    return text + "Leading to discontinuation: AEACN DRUG WITHDRAWN. "


def events(
    session: Session, ctx: ViewContext, *, limit: int | None = LISTING_LIMIT, **filters: Any
) -> tuple[pd.DataFrame, int]:
    """An AE listing of ``ctx`` (``adverse_event_listing``'s filters) and how many events match;
    ``limit`` None: every one, in one query (the pack's workbook lists every AE)."""
    return Reader(session, ctx)(adverse_events.adverse_event_listing, limit=limit, **filters)


def ds_discontinuations(session: Session, ctx: ViewContext, arm: str | None) -> pd.DataFrame:
    """Subjects counted as discontinued for an AE from DS (where AEACN is blank)."""
    return Reader(session, ctx)(adverse_events.discontinuations_from_ds, arm=arm)


def subjects_with_events(session: Session, ctx: ViewContext) -> pd.DataFrame:
    """The timeline's choices: subjects with an AE, those with a serious one first."""
    return Reader(session, ctx)(adverse_events.subjects_with_adverse_events, limit=TIMELINE_CHOICES)


def build_adverse_events(
    session: Session, ctx: ViewContext, options: AdverseEventsOptions | None = None
) -> AdverseEventsView:
    read = Reader(session, ctx)
    frame = study_frame(read)
    chosen = options or AdverseEventsOptions()
    emergent = chosen.treatment_emergent
    since = frame.since_cut
    population = read(adverse_events.safety_population)
    headline = read(safety_counts.stored_adverse_event_counts, treatment_emergent=emergent)
    # New AEs are counted over every AE: beside the treatment-emergent figures they would not match.
    changes = (
        read(safety_counts.adverse_event_changes_since, since_cut_id=since.id)
        if since is not None and not emergent
        else None
    )
    compare = since.id if since else None
    metrics = (
        Metric(
            "Subjects with an AE",
            f"{headline.subjects} ({percent(headline.subjects, population.subjects)})",
        ),
        Metric(
            "AE events",
            headline.events,
            f"+{changes.new_adverse_events} new since cut {since.number}"
            if since and changes
            else None,
        ),
        Metric(
            "Subjects with an SAE",
            f"{headline.serious_subjects} ({percent(headline.serious_subjects, population.subjects)})",
        ),
        Metric(
            "SAE events",
            headline.serious_events,
            f"+{changes.new_serious_adverse_events} new since cut {since.number}"
            if since and changes
            else None,
        ),
    )
    summary = read(safety_counts.safety_summary, treatment_emergent=emergent)
    saes, sae_total = events(
        session,
        ctx,
        limit=chosen.sae_limit,
        treatment_emergent=emergent,
        in_population=False,
        serious_only=True,
        new_first_since=compare,
    )
    sae_events = derive_listing(saes, compare_cut_id=compare)
    dimensions = tuple(d for d in WORST_DIMENSIONS if d != "grade" or summary.graded_events)
    dimension = chosen.dimension if chosen.dimension in dimensions else dimensions[0]
    worst, values = (
        read(
            safety_counts.subjects_by_worst_level, treatment_emergent=emergent, dimension=dimension
        ),
        read(
            safety_counts.events_by_source_value, treatment_emergent=emergent, dimension=dimension
        ),
    )
    levels = worst_level_table(worst, population.by_arm, dimension)
    incidence = read(safety_counts.incidence_by_term, treatment_emergent=emergent)
    terms = incidence_table(
        incidence.by_pt, incidence.by_soc, population.by_arm, threshold=chosen.threshold
    )
    basis = "treated" if population.basis == TREATED else "enrolled"
    return AdverseEventsView(
        frame=frame,
        options=AdverseEventsOptions(
            treatment_emergent=emergent,
            dimension=dimension,
            threshold=chosen.threshold,
            sae_limit=chosen.sae_limit,
        ),
        anyone=read(enrollment.any_subjects),
        population=population,
        headline=headline,
        changes=changes,
        metrics=metrics,
        population_note=_population_note(population),
        counting_note=_counting_note(population, treatment_emergent=emergent),
        blinding_note=_blinding_note(frame.study, shows_arms=ctx.shows_arms),
        summary=summary,
        outside_sentence=(
            f"{plural(summary.outside_events, 'AE')} of "
            f"{plural(summary.outside_subjects, 'subject')} outside the {basis} population (e.g. "
            f"during screening) {verb(summary.outside_events, 'is', 'are')} in the headline "
            "counts above but in none of the tables by arm."
            if summary.outside_events
            else None
        ),
        summary_table=summary_table(
            summary.counts,
            population.by_arm,
            discontinuation_from_ds=summary.discontinuation_from_ds,
        ),
        definitions=_definitions(summary),
        saes=listing_table(sae_events, show_new=compare is not None),
        sae_events=sae_events,
        sae_total=sae_total,
        dimensions=dimensions,
        worst_levels=levels,
        worst_table=display_worst_levels(levels),
        source_values=source_values(values, dimension),
        terms=terms,
        terms_shown=display_incidence(terms, population.by_arm),
        uncoded_events=summary.uncoded_events,
    )
