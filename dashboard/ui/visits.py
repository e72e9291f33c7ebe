"""The visit schedule's shared settings: the window (a setting the Enrollment and Subject pages
share, kept in session state so it survives moving between pages) and the reference date."""

import datetime as dt

import streamlit as st

from dashboard.metrics.visits import DEFAULT_WINDOW_DAYS
from dashboard.ui.shell import PageContext

WINDOW_KEY = "visit_window_days"  # the kept value
_WIDGET_KEY = "visit_window_days_input"  # the widget's own (dropped when a page is left)


def kept_window_days() -> int:
    """The window set last (on any page), else the default: for figures drawn above the widget."""
    return int(st.session_state.get(WINDOW_KEY, DEFAULT_WINDOW_DAYS))


def window_days_setting() -> int:
    """The "Visit window" number input: days either side of a planned visit's day that still count
    as on time, for visits whose schedule gives no window of its own."""

    def keep() -> None:
        st.session_state[WINDOW_KEY] = int(st.session_state[_WIDGET_KEY])

    st.session_state[_WIDGET_KEY] = kept_window_days()
    value = st.number_input(
        "Visit window (± days)",
        min_value=0,
        max_value=90,
        step=1,
        key=_WIDGET_KEY,
        on_change=keep,
        help="A visit held this many days before or after its planned day is on time; after the "
        f"window closes an unheld visit is overdue. Default ±{DEFAULT_WINDOW_DAYS} days; visits "
        "whose schedule gives their own window keep it.",
    )
    return int(value)


def visits_as_of(context: PageContext) -> tuple[dt.date, str]:
    """The date visits are judged on and how the page names it: the latest data cut-off (the data
    hold no visit after it, so a later date would call every visit since overdue), else today."""
    latest = context.latest_cut
    if latest is not None and latest.cutoff_date is not None:
        return latest.cutoff_date, f"{latest.cutoff_date:%d %b %Y} (the data cut-off)"
    today = dt.date.today()
    return today, f"{today:%d %b %Y} (today: the data cut has no cut-off date)"
