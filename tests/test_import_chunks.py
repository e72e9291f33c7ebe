"""A findings domain is read, checked and stored a chunk of records at a time (issue #19: an LB of
millions of records in bounded memory). Read in chunks of 1,000 records, the CDISC pilot's VS
(29,643 records: 30 chunks) must give what it gives read whole: the same tables, the same warnings
with the same counts and the same record numbers in the file, and a fatal problem in a late chunk
must leave nothing written.

Expected values come from the files themselves, read with pandas and pyreadstat.
"""

import shutil
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.importers import readers
from dashboard.results.dates import InvalidDateError, parse_dtc
from tests.databases import STUDY_TABLES, new_database_url, read_sql, study_tables
from tests.reference import SHARED_DATA

PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
CHUNK = 1_000
runner = CliRunner()


@pytest.fixture
def pilot(shared_data: Path) -> Path:
    return shared_data / "sdtm" / "cdiscpilot01"


def _import(folder: Path, url: str) -> tuple[int, str]:
    result = runner.invoke(app, ["import", "sdtm", str(folder), "--db", url])
    return result.exit_code, result.stderr


def _pilot_with_vs(folder: Path, vs: pd.DataFrame) -> Path:
    """The pilot's package with ``vs`` as vs.csv in place of vs.xpt."""
    folder.mkdir()
    for path in PILOT.iterdir():
        if path.name != "vs.xpt":
            shutil.copy(path, folder / path.name)
    vs.to_csv(folder / "vs.csv", index=False)
    return folder


def _pilot_vs() -> pd.DataFrame:
    vs, _meta = pyreadstat.read_xport(str(PILOT / "vs.xpt"))
    return vs.astype(object).where(vs.notna(), "")


def _tables(url: str) -> dict[str, pd.DataFrame]:
    """Every study table, without the moments things happened (the cut's loading, an
    excursion's opening)."""
    tables = study_tables(make_engine(url))
    tables["datacut"] = tables["datacut"].drop(columns=["loaded_at"])
    tables["qtlexcursion"] = tables["qtlexcursion"].drop(columns=["opened_at"])
    return tables


def _assert_same_tables(first: str, second: str) -> None:
    one, other = _tables(first), _tables(second)
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(one[table], other[table], obj=table)


def _load(folder: Path, tmp_path: Path, name: str, chunk: int | None) -> str:
    url = new_database_url(tmp_path, name)
    with pytest.MonkeyPatch.context() as patch:
        if chunk:
            patch.setattr(readers, "CHUNK_RECORDS", chunk)
        code, err = _import(folder, url)
    assert code == 0, err
    return url


def test_the_pilot_read_in_chunks_equals_the_pilot_read_whole(pilot: Path, tmp_path: Path) -> None:
    whole = _load(pilot, tmp_path, "whole", None)
    chunked = _load(pilot, tmp_path, "chunked", CHUNK)
    _assert_same_tables(whole, chunked)
    vs, _meta = pyreadstat.read_xport(str(pilot / "vs.xpt"))
    findings = read_sql(
        "SELECT count(*) AS n FROM finding WHERE domain = 'VS'", make_engine(chunked)
    )
    assert findings["n"].iloc[0] == len(vs) == 29_643


