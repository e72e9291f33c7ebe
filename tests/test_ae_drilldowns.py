"""Adverse events: every drilldown listing against the figure it was clicked from and against the
SDTM files, the seriousness criteria (AESCAN and AESOD included), the per-subject views' tables as
click targets, "new since the previous cut" in the SAE listing, and the timeline's axis.

The references are computed here with plain pandas from the files (pyreadstat: AE, DM, EX), never
through the importer or the query layer; the page's own pick functions and
``ae_drilldown.listing_filters`` turn a clicked cell into the listing query, as the page does.
"""

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy import text
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard.charts.adverse_events import timeline_chart
from dashboard.charts.study_day_axis import DAY_LABEL_EXPR
from dashboard.db import make_engine, session_scope
from dashboard.demo import SEED_ADVERSE_EVENTS
from dashboard.importers.run import import_sdtm
from dashboard.metrics.ae_listing import derive_listing, listing_table
from dashboard.metrics.ae_rules import SUMMARY_CATEGORIES
from dashboard.metrics.ae_tables import arm_columns, incidence_table, summary_table
from dashboard.metrics.ae_timeline import timeline_frame
from dashboard.precomputed import rebuild_precomputed_counts
from dashboard.queries.adverse_events import (
    adverse_event_listing,
    events_by_source_value,
    incidence_by_term,
    safety_population,
    safety_summary,
    subjects_by_worst_level,
)
from dashboard.ui.ae_drilldown import listing_filters, soc_expander_key
from dashboard.ui.ae_picks import incidence_cell_pick, summary_cell_pick
from tests.conftest import (
    PROJECT_ROOT,
    SHARED_DATA,
    build_demo_database,
    open_study_page,
    reference_absent,
)
from tests.databases import new_database_url

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
PILOT_DIR = SHARED_DATA / "sdtm" / "cdiscpilot01"
MSG_DIR = SHARED_DATA / "sdtm" / "cdisc_msg_v2"
STUDIES = {"pilot": ("CDISCPILOT01", PILOT_DIR), "msg": ("MSG", MSG_DIR)}

# DESIGN.md "Definitions", written out again here (not imported from the code under test).
RELATED = {
    "Y",
    "RELATED",
    "DEFINITE",
    "PROBABLE",
    "PROBABLY RELATED",
    "POSSIBLE",
    "POSSIBLY RELATED",
}
# The seriousness criteria in the order the listing names them, by SDTM variable.
CRITERIA = [
    ("AESDTH", "Death"),
    ("AESLIFE", "Life-threatening"),
    ("AESHOSP", "Hospitalisation"),
    ("AESDISAB", "Disability"),
    ("AESCONG", "Congenital anomaly"),
    ("AESCAN", "Cancer"),
    ("AESOD", "Overdose"),
    ("AESMIE", "Other medically important"),
]
NO_ARM = "(no arm)"
NOT_CODED = "(not coded)"


def _read(folder: Path, name: str) -> pd.DataFrame:
    if not folder.is_dir():
        reference_absent(f"reference data folder {folder} is absent")
    frame, _meta = pyreadstat.read_xport(str(folder / f"{name}.xpt"))
    return frame


def _blank(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip() == ""


def reference(folder: Path) -> pd.DataFrame:
    """Every AE of the safety population (treated: RFXSTDTC or an EX record) with its arm (ACTARM,
    else ARM), its PT (AEDECOD, else AETERM) and SOC (AEBODSYS, else "(not coded)"), and the
    number of treated subjects per arm in ``attrs["arms"]``."""
    ae, dm, ex = (_read(folder, n) for n in ("ae", "dm", "ex"))
    treated = dm[~_blank(dm["RFXSTDTC"]) | dm["USUBJID"].isin(ex["USUBJID"])].copy()
    treated["arm"] = treated["ACTARM"].where(~_blank(treated["ACTARM"]), treated["ARM"])
    treated["arm"] = treated["arm"].where(~_blank(treated["arm"]), NO_ARM)
    events = ae.merge(treated[["USUBJID", "arm"]], on="USUBJID")
    events["pt"] = events["AEDECOD"].where(~_blank(events["AEDECOD"]), events["AETERM"])
    events["soc"] = events["AEBODSYS"].where(~_blank(events["AEBODSYS"]), NOT_CODED)
    events["seq"] = events["AESEQ"].astype(int)
    events.attrs["arms"] = treated.groupby("arm").size().to_dict()
    return events


@pytest.fixture(scope="module", params=sorted(STUDIES))
def study(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Session, pd.DataFrame]]:
    """(study id, a session on the study imported alone, the reference events)."""
    study_id, folder = STUDIES[request.param]
    events = reference(folder)
    url = new_database_url(tmp_path_factory.mktemp(request.param), request.param)
    engine = make_engine(url)
    import_sdtm(engine, folder, study_id=study_id)
    with Session(engine) as session:
        yield study_id, session, events
    engine.dispose()


