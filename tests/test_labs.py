"""The Labs view on the real CDISC pilot (issue #21) against independent pandas counts written
from the SDTM files alone: the shift tables of ALT, AST, bilirubin and creatinine by arm, the
eDISH points and the potential Hy's law list; site scope and blinding; the page through AppTest.

The independent counts follow the rules the page states (metrics.labs): the baseline is the
LBBLFL = Y record (the last by date); a post-baseline record is not flagged, dated after the
baseline record and on or after the first dose (RFXSTDTC); the worst post-baseline class is HIGH
if any value is high and none low, LOW if any low and none high, LOW AND HIGH if both, else NORMAL;
arms are DM's ACTARM (the safety population: treated subjects)."""

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.charts.labs import box_by_visit, edish_chart
from dashboard.db import make_engine
from dashboard.metrics.blinding import POOLED
from dashboard.views.context import ViewContext
from dashboard.views.labs import LabsOptions, build_labs, hys_law_candidates, shift_display
from dashboard.views.labs_display import labs_display
from tests.conftest import PROJECT_ROOT, SHARED_DATA

STUDY = "CDISCPILOT01"
ARMS = ("Placebo", "Xanomeline High Dose", "Xanomeline Low Dose")
APP = str(PROJECT_ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def pilot_lb(pilot_db_url: str) -> pd.DataFrame:
    """lbch.xpt with each subject's ACTARM, SITEID and first dose date from dm.xpt (after the
    pilot's import fixture, which fails in CI or skips elsewhere where the data is absent)."""
    folder = SHARED_DATA / "sdtm" / "cdiscpilot01"
    lb = pyreadstat.read_xport(str(folder / "lbch.xpt"), encoding="cp1252")[0]
    dm = pyreadstat.read_xport(str(folder / "dm.xpt"), encoding="cp1252")[0]
    dm = dm[dm["RFXSTDTC"].fillna("") != ""]  # treated subjects
    lb = lb.merge(dm[["USUBJID", "ACTARM", "SITEID", "RFXSTDTC"]], on="USUBJID")
    lb["day"] = pd.to_datetime(lb["LBDTC"].str[:10], errors="coerce")
    lb["dose"] = pd.to_datetime(lb["RFXSTDTC"].str[:10], errors="coerce")
    return lb


def _class(row: pd.Series) -> str | None:
    if row["LBNRIND"] in ("LOW", "NORMAL", "HIGH"):
        return str(row["LBNRIND"])
    if pd.isna(row["LBSTRESN"]) or (pd.isna(row["LBSTNRLO"]) and pd.isna(row["LBSTNRHI"])):
        return None
    if row["LBSTRESN"] < row["LBSTNRLO"]:
        return "LOW"
    if row["LBSTRESN"] > row["LBSTNRHI"]:
        return "HIGH"
    return "NORMAL"


def _expected_shift(lb: pd.DataFrame, test: str) -> dict[tuple[str, str, str], int]:
    """{(arm, baseline class, worst class): subjects}, subject by subject."""
    cells: dict[tuple[str, str, str], int] = {}
    for _, records in lb[lb["LBTESTCD"] == test].groupby("USUBJID"):
        flagged = records[records["LBBLFL"] == "Y"].sort_values("day")
        base = flagged.iloc[-1] if len(flagged) else None
        base_class = (_class(base) if base is not None else None) or "MISSING"
        post = records[(records["LBBLFL"] != "Y") & records["day"].notna()]
        if base is not None and pd.notna(base["day"]):
            post = post[post["day"] > base["day"]]
        post = post[post["day"] >= post["dose"]]
        classes = {c for c in (_class(r) for _, r in post.iterrows()) if c}
        if not classes:
            continue
        worst = (
            "LOW AND HIGH"
            if {"LOW", "HIGH"} <= classes
            else "HIGH"
            if "HIGH" in classes
            else "LOW"
            if "LOW" in classes
            else "NORMAL"
        )
        key = (str(records["ACTARM"].iloc[0]), base_class, worst)
        cells[key] = cells.get(key, 0) + 1
    return cells


@pytest.mark.parametrize("test", ["ALT", "AST", "BILI", "CREAT"])
def test_range_shift_by_arm_equals_pandas(
    pilot_db_url: str, pilot_lb: pd.DataFrame, test: str
) -> None:
    expected = _expected_shift(pilot_lb, test)
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY))
        label = view.measurements.loc[view.measurements["test_code"] == test, "label"].iloc[0]
        view = build_labs(session, ViewContext(study_id=STUDY), LabsOptions(measurement=label))
    assert view.range_shift is not None
    cells = view.range_shift.cells
    mine = {
        (str(a), str(b), str(w)): int(n)
        for a, b, w, n in cells[["arm", "baseline", "worst", "n"]].itertuples(index=False)
        if n
    }
    assert mine == expected
    assert sum(expected.values()) > 200  # the comparison covers most of the 254 subjects
    # The table as shown: each arm's Total row is its N, and the percentages are of it.
    shown = shift_display(view.range_shift)
    for arm in ARMS:
        total = shown[(shown["Arm"] == arm) & (shown["Baseline"] == "Total")]["Total"].iloc[0]
        n = sum(v for (a, _, _), v in expected.items() if a == arm)
        assert total == f"{n} (100.0%)"


