"""Baseline charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd

from dashboard.charts.axes import QUARTERS, count_axis

VALUE_SELECTION = "level"  # the click selection on the categorical distribution


# Beyond this many columns a histogram stacked by column is a blur: the box plot alone is shown.
MAX_HISTOGRAM_COLUMNS = 8
# A concatenated chart cannot stretch to its container (Vega-Lite): the page draws the box plot and
# the histogram as two charts that each stretch to the page's width; the composed chart below (for
# a fixed-width image) gets this width.
CHART_WIDTH = 640
# Heights: a chart stretched to its container fits its legend and axes in its height (Vega-Lite's
# "fit" autosize), so the histogram, with a legend on top, needs more than its 180-pixel plot.
BOX_HEIGHT, HISTOGRAM_HEIGHT, HISTOGRAM_PLOT_HEIGHT = 260, 300, 180


def box_chart(boxes: pd.DataFrame, *, label: str) -> alt.LayerChart:
    """One variable by Table 1 column: a box plot (whiskers min to max, box Q1 to Q3, median
    tick) drawn from Table 1's own figures (``metrics.table_one.column_summaries``). No width:
    it takes its container's."""
    x = alt.X("column:N", title=None, axis=alt.Axis(labelAngle=0, labelLimit=200))
    tooltip = [
        alt.Tooltip("column:N", title="Column"),
        alt.Tooltip("n:Q", title="Subjects with a value"),
        alt.Tooltip("median:Q", title="Median", format=".1f"),
        alt.Tooltip("q1:Q", title="Q1", format=".1f"),
        alt.Tooltip("q3:Q", title="Q3", format=".1f"),
        alt.Tooltip("minimum:Q", title="Min", format=".1f"),
        alt.Tooltip("maximum:Q", title="Max", format=".1f"),
    ]
    base = alt.Chart(boxes).encode(x=x, tooltip=tooltip)
    whiskers = base.mark_rule().encode(
        y=alt.Y("minimum:Q", title=label, scale=alt.Scale(zero=False)), y2="maximum:Q"
    )
    box = base.mark_bar(size=36, opacity=0.45).encode(
        y="q1:Q", y2="q3:Q", color=alt.Color("column:N", legend=None)
    )
    median = base.mark_tick(size=36, thickness=2, color="black").encode(y="median:Q")
    return alt.LayerChart(layer=[whiskers, box, median]).properties(height=BOX_HEIGHT)


def histogram_chart(boxes: pd.DataFrame, counts: pd.DataFrame, *, label: str) -> alt.Chart | None:
    """Subjects per value stacked by column (``counts``: column, value_num, subjects); None where
    there is nothing to draw or too many columns to tell apart. No width: it takes its
    container's."""
    if counts.empty or boxes["column"].nunique() > MAX_HISTOGRAM_COLUMNS:
        return None
    # Whole-number values (age in years, a score) get whole-number bins, labelled "50", not
    # "50.0"; measured values keep Vega-Lite's bins.
    values = pd.to_numeric(counts["value_num"], errors="coerce").dropna()
    whole = bool(len(values)) and bool((values == values.round()).all())
    bins = alt.Bin(maxbins=30, minstep=1) if whole else alt.Bin(maxbins=30)
    value_axis = count_axis() if whole else alt.Axis()
    chart: alt.Chart = (
        alt.Chart(counts)
        .mark_bar(opacity=0.8)
        .encode(
            x=alt.X("value_num:Q", bin=bins, title=label, axis=value_axis),
            y=alt.Y("sum(subjects):Q", title="Subjects", axis=count_axis()),
            color=alt.Color("column:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("column:N", title="Column"),
                alt.Tooltip("value_num:Q", bin=bins, title=label),
                alt.Tooltip("sum(subjects):Q", title="Subjects"),
            ],
        )
        .properties(height=HISTOGRAM_HEIGHT)
    )
    return chart


def continuous_distribution_chart(
    boxes: pd.DataFrame, counts: pd.DataFrame, *, label: str
) -> alt.LayerChart | alt.VConcatChart:
    """The box plot over the histogram as one fixed-width chart (``CHART_WIDTH``), for an image.

    ``boxes``: ``metrics.table_one.column_summaries``; ``counts``: column, value_num, subjects.
    """
    boxplot = box_chart(boxes, label=label).properties(width=CHART_WIDTH)
    histogram = histogram_chart(boxes, counts, label=label)
    if histogram is None:
        return boxplot
    return alt.vconcat(
        boxplot, histogram.properties(width=CHART_WIDTH, height=HISTOGRAM_PLOT_HEIGHT)
    )


def categorical_distribution_chart(levels: pd.DataFrame, *, label: str) -> alt.Chart:
    """One categorical variable as 100% stacked bars per Table 1 column; a click on a segment
    selects its level and column (a point selection named ``VALUE_SELECTION``).

    ``levels``: ``metrics.table_one.level_counts`` (column, value, subjects)."""
    frame = levels.copy()
    frame["share"] = frame["subjects"] / frame.groupby("column")["subjects"].transform("sum")
    pick = alt.selection_point(name=VALUE_SELECTION, fields=["column", "value"], on="click")
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar(cursor="pointer")
        .encode(
            y=alt.Y("column:N", title=None, axis=alt.Axis(labelLimit=240)),
            x=alt.X(
                "share:Q",
                title=f"{label}: share of the column",
                axis=alt.Axis(format="%", values=QUARTERS),  # every bar ends at 100%
                stack="normalize",
            ),
            color=alt.Color("value:N", title=label, legend=alt.Legend(orient="top")),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
            tooltip=[
                alt.Tooltip("column:N", title="Column"),
                alt.Tooltip("value:N", title=label),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("share:Q", title="Share", format=".1%"),
            ],
        )
        .add_params(pick)
        .properties(height=alt.Step(34))
    )
    return chart