def _keys(frame: pd.DataFrame, usubjid: str = "usubjid", seq: str = "seq") -> list[tuple[str, int]]:
    return sorted(zip(frame[usubjid].astype(str), frame[seq].astype(int), strict=True))


def _in_arm(events: pd.DataFrame, arm: str | None) -> pd.DataFrame:
    return events if arm is None else events[events["arm"] == arm]


# -- incidence by SOC and PT: every cell ------------------------------------------------------


def test_every_soc_and_pt_cell_lists_its_events(study: tuple[str, Session, pd.DataFrame]) -> None:
    study_id, session, events = study
    population = safety_population(session, study_id=study_id, scope=None).by_arm
    assert dict(zip(population["arm"], population["subjects"], strict=True)) == events.attrs["arms"]
    incidence = incidence_by_term(session, study_id=study_id, scope=None)
    table = incidence_table(incidence.by_pt, incidence.by_soc, population)
    # Every SOC and PT of the files is in the table (SDTM-MSG: every AETERM, "(not coded)").
    assert set(table["soc"]) == set(events["soc"])
    assert set(table["pt"].dropna()) == set(events["pt"])
    if study_id == "MSG":
        assert set(table["soc"]) == {NOT_CODED}
    cells = 0
    for soc in table.loc[table["level"] == "SOC", "soc"]:
        rows = table[table["soc"] == soc].reset_index(drop=True)
        for position in range(len(rows)):
            for column in arm_columns(population):
                pick = incidence_cell_pick((position, column.label), rows, population)
                assert pick is not None
                listing, total = adverse_event_listing(
                    session,
                    study_id=study_id,
                    scope=None,
                    limit=5000,
                    **listing_filters(pick),
                )
                expected = _in_arm(events, column.arm)
                expected = expected[expected["soc"] == soc]
                if pick.pt is not None:
                    expected = expected[expected["pt"] == pick.pt]
                where = (soc, pick.pt, column.label)
                assert total == len(listing), where
                assert _keys(listing) == _keys(expected, "USUBJID", "seq"), where
                # ... and the cell's own figures are those events and subjects.
                record = rows.iloc[position]
                assert record[f"events:{column.label}"] == len(expected), where
                assert record[f"n:{column.label}"] == expected["USUBJID"].nunique(), where
                cells += 1
    assert cells == len(table) * len(arm_columns(population))


# -- the summary table: related, severe, death, serious --------------------------------------


def _category(events: pd.DataFrame, key: str) -> pd.DataFrame:
    variables = ["AESER", "AEREL", "AESEV", "AETOXGR", "AESDTH", "AEOUT"]
    code = {
        c: events[c].astype(object).fillna("").astype(str).str.strip().str.upper()
        for c in variables
        if c in events
    }
    grade = code.get("AETOXGR", pd.Series("", index=events.index))
    rules = {
        "any": pd.Series(True, index=events.index),
        "serious": code["AESER"] == "Y",
        "related": code["AEREL"].isin(RELATED),
        "severe": (code["AESEV"] == "SEVERE") | grade.isin(["3", "4", "5"]),
        "death": (code["AESDTH"] == "Y") | (code["AEOUT"] == "FATAL"),
    }
    return events[rules[key]]


CELL = re.compile(r"^(\d+)(?: \([\d.]+%\))?(?: \[(\d+)\])?$")