def test_alt_grade_shift_for_normal_baselines(pilot_db_url: str, pilot_lb: pd.DataFrame) -> None:
    """CTCAE v5 ALT increased, baseline normal: grade 1 above ULN up to 3 x ULN, 2 above 3 up to
    5, 3 above 5 up to 20, 4 above 20 (the ULN is the record's LBSTNRHI)."""
    alt = pilot_lb[pilot_lb["LBTESTCD"] == "ALT"]
    expected: dict[tuple[str, str], int] = {}
    for _, records in alt.groupby("USUBJID"):
        base = records[records["LBBLFL"] == "Y"].sort_values("day")
        if base.empty or not base.iloc[-1]["LBSTRESN"] <= base.iloc[-1]["LBSTNRHI"]:
            continue  # only baselines within the range: grade 0, ULN rule
        post = records[(records["LBBLFL"] != "Y") & (records["day"] > base.iloc[-1]["day"])]
        post = post[(post["day"] >= post["dose"]) & post["LBSTRESN"].notna()]
        if post.empty:
            continue
        ratio = post["LBSTRESN"] / post["LBSTNRHI"]
        grade = int(np.select([ratio > 20, ratio > 5, ratio > 3, ratio > 1], [4, 3, 2, 1], 0).max())
        key = (str(records["ACTARM"].iloc[0]), f"Grade {grade}")
        expected[key] = expected.get(key, 0) + 1
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY))  # opens on ALT
    assert view.options.term == "Alanine aminotransferase increased"
    assert view.grade_shift is not None
    cells = view.grade_shift.cells
    from_grade0 = cells[(cells["baseline"] == "Grade 0") & (cells["n"] > 0)]
    assert {(str(a), str(w)): int(n) for a, w, n in from_grade0[["arm", "worst", "n"]].values} == (
        expected
    )


def _expected_edish(lb: pd.DataFrame) -> pd.DataFrame:
    on = lb[(lb["LBBLFL"] != "Y") & (lb["day"] >= lb["dose"]) & lb["LBSTRESN"].notna()]
    on = on.assign(ratio=on["LBSTRESN"] / on["LBSTNRHI"])
    peak = on.pivot_table(index="USUBJID", columns="LBTESTCD", values="ratio", aggfunc="max")
    points = pd.DataFrame(
        {"transaminase": peak[["ALT", "AST"]].max(axis=1), "bili": peak["BILI"]}
    ).dropna()
    return points


