"""The visit schedule: when a planned visit is due for a subject, and how it stands on a date.

A planned visit (TV, or a schedule the study defines) is due on a study day of each enrolled subject:
day 1 is the subject's reference start date (RFSTDTC, the enrollment date here). In the SDTM as in
the ADaM there is no day 0: the day before day 1 is day -1. A visit is on time inside its window,
``window_before`` days before the due date to ``window_after`` days after it; where the schedule
gives no window, the user's setting applies (``DEFAULT_WINDOW_DAYS`` either side).

On a reference date (``as_of``: the data cut-off, as the data hold nothing later) each planned visit
of a subject is one of:

- done: an SV record of the visit on or before ``as_of``, inside the window (or undated);
- done out of window: an SV record dated outside the window;
- not recorded: a visit before day 1 (screening) without an SV record; the subject reached day 1,
  so it took place, but SV does not say when;
- missed: no record, and the subject left the study (completed or discontinued) after the window
  opened;
- not expected: no record, and the subject left the study before the window opened;
- upcoming: no record; the window opens after ``as_of``;
- due: no record; ``as_of`` is inside the window;
- overdue: no record; the window closed before ``as_of`` and the subject is still on study.

``queries.visits`` counts the same statuses in SQL for the per-site table (done counts both kinds of
done; missed and not expected together are "left"); the tests hold the two to each other.
"""

import datetime as dt
from dataclasses import dataclass
from typing import cast

import pandas as pd

from dashboard.metrics.study_days import date_of_study_day, study_day
from dashboard.results.dates import as_date

# ±7 days: a common window for follow-up visits a week or more apart; the Enrollment page lets the
# user change it for visits whose schedule gives no window of its own.
DEFAULT_WINDOW_DAYS = 7

DONE = "done"
DONE_OUT_OF_WINDOW = "done out of window"
NOT_RECORDED = "not recorded"
MISSED = "missed"
NOT_EXPECTED = "not expected"
UPCOMING = "upcoming"
DUE = "due"
OVERDUE = "overdue"
STATUSES = (DONE, DONE_OUT_OF_WINDOW, NOT_RECORDED, MISSED, NOT_EXPECTED, UPCOMING, DUE, OVERDUE)
# The statuses that ask something of the site, most urgent first.
NEEDS_ACTION = (OVERDUE, DUE)

# Words that make a TV start rule (TVSTRL) or a visit name conditional: such a visit happens only
# when something else does (early termination, an AE follow-up, a rash), never for every subject.
_CONDITIONAL_RULE_STARTS = ("IF ", "WHEN ", "UPON ", "IN CASE ", "ONLY IF ")
_CONDITIONAL_VISIT_WORDS = ("UNSCHEDULED", "EARLY TERMINATION", "EARLY DISCONTINUATION")


def is_conditional_visit(visit: str | None, start_rule: str | None) -> bool:
    """Whether a planned visit takes place only under a condition: its TV start rule begins with
    "If" / "When" / "Upon" (the CDISC pilot: "If subject stopped treatment early, ...") or its name
    says unscheduled or early termination."""
    rule = (start_rule or "").strip().upper()
    name = (visit or "").strip().upper()
    return rule.startswith(_CONDITIONAL_RULE_STARTS) or any(
        word in name for word in _CONDITIONAL_VISIT_WORDS
    )


@dataclass(frozen=True)
class VisitWindow:
    due: dt.date
    opens: dt.date
    closes: dt.date


def visit_window(
    *, planned_day: int, day_one: dt.date, window_before: int, window_after: int
) -> VisitWindow:
    """The due date of a planned visit and the first and last day of its window (both on time)."""
    due = date_of_study_day(planned_day, day_one)
    return VisitWindow(
        due=due,
        opens=due - dt.timedelta(days=window_before),
        closes=due + dt.timedelta(days=window_after),
    )


