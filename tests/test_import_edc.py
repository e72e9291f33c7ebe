"""Imports from REDCap, CDISC ODM and spreadsheets through a mapping file (issue #23).

The seed demo ships as a REDCap project's export (``dashboard/studies/NCT06466850-redcap``, written
by ``demo_redcap.export_seed_redcap``): importing its records + dictionary, its ODM XML or its
spreadsheet copy into an empty database must give the figures ``study-monitor demo`` gives, page by
page. Identifying fields never reach the database; bad input gets a plain message naming the file
and place, exit status 2, and nothing written. On SQLite, or PostgreSQL where TEST_POSTGRES_URL is
set."""

import csv
import datetime as dt
import io
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.demo import SEED_STUDY_ID
from dashboard.importers.edc import read_dictionary, read_redcap
from dashboard.importers.errors import ImportFailure
from dashboard.importers.mapping import parse_mapping, read_mapping
from dashboard.importers.mapping_draft import draft_mapping
from dashboard.importers.odm import write_odm
from dashboard.importers.run import preview_edc
from dashboard.models import AuditEvent, DataCut, Finding, ProtocolDeviation, Subject
from dashboard.views import visits
from dashboard.views.adverse_events import build_adverse_events
from dashboard.views.baseline import build_baseline
from dashboard.views.context import ViewContext
from dashboard.views.enrollment import build_enrollment
from dashboard.views.labs import LabsOptions, build_labs, shift_subjects
from dashboard.views.overview import study_summary
from dashboard.views.screen_failures import build_screen_failures
from tests.databases import new_database_url

runner = CliRunner()
SHIPPED = Path(str(resources.files("dashboard") / "studies" / "NCT06466850-redcap"))
# The distinctive made-up identity the identifier test writes into every identifying field.
NAME, BIRTH = "Quillon Zebrowski", "1931-02-17"


def _import(kind: str, folder: Path, url: str, mapping: Path | None = None) -> Any:
    mapping = mapping or folder / "mapping.toml"
    files = {
        "redcap": [
            "--records",
            str(folder / "records.csv"),
            "--dictionary",
            str(folder / "dictionary.csv"),
        ],
        "odm": [str(folder / "project.xml")],
        "table": [str(folder / "records.xlsx")],
    }[kind]
    return runner.invoke(
        app,
        ["import", kind, *files, "--mapping", str(mapping), "--db", url],
        catch_exceptions=False,
    )


def _dump(url: str) -> dict[str, list[str]]:
    """Every row of every table, as text: what an import may write."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                for table in SQLModel.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def _figures(engine: Engine) -> dict[str, Any]:
    """The figures of the Overview, Enrollment, Screen failures, Baseline and Adverse events pages,
    without comparing cuts (the demo has two, an import one)."""
    with Session(engine) as session:
        ctx = ViewContext(study_id=SEED_STUDY_ID)
        summary = study_summary(session, study_id=SEED_STUDY_ID)
        summary.pop("data_cut")
        enrollment = build_enrollment(session, ctx)
        failures = build_screen_failures(session, ctx)
        baseline = build_baseline(session, ctx)
        events = build_adverse_events(session, ctx)
        planned = visits.planned(session, ctx)
        cutoff = dt.date(2025, 11, 30)
        visits_by_site = visits.by_site(session, ctx, as_of=cutoff, window_days=7)
        visit_grid = visits.grid(session, ctx, as_of=cutoff, window_days=7, needing_action=False)
        labs = _lab_figures(session, ctx)
    return {
        **labs,
        "planned visits": planned,
        "visits by site": visits_by_site[0],
        "without day 1": visits_by_site[1],
        "visit grid": visit_grid[0],
        "summary": summary,
        "funnel": enrollment.funnel,
        "accrual": enrollment.accrual,
        "reasons": enrollment.reasons,
        "by_arm": enrollment.by_arm,
        "criteria": failures.criteria_table,
        "monthly failures": failures.monthly,
        "cooccurrence": failures.cooccurrence,
        "dispositions": failures.dispositions,
        "table one": baseline.table,
        "baseline metrics": baseline.metrics,
        "ae summary": events.summary_table,
        "ae terms": events.terms_shown,
        "ae worst": events.worst_table,
        "ae metrics": events.metrics,
    }


def _lab_figures(session: Session, ctx: ViewContext) -> dict[str, Any]:
    """The Labs page's figures: its headline, every measurement's shifts (range and each CTCAE
    term's grade), values by visit, the abnormal values, and the eDISH points."""
    first = build_labs(session, ctx)
    figures: dict[str, Any] = {
        "lab measurements": first.measurements,
        "lab incidence": first.incidence,
        "lab edish": first.edish,
        "lab hys law": first.hys_law,
        "lab metrics": first.metrics,
    }
    for label in first.measurements["label"]:
        view = build_labs(session, ctx, LabsOptions(measurement=label))
        assert view.range_shift is not None, label
        figures[f"lab {label} range shift"] = view.range_shift.cells
        figures[f"lab {label} boxes"] = view.boxes
        figures[f"lab {label} unscheduled"] = view.unscheduled
        for term in (None, *view.terms):
            figures[f"lab {label} {term or 'range'} shift subjects"] = shift_subjects(
                session,
                ctx,
                domain="LB",
                measurement=label,
                term=term,
                arm=None,
                baseline=None,
                worst=None,
            )
            if term is not None:
                graded = build_labs(session, ctx, LabsOptions(measurement=label, term=term))
                assert graded.grade_shift is not None, (label, term)
                figures[f"lab {label} {term} grade shift"] = graded.grade_shift.cells
    return figures


def _same(loaded: dict[str, Any], demo: dict[str, Any]) -> None:
    """Every figure equal; what is new since the demo's first cut aside (an import has one cut)."""
    for key, expected in demo.items():
        got = loaded[key]
        if isinstance(expected, pd.DataFrame):
            expected = expected.drop(columns=[c for c in expected if "New since" in str(c)])
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True), expected.reset_index(drop=True), obj=key
            )
        elif key.endswith("metrics"):
            assert [(m.label, m.value) for m in got] == [(m.label, m.value) for m in expected]
        else:
            assert got == expected, key


