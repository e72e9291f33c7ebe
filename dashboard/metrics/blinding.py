"""Blinding (DESIGN.md security model): the pooled figures a blinded user sees in a blinded study.

Pure functions, no streamlit: the pages' loaders, the monitoring pack and the CLI pool the same way.
Pooling sums subject and event counts over the arms. That is exact, not an approximation: a subject
is counted in one arm only (the safety population's actual arm, or the planned arm), so the sum of
the per-arm distinct-subject counts is the distinct-subject count of the pooled group.

Whether a viewer sees arms at all is decided once, in ``dashboard.views.context.ViewContext``, and
these functions are applied in one place, ``dashboard.views.reader``.
"""

import dataclasses
from collections.abc import Sequence

import pandas as pd

from dashboard.results.adverse_events import SafetyPopulation, SafetySummary, TermIncidence
from dashboard.results.subject import SubjectRecord

# The one column label of a pooled table, and the one "arm" of a pooled chart: it names no arm.
POOLED = "All arms (blinded)"
# What a subject's arm reads as for a blinded user.
BLINDED = "blinded"

# Columns that name a subject's arm in listings (query names and SDTM names, any case).
ARM_COLUMNS = frozenset(
    {"arm", "arm_code", "actual_arm", "actual_arm_code", "armcd", "actarm", "actarmcd"}
)


def pool_arms(frame: pd.DataFrame, *, counts: Sequence[str], arm: str = "arm") -> pd.DataFrame:
    """``frame`` with its arms summed into one ``POOLED`` arm.

    Every column that is not ``arm`` or a count (rank, category, soc, pt, value, reason...) stays a
    group key, in the order of first appearance. A count that is null in every arm of a group (the
    summary's events of discontinuation read from DS) stays null rather than becoming 0.
    """
    keys = [c for c in frame.columns if c != arm and c not in counts]
    if frame.empty:
        return frame.iloc[0:0].copy()
    if keys:
        pooled = (
            frame.groupby(keys, sort=False, dropna=False)[list(counts)]
            .sum(min_count=1)
            .reset_index()
        )
    else:
        pooled = frame[list(counts)].sum(min_count=1).to_frame().T
    pooled[arm] = POOLED
    for count in counts:  # integers stay integers where no null was summed
        if pd.api.types.is_integer_dtype(frame[count]) and not pooled[count].isna().any():
            pooled[count] = pooled[count].astype(frame[count].dtype)
    return pooled[list(frame.columns)].reset_index(drop=True)


def pool_safety_population(population: SafetyPopulation) -> SafetyPopulation:
    """The safety population as one pooled arm (same basis and total)."""
    return dataclasses.replace(population, by_arm=pool_arms(population.by_arm, counts=["subjects"]))


def pool_safety_summary(summary: SafetySummary) -> SafetySummary:
    """The summary table's counts (arm, category, subjects, events) for one pooled arm."""
    counts = [c for c in ("subjects", "events") if c in summary.counts.columns]
    return dataclasses.replace(summary, counts=pool_arms(summary.counts, counts=counts))


def pool_term_incidence(incidence: TermIncidence) -> TermIncidence:
    """Incidence by SOC and by PT for one pooled arm."""
    return TermIncidence(
        by_pt=pool_arms(incidence.by_pt, counts=["subjects", "events"]),
        by_soc=pool_arms(incidence.by_soc, counts=["subjects", "events"]),
    )


def pool_reasons(reasons: pd.DataFrame) -> pd.DataFrame:
    """Discontinuation reasons by arm (arm, reason, subjects) pooled, most frequent first as the
    query gives them (the first appearance of a reason over the arms is not its rank)."""
    pooled = pool_arms(reasons, counts=["subjects"])
    return pooled.sort_values("subjects", ascending=False, kind="stable").reset_index(drop=True)


def pool_numeric(frame: pd.DataFrame, *, arm: str = "arm") -> pd.DataFrame:
    """A frame of one row per arm and only counts besides (the enrolment outcome by arm:
    allocated, treated, completed, discontinued, ongoing) as one pooled row."""
    counts = [c for c in frame.columns if c != arm and pd.api.types.is_numeric_dtype(frame[c])]
    return pool_arms(frame, counts=counts, arm=arm)


def drop_arm_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A listing without the columns that name a subject's arm (ARM, ACTARM, their codes)."""
    return frame.drop(columns=[c for c in frame.columns if str(c).lower() in ARM_COLUMNS])


def blind_subject_record(record: SubjectRecord) -> SubjectRecord:
    """A subject's record with every arm field (ARM, ACTARM and their codes) read as ``BLINDED``;
    a subject without an arm (a screen failure) keeps none."""

    def blinded(value: str | None) -> str | None:
        return None if value in (None, "") else BLINDED

    return dataclasses.replace(
        record,
        arm=blinded(record.arm),
        arm_code=blinded(record.arm_code),
        actual_arm=blinded(record.actual_arm),
        actual_arm_code=blinded(record.actual_arm_code),
    )
