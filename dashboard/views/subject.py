"""The Subject page's reads: one subject's record (arms read "blinded" for a viewer who sees
none), the codes the picker offers, and the subject's lab and vital-sign values over time with
its AEs on the same study-day axis."""

import dataclasses

import numpy as np
import pandas as pd
from sqlmodel import Session

from dashboard.metrics import labs
from dashboard.metrics.countries import country_label
from dashboard.metrics.study_days import study_day
from dashboard.queries import labs as lab_queries
from dashboard.queries import subject
from dashboard.results.dates import as_date
from dashboard.results.subject import SubjectRecord
from dashboard.views.context import ViewContext
from dashboard.views.format import plural
from dashboard.views.reader import Reader

__all__ = [
    "AE_SPAN_COLUMNS",
    "PICKER_LIMIT",
    "SubjectLabs",
    "SubjectRecord",
    "ae_spans",
    "codes",
    "lab_values",
    "out_of_range_sentence",
    "record",
]

# The subject picker lists at most this many codes (type part of a code to narrow it).
PICKER_LIMIT = 200


def record(session: Session, ctx: ViewContext, usubjid: str) -> SubjectRecord | None:
    """The subject's record, its country named ("Iran (IRN)", not the bare ISO code)."""
    found = Reader(session, ctx)(subject.subject_record, usubjid=usubjid)
    if found is None:
        return None
    return dataclasses.replace(found, country=country_label(found.country))


def codes(session: Session, ctx: ViewContext, contains: str) -> tuple[list[str], int]:
    """(codes containing ``contains``, at most ``PICKER_LIMIT``; how many match in all)."""
    return Reader(session, ctx)(subject.subject_codes, contains=contains, limit=PICKER_LIMIT)


# -- lab and vital-sign values over time -----------------------------------------------------------

# The subject's AEs as the values chart draws them beneath the values (charts.labs.subject_values).
AE_SPAN_COLUMNS = ["term", "start_day", "end_day", "ongoing"]


@dataclasses.dataclass(frozen=True)
class SubjectLabs:
    """One subject's LB and VS records as the Labs page reads them (safety population, site
    scope, the arm pooled for a blinded viewer), and its AEs on the study-day axis.

    - ``records``: the contract frame of ``queries.labs.lab_records``, LB then VS, vital signs
      given the reference limits of ``metrics.labs.VITAL_SIGN_LIMITS`` where they have no range
      of their own, with a ``measurement`` label (``metrics.labs.with_measurement``);
    - ``measurements``: ``metrics.labs.measurements`` of them (label, domain, test code, records);
    - ``adverse_events``: ``AE_SPAN_COLUMNS``, by onset (an ongoing AE to the subject's last LB
      or VS day; ``aes_beside`` ends it at one measurement's last value); ``aes_not_placed``: AEs
      without an onset day (not drawn);
    - ``other_findings``: the subject's LB and VS findings in its record that are not read here
      (a subject outside the safety population has its screening values only in its listing).
    """

    usubjid: str
    records: pd.DataFrame
    measurements: pd.DataFrame
    adverse_events: pd.DataFrame
    aes_not_placed: int
    other_findings: int

    @property
    def default_measurement(self) -> str | None:
        """The measurement shown first: ALT where the subject has it (the liver signal the Labs
        page's Hy's law cases lead to), else the first with a normal range, else the first."""
        table = self.measurements
        if table.empty:
            return None
        alt = table[table["test_code"].isin(labs.ALT_CODES) & table["domain"].eq("LB")]
        if not alt.empty:
            return str(alt["label"].iloc[0])
        ranged = self.records.loc[
            self.records["low"].notna() | self.records["high"].notna(), "measurement"
        ]
        with_range = table[table["label"].isin(set(ranged))]
        return str((with_range if not with_range.empty else table)["label"].iloc[0])

    def series(self, measurement: str) -> pd.DataFrame:
        """The subject's values of ``measurement`` over time (``metrics.labs.subject_series``)."""
        return labs.subject_series(self.records, measurement, self.usubjid)

    def aes_beside(self, series: pd.DataFrame) -> pd.DataFrame:
        """The AEs to draw beneath ``series`` (one measurement's values): an ongoing AE runs to
        the last value of the series (or ends where it starts, if later), so that the axis is the
        series' own and not stretched to the subject's last record of another measurement."""
        days = series["study_day"] if "study_day" in series else pd.Series(dtype=float)
        if days.notna().sum() == 0:
            return self.adverse_events
        last = float(days.max())
        spans = self.adverse_events
        ongoing = spans["ongoing"].astype(bool)
        end = spans["end_day"].where(~ongoing, np.maximum(spans["start_day"], last))
        return spans.assign(end_day=end.astype(float))


