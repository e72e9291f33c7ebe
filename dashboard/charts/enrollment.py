"""Enrollment charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import datetime as dt

import altair as alt
import pandas as pd

from dashboard.charts.axes import count_axis
from dashboard.charts.time_axis import date_axis

SERIES_COLOURS = {"Enrolled": "#1f77b4", "Screened": "#9ecae1", "Planned": "#7f7f7f"}


def accrual_chart(
    accrual: pd.DataFrame,
    *,
    target: int | None,
    cutoff: dt.date | None,
    planned_start: dt.date | None = None,
    planned_end: dt.date | None = None,
) -> alt.LayerChart:
    """Cumulative screened and enrolled per period, with the target, the planned recruitment line
    (linear from planned start to planned end) and the data cut-off.

    ``accrual``: the output of ``metrics.enrollment.cumulative_accrual``.
    """
    long = accrual.melt(
        id_vars="period_start",
        value_vars=["cumulative_enrolled", "cumulative_screened"],
        var_name="series",
        value_name="subjects",
    )
    long["series"] = long["series"].map(
        {"cumulative_enrolled": "Enrolled", "cumulative_screened": "Screened"}
    )
    plan = (planned_start, planned_end) if target and planned_start and planned_end else None
    planned_drawn = plan is not None
    # The legend lists the series drawn only: no "Planned" entry without its line.
    drawn = [s for s in SERIES_COLOURS if s != "Planned" or planned_drawn]
    colour = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(domain=drawn, range=[SERIES_COLOURS[s] for s in drawn]),
        legend=alt.Legend(orient="top"),
    )
    tooltip = [
        alt.Tooltip("period_start:T", title="Period from"),
        alt.Tooltip("series:N", title="Series"),
        alt.Tooltip("subjects:Q", title="Subjects"),
    ]
    dates = [*accrual["period_start"], *[d for d in (cutoff,) if d]]
    if plan is not None:
        dates += list(plan)
    x = alt.X("period_start:T", title=None, axis=date_axis(dates))
    y = alt.Y("subjects:Q", title="Subjects (cumulative)", axis=count_axis())
    # Counts move in steps: a subject is enrolled on a day, not gradually.
    lines = (
        alt.Chart(long)
        .mark_line(interpolate="step-after")
        .encode(x=x, y=y, color=colour, tooltip=tooltip)
    )
    layers: list[alt.Chart] = [lines]
    if plan is not None:
        planned = pd.DataFrame(
            {
                "period_start": pd.to_datetime(list(plan)),
                "series": "Planned",
                "subjects": [0, target],
            }
        )
        layers.append(
            alt.Chart(planned)
            .mark_line(strokeDash=[6, 4])
            .encode(x=x, y=y, color=colour, tooltip=tooltip)
        )
    if target:
        layers += _target_layers(target)
    if cutoff:
        cut_frame = pd.DataFrame({"date": pd.to_datetime([cutoff]), "label": ["Data cut-off"]})
        # Every layer on x names the one axis, so none falls back to Vega-Lite's year-less labels.
        cut_x = alt.X("date:T", axis=date_axis(dates))
        layers.append(
            alt.Chart(cut_frame).mark_rule(color="#555", strokeDash=[2, 2]).encode(x=cut_x)
        )
        layers.append(
            alt.Chart(cut_frame)
            .mark_text(align="right", dx=-4, y=8, color="#555")
            .encode(x=cut_x, text="label:N")
        )
    return alt.LayerChart(layer=layers).properties(height=340)


def _target_layers(target: int) -> list[alt.Chart]:
    """The target as a dashed red rule, labelled at its left end."""
    frame = pd.DataFrame({"subjects": [target], "label": [f"Target {target}"]})
    return [
        alt.Chart(frame).mark_rule(color="#d62728", strokeDash=[4, 4]).encode(y="subjects:Q"),
        alt.Chart(frame)
        .mark_text(align="left", dx=4, dy=-6, color="#d62728")
        .encode(y="subjects:Q", x=alt.value(0), text="label:N"),
    ]


FUNNEL_COLOURS = {
    "Screened": "#9ecae1",
    "Screen failed": "#ff7f0e",
    "In screening": "#c7c7c7",
    "Eligible": "#6baed6",
    "Enrolled": "#1f77b4",
    "Treated": "#08519c",
    "Completed": "#2ca02c",
    "Discontinued": "#d62728",
    "Ongoing": "#7f7f7f",
}


def funnel_chart(steps: pd.DataFrame) -> alt.LayerChart:
    """The screening funnel as horizontal bars in step order, each labelled with its count and its
    share of the step it comes from; discontinuation reasons in the tooltip.

    ``steps``: the output of ``metrics.enrollment.funnel_steps``.
    """
    frame = steps.copy()
    frame["label"] = [
        f"{n}" + (f" ({share:.0%} of {previous.lower()})" if previous and share == share else "")
        for n, share, previous in zip(
            frame["subjects"], frame["of_previous"], frame["previous"], strict=True
        )
    ]
    order = list(frame["step"])
    y = alt.Y("step:N", sort=order, title=None)
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=y,
            x=alt.X("subjects:Q", title="Subjects", axis=count_axis()),
            color=alt.Color(
                "step:N",
                scale=alt.Scale(domain=list(FUNNEL_COLOURS), range=list(FUNNEL_COLOURS.values())),
                legend=None,
            ),
            tooltip=[
                alt.Tooltip("step:N", title="Step"),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("of_previous:Q", title="Of the step before", format=".1%"),
                alt.Tooltip("detail:N", title="Reasons"),
            ],
        )
    )
    labels = (
        alt.Chart(frame)
        .mark_text(align="left", dx=4)
        .encode(y=y, x=alt.X("subjects:Q"), text="label:N")
    )
    return alt.LayerChart(layer=[bars, labels]).properties(height=alt.Step(28))


FORECAST_COLOUR = "#1f77b4"


def forecast_bands_chart(
    accrual: pd.DataFrame, bands: pd.DataFrame, *, target: int | None, cutoff: dt.date
) -> alt.LayerChart:
    """Enrolled so far (a step line) and the predicted enrollment after the cut-off: the 80% and
    50% bands and the median, with the target.

    ``accrual``: ``metrics.enrollment.cumulative_accrual``; ``bands``: ``SiteForecast.bands``
    (date, q10, q25, q50, q75, q90)."""
    observed = accrual[["period_start", "cumulative_enrolled"]].rename(
        columns={"period_start": "date", "cumulative_enrolled": "subjects"}
    )
    if not bands.empty:  # the line runs on to the cut-off, where the bands start
        start = bands.iloc[0]
        observed = pd.concat(
            [
                observed,
                pd.DataFrame({"date": [pd.Timestamp(start["date"])], "subjects": [start["q50"]]}),
            ],
            ignore_index=True,
        )
    predicted = bands.assign(date=pd.to_datetime(bands["date"]))
    dates = [*observed["date"], *predicted["date"], cutoff]
    x = alt.X("date:T", title=None, axis=date_axis(dates))
    y_title = "Subjects enrolled (cumulative)"
    tooltip = [
        alt.Tooltip("date:T", title="Date"),
        alt.Tooltip("q50:Q", title="Median", format=".0f"),
        alt.Tooltip("q25:Q", title="50% from", format=".0f"),
        alt.Tooltip("q75:Q", title="50% to", format=".0f"),
        alt.Tooltip("q10:Q", title="80% from", format=".0f"),
        alt.Tooltip("q90:Q", title="80% to", format=".0f"),
    ]
    base = alt.Chart(predicted).encode(x=x)
    layers: list[alt.Chart] = [
        base.mark_area(opacity=0.18, color=FORECAST_COLOUR).encode(
            y=alt.Y("q10:Q", title=y_title, axis=count_axis()), y2="q90:Q"
        ),
        base.mark_area(opacity=0.3, color=FORECAST_COLOUR).encode(y="q25:Q", y2="q75:Q"),
        base.mark_line(color=FORECAST_COLOUR, strokeDash=[6, 3]).encode(y="q50:Q", tooltip=tooltip),
        alt.Chart(observed)
        .mark_line(interpolate="step-after", color=FORECAST_COLOUR)
        .encode(
            x=x,
            y="subjects:Q",
            tooltip=[
                alt.Tooltip("date:T", title="Period from"),
                alt.Tooltip("subjects:Q", title="Enrolled"),
            ],
        ),
    ]
    if target:
        layers += _target_layers(target)
    return alt.LayerChart(layer=layers).properties(height=300)
