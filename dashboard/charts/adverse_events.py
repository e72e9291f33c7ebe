"""Adverse-event charts: pure functions DataFrame -> altair.Chart (no streamlit)."""

import altair as alt
import pandas as pd

from dashboard.charts.axes import QUARTERS, share_axis_scale
from dashboard.charts.colours import LEVEL_COLOURS, NO_AE_COLOUR, UNKNOWN_COLOUR
from dashboard.charts.labels import LABEL_LIMIT
from dashboard.charts.study_day_axis import DAY_LABEL_EXPR, study_day_ticks

# The names of the click selections: Streamlit reports a click under the selection's name.
SOC_SELECTION = "ae_soc"
LEVEL_SELECTION = "ae_level"


def soc_incidence_chart(frame: pd.DataFrame) -> alt.Chart:
    """A dot per arm and system organ class: the share of the arm's subjects with an AE in that
    SOC (the AE Explorer's view), SOCs in the incidence table's order. Clicking a dot selects its
    SOC and arm (a point selection named ``SOC_SELECTION``).

    ``frame``: the output of ``metrics.ae_tables.soc_incidence``.
    """
    pick = alt.selection_point(name=SOC_SELECTION, fields=["soc", "arm"], on="click")
    order = frame.sort_values("rank")["soc"].drop_duplicates().tolist()
    # The domain ends on a round tick beyond the largest share, so no dot lies past the axis.
    share_axis, share_scale = share_axis_scale(frame["share"].dropna().tolist())
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_circle(size=110, cursor="pointer")
        .encode(
            y=alt.Y("soc:N", sort=order, title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=alt.X(
                "share:Q",
                title="Subjects with an AE in the SOC (% of arm)",
                axis=share_axis,
                scale=share_scale,
            ),
            color=alt.Color(
                "arm:N",
                title="Arm",
                scale=alt.Scale(scheme="tableau10"),
                # Two arms a line: three or more on one line ran past the chart's edge.
                legend=alt.Legend(orient="top", columns=2, labelLimit=360),
            ),
            opacity=alt.condition(pick, alt.value(0.95), alt.value(0.35)),
            tooltip=[
                alt.Tooltip("soc:N", title="System organ class"),
                alt.Tooltip("arm:N", title="Arm"),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("share:Q", title="Of arm", format=".1%"),
                alt.Tooltip("events:Q", title="Events"),
            ],
        )
        .add_params(pick)
        .properties(height=alt.Step(24))
    )
    return chart


def worst_level_chart(frame: pd.DataFrame, *, dimension: str) -> alt.Chart:
    """Stacked bars, one per arm (and the total): the arm's subjects by their highest level in
    ``dimension``, as shares of the arm's N, so every bar ends at 100%. Clicking a segment selects
    its arm and level (a point selection named ``LEVEL_SELECTION``).

    ``frame``: the output of ``metrics.ae_tables.worst_level_table``.
    """
    pick = alt.selection_point(name=LEVEL_SELECTION, fields=["arm_label", "level"], on="click")
    levels = frame.sort_values("order")["level"].drop_duplicates().tolist()
    palette = LEVEL_COLOURS[dimension]
    colours = [
        NO_AE_COLOUR if level == "No AE" else palette.get(level, UNKNOWN_COLOUR) for level in levels
    ]
    arms = frame["arm_label"].drop_duplicates().tolist()
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar(cursor="pointer", stroke="white", strokeWidth=0.5)
        .encode(
            y=alt.Y("arm_label:N", sort=arms, title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X(
                "share:Q",
                stack="zero",
                title="Subjects (% of arm)",
                axis=alt.Axis(format="%", values=QUARTERS),  # every bar ends at 100%
                scale=alt.Scale(domain=[0, 1]),
            ),
            color=alt.Color(
                "level:N",
                title=None,
                scale=alt.Scale(domain=levels, range=colours),
                legend=alt.Legend(orient="top"),
            ),
            order=alt.Order("order:Q"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.5)),
            tooltip=[
                alt.Tooltip("arm_label:N", title="Arm"),
                alt.Tooltip("level:N", title="Highest level"),
                alt.Tooltip("subjects:Q", title="Subjects"),
                alt.Tooltip("share:Q", title="Of arm", format=".1%"),
            ],
        )
        .add_params(pick)
        .properties(height=alt.Step(36))
    )
    return chart


