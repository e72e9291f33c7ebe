"""Screen-failure charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd

CATEGORY_COLOURS = {"INCLUSION": "#1f77b4", "EXCLUSION": "#ff7f0e"}
CATEGORY_LABELS = {"INCLUSION": "Inclusion not met", "EXCLUSION": "Exclusion met"}


def criteria_chart(failures: pd.DataFrame, *, screened: int) -> alt.Chart:
    """One bar per criterion (every criterion, zeros included), sorted by count, coloured by category.

    ``failures``: the output of ``queries.screen_failures.failures_by_criterion``. Bar length is
    distinct screen-failed subjects; the tooltip gives the protocol wording and the share of all
    screened subjects.
    """
    frame = failures.copy()
    frame["label"] = (
        frame["code"]
        + frame["protocol_version"].map(lambda v: f" ({v})" if v else "")
        + ": "
        + frame["text"].map(lambda t: t if len(t) <= 60 else t[:59].rstrip() + "…")
    )
    frame["kind"] = frame["category"].map(CATEGORY_LABELS).fillna(frame["category"])
    frame["share_of_screened"] = frame["subjects"] / screened if screened else 0.0
    frame["wording"] = frame["text"]
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelLimit=420)),
            x=alt.X("subjects:Q", title="Screen-failed subjects", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(
                    domain=list(CATEGORY_LABELS.values()), range=list(CATEGORY_COLOURS.values())
                ),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("code:N", title="Criterion"),
                alt.Tooltip("wording:N", title="Protocol wording"),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("share_of_screened:Q", title="Of screened", format=".1%"),
            ],
        )
        .properties(height=alt.Step(24))
    )
    return chart
