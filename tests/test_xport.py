"""The transport-file reader that reads a large file in parts (``importers.xport``) gives what
pyreadstat gives: on every transport file of the shared data, in parts of 7 records (parts that
end anywhere), on numbers at the edges of IBM floating point, and on UTF-8 text. A file it does
not know (version 8) is left to pyreadstat, and a file cut short is still fatal."""

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.importers import readers, xport
from tests.databases import new_database_url
from tests.reference import SHARED_DATA

TRANSPORT_FILES = sorted(SHARED_DATA.glob("sdtm/*/*.xpt"))


def _same(mine: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert list(mine.columns) == list(theirs.columns)
    assert len(mine) == len(theirs)
    for column in theirs.columns:
        for n, (a, b) in enumerate(
            zip(mine[column].tolist(), theirs[column].astype(object).tolist(), strict=True)
        ):
            both_missing = isinstance(a, float) and isinstance(b, float) and math.isnan(a)
            assert a == b or (both_missing and math.isnan(b)), (column, n, a, b)


def _pyreadstat(path: Path) -> pd.DataFrame:
    try:
        return pyreadstat.read_xport(str(path), encoding="utf-8")[0]
    except Exception:  # cp1252 text (the pilot's TS)
        return pyreadstat.read_xport(str(path), encoding="cp1252")[0]


def _in_parts(path: Path, records: int) -> pd.DataFrame:
    layout = xport.layout_of(path)
    assert layout is not None, path
    return pd.concat(list(xport.read_parts(path, layout, records)), ignore_index=True)


def test_the_shared_data_holds_transport_files(shared_data: Path) -> None:
    assert len(TRANSPORT_FILES) >= 30


@pytest.mark.parametrize("path", TRANSPORT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shared_transport_file_reads_as_pyreadstat_reads_it(
    path: Path, shared_data: Path
) -> None:
    _same(_in_parts(path, 7), _pyreadstat(path))


def test_numbers_at_the_edges_and_text(tmp_path: Path) -> None:
    numbers = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, -2.5e-70, 5e74, 123456789.123456, math.nan]
    frame = pd.DataFrame(
        {
            "USUBJID": [f"S-{n:03d}" for n in range(len(numbers))],
            "LBSTRESN": numbers,
            "LBORRES": ["CÉPHALÉE", "", "  lead", "a", "b", "c", "d", "e", "f", "g"],
        }
    )
    path = tmp_path / "lb.xpt"
    pyreadstat.write_xport(frame, str(path), table_name="LB", file_format_version=5)
    mine, theirs = _in_parts(path, 3), _pyreadstat(path)
    _same(mine, theirs)
    assert mine["LBSTRESN"].iloc[:9].tolist() == pytest.approx(numbers[:9], rel=1e-15)
    assert np.isnan(mine["LBSTRESN"].iloc[9])
    assert mine["LBORRES"].iloc[0] == "CÉPHALÉE"


def test_a_version_8_file_is_left_to_pyreadstat(tmp_path: Path) -> None:
    frame = pd.DataFrame({"USUBJID": ["S-1", "S-2", "S-3"], "VSSTRESN": [1.5, None, 3.0]})
    path = tmp_path / "vs.xpt"
    pyreadstat.write_xport(frame, str(path), table_name="VS", file_format_version=8)
    assert xport.layout_of(path) is None
    chunks = [d.frame.copy() for d in readers.read_in_chunks("VS", path, 2)]
    assert [len(c) for c in chunks] == [2, 1]
    assert pd.concat(chunks)["VSSTRESN"].tolist() == [1.5, None, 3.0]


@pytest.mark.parametrize("cut", ["inside a record", "on a line"])
def test_a_findings_file_cut_short_is_fatal(cut: str, shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "sdtm" / "cdiscpilot01"
    folder = tmp_path / "package"
    folder.mkdir()
    shutil.copy(source / "dm.xpt", folder / "dm.xpt")
    data = (source / "vs.xpt").read_bytes()
    start = data.index(b"HEADER RECORD*******OBS     HEADER RECORD") + 80
    size = start + 20_000 * 80 + (37 if cut == "inside a record" else 0)
    (folder / "vs.xpt").write_bytes(data[:size])
    url = new_database_url(tmp_path, "cut")
    result = CliRunner().invoke(app, ["import", "sdtm", str(folder), "--db", url])
    assert result.exit_code == 2
    assert "vs.xpt" in result.stderr and "the file is cut short" in result.stderr, result.stderr
    assert "nothing was written" in result.stderr
