"""`study-monitor import sites FILE.csv` (issue #22): a CTMS site table sets the sites' actual and
planned activation dates and targets, adds the sites the study does not have, leaves the others;
bad input is refused with the file, row, column and value named, exit 2 and nothing written; an
activation after the latest data cut-off is a warning. On a copy of the demo database (SQLite, or
PostgreSQL where TEST_POSTGRES_URL is set)."""

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.importers.errors import ImportFailure
from dashboard.importers.sites import read_site_table
from dashboard.models import AuditEvent, DataCut, Site, Study
from tests.databases import copy_database, new_database_url

STUDY = "DEMO-MULTI"  # the demo database holds it and NCT06466850
runner = CliRunner()


@pytest.fixture
def db_url(demo_db_url: str, tmp_path: Path) -> str:
    """A copy of the demo database this test may write to."""
    return copy_database(demo_db_url, tmp_path, "sites")


def _import(url: str, file: Path, *options: str) -> Any:
    return runner.invoke(app, ["import", "sites", str(file), "--db", url, *options])


def _dump(url: str) -> tuple[list[tuple[Any, ...]], int]:
    """Every site row, and the number of audit events: what an import may change."""
    engine = make_engine(url)
    with engine.connect() as connection:
        sites = [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT id, study_id, site_id, name, city, country, activated_on, "
                    "planned_activation_on, planned_enrollment FROM site ORDER BY id"
                )
            )
        ]
        events = connection.execute(text("SELECT count(*) FROM auditevent")).scalar_one()
    engine.dispose()
    return sites, int(events)


def _sites(url: str, study: str) -> dict[str, Site]:
    engine = make_engine(url)
    with Session(engine) as session:
        found = {
            s.site_id: s for s in session.exec(select(Site).where(col(Site.study_id) == study))
        }
        session.expunge_all()
    engine.dispose()
    return found


def _latest_cutoff(url: str, study: str) -> dt.date:
    engine = make_engine(url)
    with Session(engine) as session:
        cutoff = session.exec(
            select(col(DataCut.cutoff_date))
            .where(col(DataCut.study_id) == study)
            .order_by(col(DataCut.id).desc())
        ).first()
    engine.dispose()
    assert cutoff is not None
    return cutoff


def _parsed(content: str) -> list[dict[str, str]]:
    """The file read as a person would: upper-case headers, cells without surrounding spaces."""
    reader = csv.DictReader(io.StringIO(content))
    return [{k.strip().upper(): (v or "").strip() for k, v in row.items()} for row in reader]


# -- a good file ---------------------------------------------------------------------------------


