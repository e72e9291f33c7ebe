"""The monitoring pack's laboratory safety section (issue #21): the CDISC pilot's ALT shift table
per arm and its potential Hy's law case against the SDTM files read with pandas, the PDF's labs
pages laid out (no heading alone at a page's foot, no text past the page's edge; rendered to PNG
in tests/artifacts/report to be looked at), pooled for a blinded viewer, one site's subjects for
a one-site pack, and a plain sentence for a study without laboratory data."""

import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pyreadstat
import pytest
from pypdf import PdfReader
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import make_engine
from dashboard.metrics.blinding import POOLED
from dashboard.precomputed import rebuild_lab_summaries
from dashboard.queries import studies
from dashboard.report.labs import NO_LAB_DATA, SUMMARY_MISSING, build_lab_safety
from dashboard.report.pack import MonitoringPack, build_pack
from dashboard.report.pdf import MARGIN, PAGE_SIZE, pack_pdf
from dashboard.report.workbook import HYS_LAW_SHEET, LAB_SHIFT_SHEET, pack_workbook
from dashboard.views.context import ViewContext
from tests.conftest import PROJECT_ROOT
from tests.databases import copy_database
from tests.test_report_layout import orphan_headings, outline_headings

PILOT, SEED, MULTI = "CDISCPILOT01", "NCT06466850", "DEMO-MULTI"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "report"
LAB_HEADING = "Laboratory safety"


@dataclass
class Rendered:
    pack: MonitoringPack
    pdf: bytes
    xlsx: bytes

    @property
    def reader(self) -> PdfReader:
        return PdfReader(io.BytesIO(self.pdf))

    def sheet(self, name: str) -> pd.DataFrame:
        rows = list(openpyxl.load_workbook(io.BytesIO(self.xlsx))[name].values)
        return pd.DataFrame(rows[1:], columns=rows[0])


def _context(
    engine: Engine,
    study_id: str,
    *,
    unblinded: bool = True,
    sites: tuple[str, ...] | None = None,
) -> ViewContext:
    with Session(engine) as session:
        info = studies.study_info(session, study_id=study_id)
    assert info is not None
    return ViewContext.for_viewer(info, unblinded=unblinded, scope=sites, viewer_sites=sites)


def _rendered(engine: Engine, study_id: str) -> Rendered:
    with Session(engine) as session:
        pack = build_pack(session, _context(engine, study_id))
    return Rendered(pack, pack_pdf(pack), pack_workbook(pack))