@pytest.fixture(scope="module")
def demo_figures(demo_engine: Engine) -> dict[str, Any]:
    return _figures(demo_engine)


def test_the_shipped_export_is_what_the_demo_generator_writes(tmp_path: Path) -> None:
    written = tmp_path / "export"
    result = runner.invoke(
        app,
        [
            "demo",
            "--redcap-export",
            str(written),
            "--db",
            new_database_url(tmp_path, "demo"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"its REDCap-style export written to {written} (synthetic data)" in result.output
    for name in ("dictionary.csv", "records.csv", "mapping.toml", "project.xml"):
        assert (written / name).read_bytes() == (SHIPPED / name).read_bytes(), name

    def cells(path: Path) -> list[tuple[Any, ...]]:
        book = load_workbook(path, read_only=True)
        rows = list(book.worksheets[0].iter_rows(values_only=True))
        book.close()
        return rows

    assert cells(written / "records.xlsx") == cells(SHIPPED / "records.xlsx")


@pytest.mark.parametrize("kind", ["redcap", "odm", "table"])
def test_each_export_gives_the_seed_demos_figures(
    kind: str, demo_figures: dict[str, Any], tmp_path: Path
) -> None:
    url = new_database_url(tmp_path, f"edc-{kind}")
    result = _import(kind, SHIPPED, url)
    assert result.exit_code == 0, result.output
    assert "data cut 1 loaded (cut-off 2025-11-30)" in result.output
    engine = make_engine(url)
    try:
        _same(_figures(engine), demo_figures)
        with Session(engine) as session:
            (cut,) = session.execute(select(DataCut)).scalars()
            # The cut names the files given, not the SDTM files made from them on the way.
            assert [s["file"] for s in cut.source] == {
                "redcap": ["dictionary.csv", "records.csv"],
                "odm": ["project.xml"],
                "table": ["records.xlsx"],
            }[kind]
            (event,) = session.execute(select(AuditEvent)).scalars()
            assert event.detail["kind"] == kind
            assert event.detail["identifying_fields_dropped"] == ["dob", "initials"]
    finally:
        engine.dispose()


def _with_identities(folder: Path) -> Path:
    """A copy of the shipped export whose identifying fields hold a distinctive identity."""
    copy = folder.parent / "identities"
    shutil.copytree(SHIPPED, copy)
    for name in ("records.csv", "project.xml"):
        text = (copy / name).read_text(encoding="utf-8")
        text = text.replace(",XX,", f",{NAME},").replace('"XX"', f'"{NAME}"')
        text = _replace_births(text)
        (copy / name).write_text(text, encoding="utf-8")
    book = load_workbook(copy / "records.xlsx")
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        if row[header.index("initials")].value:
            row[header.index("initials")].value = NAME
            row[header.index("dob")].value = BIRTH
    book.save(copy / "records.xlsx")
    return copy


def _replace_births(text: str) -> str:
    import re

    return re.sub(r"(?<=[,\"])\d{4}-07-01(?=[,\"])", BIRTH, text)


@pytest.mark.parametrize("kind", ["redcap", "odm", "table"])
def test_identifying_fields_never_reach_the_database(kind: str, tmp_path: Path) -> None:
    folder = _with_identities(tmp_path / "given")
    assert (
        NAME in (folder / "records.csv").read_text()
        and BIRTH in (folder / "project.xml").read_text()
    )
    url = new_database_url(tmp_path, f"ident-{kind}")
    result = _import(kind, folder, url)
    assert result.exit_code == 0, result.output
    assert "identifying fields dob, initials dropped" in result.output
    assert NAME not in result.output and BIRTH not in result.output
    stored = "\n".join(row for rows in _dump(url).values() for row in rows)
    assert "Quillon" not in stored and "Zebrowski" not in stored and BIRTH not in stored
    # The subjects are there, by their codes only.
    assert f"{SEED_STUDY_ID}-01-001" in stored


@pytest.fixture
def loaded_url(tmp_path: Path) -> str:
    """A database holding the seed study imported from its REDCap export."""
    url = new_database_url(tmp_path, "loaded")
    assert _import("redcap", SHIPPED, url).exit_code == 0
    return url


def _edited(tmp_path: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    folder = tmp_path / "edited"
    if not folder.exists():
        shutil.copytree(SHIPPED, folder)
    text = (folder / name).read_text(encoding="utf-8")
    assert old in text, old
    (folder / name).write_text(text.replace(old, new, count), encoding="utf-8")
    return folder


def _refused(kind: str, folder: Path, url: str, *expected: str) -> str:
    before = _dump(url)
    result = _import(kind, folder, url)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "nothing was written" in result.output
    for part in expected:
        assert part in result.output, (part, result.output)
    assert _dump(url) == before
    return str(result.output)


def _row_of(folder: Path, record_id: str, event: str) -> int:
    """The spreadsheet row (header = 1) of a record's event in records.csv."""
    lines = (folder / "records.csv").read_text(encoding="utf-8").splitlines()
    return next(
        n for n, line in enumerate(lines, start=1) if line.startswith(f"{record_id},{event},")
    )


def test_a_choice_code_the_dictionary_does_not_have_is_refused(
    loaded_url: str, tmp_path: Path
) -> None:
    line = next(
        row
        for row in (SHIPPED / "records.csv").read_text(encoding="utf-8").splitlines()
        if row.startswith("01-002,screening_arm_1,")
    )
    cells = line.split(",")
    header = (SHIPPED / "records.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    cells[header.index("sex")] = "7"
    folder = _edited(tmp_path, "records.csv", line, ",".join(cells))
    row = _row_of(folder, "01-002", "screening_arm_1")
    _refused(
        "redcap",
        folder,
        loaded_url,
        f"records.csv, row {row}, column sex: '7' is not a choice of field 'sex'",
        "1 (Female), 2 (Male)",
    )


def test_a_mapping_naming_a_field_the_project_lacks_is_refused(
    loaded_url: str, tmp_path: Path
) -> None:
    folder = _edited(tmp_path, "mapping.toml", 'term = "ae_term"', 'term = "ae_trem"')
    for kind in ("redcap", "odm", "table"):
        _refused(
            kind,
            folder,
            loaded_url,
            "mapping.toml: the adverse event term is field 'ae_trem', which is not in the project",
            "did you mean 'ae_term'?",
        )


def test_a_repeating_instrument_without_its_instance_number_is_refused(
    loaded_url: str, tmp_path: Path
) -> None:
    text = (SHIPPED / "records.csv").read_text(encoding="utf-8")
    line = next(row for row in text.splitlines() if ",adverse_event,1," in row)
    folder = _edited(
        tmp_path, "records.csv", line, line.replace(",adverse_event,1,", ",adverse_event,,")
    )
    row = text.splitlines().index(line) + 1
    _refused(
        "redcap",
        folder,
        loaded_url,
        f"records.csv, row {row}, column redcap_repeat_instance: a row of the repeating "
        "instrument 'adverse_event' without its instance number",
    )
    # The AE rows exported without the repeat columns at all: read as the record's own rows.
    stripped = tmp_path / "stripped"
    shutil.copytree(SHIPPED, stripped)
    frame = pd.read_csv(SHIPPED / "records.csv", dtype=str, keep_default_na=False)
    frame = frame.drop(columns=["redcap_repeat_instrument", "redcap_repeat_instance"])
    frame.to_csv(stripped / "records.csv", index=False)
    _refused(
        "redcap",
        stripped,
        loaded_url,
        "is repeated",
        "rows of a repeating instrument need their instance number",
    )


def test_other_bad_input_is_named_plainly(loaded_url: str, tmp_path: Path) -> None:
    broken = _edited(tmp_path, "mapping.toml", "[subject]", "[subject")
    _refused("redcap", broken, loaded_url, "mapping.toml: is not valid TOML")
    shutil.rmtree(broken)
    typo = _edited(tmp_path, "mapping.toml", 'age = "age"', 'agee = "age"')
    _refused("redcap", typo, loaded_url, "[subject]: unknown key 'agee'")
    shutil.rmtree(typo)
    untranslated = _edited(
        tmp_path,
        "mapping.toml",
        'values = { Female = "F", Male = "M" }',
        'values = { Female = "F" }',
    )
    _refused("redcap", untranslated, loaded_url, "the sex field 'sex' holds 'Male'")
    shutil.rmtree(untranslated)
    rekeyed = _edited(tmp_path, "mapping.toml", 'id = "record_id"', 'id = "age"')
    _refused("redcap", rekeyed, loaded_url, "[subject] id is 'age', but the records are keyed by")
    shutil.rmtree(rekeyed)
    identity = _edited(tmp_path, "mapping.toml", 'age = "age"', 'age = "dob"')
    _refused("redcap", identity, loaded_url, "the age is field 'dob', which identifies a person")
    shutil.rmtree(identity)
    first = (SHIPPED / "records.csv").read_text(encoding="utf-8").splitlines()[1]
    assert first.startswith("01-001,screening_arm_1,") and ",2024-10-11," in first
    impossible = _edited(
        tmp_path, "records.csv", first, first.replace(",2024-10-11,", ",2024-02-30,")
    )
    _refused(
        "redcap",
        impossible,
        loaded_url,
        "records.csv, row 2, column consent_date: '2024-02-30' is not a real date",
    )
    shutil.rmtree(impossible)
    ageless = _edited(tmp_path, "records.csv", first, first.replace(",1,70,", ",1,seventy,"))
    _refused("redcap", ageless, loaded_url, "row 2, column age: age 'seventy' is not a number")
    shutil.rmtree(ageless)
    empty = tmp_path / "empty"
    shutil.copytree(SHIPPED, empty)
    header = (SHIPPED / "records.csv").read_text(encoding="utf-8").splitlines()[0]
    (empty / "records.csv").write_text(header + "\n", encoding="utf-8")
    _refused("redcap", empty, loaded_url, "records.csv: holds no records")
    missing = tmp_path / "nothing"
    missing.mkdir()
    shutil.copy(SHIPPED / "mapping.toml", missing / "mapping.toml")
    _refused("odm", missing, loaded_url, "project.xml: no such file")


def test_a_later_export_is_a_second_cut_with_its_changes(loaded_url: str, tmp_path: Path) -> None:
    # One more adverse event for 01-003... as a later export would have it: cut 2 records it.
    text = (SHIPPED / "records.csv").read_text(encoding="utf-8")
    line = next(row for row in text.splitlines() if ",adverse_event,1," in row)
    added = line.replace(",adverse_event,1,", ",adverse_event,9,")
    folder = _edited(tmp_path, "records.csv", line, f"{line}\n{added}")
    result = _import("redcap", folder, loaded_url)
    assert result.exit_code == 0, result.output
    assert "data cut 2 loaded" in result.output
    assert "ae: 1 added, 0 changed, 0 removed" in result.output


def test_the_drafted_mapping_reads_the_seed_project(tmp_path: Path) -> None:
    fields, record_id = read_dictionary(SHIPPED / "dictionary.csv")
    draft = draft_mapping(fields, dictionary="dictionary.csv")
    mapping = parse_mapping(draft.replace("CHANGE-ME", SEED_STUDY_ID), file="draft.toml")
    assert record_id == "record_id" and mapping.record_id == "record_id"
    assert "dob" not in draft.replace("identifying fields, never read: initials, dob", "")
    assert [(c.code, c.category, c.not_met) for c in mapping.criteria] == [
        (
            f.name.upper(),
            "INCLUSION" if f.name.startswith("incl") else "EXCLUSION",
            ("No",) if f.name.startswith("incl") else ("Yes",),
        )
        for f in fields.values()
        if f.field_type == "yesno" and f.name.startswith(("incl", "excl"))
    ]
    assert mapping.sex is not None and mapping.sex.values == {"Female": "F", "Male": "M"}
    assert mapping.adverse_events is not None
    assert (mapping.adverse_events.instrument, mapping.adverse_events.term) == (
        "adverse_event",
        "ae_term",
    )
    assert (mapping.consent_date, mapping.enrollment_date) == ("consent_date", "inj_date")
    assert mapping.labs is not None and mapping.labs.date == "lab_date"
    assert [(t.field, t.code, t.unit) for t in mapping.labs.tests] == [
        ("alt", "ALT", "U/L"),
        ("ast", "AST", "U/L"),
        ("bili", "BILI", "umol/L"),
        ("creat", "CREAT", "umol/L"),
        ("hgb", "HGB", "g/dL"),
    ]
    # Imported as drafted, it already gives the seed's screening figures.
    (tmp_path / "draft.toml").write_text(draft.replace("CHANGE-ME", SEED_STUDY_ID))
    url = new_database_url(tmp_path, "draft")
    result = _import("redcap", SHIPPED, url, mapping=tmp_path / "draft.toml")
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    with Session(engine) as session:
        summary = study_summary(session, study_id=SEED_STUDY_ID)
    engine.dispose()
    assert (summary["screened"], summary["screen_failures"], summary["enrolled"]) == (36, 16, 20)


def test_mapping_draft_command_writes_a_file_once(tmp_path: Path) -> None:
    out = tmp_path / "mapping.toml"
    args = ["mapping", "draft", str(SHIPPED / "dictionary.csv"), "--out", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and out.exists(), first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 2 and "exists" in second.output
    bad = tmp_path / "bad.csv"
    bad.write_text("name,type\nx,text\n")
    refused = runner.invoke(app, ["mapping", "draft", str(bad)])
    assert refused.exit_code == 2
    assert "bad.csv, row 1: has no column 'Variable / Field Name'" in refused.output


def test_cut_off_is_the_mappings(tmp_path: Path) -> None:
    mapping = parse_mapping((SHIPPED / "mapping.toml").read_text(), file="mapping.toml")
    assert mapping.cutoff == dt.date(2025, 11, 30)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        (
            "low = 7\n",
            'low = "seven"\n',
            "[[labs.tests]] 1 low: must be a number, or numbers by sex",
        ),
        ('code = "AST"', 'code = "ALT"', "[[labs.tests]]: code 'ALT' is given twice"),
        ('unit = "U/L"', 'units = "U/L"', "[[labs.tests]] 1: unknown key 'units'"),
        ("[[labs.tests]]", "[[labs.test]]", "the tests are [[labs.tests]] tables"),
        (
            '[[baseline]]\nfield = "height"',
            '[[baseline]]\nfield = "hgb"\ndomain = "LB"\ncode = "HGB"\n\n'
            '[[baseline]]\nfield = "height"',
            "LB HGB is both a [[baseline]] and a [[labs.tests]]",
        ),
        ("[labs]\n", '[labs]\nvalue = "alt"\n', "[labs] value: is for a repeating instrument"),
        ("[labs]\n", '[labs]\ninstrument = "laboratory"\n', "[labs] test: is required"),
    ],
    ids=["limit", "twice", "key", "no tests", "baseline too", "value alone", "no test field"],
)
def test_a_laboratory_mapping_problem_is_named(old: str, new: str, said: str) -> None:
    text = (SHIPPED / "mapping.toml").read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ImportFailure) as failure:
        parse_mapping(text.replace(old, new, 1), file="mapping.toml")
    assert said in str(failure.value)


def test_a_laboratory_field_the_project_lacks_is_refused(loaded_url: str, tmp_path: Path) -> None:
    folder = _edited(tmp_path, "mapping.toml", 'field = "alt"', 'field = "altt"')
    _refused(
        "redcap",
        folder,
        loaded_url,
        "mapping.toml: the laboratory test ALT is field 'altt', which is not in the project",
        "did you mean 'alt'?",
    )


def test_the_laboratory_baseline_is_the_last_result_before_the_first_dose(
    loaded_url: str,
) -> None:
    """Counted again from the export: per enrolled subject and test, the baseline flag sits on
    the screening result (the seed draws none between screening and the injection), and no
    screen failure has one."""
    engine = make_engine(loaded_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(
                    col(Subject.usubjid),
                    col(Subject.first_dose_date),
                    col(Finding.test_code),
                    col(Finding.visit),
                )
                .join(Finding, col(Finding.subject_pk) == col(Subject.id))
                .where(col(Finding.domain) == "LB", col(Finding.is_baseline))
            ).all()
    finally:
        engine.dispose()
    records = list(csv.DictReader(io.StringIO((SHIPPED / "records.csv").read_text("utf-8"))))
    dosed = {r["record_id"] for r in records if r["inj_date"]}
    expected = {
        (f"{SEED_STUDY_ID}-{r['record_id']}", code.upper())
        for r in records
        if r["redcap_event_name"] == "screening_arm_1" and r["record_id"] in dosed
        for code in ("alt", "ast", "bili", "creat", "hgb")
        if r[code]
    }
    assert {(u, code) for u, _first, code, _visit in rows} == expected
    assert {visit for *_rest, visit in rows} == {"SCREENING"}
    assert all(first is not None for _u, first, _c, _v in rows)


# Three deviations on a repeating instrument (field, form, type, choices) added to the seed's
# export: two for the first enrolled subject, one for the second.
DEVIATION_FIELDS = (
    ("dv_term", "text", ""),
    ("dv_date", "text", ""),
    ("dv_category", "radio", "1, Major | 2, Minor"),
)


def _with_deviations(folder: Path) -> tuple[Path, list[tuple[str, int, str, str, bool, str]]]:
    """A copy of the shipped export with a protocol-deviation instrument, and the deviations it
    holds as the database must: (usubjid, seq, term, category, important, date)."""
    copy = folder / "deviations"
    shutil.copytree(SHIPPED, copy)
    dictionary = list(csv.reader(io.StringIO((copy / "dictionary.csv").read_text("utf-8"))))
    heading = dictionary[0]
    for name, kind, choices in DEVIATION_FIELDS:
        row = dict.fromkeys(heading, "")
        row |= {
            "Variable / Field Name": name,
            "Form Name": "protocol_deviation",
            "Field Type": kind,
            "Field Label": name,
            "Choices, Calculations, OR Slider Labels": choices,
        }
        dictionary.append([row[h] for h in heading])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(dictionary)
    (copy / "dictionary.csv").write_text(out.getvalue(), encoding="utf-8")
    records = list(csv.reader(io.StringIO((copy / "records.csv").read_text("utf-8"))))
    header = records[0] + [name for name, _kind, _choices in DEVIATION_FIELDS]
    rows = [[*row, "", "", ""] for row in records[1:]]
    dosed = list(dict.fromkeys(r[0] for r in rows if r[header.index("inj_date")]))
    planted = [
        (dosed[0], 1, "Week 4 visit out of window", "1", "2024-12-20"),
        (dosed[0], 2, "Sample not drawn", "2", "2025-01-29"),
        (dosed[1], 1, "Informed consent form outdated", "1", "2024-11-15"),
    ]
    for record_id, instance, term, category, day in planted:
        row = dict.fromkeys(header, "")
        row |= {
            "record_id": record_id,
            "redcap_event_name": "day_1_arm_1",
            "redcap_repeat_instrument": "protocol_deviation",
            "redcap_repeat_instance": str(instance),
            "redcap_data_access_group": "isfahan",
            "dv_term": term,
            "dv_date": day,
            "dv_category": category,
        }
        rows.append([row[h] for h in header])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    (copy / "records.csv").write_text(out.getvalue(), encoding="utf-8")
    with (copy / "mapping.toml").open("a", encoding="utf-8") as mapping:
        mapping.write(
            '\n[deviations]\ninstrument = "protocol_deviation"\nterm = "dv_term"\n'
            'category = "dv_category"\ndate = "dv_date"\n'
        )
    expected = [
        (f"{SEED_STUDY_ID}-{r}", n, term, {"1": "MAJOR", "2": "MINOR"}[c], c == "1", day)
        for r, n, term, c, day in planted
    ]
    return copy, expected


@pytest.mark.parametrize("kind", ["redcap", "odm"])
def test_protocol_deviations_come_from_a_repeating_instrument(kind: str, tmp_path: Path) -> None:
    folder, expected = _with_deviations(tmp_path)
    if kind == "odm":
        export = read_redcap(folder / "records.csv", folder / "dictionary.csv")
        write_odm(export, folder / "project.xml", study_oid="Project.X", study_name="X")
    url = new_database_url(tmp_path, f"dv-{kind}")
    result = _import(kind, folder, url)
    assert result.exit_code == 0, result.output
    assert "protocol deviations unknown" not in result.output
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(
                    col(Subject.usubjid),
                    col(ProtocolDeviation.seq),
                    col(ProtocolDeviation.term),
                    col(ProtocolDeviation.category),
                    col(ProtocolDeviation.important),
                    col(ProtocolDeviation.start_dtc),
                )
                .join(Subject, col(Subject.id) == col(ProtocolDeviation.subject_pk))
                .order_by(col(Subject.usubjid), col(ProtocolDeviation.seq))
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == expected


def test_deviations_and_adverse_events_each_name_their_instrument(tmp_path: Path) -> None:
    folder, _expected = _with_deviations(tmp_path)
    text = (folder / "mapping.toml").read_text(encoding="utf-8")
    with pytest.raises(ImportFailure, match=r"\[adverse_events\] and \[deviations\] each need"):
        parse_mapping(text.replace('instrument = "adverse_event"\n', ""), file="mapping.toml")
    misplaced = text.replace('term = "dv_term"', 'term = "ae_term"')
    (folder / "mapping.toml").write_text(misplaced, encoding="utf-8")
    url = new_database_url(tmp_path, "misplaced")
    result = _import("redcap", folder, url)
    assert result.exit_code == 2
    assert (
        "[deviations] term 'ae_term' is on instrument 'adverse_event', not on 'protocol_deviation'"
    ) in result.output


def _with_checkbox_criteria(folder: Path) -> Path:
    """A copy of the shipped export that also records the criteria not met as one checkbox
    field, ``sf_criteria`` (option n checked: the n-th criterion is not met), and a mapping that
    reads the criteria from its options instead of the yes/no fields."""
    copy = folder / "checkbox"
    shutil.copytree(SHIPPED, copy)
    mapping_text = (copy / "mapping.toml").read_text(encoding="utf-8")
    criteria = parse_mapping(mapping_text, file="mapping.toml").criteria
    dictionary = list(csv.reader(io.StringIO((copy / "dictionary.csv").read_text("utf-8"))))
    heading = dictionary[0]
    row = dict.fromkeys(heading, "") | {
        "Variable / Field Name": "sf_criteria",
        "Form Name": "screening",
        "Field Type": "checkbox",
        "Field Label": "Criteria not met",
        "Choices, Calculations, OR Slider Labels": " | ".join(
            f"{n}, {c.code}" for n, c in enumerate(criteria, start=1)
        ),
    }
    dictionary.append([row[h] for h in heading])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(dictionary)
    (copy / "dictionary.csv").write_text(out.getvalue(), encoding="utf-8")
    records = list(csv.reader(io.StringIO((copy / "records.csv").read_text("utf-8"))))
    header = records[0]
    options = [f"sf_criteria___{n}" for n in range(1, len(criteria) + 1)]
    rows = []
    for values in records[1:]:
        cells = dict(zip(header, values, strict=True))
        answered = [cells[c.field] for c in criteria]
        if any(answered):
            yes_no = [{"1": "Yes", "0": "No"}[a] for a in answered]
            checked = [
                "1" if c.is_not_met(label, raw) else "0"
                for c, label, raw in zip(criteria, yes_no, answered, strict=True)
            ]
        else:
            checked = [""] * len(criteria)
        rows.append([*values, *checked])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[*header, *options], *rows])
    (copy / "records.csv").write_text(out.getvalue(), encoding="utf-8")
    blocks = mapping_text.split("[[criteria]]")
    for n, criterion in enumerate(criteria, start=1):
        block = blocks[n].replace(f'field = "{criterion.field}"', f'field = "sf_criteria___{n}"')
        blocks[n] = re.sub(r'not_met = "(Yes|No)"', 'not_met = "Checked"', block)
    (copy / "mapping.toml").write_text("[[criteria]]".join(blocks), encoding="utf-8")
    return copy


@pytest.mark.parametrize("kind", ["redcap", "odm"])
def test_criteria_from_a_checkbox_give_the_seed_demos_figures(
    kind: str, demo_figures: dict[str, Any], tmp_path: Path
) -> None:
    folder = _with_checkbox_criteria(tmp_path)
    assert 'field = "sf_criteria___2"' in (folder / "mapping.toml").read_text(encoding="utf-8")
    if kind == "odm":
        export = read_redcap(folder / "records.csv", folder / "dictionary.csv")
        write_odm(export, folder / "project.xml", study_oid="Project.X", study_name="X")
    url = new_database_url(tmp_path, f"checkbox-{kind}")
    result = _import(kind, folder, url)
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    try:
        _same(_figures(engine), demo_figures)
    finally:
        engine.dispose()
    effect = preview_edc(
        kind,
        {
            "redcap": {"records": folder / "records.csv", "dictionary": folder / "dictionary.csv"}
        }.get(kind, {"odm": folder / "project.xml"}),
        read_mapping(folder / "mapping.toml"),
    )
    assert ("sf_criteria___2", "criterion INCL02") in effect.used
    assert ("sf_criteria___2", "1", "Checked") in effect.decoded
    assert "sf_criteria" not in effect.ignored
    assert "incl02" in effect.ignored  # the yes/no field the mapping no longer reads


def test_what_the_mapping_lacks_is_warned_in_its_own_words(tmp_path: Path) -> None:
    # The shipped mapping has no [deviations]; without blinding the study is treated as blinded.
    folder = _edited(tmp_path, "mapping.toml", 'blinding = "NONE"', "")
    url = new_database_url(tmp_path, "unsaid")
    result = _import("redcap", folder, url)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: identifying fields dob, initials dropped: not read, not stored",
        "warning: mapping.toml has no [deviations]: protocol deviations unknown "
        "(protocol-deviation KRIs are not computed)",
        'warning: mapping.toml: [study] has no blinding (e.g. blinding = "NONE" for open '
        "label): blinding unknown, treated as blinded (figures by arm only for unblinded users) "
        "until the registry record or an admin says the study is open label",
    ]
    assert "TBLIND" not in result.output and "domain" not in result.output


