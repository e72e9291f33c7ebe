"""The recruitment forecast by site on the Enrollment page (issue #22): where each site's opening
comes from, the planned sites of a CTMS site table, "what if" more sites open, the calibration
table at earlier cuts and the site table's "below expected" probability, each against a
computation here from the stored records (the model's own fit and simulation, ``fit_rates`` and
``predict``, stand in for the method as ``forecast_completion`` does in test_enrollment_figures).
"""

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import nbinom  # type: ignore[import-untyped]
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.metrics.multicentre import fit_rates, predict
from dashboard.metrics.site_forecast import (
    ACTIVATION,
    FIRST_SCREENING,
    PLANNED,
    REGISTRY,
    calibration_cuts,
    multicentre_reason,
    site_openings,
)
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import EnrollmentView, build_enrollment
from tests.conftest import open_study_page
from tests.databases import copy_database

STUDY = "DEMO-MULTI"


def _view(url: str) -> EnrollmentView:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return build_enrollment(session, ViewContext(STUDY))
    finally:
        engine.dispose()


def _records(url: str, study: str = STUDY) -> tuple[pd.DataFrame, pd.DataFrame, dt.date, int]:
    """The sites (id, activation, planned activation, first screening) and the enrolled
    subjects (site, date) of ``study``, with its cut-off and target, read with SQL here."""
    engine = make_engine(url)
    try:
        sites = pd.read_sql(
            text(
                "SELECT site.site_id, site.activated_on, site.planned_activation_on, "
                "min(s.screening_date) AS first_screening FROM site "
                "LEFT JOIN subject s ON s.site_pk = site.id "
                "WHERE site.study_id = :study GROUP BY site.site_id, site.activated_on, "
                "site.planned_activation_on ORDER BY site.site_id"
            ),
            engine,
            params={"study": study},
        )
        enrolled = pd.read_sql(
            text(
                "SELECT site.site_id, s.enrollment_date FROM subject s JOIN site ON "
                "site.id = s.site_pk WHERE s.study_id = :study AND s.population = 'ENROLLED' "
                "AND s.enrollment_date IS NOT NULL"
            ),
            engine,
            params={"study": study},
        )
        cutoff = pd.read_sql(
            text("SELECT max(cutoff_date) AS c FROM datacut WHERE study_id = :study"),
            engine,
            params={"study": study},
        ).iloc[0]["c"]
        target = pd.read_sql(
            text("SELECT planned_enrollment FROM study WHERE study_id = :study"),
            engine,
            params={"study": study},
        ).iloc[0]["planned_enrollment"]
    finally:
        engine.dispose()
    for column in ("activated_on", "planned_activation_on", "first_screening"):
        sites[column] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in sites[column]]
    enrolled["enrollment_date"] = [pd.Timestamp(v).date() for v in enrolled["enrollment_date"]]
    return sites, enrolled, pd.Timestamp(cutoff).date(), int(target)


