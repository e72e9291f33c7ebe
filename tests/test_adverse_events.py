"""Adverse events: the rules of DESIGN.md, the query layer and the page, against independent counts.

The reference figures come from the SDTM files themselves, read with pyreadstat and counted with
plain pandas here (never through the importer or the query layer): the CDISC pilot (961 AEs in 225
subjects, 3 serious; AESEV 605/316/40; by ACTARM 69/70/86; top PT PRURITUS) and the SDTM-MSG sample
(74 AEs in 13 subjects, 4 serious, AEDECOD blank). The seed demo's figures come from the tuples it
is built from (``dashboard.demo.SEED_ADVERSE_EVENTS``).
"""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyreadstat
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.charts.adverse_events import (
    LEVEL_SELECTION,
    SOC_SELECTION,
    soc_incidence_chart,
    timeline_chart,
    worst_level_chart,
)
from dashboard.db import make_engine
from dashboard.demo import SEED_ADVERSE_EVENTS
from dashboard.importers.run import import_sdtm
from dashboard.metrics.ae_listing import derive_listing, listing_table
from dashboard.metrics.ae_rules import (
    NOT_RELATED,
    RELATED,
    UNKNOWN,
    classify_relationship,
    is_treatment_emergent,
)
from dashboard.metrics.ae_tables import (
    ALL_TERMS,
    NO_AE,
    arm_columns,
    display_incidence,
    incidence_table,
    n_percent,
    relationship_values,
    soc_incidence,
    summary_table,
    worst_level_table,
)
from dashboard.metrics.ae_timeline import timeline_frame
from dashboard.metrics.study_days import study_day
from dashboard.queries.adverse_events import (
    adverse_event_listing,
    count_adverse_events,
    discontinuations_from_ds,
    events_by_source_value,
    incidence_by_term,
    safety_population,
    safety_summary,
    subjects_by_worst_level,
    subjects_with_adverse_events,
)
from dashboard.results.adverse_events import ENROLLED_BASIS, TREATED, UNCODED_SOC
from dashboard.ui.ae_drilldown import soc_expander_key
from dashboard.ui.ae_picks import (
    EventPick,
    incidence_cell_pick,
    level_point_pick,
    soc_point_pick,
    summary_cell_pick,
)
from dashboard.ui.selection import latest_pick
from tests.conftest import PROJECT_ROOT, SHARED_DATA, open_study_page, reference_absent
from tests.databases import new_database_url

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PILOT = "CDISCPILOT01"
SEED = "NCT06466850"
MULTI = "DEMO-MULTI"
PILOT_DIR = SHARED_DATA / "sdtm" / "cdiscpilot01"
MSG_DIR = SHARED_DATA / "sdtm" / "cdisc_msg_v2"


def _xpt(folder: Path, name: str) -> pd.DataFrame:
    if not folder.is_dir():
        reference_absent(f"reference data folder {folder} is absent")
    frame, _meta = pyreadstat.read_xport(str(folder / f"{name}.xpt"))
    return frame


@pytest.fixture(scope="module")
def pilot_raw() -> dict[str, pd.DataFrame]:
    """The pilot's AE, DM and DS as the files hold them, with ACTARM and RFXSTDTC on every AE."""
    ae, dm, ds = (_xpt(PILOT_DIR, n) for n in ("ae", "dm", "ds"))
    return {
        "ae": ae.merge(dm[["USUBJID", "ACTARM", "RFXSTDTC"]], on="USUBJID"),
        "dm": dm,
        "ds": ds,
    }


@pytest.fixture(scope="module")
def pilot(pilot_db_url: str) -> Iterator[Session]:
    engine = make_engine(pilot_db_url)
    with Session(engine) as session:
        yield session
    engine.dispose()


# -- the rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "group"),
    [
        ("Y", RELATED),
        ("RELATED", RELATED),
        ("DEFINITE", RELATED),
        ("PROBABLE", RELATED),
        ("PROBABLY RELATED", RELATED),
        ("POSSIBLE", RELATED),
        ("POSSIBLY RELATED", RELATED),
        (" possible ", RELATED),  # trimmed, any case
        ("N", NOT_RELATED),
        ("NOT RELATED", NOT_RELATED),
        ("NONE", NOT_RELATED),
        ("UNLIKELY", NOT_RELATED),
        ("UNLIKELY RELATED", NOT_RELATED),
        ("REMOTE", NOT_RELATED),
        ("", UNKNOWN),
        (None, UNKNOWN),
        ("MAYBE", UNKNOWN),
        ("NOT ASSESSED", UNKNOWN),
    ],
)
def test_relationship_classification(value: str | None, group: str) -> None:
    assert classify_relationship(value) == group


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2024, 1, 8), -2),
        (dt.date(2024, 1, 9), -1),  # the day before the reference: there is no day 0
        (dt.date(2024, 1, 10), 1),
        (dt.date(2024, 1, 11), 2),
        (dt.date(2024, 3, 1), 52),
        (None, None),
    ],
)
def test_study_day_has_no_day_zero(day: dt.date | None, expected: int | None) -> None:
    assert study_day(day, dt.date(2024, 1, 10)) == expected


