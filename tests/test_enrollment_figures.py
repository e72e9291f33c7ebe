"""Every figure of the Enrollment page, and the CONSORT flow behind its diagram, against an
independent pandas computation from the raw data: the SQLite tables read with ``pandas.read_sql``
for the demos (NCT06466850, DEMO-MULTI), the .xpt files read with pyreadstat for the CDISC pilot.

The independent side re-derives populations, statuses and dates from the DESIGN.md definitions
(arm codes, ARMNRS, disposition records, RFSTDTC, RFICDTC / SV / DS / DMDTC); it never calls the
app's query or metric functions, except ``forecast_completion`` (the forecast method itself, which
tests/test_forecast.py checks against known answers) fed with the independent enrollment dates.
"""

import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyreadstat
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.charts.consort import consort_svg
from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm
from dashboard.metrics.consort import consort_flow
from dashboard.metrics.countries import country_label
from dashboard.metrics.enrollment import STALLED_AFTER_DAYS
from dashboard.metrics.forecast import AccrualForecast, forecast_completion
from dashboard.metrics.multicentre import fit_rates, predict
from dashboard.queries.enrollment import discontinuation_reasons, funnel, outcome_by_arm
from dashboard.queries.screen_failures import failed_subject_counts, failures_by_criterion
from dashboard.views.format import plural
from tests.conftest import PROJECT_ROOT, SHARED_DATA, open_study_page, reference_absent
from tests.databases import new_database_url
from tests.sdtm_builders import copy_of_base, truncated_package, write_package

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
MONTH = 365.25 / 12
SVG = "{http://www.w3.org/2000/svg}"
SITE_ROWS_KEY = "enrollment_site_rows"

STUDIES = [("demo", "NCT06466850"), ("demo", "DEMO-MULTI"), ("pilot", "CDISCPILOT01")]


# --- the independent side ----------------------------------------------------------------------


@dataclass
class Raw:
    """A study as pandas reads it from its source, classified by the DESIGN.md definitions.

    subjects: usubjid, site_id, arm, population, status (enrolled only), treated,
    screening_date, enrollment_date (Timestamps or NaT), first_cut_id (demos; else 1).
    disc: one row per discontinued subject: usubjid, arm, reason (its latest disposition event).
    findings: screen-failed subjects' criteria not met: usubjid, label.
    """

    subjects: pd.DataFrame
    disc: pd.DataFrame
    findings: pd.DataFrame
    sites: pd.DataFrame  # site_id, name, country, activated_on, planned_enrollment
    target: int | None
    cutoff: dt.date
    planned_start: dt.date | None
    planned_end: dt.date | None
    cut_ids: list[int]


