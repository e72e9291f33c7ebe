"""Laboratory charts: pure functions DataFrame -> altair chart (no streamlit): the eDISH plot, box
plots of a measurement by visit and arm, and one subject's values over time against the normal
range (with the subject's AEs beneath, on the same axis)."""

from typing import Literal
from urllib.parse import quote, urlencode

import altair as alt
import numpy as np
import pandas as pd

from dashboard.charts.colours import PRIMARY_BLUE
from dashboard.charts.labels import LABEL_LIMIT

# The eDISH rules and quadrant names of metrics.labs (which charts may not import: the layers
# keep metrics and charts independent; tests/test_lab_metrics.py checks they agree).
TRANSAMINASE_LIMIT = 3.0
BILIRUBIN_LIMIT = 2.0
HYS_LAW = "Potential Hy's law"
TEMPLE = "Temple's corollary"
HYPERBILIRUBINAEMIA = "Hyperbilirubinaemia"
NORMAL_RANGE = "Normal range"
NOT_ASSESSABLE = "Not assessable"

# Log axes cannot show 0 (nor a negative): a peak below this multiple of the ULN is drawn at it.
LOG_FLOOR = 0.05
# The Subject page's url_path (the same relative link as ui.links.subject_url, which the charts
# may not import: links from a chart carry the study alone).
SUBJECT_PAGE = "subject"

# Above this many subjects on the eDISH plot, those in the normal-range quadrant are drawn as
# shaded cells (a count per cell) and only the others as dots: 30,000 dots, each with a link and
# a tooltip, took the browser seconds to draw, and a monitor looks for the few outside the lines.
EDISH_DOT_LIMIT = 2_000
# The cells' size on the log axes, in decades (0.05: about 12% of a value).
DENSITY_CELL_DECADES = 0.05

# The x fields the eDISH plot can use, with their axis titles.
EDISH_X = {
    "peak_transaminase_uln": "Peak ALT or AST (x ULN)",
    "peak_alt_uln": "Peak ALT (x ULN)",
    "peak_ast_uln": "Peak AST (x ULN)",
}


def subject_href(study_id: str, usubjid: str) -> str:
    """The relative link to a subject's page: ``subject?study=STUDY&subject=USUBJID``."""
    return f"{SUBJECT_PAGE}?{urlencode({'study': study_id}, quote_via=quote)}" + (
        f"&subject={quote(usubjid, safe='')}"
    )


def _arm_colour() -> alt.Color:
    return alt.Color(
        "arm:N",
        title="Arm",
        scale=alt.Scale(scheme="tableau10"),  # the arms' colours on the AE charts too
        legend=alt.Legend(orient="top", columns=2, labelLimit=360),
    )