def test_warnings_are_counted_over_every_chunk(pilot: Path, tmp_path: Path) -> None:
    vs = _pilot_vs()
    vs.loc[[9, 24_999], "VSSTRESN"] = "n/a"  # records 10 and 25,000
    vs.loc[[1_499, 27_999], "VSDTC"] = "2013-02-30"  # records 1,500 and 28,000
    # Exact copies of records 3 and 20,001, as records 29,644 and 29,645 (other chunks).
    vs = pd.concat([vs, vs.iloc[[2, 20_000]]], ignore_index=True)
    folder = _pilot_with_vs(tmp_path / "package", vs)

    written = pd.read_csv(folder / "vs.csv", dtype=str, keep_default_na=False)
    not_numbers = [n for n, v in enumerate(written["VSSTRESN"], start=1) if v == "n/a"]
    bad_dates = [n for n, v in enumerate(written["VSDTC"], start=1) if v == "2013-02-30"]
    repeats = [n + 1 for n in written.index[written.duplicated()]]
    assert (not_numbers, bad_dates, repeats) == ([10, 25_000], [1_500, 28_000], [29_644, 29_645])

    whole = _load(folder, tmp_path, "whole", None)
    chunked = _load(folder, tmp_path, "chunked", CHUNK)
    _assert_same_tables(whole, chunked)
    cut = read_sql("SELECT warnings FROM datacut", make_engine(chunked))
    warnings = cut["warnings"].iloc[0]
    with pytest.raises(InvalidDateError) as error:
        parse_dtc("2013-02-30")
    for expected in (
        "vs.csv column VSSTRESN: 2 values are not a number (first at record 10: 'n/a'); kept as "
        "text, the number is unknown",
        "vs.csv column VSDTC: 2 values are not a valid ISO 8601 date (first at record 1500: "
        f"{error.value}); kept as text, the date is unknown",
        "vs.csv: 2 exact duplicate records kept once (records 29644, 29645)",
    ):
        assert expected in warnings, warnings
    findings = read_sql(
        "SELECT count(*) AS n FROM finding WHERE domain = 'VS'", make_engine(chunked)
    )
    assert findings["n"].iloc[0] == len(written) - len(repeats)


def test_a_fatal_problem_in_a_late_chunk_writes_nothing(pilot: Path, tmp_path: Path) -> None:
    loaded = _load(pilot, tmp_path, "loaded", None)
    before = study_tables(make_engine(loaded))
    vs = _pilot_vs()
    vs.loc[24_999, "USUBJID"] = "01-999-9999"  # record 25,000: the 25th chunk
    folder = _pilot_with_vs(tmp_path / "package", vs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "CHUNK_RECORDS", CHUNK)
        code, err = _import(folder, loaded)
    assert code == 2
    assert "vs.csv, record 25000, column USUBJID: subject 01-999-9999 is not in DM" in err, err
    after = study_tables(make_engine(loaded))
    for table in STUDY_TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_the_baseline_without_a_flag_is_found_across_chunks(pilot: Path, tmp_path: Path) -> None:
    """Without VSBLFL, each subject's baseline per measurement (test, location, position, time
    point: supine and standing blood pressure each have one) is the last record dated on or before
    the first dose (of one day's records, the last in the file)."""
    vs = _pilot_vs().drop(columns=["VSBLFL"])
    folder = _pilot_with_vs(tmp_path / "package", vs)
    chunked = _load(folder, tmp_path, "chunked", CHUNK)
    _assert_same_tables(_load(folder, tmp_path, "whole", None), chunked)

    dm, _meta = pyreadstat.read_xport(str(pilot / "dm.xpt"))
    first_dose = dict(zip(dm["USUBJID"], dm["RFXSTDTC"].str[:10], strict=True))
    vs = vs.assign(record=range(len(vs)), day=vs["VSDTC"].str[:10])
    vs = vs[vs["day"] != ""]
    dose = vs["USUBJID"].map(first_dose).fillna("")
    before = vs[(dose != "") & (vs["day"] <= dose)]
    measurement = ["USUBJID", "VSTESTCD", "VSLOC", "VSPOS", "VSTPT"]
    last = before.sort_values(["day", "record"]).groupby(measurement, dropna=False).tail(1)
    expected = sorted(zip(last["USUBJID"], last["VSTESTCD"], last["VSDTC"], strict=True))

    stored = read_sql(
        "SELECT s.usubjid, f.test_code, f.dtc FROM finding f JOIN subject s "
        "ON s.id = f.subject_pk WHERE f.domain = 'VS' AND f.is_baseline",
        make_engine(chunked),
    )
    assert len(expected) > 1_000
    assert sorted(stored.itertuples(index=False, name=None)) == expected