def _blank(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.strip() == ""


def _first_day(values: pd.Series) -> pd.Series:
    """ISO 8601 text (possibly partial, possibly a datetime) as the first day it names."""
    text = values.fillna("").astype(str).str.strip().str[:10]
    text = text.where(text.str.len() != 4, text + "-01-01")
    text = text.where(text.str.len() != 7, text + "-01")
    return pd.to_datetime(text.where(text != ""), format="%Y-%m-%d")


def _classify(subjects: pd.DataFrame, ds: pd.DataFrame) -> pd.DataFrame:
    """population and status from arm codes, ARMNRS, enrollment dates and DS (DESIGN.md).

    ``subjects``: usubjid, arm_code, arm, armnrs, enrollment_date. ``ds``: usubjid, category,
    term, epoch, date (Timestamp)."""
    out = subjects.copy()
    code = out["arm_code"].fillna("").str.strip().str.upper()
    nrs = out["armnrs"].fillna("").str.strip().str.upper()
    sf_ds = set(ds.loc[ds["term"].str.upper() == "SCREEN FAILURE", "usubjid"])
    failure = (
        (code == "SCRNFAIL")
        | (_blank(out["arm"]) & (nrs == "SCREEN FAILURE"))
        | (out["usubjid"].isin(sf_ds) & (code == ""))
    )
    enrolled = ~failure & (((code != "") & (code != "NOTASSGN")) | out["enrollment_date"].notna())
    not_assigned = ~failure & ~enrolled & ((nrs == "NOT ASSIGNED") | (code == "NOTASSGN"))
    out["population"] = "IN SCREENING"
    out.loc[failure, "population"] = "SCREEN FAILURE"
    out.loc[enrolled, "population"] = "ENROLLED"
    out.loc[not_assigned, "population"] = "NOT ASSIGNED"
    events = ds[
        (ds["category"].str.upper() == "DISPOSITION EVENT")
        & (ds["epoch"].fillna("").str.upper() != "SCREENING")
        & (ds["term"].str.upper() != "SCREEN FAILURE")
    ]
    # The latest event decides; on one day a discontinuation outranks a completion.
    events = events.assign(completed=events["term"].str.upper() == "COMPLETED").sort_values(
        ["usubjid", "date", "completed"], ascending=[True, True, False]
    )
    latest = events.groupby("usubjid").tail(1).set_index("usubjid")
    out["status"] = None
    known = out["usubjid"].isin(latest.index) & enrolled
    out.loc[enrolled, "status"] = "ONGOING"
    out.loc[known, "status"] = [
        "COMPLETED" if latest.loc[u, "completed"] else "DISCONTINUED"
        for u in out.loc[known, "usubjid"]
    ]
    disc = out[out["status"] == "DISCONTINUED"][["usubjid", "arm"]].copy()
    disc["reason"] = [latest.loc[u, "term"] for u in disc["usubjid"]]
    out.attrs["disc"] = disc
    return out


def _demo_raw(engine: Engine, study_id: str) -> Raw:
    def sql(query: str) -> pd.DataFrame:
        return pd.read_sql(text(query), engine, params={"study_id": study_id})

    subject = sql(
        "SELECT s.id, s.usubjid, s.arm_code, s.arm, s.arm_not_assigned_reason AS armnrs, "
        "s.screening_date, s.enrollment_date, s.first_dose_date, s.first_cut_id, "
        "site.site_id FROM subject s LEFT JOIN site ON site.id = s.site_pk WHERE s.study_id = :study_id"
    )
    for column in ("screening_date", "enrollment_date"):
        subject[column] = pd.to_datetime(subject[column])
    ds = sql(
        "SELECT s.usubjid, d.category, d.term, d.epoch, d.date FROM disposition d "
        "JOIN subject s ON s.id = d.subject_pk WHERE s.study_id = :study_id"
    )
    ds["date"] = pd.to_datetime(ds["date"])
    exposed = set(
        sql(
            "SELECT DISTINCT s.usubjid FROM exposure e JOIN subject s ON s.id = e.subject_pk "
            "WHERE s.study_id = :study_id"
        )["usubjid"]
    )
    subjects = _classify(subject, ds)
    subjects["treated"] = subjects["first_dose_date"].notna() | subjects["usubjid"].isin(exposed)
    findings = sql(
        "SELECT s.usubjid, c.code, c.protocol_version, c.text FROM eligibilityfinding f "
        "JOIN subject s ON s.id = f.subject_pk JOIN criterion c ON c.id = f.criterion_pk "
        "WHERE s.study_id = :study_id"
    )
    findings["label"] = [
        f"{c}{f' ({v})' if v else ''} {t}"
        for c, v, t in zip(
            findings["code"], findings["protocol_version"], findings["text"], strict=True
        )
    ]
    study = sql("SELECT * FROM study WHERE study_id = :study_id").iloc[0]
    cuts = sql("SELECT id, cutoff_date FROM datacut WHERE study_id = :study_id ORDER BY id")
    sites = sql(
        "SELECT site_id, name, country, activated_on, planned_enrollment FROM site "
        "WHERE study_id = :study_id"
    )
    return Raw(
        subjects=subjects,
        disc=subjects.attrs["disc"],
        findings=findings,
        sites=sites,
        target=int(study["planned_enrollment"]) if pd.notna(study["planned_enrollment"]) else None,
        cutoff=dt.date.fromisoformat(str(cuts["cutoff_date"].iloc[-1])[:10]),
        planned_start=_date_or_none(study["planned_start"]),
        planned_end=_date_or_none(study["planned_end"]),
        cut_ids=[int(i) for i in cuts["id"]],
    )


def _date_or_none(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)[:10]) if value is not None and value == value else None


def _xpt(folder: Path, name: str) -> pd.DataFrame:
    for path in (folder / f"{name}.xpt", folder / f"{name}.csv"):
        if path.is_file():
            if path.suffix == ".csv":
                return pd.read_csv(path, dtype=str, keep_default_na=False)
            frame, _ = pyreadstat.read_xport(str(path), encoding="cp1252")
            return frame
    return pd.DataFrame()


def _sdtm_raw(folder: Path) -> Raw:
    """A study straight from its SDTM files (.xpt with pyreadstat, or CSV)."""
    dm, ds, ex, sv, ts = (_xpt(folder, n) for n in ("dm", "ds", "ex", "sv", "ts"))
    # A domain the package leaves out holds no records.
    ex = ex if not ex.empty else pd.DataFrame(columns=["USUBJID"])
    sv = sv if not sv.empty else pd.DataFrame(columns=["USUBJID", "SVSTDTC"])
    for column in ("RFICDTC", "DMDTC", "RFXSTDTC", "ARMNRS"):
        if column not in dm.columns:
            dm[column] = ""
    ds_frame = pd.DataFrame(
        {
            "usubjid": ds["USUBJID"],
            "category": ds["DSCAT"],
            "term": ds["DSDECOD"],
            "epoch": ds["EPOCH"],
            "date": _first_day(ds["DSSTDTC"]),
        }
    )
    # Screening date: RFICDTC, else the earliest SV date, else the earliest DS date, else DMDTC.
    first_sv = (
        pd.DataFrame({"u": sv["USUBJID"], "d": _first_day(sv["SVSTDTC"])}).groupby("u")["d"].min()
    )
    first_ds = ds_frame.groupby("usubjid")["date"].min()
    screening = _first_day(dm["RFICDTC"])
    for earliest in (first_sv, first_ds):
        screening = screening.fillna(pd.to_datetime(dm["USUBJID"].map(earliest.to_dict())))
    screening = screening.fillna(_first_day(dm["DMDTC"]))
    subject = pd.DataFrame(
        {
            "usubjid": dm["USUBJID"],
            "site_id": dm["SITEID"].astype(str),
            "arm_code": dm["ARMCD"],
            "arm": dm["ARM"],
            "armnrs": dm["ARMNRS"],
            "screening_date": screening,
            "enrollment_date": _first_day(dm["RFSTDTC"]),
            "first_cut_id": 1,
        }
    )
    subjects = _classify(subject, ds_frame)
    subjects["treated"] = ~_blank(dm["RFXSTDTC"]) | dm["USUBJID"].isin(set(ex["USUBJID"]))
    ts_value = dict(zip(ts["TSPARMCD"], ts["TSVAL"].astype(str), strict=True))
    sites = pd.DataFrame({"site_id": sorted(subjects["site_id"].unique())})
    sites["activated_on"] = None
    sites["planned_enrollment"] = None
    return Raw(
        subjects=subjects,
        disc=subjects.attrs["disc"],
        findings=pd.DataFrame(columns=["usubjid", "label"]),  # no IE domain
        sites=sites,
        target=int(float(ts_value["PLANSUB"])),
        cutoff=dt.date.fromisoformat(ts_value["DCUTDTC"][:10]),
        planned_start=_date_or_none(ts_value.get("SSTDTC")),
        planned_end=_date_or_none(ts_value.get("SENDTC")),
        cut_ids=[1],
    )


