"""Protocol deviations (DV) and toxicity grades (--TOXGR) through the SDTM importer. No public package
here ships DV, so a DV dataset with known deviations is written into a copy of the CDISC SDTM-MSG
sample; the toxicity grade goes into the small synthetic package of tests/sdtm_builders.py."""

import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dashboard.db import make_engine
from dashboard.importers.errors import ImportFailure
from dashboard.importers.run import import_sdtm
from dashboard.models import DataCut, Finding, ProtocolDeviation, Subject
from tests.databases import new_database_url, study_tables
from tests.sdtm_builders import copy_of_base, write_package

NO_IMPORTANCE = "DV: 2 deviations with no importance in DVCAT/DVSCAT (counted as not important)"

# Known deviations of MSG subjects (sites 701, 708, 718): what DVCAT / DVSCAT say decides the
# importance, the negative wording first ("NON-IMPORTANT" holds "IMPORTANT").
DEVIATIONS = [
    # USUBJID, DVSEQ, DVTERM, DVDECOD, DVCAT, DVSCAT, DVSTDTC, important
    ("CDISC001", 1, "Visit 3 late", "VISIT WINDOW", "MINOR", "", "2012-12-20", False),
    ("CDISC001", 2, "Dosed while ineligible", "ELIGIBILITY", "MAJOR", "", "2012-11-30", True),
    ("CDISC002", 1, "Consent v1 signed", "CONSENT", "IMPORTANT", "", "2012-11", True),
    ("CDISC009", 1, "Missed ECG", "PROCEDURE", "Non-important", "", "2013-01-07", False),
    ("CDISC009", 2, "Wrong kit dispensed", "IP", "DEVIATION", "critical", "2013-02-01", True),
    ("CDISC011", 1, "Lab sample lost", "PROCEDURE", "", "not important", "2013-01", False),
    ("CDISC017", 1, "Late diary entry", "DIARY", "OTHER", "", "2013-10-30", None),
    # An impossible date: kept as text with a warning, its date unknown (as in AE).
    ("CDISC018", 1, "Visit skipped", "", "", "", "2013-02-30", None),
]


def _dv(rows: Sequence[tuple[object, ...]]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [r[:7] for r in rows],
        columns=["USUBJID", "DVSEQ", "DVTERM", "DVDECOD", "DVCAT", "DVSCAT", "DVSTDTC"],
    )
    frame.insert(0, "STUDYID", "CDISCPILOT01")
    frame.insert(1, "DOMAIN", "DV")
    frame["DVSEQ"] = frame["DVSEQ"].astype(float)
    return frame


def _msg_with(folder: Path, shared_data: Path, dv: pd.DataFrame | None, kind: str = "xpt") -> Path:
    """A copy of the SDTM-MSG package with ``dv`` as dv.xpt (or dv.csv), or without DV."""
    shutil.copytree(
        shared_data / "sdtm" / "cdisc_msg_v2", folder, ignore=shutil.ignore_patterns("datasetjson")
    )
    if dv is not None:
        if kind == "xpt":
            pyreadstat.write_xport(
                dv, str(folder / "dv.xpt"), table_name="DV", file_format_version=5
            )
        else:
            dv.to_csv(folder / "dv.csv", index=False)
    return folder


_FIELDS = ("seq", "term", "decoded_term", "category", "subcategory", "start_dtc", "important")


def _deviations(engine: Engine) -> list[tuple[object, ...]]:
    """The study's deviations as DEVIATIONS lists them (blanks as None), with their start dates."""
    with Session(engine) as session:
        rows = session.execute(
            select(ProtocolDeviation, col(Subject.usubjid))
            .join(Subject, col(Subject.id) == col(ProtocolDeviation.subject_pk))
            .order_by(col(Subject.usubjid), col(ProtocolDeviation.seq))
        ).all()
    return [(usubjid, *(getattr(d, name) for name in _FIELDS), d.start_date) for d, usubjid in rows]


