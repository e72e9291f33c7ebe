"""The Site risk charts: valid Vega-Lite specs from the view's parts, and None (never an empty
chart) where there is nothing to draw."""

import datetime as dt
import json

import pandas as pd
from sqlmodel import Session

from dashboard.charts.site_risk import funnel_chart, qtl_chart
from dashboard.views.context import ViewContext
from dashboard.views.site_risk import Funnel, QtlStatus, build_site_risk


def test_every_funnel_of_the_multisite_demo_draws(session: Session) -> None:
    view = build_site_risk(session, ViewContext("DEMO-MULTI"))
    assert view.funnels
    for funnel in view.funnels:
        chart = funnel_chart(funnel)
        assert chart is not None
        spec = chart.to_dict()  # validated against the Vega-Lite schema
        assert funnel.definition.per in str(spec)


def test_no_points_no_chart(session: Session) -> None:
    funnel = build_site_risk(session, ViewContext("DEMO-MULTI")).funnels[0]
    empty = Funnel(funnel.definition, funnel.points.iloc[0:0], funnel.bounds, funnel.overall)
    assert funnel_chart(empty) is None


def test_qtl_chart_needs_two_cuts(session: Session) -> None:
    qtl = build_site_risk(session, ViewContext("DEMO-MULTI")).qtls[0]
    history = pd.DataFrame(
        {
            "cut_id": [3, 4],  # ids counted across studies; the study's own cuts 1 and 2
            "cut_number": [1, 2],
            "cutoff": [dt.date(2025, 1, 1), dt.date(2025, 6, 1)],
            "numerator": [1.0, 5.0],
            "denominator": [20.0, 40.0],
            "proportion": [0.05, 0.125],
            "limit": [0.14, 0.10],
            "over": [False, True],
        }
    )
    two = QtlStatus(qtl.definition, qtl.p0, qtl.z, history, None)
    chart = qtl_chart(two)
    assert chart is not None
    spec = json.dumps(chart.to_dict())
    assert '"Cut 1"' in spec and '"Cut 2"' in spec and '"Cut 3"' not in spec
    assert qtl_chart(QtlStatus(qtl.definition, qtl.p0, qtl.z, history.iloc[:1], None)) is None