@pytest.mark.parametrize(
    ("start_dtc", "dose_dtc", "emergent"),
    [
        ("2024-01-09", "2024-01-10", False),
        ("2024-01-10", "2024-01-10", True),  # the day of the first dose
        ("2024-01-10T07:00", "2024-01-10T09:00", True),  # same day: dates are compared
        ("2024-01-11", "2024-01-10", True),
        ("2024-01", "2024-01-10", True),  # partial, in the month of the dose: cannot be ruled out
        ("2023-12", "2024-01-10", False),
        ("2024", "2024-03-01", True),
        ("2023", "2024-03-01", False),
        (None, "2024-01-10", True),  # unknown onset: conservative
        ("2024-01-11", None, False),  # never dosed
    ],
)
def test_treatment_emergent_rule(
    start_dtc: str | None, dose_dtc: str | None, emergent: bool
) -> None:
    def first_day(text: str | None) -> dt.date | None:
        if text is None:
            return None
        parts = [int(p) for p in text[:10].split("-")] + [1, 1]
        return dt.date(parts[0], parts[1], parts[2])

    got = is_treatment_emergent(start_dtc, first_day(start_dtc), dose_dtc, first_day(dose_dtc))
    assert got is emergent


def test_n_percent_and_arm_columns() -> None:
    assert n_percent(69, 86) == "69 (80.2%)"
    assert n_percent(69, 86, 237) == "69 (80.2%) [237]"
    assert n_percent(0, 0) == "0"
    population = pd.DataFrame({"arm": ["A", "B"], "subjects": [3, 5]})
    assert [(c.arm, c.n, c.label) for c in arm_columns(population)] == [
        ("A", 3, "A (N=3)"),
        ("B", 5, "B (N=5)"),
        (None, 8, "Total (N=8)"),
    ]
    single = pd.DataFrame({"arm": ["Exosome"], "subjects": [20]})
    assert [c.label for c in arm_columns(single)] == ["Exosome (N=20)"]  # no repeated total


def _tiny_incidence() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    population = pd.DataFrame({"arm": ["A", "B"], "subjects": [10, 20]})
    by_pt = pd.DataFrame(
        {
            "arm": ["A", "B", "A", "B", "B"],
            "soc": ["S1", "S1", "S1", "S2", "S1"],
            "pt": ["P1", "P1", "P2", "P3", "P4"],
            "subjects": [1, 1, 2, 3, 4],
            "events": [1, 2, 2, 3, 5],
        }
    )
    by_soc = pd.DataFrame(
        {
            "arm": ["A", "B", "B"],
            "soc": ["S1", "S1", "S2"],
            "subjects": [3, 4, 3],
            "events": [3, 7, 3],
        }
    )
    return by_pt, by_soc, population


def test_incidence_table_hierarchy_order_and_threshold_boundary() -> None:
    by_pt, by_soc, population = _tiny_incidence()
    table = incidence_table(by_pt, by_soc, population)
    # SOCs by subjects over all arms (S1: 7, S2: 3), each followed by its PTs, most frequent first
    # (P1 and P2 both have 2 subjects: P1 has more events).
    assert list(zip(table["level"], table["soc"], table["pt"].fillna(""), strict=True)) == [
        ("SOC", "S1", ""),
        ("PT", "S1", "P4"),
        ("PT", "S1", "P1"),
        ("PT", "S1", "P2"),
        ("SOC", "S2", ""),
        ("PT", "S2", "P3"),
    ]
    soc_row = table.iloc[0]
    assert soc_row["n:Total (N=30)"] == 7 and soc_row["events:Total (N=30)"] == 10
    # P2: 2 of arm A's 10 = 20%; P4: 4 of B's 20 = 20%; P3: 15%; P1: 10% in A, 5% in B.
    assert set(incidence_table(by_pt, by_soc, population, threshold=20)["pt"].dropna()) == {
        "P2",
        "P4",
    }
    assert set(incidence_table(by_pt, by_soc, population, threshold=15)["pt"].dropna()) == {
        "P2",
        "P3",
        "P4",
    }
    assert incidence_table(by_pt, by_soc, population, threshold=20.01).empty
    shown = display_incidence(table, population)
    assert shown.iloc[0].tolist() == [ALL_TERMS, "3 (30.0%) [3]", "4 (20.0%) [7]", "7 (23.3%) [10]"]
    long = soc_incidence(table, population)
    assert long[["soc", "arm", "subjects"]].values.tolist() == [
        ["S1", "A", 3],
        ["S1", "B", 4],
        ["S2", "A", 0],
        ["S2", "B", 3],
    ]


