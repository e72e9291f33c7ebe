"""The monitoring pack (issue #10): the workbook and the PDF hold the summary's figures, the new
rows of a later cut are exactly those it added, the CLI writes both files or nothing.

References: ``study-monitor summary --json`` (``study_summary``), and pandas on the raw tables of
the database or, for the CDISC pilot, on the SDTM files themselves.
"""

import datetime as dt
import io
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from dashboard import access
from dashboard.cli import app
from dashboard.db import make_engine, session_scope
from dashboard.metrics.screen_failures import mark_new_subjects, with_new_failures
from dashboard.queries.changes import new_failures_by_criterion, new_subjects_by_column
from dashboard.queries.screen_failures import failed_subjects, failures_by_criterion
from dashboard.queries.studies import data_cuts
from dashboard.report.files import staged_files
from dashboard.report.pack import NEW, MonitoringPack, UnknownCutError, as_date, build_pack
from dashboard.report.pdf import _column_widths, pack_pdf
from dashboard.report.workbook import SAE_SHEET, excel_bytes, excel_value, pack_workbook
from dashboard.views.context import ViewContext
from dashboard.views.format import plural
from dashboard.views.overview import study_summary
from tests.conftest import PROJECT_ROOT, build_demo_database

ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "report"
SEED, MULTI, PILOT = "NCT06466850", "DEMO-MULTI", "CDISCPILOT01"
SHEETS = [
    "Summary",
    "Subjects",
    "Sites",
    "Screen failures",
    "Failures by criterion",
    "Table 1",
    "AE summary",
    "AEs by SOC and PT",
    "AEs",
    SAE_SHEET,
    "Lab shifts",
    "Hy's law",
    "Site risk",
    "Unreviewed SAEs",
    "Open queries",
]
runner = CliRunner()


# -- helpers -------------------------------------------------------------------------------------


def _sheet(book: openpyxl.Workbook, name: str) -> pd.DataFrame:
    rows = list(book[name].values)
    return pd.DataFrame(rows[1:], columns=rows[0])