@pytest.fixture(scope="module")
def pilot_engine(pilot_db_url: str) -> Iterator[Engine]:
    engine = make_engine(pilot_db_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def pilot(pilot_engine: Engine) -> Rendered:
    return _rendered(pilot_engine, PILOT)


# -- the reference: the SDTM files ---------------------------------------------------------------


def _xpt(folder: Path, name: str) -> pd.DataFrame:
    frame, _meta = pyreadstat.read_xport(str(folder / f"{name}.xpt"))
    return frame


def _class(records: pd.DataFrame) -> pd.Series:
    """LOW / NORMAL / HIGH: LBNRIND as given, else the value against the normal range."""
    given = records["LBNRIND"].where(records["LBNRIND"].isin(["LOW", "NORMAL", "HIGH"]))
    value, low, high = records["LBSTRESN"], records["LBSTNRLO"], records["LBSTNRHI"]
    derived = pd.Series(None, index=records.index, dtype=object)
    known = value.notna() & (low.notna() | high.notna())
    derived[known] = "NORMAL"
    derived[known & (value < low)] = "LOW"
    derived[known & (value > high)] = "HIGH"
    return given.fillna(derived)


def expected_shift(folder: Path, test: str) -> pd.DataFrame:
    """Per DM ACTARM, baseline class (the LBBLFL=Y record; MISSING without one) against the worst
    post-baseline class (records not flagged baseline, after the baseline's date and on or after
    RFXSTDTC): HIGH if any HIGH and no LOW, LOW if any LOW and no HIGH, LOW AND HIGH if both,
    NORMAL otherwise. Columns arm, baseline, worst, n (non-zero cells), and the subjects' site."""
    lb = _xpt(folder, "lbch")
    dm = _xpt(folder, "dm").set_index("USUBJID")
    lb = lb[lb["LBTESTCD"] == test].copy()
    lb["date"] = pd.to_datetime(lb["LBDTC"].str[:10], errors="coerce")
    lb["dose"] = lb["USUBJID"].map(pd.to_datetime(dm["RFXSTDTC"].str[:10], errors="coerce"))
    lb["class"] = _class(lb)
    flagged = lb[lb["LBBLFL"] == "Y"].sort_values("date").groupby("USUBJID").tail(1)
    baseline = flagged.set_index("USUBJID")
    lb["base_date"] = lb["USUBJID"].map(baseline["date"])
    post = lb[
        (lb["LBBLFL"] != "Y")
        & (lb["base_date"].isna() | (lb["date"] > lb["base_date"]))
        & (lb["date"] >= lb["dose"])
        & lb["class"].notna()
    ]
    seen = post.groupby("USUBJID")["class"].agg(set)
    worst = seen.map(
        lambda c: (
            "LOW AND HIGH"
            if {"LOW", "HIGH"} <= c
            else "HIGH"
            if "HIGH" in c
            else "LOW"
            if "LOW" in c
            else "NORMAL"
        )
    )
    subjects = pd.DataFrame({"worst": worst})
    subjects["baseline"] = baseline["class"].reindex(subjects.index).fillna("MISSING")
    subjects["arm"] = dm["ACTARM"].reindex(subjects.index)
    subjects["site"] = dm["SITEID"].reindex(subjects.index)
    return subjects.reset_index()


def _cells(subjects: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    counts = subjects.groupby(["arm", "baseline", "worst"]).size().reset_index(name="n")
    return {
        (str(a), str(b), str(w)): int(n)
        for a, b, w, n in zip(
            counts["arm"], counts["baseline"], counts["worst"], counts["n"], strict=True
        )
    }


def _sheet_cells(sheet: pd.DataFrame, test: str, *, total: bool) -> dict[tuple[str, str, str], int]:
    rows = sheet[(sheet["Test code"] == test) & (sheet["Table"] == "Range") & (sheet["n"] > 0)]
    rows = rows[(rows["Arm"] == "Total") == total]
    return {
        (str(a), str(b), str(w)): int(n)
        for a, b, w, n in zip(
            rows["Arm"], rows["Baseline"], rows["Worst post-baseline"], rows["n"], strict=True
        )
    }


# -- the CDISC pilot -----------------------------------------------------------------------------


def test_alt_shift_table_per_arm_is_the_sdtm_files(pilot: Rendered, shared_data: Path) -> None:
    expected = expected_shift(shared_data / "sdtm" / "cdiscpilot01", "ALT")
    sheet = pilot.sheet(LAB_SHIFT_SHEET)
    assert _sheet_cells(sheet, "ALT", total=False) == _cells(expected)
    # Total: every arm's subjects together.
    pooled = _cells(expected.assign(arm="Total"))
    assert _sheet_cells(sheet, "ALT", total=True) == pooled
    # N per arm: the subjects with a post-baseline value, as the PDF titles each table.
    alt = sheet[(sheet["Test code"] == "ALT") & (sheet["Table"] == "Range")]
    n_by_arm = alt.groupby("Arm")["N"].first().to_dict()
    assert n_by_arm == {**expected["arm"].value_counts().to_dict(), "Total": len(expected)}
    text = _section_text(pilot)
    for arm, n in n_by_arm.items():
        assert f"{arm} (N = {n})" in text
    # Each of the pack's tests is there, with its range table and a CTCAE grade table.
    for code in ("ALT", "AST", "BILI", "CREAT"):
        tables = set(sheet.loc[sheet["Test code"] == code, "Table"])
        assert tables == {"Range", "CTCAE grade"}, code
    # The per cent is of the arm's N.
    shown = alt[alt["n"] > 0]
    assert ((shown["%"] - 100 * shown["n"] / shown["N"]).abs() < 0.051).all()


def test_hys_law_sheet_and_pdf_list_the_pilots_case(pilot: Rendered, shared_data: Path) -> None:
    folder = shared_data / "sdtm" / "cdiscpilot01"
    lb = _xpt(folder, "lbch")
    dm = _xpt(folder, "dm").set_index("USUBJID")
    subject = "01-705-1186"
    mine = lb[(lb["USUBJID"] == subject) & (lb["LBBLFL"] != "Y")].copy()
    mine["date"] = pd.to_datetime(mine["LBDTC"].str[:10])
    mine = mine[mine["date"] >= pd.Timestamp(str(dm.loc[subject, "RFXSTDTC"])[:10])]
    mine["ratio"] = mine["LBSTRESN"] / mine["LBSTNRHI"]
    peaks = mine.sort_values(["ratio", "date"], ascending=[False, True]).groupby("LBTESTCD").head(1)
    peak = peaks.set_index("LBTESTCD")

    cases = pilot.sheet(HYS_LAW_SHEET)
    assert cases["USUBJID"].tolist() == [subject]
    row = cases.iloc[0]
    assert (str(row["Site"]), row["Arm"]) == (dm.loc[subject, "SITEID"], dm.loc[subject, "ACTARM"])
    for code, name in (("ALT", "ALT"), ("AST", "AST"), ("BILI", "bilirubin")):
        assert row[f"Peak {name} (x ULN)"] == pytest.approx(peak.loc[code, "ratio"])
        assert pd.Timestamp(row[f"Peak {name} date"]) == peak.loc[code, "date"]
    text = _section_text(pilot)
    cases_text = text[text.index("Potential Hy's law cases") :]
    assert subject in cases_text
    bilirubin = float(peak["ratio"].to_dict()["BILI"])
    assert f"{bilirubin:.2f}" in cases_text
    # The rule is stated under the plot.
    assert "peak ALT or AST at or above 3 x ULN and peak total bilirubin at or above" in " ".join(
        text.split()
    )


def _section_text(rendered: Rendered) -> str:
    """The PDF's text from the Laboratory safety heading (not the contents' entry, which has its
    page number on its line) to the next section's heading, Site risk."""
    pages = [p.extract_text() for p in rendered.reader.pages]
    start = max(
        i for i, page in enumerate(pages) if LAB_HEADING in [ln.strip() for ln in page.splitlines()]
    )
    text = "\n".join(pages[start:])
    text = text[text.index(LAB_HEADING + "\n") :]
    end = text.find("\nSite risk\n")
    return text if end < 0 else text[:end]


def _render(pdf: bytes, name: str, first: int, last: int) -> list[Path]:
    """Pages ``first``..``last`` (1-based) as PNG files in tests/artifacts/report/."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm (poppler-utils) is missing: .ci/run installs it")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    path = ARTIFACTS / f"{name}.pdf"
    path.write_bytes(pdf)
    command = [tool, "-r", "70", "-png", "-f", str(first), "-l", str(last)]
    subprocess.run([*command, str(path), str(ARTIFACTS / name)], check=True)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def _words_past_the_margins(pdf_path: Path, first: int, last: int) -> tuple[list[str], list[str]]:
    """The pages' words (``pdftotext -bbox``), and those that reach past the page's left or
    right margin."""
    html = subprocess.run(
        ["pdftotext", "-bbox", "-f", str(first), "-l", str(last), str(pdf_path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    width = PAGE_SIZE[0]
    words, out = [], []
    for x_min, x_max, word in re.findall(
        r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', html
    ):
        words.append(word)
        if float(x_min) < MARGIN - 1 or float(x_max) > width - MARGIN + 1:
            out.append(word)
    return words, out


def test_the_labs_pages_are_laid_out(pilot: Rendered) -> None:
    reader = pilot.reader
    outline = outline_headings(reader)
    titles = [t for t, _ in outline]
    expected = [
        LAB_HEADING,
        "ALT: Alanine Aminotransferase (U/L)",
        "AST: Aspartate Aminotransferase (U/L)",
        "BILI: Bilirubin (umol/L)",
        "CREAT: Creatinine (umol/L)",
        "eDISH: peak transaminase against peak total bilirubin",
        "Potential Hy's law cases",
    ]
    at = titles.index(LAB_HEADING)
    assert titles[at : at + len(expected)] == expected
    # After the SAE listing, before site risk.
    assert titles.index("Serious adverse events") < at < titles.index("Site risk")
    assert orphan_headings(reader) == []
    first = dict(outline)[LAB_HEADING] + 1
    last = dict(outline)["Potential Hy's law cases"] + 1
    pngs = _render(pilot.pdf, "labs-pilot", first, last)
    assert len(pngs) == last - first + 1
    words, past = _words_past_the_margins(ARTIFACTS / "labs-pilot.pdf", first, last)
    assert len(words) > 1000 and past == []  # the tables' words are read, and none is cut
    # The eDISH plot is drawn: an image on the page of its heading.
    edish_page = dict(outline)["eDISH: peak transaminase against peak total bilirubin"]
    resources = reader.pages[edish_page]["/Resources"].get_object()
    assert "/XObject" in resources  # type: ignore[operator]


def test_a_blinded_viewer_gets_the_arms_pooled(pilot_engine: Engine, pilot: Rendered) -> None:
    with Session(pilot_engine) as session:
        blinded = build_lab_safety(session, _context(pilot_engine, PILOT, unblinded=False))
    sheet = blinded.shift_sheet
    assert set(sheet["Arm"]) == {POOLED}
    assert blinded.hys_law_cases["Arm"].tolist() == [POOLED]
    # The pooled counts are the unblinded viewer's totals.
    unblinded = pilot.sheet(LAB_SHIFT_SHEET)
    totals = _sheet_cells(unblinded, "ALT", total=True)
    pooled = _sheet_cells(sheet.assign(Arm="Total"), "ALT", total=True)
    assert pooled == totals


def test_a_one_site_pack_counts_that_sites_subjects(
    pilot_engine: Engine, shared_data: Path
) -> None:
    expected = expected_shift(shared_data / "sdtm" / "cdiscpilot01", "ALT")
    with Session(pilot_engine) as session:
        at_701 = build_lab_safety(session, _context(pilot_engine, PILOT, sites=("701",)))
        at_705 = build_lab_safety(session, _context(pilot_engine, PILOT, sites=("705",)))
    assert at_701.hys_law == () and at_701.hys_law_cases.empty
    assert at_705.hys_law == ("01-705-1186",)
    assert set(at_701.edish["site_id"]) == {"701"}
    sheet = at_701.shift_sheet
    assert _sheet_cells(sheet, "ALT", total=False) == _cells(expected[expected["site"] == "701"])


# -- studies without the pack's tests ------------------------------------------------------------


def test_a_study_without_laboratory_data_says_so(msg_db_url: str) -> None:
    engine = make_engine(msg_db_url)  # the SDTM-MSG sample has no LB
    rendered = _rendered(engine, "MSG")
    engine.dispose()
    assert not rendered.pack.lab_safety.has_lab_data
    text = _section_text(rendered)
    assert text.splitlines()[:2] == [LAB_HEADING, NO_LAB_DATA]
    assert rendered.sheet(LAB_SHIFT_SHEET).empty and rendered.sheet(HYS_LAW_SHEET).empty
    assert orphan_headings(rendered.reader) == []


def test_a_study_without_the_pack_tests_says_which_are_missing(
    demo_db_url: str, tmp_path: Path
) -> None:
    # The seed demo with its liver and kidney tests taken out: haemoglobin alone is left.
    copy = copy_database(demo_db_url, tmp_path, "haemoglobin-only")
    engine = make_engine(copy)
    with Session(engine) as session:
        session.execute(
            text(
                "DELETE FROM finding WHERE domain = 'LB' AND test_code IN "
                "('ALT', 'AST', 'BILI', 'CREAT')"
            )
        )
        # What a load would count of what is left (the page reads the load's counts).
        rebuild_lab_summaries(session, SEED)
        session.commit()
    rendered = _rendered(engine, SEED)
    engine.dispose()
    section = rendered.pack.lab_safety
    assert section.has_lab_data and section.tests == ()
    text_shown = " ".join(_section_text(rendered).split())
    assert "None of ALT, AST, BILI, CREAT in this cut: no shift tables." in text_shown
    assert "Potential Hy's law cases None: no ALT, AST or total bilirubin" in text_shown
    assert rendered.sheet(HYS_LAW_SHEET).empty
    assert orphan_headings(rendered.reader) == []


def test_a_study_stored_before_the_lab_counts_says_to_import_again(
    demo_db_url: str, tmp_path: Path
) -> None:
    # What a database upgraded to migration 0007 holds: findings, and no load-time lab counts.
    copy = copy_database(demo_db_url, tmp_path, "before-0007")
    engine = make_engine(copy)
    with Session(engine) as session:
        for table in ("labsubjectsummary", "labgradesummary", "liversummary", "labcount"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("DELETE FROM labboxstats"))  # the all-sites boxes
        session.commit()
    rendered = _rendered(engine, SEED)
    engine.dispose()
    section = rendered.pack.lab_safety
    assert section.summary_missing
    # Not "No laboratory data": the study has some, counted at its next import.
    shown = " ".join(_section_text(rendered).split())
    assert shown.startswith(f"{LAB_HEADING} {SUMMARY_MISSING}")
    assert NO_LAB_DATA not in shown
    assert orphan_headings(rendered.reader) == []