def _raw(kind: str, study_id: str, url: str) -> Raw:
    if kind == "pilot":
        return _sdtm_raw(PILOT)
    return _demo_raw(make_engine(url), study_id)


def _url(kind: str, demo_db_url: str, request: pytest.FixtureRequest) -> str:
    return demo_db_url if kind == "demo" else str(request.getfixturevalue("pilot_db_url"))


def _enrolled(raw: Raw) -> pd.DataFrame:
    return raw.subjects[raw.subjects["population"] == "ENROLLED"]


def _enrollment_days(raw: Raw) -> list[dt.date]:
    dates = _enrolled(raw)["enrollment_date"].dropna()
    return sorted(d.date() for d in dates if d.date() <= raw.cutoff)


def _expected_forecast(raw: Raw) -> AccrualForecast:
    """forecast_completion on the independent dates, with the planned start where it precedes
    every enrollment (else the data contradict it), as the page's method documents."""
    days = _enrollment_days(raw)
    start = raw.planned_start
    if start is None or not days or start > days[0] or start > raw.cutoff:
        start = None
    return forecast_completion(
        days, target=raw.target, cutoff=raw.cutoff, start=start, planned_end=raw.planned_end
    )


@dataclass(frozen=True)
class SiteExpectation:
    """The multicentre forecast computed here from the raw records: each site open from its
    activation date, else its first screening (the registry start for a one-site study); the
    model's own fit and simulation (``fit_rates``, ``predict``, seed 0), as ``forecast_completion``
    is used above."""

    sites_open: int
    rate_per_month: float
    low: dt.date
    median: dt.date
    high: dt.date


def _expected_site_forecast(raw: Raw) -> SiteExpectation | None:
    """None where the page falls back on the pooled model: fewer than two sites open or fewer
    than five enrolled by the cut-off."""
    subjects = raw.subjects
    first_screening = subjects.groupby("site_id")["screening_date"].min()
    openings = {}
    for site in raw.sites.itertuples(index=False):
        activated = _date_or_none(site.activated_on)
        first = first_screening.get(site.site_id)
        first_day = first.date() if isinstance(first, pd.Timestamp) and pd.notna(first) else None
        if activated is None and len(raw.sites) == 1 and raw.planned_start is not None:
            activated = (
                raw.planned_start if first_day is None or raw.planned_start <= first_day else None
            )
        opened = activated or first_day
        if opened is not None and opened <= raw.cutoff:
            openings[site.site_id] = opened
    enrolled_dates = _enrolled(raw).dropna(subset=["enrollment_date"])
    enrolled_dates = enrolled_dates[enrolled_dates["enrollment_date"].dt.date <= raw.cutoff]
    per_site = enrolled_dates.groupby("site_id").size()
    k = np.array([int(per_site.get(s, 0)) for s in openings], dtype=float)
    tau = np.array([(raw.cutoff - d).days + 1 for d in openings.values()], dtype=float)
    if len(openings) < 2 or k.sum() < 5 or raw.target is None or k.sum() >= raw.target:
        return None
    fit = fit_rates(k, tau)
    prediction = predict(fit, k, tau, raw.target - int(k.sum()))
    quantiles = np.quantile(prediction.completion_days, [0.1, 0.5, 0.9])
    low, median, high = (raw.cutoff + dt.timedelta(days=max(1, math.ceil(q))) for q in quantiles)
    return SiteExpectation(
        sites_open=len(openings),
        rate_per_month=float(np.sum((fit.shape + k) / (fit.rate + tau))) * MONTH,
        low=low,
        median=median,
        high=high,
    )


# --- the page ----------------------------------------------------------------------------------


def _page(url: str, study_id: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study_id, "enrollment.py", monkeypatch, timeout=120)


def _metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta or "") for m in at.metric}


def _charts(at: AppTest) -> list[Any]:
    """The page's Vega-Lite charts, in page order."""
    return list(at.get("arrow_vega_lite_chart")) + list(at.get("vega_lite_chart"))