@pytest.mark.parametrize("category", ["any", "serious", "related", "severe", "death"])
def test_category_cells_list_their_events(
    study: tuple[str, Session, pd.DataFrame], category: str
) -> None:
    study_id, session, events = study
    population = safety_population(session, study_id=study_id, scope=None).by_arm
    summary = safety_summary(session, study_id=study_id, scope=None)
    table = summary_table(
        summary.counts, population, discontinuation_from_ds=summary.discontinuation_from_ds
    )
    row = [key for key, _ in SUMMARY_CATEGORIES].index(category)
    assert table.iloc[row]["category"] == category
    for column in arm_columns(population):
        pick = summary_cell_pick((row, column.label), table, population)
        assert pick is not None and pick.category == category and pick.arm == column.arm
        listing, total = adverse_event_listing(
            session,
            study_id=study_id,
            scope=None,
            limit=5000,
            **listing_filters(pick),
        )
        expected = _category(_in_arm(events, column.arm), category)
        assert total == len(listing) == len(expected), (category, column.label)
        assert _keys(listing) == _keys(expected, "USUBJID", "seq"), (category, column.label)
        found = CELL.match(str(table.iloc[row][column.label]))
        assert found is not None
        assert int(found.group(1)) == expected["USUBJID"].nunique(), (category, column.label)
        assert int(found.group(2)) == len(expected), (category, column.label)


# -- seriousness criteria -----------------------------------------------------------------------


def _criteria(row: pd.Series) -> str:
    flagged = [label for variable, label in CRITERIA if str(row.get(variable, "")).upper() == "Y"]
    return ", ".join(flagged)


def test_seriousness_criteria_of_every_sae(study: tuple[str, Session, pd.DataFrame]) -> None:
    study_id, session, _events = study
    ae = _read(STUDIES["pilot" if study_id == "CDISCPILOT01" else "msg"][1], "ae")
    assert {"AESCAN", "AESOD"} <= set(ae.columns)  # present in both packages
    serious = ae[ae["AESER"] == "Y"]
    saes, total = adverse_event_listing(
        session, study_id=study_id, scope=None, in_population=False, serious_only=True
    )
    assert total == len(serious) == {"CDISCPILOT01": 3, "MSG": 4}[study_id]
    # AESCAN and AESOD are stored as given.
    got_flags = {
        (str(r["usubjid"]), int(r["seq"])): [r["serious_cancer"], r["serious_overdose"]]
        for r in saes.to_dict("records")
    }
    for _, raw in serious.iterrows():
        key = (str(raw["USUBJID"]), int(raw["AESEQ"]))
        assert got_flags[key] == [raw["AESCAN"], raw["AESOD"]], key
    table = listing_table(derive_listing(saes, compare_cut_id=None), show_new=False)
    got = sorted(
        zip(
            table["USUBJID"], table["AESEQ"].astype(int), table["Seriousness criteria"], strict=True
        )
    )
    expected = sorted(
        (str(r["USUBJID"]), int(r["AESEQ"]), _criteria(r)) for _, r in serious.iterrows()
    )
    assert got == expected
    assert any("Hospitalisation" in text or "Death" in text for _, _, text in got)


def test_aescan_and_aesod_reach_the_listing(tmp_path: Path) -> None:
    from tests.sdtm_builders import copy_of_base, write_package

    tables = copy_of_base()
    pneumonia = tables["AE"][1]
    pneumonia.update({"AESCAN": "Y", "AESOD": "Y", "AESHOSP": "Y", "AESDTH": "N"})
    tables["AE"][0].update({"AESCAN": "N", "AESOD": ""})
    folder = write_package(tmp_path / "flags", tables)
    engine = make_engine(new_database_url(tmp_path, "flags"))
    import_sdtm(engine, folder)
    with Session(engine) as session:
        listing, _ = adverse_event_listing(
            session, study_id="TINY", scope=None, in_population=False
        )
    engine.dispose()
    derived = derive_listing(listing, compare_cut_id=None).set_index("usubjid")
    raw = pd.DataFrame(tables["AE"]).set_index("USUBJID")
    for usubjid in raw.index:
        assert derived.loc[usubjid, "criteria"] == _criteria(raw.loc[usubjid]), usubjid
    assert derived.loc["TINY-02-003", "criteria"] == "Hospitalisation, Cancer, Overdose"
    assert derived.loc["TINY-01-001", "serious_cancer"] == "N"