def test_a_good_file_updates_and_adds_exactly_what_it_says(db_url: str, tmp_path: Path) -> None:
    before = _sites(db_url, STUDY)
    other_before = _dump(db_url)[0]
    assert {"101", "102", "103"} <= set(before) and not {"901", "902"} & set(before)
    cutoff = _latest_cutoff(db_url, STUDY)
    # Headers in any case with spaces around them; empty cells keep what is stored; ACTIVATED after
    # PLANNED is fine; a new site with no activation date is planned, not yet open.
    content = (
        " siteid ,Activated, PLANNED ,Target,name,Country\n"
        f"101,{cutoff - dt.timedelta(days=30)},{cutoff - dt.timedelta(days=90)},25,,\n"
        "102,,2024-03-01,,Klinikum Zwei,\n"
        "\n"
        f" 901 ,,{cutoff + dt.timedelta(days=60)},12,New site,GBR\n"
        f"902,{cutoff - dt.timedelta(days=1)},,0,,\n"
    )
    file = tmp_path / "sites.csv"
    file.write_text(content)

    result = _import(db_url, file, "--study", STUDY)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"Sites of {STUDY}: 2 updated, 2 added (1 planned, not yet open).\n")
    assert result.stderr == ""
    after = _sites(db_url, STUDY)
    assert set(after) == set(before) | {"901", "902"}
    fields = {
        "ACTIVATED": "activated_on",
        "PLANNED": "planned_activation_on",
        "TARGET": "planned_enrollment",
        "NAME": "name",
        "COUNTRY": "country",
    }
    parsed = _parsed(content)
    for row in parsed:
        site = after[row["SITEID"]]
        old = before.get(row["SITEID"])
        for column, field in fields.items():
            given = row[column]
            expected: Any = getattr(old, field) if old is not None else None
            if given:
                expected = (
                    dt.date.fromisoformat(given)
                    if column in ("ACTIVATED", "PLANNED")
                    else int(given)
                    if column == "TARGET"
                    else given
                )
            assert getattr(site, field) == expected, (row["SITEID"], field)
        assert site.city == (old.city if old is not None else None)
    # Sites not in the file, and the other study's, are as they were.
    named = {row["SITEID"] for row in parsed}
    for site_id, site in before.items():
        if site_id not in named:
            assert after[site_id].model_dump() == site.model_dump()
    assert [r for r in _dump(db_url)[0] if r[1] != STUDY] == [
        r for r in other_before if r[1] != STUDY
    ]

    # The import is in the audit trail, as the other imports are.
    engine = make_engine(db_url)
    with Session(engine) as session:
        event = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc())).first()
    engine.dispose()
    assert event is not None and (event.action, event.study_id) == ("import", STUDY)
    assert event.detail["kind"] == "sites" and event.detail["file"] == "sites.csv"
    assert (event.detail["updated"], event.detail["added"]) == (2, 2)

    # The same file again changes nothing, and says so.
    again = _import(db_url, file, "--study", STUDY)
    assert again.exit_code == 0, again.stderr
    assert again.stdout == f"Sites of {STUDY}: 0 updated, 4 unchanged, 0 added.\n"


