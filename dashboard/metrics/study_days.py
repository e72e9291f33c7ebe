"""Study days (SDTM): day 1 is the reference date, the day before it is day -1, and there is no
day 0. One rule for the whole app: the AE listing and timeline, the visit schedule and the Subject
page count with it."""

import datetime as dt


def study_day(day: dt.date | None, reference: dt.date | None) -> int | None:
    """The study day of ``day`` counted from ``reference`` (day 1). In the SDTM there is no day 0:
    the day before the reference is day -1."""
    if day is None or reference is None:
        return None
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def date_of_study_day(day: int, day_one: dt.date) -> dt.date:
    """The calendar date of study day ``day`` for a subject whose day 1 is ``day_one``. There is no
    day 0: day -1 is the day before day 1. A day 0 given anyway (some schedules count the dosing
    day as 0) is read as day 1."""
    return day_one + dt.timedelta(days=day - 1 if day > 0 else day)
