"""The Subject page's "Lab and vital signs over time" section (issue #21 item 5): one subject's
values of a measurement against its normal range, with the subject's AEs beneath on the same
study days. Checked on the CDISC pilot against the SDTM datasets read here with pyreadstat, for
a viewer limited to other sites and for a blinded viewer."""

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from dashboard import access
from dashboard.db import make_engine, session_scope
from dashboard.metrics.blinding import POOLED
from dashboard.metrics.labs import VITAL_SIGN_LIMITS, with_measurement
from dashboard.ui.subject_labs import COLUMN_WIDTH, plot_width
from dashboard.views.context import ViewContext
from dashboard.views.subject import (
    AE_SPAN_COLUMNS,
    SubjectLabs,
    ae_spans,
    lab_values,
    out_of_range_sentence,
)
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database
from tests.test_blinding import ARM_NAMES, AUTH_SECRETS, rendered_arm_names

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PILOT = "CDISCPILOT01"
# The pilot's one potential Hy's law case: ALT high at every visit, one AE (hyperbilirubinaemia).
HYS_LAW_SUBJECT = "01-705-1186"
# A screen failure: no LB nor VS record in the pilot (checked below against the files).
SCREEN_FAILURE = "01-701-1057"
ALT_LABEL = "Alanine Aminotransferase (U/L)"
SUPINE_SYSBP = "Systolic Blood Pressure (mmHg), SUPINE, AFTER LYING DOWN FOR 5 MINUTES"
SECTION = "Lab and vital signs over time"
BLINDED = "blinded.labs.sponsor@pharma.example"


def _xpt(shared_data: Path, name: str, usubjid: str) -> pd.DataFrame:
    import pyreadstat

    frame, _ = pyreadstat.read_xport(str(shared_data / "sdtm" / "cdiscpilot01" / f"{name}.xpt"))
    return frame[frame["USUBJID"] == usubjid].reset_index(drop=True)


def _alt_rows(shared_data: Path, usubjid: str) -> pd.DataFrame:
    """The subject's ALT rows of lbch.xpt with a numeric value, by date."""
    lb = _xpt(shared_data, "lbch", usubjid)
    alt = lb[(lb["LBTESTCD"] == "ALT") & lb["LBSTRESN"].notna()]
    return alt.sort_values(["LBDTC", "LBDY"], kind="stable").reset_index(drop=True)


def _read(db_url: str, ctx: ViewContext, usubjid: str) -> SubjectLabs:
    with Session(make_engine(db_url)) as session:
        return lab_values(session, ctx, usubjid)


