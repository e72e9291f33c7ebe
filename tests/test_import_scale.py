"""Import at scale (issue #19), on a small build: DEMO-SCALE exported as SAS transport files and
imported into an empty database gives the generated study's figures; a second cut with about 1% of
its records changed (``write_changed_cut``) is recorded as exactly those changes.

The figures are compared three ways: the same query (``study_summary``, what ``summary --json``
prints) on the generated and on the imported database; per-site counts in SQL over both; and record
counts read with pandas straight from the exported files. Speed is the benchmark's business
(benchmarks/import_scale.py): nothing here is timed.
"""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.demo_export import export_sdtm, write_changed_cut
from dashboard.demo_scale import CUTOFF, SCALE_STUDY_ID, build_scale_study
from dashboard.importers.run import SdtmImportReport, import_sdtm
from dashboard.views.overview import study_summary
from tests.databases import new_database_url, read_sql

N_SUBJECTS, N_SITES = 1000, 10
FIGURES = (
    "sites",
    "screened",
    "screen_failures",
    "enrolled",
    "enrolled_by_arm",
    "screen_failures_by_criterion",
    "ae_events",
    "ae_subjects",
    "sae_events",
    "sae_subjects",
)
PER_SITE = """
    SELECT site.site_id, subject.population, COUNT(*) AS subjects
    FROM subject JOIN site ON site.id = subject.site_pk
    WHERE subject.study_id = 'DEMO-SCALE'
    GROUP BY site.site_id, subject.population ORDER BY site.site_id, subject.population
"""
# SC is left out of the baseline count: the importer takes every subject characteristic as baseline
# (sdtm._findings), the generator flags only the enrolled subjects' values.
PER_DOMAIN = """
    SELECT finding.domain, COUNT(*) AS records,
        SUM(CASE WHEN finding.is_baseline AND finding.domain <> 'SC' THEN 1 ELSE 0 END) AS baseline
    FROM finding JOIN subject ON subject.id = finding.subject_pk
    WHERE subject.study_id = 'DEMO-SCALE' GROUP BY finding.domain ORDER BY finding.domain
"""