# -- the seriousness dimension (pilot) ------------------------------------------------------------


def test_pilot_seriousness_dimension(tmp_path_factory: pytest.TempPathFactory) -> None:
    events = reference(PILOT_DIR)
    url = new_database_url(tmp_path_factory.mktemp("pilot-seriousness"), "pilot")
    engine = make_engine(url)
    import_sdtm(engine, PILOT_DIR)
    with Session(engine) as session:
        worst = subjects_by_worst_level(
            session, study_id="CDISCPILOT01", scope=None, dimension="seriousness"
        )
        values = events_by_source_value(
            session, study_id="CDISCPILOT01", scope=None, dimension="seriousness"
        )
    engine.dispose()
    rank = events["AESER"].str.strip().str.upper().map({"N": 1, "Y": 2}).fillna(0).astype(int)
    per_subject = events.assign(rank=rank).groupby(["arm", "USUBJID"])["rank"].max()
    expected = per_subject.reset_index().groupby(["arm", "rank"]).size().to_dict()
    assert worst.set_index(["arm", "rank"])["subjects"].to_dict() == expected
    assert int((per_subject == 2).sum()) == 3  # the subjects of the three SAEs
    by_value = events.assign(value=events["AESER"].str.strip()).groupby(["arm", "value"])
    assert values.set_index(["arm", "value"])["events"].to_dict() == by_value.size().to_dict()
    assert values.set_index(["arm", "value"])["subjects"].to_dict() == (
        by_value["USUBJID"].nunique().to_dict()
    )


# -- the timeline's axis ----------------------------------------------------------------------------


def test_timeline_axis_has_no_day_zero_and_bars_span_their_days() -> None:
    first_dose = pd.Timestamp("2024-01-10").date()
    spans = [
        ("2024-01-07", "2024-01-12"),
        ("2024-01-10", "2024-01-10"),
        ("2023-09-01", "2024-01-09"),
    ]
    events = pd.DataFrame(
        [
            {
                "usubjid": "S-1",
                "term": f"AE {n}",
                "decoded_term": None,
                "severity": "MILD",
                "serious": "N",
                "relationship": "N",
                "first_dose_dtc": "2024-01-10",
                "first_dose_date": first_dose,
                "observed_until": None,
                "start_dtc": start,
                "start_date": pd.Timestamp(start).date(),
                "end_dtc": end,
                "end_date": pd.Timestamp(end).date(),
            }
            for n, (start, end) in enumerate(spans)
        ]
    )
    frame, _ = timeline_frame(events, cutoff=None, earliest_day=-30)
    # A bar spans its calendar days (the cut one: from day -30 on, 30 days to day -1).
    days = [(pd.Timestamp(e) - pd.Timestamp(s)).days + 1 for s, e in spans]
    assert (frame["x_end"] - frame["x_start"]).tolist() == [days[0], days[1], 30]
    assert frame["cut"].tolist() == [False, False, True]
    spec = timeline_chart(frame).to_dict()
    bars = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    axis = bars["encoding"]["x"]["axis"]
    assert axis["labelExpr"] == DAY_LABEL_EXPR

    def label(position: int) -> int:  # the labelExpr, evaluated as Vega would
        return position + 1 if position >= 0 else position

    labels = [label(v) for v in axis["values"]]
    assert 0 not in labels and 1 in labels and -1 not in labels[labels.index(1) :]
    assert labels == sorted(labels)
    # The first-dose rule sits at the left edge of day 1; day -1 ends there.
    rule = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rule")
    rule_x = spec["datasets"][rule["data"]["name"]][0]["day"]
    assert label(rule_x) == 1
    first = frame.iloc[0]  # day -3 to day 3: positions -3 .. 3, day -1 right before the rule
    assert (first["start_day"], first["end_day"]) == (-3, 3)
    assert (first["x_start"], first["x_end"]) == (-3, 3)


# -- the page ---------------------------------------------------------------------------------------