def test_edish_points_and_hys_law_equal_pandas(pilot_db_url: str, pilot_lb: pd.DataFrame) -> None:
    expected = _expected_edish(pilot_lb)
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY))
        from_summary = hys_law_candidates(session, ViewContext(study_id=STUDY))
    points = view.edish.set_index("usubjid")
    assessable = points[points["peak_transaminase_uln"].notna() & points["peak_bili_uln"].notna()]
    assert sorted(assessable.index) == sorted(expected.index)
    assert np.allclose(
        assessable.loc[expected.index, "peak_transaminase_uln"], expected["transaminase"]
    )
    assert np.allclose(assessable.loc[expected.index, "peak_bili_uln"], expected["bili"])
    cases = sorted(expected[(expected["transaminase"] >= 3) & (expected["bili"] >= 2)].index)
    assert cases == ["01-705-1186"]
    assert list(view.hys_law) == cases == from_summary
    temple = expected[(expected["transaminase"] >= 3) & (expected["bili"] < 2)]
    assert sorted(points.index[points["quadrant"] == "Temple's corollary"]) == sorted(temple.index)


def test_site_scope_and_blinding(pilot_db_url: str) -> None:
    with Session(make_engine(pilot_db_url)) as session:
        other_site = build_labs(session, ViewContext(study_id=STUDY, scope=("701",)))
        blinded = build_labs(session, ViewContext(study_id=STUDY, shows_arms=False))
    assert other_site.hys_law == ()
    assert set(other_site.edish["site_id"]) == {"701"}
    assert blinded.range_shift is not None
    assert blinded.range_shift.arms == [POOLED]
    assert set(blinded.incidence["arm"]) == {POOLED}
    assert set(blinded.edish["arm"]) == {POOLED}
    assert not any(arm in str(shift_display(blinded.range_shift)) for arm in ARMS)
    assert blinded.blinding_note and "pooled" in blinded.blinding_note


def test_vital_signs_shift_is_per_measurement(pilot_db_url: str) -> None:
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY), LabsOptions(domain="VS"))
    labels = set(view.measurements["label"])
    assert {
        "Diastolic Blood Pressure (mmHg), SUPINE, AFTER LYING DOWN FOR 5 MINUTES",
        "Diastolic Blood Pressure (mmHg), STANDING, AFTER STANDING FOR 1 MINUTE",
        "Diastolic Blood Pressure (mmHg), STANDING, AFTER STANDING FOR 3 MINUTES",
    } <= labels
    assert view.options.measurement == (
        "Systolic Blood Pressure (mmHg), SUPINE, AFTER LYING DOWN FOR 5 MINUTES"
    )
    assert view.range_shift is not None and view.range_shift.cells["n"].sum() > 200
    assert view.edish.empty and view.hys_law == ()


def test_page_shows_the_view(pilot_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", pilot_db_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["study"] = STUDY
    at.run()
    at.switch_page(str(PROJECT_ROOT / "pages" / "labs.py")).run()
    assert not at.exception, at.exception
    assert [h.value for h in at.title] == ["Labs"]
    subheaders = [h.value for h in at.subheader]
    assert subheaders[:2] == ["Shift from baseline", "Abnormal post-baseline values by arm"]
    assert "Liver: eDISH and potential Hy's law" in subheaders
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Potential Hy's law cases"] == "1"
    assert metrics["Subjects with values"] == "254"
    shift = at.dataframe[0].value
    assert list(shift.columns[:2]) == ["Arm", "Baseline"]
    # Vital signs: the same page, per measurement.
    at.segmented_control(key="labs_domain").set_value("VS").run()
    assert not at.exception, at.exception
    assert str(at.selectbox(key="labs_measurement").value).startswith("Systolic Blood Pressure")
    assert "Liver: eDISH and potential Hy's law" not in [h.value for h in at.subheader]


def test_alt_boxes_by_visit_equal_pandas(pilot_db_url: str, pilot_lb: pd.DataFrame) -> None:
    # The values by visit: ALT's scheduled visits (VISITNUM a whole number) by actual arm.
    alt = pilot_lb[(pilot_lb["LBTESTCD"] == "ALT") & pilot_lb["LBSTRESN"].notna()]
    expected = _box_stats_of(alt)
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY))  # opens on ALT
    boxes = view.boxes.set_index(["visit", "arm"])[list(expected.columns)]
    pd.testing.assert_frame_equal(
        boxes.sort_index(), expected, check_dtype=False, check_exact=False
    )
    assert view.unscheduled == len(alt) - int((alt["VISITNUM"] % 1 == 0).sum()) > 0
    # In visit number order, as the chart's x axis.
    numbers = view.boxes.groupby("visit", sort=False)["visit_number"].first()
    assert numbers.is_monotonic_increasing