def test_the_draft_proposes_deviations_and_criteria_from_a_checkbox(tmp_path: Path) -> None:
    fields, _record_id = read_dictionary(_with_deviations(tmp_path)[0] / "dictionary.csv")
    mapping = parse_mapping(
        draft_mapping(fields, dictionary="dictionary.csv").replace("CHANGE-ME", "X"), file="d"
    )
    assert mapping.deviations is not None
    assert (
        mapping.deviations.instrument,
        mapping.deviations.term,
        mapping.deviations.category,
    ) == ("protocol_deviation", "dv_term", "dv_category")
    fields, _record_id = read_dictionary(_with_checkbox_criteria(tmp_path) / "dictionary.csv")
    yes_no = [name for name, f in fields.items() if f.field_type == "yesno"]
    without = {name: f for name, f in fields.items() if name not in yes_no}
    mapping = parse_mapping(
        draft_mapping(without, dictionary="dictionary.csv").replace("CHANGE-ME", "X"), file="d"
    )
    assert [(c.code, c.category, c.field, c.not_met) for c in mapping.criteria] == [
        (
            code,
            "INCLUSION" if code.startswith("INCL") else "EXCLUSION",
            f"sf_criteria___{n}",
            ("Checked",),
        )
        for n, code in fields["sf_criteria"].choices.items()
    ]