def _open_workbook(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def _pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def _section(pages: list[str], heading: str) -> tuple[int, str]:
    """The page (index) where ``heading`` stands on a line of its own, and its text from there to
    the page's end: sections start where the one before ended, not always on a new page. The
    last such page: the contents list names every heading too."""
    for index, page in reversed(list(enumerate(pages))):
        lines = page.splitlines()
        stripped = [line.strip() for line in lines]
        if heading in stripped:
            return index, "\n".join(lines[stripped.index(heading) :])
    raise AssertionError(f"no heading {heading!r} in the PDF")


def _headline_in_pdf(pages: list[str]) -> dict[str, list[int]]:
    """The headline table of the PDF: {figure: [value, new since]} as the text gives them."""
    _, page = _section(pages, "Headline figures and changes")
    found: dict[str, list[int]] = {}
    for match in re.finditer(r"(?m)^([A-Z][^\n\d]*?)\n((?:[ \t]*\d+\n)+)", page):
        found[match.group(1).strip()] = [int(n) for n in match.group(2).split()]
    return found


def _raw(engine: Engine, study_id: str) -> dict[str, pd.DataFrame]:
    """The study's subject and AE rows as stored (study ids here are the tests' own constants)."""
    subjects = pd.read_sql_query(
        "SELECT s.usubjid, s.population, s.first_cut_id, s.updated_cut_id, site.site_id "
        f"FROM subject s LEFT JOIN site ON site.id = s.site_pk WHERE s.study_id = '{study_id}'",
        engine,
    )
    events = pd.read_sql_query(
        "SELECT s.usubjid, ae.seq, ae.serious, ae.first_cut_id FROM adverseevent ae "
        f"JOIN subject s ON s.id = ae.subject_pk WHERE s.study_id = '{study_id}'",
        engine,
    )
    return {"subjects": subjects, "events": events}


def _check_pack_files(pack: MonitoringPack, figures: dict[str, Any]) -> tuple[bytes, bytes]:
    """Both files hold the summary's figures; returns (pdf, xlsx)."""
    pdf, xlsx = pack_pdf(pack), pack_workbook(pack)
    book = _open_workbook(xlsx)
    assert book.sheetnames == SHEETS
    for name in SHEETS:  # header on row 1, frozen, filters over it
        assert book[name].freeze_panes == "A2", name
        assert (book[name].auto_filter.ref or "").startswith("A1:"), name
    summary = _sheet(book, "Summary").set_index("Figure")["Value"]
    expected = {
        "Screened": figures["screened"],
        "Screen failures": figures["screen_failures"],
        "Enrolled": figures["enrolled"],
        "Sites": figures["sites"],
        "Subjects with an AE": figures["ae_subjects"],
        "AE events": figures["ae_events"],
        "Subjects with an SAE": figures["sae_subjects"],
        "SAE events": figures["sae_events"],
        **{f"Enrolled, {arm}": n for arm, n in figures["enrolled_by_arm"].items()},
    }
    assert {k: summary[k] for k in expected} == expected
    # One row per listed thing: subjects, screen failures, AEs, and SAEs (the contract sheet).
    assert len(_sheet(book, "Subjects")) == figures["screened"]
    assert len(_sheet(book, "Screen failures")) == figures["screen_failures"]
    assert len(_sheet(book, "AEs")) == figures["ae_events"]
    saes = _sheet(book, SAE_SHEET)
    assert len(saes) == figures["sae_events"]
    assert set(saes["AESER"]) <= {"Y"}
    assert saes["USUBJID"].nunique() == figures["sae_subjects"]
    # Dates are dates: every filled "Screening date" cell is an Excel date.
    header = [c.value for c in book["Subjects"][1]]
    column = book["Subjects"].iter_cols(
        min_col=header.index("Screening date") + 1, max_col=header.index("Screening date") + 1
    )
    dated = [c for c in next(column)[1:] if c.value is not None]
    assert dated and all(c.is_date and c.number_format == "yyyy-mm-dd" for c in dated)
    # The PDF's headline table says the same.
    pages = _pdf_pages(pdf)
    shown = _headline_in_pdf(pages)
    for label, value in expected.items():
        assert shown[label][0] == value, label
    _, sae_page = _section(pages, "Serious adverse events")
    if not saes.empty:  # headed in words, as the screen's listing; no SDTM name as a header
        cells = [line.strip() for line in sae_page.splitlines()]  # a cell a line, words wrapped
        words = " ".join(cells)
        assert all(h in words for h in ("Subject Site", "Body system", "Start date", "Outcome"))
        assert not {"USUBJID", "SITEID", "AEBODSYS", "AESTDTC", "AEOUT"} & set(cells)
    if figures["sae_events"]:
        events = figures["sae_events"]
        serious = f"{events} serious {'AE' if events == 1 else 'AEs'}"
        assert f"{serious} in {plural(figures['sae_subjects'], 'subject')}" in sae_page
    return pdf, xlsx


def _render(pdf: bytes, name: str) -> list[Path]:
    """The PDF's pages as PNG files in tests/artifacts/report/ (pdftoppm), to be looked at."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm (poppler-utils) is missing: .ci/run installs it")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    (ARTIFACTS / f"{name}.pdf").write_bytes(pdf)
    subprocess.run(
        [tool, "-r", "60", "-png", str(ARTIFACTS / f"{name}.pdf"), str(ARTIFACTS / name)],
        check=True,
    )
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


# -- the seed demo, the CDISC pilot --------------------------------------------------------------


def test_seed_pack_holds_the_summary_figures(session: Session, demo_engine: Engine) -> None:
    pack = build_pack(session, ViewContext(study_id=SEED))
    figures = study_summary(session, study_id=SEED)
    raw = _raw(demo_engine, SEED)
    # The summary itself against the raw rows (what "independent" means for the demo).
    assert figures["screened"] == len(raw["subjects"]) == 36
    assert figures["sae_events"] == (raw["events"]["serious"] == "Y").sum() == 1
    pdf, xlsx = _check_pack_files(pack, figures)
    book = _open_workbook(xlsx)
    first, latest = data_cuts(session, study_id=SEED)
    assert pack.since_cut is not None and pack.since_cut.id == first.id  # the sidebar's default
    assert pack.cut is not None and pack.cut.id == latest.id
    # The seed's one SAE is new in the second cut: marked in the sheet and in the PDF.
    saes = _sheet(book, SAE_SHEET)
    assert saes[f"Since cut {first.number}"].tolist() == [NEW]
    _, sae_page = _section(_pdf_pages(pdf), "Serious adverse events")
    assert f"1 new since cut {first.number}" in sae_page
    # Table 1 leads with the new subjects per arm; its one arm's column is the enrolled (a
    # single-arm study has no Overall column repeating it).
    table = _sheet(book, "Table 1")
    assert not any(str(c).startswith("Overall") for c in table.columns)
    overall = next(c for c in table.columns if str(c).endswith(f"(n={figures['enrolled']})"))
    assert table.iloc[0]["Characteristic"] == f"New since cut {first.number}"
    assert pack.changes is not None
    assert int(table.iloc[0][overall]) == pack.changes.new_enrolled
    pngs = _render(pdf, "seed")
    assert len(pngs) == len(PdfReader(io.BytesIO(pdf)).pages)


def test_pilot_pack_holds_the_summary_figures_and_its_build_time(
    pilot_db_url: str, shared_data: Path
) -> None:
    engine = make_engine(pilot_db_url)
    started = time.perf_counter()
    with Session(engine) as session:
        pack = build_pack(session, ViewContext(study_id=PILOT))
        figures = study_summary(session, study_id=PILOT)
    built = time.perf_counter()
    pdf, xlsx = pack_pdf(pack), pack_workbook(pack)
    finished = time.perf_counter()
    timing = (
        f"CDISC pilot pack: figures {built - started:.2f} s, PDF and workbook "
        f"{finished - built:.2f} s, in all {finished - started:.2f} s "
        f"({len(PdfReader(io.BytesIO(pdf)).pages)} PDF pages, {len(xlsx) // 1024} KiB workbook)"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "pilot-build-time.txt").write_text(timing + "\n")
    print(timing)
    assert finished - started < 60, timing  # seconds on a shared two-core machine

    # The reference: the SDTM files themselves.
    folder = shared_data / "sdtm" / "cdiscpilot01"
    dm = pd.read_sas(folder / "dm.xpt", format="xport", encoding="utf-8")
    ae = pd.read_sas(folder / "ae.xpt", format="xport", encoding="utf-8")
    assert figures["screened"] == len(dm) == 306
    assert figures["ae_events"] == len(ae) == 961
    assert figures["sae_events"] == (ae["AESER"] == "Y").sum() == 3
    assert figures["sae_subjects"] == ae.loc[ae["AESER"] == "Y", "USUBJID"].nunique()
    _check_pack_files(pack, figures)
    book = _open_workbook(xlsx)
    saes = _sheet(book, SAE_SHEET)
    assert sorted(saes["USUBJID"]) == sorted(ae.loc[ae["AESER"] == "Y", "USUBJID"])
    assert pack.since_cut is None and "Since cut" not in " ".join(map(str, saes.columns))
    # Onset dates as dates, equal to AESTDTC.
    for text, day in zip(saes["AESTDTC"], saes["Start date"], strict=True):
        assert isinstance(day, dt.datetime) and day.date().isoformat() == text
    pages = _pdf_pages(pdf)
    assert "Only one data cut is loaded" in pages[2]
    assert any("No IE domain in data cut" in p for p in pages)  # the pilot has no IE
    pngs = _render(pdf, "pilot")
    assert len(pngs) == len(pages)


# -- a later cut: exactly what it added ------------------------------------------------------------


def test_second_cut_of_the_multisite_demo_marks_exactly_what_it_added(
    session: Session, demo_engine: Engine
) -> None:
    first, _latest = data_cuts(session, study_id=MULTI)
    pack = build_pack(session, ViewContext(study_id=MULTI, since_cut_id=first.id))
    marker = f"Since cut {first.number}"
    raw = _raw(demo_engine, MULTI)
    subjects, events = raw["subjects"], raw["events"]
    new_subjects = subjects[subjects["first_cut_id"] > first.id]
    new_events = events[events["first_cut_id"] > first.id]
    assert len(new_subjects) > 0 and len(new_events) > 0  # the demo's second cut adds both

    book = _open_workbook(pack_workbook(pack))
    listed = _sheet(book, "Subjects")
    assert set(listed.loc[listed[marker] == NEW, "USUBJID"]) == set(new_subjects["usubjid"])
    changed = subjects[
        (subjects["first_cut_id"] <= first.id) & (subjects["updated_cut_id"] > first.id)
    ]
    assert set(listed.loc[listed[marker] == "changed", "USUBJID"]) == set(changed["usubjid"])
    failures = _sheet(book, "Screen failures")
    new_failed = new_subjects[new_subjects["population"] == "SCREEN FAILURE"]
    assert set(failures.loc[failures[marker] == NEW, "USUBJID"]) == set(new_failed["usubjid"])
    aes = _sheet(book, "AEs")
    assert Counter(aes.loc[aes[marker] == NEW, "USUBJID"]) == Counter(new_events["usubjid"])
    assert aes[marker].tolist() == sorted(aes[marker].tolist(), key=lambda m: m != NEW)  # first
    saes = _sheet(book, SAE_SHEET)
    serious_new = new_events[new_events["serious"] == "Y"]
    assert (saes[marker] == NEW).sum() == len(serious_new)

    # The PDF's headline: the new figures beside the totals.
    shown = _headline_in_pdf(_pdf_pages(pack_pdf(pack)))
    assert shown["Screened"] == [len(subjects), len(new_subjects)]
    assert shown["Screen failures"][1] == len(new_failed)
    enrolled = new_subjects[new_subjects["population"] == "ENROLLED"]
    assert shown["Enrolled"][1] == len(enrolled)
    assert shown["AE events"] == [len(events), len(new_events)]
    assert shown["SAE events"][1] == len(serious_new)


def test_pack_for_one_site_counts_that_site_only(session: Session, demo_engine: Engine) -> None:
    pack = build_pack(session, ViewContext(study_id=MULTI, scope=("101",)))
    figures = study_summary(session, study_id=MULTI, scope=("101",))
    raw = _raw(demo_engine, MULTI)["subjects"]
    assert figures["screened"] == (raw["site_id"] == "101").sum()
    _check_pack_files(pack, figures)
    assert set(pack.subjects["SITEID"]) == {"101"}
    assert pack.forecast is None  # the study's forecast is not a site's


def test_unknown_cut_is_refused(session: Session) -> None:
    _first, latest = data_cuts(session, study_id=MULTI)
    with pytest.raises(UnknownCutError, match="earlier cuts"):
        build_pack(session, ViewContext(study_id=MULTI, since_cut_id=latest.id))


# -- the "new since" queries behind the pages -----------------------------------------------------


def test_new_failures_by_criterion_and_the_drilldown_marker(
    session: Session, demo_engine: Engine
) -> None:
    first, _latest = data_cuts(session, study_id=MULTI)
    pairs = pd.read_sql_query(
        "SELECT s.usubjid, s.first_cut_id, c.code FROM eligibilityfinding f "
        "JOIN subject s ON s.id = f.subject_pk JOIN criterion c ON c.id = f.criterion_pk "
        f"WHERE s.study_id = '{MULTI}' AND s.population = 'SCREEN FAILURE'",
        demo_engine,
    )
    new = pairs[pairs["first_cut_id"] > first.id]
    found = new_failures_by_criterion(session, study_id=MULTI, scope=None, since_cut_id=first.id)
    assert dict(zip(found["code"], found["new_subjects"], strict=True)) == (
        new.groupby("code")["usubjid"].nunique().to_dict()
    )
    table = with_new_failures(
        failures_by_criterion(session, study_id=MULTI, scope=None), found
    ).set_index("code")
    assert (table["new_subjects"] <= table["subjects"]).all()
    code = str(found.sort_values("new_subjects").iloc[-1]["code"])
    listed = mark_new_subjects(
        failed_subjects(session, study_id=MULTI, scope=None, code=code),
        compare_cut_id=first.id,
    )
    assert set(listed.loc[listed["new"], "usubjid"]) == set(new.loc[new["code"] == code, "usubjid"])
    assert "first_cut_id" not in listed.columns
    no_compare = mark_new_subjects(
        failed_subjects(session, study_id=MULTI, scope=None, code=code), compare_cut_id=None
    )
    assert "new" not in no_compare.columns


def test_new_subjects_per_table_one_column(session: Session, demo_engine: Engine) -> None:
    first, _latest = data_cuts(session, study_id=MULTI)
    raw = pd.read_sql_query(
        "SELECT s.arm, s.population, s.first_cut_id, site.site_id FROM subject s "
        f"JOIN site ON site.id = s.site_pk WHERE s.study_id = '{MULTI}'",
        demo_engine,
    )
    new = raw[raw["first_cut_id"] > first.id]
    by_arm = new_subjects_by_column(
        session,
        study_id=MULTI,
        scope=None,
        since_cut_id=first.id,
        population="enrolled",
        by="arm",
    )
    enrolled = new[new["population"] == "ENROLLED"]
    assert dict(zip(by_arm["column"], by_arm["new_subjects"], strict=True)) == (
        enrolled.groupby("arm").size().to_dict()
    )
    by_site = new_subjects_by_column(
        session,
        study_id=MULTI,
        scope=("101", "102"),
        since_cut_id=first.id,
        population="screened",
        by="site",
    )
    kept = new[new["site_id"].isin(["101", "102"])]
    assert dict(zip(by_site["column"], by_site["new_subjects"], strict=True)) == (
        kept.groupby("site_id").size().to_dict()
    )


# -- the command ------------------------------------------------------------------------------------


def test_report_command_writes_both_files_and_audits(tmp_path: Path) -> None:
    db = build_demo_database(tmp_path / "db")
    out = tmp_path / "pack"
    result = runner.invoke(app, ["report", "--study", MULTI, "--out", str(out), "--db", db])
    assert result.exit_code == 0, result.output
    engine = make_engine(db)
    with Session(engine) as session:
        _first, latest = data_cuts(session, study_id=MULTI)
    stem = f"{MULTI}-pack-{latest.id}"
    assert result.output.split() == [str(out / f"{stem}.pdf"), str(out / f"{stem}.xlsx")]
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.pdf", f"{stem}.xlsx"]
    assert _pdf_pages((out / f"{stem}.pdf").read_bytes())[0].startswith("Monitoring pack")
    events = pd.read_sql_query("SELECT action, study_id, detail FROM auditevent", engine)
    exports = events[events["action"] == access.EXPORT]
    assert len(exports) == 1 and exports.iloc[0]["study_id"] == MULTI
    assert "monitoring pack" in str(exports.iloc[0]["detail"])

    # --as: the user's sites only.
    with session_scope(engine) as session:
        access.add_user(
            session,
            email="site101@example.org",
            role=access.INVESTIGATOR,
            study_id=MULTI,
            sites=["101"],
            actor="test",
        )
    scoped = tmp_path / "scoped"
    result = runner.invoke(
        app,
        [
            "report",
            "--study",
            MULTI,
            "--out",
            str(scoped),
            "--as",
            "site101@example.org",
            "--db",
            db,
        ],
    )
    assert result.exit_code == 0, result.output
    book = _open_workbook((scoped / f"{stem}.xlsx").read_bytes())
    assert set(_sheet(book, "Subjects")["SITEID"]) == {"101"}
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "NO-SUCH-STUDY"], "no study 'NO-SUCH-STUDY'"),
        (["--study", MULTI, "--since-cut", "999"], "is not an earlier data cut"),
        (["--study", SEED, "--as", "nobody@example.org"], "no user"),
    ],
)
def test_report_command_bad_input(
    demo_db_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "pack"
    result = runner.invoke(app, ["report", *args, "--out", str(out), "--db", demo_db_url])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not any(out.iterdir())  # nothing written, not even a staged file


def test_report_command_unwritable_folder(demo_db_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(
        app, ["report", "--study", SEED, "--out", str(blocker / "pack"), "--db", demo_db_url]
    )
    assert result.exit_code == 2
    assert "cannot write to" in result.output and "Traceback" not in result.output


def test_staged_files_leave_nothing_behind_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staged_files(tmp_path, {"a.pdf": b"1", "b.xlsx": b"2"}):
        raise RuntimeError("the audit could not be written")
    assert list(tmp_path.iterdir()) == []
    with staged_files(tmp_path, {"a.pdf": b"1", "b.xlsx": b"2"}) as paths:
        assert not any(p.exists() for p in paths)  # named only at the end
    assert sorted(p.read_bytes() for p in tmp_path.iterdir()) == [b"1", b"2"]


# -- the workbook's cells, the PDF's columns --------------------------------------------------------


def test_excel_values() -> None:
    assert excel_value(float("nan")) is None and excel_value(pd.NA) is None
    assert excel_value(pd.NaT) is None and excel_value(None) is None
    assert excel_value(pd.Timestamp("2024-03-05")) == dt.date(2024, 3, 5)
    assert excel_value(pd.Timestamp("2024-03-05 10:30")) == dt.datetime(2024, 3, 5, 10, 30)
    aware = dt.datetime(2024, 3, 5, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert excel_value(aware) == dt.datetime(2024, 3, 5, 8, 30)  # UTC, no zone
    assert excel_value("bad\x01text") == "badtext"
    assert as_date("2013-04") is None and as_date("2013-04-05") == dt.date(2013, 4, 5)


def test_download_workbook_keeps_text_as_text_and_dates_as_dates() -> None:
    frame = pd.DataFrame(
        {
            "USUBJID": ["01-701-1015", '=HYPERLINK("x")'],
            "Screening date": [dt.date(2014, 1, 2), None],
            "AGE": [63, None],
        }
    )
    book = _open_workbook(excel_bytes(frame, sheet="A sheet name that is far too long: x"))
    sheet = book[book.sheetnames[0]]
    assert book.sheetnames == ["A sheet name that is far too lo"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:C3"
    assert sheet["A3"].value == '=HYPERLINK("x")' and sheet["A3"].data_type == "s"
    assert sheet["B2"].is_date and sheet["B2"].value == dt.datetime(2014, 1, 2)
    assert sheet["C2"].value == 63 and sheet["C3"].value is None


def test_column_widths_fit_the_page_without_breaking_words() -> None:
    header = ["USUBJID", "Term", "Note"]
    cells = [["01-701-1015", "APPLICATION SITE PRURITUS", "word " * 80]]
    widths, fits = _column_widths(cells, header, 300.0, size=7.5)
    assert fits and sum(widths) == pytest.approx(300.0)
    assert widths[0] >= 40  # the code is never broken
    narrow, fits = _column_widths([cells[0] * 10], header * 10, 100.0, size=7.5)
    assert not fits and sum(narrow) == pytest.approx(100.0)  # shrunk alike: the caller says so


# -- "new since" on the pages ------------------------------------------------------------------------


def test_pages_show_what_is_new_since_the_compared_cut(
    demo_db_url: str, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_pages import open_page

    first, _latest = data_cuts(session, study_id=MULTI)
    pack = build_pack(session, ViewContext(study_id=MULTI, since_cut_id=first.id))
    changes = pack.changes
    assert changes is not None
    at = open_page(demo_db_url, monkeypatch, "overview", MULTI)
    # The Overview leads with the changes, and offers the pack.
    assert at.info[1].value.startswith(f"Since cut {first.number}")
    assert f"{plural(changes.new_subjects, 'new subject')} screened" in at.info[1].value
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Monitoring pack (PDF)", "Monitoring pack (Excel)"]
    delta = next(m for m in at.metric if m.label == "Screen failures").proto.delta
    assert delta.startswith(f"+{changes.new_screen_failures} new")

    at.switch_page("../pages/screen_failures.py").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("Code")
    new = pack.by_criterion.set_index("code")["new_subjects"]
    assert table[f"New since cut {first.number}"].to_dict() == new.to_dict()

    at.switch_page("../pages/baseline.py").run()
    assert not at.exception
    caption = next(
        c.value for c in at.caption if c.value.startswith(f"New since cut {first.number}")
    )
    assert caption.endswith(f"; {changes.new_enrolled} in all.")

    at.switch_page("../pages/adverse_events.py").run()
    assert not at.exception
    delta = next(m for m in at.metric if m.label == "SAE events").proto.delta
    assert delta == f"+{changes.new_serious_adverse_events} new since cut {first.number}"


def test_pack_of_a_registry_record_without_data(tmp_path: Path) -> None:
    from dashboard.importers.run import import_ctgov_path
    from tests.databases import new_database_url

    engine = make_engine(new_database_url(tmp_path, "registry"))
    import_ctgov_path(engine, PROJECT_ROOT / "dashboard" / "studies" / f"{SEED}.json")
    with Session(engine) as session:
        pack = build_pack(session, ViewContext(study_id=SEED))
    engine.dispose()
    assert pack.cut is None and pack.figures["screened"] == 0
    pages = _pdf_pages(pack_pdf(pack))
    assert "No subjects in this study yet" in pages[-1]
    assert _headline_in_pdf(pages)["Target enrollment"] == [20]
    book = _open_workbook(pack_workbook(pack))
    assert book.sheetnames == SHEETS and book[SAE_SHEET].max_row == 1  # the header alone


def test_pack_has_the_site_risk_section_and_sheet(session: Session) -> None:
    pack = build_pack(session, ViewContext("DEMO-MULTI"))
    view = pack.site_risk
    assert view.options.method == "gsm"  # as the Site risk page opens
    pages = _pdf_pages(pack_pdf(pack))
    at, first = _section(pages, "Site risk")
    text = re.sub(r"\s+", " ", " ".join([first, *pages[at + 1 :]]))
    assert "Flags by site and KRI" in text and "Quality tolerance limits" in text
    assert "Funnel plots" in text
    # A funnel per KRI with a flagged site, titled with its name and unit.
    from dashboard.report.pdf import site_risk_funnels

    for funnel in site_risk_funnels(pack):
        assert f"{funnel.definition.name} ({funnel.definition.per})" in text
    for metric in view.metrics:
        assert f"{metric.label}: {metric.value}" in text
    for kri in view.kris:
        if kri.absent is not None:
            assert kri.definition.name in text and kri.absent in text
    sheet = _sheet(_open_workbook(pack_workbook(pack)), "Site risk")
    assert len(sheet) == len(view.scores)
    assert sheet["Site"].astype(str).tolist() == view.scores["site_id"].astype(str).tolist()
    assert sheet["KRI"].tolist() == view.scores["abbreviation"].tolist()


def test_single_site_pack_says_there_is_nothing_to_compare(session: Session) -> None:
    pack = build_pack(session, ViewContext("NCT06466850"))
    text = re.sub(r"\s+", " ", " ".join(_pdf_pages(pack_pdf(pack))))
    assert "One site: nothing to compare with." in text
    assert "Flags by site and KRI" not in text