def _box_stats_of(values: pd.DataFrame) -> pd.DataFrame:
    scheduled = values[values["VISITNUM"] % 1 == 0]
    found: pd.DataFrame = scheduled.groupby(["VISIT", "ACTARM"])["LBSTRESN"].agg(  # type: ignore[assignment]
        n="size",
        lowest="min",
        q1=lambda v: np.percentile(v, 25),
        median="median",
        q3=lambda v: np.percentile(v, 75),
        highest="max",
    )
    found.index.names = ["visit", "arm"]
    return found.sort_index()


@pytest.mark.parametrize("site", ["701", "710"])
def test_a_site_scope_equals_pandas_on_that_site(
    pilot_db_url: str, pilot_lb: pd.DataFrame, site: str
) -> None:
    """A site's view reads its subjects' rows by key (``queries.labs._in_population``): its ALT
    shift, its subjects with values and its ALT boxes equal pandas on that site's records."""
    mine = pilot_lb[pilot_lb["SITEID"] == site]
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY, scope=(site,)))  # opens on ALT
    assert view.options.measurement is not None and view.options.measurement.startswith("Alanine")
    assert view.range_shift is not None
    cells = view.range_shift.cells
    shift = {
        (str(a), str(b), str(w)): int(n)
        for a, b, w, n in cells[["arm", "baseline", "worst", "n"]].itertuples(index=False)
        if n
    }
    assert shift == _expected_shift(mine, "ALT") != {}
    subjects = {m.label: m.value for m in view.metrics}["Subjects with values"]
    assert subjects == mine["USUBJID"].nunique() > 0
    alt = mine[(mine["LBTESTCD"] == "ALT") & mine["LBSTRESN"].notna()]
    boxes = view.boxes.set_index(["visit", "arm"])
    expected = _box_stats_of(alt)
    pd.testing.assert_frame_equal(
        boxes[list(expected.columns)].sort_index(), expected, check_dtype=False, check_exact=False
    )


def test_the_display_is_the_views_tables_and_charts(pilot_db_url: str) -> None:
    """What the page draws (``labs_display``, cached with the view) is the view's shift tables as
    ``shift_display`` lays them out and its charts' specs; None where there is nothing to draw."""
    with Session(make_engine(pilot_db_url)) as session:
        view = build_labs(session, ViewContext(study_id=STUDY))
        vitals = build_labs(session, ViewContext(study_id=STUDY), LabsOptions(domain="VS"))
    shown = labs_display(view)
    assert view.range_shift is not None and view.grade_shift is not None
    assert shown.range_shift is not None and shown.grade_shift is not None
    pd.testing.assert_frame_equal(shown.range_shift, shift_display(view.range_shift))
    pd.testing.assert_frame_equal(shown.grade_shift, shift_display(view.grade_shift))
    assert shown.edish == edish_chart(view.edish, STUDY).to_dict()
    assert shown.boxes == box_by_visit(view.boxes, str(view.options.measurement)).to_dict()
    assert not shown.edish_shaded  # 254 subjects: every one a dot
    vital = labs_display(vitals)
    assert vital.edish is None and not vital.edish_shaded  # no eDISH for vital signs
    assert vital.boxes is not None