def _chart_data(at: AppTest, index: int) -> pd.DataFrame:
    """The dataset of the ``index``-th Vega-Lite chart on the page, as Streamlit sent it."""
    (dataset,) = _charts(at)[index].proto.datasets
    frame: pd.DataFrame = pa.ipc.open_stream(dataset.data.data).read_pandas()
    return frame


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    (found,) = [d.value for d in at.dataframe if column in d.value.columns]
    return found


# --- 1. the CONSORT flow -----------------------------------------------------------------------


def _svg_boxes(svg: str) -> dict[str, list[list[str]]]:
    """Each box role's boxes (left to right), each as its lines of text."""
    root = ET.fromstring(svg)
    found: dict[str, list[tuple[float, list[str]]]] = {}
    for group in root.iter(f"{SVG}g"):
        role = group.get("class")
        rect = group.find(f"{SVG}rect")
        if role and rect is not None:
            lines = [
                " ".join(p.strip() for p in text.itertext() if p.strip())
                for text in group.iter(f"{SVG}text")
            ]
            found.setdefault(role, []).append((float(rect.attrib["x"]), lines))
    return {role: [lines for _, lines in sorted(boxes)] for role, boxes in found.items()}


@pytest.mark.parametrize(("kind", "study_id"), STUDIES)
def test_consort_flow_matches_the_raw_data(
    kind: str, study_id: str, demo_db_url: str, request: pytest.FixtureRequest
) -> None:
    url = _url(kind, demo_db_url, request)
    raw = _raw(kind, study_id, url)
    with Session(make_engine(url)) as session:
        kwargs: dict[str, Any] = {"study_id": study_id, "scope": None}
        flow = consort_flow(
            funnel=funnel(session, **kwargs),
            by_criterion=failures_by_criterion(session, **kwargs),
            failures_with_reason=failed_subject_counts(session, **kwargs)["with_reason"],
            reasons=discontinuation_reasons(session, **kwargs),
            by_arm=outcome_by_arm(session, **kwargs),
        )
    subjects = raw.subjects
    failed = subjects[subjects["population"] == "SCREEN FAILURE"]
    enrolled = _enrolled(raw)
    assert flow.screened == len(subjects)
    assert flow.screen_failures == len(failed)
    assert flow.enrolled == len(enrolled)
    assert flow.not_allocated == subjects["population"].isin(["IN SCREENING", "NOT ASSIGNED"]).sum()
    # Excluded with reasons by criterion: distinct failed subjects per criterion not met.
    failed_findings = raw.findings[raw.findings["usubjid"].isin(failed["usubjid"])]
    by_criterion = failed_findings.groupby("label")["usubjid"].nunique()
    assert dict(flow.exclusion_reasons) == by_criterion.to_dict()
    without = len(failed) - failed_findings["usubjid"].nunique()
    assert flow.failures_without_reason == without
    if kind == "pilot":
        assert (flow.failures_without_reason, flow.exclusion_reasons) == (52, ())
        assert {a.arm: a.allocated for a in flow.arms} == {
            "Placebo": 86,
            "Xanomeline High Dose": 84,
            "Xanomeline Low Dose": 84,
        }
    # Per arm: allocated, treated, discontinued with reasons, completed, ongoing.
    assert [a.arm for a in flow.arms] == sorted(enrolled["arm"].unique())
    for arm_flow in flow.arms:
        arm = enrolled[enrolled["arm"] == arm_flow.arm]
        assert arm_flow.allocated == len(arm)
        assert arm_flow.treated == arm["treated"].sum()
        assert arm_flow.completed == (arm["status"] == "COMPLETED").sum()
        assert arm_flow.discontinued == (arm["status"] == "DISCONTINUED").sum()
        assert arm_flow.ongoing == (arm["status"] == "ONGOING").sum()
        reasons = raw.disc[raw.disc["arm"] == arm_flow.arm].groupby("reason").size()
        assert dict(arm_flow.discontinuation_reasons) == reasons.to_dict()
    assert sum(a.completed for a in flow.arms) == (enrolled["status"] == "COMPLETED").sum()

    # The diagram carries those counts in the right boxes.
    boxes = _svg_boxes(consort_svg(flow, title=study_id))
    assert boxes["assessed"] == [[f"Assessed for eligibility (n={len(subjects)})"]]
    excluded = " ".join(boxes["excluded"][0])
    assert boxes["excluded"][0][0] == f"Excluded (n={len(failed)})"
    listed = by_criterion.sort_values(ascending=False)
    for n in listed.head(6):
        assert f"(n={n})" in excluded
    if without:
        assert f"(n={without})" in excluded
    assert boxes["enrolled"] == [[f"Enrolled (n={len(enrolled)})"]]
    for arm_flow, allocated, discontinued, completed, ongoing in zip(
        flow.arms,
        boxes["allocated"],
        boxes["discontinued"],
        boxes["completed"],
        boxes["ongoing"],
        strict=True,
    ):
        arm = enrolled[enrolled["arm"] == arm_flow.arm]
        assert allocated[0].endswith(f"(n={len(arm)})")
        assert f"received treatment (n={arm['treated'].sum()})" in allocated
        assert discontinued[0] == f"Discontinued (n={(arm['status'] == 'DISCONTINUED').sum()})"
        arm_reasons = raw.disc[raw.disc["arm"] == arm_flow.arm].groupby("reason").size()
        _check_bullets(discontinued[1:], {str(k): int(v) for k, v in arm_reasons.items()})
        assert completed == [f"Completed (n={(arm['status'] == 'COMPLETED').sum()})"]
        assert ongoing == [f"Ongoing (n={(arm['status'] == 'ONGOING').sum()})"]