def _open(url: str, study_id: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return open_study_page(url, study_id, "adverse_events.py", monkeypatch, timeout=180)


def _select(at: AppTest, key: str, row: int, column: str) -> None:
    """A click on one cell of a dataframe, as Streamlit stores it (1.67: cells are [row, column])."""
    at.session_state[key] = {"selection": {"rows": [], "columns": [], "cells": [[row, column]]}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def _codes(links: pd.Series) -> list[str]:
    """USUBJIDs from the listing's subject links (``subject?study=..&subject=<code>``)."""
    return [re.sub(r"^.*[?&]subject=", "", str(link)) for link in links]


def _drilldown(at: AppTest) -> tuple[str, pd.DataFrame]:
    """The drilldown's title and listing (the SAE listing is the first USUBJID table)."""
    titles = [str(m.value) for m in at.markdown if str(m.value).startswith("**Events behind")]
    assert len(titles) == 1, titles
    listings = [d.value for d in at.dataframe if "USUBJID" in d.value.columns]
    assert len(listings) == 2
    listing = listings[1].assign(USUBJID=lambda f: _codes(f["USUBJID"]))
    return titles[0], listing


def _table(at: AppTest, first_column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def test_page_pilot_level_and_value_tables_drill_down(
    pilot_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = reference(PILOT_DIR)
    arms = events.attrs["arms"]
    at = _open(pilot_db_url, "CDISCPILOT01", monkeypatch)

    # Severity: the table's "Moderate" cell of Placebo lists the moderate AEs of the Placebo
    # subjects whose worst AE is moderate.
    levels = _table(at, "Level")
    assert levels["Level"].tolist() == ["Severe", "Moderate", "Mild", "No AE"]
    column = f"Placebo (N={arms['Placebo']})"
    _select(at, "ae_level_table_severity_False", 1, column)
    title, listing = _drilldown(at)
    assert title == "**Events behind: Maximum severity (AESEV): Moderate · Placebo**"
    rank = events["AESEV"].map({"MILD": 1, "MODERATE": 2, "SEVERE": 3})
    worst = events.assign(rank=rank).groupby("USUBJID")["rank"].transform("max")
    expected = events[(events["arm"] == "Placebo") & (worst == 2) & (rank == 2)]
    assert _keys(listing, "USUBJID", "AESEQ") == _keys(expected, "USUBJID", "seq")
    n = expected["USUBJID"].nunique()
    assert levels.loc[1, column] == f"{n} ({100 * n / arms['Placebo']:.1f}%)"

    # Seriousness: the table by arm against the files.
    at.radio(key="ae_dimension").set_value("seriousness").run()
    assert not at.exception
    levels = _table(at, "Level")
    serious = events[events["AESER"] == "Y"].groupby("arm")["USUBJID"].nunique()
    for arm, total in arms.items():
        n = int(serious.get(arm, 0))
        row = levels.set_index("Level").loc["Serious", f"{arm} (N={total})"]
        assert row == f"{n} ({100 * n / total:.1f}%)"
    values = _table(at, "Group")
    assert dict(zip(values["AESER"], values["Events"], strict=True)) == (
        events["AESER"].value_counts().to_dict()
    )

    # Relationship: a row of the AEREL values lists the events with that value, every arm.
    at.radio(key="ae_dimension").set_value("relationship").run()
    assert not at.exception
    values = _table(at, "Group")
    assert values.columns.tolist() == ["Group", "AEREL", "Events", "Subjects"]
    aerel = events["AEREL"].where(~_blank(events["AEREL"]), "(blank)")
    counts = events.groupby(aerel).agg(events=("USUBJID", "size"), subjects=("USUBJID", "nunique"))
    shown = values.set_index("AEREL")
    assert shown["Events"].to_dict() == counts["events"].to_dict()
    assert shown["Subjects"].to_dict() == counts["subjects"].to_dict()
    assert (
        shown.loc["POSSIBLE", "Group"] == "Related" and shown.loc["NONE", "Group"] == "Not related"
    )
    row = values["AEREL"].tolist().index("POSSIBLE")
    _select(at, "ae_values_relationship_False", row, "Events")
    title, listing = _drilldown(at)
    assert title == "**Events behind: AEREL = POSSIBLE · all arms**"
    assert _keys(listing, "USUBJID", "AESEQ") == _keys(
        events[events["AEREL"] == "POSSIBLE"], "USUBJID", "seq"
    )
    assert set(listing["AEREL"]) == {"POSSIBLE"}
    # The blank value: the events without an AEREL ("Unknown").
    assert shown.loc["(blank)", "Group"] == "Unknown"
    _select(at, "ae_values_relationship_False", values["AEREL"].tolist().index("(blank)"), "AEREL")
    title, listing = _drilldown(at)
    assert title == "**Events behind: AEREL = (blank) · all arms**"
    unknown = events[_blank(events["AEREL"])]
    assert _keys(listing, "USUBJID", "AESEQ") == _keys(unknown, "USUBJID", "seq")
    assert len(listing) == 4


def test_page_seed_grade_dimension(demo_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seed = pd.DataFrame(
        SEED_ADVERSE_EVENTS,
        columns=["subject", "after", "duration", "pt", "soc", "sev", "grade", "serious", "rel"],
    ).assign(grade=lambda f: f["grade"].astype(int))
    at = _open(demo_db_url, "NCT06466850", monkeypatch)
    at.radio(key="ae_dimension").set_value("grade").run()
    assert not at.exception
    levels = _table(at, "Level").set_index("Level")["Exosome (N=20)"].to_dict()
    worst = seed.groupby("subject")["grade"].max()
    for grade in range(1, 6):
        n = int((worst == grade).sum())
        if f"Grade {grade}" in levels:
            assert levels[f"Grade {grade}"] == f"{n} ({100 * n / 20:.1f}%)", grade
        else:
            assert n == 0
    values = _table(at, "Group")
    assert dict(zip(values["AETOXGR"], values["Events"], strict=True)) == {
        str(g): n for g, n in seed["grade"].value_counts().items()
    }
    # The "Grade 2" cell: the grade-2 AEs of the subjects whose worst grade is 2.
    row = list(levels).index("Grade 2")
    _select(at, "ae_level_table_grade_False", row, "Exosome (N=20)")
    title, listing = _drilldown(at)
    assert title == "**Events behind: Maximum CTCAE grade (AETOXGR): Grade 2 · Exosome**"
    expected = seed[(seed["grade"] == 2) & seed["subject"].map(worst).eq(2)]
    assert len(listing) == len(expected) > 0
    assert listing["USUBJID"].nunique() == expected["subject"].nunique()
    assert set(listing["AETOXGR"]) == {"2"}


@pytest.mark.parametrize("later_saes", [0, 3])
def test_page_sae_listing_marks_new_since_the_previous_cut(
    demo_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, later_saes: int
) -> None:
    """DEMO-MULTI as built (its five SAEs all date from the first cut: none is new), and a copy
    where three AEs first held by the later cut are made serious (new SAEs among old ones)."""
    url = demo_db_url
    if later_saes:
        url = build_demo_database(tmp_path)
        with session_scope(make_engine(url)) as session:
            session.execute(
                text(
                    "UPDATE adverseevent SET serious = 'Y' WHERE id IN (SELECT ae.id FROM "
                    "adverseevent ae JOIN subject s ON s.id = ae.subject_pk WHERE s.study_id = "
                    "'DEMO-MULTI' AND ae.serious = 'N' AND ae.first_cut_id = (SELECT max(id) "
                    "FROM datacut WHERE study_id = 'DEMO-MULTI') ORDER BY ae.id LIMIT :n)"
                ),
                {"n": later_saes},
            )
            rebuild_precomputed_counts(session, "DEMO-MULTI")
    engine = make_engine(url)
    cuts = pd.read_sql_query(
        "SELECT id FROM datacut WHERE study_id = 'DEMO-MULTI' ORDER BY id", engine
    )["id"].tolist()
    raw = pd.read_sql_query(
        "SELECT s.usubjid, ae.seq, ae.first_cut_id FROM adverseevent ae "
        "JOIN subject s ON s.id = ae.subject_pk "
        "WHERE s.study_id = 'DEMO-MULTI' AND upper(ae.serious) = 'Y'",
        engine,
    )
    engine.dispose()
    assert len(cuts) == 2
    earlier = cuts[-2]  # the page compares with the cut before the latest by default
    new = raw[raw["first_cut_id"] > earlier]
    assert len(new) == later_saes and len(raw) == 5 + later_saes <= 500
    at = _open(url, "DEMO-MULTI", monkeypatch)
    saes = next(d.value for d in at.dataframe if "USUBJID" in d.value.columns)
    assert "New" in saes.columns and len(saes) == len(raw)
    flags = saes["New"].astype(bool).tolist()
    assert flags == sorted(flags, reverse=True)  # the new ones first
    assert sum(flags) == len(new)
    listed_new = saes[saes["New"].astype(bool)].assign(USUBJID=lambda f: _codes(f["USUBJID"]))
    assert _keys(listed_new, "USUBJID", "AESEQ") == _keys(new)
    assert any(
        # Named by the study's own count: the cut before the latest of its cuts.
        f"{len(new)} new since cut {len(cuts) - 1}, listed first" in str(c.value)
        for c in at.caption
    )


def test_page_msg_sae_criteria_and_study_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ae, dm = _read(MSG_DIR, "ae"), _read(MSG_DIR, "dm")
    url = new_database_url(tmp_path, "msg-page")
    engine = make_engine(url)
    import_sdtm(engine, MSG_DIR, study_id="MSG")
    engine.dispose()
    at = _open(url, "MSG", monkeypatch)
    saes = next(d.value for d in at.dataframe if "USUBJID" in d.value.columns)
    saes = saes.assign(USUBJID=_codes(saes["USUBJID"]))
    serious = ae[ae["AESER"] == "Y"].merge(dm[["USUBJID", "RFXSTDTC"]], on="USUBJID")
    got = sorted(
        zip(saes["USUBJID"], saes["AESEQ"].astype(int), saes["Seriousness criteria"], strict=True)
    )
    assert got == sorted(
        (str(r["USUBJID"]), int(r["AESEQ"]), _criteria(r)) for _, r in serious.iterrows()
    )
    # Study day counts from the first dose (no day 0); AESTDY is shown as given beside it.
    for _, r in serious.iterrows():
        shown = saes[(saes["USUBJID"] == r["USUBJID"]) & (saes["AESEQ"] == r["AESEQ"])].iloc[0]
        delta = (pd.Timestamp(r["AESTDTC"][:10]) - pd.Timestamp(r["RFXSTDTC"][:10])).days
        assert shown["Study day"] == (delta + 1 if delta >= 0 else delta)
        assert shown["AESTDY"] == int(r["AESTDY"])
    # The day rule is behind the listing caption's help icon.
    assert any(
        "Study day: counted from the subject's first dose" in str(c.proto.help) for c in at.caption
    )


def test_page_a_closed_class_opens_and_its_term_cell_drills_down(
    pilot_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the first class's table is drawn; the second, once opened, lists its terms and a
    click on a term's total cell lists that term's events (pandas on the pilot's files)."""
    events = reference(PILOT_DIR)
    at = _open(pilot_db_url, "CDISCPILOT01", monkeypatch)
    assert sum(d.value.columns[0] == "Term" for d in at.dataframe) == 1
    by_class = events.groupby("soc").agg(subjects=("USUBJID", "nunique"), n=("seq", "size"))
    second = by_class.sort_values(["subjects", "n"], ascending=False, kind="stable").index[1]
    at.session_state[soc_expander_key(str(second))] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [d.value for d in at.dataframe if d.value.columns[0] == "Term"]
    assert len(tables) == 2
    terms = tables[1]
    in_class = events[events["soc"] == second]
    assert set(terms["Term"][1:]) == set(in_class["pt"])  # row 0: the class's own row
    total = str(terms.columns[-1])
    pt = str(terms["Term"].iloc[1])
    digest = hashlib.sha1(str(second).encode()).hexdigest()[:10]
    _select(at, f"ae_terms_{digest}_False_0.0", 1, total)
    title, listing = _drilldown(at)
    assert pt in title
    expected = in_class[in_class["pt"] == pt]
    assert _keys(listing, "USUBJID", "AESEQ") == _keys(expected, "USUBJID", "seq")
