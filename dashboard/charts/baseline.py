"""Baseline charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd


def age_chart(bands: pd.DataFrame) -> alt.Chart:
    """Enrolled subjects per age band, stacked by sex (``metrics.baseline.age_bands`` output)."""
    chart: alt.Chart = (
        alt.Chart(bands)
        .mark_bar()
        .encode(
            x=alt.X("band:N", title="Age (years)", sort="ascending", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("sum(subjects):Q", title="Enrolled subjects", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color("sex:N", title="Sex", legend=alt.Legend(orient="top")),
            tooltip=[
                alt.Tooltip("band:N", title="Age"),
                alt.Tooltip("sex:N", title="Sex"),
                alt.Tooltip("sum(subjects):Q", title="Subjects"),
            ],
        )
        .properties(height=280)
    )
    return chart