def test_worst_level_table_adds_up_to_each_arm() -> None:
    population = pd.DataFrame({"arm": ["A", "B"], "subjects": [10, 20]})
    counts = pd.DataFrame({"arm": ["A", "A", "B"], "rank": [1, 3, 0], "subjects": [2, 1, 4]})
    table = worst_level_table(counts, population, "severity")
    for label, group in table.groupby("arm_label"):
        assert (
            group["subjects"].sum()
            == {"A (N=10)": 10, "B (N=20)": 20, "Total (N=30)": 30}[str(label)]
        )
    a = table[table["arm"] == "A"].set_index("level")["subjects"].to_dict()
    assert a == {NO_AE: 7, "Mild": 2, "Moderate": 0, "Severe": 1}  # no empty "Unknown" segment
    b = table[table["arm"] == "B"].set_index("level")["subjects"].to_dict()
    assert b[UNKNOWN] == 4 and b[NO_AE] == 16


def test_picks_from_clicks() -> None:
    population = pd.DataFrame({"arm": ["A", "B"], "subjects": [10, 20]})
    counts = pd.DataFrame({"arm": ["A"], "category": ["serious"], "subjects": [1], "events": [2]})
    table = summary_table(counts, population, discontinuation_from_ds=False)
    pick = summary_cell_pick((1, "A (N=10)"), table, population)
    assert pick == EventPick(source="summary", title="Serious AE · A", arm="A", category="serious")
    whole_row = summary_cell_pick((1, "Category"), table, population)
    assert whole_row is not None and whole_row.arm is None
    assert summary_cell_pick((1, "Total (N=30)"), table, population).arm is None  # type: ignore[union-attr]
    assert summary_cell_pick(None, table, population) is None
    assert summary_cell_pick((99, "A (N=10)"), table, population) is None
    by_pt, by_soc, _ = _tiny_incidence()
    rows = incidence_table(by_pt, by_soc, population).iloc[0:4].reset_index(drop=True)
    assert incidence_cell_pick((0, "B (N=20)"), rows, population) == EventPick(
        source="terms", title="S1 · B", arm="B", soc="S1", pt=None
    )
    assert incidence_cell_pick((1, "Term"), rows, population).pt == "P4"  # type: ignore[union-attr]
    assert soc_point_pick({"soc": "S2", "arm": "A"}) == EventPick(
        source="soc", title="S2 · A", arm="A", soc="S2"
    )
    segment = level_point_pick({"arm_label": "B (N=20)", "level": "Severe"}, population, "severity")
    assert (segment.arm, segment.dimension, segment.rank) == ("B", "severity", 3)  # type: ignore[union-attr]
    no_ae = level_point_pick({"arm_label": "B (N=20)", "level": NO_AE}, population, "severity")
    assert no_ae is not None and no_ae.rank == -1
    assert level_point_pick(None, population, "severity") is None


def test_latest_pick_follows_the_control_that_changed() -> None:
    a = EventPick(source="summary", title="a", category="any")
    b = EventPick(source="soc", title="b", soc="S1")
    assert latest_pick({"summary": a, "soc": None}, {}, None) == a
    assert latest_pick({"summary": a, "soc": b}, {"summary": a, "soc": None}, a) == b
    assert latest_pick({"summary": a, "soc": b}, {"summary": a, "soc": b}, b) == b  # no change
    assert latest_pick({"summary": a, "soc": None}, {"summary": a, "soc": b}, b) is None
    unselected: dict[str, EventPick | None] = {"new table": None}
    assert latest_pick(unselected, {"summary": a}, a) == a  # a new control, unselected


def test_relationship_values_keep_the_source_values() -> None:
    values = pd.DataFrame(
        {
            "arm": ["A", "B", "A", "A"],
            "value": ["POSSIBLE", "POSSIBLE", "REMOTE", ""],
            "events": [3, 2, 4, 1],
            "subjects": [2, 2, 3, 1],
        }
    )
    table = relationship_values(values)
    assert table.values.tolist() == [
        [RELATED, "POSSIBLE", 5, 4],
        [NOT_RELATED, "REMOTE", 4, 3],
        [UNKNOWN, "(blank)", 1, 1],
    ]