def edish_chart(
    points: pd.DataFrame,
    study_id: str,
    rule_lines: tuple[float, float] = (TRANSAMINASE_LIMIT, BILIRUBIN_LIMIT),
    x: str = "peak_transaminase_uln",
    *,
    dot_limit: int = EDISH_DOT_LIMIT,
) -> alt.LayerChart:
    """The eDISH plot (FDA): a dot per subject at its peak transaminase (``x``: ALT or AST, or
    either) and peak total bilirubin, each as a multiple of the ULN, on log-log axes, coloured by
    arm; a vertical rule at ``rule_lines[0]`` x ULN, a horizontal one at ``rule_lines[1]``, and
    the quadrants named in the four corners. A click on a dot opens the subject's page
    (``href``); the tooltip gives subject, site, arm, the peaks and their dates.

    Log axes cannot show 0: a peak below ``LOG_FLOOR`` x ULN is drawn at the floor (the tooltip
    keeps the real value). Subjects ``NOT_ASSESSABLE`` (no ULN) have no place on the axes and
    are left out. With more than ``dot_limit`` subjects, those in the normal-range quadrant are
    shaded cells with their count (``edish_density``), the others dots.

    ``points``: the output of ``metrics.labs.edish_points``.
    """
    title = EDISH_X[x]
    shown = points[(points["quadrant"] != NOT_ASSESSABLE) & points[x].notna()]
    shown = shown[shown["peak_bili_uln"].notna()]
    dense = len(shown) > dot_limit
    if dense:
        normal = shown[shown["quadrant"] == NORMAL_RANGE]
        cells = edish_density(normal[x], normal["peak_bili_uln"])
        shown = shown[shown["quadrant"] != NORMAL_RANGE]
    data = pd.DataFrame(
        {
            "usubjid": shown["usubjid"].astype(str),
            "site_id": shown["site_id"].astype(str),
            "arm": shown["arm"].astype(str),
            "quadrant": shown["quadrant"].astype(str),
            "x_value": shown[x].astype(float),
            "bili_value": shown["peak_bili_uln"].astype(float),
            "x_plot": shown[x].astype(float).clip(lower=LOG_FLOOR),
            "bili_plot": shown["peak_bili_uln"].astype(float).clip(lower=LOG_FLOOR),
            "alt": shown["peak_alt_uln"].astype(float),
            "ast": shown["peak_ast_uln"].astype(float),
            "alt_date": _date_text(shown["peak_alt_date"]),
            "ast_date": _date_text(shown["peak_ast_date"]),
            "bili_date": _date_text(shown["peak_bili_date"]),
            "href": [subject_href(study_id, str(s)) for s in shown["usubjid"]],
        }
    )
    x_rule, y_rule = rule_lines
    # The domains reach past the rules and the data, so every quadrant has room for its name.
    x_domain = [
        min(LOG_FLOOR, float(data["x_plot"].min()) if len(data) else LOG_FLOOR),
        max(x_rule * 10, float(data["x_plot"].max()) * 1.5 if len(data) else 0.0),
    ]
    y_domain = [
        min(LOG_FLOOR, float(data["bili_plot"].min()) if len(data) else LOG_FLOOR),
        max(y_rule * 10, float(data["bili_plot"].max()) * 1.5 if len(data) else 0.0),
    ]
    x_scale = alt.Scale(type="log", domain=x_domain, nice=False)
    y_scale = alt.Scale(type="log", domain=y_domain, nice=False)
    dots = (
        alt.Chart(data)
        .mark_circle(size=70, opacity=0.8, cursor="pointer")
        .encode(
            x=alt.X("x_plot:Q", title=title, scale=x_scale),
            y=alt.Y("bili_plot:Q", title="Peak total bilirubin (x ULN)", scale=y_scale),
            color=_arm_colour(),
            href=alt.Href("href:N"),
            tooltip=[
                alt.Tooltip("usubjid:N", title="Subject"),
                alt.Tooltip("site_id:N", title="Site"),
                alt.Tooltip("arm:N", title="Arm"),
                alt.Tooltip("quadrant:N", title="Quadrant"),
                alt.Tooltip("alt:Q", title="Peak ALT (x ULN)", format=".2f"),
                alt.Tooltip("alt_date:N", title="Peak ALT on"),
                alt.Tooltip("ast:Q", title="Peak AST (x ULN)", format=".2f"),
                alt.Tooltip("ast_date:N", title="Peak AST on"),
                alt.Tooltip("bili_value:Q", title="Peak bilirubin (x ULN)", format=".2f"),
                alt.Tooltip("bili_date:N", title="Peak bilirubin on"),
            ],
        )
    )
    rules = pd.DataFrame({"x": [x_rule], "y": [y_rule]})
    vertical = (
        alt.Chart(rules)
        .mark_rule(strokeDash=[4, 4], color="grey")
        .encode(x=alt.X("x:Q", scale=x_scale))
    )
    horizontal = (
        alt.Chart(rules)
        .mark_rule(strokeDash=[4, 4], color="grey")
        .encode(y=alt.Y("y:Q", scale=y_scale))
    )
    corners = pd.DataFrame(
        {
            "name": [HYS_LAW, HYPERBILIRUBINAEMIA, TEMPLE, NORMAL_RANGE],
            "x": [x_domain[1], x_domain[0], x_domain[1], x_domain[0]],
            "y": [y_domain[1], y_domain[1], y_domain[0], y_domain[0]],
        }
    )
    names = [
        _corner_name(corners.iloc[[0]], x_scale, y_scale, "right", "top"),
        _corner_name(corners.iloc[[1]], x_scale, y_scale, "left", "top"),
        _corner_name(corners.iloc[[2]], x_scale, y_scale, "right", "bottom"),
        _corner_name(corners.iloc[[3]], x_scale, y_scale, "left", "bottom"),
    ]
    layers: list[alt.Chart] = [vertical, horizontal, *names, dots]
    if dense:
        shade = (
            alt.Chart(cells)
            .mark_rect(opacity=0.8)
            .encode(
                x=alt.X("x:Q", scale=x_scale),
                x2="x2:Q",
                y=alt.Y("y:Q", scale=y_scale),
                y2="y2:Q",
                color=alt.Color(
                    "subjects:Q",
                    scale=alt.Scale(scheme="greys", type="log"),
                    legend=alt.Legend(title="Normal range: subjects per cell", orient="top"),
                ),
                tooltip=[alt.Tooltip("subjects:Q", title="Subjects in the normal range here")],
            )
        )
        layers.insert(0, shade)
    chart: alt.LayerChart = alt.LayerChart(layer=layers, height=420).resolve_scale(
        color="independent"
    )
    return chart