def test_an_instance_without_its_term_is_refused(loaded_url: str, tmp_path: Path) -> None:
    records = list(csv.reader(io.StringIO((SHIPPED / "records.csv").read_text("utf-8"))))
    header = records[0]
    row = next(
        n
        for n, values in enumerate(records)
        if values[header.index("redcap_repeat_instrument")] == "adverse_event"
    )
    records[row][header.index("ae_term")] = ""
    folder = tmp_path / "termless"
    shutil.copytree(SHIPPED, folder)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    (folder / "records.csv").write_text(out.getvalue(), encoding="utf-8")
    instance = records[row][header.index("redcap_repeat_instance")]
    _refused(
        "redcap",
        folder,
        loaded_url,
        f"records.csv, row {row + 1}, column ae_term: adverse event {instance} has no term "
        "(field 'ae_term')",
    )


def _lab_baselines(url: str) -> list[tuple[str, str, str | None]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(col(Subject.usubjid), col(Finding.test_code), col(Finding.dtc))
                .join(Finding, col(Finding.subject_pk) == col(Subject.id))
                .where(col(Finding.domain) == "LB", col(Finding.is_baseline))
                .order_by(col(Subject.usubjid), col(Finding.test_code))
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def test_without_a_first_dose_date_the_enrollment_is_day_one(
    loaded_url: str, tmp_path: Path
) -> None:
    folder = _edited(tmp_path, "mapping.toml", 'first_dose_date = "inj_date"\n', "")
    url = new_database_url(tmp_path, "no-dose-date")
    result = _import("redcap", folder, url)
    assert result.exit_code == 0, result.output
    with_dose = _lab_baselines(loaded_url)
    assert len(with_dose) == 100  # 20 enrolled x 5 tests, each with its screening result
    assert _lab_baselines(url) == with_dose


def _with_lab_instances(folder: Path) -> Path:
    """A copy of the shipped export whose laboratory results are also kept the other common way:
    a repeating instrument ``lab_result``, one result per instance, naming its test by a choice
    and carrying its own unit and normal range, and a mapping that reads them from there."""
    copy = folder / "instances"
    shutil.copytree(SHIPPED, copy)
    mapping_text = (copy / "mapping.toml").read_text(encoding="utf-8")
    labs = parse_mapping(mapping_text, file="mapping.toml").labs
    assert labs is not None
    choices = {str(n): t for n, t in enumerate(labs.tests, start=1)}
    dictionary = list(csv.reader(io.StringIO((copy / "dictionary.csv").read_text("utf-8"))))
    heading = dictionary[0]
    added = {
        "lab_test": ("radio", " | ".join(f"{n}, {t.test}" for n, t in choices.items())),
        "lab_value": ("text", ""),
        "lab_unit": ("text", ""),
        "lab_low": ("text", ""),
        "lab_high": ("text", ""),
        "lab_sample_date": ("text", ""),
    }
    for name, (kind, listed) in added.items():
        row = dict.fromkeys(heading, "") | {
            "Variable / Field Name": name,
            "Form Name": "lab_result",
            "Field Type": kind,
            "Field Label": name,
            "Choices, Calculations, OR Slider Labels": listed,
        }
        dictionary.append([row[h] for h in heading])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(dictionary)
    (copy / "dictionary.csv").write_text(out.getvalue(), encoding="utf-8")
    records = list(csv.DictReader(io.StringIO((copy / "records.csv").read_text("utf-8"))))
    header = [*records[0].keys(), *added]
    sexes = {r["record_id"]: {"1": "F", "2": "M"}[r["sex"]] for r in records if r["sex"]}
    rows = [dict(r, **dict.fromkeys(added, "")) for r in records]
    for record in records:
        instance = 0
        for n, test in choices.items():
            value = record[test.field or ""]
            if not value:
                continue
            instance += 1
            low, high = test.limits(sexes[record["record_id"]])
            rows.append(
                dict.fromkeys(header, "")
                | {
                    "record_id": record["record_id"],
                    "redcap_event_name": record["redcap_event_name"],
                    "redcap_repeat_instrument": "lab_result",
                    "redcap_repeat_instance": str(instance),
                    "redcap_data_access_group": record["redcap_data_access_group"],
                    "lab_test": n,
                    "lab_value": value,
                    "lab_unit": test.unit or "",
                    "lab_low": f"{low:g}",
                    "lab_high": f"{high:g}",
                    "lab_sample_date": record["lab_date"],
                }
            )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (copy / "records.csv").write_text(out.getvalue(), encoding="utf-8")
    start = mapping_text.index("[labs]")
    end = mapping_text.index("# Baseline characteristics")
    tests = "".join(
        f'[[labs.tests]]\nanswer = "{t.test}"\ncode = "{t.code}"\ntest = "{t.test}"\n'
        f'category = "{t.category}"\n'
        for t in labs.tests
    )
    long_labs = (
        '[labs]\ninstrument = "lab_result"\ntest = "lab_test"\nvalue = "lab_value"\n'
        'unit = "lab_unit"\nlow = "lab_low"\nhigh = "lab_high"\ndate = "lab_sample_date"\n'
        f"{tests}\n"
    )
    (copy / "mapping.toml").write_text(
        mapping_text[:start] + long_labs + mapping_text[end:], encoding="utf-8"
    )
    return copy


@pytest.mark.parametrize("kind", ["redcap", "odm"])
def test_lab_results_on_a_repeating_instrument_give_the_seed_demos_figures(
    kind: str, demo_figures: dict[str, Any], tmp_path: Path
) -> None:
    folder = _with_lab_instances(tmp_path)
    if kind == "odm":
        export = read_redcap(folder / "records.csv", folder / "dictionary.csv")
        write_odm(export, folder / "project.xml", study_oid="Project.X", study_name="X")
    url = new_database_url(tmp_path, f"lab-instances-{kind}")
    result = _import(kind, folder, url)
    assert result.exit_code == 0, result.output
    engine = make_engine(url)
    try:
        _same(_figures(engine), demo_figures)
    finally:
        engine.dispose()


def test_a_lab_result_of_a_test_the_mapping_does_not_name_is_refused(
    loaded_url: str, tmp_path: Path
) -> None:
    folder = _with_lab_instances(tmp_path)
    text = (folder / "mapping.toml").read_text(encoding="utf-8")
    text = text.replace('answer = "Bilirubin"', 'answer = "Total bilirubin"')
    (folder / "mapping.toml").write_text(text, encoding="utf-8")
    output = _refused("redcap", folder, loaded_url, "is of test 'Bilirubin', which no")
    assert "column lab_test: laboratory result" in output
    assert "[[labs.tests]] answer names (they name " in output
