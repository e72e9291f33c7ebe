"""Two cuts of the multisite demo, exported as SDTM packages and imported in turn: the importer's
history must report exactly what the second package added, changed and removed.

The expected changes are computed here with pandas from the two exported packages themselves,
independently of the importer's diff.
"""

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.demo import MULTISITE_STUDY_ID, SEED_STUDY_ID
from dashboard.demo_export import export_sdtm
from dashboard.importers.run import import_sdtm
from dashboard.views.overview import study_summary
from tests.databases import new_database_url

INTERIM, CURRENT = dt.date(2025, 9, 30), dt.date(2025, 12, 31)  # the demo's two cut-offs


@pytest.fixture(scope="module")
def packages(demo_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cuts")
    with Session(demo_engine) as session:
        return {
            "interim": export_sdtm(
                session, study_id=MULTISITE_STUDY_ID, cutoff=INTERIM, folder=base / "interim"
            ),
            "current": export_sdtm(
                session, study_id=MULTISITE_STUDY_ID, cutoff=CURRENT, folder=base / "current"
            ),
        }


def _read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def _expected(old: Path, new: Path, name: str, key: list[str]) -> dict[str, set[str]]:
    """Added / changed / removed natural keys between two versions of one dataset."""
    before = _read(old, name).set_index(key)
    after = _read(new, name).set_index(key)
    common = before.index.intersection(after.index)
    differs = (before.loc[common] != after.loc[common, before.columns]).any(axis=1)

    def keys(index: pd.Index) -> set[str]:
        return {"/".join(k) if isinstance(k, tuple) else str(k) for k in index}

    return {
        "added": keys(after.index.difference(before.index)),
        "changed": keys(common[differs.to_numpy()]),
        "removed": keys(before.index.difference(after.index)),
    }


def _changes(engine: Engine, cut_id: int) -> dict[tuple[str, str], set[str]]:
    frame = pd.read_sql_query(
        f"SELECT entity, change, natural_key FROM cutchange WHERE cut_id = {cut_id}", engine
    )
    return {
        (str(entity), str(change)): set(group["natural_key"])
        for (entity, change), group in frame.groupby(["entity", "change"])
    }


def _fresh(tmp_path: Path) -> Engine:
    engine = make_engine(new_database_url(tmp_path, "cuts"))
    ensure_schema(engine)
    return engine


def test_second_cut_reports_what_it_added_changed_and_removed(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    engine = _fresh(tmp_path)
    import_sdtm(engine, packages["interim"])
    report = import_sdtm(engine, packages["current"])
    recorded = _changes(engine, report.result.cut_id)

    old, new = packages["interim"], packages["current"]
    ae = _expected(old, new, "ae", ["USUBJID", "AESEQ"])
    assert ae["added"] and ae["changed"]  # new events, and events that ended since
    assert recorded.get(("ae", "added"), set()) == ae["added"]
    assert recorded.get(("ae", "changed"), set()) == ae["changed"]
    assert recorded.get(("ae", "removed"), set()) == ae["removed"] == set()

    dm = _expected(old, new, "dm", ["USUBJID"])
    # A subject also changes when a disposition record arrives (screen failure, completion,
    # discontinuation decide the population and status), though its DM row may not.
    ds_before, ds_after = _read(old, "ds"), _read(new, "ds")
    new_ds = set(ds_after["USUBJID"] + "/" + ds_after["DSSEQ"]) - set(
        ds_before["USUBJID"] + "/" + ds_before["DSSEQ"]
    )
    existing = set(_read(old, "dm")["USUBJID"])
    changed_by_ds = {k.split("/")[0] for k in new_ds} & existing
    assert recorded.get(("subject", "added"), set()) == dm["added"]
    assert recorded.get(("subject", "changed"), set()) == dm["changed"] | changed_by_ds
    assert ("subject", "removed") not in recorded
    assert recorded.get(("ds", "added"), set()) == new_ds

    counts = report.result.changes
    assert counts["subject"]["added"] == len(dm["added"]) > 0
    assert counts["ae"] == {"added": len(ae["added"]), "changed": len(ae["changed"]), "removed": 0}

    # The interim package holds the subjects screened by its cut-off: the added ones came later.
    assert all(
        pd.Timestamp(d) > pd.Timestamp(INTERIM)
        for d in _read(new, "dm").set_index("USUBJID").loc[sorted(dm["added"]), "RFICDTC"]
    )
    with Session(engine) as session:
        final = study_summary(session, study_id=MULTISITE_STUDY_ID)
    full = pd.read_csv(new / "dm.csv")
    assert final["screened"] == len(full)


def test_removed_subjects_and_events_are_recorded(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    # A later cut in which one subject's data was withdrawn from the database.
    current = shutil.copytree(packages["current"], tmp_path / "withdrawn")
    ae = _read(current, "ae")
    gone = ae["USUBJID"].iloc[0]
    for name in ("dm", "ae", "dv", "ds", "ie", "ex", "sv", "vs", "qs", "lb"):
        path = current / f"{name}.csv"
        if path.exists():
            frame = _read(current, name)
            frame[frame["USUBJID"] != gone].to_csv(path, index=False)
    engine = _fresh(tmp_path)
    import_sdtm(engine, packages["current"])
    report = import_sdtm(engine, current)
    recorded = _changes(engine, report.result.cut_id)
    assert recorded[("subject", "removed")] == {gone}
    assert recorded[("ae", "removed")] == {
        f"{gone}/{seq}" for seq in ae.loc[ae["USUBJID"] == gone, "AESEQ"]
    }
    assert ("subject", "added") not in recorded and ("subject", "changed") not in recorded


def test_seed_study_round_trips_through_sdtm(demo_engine: Engine, tmp_path: Path) -> None:
    # The NCT06466850 demo, exported and imported, gives the same headline figures.
    with Session(demo_engine) as session:
        folder = export_sdtm(
            session, study_id=SEED_STUDY_ID, cutoff=dt.date(2025, 11, 30), folder=tmp_path / "seed"
        )
        original = study_summary(session, study_id=SEED_STUDY_ID)
    engine = _fresh(tmp_path)
    import_sdtm(engine, folder, study_id="ROUND-TRIP")
    with session_scope(engine) as session:
        loaded = study_summary(session, study_id="ROUND-TRIP")
    for key in (
        "screened",
        "screen_failures",
        "enrolled",
        "enrolled_by_arm",
        "screen_failures_by_criterion",
        "ae_events",
        "ae_subjects",
        "sae_events",
    ):
        assert loaded[key] == original[key], key