def edish_density(x: pd.Series, y: pd.Series) -> pd.DataFrame:
    """Subjects per cell of the log-log eDISH plane (``DENSITY_CELL_DECADES`` a side): x, x2,
    y, y2 (the cell's corners, multiples of the ULN) and ``subjects``; peaks below ``LOG_FLOOR``
    counted in the floor's cell, as the dots are drawn at it."""
    size = DENSITY_CELL_DECADES
    logs = pd.DataFrame(
        {
            "i": np.floor(np.log10(x.astype(float).clip(lower=LOG_FLOOR)) / size),
            "j": np.floor(np.log10(y.astype(float).clip(lower=LOG_FLOOR)) / size),
        }
    )
    counts = logs.groupby(["i", "j"]).size().rename("subjects").reset_index()
    return pd.DataFrame(
        {
            "x": 10 ** (counts["i"] * size),
            "x2": 10 ** ((counts["i"] + 1) * size),
            "y": 10 ** (counts["j"] * size),
            "y2": 10 ** ((counts["j"] + 1) * size),
            "subjects": counts["subjects"].astype(int),
        }
    )


def _corner_name(
    corner: pd.DataFrame,
    x_scale: alt.Scale,
    y_scale: alt.Scale,
    align: Literal["left", "right"],
    baseline: Literal["top", "bottom"],
) -> alt.Chart:
    """A quadrant's name, set inside its corner of the plot."""
    chart: alt.Chart = (
        alt.Chart(corner)
        .mark_text(
            align=align,
            baseline=baseline,
            dx=-4 if align == "right" else 4,
            dy=4 if baseline == "top" else -4,
            color="#555555",
        )
        .encode(x=alt.X("x:Q", scale=x_scale), y=alt.Y("y:Q", scale=y_scale), text="name:N")
    )
    return chart


def _date_text(dates: pd.Series) -> list[str]:
    """Dates as ISO text for a tooltip ("" where unknown)."""
    as_dates = pd.to_datetime(dates)
    return ["" if pd.isna(d) else d.strftime("%Y-%m-%d") for d in as_dates]


def _value_title(values: pd.DataFrame) -> str:
    measurement = values["measurement"].dropna()
    return str(measurement.iloc[0]) if len(measurement) else "Value"


def box_by_visit(boxes: pd.DataFrame, title: str) -> alt.LayerChart:
    """Box plots of one measurement's values by visit (x, in the order given: by visit number)
    and arm (side by side, coloured): box from the first to the third quartile, a tick at the
    median, whiskers to the lowest and highest value, so no value hides as an "outlier".

    ``boxes``: ``metrics.labs.box_stats`` (a row per visit and arm, counted before drawing: the
    browser gets the boxes, not every value); ``title``: the measurement, the y axis's title.
    """
    order = [str(v) for v in boxes["visit"].drop_duplicates()]
    data = boxes.assign(arm=boxes["arm"].astype(str), visit=boxes["visit"].astype(str))
    x = alt.X(
        "visit:N",
        sort=order,
        title="Visit",
        # Every visit named: overlapping names are angled, not dropped.
        axis=alt.Axis(labelAngle=-45, labelLimit=LABEL_LIMIT, labelOverlap=False),
    )
    tooltip = [
        alt.Tooltip("visit:N", title="Visit"),
        alt.Tooltip("arm:N", title="Arm"),
        alt.Tooltip("n:Q", title="Values"),
        alt.Tooltip("lowest:Q", title="Lowest"),
        alt.Tooltip("q1:Q", title="First quartile"),
        alt.Tooltip("median:Q", title="Median"),
        alt.Tooltip("q3:Q", title="Third quartile"),
        alt.Tooltip("highest:Q", title="Highest"),
    ]
    base = alt.Chart(data).encode(x=x, xOffset=alt.XOffset("arm:N"), tooltip=tooltip)
    whiskers = base.mark_rule().encode(
        y=alt.Y("lowest:Q", title=title), y2="highest:Q", color=_arm_colour()
    )
    box = base.mark_bar(size=14).encode(y="q1:Q", y2="q3:Q", color=_arm_colour())
    median = base.mark_tick(color="white", size=14, thickness=2).encode(y="median:Q")
    return alt.LayerChart(layer=[whiskers, box, median], height=360)