def _dates(days: np.ndarray, cutoff: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    low, median, high = np.quantile(days, [0.1, 0.5, 0.9])
    return tuple(  # type: ignore[return-value]
        cutoff + dt.timedelta(days=max(1, math.ceil(q))) for q in (low, median, high)
    )


# --- where a site's opening comes from -------------------------------------------------------


def test_each_site_opens_on_the_first_date_known_in_order() -> None:
    d = dt.date
    cutoff = d(2025, 6, 30)
    sites = pd.DataFrame(
        {
            "site_id": ["A", "B", "C", "D", "E"],
            "activated_on": [d(2025, 1, 1), None, None, d(2025, 9, 1), None],
            "planned_activation_on": [d(2024, 12, 1), None, d(2025, 8, 1), None, None],
            "first_screening": [d(2025, 2, 1), d(2025, 3, 1), None, None, None],
        }
    )
    got = site_openings(sites, cutoff=cutoff, registry_start=d(2024, 1, 1)).set_index("site_id")
    assert got.loc["A", "opened_on"] == d(2025, 1, 1) and got.loc["A", "source"] == ACTIVATION
    assert got.loc["B", "opened_on"] == d(2025, 3, 1) and got.loc["B", "source"] == FIRST_SCREENING
    assert got.loc["C", "opened_on"] == d(2025, 8, 1) and got.loc["C", "source"] == PLANNED
    # An activation after the cut-off: not open yet.
    assert not got.loc["D", "is_open"] and got.loc["C", "is_open"] == False  # noqa: E712
    assert got.loc["E", "opened_on"] is None and not got.loc["E", "is_open"]
    assert list(got["is_open"]) == [True, True, False, False, False]
    # One site: the registry's start is that site's, where it precedes the first screening.
    one = site_openings(sites.iloc[[1]], cutoff=cutoff, registry_start=d(2025, 1, 15))
    assert (one["opened_on"].iloc[0], one["source"].iloc[0]) == (d(2025, 1, 15), REGISTRY)
    late = site_openings(sites.iloc[[1]], cutoff=cutoff, registry_start=d(2025, 4, 1))
    assert late["source"].iloc[0] == FIRST_SCREENING  # the data contradict the registry


def test_the_pooled_model_is_kept_for_one_site_or_too_few() -> None:
    cutoff = dt.date(2025, 6, 30)
    openings = pd.DataFrame({"site_id": ["A", "B"], "is_open": [True, False]})
    days = pd.DataFrame(
        {
            "site_id": ["A", "A", "B", "B"],
            "date": [
                dt.date(2025, 3, 1),
                dt.date(2025, 7, 1),
                dt.date(2025, 3, 1),
                dt.date(2025, 4, 1),
            ],
            "enrolled": [3, 9, 30, 1],
        }
    )
    assert multicentre_reason(openings, days, cutoff=cutoff) == (
        "one site open: there is no spread of site rates to fit"
    )
    both = openings.assign(is_open=True)
    # A's enrollment after the cut-off does not count: 3 + 30 + 1.
    assert multicentre_reason(both, days, cutoff=cutoff) is None
    few = days.assign(enrolled=[1, 9, 2, 1])  # 4 by the cut-off
    assert multicentre_reason(both, few, cutoff=cutoff) == (
        "4 enrolled: at least 5 are needed to fit site rates"
    )
    # Enrollments at a site not open (a site table dating it after them) do not count.
    b_later = pd.DataFrame({"site_id": ["A", "B", "C"], "is_open": [True, False, True]})
    assert multicentre_reason(b_later, days, cutoff=cutoff) == (
        "3 enrolled: at least 5 are needed to fit site rates"
    )


def test_calibration_cuts_are_month_ends_spread_over_the_study() -> None:
    cuts = calibration_cuts(dt.date(2020, 1, 10), dt.date(2024, 6, 30))
    assert len(cuts) == 8 and cuts[-1] == dt.date(2024, 5, 31)
    assert cuts[0] == dt.date(2020, 4, 30)  # three months after the first opening
    assert all((c + dt.timedelta(days=1)).day == 1 for c in cuts)
    assert calibration_cuts(dt.date(2024, 5, 1), dt.date(2024, 6, 30)) == []


# --- the page's figures against the records --------------------------------------------------


def test_the_site_table_says_what_the_model_expects_of_each_site(demo_db_url: str) -> None:
    view = _view(demo_db_url)
    sites, enrolled, cutoff, _ = _records(demo_db_url)
    assert view.site_forecast is not None and view.sites is not None
    tau = np.array([(cutoff - d).days + 1 for d in sites["activated_on"]], dtype=float)
    counts = enrolled[enrolled["enrollment_date"] <= cutoff].groupby("site_id").size()
    k = np.array([counts.get(s, 0) for s in sites["site_id"]], dtype=float)
    fit = fit_rates(k, tau)
    assert view.site_forecast.fit.shape == pytest.approx(fit.shape)
    table = view.sites.set_index("site_id")
    for site_id, site_k, site_tau in zip(sites["site_id"], k, tau, strict=True):
        assert table.loc[site_id, "expected"] == pytest.approx(site_tau * fit.shape / fit.rate)
        p = nbinom.cdf(site_k, fit.shape, fit.rate / (fit.rate + site_tau))
        assert table.loc[site_id, "p_at_most"] == pytest.approx(p)
    assert view.model_note is not None
    assert view.model_note.startswith(f"Multicentre model: {len(sites)} sites open, 0 planned")
    assert f"{len(sites)} from the activation date" in view.model_note


def test_the_calibration_table_equals_a_forecast_made_at_each_cut(demo_db_url: str) -> None:
    view = _view(demo_db_url)
    sites, enrolled, cutoff, target = _records(demo_db_url)
    table = view.calibration
    assert table is not None and len(table) == 8
    origin = min(sites["activated_on"])
    total_by_cutoff = min(int((enrolled["enrollment_date"] <= cutoff).sum()), target)
    for index, row in table.reset_index(drop=True).iterrows():
        cut: dt.date = row["cut"]
        is_open = [d <= cut for d in sites["activated_on"]]
        open_ids = sites.loc[is_open, "site_id"]
        by_cut = enrolled[enrolled["enrollment_date"] <= cut].groupby("site_id").size()
        k = np.array([by_cut.get(s, 0) for s in open_ids], dtype=float)
        tau = np.array(
            [(cut - d).days + 1 for d in sites.loc[is_open, "activated_on"]], dtype=float
        )
        assert (row["sites_open"], row["enrolled"]) == (len(open_ids), int(k.sum()))
        later = [
            float((d - origin).days - ((cut - origin).days + 1))
            for d in sites.loc[[not o for o in is_open], "activated_on"]
        ]
        seed = int(index)  # type: ignore[call-overload]
        prediction = predict(
            fit_rates(k, tau),
            k,
            tau,
            target - int(k.sum()),
            opening_days=later,
            draws=1_000,  # CALIBRATION_DRAWS
            seed=seed,
        )
        # Completion days from the cut's end, as dates from the first opening.
        end_of_cut = (cut - origin).days + 1
        low, median, high = (
            origin + dt.timedelta(days=math.floor(end_of_cut + q))
            for q in np.quantile(prediction.completion_days, [0.1, 0.5, 0.9])
        )
        assert (row["low"], row["median"], row["high"]) == (low, median, high)
        # The subjects enrolled by the cut-off: Poisson counts of each draw's expected number.
        horizon = (cutoff - cut).days
        counts = np.random.default_rng(seed).poisson(
            np.maximum(prediction.expected_by(float(horizon)), 0.0)
        )
        # Up to the target: recruitment stops there.
        low_n, high_n = (min(k.sum() + np.quantile(counts, q), target) for q in (0.1, 0.9))
        assert (row["by_cutoff_low"], row["by_cutoff_high"]) == pytest.approx((low_n, high_n))
        assert row["by_cutoff"] == total_by_cutoff
        assert row["by_cutoff_covered"] == float(low_n <= total_by_cutoff <= high_n)
        assert pd.isna(row["covered"])  # the target is not reached by the cut-off
    held = int(table["by_cutoff_covered"].sum())
    assert view.calibration_sentence == (
        f"Forecast at 8 earlier cuts, the 80% interval of the subjects enrolled by the cut-off "
        f"({cutoff:%d %b %Y}) held the true count {held} {'time' if held == 1 else 'times'} of 8."
    )
    shown = view.calibration_shown
    assert shown is not None
    assert list(shown["Held"]) == ["yes" if v else "no" for v in table["by_cutoff_covered"]]


def test_planned_sites_from_a_site_table_and_what_if_more_open(
    demo_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_database(demo_db_url, tmp_path, "planned")
    sites, enrolled, cutoff, target = _records(url)
    planned_on = [cutoff + dt.timedelta(days=20), cutoff + dt.timedelta(days=50)]
    table = tmp_path / "sites.csv"
    table.write_text(
        "SITEID,PLANNED\n" + "".join(f"P{i},{d.isoformat()}\n" for i, d in enumerate(planned_on))
    )
    result = CliRunner().invoke(app, ["import", "sites", str(table), "--db", url, "--study", STUDY])
    assert result.exit_code == 0, result.output

    view = _view(url)
    model = view.site_forecast
    assert model is not None and list(model.planned["site_id"]) == ["P0", "P1"]
    tau = np.array([(cutoff - d).days + 1 for d in sites["activated_on"]], dtype=float)
    counts = enrolled[enrolled["enrollment_date"] <= cutoff].groupby("site_id").size()
    k = np.array([counts.get(s, 0) for s in sites["site_id"]], dtype=float)
    fit = fit_rates(k, tau)
    remaining = target - int(k.sum())
    # A site opens at the start of its day: (day - cutoff).days - 1 days after the cut-off's end.
    opening_days = [float((d - cutoff).days - 1) for d in planned_on]
    open_now = _dates(predict(fit, k, tau, remaining).completion_days, cutoff)
    with_planned = _dates(
        predict(fit, k, tau, remaining, opening_days=opening_days).completion_days, cutoff
    )
    assert (model.open_now, model.with_planned) == (open_now, with_planned)
    assert with_planned[1] < open_now[1]  # two more sites finish sooner
    assert view.model_note is not None and ", 2 planned;" in view.model_note
    low, median, high = with_planned
    assert view.metrics[-1].value == f"{median:%d %b %Y}"
    assert (
        f"With the 2 planned sites opening on their dates: **{median:%d %b %Y}** (80% interval "
        f"{low:%d %b %Y} to {high:%d %b %Y})."
    ) in view.forecast_sentence

    # What if ten more open a month after the cut-off: asked on the page.
    at = open_study_page(url, STUDY, "enrollment.py", monkeypatch, timeout=120)
    at.number_input(key="enrollment_what_if_sites").set_value(10).run()
    on = cutoff + dt.timedelta(days=31)
    at.date_input(key="enrollment_what_if_date").set_value(on).run()
    assert not at.exception
    extra = predict(
        fit, k, tau, remaining, opening_days=[*opening_days, *[float((on - cutoff).days - 1)] * 10]
    )
    low, median, high = _dates(extra.completion_days, cutoff)
    sentence = (
        f"With 10 more sites opening on {on:%d %b %Y}, the target of {target} is projected for "
        f"**{median:%d %b %Y}** (80% interval {low:%d %b %Y} to {high:%d %b %Y}), against "
        f"{with_planned[1]:%d %b %Y} without them."
    )
    assert sentence in [m.value for m in at.markdown]
    assert median < with_planned[1]


def test_the_bands_chart_draws_the_view_s_bands(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's predicted data are the view's bands: they start at the enrolled count on the
    cut-off, widen, and their median reaches the target near the median date."""
    view = _view(demo_db_url)
    model = view.site_forecast
    assert model is not None and model.headline is not None
    bands = model.bands
    first = bands.iloc[0]
    assert first["date"] == model.cutoff
    assert first[["q10", "q25", "q50", "q75", "q90"]].tolist() == [model.enrolled] * 5
    # Wider with time until the target, where recruitment stops (the last point is beyond the
    # 90th percentile of the completion date: every band has reached the target).
    short = bands[bands["q90"] < model.target]
    widths = (short["q90"] - short["q10"]).to_numpy()
    assert len(widths) > 10 and widths[-1] > widths[5] > 0
    assert bands.iloc[-1][["q10", "q50", "q90"]].tolist() == [model.target] * 3
    assert (bands["q10"] <= bands["q25"]).all() and (bands["q75"] <= bands["q90"]).all()
    reaching = bands[bands["q50"] >= model.target]["date"].iloc[0]
    assert abs((reaching - model.headline[1]).days) <= 10  # the bands' steps are ~a week


def _site_risk(url: str, study: str) -> Any:
    from dashboard.views.site_risk import build_site_risk

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return build_site_risk(session, ViewContext(study))
    finally:
        engine.dispose()


def _below(url: str, study: str) -> pd.DataFrame:
    """Here: the sites whose negative-binomial probability of recruiting at most what they did,
    under the gamma fitted to every site, is under 0.05; opened on the activation date, else the
    first screening."""
    sites, enrolled, cutoff, _ = _records(url, study)
    opened = [a or f for a, f in zip(sites["activated_on"], sites["first_screening"], strict=True)]
    tau = np.array([(cutoff - d).days + 1 for d in opened], dtype=float)
    counts = enrolled[enrolled["enrollment_date"] <= cutoff].groupby("site_id").size()
    k = np.array([counts.get(s, 0) for s in sites["site_id"]], dtype=float)
    fit = fit_rates(k, tau)
    p = nbinom.cdf(k, fit.shape, fit.rate / (fit.rate + tau))
    found: pd.DataFrame = sites.assign(p=p, k=k, tau=tau)[p < 0.05]
    return found.sort_values(["p", "site_id"])


def test_site_risk_lists_the_sites_recruiting_below_the_model(
    demo_db_url: str, pilot_db_url: str, tmp_path: Path
) -> None:
    from dashboard.views.site_risk import recruitment_sentence

    # DEMO-MULTI, its site 103 (9 enrolled) activated in mid-2023 by a site table: open that
    # long, its enrollments are too few for the study's sites.
    url = copy_database(demo_db_url, tmp_path, "below")
    table_file = tmp_path / "sites.csv"
    table_file.write_text("SITEID,ACTIVATED\n103,2023-06-01\n")
    result = CliRunner().invoke(
        app, ["import", "sites", str(table_file), "--db", url, "--study", STUDY]
    )
    assert result.exit_code == 0, result.output
    below = _below(url, STUDY)
    assert list(below["site_id"]) == ["103"]
    view = _site_risk(url, STUDY)
    table = view.recruitment_below
    assert table is not None
    assert list(table["Site"]) == list(below["site_id"])
    assert list(table["Open since"]) == [dt.date(2023, 6, 1)]
    assert list(table["Enrolled"]) == [int(v) for v in below["k"]]
    assert list(table["Days open"]) == [int(v) for v in below["tau"]]
    assert list(table["P(≤ enrolled)"]) == [f"{v:.3f}" for v in below["p"]]
    assert recruitment_sentence(view) == (
        "1 site recruits below what the multicentre model expects of the study's sites: the "
        "chance of a site like the others, open as long, recruiting this few or fewer is under "
        "0.05."
    )
    # The CDISC pilot (no site table: each site open from its first screening): none below.
    assert _below(pilot_db_url, "CDISCPILOT01").empty
    pilot = _site_risk(pilot_db_url, "CDISCPILOT01")
    assert pilot.recruitment_below is not None and pilot.recruitment_below.empty
    assert (recruitment_sentence(pilot) or "").startswith("No site recruits below")
