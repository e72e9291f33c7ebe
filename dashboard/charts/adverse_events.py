"""Adverse-event charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd


def soc_chart(by_soc: pd.DataFrame, *, denominator: int) -> alt.Chart:
    """Subjects with at least one AE per system organ class, most first; events in the tooltip.

    ``by_soc``: the output of ``queries.adverse_events.incidence_by_soc``; ``denominator``: the
    subjects the incidence is over (enrolled).
    """
    frame = by_soc.copy()
    frame["incidence"] = frame["subjects"] / denominator if denominator else 0.0
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar(color="#9467bd")
        .encode(
            y=alt.Y("body_system:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X(
                "subjects:Q", title="Subjects with at least one event", axis=alt.Axis(tickMinStep=1)
            ),
            tooltip=[
                alt.Tooltip("body_system:N", title="System organ class"),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("incidence:Q", title="Incidence", format=".1%"),
                alt.Tooltip("events:Q", title="Events"),
            ],
        )
        .properties(height=alt.Step(28))
    )
    return chart
