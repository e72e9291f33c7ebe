"""The Subject page's timeline: a pure function DataFrame -> altair chart (no streamlit)."""

import datetime as dt
from typing import Literal

import altair as alt
import pandas as pd

from dashboard.charts.colours import LEVEL_COLOURS, UNKNOWN_COLOUR
from dashboard.charts.study_day_axis import DAY_LABEL_EXPR, study_day_ticks
from dashboard.results.subject import (
    CATEGORIES,
    DOSE,
    MILESTONE,
    SEVERITY_CATEGORIES,
    VISIT,
    VISIT_OVERDUE,
    VISIT_WINDOW,
)

# The record's own kinds in greys and blues; AE severities in the AE page's colours.
CATEGORY_COLOURS = {
    MILESTONE: "#444444",
    DOSE: "#2b8cbe",
    VISIT: "#1a9850",
    VISIT_WINDOW: "#d9d9d9",
    VISIT_OVERDUE: "#fb6a4a",
    **dict(
        zip(SEVERITY_CATEGORIES, [*LEVEL_COLOURS["severity"].values(), UNKNOWN_COLOUR], strict=True)
    ),
}

# Shapes of the milestones in the order the record lists them (screening first).
MILESTONE_SHAPES = (
    "diamond",
    "circle",
    "square",
    "triangle-down",
    "cross",
    "triangle-right",
    "triangle-left",
    "wedge",
)

Axis = Literal["day", "date"]


def subject_timeline_chart(
    events: pd.DataFrame, *, day_one: dt.date | None, axis: Axis = "day"
) -> alt.LayerChart:
    """One subject's timeline: a lane per kind of record and per AE; milestones and visits as
    marks, doses, AEs (coloured by severity) and planned visit windows as bars; serious AEs
    marked with a red triangle at onset; day 1 as a dashed rule.

    ``events``: the output of ``metrics.subject.timeline_events``. ``axis``: "day" puts study days
    on the x axis (positions are days from day 1, labelled as study days, so the axis has no day
    0); "date" puts calendar dates (the only choice for a subject without ``day_one``).
    """
    if day_one is None:
        axis = "date"
    data = events.assign(
        start_date=pd.to_datetime(events["start_date"]),
        # A bar covers its last day whole.
        end_after=pd.to_datetime(events["end_date"]) + pd.Timedelta(days=1),
        seriousness=events["serious"].map({True: "Serious", False: "Not serious"}),
    )
    lanes = data.sort_values(["lane_order", "start_date"])["lane"].drop_duplicates().tolist()
    y = alt.Y("lane:N", sort=lanes, title=None, axis=alt.Axis(labelLimit=320))
    # The legend lists what this subject's record holds, in the fixed order and colours.
    # (Milestones have a legend of their own, by shape, below.)
    present = [c for c in CATEGORIES if c in set(data["category"]) and c != MILESTONE]
    colour = alt.Color(
        "category:N",
        title=None,
        scale=alt.Scale(domain=present, range=[CATEGORY_COLOURS[c] for c in present]),
        legend=alt.Legend(orient="top", columns=6) if present else None,
    )
    if axis == "day":
        ticks = study_day_ticks(int(data["x_start"].min()), int(data["x_end"].max()))
        x = alt.X(
            "x_start:Q",
            title="Study day (day 1 = RFSTDTC; no day 0)",
            # Positions count days from day 1; the labels are study days: 0 -> 1, -1 -> -1.
            axis=alt.Axis(values=ticks, labelExpr=DAY_LABEL_EXPR),
            scale=alt.Scale(padding=12),
        )
        x2 = alt.X2("x_end:Q")
        day_one_rule = pd.DataFrame({"x": [0]})
        rule_x = alt.X("x:Q")
    else:
        x = alt.X(
            "start_date:T",
            title="Date",
            axis=alt.Axis(format="%d %b %Y", tickMinStep=86_400_000),  # no ticks inside a day
            scale=alt.Scale(padding=12),
        )
        x2 = alt.X2("end_after:T")
        day_one_rule = pd.DataFrame({"x": [pd.Timestamp(day_one)] if day_one else []})
        rule_x = alt.X("x:T")
    tooltip = [
        alt.Tooltip("detail:N", title="What"),
        alt.Tooltip("start_date:T", title="From", format="%d %b %Y"),
        alt.Tooltip("end_date:T", title="To", format="%d %b %Y"),
        alt.Tooltip("start_day:Q", title="Study day"),
        alt.Tooltip("end_day:Q", title="to study day"),
    ]
    base = alt.Chart(data)
    bars = (
        base.transform_filter(alt.FieldOneOfPredicate(field="kind", oneOf=["ae", "dose", "window"]))
        .mark_bar(height=12, cornerRadius=2)
        .encode(y=y, x=x, x2=x2, color=colour, tooltip=tooltip)
    )
    marks = (
        base.transform_filter(alt.datum.kind == "visit")
        .mark_point(filled=True, size=80, shape="diamond")
        .encode(y=y, x=x, color=colour, tooltip=tooltip)
    )
    # Milestones (screening, consent, day 1, each disposition) told apart by shape, named in a
    # legend of their own: two bare diamonds say nothing about which is the screen failure.
    # Milestones on the same day are one mark, named together ("Screening · Informed consent").
    on_a_day = data[data["kind"] == "milestone"]
    on_a_day = on_a_day.groupby("start_date", sort=False, as_index=False).agg(
        {
            **{c: "first" for c in on_a_day.columns if c not in ("start_date", "label", "detail")},
            "label": " · ".join,
            "detail": "; ".join,
        }
    )
    milestones = on_a_day["label"].drop_duplicates().tolist()
    milestone_marks = (
        alt.Chart(on_a_day)
        .mark_point(filled=True, size=90, color=CATEGORY_COLOURS[MILESTONE])
        .encode(
            y=y,
            x=x,
            shape=alt.Shape(
                "label:N",
                title=None,
                scale=alt.Scale(
                    domain=milestones,
                    range=[
                        MILESTONE_SHAPES[i % len(MILESTONE_SHAPES)] for i in range(len(milestones))
                    ],
                ),
                legend=alt.Legend(orient="top", columns=4, labelLimit=260),
            ),
            tooltip=tooltip,
        )
    )
    serious = (
        base.transform_filter(alt.datum.serious)
        .mark_point(filled=True, size=140, shape="triangle-up", color="#cb181d")
        .encode(y=y, x=x, tooltip=tooltip)
    )
    layers: list[alt.Chart] = [bars, marks, milestone_marks, serious]
    if not day_one_rule.empty:
        layers.insert(
            0,
            alt.Chart(day_one_rule).mark_rule(color="#444", strokeDash=[4, 3]).encode(x=rule_x),
        )
    return alt.LayerChart(layer=layers).properties(height=alt.Step(24))