def _check_bullets(lines: list[str], expected: dict[str, int]) -> None:
    """Box lines "• REASON (n=k)": each as counted, the rest summed into "other reasons"."""
    shown = {}
    for line in lines:
        reason, n = line.removeprefix("• ").rsplit(" (n=", 1)
        shown[reason] = int(n.rstrip(")"))
    other = shown.pop("other reasons", 0)
    assert all(expected[reason] == n for reason, n in shown.items()), (shown, expected)
    assert other == sum(n for reason, n in expected.items() if reason not in shown)
    assert other == 0 or len(shown) < len(expected)


# --- 2. every number on the page ---------------------------------------------------------------


@pytest.mark.parametrize(("kind", "study_id"), STUDIES)
def test_every_enrollment_page_figure_matches_the_raw_data(
    kind: str,
    study_id: str,
    demo_db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(kind, demo_db_url, request)
    raw = _raw(kind, study_id, url)
    at = _page(url, study_id, monkeypatch)
    _check_page(at, raw)


def _check_page(at: AppTest, raw: Raw) -> None:
    subjects = raw.subjects
    enrolled = _enrolled(raw)
    failures = (subjects["population"] == "SCREEN FAILURE").sum()
    screened = len(subjects)
    shown = _metrics(at)

    # Headline: enrolled / target, and what is new since the cut before the latest.
    since = raw.cut_ids[-2] if len(raw.cut_ids) > 1 else None
    value, delta = shown["Enrolled / target"]
    assert value == f"{len(enrolled)} / {raw.target}"
    new = subjects[subjects["first_cut_id"] > since] if since else subjects.iloc[:0]
    new_enrolled = (new["population"] == "ENROLLED").sum()
    # The cut is named by the study's own count (ids are counted across studies).
    assert delta == (f"+{new_enrolled} since cut {len(raw.cut_ids) - 1}" if since else "")

    value, delta = shown["Screen-failure rate"]
    assert value == f"{100 * failures / screened:.0f}%"
    assert delta == f"{failures} of {screened} screened" + (f" (+{len(new)} new)" if since else "")

    # Enrolled per month in the 30 days up to the cut-off, and overall from the planned start.
    days = pd.Series(pd.to_datetime(_enrollment_days(raw)))
    cut = pd.Timestamp(raw.cutoff)
    recent = ((days > cut - pd.Timedelta(days=30)) & (days <= cut)).sum()
    first = raw.planned_start or days.min().date()
    overall = len(days) / ((raw.cutoff - first).days + 1) * MONTH
    assert shown["Enrolled per month, last 30 days"] == (
        f"{recent / 30 * MONTH:.1f}",
        f"overall {overall:.1f} per month",
    )

    # Projected completion and its interval, and the forecast sentence.
    expected = _expected_forecast(raw)
    stalled = expected.status == "ok" and (raw.cutoff - days.max().date()).days > STALLED_AFTER_DAYS
    value, delta = shown.get("Projected completion") or shown["Target reached"]
    markdown = [m.value for m in at.markdown]
    infos = [i.value for i in at.info]
    if stalled:
        assert (value, delta) == ("–", "recruitment stalled")
        last = days.max().date()
        assert any(
            f"No enrollment since {last:%d %b %Y}, {(raw.cutoff - last).days} days" in i
            for i in infos
        )
    elif expected.status == "ok" and (by_site := _expected_site_forecast(raw)) is not None:
        assert value == f"{by_site.median:%d %b %Y}"
        passed = "projected date passed · " if by_site.median < dt.date.today() else ""
        assert delta == f"{passed}80% interval {by_site.low:%b %Y} – {by_site.high:%b %Y}"
        sentence = next(m for m in markdown if m.startswith("With the "))
        assert sentence.startswith(
            f"With the {by_site.sites_open} sites open recruiting about "
            f"**{by_site.rate_per_month:.1f} enrollments a month** together, the target of "
            f"{raw.target} is projected for **{by_site.median:%d %b %Y}** (80% interval "
            f"{by_site.low:%d %b %Y} to {by_site.high:%d %b %Y})."
        )
        assert any(c.value.startswith("Multicentre model: ") for c in at.caption)
    elif expected.status == "ok":
        assert expected.median_date and expected.lower_date and expected.upper_date
        if raw.target is not None:  # one site or too few: the pooled model, and the page says so
            assert any(c.value.startswith("Pooled model: ") for c in at.caption)
        assert value == f"{expected.median_date:%d %b %Y}"
        interval = f"80% interval {expected.lower_date:%b %Y} – {expected.upper_date:%b %Y}"
        passed = "projected date passed · " if expected.median_date < dt.date.today() else ""
        assert delta == f"{passed}{interval}"
        sentence = (
            f"At the fitted rate of **{len(days) / _observed_days(raw, days):.1f} enrollments "
            f"a month**, the target of {raw.target} is projected for "
            f"**{expected.median_date:%d %b %Y}** (80% interval {expected.lower_date:%d %b %Y} "
            f"to {expected.upper_date:%d %b %Y})."
        )
        if raw.planned_end and raw.planned_end > raw.cutoff:
            assert raw.target is not None
            needed = (raw.target - len(days)) / ((raw.planned_end - raw.cutoff).days / MONTH)
            sentence += (
                f" Finishing by the planned end ({raw.planned_end:%d %b %Y}) needs "
                f"**{needed:.1f} a month** from the cut-off."
            )
        assert sentence in markdown
    elif raw.target is not None and len(days) >= raw.target:
        reached = days.sort_values().iloc[raw.target - 1].date()
        assert "Projected completion" not in shown  # a date reached is not a projection
        assert (value, delta) == (
            f"{reached:%d %b %Y}",
            f"{len(days)} enrolled, target {raw.target}",
        )
        assert f"The target of {raw.target} was reached on {reached.isoformat()}." in infos

    # Funnel chart (the last chart of the page): its data as sent to the browser.
    steps: Any = _chart_data(at, -1).set_index("step").to_dict("index")
    treated = int(enrolled["treated"].sum())
    base = treated if subjects["treated"].any() else len(enrolled)
    eligible = subjects["population"].isin(["ENROLLED", "NOT ASSIGNED"]).sum()
    expected_steps: dict[str, tuple[int, float | None]] = {
        "Screened": (screened, None),
        "Screen failed": (failures, failures / screened),
        "In screening": (
            (subjects["population"] == "IN SCREENING").sum(),
            (subjects["population"] == "IN SCREENING").sum() / screened,
        ),
        "Eligible": (eligible, eligible / screened),
        "Enrolled": (len(enrolled), len(enrolled) / eligible),
        "Treated": (treated, treated / len(enrolled)),
    }
    if not subjects["treated"].any():  # no exposure at all: the step is left out
        del expected_steps["Treated"]
    for status in ("COMPLETED", "DISCONTINUED", "ONGOING"):
        n = int((enrolled["status"] == status).sum())
        expected_steps[status.capitalize()] = (n, n / base)
    assert list(steps) == list(expected_steps)
    for step, (n, share) in expected_steps.items():
        assert steps[step]["subjects"] == n, step
        if share is None:
            assert pd.isna(steps[step]["of_previous"])
        else:
            assert steps[step]["of_previous"] == pytest.approx(share), step
    totals = raw.disc.groupby("reason").size()
    for reason, n in totals.items():
        assert f"{reason} {n}" in steps["Discontinued"]["detail"]

    # Discontinuation reasons table.
    if raw.disc.empty:
        assert "No discontinuations." in [c.value for c in at.caption]
    else:
        table = _frame(at, "Reason")
        got = table.set_index(["Arm", "Reason"])["Subjects"].sort_index()
        assert got.to_dict() == raw.disc.groupby(["arm", "reason"]).size().sort_index().to_dict()

    # Undated subjects: the warning says how many the chart cannot place, or is absent.
    no_screening = subjects["screening_date"].isna().sum()
    no_enrollment = enrolled["enrollment_date"].isna().sum()
    warnings = [w.value for w in at.warning if w.value.startswith("Not on the chart")]
    if no_screening or no_enrollment:
        assert warnings == [
            f"Not on the chart: {plural(no_screening, 'subject')} without a screening date, "
            f"{plural(no_enrollment, 'enrolled subject')} without an enrollment date."
        ]
    else:
        assert warnings == []

    # The accrual chart's caption mentions the planned line only when the chart draws it.
    caption = next(c.value for c in at.caption if c.value.startswith("Screened by screening date"))
    spec = json.loads(_charts(at)[0].proto.spec)
    drawn = any(
        layer.get("mark", {}).get("strokeDash") == [6, 4] for layer in spec.get("layer", [])
    )
    assert drawn == bool(raw.target and raw.planned_start and raw.planned_end)
    assert ("dashed grey line is the planned recruitment" in caption) == drawn

    # Site table: every column of every site.
    site_frames = [d.value for d in at.dataframe if "site_id" in d.value.columns]
    if subjects["site_id"].nunique() <= 1:
        assert site_frames == []
        return
    (table,) = site_frames
    _check_site_table(table.set_index("site_id"), raw)


def _observed_days(raw: Raw, days: pd.Series) -> float:
    """The fitted rate's window in months: from the planned start (where it precedes every
    enrollment) or half a day into the first enrollment's day, to the end of the cut-off day."""
    first = days.min().date()
    if raw.planned_start and raw.planned_start <= first:
        return ((raw.cutoff - raw.planned_start).days + 1) / MONTH
    # Without a start, the first enrollment only opens the window: k - 1 arrivals.
    return float(((raw.cutoff - first).days + 0.5) / MONTH * len(days) / (len(days) - 1))


def _check_site_table(table: pd.DataFrame, raw: Raw) -> None:
    subjects = raw.subjects
    sites = raw.sites.set_index("site_id")
    assert sorted(table.index) == sorted(sites.index)
    for site_id, site in sites.to_dict("index").items():
        rows = subjects[subjects["site_id"] == site_id]
        row = table.loc[str(site_id)]
        enrolled = rows[rows["population"] == "ENROLLED"]
        failures = (rows["population"] == "SCREEN FAILURE").sum()
        assert row["screened"] == len(rows)
        assert row["screen_failures"] == failures
        if len(rows):
            assert row["screen_failure_rate"] == pytest.approx(
                100 * failures / len(rows)
            )  # % points
        assert row["enrolled"] == len(enrolled)
        activated = _date_or_none(site["activated_on"])
        first = rows["screening_date"].min()
        since = activated or (first.date() if pd.notna(first) else None)
        assert row["active_since"] == since
        if since is not None and since <= raw.cutoff:
            per_month = len(enrolled) / ((raw.cutoff - since).days + 1) * MONTH
            assert row["enrolled_per_month"] == pytest.approx(per_month)
        last = enrolled["enrollment_date"].max()
        if pd.notna(last):
            assert row["days_since_last_enrollment"] == (raw.cutoff - last.date()).days
        else:
            assert pd.isna(row["days_since_last_enrollment"])
        target = site["planned_enrollment"]
        if target is not None and target == target and target:
            assert row["share_of_target"] == pytest.approx(100 * len(enrolled) / target)
            assert row["planned_enrollment"] == target
        else:
            assert "share_of_target" not in table.columns or pd.isna(row["share_of_target"])
        if "country" in table.columns and "country" in sites.columns:
            assert row["country"] == country_label(site["country"])  # "Germany (DEU)"


# --- 4. a site row leads to its subjects -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "study_id", "row"), [("demo", "DEMO-MULTI", 3), ("pilot", "CDISCPILOT01", 0)]
)
def test_site_row_lists_the_site_subjects(
    kind: str,
    study_id: str,
    row: int,
    demo_db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _url(kind, demo_db_url, request)
    raw = _raw(kind, study_id, url)
    at = _page(url, study_id, monkeypatch)
    sites = _frame(at, "site_id")
    site_id = str(sites.iloc[row]["site_id"])
    assert not any(m.value.startswith("**Subjects of site") for m in at.markdown)
    at.session_state[SITE_ROWS_KEY] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"**Subjects of site {site_id}**" in [m.value for m in at.markdown]
    listed = _frame(at, "population")
    expected = raw.subjects[raw.subjects["site_id"] == site_id]
    assert len(listed) == len(expected) > 0
    codes = [str(link).rsplit("subject=", 1)[-1] for link in listed["usubjid"]]
    assert sorted(codes) == sorted(expected["usubjid"])
    assert listed["population"].value_counts().to_dict() == (
        expected["population"].value_counts().to_dict()
    )


# --- 3. the CDISC pilot as it stood on 2013-06-30 ----------------------------------------------

TRUNCATED_CUTOFF = dt.date(2013, 6, 30)
TRUNCATED_TARGET = 200


def build_truncated_pilot(folder: Path) -> tuple[str, Path]:
    """The pilot cut back to 2013-06-30 with a target of 200, imported into a new database.
    Returns (database URL, package folder)."""
    package = truncated_package(
        PILOT,
        folder / "package",
        cutoff=TRUNCATED_CUTOFF.isoformat(),
        planned_subjects=TRUNCATED_TARGET,
    )
    url = new_database_url(folder, "pilot-2013")
    engine = make_engine(url)
    import_sdtm(engine, package)
    engine.dispose()
    return url, package


@pytest.fixture(scope="module")
def truncated_pilot(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    if not PILOT.is_dir():
        reference_absent(f"reference data folder {PILOT} is absent")
    return build_truncated_pilot(tmp_path_factory.mktemp("pilot-2013"))


def test_truncated_package_keeps_what_was_known_on_the_cut(
    truncated_pilot: tuple[str, Path],
) -> None:
    _, package = truncated_pilot
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"), encoding="cp1252")
    cut = pd.read_csv(package / "dm.csv", dtype=str, keep_default_na=False)
    randomized = dm[(dm["ARMCD"].str.upper() != "SCRNFAIL") & (dm["RFSTDTC"] != "")]
    by_cut = randomized[randomized["RFSTDTC"] <= "2013-06-30"]
    assert len(by_cut) == 131
    assert sorted(cut.loc[cut["RFSTDTC"] != "", "USUBJID"]) == sorted(by_cut["USUBJID"])
    ts = pd.read_csv(package / "ts.csv", dtype=str, keep_default_na=False)
    values = dict(zip(ts["TSPARMCD"], ts["TSVAL"], strict=True))
    assert (values["DCUTDTC"], values["PLANSUB"]) == ("2013-06-30", "200")
    for name, column in (("ds", "DSSTDTC"), ("ex", "EXSTDTC"), ("sv", "SVSTDTC")):
        frame = pd.read_csv(package / f"{name}.csv", dtype=str, keep_default_na=False)
        assert (frame[column].str[:10] <= "2013-06-30").all()
        assert set(frame["USUBJID"]) <= set(cut["USUBJID"])


def test_truncated_pilot_page_forecasts_the_200th_enrollment(
    truncated_pilot: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, package = truncated_pilot
    # Independent: RFSTDTC of the randomized subjects in the original dm.xpt.
    dm, _ = pyreadstat.read_xport(str(PILOT / "dm.xpt"), encoding="cp1252")
    ts, _ = pyreadstat.read_xport(str(PILOT / "ts.xpt"), encoding="cp1252")
    ts_value = dict(zip(ts["TSPARMCD"], ts["TSVAL"], strict=True))
    randomized = dm[(dm["ARMCD"].str.upper() != "SCRNFAIL") & (dm["RFSTDTC"] != "")]
    all_dates = sorted(dt.date.fromisoformat(v) for v in randomized["RFSTDTC"])
    by_cut = [d for d in all_dates if d <= TRUNCATED_CUTOFF]
    assert len(by_cut) == 131
    actual_200th = all_dates[TRUNCATED_TARGET - 1]
    assert actual_200th == dt.date(2013, 12, 9)
    raw = _sdtm_raw(package)
    assert (raw.cutoff, raw.target) == (TRUNCATED_CUTOFF, TRUNCATED_TARGET)
    expected = _expected_site_forecast(raw)
    assert expected is not None and expected.sites_open == 16
    # The multicentre forecast of the 200th enrollment from the 131 by mid-2013, against what
    # happened: the 80% interval holds the true date.
    assert expected.low <= actual_200th <= expected.high
    # The pooled model (the fallback) on the same dates, for the record in the closing note.
    pooled = forecast_completion(
        by_cut,
        target=TRUNCATED_TARGET,
        cutoff=TRUNCATED_CUTOFF,
        start=dt.date.fromisoformat(ts_value["SSTDTC"]),
        planned_end=dt.date.fromisoformat(ts_value["SENDTC"]),
    )
    assert pooled.lower_date and pooled.upper_date
    assert pooled.lower_date <= actual_200th <= pooled.upper_date

    at = _page(url, "CDISCPILOT01", monkeypatch)
    shown = _metrics(at)
    assert shown["Enrolled / target"][0] == "131 / 200"
    # The pilot's cut-off is in 2013: its projected date has passed, and the metric says so.
    assert expected.median < dt.date.today()
    assert shown["Projected completion"] == (
        f"{expected.median:%d %b %Y}",
        f"projected date passed · 80% interval {expected.low:%b %Y} – {expected.high:%b %Y}",
    )
    sentence = next(m.value for m in at.markdown if m.value.startswith("With the 16 sites open"))
    assert (
        f"projected for **{expected.median:%d %b %Y}** (80% interval "
        f"{expected.low:%d %b %Y} to {expected.high:%d %b %Y})"
    ) in sentence
    notes = [c.value for c in at.caption if c.value.startswith("Multicentre model: ")]
    assert notes and "16 from the first screening" in notes[0]
    # Every other figure of the page too, from the truncated files.
    _check_page(at, _sdtm_raw(package))


# --- 5. the pace the plan needs, when there are too few enrollments to forecast --------------


def test_too_few_to_forecast_still_gives_the_rate_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = copy_of_base()  # 3 subjects, 2 enrolled, target 10, cut-off 2024-06-30
    tables["TS"] += [
        {"STUDYID": "TINY", "TSPARMCD": "SSTDTC", "TSVAL": "2024-01-01"},
        {"STUDYID": "TINY", "TSPARMCD": "SENDTC", "TSVAL": "2024-12-31"},
    ]
    package = write_package(tmp_path / "tiny", tables)
    url = new_database_url(tmp_path, "tiny")
    import_sdtm(make_engine(url), package)
    raw = _sdtm_raw(package)
    at = _page(url, "TINY", monkeypatch)
    days = _enrollment_days(raw)
    assert raw.target is not None and raw.planned_end is not None
    assert len(days) < 5  # too few: no projected date
    assert any(i.value.startswith("Too few enrollments to forecast") for i in at.info)
    assert _metrics(at)["Projected completion"] == ("–", "not enough data")
    remaining = raw.target - len(days)
    needed = remaining / ((raw.planned_end - raw.cutoff).days / MONTH)
    assert (
        f"Finishing by the planned end ({raw.planned_end:%d %b %Y}) needs "
        f"**{needed:.1f} enrollments a month** from the cut-off ({remaining} to go)."
    ) in [m.value for m in at.markdown]
    _check_page(at, raw)


def test_undated_subjects_are_counted_in_the_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = copy_of_base()
    # An enrolled subject without RFSTDTC (ARM given) and a subject with no date at all.
    tables["DM"][2]["RFSTDTC"] = ""
    tables["DM"].append(
        dict(tables["DM"][0], USUBJID="TINY-02-004", SUBJID="004", RFICDTC="", RFSTDTC="")
    )
    package = write_package(tmp_path / "undated", tables)
    url = new_database_url(tmp_path, "undated")
    import_sdtm(make_engine(url), package)
    raw = _sdtm_raw(package)
    assert raw.subjects["screening_date"].isna().sum() == 1
    at = _page(url, "TINY", monkeypatch)
    _check_page(at, raw)
    assert any(w.value.startswith("Not on the chart") for w in at.warning)