def visit_status(
    *,
    planned_day: int,
    day_one: dt.date,
    as_of: dt.date,
    window_before: int,
    window_after: int,
    held: bool,
    held_on: dt.date | None,
    left_on: dt.date | None,
) -> str:
    """How one planned visit of one subject stands on ``as_of`` (the list in the module docstring).

    ``held``: the subject has an SV record of the visit dated on or before ``as_of`` (or undated);
    ``held_on``: its earliest date. ``left_on``: the date the subject completed or discontinued the
    study (None while on study); a departure after ``as_of`` has not happened yet on ``as_of``.
    """
    window = visit_window(
        planned_day=planned_day,
        day_one=day_one,
        window_before=window_before,
        window_after=window_after,
    )
    if held:
        if held_on is None or window.opens <= held_on <= window.closes:
            return DONE
        return DONE_OUT_OF_WINDOW
    if planned_day < 1 and day_one <= as_of:
        return NOT_RECORDED
    if left_on is not None and left_on <= as_of:
        return NOT_EXPECTED if left_on < window.opens else MISSED
    if as_of < window.opens:
        return UPCOMING
    if as_of <= window.closes:
        return DUE
    return OVERDUE


def _window(value: object, default: int) -> int:
    """A visit's own window in days, else the default (the query gives None or NaN for none)."""
    if value is None or pd.isna(cast(float, value)):
        return default
    return int(cast(float, value))


def derive_visit_status(
    schedule: pd.DataFrame, *, as_of: dt.date, window_days: int = DEFAULT_WINDOW_DAYS
) -> pd.DataFrame:
    """``schedule`` (one row per subject and planned visit, from ``queries.visits``) with the
    visit's dates and status on ``as_of`` added.

    Needs the columns day_one, planned_day, window_before, window_after (None: ``window_days``),
    held, held_on, left_on. Adds: due_date, opens, closes, planned_window (e.g. "±7 d" or "-3/+7 d"),
    held_day (the study day of the visit as held), status.
    """
    due: list[dt.date | None] = []
    opens: list[dt.date | None] = []
    closes: list[dt.date | None] = []
    labels: list[str] = []
    held_days: list[int | None] = []
    statuses: list[str | None] = []
    for row in schedule.to_dict("records"):
        before = _window(row["window_before"], window_days)
        after = _window(row["window_after"], window_days)
        day_one = as_date(row["day_one"])
        held_on = as_date(row["held_on"])
        labels.append(f"±{before} d" if before == after else f"-{before}/+{after} d")
        held_days.append(study_day(held_on, day_one))
        if day_one is None:
            due.append(None)
            opens.append(None)
            closes.append(None)
            statuses.append(DONE if row["held"] else None)  # no day 1: nothing can be due
            continue
        window = visit_window(
            planned_day=int(row["planned_day"]),
            day_one=day_one,
            window_before=before,
            window_after=after,
        )
        due.append(window.due)
        opens.append(window.opens)
        closes.append(window.closes)
        statuses.append(
            visit_status(
                planned_day=int(row["planned_day"]),
                day_one=day_one,
                as_of=as_of,
                window_before=before,
                window_after=after,
                held=bool(row["held"]),
                held_on=held_on,
                left_on=as_date(row["left_on"]),
            )
        )
    return schedule.assign(
        due_date=pd.Series(due, index=schedule.index, dtype=object),
        opens=pd.Series(opens, index=schedule.index, dtype=object),
        closes=pd.Series(closes, index=schedule.index, dtype=object),
        planned_window=pd.Series(labels, index=schedule.index, dtype=object),
        held_day=pd.Series(held_days, index=schedule.index, dtype="Int64"),
        status=pd.Series(statuses, index=schedule.index, dtype=object),
    )


# What a cell of the per-subject grid shows for each status: short, and the urgent ones stand out.
GRID_MARKS = {
    DONE: "✓",
    DONE_OUT_OF_WINDOW: "✓ out of window",
    NOT_RECORDED: "✓ (not in SV)",
    MISSED: "missed",
    NOT_EXPECTED: "–",
    UPCOMING: "",
    DUE: "DUE",
    OVERDUE: "OVERDUE",
}


def visit_label(visit_num: float, visit: str) -> str:
    """A visit's column heading: its number and name, e.g. "3 · BASELINE"."""
    return f"{visit_num:g} · {visit}"


