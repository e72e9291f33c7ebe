"""Site risk charts: pure functions from the Site risk view's parts to altair charts (no
streamlit). Each returns None where there is nothing to draw, so no chart is ever empty."""

from typing import Protocol

import altair as alt
import pandas as pd

from dashboard.charts.axes import count_axis
from dashboard.charts.colours import FLAG_COLOURS, FLAG_LABELS, NOT_SCORED


class KriDefinition(Protocol):
    """What a chart reads of a KRI (``metrics.kri_catalogue.KriDefinition``)."""

    @property
    def name(self) -> str: ...
    @property
    def numerator(self) -> str: ...
    @property
    def denominator(self) -> str: ...
    @property
    def per(self) -> str: ...


class QtlDefinition(Protocol):
    """What a chart reads of a QTL (``metrics.kri_catalogue.QtlDefinition``)."""

    @property
    def name(self) -> str: ...


class Funnel(Protocol):
    """What a funnel plot reads (``views.site_risk.Funnel``: charts sit below the views)."""

    @property
    def definition(self) -> KriDefinition: ...
    @property
    def points(self) -> pd.DataFrame: ...
    @property
    def bounds(self) -> pd.DataFrame: ...
    @property
    def overall(self) -> float: ...


class QtlStatus(Protocol):
    """What a QTL chart reads (``views.site_risk.QtlStatus``)."""

    @property
    def definition(self) -> QtlDefinition: ...
    @property
    def history(self) -> pd.DataFrame: ...


SITE_SELECTION = "site"  # the name of the click selection on a funnel's points


def flag_label(flag: object) -> str:
    """A flag (-2..2, or NA for a site not scored) as the legend names it."""
    if flag is None or pd.isna(flag):  # type: ignore[call-overload]
        return NOT_SCORED
    return FLAG_LABELS.get(int(flag), NOT_SCORED)  # type: ignore[call-overload]


def _threshold_label(threshold: float) -> str:
    return f"{threshold:+g}"


def funnel_chart(funnel: Funnel, *, height: int = 340) -> alt.LayerChart | alt.FacetChart | None:
    """The funnel plot of one KRI: each site's metric against its denominator, coloured by flag;
    the limits at each threshold as lines and the study's overall rate as a rule. A click on a
    point selects the site (``SITE_SELECTION`` over ``site_id``). None without a site to draw."""
    kri = funnel.definition
    points = funnel.points.dropna(subset=["denominator", "metric"])
    if points.empty:
        return None
    points = points.assign(
        site_id=points["site_id"].astype(str),
        flag_label=[flag_label(f) for f in points["flag"]],
    )
    unit = kri.per
    x_title = kri.denominator
    y_title = f"{kri.name} ({unit})"
    colour = alt.Color(
        "flag_label:N",
        title="Flag",
        scale=alt.Scale(domain=list(FLAG_COLOURS), range=list(FLAG_COLOURS.values())),
        legend=alt.Legend(orient="top", columns=3),
    )
    pick = alt.selection_point(name=SITE_SELECTION, fields=["site_id"], on="click")
    dots = (
        alt.Chart(points)
        .mark_circle(size=90, opacity=0.9, stroke="#333", strokeWidth=0.5)
        .encode(
            x=alt.X("denominator:Q", title=x_title, scale=alt.Scale(zero=True), axis=count_axis()),
            y=alt.Y("metric:Q", title=y_title),
            color=colour,
            tooltip=[
                alt.Tooltip("site_id:N", title="Site"),
                alt.Tooltip("numerator:Q", title=kri.numerator, format=",.0f"),
                alt.Tooltip("denominator:Q", title=kri.denominator, format=",.0f"),
                alt.Tooltip("metric:Q", title=unit, format=",.2f"),
                alt.Tooltip("score:Q", title="Score", format="+.2f"),
                alt.Tooltip("flag_label:N", title="Flag"),
            ],
        )
        .add_params(pick)
    )
    layers: list[alt.Chart] = []
    bounds = funnel.bounds.dropna(subset=["metric"])
    if not bounds.empty:
        bounds = bounds.assign(
            limit=[_threshold_label(t) for t in bounds["threshold"]],
            outer=bounds["threshold"].abs() >= bounds["threshold"].abs().max(),
        )
        layers.append(
            alt.Chart(bounds)
            .mark_line(color="#888", strokeWidth=1)
            .encode(
                x="denominator:Q",
                y="metric:Q",
                detail="limit:N",
                strokeDash=alt.condition(alt.datum.outer, alt.value([1, 0]), alt.value([4, 3])),
                tooltip=[alt.Tooltip("limit:N", title="Limit at score")],
            )
        )
    if pd.notna(funnel.overall):
        layers.append(
            alt.Chart(pd.DataFrame({"overall": [funnel.overall]}))
            .mark_rule(color="#1f77b4", strokeWidth=1.5)
            .encode(
                y="overall:Q",
                tooltip=[alt.Tooltip("overall:Q", title=f"Study overall ({unit})", format=",.2f")],
            )
        )
    return alt.layer(*layers, dots).properties(height=height)


def qtl_chart(qtl: QtlStatus, *, height: int = 220) -> alt.LayerChart | alt.FacetChart | None:
    """A QTL over the data cuts: the observed proportion and its limit (per cent), one line
    each. None with fewer than two cuts with counts (no line to draw)."""
    history = qtl.history.dropna(subset=["proportion"])
    if len(history) < 2:
        return None
    long = pd.DataFrame(
        {
            "cut": [f"Cut {int(c)}" for c in history["cut_number"]] * 2,
            "cut_id": list(history["cut_id"].astype(int)) * 2,
            "series": ["Observed"] * len(history) + ["Limit"] * len(history),
            "percent": [*(history["proportion"] * 100), *(history["limit"] * 100)],
            "over": [*history["over"].astype(bool), *([False] * len(history))],
        }
    )
    order = [f"Cut {int(c)}" for c in history["cut_number"]]
    x = alt.X("cut:N", title="Data cut", sort=order, axis=alt.Axis(labelAngle=0))
    colour = alt.Color(
        "series:N",
        title=None,
        scale=alt.Scale(domain=["Observed", "Limit"], range=["#1f77b4", "#d7191c"]),
        legend=alt.Legend(orient="top"),
    )
    base = alt.Chart(long).encode(
        x=x,
        y=alt.Y("percent:Q", title=f"{qtl.definition.name} (%)", scale=alt.Scale(zero=True)),
        color=colour,
        strokeDash=alt.StrokeDash(
            "series:N",
            scale=alt.Scale(domain=["Observed", "Limit"], range=[[1, 0], [4, 3]]),
            legend=None,
        ),
        tooltip=[
            alt.Tooltip("cut:N", title="Data cut"),
            alt.Tooltip("series:N", title="Series"),
            alt.Tooltip("percent:Q", title="%", format=".2f"),
        ],
    )
    return alt.layer(base.mark_line(point=True)).properties(height=height)
