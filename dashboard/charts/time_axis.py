"""The date axis the charts draw over calendar time (accrual, monthly screen failures): every
label carries its year.

Vega-Lite's default labels name the year only at a year's first tick ("October, December,
February"): a reader of a printed pack, or of a chart spanning a year end, cannot tell which year a
month is. Ticks fall on the first of a month (or of a year, over long spans), labelled "Mar 2025"
or "2025", at most about ``MOST_TICKS`` of them.
"""

import datetime as dt
import math

import altair as alt
import pandas as pd

MONTH_FORMAT = "%b %Y"
YEAR_FORMAT = "%Y"
MOST_TICKS = 8
_MONTH_STEPS = (1, 2, 3, 6)


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month + 1


def date_axis(dates: pd.Series | list[dt.date | pd.Timestamp], **kwargs: object) -> alt.Axis:
    """An axis for ``dates`` (what the chart draws on x) with a year on every label: monthly
    ticks every 1, 2, 3 or 6 months ("Mar 2025"), yearly ticks ("2025") beyond four years.
    ``kwargs`` go to ``alt.Axis`` as they are."""
    stamps = pd.to_datetime(pd.Series(list(dates)), errors="coerce").dropna()
    if stamps.empty:
        return alt.Axis(format=MONTH_FORMAT, **kwargs)  # type: ignore[arg-type]
    months = _months_between(stamps.min().date(), stamps.max().date())
    step = next((s for s in _MONTH_STEPS if months / s <= MOST_TICKS), None)
    if step is not None:
        tick_count: dict[str, object] = {"interval": "month", "step": step}
        label_format = MONTH_FORMAT
    else:
        tick_count = {"interval": "year", "step": max(1, math.ceil(months / 12 / MOST_TICKS))}
        label_format = YEAR_FORMAT
    return alt.Axis(format=label_format, tickCount=tick_count, **kwargs)  # type: ignore[arg-type]