def schedule_grid(derived: pd.DataFrame) -> pd.DataFrame:
    """One row per subject, one column per planned visit (in VISITNUM order) holding its mark
    (``GRID_MARKS``), subjects with the most overdue visits first.

    ``derived``: the output of ``derive_visit_status``, with usubjid, site_id, arm, day_one.
    Columns: usubjid, Site, Arm, Day 1, Overdue, Due, then the visits (no Arm where ``derived``
    has none: a viewer who sees no arms).
    """
    with_arm = "arm" in derived.columns
    fixed = ["usubjid", "Site", *(["Arm"] if with_arm else []), "Day 1", "Overdue", "Due"]
    if derived.empty:
        return pd.DataFrame(columns=fixed)
    frame = derived.assign(
        column=[
            visit_label(n, v) for n, v in zip(derived["visit_num"], derived["visit"], strict=True)
        ],
        mark=derived["status"].map(lambda s: GRID_MARKS.get(s, "") if isinstance(s, str) else ""),
    )
    order = (
        frame[["visit_num", "column"]].drop_duplicates().sort_values("visit_num")["column"].tolist()
    )
    wide = frame.pivot_table(index="usubjid", columns="column", values="mark", aggfunc="first")
    wide = wide.reindex(columns=order).fillna("")
    counts = frame.groupby("usubjid")["status"].agg(
        overdue=lambda s: int((s == OVERDUE).sum()), due=lambda s: int((s == DUE).sum())
    )
    kept = ["site_id", *(["arm"] if with_arm else []), "day_one"]
    subjects = frame.groupby("usubjid", sort=False)[kept].first()
    grid = subjects.join(counts).join(wide).reset_index()
    grid = grid.sort_values(["overdue", "due", "usubjid"], ascending=[False, False, True])
    grid = grid.rename(
        columns={
            "site_id": "Site",
            "arm": "Arm",
            "day_one": "Day 1",
            "overdue": "Overdue",
            "due": "Due",
        }
    )
    return grid[fixed + order].reset_index(drop=True)


def status_counts(derived: pd.DataFrame) -> dict[str, int]:
    """How many planned visits are in each status (every status listed, zeros included)."""
    counts = derived["status"].value_counts() if not derived.empty else pd.Series(dtype=int)
    return {status: int(counts.get(status, 0)) for status in STATUSES}


def scheduled_visits(schedule: pd.DataFrame) -> pd.DataFrame:
    """The planned visits that can be due (a planned day, not conditional), from
    ``queries.visits.planned_schedule``; the others are listed, never counted."""
    if schedule.empty:
        return schedule
    return schedule[schedule["planned_day"].notna() & ~schedule["is_conditional"].astype(bool)]


def schedule_text(schedule: pd.DataFrame) -> str:
    """The schedule in one line: "SCREENING (day -14), DAY 1 (INJECTION) (day 1), ...", arm-specific
    visits with their arm."""
    return ", ".join(
        f"{visit} (day {day:g}{f', arm {arm}' if arm else ''})"
        for visit, day, arm in zip(
            schedule["visit"], schedule["planned_day"], schedule["arm_code"], strict=True
        )
    )


SITE_LABELS = {
    "site_id": "Site",
    "subjects": "Subjects on the schedule",
    "on_study": "Still on study",
    "done": "Visits done",
    "due": "Due now",
    "overdue": "Overdue",
    "subjects_overdue": "Subjects with an overdue visit",
    "upcoming": "Upcoming",
}


def site_visit_table(by_site: pd.DataFrame) -> pd.DataFrame:
    """``queries.visits.visits_by_site`` headed for the page, the sites with most overdue first."""
    ordered = by_site.sort_values(["overdue", "site_id"], ascending=[False, True])
    return ordered[list(SITE_LABELS)].rename(columns=SITE_LABELS).reset_index(drop=True)


def visit_totals(by_site: pd.DataFrame) -> dict[str, int]:
    """The study's totals of ``queries.visits.visits_by_site`` (sites add up: a subject belongs to
    one site)."""
    return {column: int(by_site[column].sum()) for column in SITE_LABELS if column != "site_id"}