def timeline_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """A swimmer plot: a row per subject and preferred term, a bar per AE from onset to end on the
    study-day axis (day 1 = first dose, marked), coloured by severity; serious AEs start with a
    triangle; AEs before the first dose are faded. A bar cut at the left edge (``cut``) keeps its
    real onset day in the tooltip. The axis has no day 0: bars are drawn at day positions
    (``x_start``/``x_end``), ticks fall on round study days and are labelled as study days.

    ``frame``: the output of ``metrics.ae_timeline.timeline_frame``.
    """
    data = frame.assign(
        row=frame["usubjid"] + " · " + frame["term"],
        onset=frame["treatment_emergent"].map({True: "On/after first dose", False: "Before"}),
    )
    rows = data["row"].drop_duplicates().tolist()
    severities = ["Mild", "Moderate", "Severe", "Unknown"]
    colour = alt.Color(
        "severity:N",
        title="Severity",
        scale=alt.Scale(
            domain=severities,
            range=[*LEVEL_COLOURS["severity"].values(), UNKNOWN_COLOUR],
        ),
        legend=alt.Legend(orient="top"),
    )
    tooltip = [
        alt.Tooltip("usubjid:N", title="Subject"),
        alt.Tooltip("term:N", title="Term"),
        alt.Tooltip("severity:N", title="Severity"),
        alt.Tooltip("serious:N", title="Seriousness"),
        alt.Tooltip("related:N", title="Relationship"),
        alt.Tooltip("start_dtc:N", title="Onset"),
        alt.Tooltip("end_dtc:N", title="End"),
        alt.Tooltip("start_day:Q", title="Onset study day"),
        alt.Tooltip("end_day:Q", title="End study day"),
        alt.Tooltip("onset:N", title="Onset relative to dose"),
    ]
    y = alt.Y("row:N", sort=rows, title=None, axis=alt.Axis(labelLimit=420))
    opacity = alt.Opacity(
        "onset:N",
        scale=alt.Scale(domain=["On/after first dose", "Before"], range=[1.0, 0.35]),
        legend=None,
    )
    ticks = (
        study_day_ticks(int(data["x_start"].min()), int(data["x_end"].max()))
        if not data.empty
        else [0]
    )
    base = alt.Chart(data)
    bars = base.mark_bar(height=10, cornerRadius=2).encode(
        y=y,
        x=alt.X(
            "x_start:Q",
            title="Study day (day 1 = first dose; no day 0)",
            axis=alt.Axis(values=ticks, labelExpr=DAY_LABEL_EXPR),
            scale=alt.Scale(padding=12),
        ),
        x2="x_end:Q",
        color=colour,
        opacity=opacity,
        tooltip=tooltip,
    )
    starts = base.mark_point(filled=True, size=70).encode(
        y=y,
        x="x_start:Q",
        color=colour,
        opacity=opacity,
        shape=alt.Shape(
            "serious:N",
            title=None,
            scale=alt.Scale(domain=["Not serious", "Serious"], range=["circle", "triangle-up"]),
            legend=alt.Legend(orient="top"),
        ),
        tooltip=tooltip,
    )
    first_dose = (  # the left edge of day 1
        alt.Chart(pd.DataFrame({"day": [0]}))
        .mark_rule(color="#444", strokeDash=[4, 3])
        .encode(x="day:Q")
    )
    return alt.LayerChart(layer=[first_dose, bars, starts]).properties(height=alt.Step(20))