def _expected(rows: Sequence[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [tuple(v if v != "" else None for v in r) for r in rows]


def _latest_cut(engine: Engine) -> DataCut:
    with Session(engine) as session:
        cuts = session.exec(select(DataCut).order_by(col(DataCut.id).desc())).all()
    return cuts[0]


def test_deviations_are_stored_with_their_importance(tmp_path: Path, shared_data: Path) -> None:
    folder = _msg_with(tmp_path / "msg", shared_data, _dv(DEVIATIONS))
    engine = make_engine(new_database_url(tmp_path, "dv"))
    report = import_sdtm(engine, folder, study_id="MSG")

    stored = _deviations(engine)
    assert [r[:-1] for r in stored] == _expected(DEVIATIONS)
    assert [str(r[-1]) if r[-1] else None for r in stored] == [
        "2012-12-20",
        "2012-11-30",
        "2012-11-01",  # a partial date counts from the first day of its month
        "2013-01-07",
        "2013-02-01",
        "2013-01-01",
        "2013-10-30",
        None,  # 2013-02-30 does not exist
    ]

    assert NO_IMPORTANCE in report.warnings
    assert any(
        w.startswith("dv.xpt column DVSTDTC: 1 value is not a valid ISO 8601 date")
        for w in report.warnings
    )
    assert not any(w.startswith("no DV domain") for w in report.warnings)
    assert not any("not mapped yet" in w and "DV" in w for w in report.warnings)
    cut = _latest_cut(engine)
    assert cut.row_counts["DV"] == len(DEVIATIONS)
    assert any(s["file"] == "dv.xpt" for s in cut.source)
    engine.dispose()


def test_a_package_without_dv_says_so(tmp_path: Path, shared_data: Path) -> None:
    engine = make_engine(new_database_url(tmp_path, "no-dv"))
    report = import_sdtm(engine, _msg_with(tmp_path / "msg", shared_data, None), study_id="MSG")
    assert (
        "no DV domain: protocol deviations unknown (protocol-deviation KRIs are not computed)"
        in report.warnings
    )
    assert "DV" not in _latest_cut(engine).row_counts
    assert _deviations(engine) == []
    engine.dispose()


def test_a_later_cut_replaces_the_deviations(tmp_path: Path, shared_data: Path) -> None:
    engine = make_engine(new_database_url(tmp_path, "cuts"))
    import_sdtm(engine, _msg_with(tmp_path / "first", shared_data, _dv(DEVIATIONS)), study_id="MSG")

    # The second cut drops one deviation, re-categorises one and adds one (as CSV this time).
    later = [r for r in DEVIATIONS if (r[0], r[1]) != ("CDISC001", 1)]
    later[0] = (*later[0][:4], "MINOR", "", later[0][6], False)
    later.append(("CDISC012", 1, "Visit 2 out of window", "", "MINOR", "", "2013-10-01", False))
    import_sdtm(
        engine, _msg_with(tmp_path / "second", shared_data, _dv(later), "csv"), study_id="MSG"
    )
    assert [r[:-1] for r in _deviations(engine)] == sorted(_expected(later))
    assert _latest_cut(engine).row_counts["DV"] == len(later)

    # DV shipped with no record is not the same as no DV: row_counts holds DV with 0.
    import_sdtm(engine, _msg_with(tmp_path / "third", shared_data, _dv([]), "csv"), study_id="MSG")
    assert _deviations(engine) == []
    assert _latest_cut(engine).row_counts["DV"] == 0

    import_sdtm(engine, _msg_with(tmp_path / "fourth", shared_data, None), study_id="MSG")
    assert "DV" not in _latest_cut(engine).row_counts
    engine.dispose()


def test_dv_without_dvterm_is_refused(tmp_path: Path, shared_data: Path) -> None:
    folder = _msg_with(tmp_path / "msg", shared_data, _dv(DEVIATIONS).drop(columns="DVTERM"))
    engine = make_engine(new_database_url(tmp_path, "no-term"))
    with pytest.raises(ImportFailure) as failure:
        import_sdtm(engine, folder, study_id="MSG")
    assert (failure.value.problem.file, failure.value.problem.column) == ("dv.xpt", "DVTERM")
    assert str(failure.value) == "dv.xpt, column DVTERM: required column DVTERM is missing"
    engine.dispose()


def test_a_deviation_of_a_subject_not_in_dm_is_refused(tmp_path: Path, shared_data: Path) -> None:
    engine = make_engine(new_database_url(tmp_path, "unknown"))
    import_sdtm(engine, _msg_with(tmp_path / "first", shared_data, _dv(DEVIATIONS)), study_id="MSG")
    before = study_tables(engine)

    unknown = [*DEVIATIONS[:2], ("CDISC999", 1, "Missed visit", "", "MINOR", "", "2013-01-01")]
    folder = _msg_with(tmp_path / "second", shared_data, _dv(unknown))
    with pytest.raises(ImportFailure) as failure:
        import_sdtm(engine, folder, study_id="MSG")
    assert str(failure.value) == "dv.xpt, record 3, column USUBJID: subject CDISC999 is not in DM"
    # As with any fatal problem, nothing was written: the first cut's deviations are still there.
    assert all(before[t].equals(after) for t, after in study_tables(engine).items())
    assert len(_deviations(engine)) == len(DEVIATIONS)
    engine.dispose()


def test_the_toxicity_grade_is_read_from_toxgr(tmp_path: Path) -> None:
    tables = copy_of_base()
    base = {
        "STUDYID": "TINY",
        "DOMAIN": "LB",
        "LBTESTCD": "ALT",
        "LBTEST": "Alanine Aminotransferase",
    }
    tables["LB"] = [
        {**base, "USUBJID": "TINY-01-001", "LBSEQ": 1, "LBSTRESN": 30, "LBTOXGR": "0"},
        {**base, "USUBJID": "TINY-01-001", "LBSEQ": 2, "LBSTRESN": 190, "LBTOXGR": "3"},
        {**base, "USUBJID": "TINY-02-003", "LBSEQ": 1, "LBSTRESN": 25, "LBTOXGR": ""},
    ]
    engine = make_engine(new_database_url(tmp_path, "toxgr"))
    import_sdtm(engine, write_package(tmp_path / "tiny", tables))
    with Session(engine) as session:
        grades = session.execute(
            select(col(Finding.value_num), col(Finding.toxicity_grade))
            .where(col(Finding.domain) == "LB")
            .order_by(col(Finding.id))
        ).all()
        # Findings without --TOXGR have no grade.
        vs = session.execute(
            select(col(Finding.toxicity_grade)).where(col(Finding.domain) == "VS")
        ).scalars()
        assert set(vs) == {None}
    assert [tuple(g) for g in grades] == [(30.0, "0"), (190.0, "3"), (25.0, None)]
    engine.dispose()