def _open(db_url: str, monkeypatch: pytest.MonkeyPatch, usubjid: str) -> AppTest:
    monkeypatch.setenv("DATABASE_URL", db_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["study"] = PILOT
    at.query_params["subject"] = usubjid
    at.run()
    at.switch_page("../pages/subject.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list[Any]:
    return list(at.get("arrow_vega_lite_chart")) + list(at.get("vega_lite_chart"))


def _values_chart(at: AppTest) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """The section's chart (the one whose first panel has a normal-range band): its spec and
    its datasets by name, as the page sent them."""
    for chart in _charts(at):
        spec = json.loads(chart.proto.spec)
        data = {
            d.name: dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data)
            for d in chart.proto.datasets
        }
        if any("band_low" in frame.columns for frame in data.values()):
            return spec, data
    raise AssertionError("no values-over-time chart on the page")


def _sentence(at: AppTest) -> str:
    (found,) = [m.value for m in at.markdown if "Outside the normal range" in m.value]
    return str(found)


def test_alt_series_equals_the_lbch_rows(pilot_db_url: str, shared_data: Path) -> None:
    labs = _read(pilot_db_url, ViewContext(PILOT), HYS_LAW_SUBJECT)
    assert labs.default_measurement == ALT_LABEL  # ALT first, where the subject has it
    series = labs.series(ALT_LABEL)
    expected = _alt_rows(shared_data, HYS_LAW_SUBJECT)
    assert len(expected) == 6  # screening and five on treatment
    assert series["value"].tolist() == expected["LBSTRESN"].tolist()
    assert series["study_day"].tolist() == expected["LBDY"].tolist()
    assert series["low"].tolist() == expected["LBSTNRLO"].tolist()
    assert series["high"].tolist() == expected["LBSTNRHI"].tolist()
    assert series["visit"].tolist() == expected["VISIT"].tolist()
    assert series["is_baseline"].tolist() == expected["LBBLFL"].eq("Y").tolist()
    assert series["range_class"].tolist() == expected["LBNRIND"].tolist()


def test_vital_signs_read_against_the_reference_limits(
    pilot_db_url: str, shared_data: Path
) -> None:
    labs = _read(pilot_db_url, ViewContext(PILOT), HYS_LAW_SUBJECT)
    series = labs.series(SUPINE_SYSBP)
    vs = _xpt(shared_data, "vs", HYS_LAW_SUBJECT)
    supine = vs[(vs["VSTESTCD"] == "SYSBP") & (vs["VSPOS"] == "SUPINE") & vs["VSSTRESN"].notna()]
    supine = supine.sort_values(["VSDTC", "VSDY"], kind="stable")
    assert series["value"].tolist() == supine["VSSTRESN"].tolist()
    ((low, high),) = [(lo, hi) for code, _, lo, hi in VITAL_SIGN_LIMITS if code == "SYSBP"]
    assert set(series["low"]) == {low} and set(series["high"]) == {high}
    above = int((supine["VSSTRESN"] > high).sum())
    below = int((supine["VSSTRESN"] < low).sum())
    assert out_of_range_sentence(series) == (
        f"Outside the normal range: {above + below} of {len(supine)} values "
        f"({above} high, {below} low)."
    )


def test_page_states_the_high_values_and_draws_the_aes_beneath(
    pilot_db_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(pilot_db_url, monkeypatch, HYS_LAW_SUBJECT)
    headers = [h.value for h in at.subheader]
    # Below the baseline values, above the listings.
    assert (
        headers.index("Baseline values") < headers.index(SECTION) < headers.index("Adverse events")
    )
    (picker,) = [s for s in at.selectbox if s.label == "Measurement"]
    assert picker.value == ALT_LABEL
    alt = _alt_rows(shared_data, HYS_LAW_SUBJECT)
    high = int(alt["LBNRIND"].eq("HIGH").sum())
    low = int(alt["LBNRIND"].eq("LOW").sum())
    found = re.fullmatch(
        r"Outside the normal range: (\d+) of (\d+) values? \((\d+) high, (\d+) low\)\.",
        _sentence(at),
    )
    assert found is not None, _sentence(at)
    assert [int(g) for g in found.groups()] == [high + low, len(alt), high, low]

    spec, data = _values_chart(at)
    values_panel, ae_panel = spec["vconcat"]
    assert spec["resolve"] == {"scale": {"x": "shared"}}  # one study-day axis for both
    drawn = next(frame for frame in data.values() if "band_low" in frame.columns)
    assert drawn["value"].tolist() == alt["LBSTRESN"].tolist()
    aes = data[ae_panel["data"]["name"]]
    ae = _xpt(shared_data, "ae", HYS_LAW_SUBJECT)
    assert sorted(aes["term"]) == sorted(ae["AEDECOD"])
    assert aes["start_day"].tolist() == sorted(ae["AESTDY"].tolist())
    assert ae_panel["encoding"]["x"]["field"] == "start_day"
    assert values_panel["layer"][0]["encoding"]["x"]["field"] == "study_day"
    # Drawn at its own width, the AE terms' room left of the plot (Streamlit's stretch would
    # give each plot the whole column and push the last days past its edge).
    assert values_panel["width"] == ae_panel["width"] == plot_width(aes["term"])


def test_picking_a_vital_sign_redraws_the_section(
    pilot_db_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(pilot_db_url, monkeypatch, HYS_LAW_SUBJECT)
    (picker,) = [s for s in at.selectbox if s.label == "Measurement"]
    picker.set_value(SUPINE_SYSBP).run()
    assert not at.exception, [e.value for e in at.exception]
    vs = _xpt(shared_data, "vs", HYS_LAW_SUBJECT)
    supine = vs[(vs["VSTESTCD"] == "SYSBP") & (vs["VSPOS"] == "SUPINE")]
    assert f" of {len(supine)} values (" in _sentence(at)
    _, data = _values_chart(at)
    drawn = next(frame for frame in data.values() if "band_low" in frame.columns)
    assert sorted(drawn["value"]) == sorted(supine["VSSTRESN"])


def test_subject_without_labs_shows_the_note(
    pilot_db_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("lbch", "lbhe", "lbur", "vs"):
        assert _xpt(shared_data, name, SCREEN_FAILURE).empty
    labs = _read(pilot_db_url, ViewContext(PILOT), SCREEN_FAILURE)
    assert labs.measurements.empty and labs.default_measurement is None
    at = _open(pilot_db_url, monkeypatch, SCREEN_FAILURE)
    assert SECTION in [h.value for h in at.subheader]
    assert any(
        "No laboratory (LB) or vital-sign (VS) value of this subject" in i.value for i in at.info
    )
    assert not [m.value for m in at.markdown if "Outside the normal range" in m.value]
    assert not [s for s in at.selectbox if s.label == "Measurement"]


def test_a_subject_outside_the_viewers_sites_gets_nothing(pilot_db_url: str) -> None:
    everyone = _read(pilot_db_url, ViewContext(PILOT), HYS_LAW_SUBJECT)
    assert not everyone.records.empty and not everyone.adverse_events.empty
    assert set(everyone.records["site_id"]) == {"705"}
    other_sites = _read(pilot_db_url, ViewContext(PILOT, scope=("701", "704")), HYS_LAW_SUBJECT)
    assert other_sites.records.empty and other_sites.measurements.empty
    assert other_sites.adverse_events.empty


@pytest.fixture(scope="module")
def blinded_db_url(pilot_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pilot (TS TBLIND: double blind) with a sponsor who is not unblinded (a copy: sign-ins
    write to it)."""
    url = copy_database(pilot_db_url, tmp_path_factory.mktemp("subject-labs"), "subjectlabs")
    engine = make_engine(url)
    with session_scope(engine) as session:
        access.add_user(session, email=BLINDED, role=access.SPONSOR, unblinded=False, actor="tests")
    engine.dispose()
    return url


def test_a_blinded_viewer_sees_the_values_without_an_arm(
    pilot_db_url: str,
    blinded_db_url: str,
    shared_data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unblinded = _read(pilot_db_url, ViewContext(PILOT), HYS_LAW_SUBJECT)
    blinded = _read(pilot_db_url, ViewContext(PILOT, shows_arms=False), HYS_LAW_SUBJECT)
    assert set(unblinded.records["arm"]) == {"Placebo"}
    assert set(blinded.records["arm"]) == {POOLED}
    pd.testing.assert_frame_equal(
        blinded.series(ALT_LABEL).drop(columns="arm"),
        unblinded.series(ALT_LABEL).drop(columns="arm"),
    )

    monkeypatch.setenv("DATABASE_URL", blinded_db_url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": BLINDED}
    at.query_params["study"] = PILOT
    at.query_params["subject"] = HYS_LAW_SUBJECT
    at.run()
    at.switch_page("../pages/subject.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.session_state["_page_context"].shows_arms
    alt = _alt_rows(shared_data, HYS_LAW_SUBJECT)
    outside = int(alt["LBNRIND"].isin(["HIGH", "LOW"]).sum())
    assert _sentence(at).startswith(f"Outside the normal range: {outside} of {len(alt)} values")
    _, data = _values_chart(at)
    drawn = next(frame for frame in data.values() if "band_low" in frame.columns)
    assert drawn["value"].tolist() == alt["LBSTRESN"].tolist()
    assert rendered_arm_names(at) == {}, ARM_NAMES


def test_ae_spans_on_the_study_day_axis() -> None:
    """Hand-derived: day 1 is 10 Jan; no day 0; an ongoing AE runs to the last lab day."""
    day_one = dt.date(2024, 1, 10)
    aes = pd.DataFrame(
        {
            "term": ["Headache", "Rash", "Nausea", "Cough"],
            "decoded_term": ["HEADACHE", None, "NAUSEA", "COUGH"],
            "start_day": [3, None, None, None],
            "start_date": [dt.date(2024, 1, 12), dt.date(2024, 1, 9), None, dt.date(2024, 1, 20)],
            "end_date": [dt.date(2024, 1, 14), dt.date(2024, 1, 10), None, None],
        }
    )
    spans = ae_spans(aes, day_one, last_day=30.0)
    assert list(spans.columns) == AE_SPAN_COLUMNS
    # Rash: 9 Jan is day -1 (no day 0); Nausea has no onset and is left out.
    assert spans["term"].tolist() == ["Rash", "HEADACHE", "COUGH"]
    assert spans["start_day"].tolist() == [-1.0, 3.0, 11.0]
    assert spans["end_day"].tolist() == [1.0, 5.0, 30.0]
    assert spans["ongoing"].tolist() == [False, False, True]
    # Without any lab day an ongoing AE ends where it starts.
    assert ae_spans(aes, day_one, last_day=None)["end_day"].tolist() == [1.0, 5.0, 11.0]


def test_the_ae_spans_of_a_pilot_subject_equal_ae_xpt(pilot_db_url: str, shared_data: Path) -> None:
    usubjid = "01-701-1023"  # three AEs, one without an end date
    labs = _read(pilot_db_url, ViewContext(PILOT), usubjid)
    ae = _xpt(shared_data, "ae", usubjid).sort_values("AESTDY", kind="stable")
    spans = labs.adverse_events
    assert spans["term"].tolist() == ae["AEDECOD"].tolist()
    assert spans["start_day"].tolist() == ae["AESTDY"].tolist()
    ended = ae["AEENDY"].notna().to_numpy()
    assert spans["end_day"][ended].tolist() == ae["AEENDY"][ended].tolist()
    assert spans["ongoing"].tolist() == (~ended).tolist()
    assert (spans["end_day"][~ended] == labs.records["study_day"].max()).all()
    # Beneath one measurement an ongoing AE runs to that measurement's last value instead.
    alt_days = _alt_rows(shared_data, usubjid)["LBDY"]
    assert alt_days.max() < labs.records["study_day"].max()  # VS goes on after the last ALT
    beside = labs.aes_beside(labs.series(ALT_LABEL))
    assert beside["end_day"][ended].tolist() == ae["AEENDY"][ended].tolist()
    assert (beside["end_day"][~ended] == alt_days.max()).all()


def _series(values: list[float], low: float | None, high: float | None) -> pd.DataFrame:
    records = pd.DataFrame(
        {
            "usubjid": "S-1",
            "site_id": "1",
            "arm": "A",
            "domain": "LB",
            "test_code": "ALT",
            "test": "Alanine Aminotransferase",
            "unit": "U/L",
            "specimen": None,
            "location": None,
            "position": None,
            "timepoint": None,
            "value": values,
            "low": low,
            "high": high,
            "indicator": None,
            "is_baseline": False,
            "date": pd.date_range("2024-01-01", periods=len(values)),
            "study_day": range(1, len(values) + 1),
            "visit": "V",
            "visit_number": 1.0,
        }
    )
    labelled = with_measurement(records)
    labs = SubjectLabs("S-1", labelled, pd.DataFrame(), pd.DataFrame(), 0, 0)
    return labs.series(str(labelled["measurement"].iloc[0]))


def test_out_of_range_sentence_hand_counted() -> None:
    assert (
        out_of_range_sentence(_series([5.0, 20.0, 50.0, 60.0], 10.0, 40.0))
        == "Outside the normal range: 3 of 4 values (2 high, 1 low)."
    )
    assert (
        out_of_range_sentence(_series([20.0], 10.0, 40.0))
        == "Outside the normal range: 0 of 1 value (0 high, 0 low)."
    )
    assert out_of_range_sentence(_series([5.0, 20.0, float("nan")], 10.0, None)) == (
        "Outside the normal range: 1 of 2 values (0 high, 1 low)."
    )
    assert out_of_range_sentence(_series([20.0, 30.0], None, None)) == (
        "2 values, none with a normal range: none can be called low or high."
    )


def test_plot_width_leaves_room_for_the_ae_terms() -> None:
    # 19 characters at 7 px, with 16 px of padding: 149 px left of the plot.
    assert plot_width(pd.Series(["HYPERBILIRUBINAEMIA"])) == COLUMN_WIDTH - 149
    # A term longer than the axis shows is cut at 240 px.
    assert plot_width(pd.Series(["X" * 60, "Y"])) == COLUMN_WIDTH - 256
    # Short terms: the values' own axis is the wider.
    assert plot_width(pd.Series(["RASH"])) == COLUMN_WIDTH - 70
