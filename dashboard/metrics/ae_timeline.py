"""Adverse events: the swimmer plot's bars, one per AE on its subject's study-day axis."""

import datetime as dt

import pandas as pd

# -- the timeline --------------------------------------------------------------------------------
from dashboard.metrics.ae_rules import (
    UNKNOWN,
    classify_relationship,
    given_text,
    is_treatment_emergent,
    normalised,
)
from dashboard.metrics.study_days import study_day
from dashboard.results.dates import as_date


def _observed_until(start: dt.date, observed: object, cutoff: dt.date | None) -> dt.date:
    """Where an ongoing AE's bar ends: the subject's last disposition record, else the cut-off."""
    until = as_date(observed) or cutoff
    return until if until is not None and until >= start else start


def day_position(day: int) -> int:
    """Where a study day sits on the timeline's axis: days since day 1 (day 1 -> 0, day 2 -> 1,
    day -1 -> -1). Study days skip 0, positions do not, so a bar from one day's position to the
    position after another's is as long as the days it covers, and no day 0 appears between day
    -1 and day 1. The axis labels turn positions back into study days (``position_label``)."""
    return day - 1 if day > 0 else day


def position_label(position: int) -> int:
    """The study day at an axis position (the inverse of ``day_position``)."""
    return position + 1 if position >= 0 else position


# The timeline starts at most this many days before the first dose: an onset years earlier (a
# year-only AESTDTC such as "2003" is placed on 1 January) would squeeze every other bar.
EARLIEST_TIMELINE_DAY = -90


def timeline_frame(
    events: pd.DataFrame, *, cutoff: dt.date | None, earliest_day: int = EARLIEST_TIMELINE_DAY
) -> tuple[pd.DataFrame, int]:
    """One bar per AE on the study-day axis of its subject (day 1 = first dose, no day 0), and the
    number of events left out (no onset date, or a subject without a first dose).

    ``events``: an AE listing with usubjid, term/decoded_term, severity, serious, relationship,
    start/end dates and dtc, first dose. An AE without an end date is ongoing: its bar runs to the
    subject's last disposition record (``observed_until``), else to the cut-off, never before
    its onset. Bars start no earlier than ``earliest_day``. Columns: usubjid, term, severity,
    serious, related, start_dtc, end_dtc, start_day, end_day (study days), x_start (the axis
    position of start_day, ``day_position``; that of ``earliest_day`` for an earlier onset), x_end
    (the position after end_day's: a bar covers its days whole, so x_end - x_start is the number
    of days it covers), cut (the bar starts at ``earliest_day`` instead of its onset), ongoing,
    treatment_emergent.
    """
    columns = [
        "usubjid",
        "term",
        "severity",
        "serious",
        "related",
        "start_dtc",
        "end_dtc",
        "start_day",
        "end_day",
        "x_start",
        "x_end",
        "cut",
        "ongoing",
        "treatment_emergent",
    ]
    records = []
    left_out = 0
    for row in events.to_dict("records"):
        dose, start, end = (
            as_date(row["first_dose_date"]),
            as_date(row["start_date"]),
            as_date(row["end_date"]),
        )
        if dose is None or start is None:
            left_out += 1
            continue
        ongoing = end is None
        last = end if end is not None else _observed_until(start, row.get("observed_until"), cutoff)
        first_day, last_day = study_day(start, dose) or 0, study_day(last, dose) or 0
        x_start = day_position(max(first_day, earliest_day))
        records.append(
            {
                "usubjid": row["usubjid"],
                "term": given_text(row.get("decoded_term")) or row["term"],
                "severity": (given_text(row["severity"]) or UNKNOWN).title(),
                "serious": "Serious" if normalised(row["serious"]) == "Y" else "Not serious",
                "related": classify_relationship(row["relationship"]),
                "start_dtc": given_text(row["start_dtc"]),
                "end_dtc": given_text(row["end_dtc"]) or "ongoing",
                "start_day": first_day,
                "end_day": last_day,
                "x_start": x_start,
                # A bar covers its days whole: a one-day AE is one day wide.
                "x_end": max(day_position(last_day) + 1, x_start + 1),
                "cut": first_day < earliest_day,
                "ongoing": ongoing,
                "treatment_emergent": is_treatment_emergent(
                    row["start_dtc"],
                    start,
                    row["first_dose_dtc"],
                    dose,
                    given_text(row.get("treatment_emergent_flag")),
                ),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns), left_out
