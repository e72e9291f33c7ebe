"""Screen-failure charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd

from dashboard.charts.axes import count_axis
from dashboard.charts.labels import LABEL_LIMIT
from dashboard.charts.time_axis import date_axis

CATEGORY_COLOURS = {"INCLUSION": "#1f77b4", "EXCLUSION": "#ff7f0e"}
CATEGORY_LABELS = {"INCLUSION": "Inclusion not met", "EXCLUSION": "Exclusion met"}


SELECTION = "criterion"  # the name of the click selection: Streamlit reports it under this key


def criteria_chart(
    failures: pd.DataFrame, *, screened: int, picked: tuple[str, str] | None = None
) -> alt.Chart:
    """One bar per criterion (every criterion, zeros included), sorted by count (ties in protocol
    order), coloured by category.

    ``failures``: the output of ``queries.screen_failures.failures_by_criterion``. Bar length is
    distinct screen-failed subjects; the tooltip gives the protocol wording and the share of all
    screened subjects. Clicking a bar selects its criterion (a point selection named
    ``SELECTION`` over code and protocol version), which the page turns into the drilldown.

    ``picked`` (code, protocol version): the drilldown's criterion, however it was picked (a bar
    or a row of the page's table): its bar is drawn full, the others faded; a bar just clicked is
    drawn full at once, before the page's rerun says what is picked.
    """
    pick = alt.selection_point(name=SELECTION, fields=["code", "protocol_version"], on="click")
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
    frame["picked"] = (
        True
        if picked is None
        else (frame["code"] == picked[0]) & (frame["protocol_version"] == picked[1])
    )
    # Most failed first; ties keep the protocol order (an explicit order: Vega's own sort by x
    # leaves ties to chance).
    order = frame.sort_values("subjects", ascending=False, kind="stable")["label"].tolist()
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar(cursor="pointer")
        .encode(
            y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            # Full: the bar clicked (at once) or the criterion picked (the page's rerun).
            opacity=alt.OpacityValue(
                value=0.45,
                condition={
                    "test": {
                        "or": [
                            {"param": SELECTION, "empty": False},
                            {"field": "picked", "equal": True},
                        ]
                    },
                    "value": 1.0,
                },
            ),
            x=alt.X("subjects:Q", title="Screen-failed subjects", axis=count_axis()),
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
        .add_params(pick)
        .properties(height=alt.Step(24))
    )
    return chart


def monthly_rate_chart(monthly: pd.DataFrame) -> alt.LayerChart:
    """Screened subjects per month (bars) and the screen-failure rate (line, right axis).

    ``monthly``: the output of ``metrics.screen_failures.monthly_failure_rate``.
    """
    base = alt.Chart(monthly).encode(
        x=alt.X("month:T", title=None, timeUnit="yearmonth", axis=date_axis(monthly["month"]))
    )
    tooltip = [
        alt.Tooltip("month:T", title="Month", timeUnit="yearmonth"),
        alt.Tooltip("screened:Q", title="Screened"),
        alt.Tooltip("screen_failures:Q", title="Screen failures"),
        alt.Tooltip("screen_failure_rate:Q", title="Screen-failure rate", format=".0%"),
    ]
    bars = base.mark_bar(color="#c6dbef").encode(
        y=alt.Y("screened:Q", title="Screened", axis=count_axis()), tooltip=tooltip
    )
    line = base.mark_line(color="#ff7f0e", point=True).encode(
        y=alt.Y(
            "screen_failure_rate:Q",
            title="Screen-failure rate",
            axis=alt.Axis(format="%", orient="right"),
            scale=alt.Scale(domain=[0, 1]),
        ),
        tooltip=tooltip,
    )
    return alt.layer(bars, line).resolve_scale(y="independent").properties(height=260)  # type: ignore[no-any-return]


def site_criterion_heatmap(grid: pd.DataFrame) -> alt.LayerChart:
    """Sites x criteria: screen-failed subjects in each cell (zeros shown), the share of the
    site's screened subjects in the tooltip, so a site that fails one criterion far more often than
    the others stands out.

    ``grid``: the output of ``metrics.screen_failures.site_criterion_grid``.
    """
    base = alt.Chart(grid).encode(
        x=alt.X("criterion:N", title=None, sort=None, axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("site_id:N", title="Site", sort=None),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "share_of_screened:Q",
            title="Of site's screened",
            scale=alt.Scale(scheme="oranges"),
            legend=alt.Legend(format=".0%"),
        ),
        tooltip=[
            alt.Tooltip("site_id:N", title="Site"),
            alt.Tooltip("criterion:N", title="Criterion"),
            alt.Tooltip("subjects:Q", title="Screen-failed subjects"),
            alt.Tooltip("screened:Q", title="Site screened"),
            alt.Tooltip("share_of_screened:Q", title="Of site's screened", format=".1%"),
        ],
    )
    labels = base.mark_text(fontSize=11).encode(text="subjects:Q")
    return alt.LayerChart(layer=[cells, labels]).properties(height=alt.Step(22))