def test_timeline_frame_days_and_ongoing_bars() -> None:
    base = {
        "usubjid": "S-1",
        "term": "HEADACHE",
        "decoded_term": None,
        "severity": "MILD",
        "serious": "N",
        "relationship": "NONE",
        "first_dose_dtc": "2024-01-10",
        "first_dose_date": dt.date(2024, 1, 10),
        "observed_until": None,
    }
    events = pd.DataFrame(
        [
            {
                **base,
                "start_dtc": "2024-01-08",
                "start_date": dt.date(2024, 1, 8),
                "end_dtc": "2024-01-10",
                "end_date": dt.date(2024, 1, 10),
            },
            {
                **base,
                "start_dtc": "2024-01-20",
                "start_date": dt.date(2024, 1, 20),
                "end_dtc": None,
                "end_date": None,
                "observed_until": dt.date(2024, 2, 1),
            },
            {
                **base,
                "start_dtc": "2024-01-25",
                "start_date": dt.date(2024, 1, 25),
                "end_dtc": None,
                "end_date": None,
            },
            {**base, "start_dtc": None, "start_date": None, "end_dtc": None, "end_date": None},
        ]
    )
    frame, left_out = timeline_frame(events, cutoff=dt.date(2024, 3, 1))
    assert left_out == 1  # no onset date
    # Study days (no day 0) and axis positions (days since day 1): a bar is as wide as its days.
    assert frame[["start_day", "end_day", "x_start", "x_end"]].values.tolist() == [
        [-2, 1, -2, 1],  # from the day before the day before, to the dose day: 3 days
        [11, 23, 10, 23],  # ongoing: to the last disposition record
        [16, 52, 15, 52],  # ongoing: to the cut-off
    ]
    ends = [dt.date(2024, 1, 10), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    starts = events["start_date"].iloc[:3].tolist()
    assert (frame["x_end"] - frame["x_start"]).tolist() == [
        (end - start).days + 1 for start, end in zip(starts, ends, strict=True)
    ]
    assert not frame["cut"].any()
    cut, _ = timeline_frame(events.iloc[[0]], cutoff=None, earliest_day=-1)
    assert cut[["start_day", "x_start", "x_end", "cut"]].values.tolist() == [[-2, -1, 1, True]]
    assert frame["treatment_emergent"].tolist() == [False, True, True]
    assert frame["ongoing"].tolist() == [False, True, True]
    spec = timeline_chart(frame).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rule", "bar", "point"]


# -- the CDISC pilot against the files ----------------------------------------------------------


def test_pilot_headline_and_severity(pilot: Session, pilot_raw: dict[str, pd.DataFrame]) -> None:
    ae = pilot_raw["ae"]
    counts = count_adverse_events(pilot, study_id=PILOT, scope=None)
    assert (counts.events, counts.subjects) == (len(ae), ae["USUBJID"].nunique()) == (961, 225)
    serious = ae[ae["AESER"] == "Y"]
    assert (counts.serious_events, counts.serious_subjects) == (
        len(serious),
        serious["USUBJID"].nunique(),
    )
    assert (counts.serious_events, counts.serious_subjects) == (3, 3)
    severity = events_by_source_value(pilot, study_id=PILOT, scope=None, dimension="severity")
    got = severity.groupby("value")["events"].sum().to_dict()
    assert (
        got == ae["AESEV"].value_counts().to_dict() == {"MILD": 605, "MODERATE": 316, "SEVERE": 40}
    )


def test_pilot_summary_by_actual_arm(pilot: Session, pilot_raw: dict[str, pd.DataFrame]) -> None:
    ae, dm, ds = pilot_raw["ae"], pilot_raw["dm"], pilot_raw["ds"]
    treated = dm[dm["RFXSTDTC"] != ""]
    population = safety_population(pilot, study_id=PILOT, scope=None)
    assert population.basis == TREATED and population.first_dose_dates
    denominators = treated.groupby("ACTARM").size().to_dict()
    assert dict(zip(population.by_arm["arm"], population.by_arm["subjects"], strict=True)) == (
        denominators
    )
    assert denominators == {"Placebo": 86, "Xanomeline High Dose": 72, "Xanomeline Low Dose": 96}

    summary = safety_summary(pilot, study_id=PILOT, scope=None)
    assert summary.discontinuation_from_ds  # AEACN is blank for every AE of the pilot
    assert (ae["AEACN"] == "").all()
    assert summary.outside_events == 0 and summary.graded_events == 0
    got = {(r["category"], r["arm"]): r["subjects"] for r in summary.counts.to_dict("records")}
    expected = {
        "any": ae,
        "serious": ae[ae["AESER"] == "Y"],
        "related": ae[ae["AEREL"].isin(["PROBABLE", "POSSIBLE"])],  # the values the file holds
        "severe": ae[ae["AESEV"] == "SEVERE"],
        "death": ae[(ae["AESDTH"] == "Y") | (ae["AEOUT"] == "FATAL")],
    }
    for category, rows in expected.items():
        for arm, n in rows.groupby("ACTARM")["USUBJID"].nunique().items():
            assert got[(category, arm)] == n, (category, arm)
    assert {arm: got[("any", arm)] for arm in denominators} == {
        "Placebo": 69,
        "Xanomeline High Dose": 70,
        "Xanomeline Low Dose": 86,
    }
    left = ds[ds["DSDECOD"] == "ADVERSE EVENT"].merge(dm[["USUBJID", "ACTARM"]], on="USUBJID")
    for arm, n in left.groupby("ACTARM")["USUBJID"].nunique().items():
        assert got[("discontinuation", arm)] == n

    table = summary_table(summary.counts, population.by_arm, discontinuation_from_ds=True)
    row = table.set_index("category").loc["any"]
    events = ae.groupby("ACTARM").size()
    assert row["Placebo (N=86)"] == f"69 (80.2%) [{events['Placebo']}]"
    assert row["Total (N=254)"] == "225 (88.6%) [961]"
    assert "[" not in str(table.set_index("category").loc["discontinuation", "Total (N=254)"])


def test_pilot_incidence_by_soc_and_pt(pilot: Session, pilot_raw: dict[str, pd.DataFrame]) -> None:
    ae = pilot_raw["ae"]
    incidence = incidence_by_term(pilot, study_id=PILOT, scope=None)
    population = safety_population(pilot, study_id=PILOT, scope=None).by_arm
    expected_pt = ae.groupby(["ACTARM", "AEBODSYS", "AEDECOD"])["USUBJID"].nunique()
    got_pt = incidence.by_pt.set_index(["arm", "soc", "pt"])["subjects"]
    assert got_pt.sort_index().to_dict() == expected_pt.sort_index().to_dict()
    expected_soc = ae.groupby(["ACTARM", "AEBODSYS"])["USUBJID"].nunique()
    got_soc = incidence.by_soc.set_index(["arm", "soc"])["subjects"]
    assert got_soc.sort_index().to_dict() == expected_soc.sort_index().to_dict()

    table = incidence_table(incidence.by_pt, incidence.by_soc, population)
    pts = table[table["level"] == "PT"]
    top = pts.sort_values("n:Total (N=254)", ascending=False).iloc[0]
    by_subjects = ae.groupby("AEDECOD")["USUBJID"].nunique()
    assert top["pt"] == by_subjects.idxmax() == "PRURITUS"
    assert top["n:Total (N=254)"] == by_subjects.max() == 57
    socs = table[table["level"] == "SOC"]
    assert socs.iloc[0]["soc"] == ae.groupby("AEBODSYS")["USUBJID"].nunique().idxmax()
    assert socs["n:Total (N=254)"].is_monotonic_decreasing

    # The threshold: PTs reported in at least 10% of some arm, counted independently.
    denominators = {"Placebo": 86, "Xanomeline High Dose": 72, "Xanomeline Low Dose": 96}
    share = ae.groupby(["AEDECOD", "ACTARM"])["USUBJID"].nunique().reset_index()
    share["pct"] = 100 * share["USUBJID"] / share["ACTARM"].map(denominators)
    kept = set(share.loc[share["pct"] >= 10, "AEDECOD"])
    filtered = incidence_table(incidence.by_pt, incidence.by_soc, population, threshold=10)
    assert set(filtered["pt"].dropna()) == kept


def test_pilot_worst_severity_and_relationship(
    pilot: Session, pilot_raw: dict[str, pd.DataFrame]
) -> None:
    ae = pilot_raw["ae"]
    rank = ae["AESEV"].map({"MILD": 1, "MODERATE": 2, "SEVERE": 3})
    worst = ae.assign(rank=rank).groupby(["ACTARM", "USUBJID"])["rank"].max().reset_index()
    expected = worst.groupby(["ACTARM", "rank"]).size().to_dict()
    got = subjects_by_worst_level(pilot, study_id=PILOT, scope=None, dimension="severity")
    assert got.set_index(["arm", "rank"])["subjects"].to_dict() == expected
    related = subjects_by_worst_level(pilot, study_id=PILOT, scope=None, dimension="relationship")
    any_related = ae[ae["AEREL"].isin(["PROBABLE", "POSSIBLE"])]
    assert (
        related[related["rank"] == 2].set_index("arm")["subjects"].to_dict()
        == any_related.groupby("ACTARM")["USUBJID"].nunique().to_dict()
    )
    # The events behind a segment: the severe AEs of the subjects whose worst is severe.
    listing, total = adverse_event_listing(
        pilot, study_id=PILOT, scope=None, arm="Placebo", dimension="severity", rank=3
    )
    severe = ae[(ae["ACTARM"] == "Placebo") & (ae["AESEV"] == "SEVERE")]
    assert total == len(severe) == len(listing)
    assert sorted(listing["usubjid"]) == sorted(severe["USUBJID"])


def test_pilot_treatment_emergent(pilot: Session, pilot_raw: dict[str, pd.DataFrame]) -> None:
    ae = pilot_raw["ae"]
    start, dose = ae["AESTDTC"], ae["RFXSTDTC"]
    partial_in_dose_period = (start.str.len() < 10) & pd.Series(
        [d.startswith(s) for s, d in zip(start, dose, strict=True)], index=ae.index
    )
    emergent = ae[
        (dose != "") & ((start == "") | (start >= dose.str[:10]) | partial_in_dose_period)
    ]
    counts = count_adverse_events(pilot, study_id=PILOT, scope=None, treatment_emergent=True)
    assert (counts.events, counts.subjects) == (len(emergent), emergent["USUBJID"].nunique())
    assert counts.events < 961  # the pilot has AEs before the first dose
    # The Python rule agrees with the SQL one, event by event.
    listing, total = adverse_event_listing(pilot, study_id=PILOT, scope=None, limit=5000)
    assert total == 961
    assert derive_listing(listing, compare_cut_id=None)["treatment_emergent"].sum() == len(emergent)


def test_pilot_listings(pilot: Session, pilot_raw: dict[str, pd.DataFrame]) -> None:
    ae = pilot_raw["ae"]
    saes, total = adverse_event_listing(
        pilot, study_id=PILOT, scope=None, in_population=False, serious_only=True
    )
    assert total == 3 and sorted(saes["usubjid"]) == sorted(ae.loc[ae["AESER"] == "Y", "USUBJID"])
    table = listing_table(derive_listing(saes, compare_cut_id=None), show_new=False)
    assert "New" not in table.columns and "AETOXGR" not in table.columns  # nothing to show
    criteria = dict(zip(table["USUBJID"], table["Seriousness criteria"], strict=True))
    raw = ae[ae["AESER"] == "Y"].set_index("USUBJID")
    for usubjid, text in criteria.items():
        flags = {"Death": "AESDTH", "Life-threatening": "AESLIFE", "Hospitalisation": "AESHOSP"}
        expected = [name for name, column in flags.items() if raw.loc[usubjid, column] == "Y"]
        assert all(name in text for name in expected), (usubjid, text)
    # Listings are limited, and say how many there are.
    some, total = adverse_event_listing(pilot, study_id=PILOT, scope=None, limit=10)
    assert len(some) == 10 and total == 961
    ds = discontinuations_from_ds(pilot, study_id=PILOT, scope=None, arm="Placebo")
    assert ds["usubjid"].nunique() == 8
    assert set(ds["term"]) == {"ADVERSE EVENT"}
    subjects = subjects_with_adverse_events(pilot, study_id=PILOT, scope=None)
    # Every subject with an AE, those with a serious one first, each part by code.
    ae_raw = _xpt(PILOT_DIR, "ae")
    with_serious = sorted(set(ae_raw.loc[ae_raw["AESER"] == "Y", "USUBJID"]))
    others = sorted(set(ae_raw["USUBJID"]) - set(with_serious))
    assert subjects["usubjid"].tolist() == with_serious + others
    assert subjects["serious"].tolist() == [True] * len(with_serious) + [False] * len(others)
    for limit in (2, 5):  # the limit cuts the serious part, or the others after all of it
        first = subjects_with_adverse_events(pilot, study_id=PILOT, scope=None, limit=limit)
        assert first["usubjid"].tolist() == (with_serious + others)[:limit]


# -- SDTM-MSG: AEDECOD and AEBODSYS blank --------------------------------------------------------


def test_msg_groups_by_the_verbatim_term(msg_db_url: str) -> None:
    ae = _xpt(MSG_DIR, "ae")
    assert (ae["AEDECOD"] == "").all() and (ae["AEBODSYS"] == "").all()
    engine = make_engine(msg_db_url)
    with Session(engine) as session:
        counts = count_adverse_events(session, study_id="MSG", scope=None)
        assert (counts.events, counts.subjects, counts.serious_events) == (
            len(ae),
            ae["USUBJID"].nunique(),
            (ae["AESER"] == "Y").sum(),
        )
        assert (counts.events, counts.subjects, counts.serious_events) == (74, 13, 4)
        summary = safety_summary(session, study_id="MSG", scope=None)
        incidence = incidence_by_term(session, study_id="MSG", scope=None)
        population = safety_population(session, study_id="MSG", scope=None)
    engine.dispose()
    assert summary.uncoded_events == 74
    assert set(incidence.by_soc["soc"]) == {UNCODED_SOC}
    assert set(incidence.by_pt["pt"]) == set(ae["AETERM"])
    by_term = ae.groupby("AETERM")["USUBJID"].nunique()
    got = incidence.by_pt.groupby("pt")["subjects"].sum()  # a subject is in one arm
    assert got.sort_index().to_dict() == by_term.sort_index().to_dict()
    # AEACN is given here: discontinuation is AEACN DRUG WITHDRAWN, events counted.
    assert not summary.discontinuation_from_ds
    withdrawn = ae[ae["AEACN"] == "DRUG WITHDRAWN"]
    rows = summary.counts[summary.counts["category"] == "discontinuation"]
    assert rows["events"].sum() == len(withdrawn) == 9
    assert rows["subjects"].sum() == withdrawn["USUBJID"].nunique()
    assert population.subjects == 17  # 18 in DM, one screen failure never dosed


# -- the seed demo and the site scope -------------------------------------------------------------


def test_seed_figures(session: Session) -> None:
    seed = pd.DataFrame(
        SEED_ADVERSE_EVENTS,
        columns=["subject", "after", "duration", "pt", "soc", "sev", "grade", "serious", "rel"],
    )
    population = safety_population(session, study_id=SEED, scope=None)
    assert population.basis == TREATED and population.subjects == 20
    summary = safety_summary(session, study_id=SEED, scope=None)
    got = summary.counts.set_index("category")
    assert (got.loc["any", "events"], got.loc["any", "subjects"]) == (len(seed), 14) == (17, 14)
    assert got.loc["serious", "events"] == (seed["serious"] == "Y").sum() == 1
    related = seed[seed["rel"].isin(["RELATED", "PROBABLY RELATED", "POSSIBLY RELATED"])]
    assert (got.loc["related", "events"], got.loc["related", "subjects"]) == (
        len(related),
        related["subject"].nunique(),
    )
    assert got.loc["severe", "subjects"] == (seed["grade"] == "3").sum() == 1
    assert summary.graded_events == 17
    worst = subjects_by_worst_level(session, study_id=SEED, scope=None, dimension="grade")
    expected = seed.assign(g=seed["grade"].astype(int)).groupby("subject")["g"].max().value_counts()
    assert worst.set_index("rank")["subjects"].to_dict() == expected.to_dict()
    table = summary_table(summary.counts, population.by_arm, discontinuation_from_ds=False)
    assert table.columns.tolist() == ["category", "Category", "Exosome (N=20)"]
    assert table.iloc[0]["Exosome (N=20)"] == "14 (70.0%) [17]"


def test_site_scope_and_new_since_a_cut(session: Session, demo_engine: Engine) -> None:
    scope = ("101", "105")
    raw = pd.read_sql_query(
        "SELECT s.usubjid, s.actual_arm, ae.serious, ae.first_cut_id FROM adverseevent ae "
        "JOIN subject s ON s.id = ae.subject_pk JOIN site ON site.id = s.site_pk "
        f"WHERE s.study_id = '{MULTI}' AND site.site_id IN ('101', '105')",
        demo_engine,
    )
    summary = safety_summary(session, study_id=MULTI, scope=scope)
    got = summary.counts[summary.counts["category"] == "any"].set_index("arm")
    assert got["subjects"].to_dict() == raw.groupby("actual_arm")["usubjid"].nunique().to_dict()
    assert got["events"].to_dict() == raw.groupby("actual_arm").size().to_dict()
    first_cut = int(raw["first_cut_id"].min())
    listing, total = adverse_event_listing(session, study_id=MULTI, scope=scope, limit=5000)
    assert total == len(raw)
    derived = derive_listing(listing, compare_cut_id=first_cut)
    assert derived["new"].sum() == (raw["first_cut_id"] > first_cut).sum()
    nobody = safety_summary(session, study_id=MULTI, scope=("NO-SUCH-SITE",))
    assert nobody.counts.empty
    empty = safety_population(session, study_id=MULTI, scope=("NO-SUCH-SITE",))
    assert summary_table(nobody.counts, empty.by_arm, discontinuation_from_ds=False).empty is False


def test_without_exposure_the_enrolled_by_planned_arm(tmp_path: Path) -> None:
    from tests.sdtm_builders import copy_of_base, write_package

    tables = copy_of_base()  # no EX domain
    for row in tables["DM"]:
        row["RFXSTDTC"] = ""
    folder = write_package(tmp_path / "no-ex", tables)
    engine = make_engine(new_database_url(tmp_path, "no-ex"))
    import_sdtm(engine, folder)
    with Session(engine) as session:
        population = safety_population(session, study_id="TINY", scope=None)
        assert population.basis == ENROLLED_BASIS and not population.first_dose_dates
        dm = pd.DataFrame(tables["DM"])
        enrolled = dm[~dm["ARMCD"].str.upper().isin(["SCRNFAIL", ""])]
        assert population.subjects == len(enrolled) == 2
        assert population.by_arm["arm"].tolist() == sorted(enrolled["ARM"])
    engine.dispose()


def test_chart_selections() -> None:
    population = pd.DataFrame({"arm": ["A", "B"], "subjects": [10, 20]})
    by_pt, by_soc, _ = _tiny_incidence()
    spec = soc_incidence_chart(
        soc_incidence(incidence_table(by_pt, by_soc, population), population)
    )
    params = spec.to_dict()["params"][0]
    assert params["name"] == SOC_SELECTION and params["select"]["fields"] == ["soc", "arm"]
    counts = pd.DataFrame({"arm": ["A"], "rank": [2], "subjects": [4]})
    levels = worst_level_table(counts, population, "severity")
    bars = worst_level_chart(levels, dimension="severity").to_dict()
    assert bars["params"][0]["name"] == LEVEL_SELECTION
    assert bars["encoding"]["x"]["stack"] == "zero"
    assert bars["encoding"]["color"]["scale"]["domain"][0] == NO_AE


# -- the page -------------------------------------------------------------------------------------


def _open(url: str, study: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study, "adverse_events.py", monkeypatch, timeout=120)


def _text(at: AppTest) -> str:
    """What the page says, the rules behind the captions' help icons included."""
    parts = [e.value for e in (*at.markdown, *at.caption, *at.info, *at.warning, *at.success)]
    helps = [c.proto.help for c in at.caption if c.proto.help]
    return "\n".join(str(p) for p in [*parts, *helps])


def test_page_seed_summary_and_terms(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(demo_db_url, SEED, monkeypatch)
    seed = pd.DataFrame(
        SEED_ADVERSE_EVENTS,
        columns=["subject", "after", "duration", "pt", "soc", "sev", "grade", "serious", "rel"],
    )
    summary = next(d.value for d in at.dataframe if "Category" in d.value.columns)
    cells = dict(zip(summary["Category"], summary["Exosome (N=20)"], strict=True))
    assert cells["Any AE"] == "14 (70.0%) [17]"
    assert cells["Serious AE"] == "1 (5.0%) [1]"
    # Only the first (most frequent) class is open: its table alone is drawn.
    tables = [d.value for d in at.dataframe if d.value.columns[0] == "Term"]
    assert len(tables) == 1
    # Every SOC's table once opened: its own row, then its PTs, figures from the seed's tuples.
    for soc in seed["soc"].unique():
        at.session_state[soc_expander_key(str(soc))] = True
    at.run()
    tables = [d.value for d in at.dataframe if d.value.columns[0] == "Term"]
    assert len(tables) == seed["soc"].nunique()
    got: dict[str, str] = {}
    for table in tables:
        got.update(dict(zip(table["Term"], table["Exosome (N=20)"], strict=True)))
    for pt, rows in seed.groupby("pt"):
        n = rows["subject"].nunique()
        assert got[str(pt)] == f"{n} ({100 * n / 20:.1f}%) [{len(rows)}]"
    first = tables[0]
    assert first.iloc[0]["Term"] == ALL_TERMS
    top_soc = seed.groupby("soc")["subject"].nunique()
    assert first.iloc[0]["Exosome (N=20)"].startswith(f"{top_soc.max()} (")
    assert "Serious adverse events" in [s.value for s in at.subheader]
    assert "treated subjects" in _text(at)


def test_page_drilldown_from_an_injected_pick(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(demo_db_url, MULTI, monkeypatch)
    at.session_state["ae_pick"] = EventPick(
        source="summary", title="Serious AE · all arms", category="serious"
    )  # as a click on a cell leaves it
    at.run()
    assert not at.exception
    assert "**Events behind: Serious AE · all arms**" in [m.value for m in at.markdown]
    listings = [d.value for d in at.dataframe if "USUBJID" in d.value.columns]
    assert len(listings) == 2  # the SAE listing and the drilldown
    assert listings[0]["USUBJID"].tolist() == listings[1]["USUBJID"].tolist()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels.count("Download Excel") == 2
    # The timeline offers the subjects behind the selection.
    at.radio(key="ae_timeline_mode").set_value("the subjects behind the selection").run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) >= 3
    # Another study starts without the pick.
    at.selectbox(key="study").set_value(SEED).run()
    assert not at.exception
    assert not any(str(m.value).startswith("**Events behind") for m in at.markdown)


def test_page_pilot_arms_discontinuation_and_filters(
    pilot_db_url: str, pilot: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(pilot_db_url, PILOT, monkeypatch)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Subjects with an AE"] == "225 (89%)"  # of the 254 treated
    assert shown["AE events"] == "961"
    summary = next(d.value for d in at.dataframe if "Category" in d.value.columns)
    assert list(summary.set_index("Category").loc["Any AE"]) == [
        "69 (80.2%) [237]",
        "70 (97.2%) [360]",
        "86 (89.6%) [364]",
        "225 (88.6%) [961]",
    ]
    text = _text(at)
    assert "disposition reason (DS DSDECOD) is ADVERSE EVENT" in text
    assert "The study is blinded" in text
    # Treatment-emergent only: the figures follow.
    emergent = count_adverse_events(pilot, study_id=PILOT, scope=None, treatment_emergent=True)
    at.toggle(key="ae_treatment_emergent").set_value(True).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["AE events"] == str(emergent.events)
    # A threshold nothing reaches: a plain message, no table.
    at.number_input(key="ae_threshold").set_value(100.0).run()
    assert not at.exception
    assert "No preferred term reaches 100% of any arm" in _text(at)
    assert not any(d.value.columns[0] == "Term" for d in at.dataframe)


def test_page_msg_says_terms_are_verbatim(msg_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(msg_db_url, "MSG", monkeypatch)
    assert any("grouped by the verbatim term (AETERM)" in w.value for w in at.warning)
    shown = {m.label: m.value for m in at.metric}
    assert (shown["AE events"], shown["SAE events"]) == ("74", "4")


def test_page_timeline_waits_for_a_chosen_subject(
    demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No timeline until a subject is chosen (the choices: serious first, then by code); then the
    chosen subject's AEs, a bar each."""
    at = _open(demo_db_url, MULTI, monkeypatch)
    charts = list(at.get("arrow_vega_lite_chart")) + list(at.get("vega_lite_chart"))
    ae = pd.read_sql(
        "SELECT s.usubjid, a.serious, a.term FROM adverseevent a JOIN subject s "
        f"ON s.id = a.subject_pk WHERE s.study_id = '{MULTI}'",
        make_engine(demo_db_url),
    )
    serious = sorted(set(ae.loc[ae["serious"].str.upper() == "Y", "usubjid"]))
    others = sorted(set(ae["usubjid"]) - set(serious))
    picker = at.selectbox(key=f"ae_timeline_subject_{MULTI}")
    assert picker.value is None and list(picker.options) == serious + others
    picker.set_value(serious[0]).run()
    assert not at.exception, [e.value for e in at.exception]
    after = list(at.get("arrow_vega_lite_chart")) + list(at.get("vega_lite_chart"))
    assert len(after) == len(charts) + 1
    frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in after[-1].proto.datasets]
    (drawn,) = [f for f in frames if "term" in f.columns and "usubjid" in f.columns]
    assert set(drawn["usubjid"]) == {serious[0]}
    assert len(drawn) == int((ae["usubjid"] == serious[0]).sum())