def ae_spans(adverse_events: pd.DataFrame, day_one: object, last_day: float | None) -> pd.DataFrame:
    """The AEs of a subject record (``results.subject.ADVERSE_EVENT_COLUMNS``) as bars on the
    study-day axis: ``AE_SPAN_COLUMNS``. The onset day is AESTDY where given, else counted from
    day 1 (no day 0); the end day from the end date. An AE without an end (ongoing, or its end
    unknown) runs to ``last_day`` (the subject's last lab or vital-sign day), or ends where it
    starts if that is earlier; an AE without an onset day is left out (the caller counts it)."""
    day_one_date = as_date(day_one)
    start = pd.to_numeric(adverse_events["start_day"], errors="coerce").astype(float)
    counted = [
        np.nan if (d := study_day(as_date(v), day_one_date)) is None else float(d)
        for v in adverse_events["start_date"]
    ]
    start = start.fillna(pd.Series(counted, index=adverse_events.index, dtype=float))
    end = pd.Series(
        [
            np.nan if (d := study_day(as_date(v), day_one_date)) is None else float(d)
            for v in adverse_events["end_date"]
        ],
        index=adverse_events.index,
        dtype=float,
    )
    ongoing = end.isna()
    fallback = start if last_day is None else np.maximum(start, float(last_day))
    spans = pd.DataFrame(
        {
            "term": adverse_events["decoded_term"]
            .where(adverse_events["decoded_term"].notna(), adverse_events["term"])
            .astype(object),
            "start_day": start,
            "end_day": end.where(~ongoing, fallback),
            "ongoing": ongoing,
        }
    )
    placed = spans[spans["start_day"].notna()]
    return placed.sort_values("start_day", kind="stable").reset_index(drop=True)[AE_SPAN_COLUMNS]


def lab_values(session: Session, ctx: ViewContext, usubjid: str) -> SubjectLabs:
    """The subject's lab and vital-sign values and AEs (``SubjectLabs``), read through the
    ``Reader``: a subject outside the viewer's sites has neither, and a blinded viewer reads the
    values with the arm pooled."""
    read = Reader(session, ctx)
    records = pd.concat(
        [read(lab_queries.lab_records, domain=d, usubjid=usubjid) for d in lab_queries.LAB_DOMAINS],
        ignore_index=True,
    )
    found = read(subject.subject_record, usubjid=usubjid)
    if found is None:  # outside the viewer's sites, or no such subject: nothing to show
        records = records.iloc[0:0]
    records = labs.with_measurement(labs.with_vital_sign_limits(records))
    aes = (
        found.adverse_events
        if found is not None
        else pd.DataFrame(columns=["term", "decoded_term", "start_day", "start_date", "end_date"])
    )
    last_day = records["study_day"].max() if records["study_day"].notna().any() else None
    spans = ae_spans(aes, found.enrollment_date if found else None, last_day)
    other = 0
    if found is not None and records.empty:
        other = int(found.findings["domain"].isin(lab_queries.LAB_DOMAINS).sum())
    return SubjectLabs(
        usubjid=usubjid,
        records=records,
        measurements=labs.measurements(records),
        adverse_events=spans,
        aes_not_placed=len(aes) - len(spans),
        other_findings=other,
    )


def out_of_range_sentence(series: pd.DataFrame) -> str:
    """How many of a subject's values of one measurement lie outside the normal range, in words:
    "Outside the normal range: 2 of 9 values (2 high, 0 low)." (classes of
    ``metrics.labs.range_class``; values without a class are said to be unclassed)."""
    classes = series["range_class"]
    high = int(classes.eq(labs.HIGH).sum())
    low = int(classes.eq(labs.LOW).sum())
    abnormal = int(classes.eq(labs.ABNORMAL).sum())
    unclassed = int(classes.isna().sum())
    total = len(series)
    if total == unclassed:
        return (
            f"{plural(total, 'value')}, none with a normal range: none can be called low or high."
        )
    parts = [f"{high} high", f"{low} low"] + ([f"{abnormal} abnormal"] if abnormal else [])
    sentence = (
        f"Outside the normal range: {high + low + abnormal} of {plural(total, 'value')} "
        f"({', '.join(parts)})."
    )
    if unclassed:
        sentence += f" Not classed (no range): {plural(unclassed, 'value')}."
    return sentence