def _day_field(frame: pd.DataFrame) -> tuple[str, str]:
    """The x of a time chart: the study day where every record has one, else the date."""
    if "study_day" in frame and len(frame) and frame["study_day"].notna().all():
        return "study_day:Q", "Study day"
    return "date:T", "Date"


def subject_values(
    series: pd.DataFrame, aes: pd.DataFrame | None = None
) -> alt.LayerChart | alt.VConcatChart:
    """One subject's values of a measurement over time: a line with a point per record (coloured
    by its range class), the normal range as a band (low..high; an unknown limit is drawn at the
    edge of the values), on the study-day axis (the date where a record has no study day).

    ``aes`` (columns ``start_day``, ``end_day``, ``term``): the subject's AEs as bars in a
    panel beneath, sharing the x axis (drawn only on the study-day axis, which they carry).

    ``series``: the output of ``metrics.labs.subject_series``.
    """
    x_field, x_title = _day_field(series)
    name = x_field.split(":")[0]
    data = series.assign(
        date=pd.to_datetime(series["date"]),
        range_class=series["range_class"].fillna("Unknown").astype(str),
    )
    lowest = float(data["value"].min()) if len(data) else 0.0
    highest = float(data["value"].max()) if len(data) else 1.0
    data = data.assign(
        band_low=data["low"].astype(float).fillna(min(lowest, 0.0)),
        band_high=data["high"].astype(float).fillna(highest),
    )
    x = alt.X(x_field, title=x_title)
    band = (
        alt.Chart(data)
        .mark_area(opacity=0.15, color="#4daf4a", interpolate="step-after")
        .encode(x=x, y=alt.Y("band_low:Q"), y2=alt.Y2("band_high:Q"))
    )
    line = alt.Chart(data).mark_line(color=PRIMARY_BLUE).encode(x=x, y="value:Q")
    dots = (
        alt.Chart(data)
        .mark_point(filled=True, size=60)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=_value_title(series)),
            color=alt.Color(
                "range_class:N",
                title="Range",
                scale=alt.Scale(
                    domain=["LOW", "NORMAL", "HIGH", "ABNORMAL", "Unknown"],
                    range=["#2166ac", "#4daf4a", "#d7191c", "#fdae61", "#a0a0a0"],
                ),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("visit:N", title="Visit"),
                alt.Tooltip("date:T", title="Date", format="%Y-%m-%d"),
                alt.Tooltip("study_day:Q", title="Study day"),
                alt.Tooltip("value:Q", title="Value"),
                alt.Tooltip("low:Q", title="Low"),
                alt.Tooltip("high:Q", title="High"),
                alt.Tooltip("range_class:N", title="Range"),
            ],
        )
    )
    values: alt.LayerChart = alt.LayerChart(layer=[band, line, dots], height=260)
    if aes is None or len(aes) == 0 or name != "study_day":
        return values
    bars = (
        alt.Chart(aes[["term", "start_day", "end_day"]])
        .mark_bar(height=10, color="#fc8d59")
        .encode(
            x=alt.X("start_day:Q", title="Study day"),
            x2="end_day:Q",
            y=alt.Y("term:N", title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            tooltip=[
                alt.Tooltip("term:N", title="Adverse event"),
                alt.Tooltip("start_day:Q", title="Onset study day"),
                alt.Tooltip("end_day:Q", title="End study day"),
            ],
        )
        .properties(height=alt.Step(16))
    )
    combined: alt.VConcatChart = alt.vconcat(values, bars).resolve_scale(x="shared")
    return combined