def _xpt(folder: Path, name: str) -> pd.DataFrame:
    frame, _meta = pyreadstat.read_xport(str(folder / f"{name}.xpt"))
    return frame


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(new_database_url(tmp_path_factory.mktemp("generated"), "generated"))
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_scale_study(session, n_subjects=N_SUBJECTS, n_sites=N_SITES)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def package(generated: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with Session(generated) as session:
        return export_sdtm(
            session,
            study_id=SCALE_STUDY_ID,
            cutoff=CUTOFF,
            folder=tmp_path_factory.mktemp("package"),
            file_format="xpt",
        )


@pytest.fixture(scope="module")
def imported(package: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(new_database_url(tmp_path_factory.mktemp("imported"), "imported"))
    import_sdtm(engine, package)
    yield engine
    engine.dispose()


def test_the_package_is_sas_transport_with_a_large_lb(package: Path) -> None:
    assert {p.suffix for p in package.iterdir()} == {".xpt"}
    lb = _xpt(package, "lb")
    # Screening values for every screened subject, then every attended visit's 8 tests.
    assert len(lb) > 8 * N_SUBJECTS
    assert set(lb["VISIT"]) > {"SCREENING", "DAY 1", "WEEK 2"}
    assert (lb.loc[lb["VISIT"] != "SCREENING", "LBBLFL"] == "").all()


def test_imported_figures_equal_the_generated_study(generated: Engine, imported: Engine) -> None:
    with Session(generated) as session:
        expected = study_summary(session, study_id=SCALE_STUDY_ID)
    with Session(imported) as session:
        loaded = study_summary(session, study_id=SCALE_STUDY_ID)
    assert expected["screened"] == N_SUBJECTS
    for key in FIGURES:
        assert loaded[key] == expected[key], key
    pd.testing.assert_frame_equal(read_sql(PER_SITE, imported), read_sql(PER_SITE, generated))
    pd.testing.assert_frame_equal(read_sql(PER_DOMAIN, imported), read_sql(PER_DOMAIN, generated))


def test_imported_counts_equal_the_exported_files(package: Path, imported: Engine) -> None:
    # Counted with pandas from the files, not through the importer's mapping.
    dm, ae, lb = _xpt(package, "dm"), _xpt(package, "ae"), _xpt(package, "lb")
    with Session(imported) as session:
        loaded = study_summary(session, study_id=SCALE_STUDY_ID)
    assert loaded["screened"] == len(dm)
    assert loaded["ae_events"] == len(ae)
    assert loaded["sae_events"] == (ae["AESER"] == "Y").sum()
    per_domain = read_sql(PER_DOMAIN, imported).set_index("domain")
    assert per_domain.loc["LB", "records"] == len(lb)
    assert per_domain.loc["LB", "baseline"] == (lb["LBBLFL"] == "Y").sum()


@pytest.fixture(scope="module")
def second_cut(
    package: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, dict[str, int]]]:
    folder = tmp_path_factory.mktemp("second")
    return folder, write_changed_cut(package, folder)


def test_second_cut_changes_about_one_percent(
    package: Path, second_cut: tuple[Path, dict[str, dict[str, int]]]
) -> None:
    folder, changed = second_cut
    for domain in ("LB", "VS"):
        before, after = _xpt(package, domain.lower()), _xpt(folder, domain.lower())
        assert len(before) == len(after)
        differs = (before[f"{domain}STRESN"] != after[f"{domain}STRESN"]).sum()
        assert differs == changed[domain]["changed"] == round(0.01 * len(before))
    assert changed["ae"]["changed"] == round(0.01 * len(_xpt(package, "ae")))
    assert changed["subject"]["added"] >= 1


def test_second_cut_history_names_exactly_the_changed_records(
    package: Path, second_cut: tuple[Path, dict[str, dict[str, int]]], tmp_path: Path
) -> None:
    folder, changed = second_cut
    engine = make_engine(new_database_url(tmp_path, "recut"))
    import_sdtm(engine, package)
    report: SdtmImportReport = import_sdtm(engine, folder)
    assert report.result.changes == {
        "subject": {"added": changed["subject"]["added"], "changed": 0, "removed": 0},
        "ae": {"added": 0, "changed": changed["ae"]["changed"], "removed": 0},
        "ie": {"added": 0, "changed": 0, "removed": 0},
        "ds": {"added": 0, "changed": 0, "removed": 0},
    }
    # The keys, from the files with pandas.
    before, after = _xpt(package, "ae"), _xpt(folder, "ae")
    differs = (before != after).any(axis=1)
    keys = after.loc[differs, "USUBJID"] + "/" + after.loc[differs, "AESEQ"].astype(int).astype(str)
    new_subjects = set(_xpt(folder, "dm")["USUBJID"]) - set(_xpt(package, "dm")["USUBJID"])
    recorded = read_sql(
        f"SELECT entity, change, natural_key FROM cutchange WHERE cut_id = {report.result.cut_id}",
        engine,
    )
    assert set(recorded.loc[recorded["entity"] == "ae", "natural_key"]) == set(keys)
    assert set(recorded.loc[recorded["entity"] == "subject", "natural_key"]) == new_subjects
    assert set(recorded["change"]) == {"added", "changed"}
    # The findings are the second cut's: its changed LB values, as many records as before.
    lb = _xpt(folder, "lb")
    stored = read_sql(
        "SELECT COUNT(*) AS records, SUM(value_num) AS total FROM finding WHERE domain = 'LB'",
        engine,
    ).iloc[0]
    assert stored["records"] == len(lb)
    assert stored["total"] == pytest.approx(lb["LBSTRESN"].sum())
    engine.dispose()
