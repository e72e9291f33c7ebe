"""Baseline charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd

VALUE_SELECTION = "level"  # the click selection on the categorical distribution


def continuous_distribution_chart(values: pd.DataFrame, *, key: str, label: str) -> alt.LayerChart:
    """One variable's values by Table 1 column: a box plot with every subject as a point over it.

    ``values``: ``queries.baseline.baseline_values`` (columns usubjid, column, ``key``).
    """
    frame = values[["usubjid", "column", key]].rename(columns={key: "value"})
    frame = frame[pd.to_numeric(frame["value"], errors="coerce").notna()].assign(
        value=lambda f: pd.to_numeric(f["value"])
    )
    x = alt.X("column:N", title=None, axis=alt.Axis(labelAngle=0, labelLimit=200))
    y = alt.Y("value:Q", title=label, scale=alt.Scale(zero=False))
    box = alt.Chart(frame).mark_boxplot(extent="min-max", opacity=0.35, size=40).encode(x=x, y=y)
    points = (
        alt.Chart(frame)
        .mark_circle(size=28, opacity=0.7)
        .encode(
            x=x,
            # Jitter over the middle third of the column's band, so the points stay by their box.
            xOffset=alt.XOffset("jitter:Q", scale=alt.Scale(domain=[-30, 30])),
            y=y,
            color=alt.Color("column:N", legend=None),
            tooltip=[
                alt.Tooltip("usubjid:N", title="Subject"),
                alt.Tooltip("value:Q", title=label),
            ],
        )
        .transform_calculate(jitter="(random() - 0.5) * 20")
    )
    return alt.LayerChart(layer=[box, points]).properties(height=320)


def categorical_distribution_chart(values: pd.DataFrame, *, key: str, label: str) -> alt.Chart:
    """One categorical variable as 100% stacked bars per Table 1 column; a click on a segment
    selects its level and column (a point selection named ``VALUE_SELECTION``)."""
    frame = (
        values.assign(value=values[key].fillna("Missing").astype(str))
        .groupby(["column", "value"], as_index=False)
        .agg(subjects=("usubjid", "count"))
    )
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
                axis=alt.Axis(format="%"),
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