def test_the_only_study_is_the_default(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "one-study")
    engine = make_engine(url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        session.add(Study(study_id="S1"))
        session.flush()
        session.add(Site(study_id="S1", site_id="01", planned_enrollment=5))
    engine.dispose()
    file = tmp_path / "sites.csv"
    file.write_text("SITEID,PLANNED\n01,2026-01-05\n02,2026-02-01\n")

    result = _import(url, file)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Sites of S1: 1 updated, 1 added (planned, not yet open).\n"
    sites = _sites(url, "S1")
    assert (sites["01"].planned_activation_on, sites["01"].planned_enrollment) == (
        dt.date(2026, 1, 5),
        5,
    )
    assert sites["02"].activated_on is None


def test_rows_are_numbered_as_in_the_file(tmp_path: Path) -> None:
    # Blank rows are skipped but counted: row numbers are a spreadsheet's, the header row 1.
    file = tmp_path / "sites.csv"
    file.write_text("SITEID,TARGET\n\n7,1\n,\n8,2\n")
    table = read_site_table(file)
    assert [(r.row, r.site_id, r.planned_enrollment) for r in table.rows] == [
        (3, "7", 1),
        (5, "8", 2),
    ]
    file.write_text("SITEID,TARGET\n\n7,1\n,\n7,2\n")
    with pytest.raises(ImportFailure) as refused:
        read_site_table(file)
    assert (refused.value.problem.row, refused.value.problem.column) == (5, "SITEID")


# -- what is refused -----------------------------------------------------------------------------

GOOD_HEAD = "SITEID,ACTIVATED,PLANNED,TARGET\n101,2024-06-01,2024-05-01,20\n"

REFUSED = [
    # (case, file content, what the message names)
    ("no SITEID column", "SITE,TARGET\n101,3\n", ["row 1", "SITEID", "'SITE'"]),
    ("no value column", "SITEID,NAME\n101,A\n", ["row 1", "ACTIVATED, PLANNED, TARGET"]),
    ("empty SITEID", GOOD_HEAD + "  ,2024-06-01,,\n", ["row 3", "column SITEID", "empty"]),
    (
        "duplicate SITEID",
        GOOD_HEAD + "102,,,5\n101,,,7\n",
        ["row 4", "column SITEID", "'101'", "row 2"],
    ),
    (
        "impossible date",
        GOOD_HEAD + "102,2024-02-30,,\n",
        ["row 3", "column ACTIVATED", "'2024-02-30'"],
    ),
    ("non-ISO date", GOOD_HEAD + "102,,01/03/2024,\n", ["row 3", "column PLANNED", "'01/03/2024'"]),
    ("compact date", GOOD_HEAD + "102,,20240301,\n", ["row 3", "column PLANNED", "'20240301'"]),
    ("negative target", GOOD_HEAD + "102,,,-3\n", ["row 3", "column TARGET", "'-3'"]),
    ("fractional target", GOOD_HEAD + "102,,,12.5\n", ["row 3", "column TARGET", "'12.5'"]),
    ("worded target", GOOD_HEAD + "102,,,ten\n", ["row 3", "column TARGET", "'ten'"]),
    ("not CSV", GOOD_HEAD + '102,"2024-06-01,,\n', ["row 3", "CSV"]),
    ("cells past the header", GOOD_HEAD + "102,,,5,6\n", ["row 3", "'6'"]),
    ("empty file", "", ["empty"]),
]


@pytest.mark.parametrize(
    ("content", "named"), [(c, n) for _, c, n in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_bad_input_is_refused_naming_row_column_and_value(
    db_url: str, tmp_path: Path, content: str, named: list[str]
) -> None:
    file = tmp_path / "bad.csv"
    file.write_text(content)
    before = _dump(db_url)

    result = _import(db_url, file, "--study", STUDY)

    assert result.exit_code == 2, (result.stdout, result.stderr)
    message = result.stderr
    assert message.startswith("error: ") and "bad.csv" in message, message
    assert "nothing was written" in message and "Traceback" not in message
    for part in named:
        assert part in message, (part, message)
    assert result.stdout == ""
    assert _dump(db_url) == before


def test_files_that_cannot_be_read_are_refused(db_url: str, tmp_path: Path) -> None:
    before = _dump(db_url)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"SITEID,NAME,TARGET\n101,H\xf4pital,3\n")
    for file, said in (
        (tmp_path / "missing.csv", "no such file"),
        (tmp_path, "is a folder"),
        (latin, "is not UTF-8 text (byte 0xf4 on line 2)"),
    ):
        result = _import(db_url, file, "--study", STUDY)
        assert result.exit_code == 2, result.stdout
        assert f"{file}: {said}" in result.stderr and "nothing was written" in result.stderr
    assert _dump(db_url) == before


def test_the_study_must_be_known_and_named_where_there_are_several(
    db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "sites.csv"
    file.write_text(GOOD_HEAD)
    before = _dump(db_url)

    unknown = _import(db_url, file, "--study", "NOPE")
    several = _import(db_url, file)

    assert unknown.exit_code == 2 and "no study 'NOPE'" in unknown.stderr
    assert several.exit_code == 2
    assert "several studies (DEMO-MULTI, NCT06466850): name one with --study" in several.stderr
    assert _dump(db_url) == before


# -- warnings ------------------------------------------------------------------------------------


def test_an_activation_after_the_latest_cutoff_is_a_warning(db_url: str, tmp_path: Path) -> None:
    cutoff = _latest_cutoff(db_url, STUDY)
    late = cutoff + dt.timedelta(days=10)
    file = tmp_path / "sites.csv"
    # ACTIVATED later than PLANNED is no warning; only the date after the cut-off is.
    file.write_text(f"SITEID,ACTIVATED,PLANNED\n101,{late},2024-01-01\n102,{cutoff},2024-01-01\n")

    result = _import(db_url, file, "--study", STUDY)

    assert result.exit_code == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"warning: {file}, row 2, column ACTIVATED: site 101")
    assert str(late) in warnings[0] and str(cutoff) in warnings[0]
    assert result.stdout == f"Sites of {STUDY}: 2 updated, 0 added.\n"
    assert _sites(db_url, STUDY)["101"].activated_on == late
