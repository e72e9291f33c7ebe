"""The Subject page's lab section: the values chart (``charts.labs.subject_values``) drawn so that
it fits the page.

A single panel stretches to the column. The values with the AE panel beneath do not: for a
vertical concatenation Streamlit gives every panel the column's width as its *plot* width, and
the axis labels on the left (the AE terms) then spill past the right edge, cutting the last days
off. Such a chart is drawn at its own width instead: each panel's plot as wide as the column
leaves beside the longest AE term.
"""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard.charts.labels import LABEL_LIMIT
from dashboard.charts.labs import subject_values

# The narrowest main column the app is laid out for (a 1024 px window with the sidebar open).
COLUMN_WIDTH = 640
# Room for the values' own y axis (title and labels), and roughly a label character's width.
VALUE_AXIS_WIDTH = 70
CHARACTER_WIDTH = 7
MIN_PLOT_WIDTH = 320
# The height of an AE row, px.
AE_ROW = 20


def plot_width(terms: pd.Series) -> int:
    """The plot width of each panel: the column less the widest label on the left (an AE term,
    cut by the axis at ``LABEL_LIMIT`` px, or the values' axis), never under ``MIN_PLOT_WIDTH``."""
    longest = int(terms.astype(str).str.len().max()) if len(terms) else 0
    left = max(VALUE_AXIS_WIDTH, min(LABEL_LIMIT, longest * CHARACTER_WIDTH) + 16)
    return max(MIN_PLOT_WIDTH, COLUMN_WIDTH - left)


def draw_values(series: pd.DataFrame, aes: pd.DataFrame) -> None:
    """The subject's values of one measurement, with its AEs beneath where it has any."""
    chart = subject_values(series, aes)
    if not isinstance(chart, alt.VConcatChart):
        st.altair_chart(chart, width="stretch")
        return
    width = plot_width(aes["term"])
    fitted = chart.copy()  # the chart's own settings (the shared x scale) kept
    values, bars = chart.vconcat
    # Rows a little taller than the chart's: at its 16 px, under the app's font, Vega drops every
    # other AE term as overlapping.
    fitted.vconcat = [
        values.properties(width=width),
        bars.properties(width=width, height=alt.Step(AE_ROW)),
    ]
    st.altair_chart(fitted, width="content")
