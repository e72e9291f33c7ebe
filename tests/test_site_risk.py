"""The Site risk view end to end: site scope in the view and on the command line, flags new since
an earlier cut (two real imports), and the life of a quality tolerance limit's excursion."""

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.importers.run import import_sdtm
from dashboard.metrics import kri_catalogue as k
from dashboard.models import AuditEvent, QtlExcursion
from dashboard.queries.studies import data_cuts
from dashboard.views.context import ViewContext
from dashboard.views.site_risk import SiteRiskOptions, build_site_risk
from tests.access_support import (
    INVESTIGATOR,
    INVESTIGATOR_SITE,
    MONITOR,
    MONITOR_SITES,
    MULTI,
    add_demo_users,
)
from tests.conftest import build_demo_database, open_study_page, reference_absent
from tests.databases import new_database_url
from tests.reference import SHARED_DATA

CONTRACT_KEYS = {"site", "kri", "name", "numerator", "denominator", "metric", "score", "flag"}


@pytest.fixture(scope="module")
def users_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = build_demo_database(tmp_path_factory.mktemp("site-risk"))
    add_demo_users(url)
    return url


def _kri_json(url: str, *args: str) -> list[dict[str, object]]:
    done = CliRunner().invoke(app, ["kri", "--study", MULTI, "--db", url, "--json", *args])
    assert done.exit_code == 0, done.output
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def test_kri_json_is_the_contract_and_the_view(users_db: str) -> None:
    found = _kri_json(users_db)
    assert found and all(set(row) == CONTRACT_KEYS for row in found)
    engine = make_engine(users_db)
    with Session(engine) as session:
        view = build_site_risk(session, ViewContext(MULTI))
    engine.dispose()
    assert found == view.kri_rows()
    # One row per site and computed KRI; a KRI whose source is absent has no row at all.
    sites = {row["site"] for row in found}
    assert len(found) == len(sites) * len(view.computed)
    absent = {s.definition.id for s in view.kris if s.absent}
    assert not absent & {row["kri"] for row in found}


@pytest.mark.parametrize(
    ("email", "sites"), [(INVESTIGATOR, {INVESTIGATOR_SITE}), (MONITOR, set(MONITOR_SITES))]
)
def test_kri_as_a_site_user_shows_their_sites_scored_against_the_study(
    users_db: str, email: str, sites: set[str]
) -> None:
    everyone = _kri_json(users_db)
    theirs = _kri_json(users_db, "--as", email)
    assert {row["site"] for row in theirs} == sites
    # Their sites' scores are the study-wide ones: the comparison is with every site.
    assert theirs == [row for row in everyone if row["site"] in sites]


def test_a_site_user_sees_no_other_site_anywhere_in_the_view(users_db: str) -> None:
    engine = make_engine(users_db)
    with Session(engine) as session:
        view = build_site_risk(
            session, ViewContext(MULTI, scope=MONITOR_SITES, viewer_sites=MONITOR_SITES)
        )
    engine.dispose()
    allowed = set(MONITOR_SITES)
    assert set(view.scores["site_id"]) == allowed
    assert set(view.flag_table["Site"]) == allowed
    assert set(view.history["site_id"]) <= allowed
    assert all(set(f.points["site_id"]) <= allowed for f in view.funnels)
    assert view.countries is None  # a country's sum would show its other sites


def test_qtl_set_and_evaluate_are_kept_and_audited(users_db: str) -> None:
    runner = CliRunner()
    # DEMO-MULTI: 21 of 231 enrolled discontinued (9.1%): under gsm.qtl's default limit for
    # p0 0.07, over the limit of p0 0.01 (0.01 + 3 sqrt(0.01 x 0.99 / 231) = 0.0296).
    done = runner.invoke(app, ["qtl", "list", "--study", MULTI, "--db", users_db, "--json"])
    listed = json.loads(done.stdout)
    assert not any(q["over"] for q in listed["qtls"]) and listed["excursions"] == []
    done = runner.invoke(
        app,
        [
            "qtl",
            "set",
            "--study",
            MULTI,
            "--parameter",
            "qtl_discontinuation",
            "--p0",
            "0.01",
            "--z",
            "3",
            "--db",
            users_db,
        ],
    )
    assert done.exit_code == 0, done.output
    assert "excursion opened for qtl_discontinuation" in done.stdout
    listed = json.loads(
        runner.invoke(app, ["qtl", "list", "--study", MULTI, "--db", users_db, "--json"]).stdout
    )
    qtl = next(q for q in listed["qtls"] if q["parameter"] == "qtl_discontinuation")
    assert qtl["over"] and qtl["limit"] == pytest.approx(0.01 + 3 * (0.01 * 0.99 / 231) ** 0.5)
    (excursion,) = listed["excursions"]
    assert not excursion["closed"] and excursion["value"] == pytest.approx(21 / 231)
    # Setting the limit again does not open a second record while one is open.
    runner.invoke(
        app,
        [
            "qtl",
            "set",
            "--study",
            MULTI,
            "--parameter",
            "qtl_discontinuation",
            "--p0",
            "0.02",
            "--db",
            users_db,
        ],
    )
    done = runner.invoke(
        app,
        [
            "qtl",
            "evaluate",
            str(excursion["id"]),
            "--study",
            MULTI,
            "--db",
            users_db,
            "--evaluation",
            "Two sites withdrew subjects",
            "--action",
            "Retraining",
            "--close",
        ],
    )
    assert done.exit_code == 0, done.output
    listed = json.loads(
        runner.invoke(app, ["qtl", "list", "--study", MULTI, "--db", users_db, "--json"]).stdout
    )
    (closed,) = listed["excursions"]
    assert closed["closed"] and closed["action"] == "Retraining" and closed["evaluated_by"]
    engine = make_engine(users_db)
    with Session(engine) as session:
        actions = session.exec(
            select(AuditEvent.action).where(col(AuditEvent.study_id) == MULTI)
        ).all()
    engine.dispose()
    assert actions.count("qtl-set") == 2 and actions.count("qtl-evaluate") == 1
    # A closed excursion cannot be evaluated again; bad limits are refused with a message.
    done = runner.invoke(
        app,
        [
            "qtl",
            "evaluate",
            str(excursion["id"]),
            "--study",
            MULTI,
            "--db",
            users_db,
            "--evaluation",
            "x",
            "--action",
            "y",
        ],
    )
    assert done.exit_code == 2 and "closed already" in done.stderr
    done = runner.invoke(
        app,
        [
            "qtl",
            "set",
            "--study",
            MULTI,
            "--parameter",
            "qtl_nothing",
            "--p0",
            "0.1",
            "--db",
            users_db,
        ],
    )
    assert done.exit_code == 2 and "no QTL parameter" in done.stderr


def test_flags_new_since_an_earlier_cut(tmp_path: Path) -> None:
    source = SHARED_DATA / "sdtm" / "cdisc_msg_v2"
    if not source.is_dir():
        reference_absent(f"reference data folder {source} is absent")
    url = new_database_url(tmp_path, "history")
    engine = make_engine(url)
    import_sdtm(engine, source, study_id="MSG")
    # The second cut: site 701 reports ten times the AEs it did (each record repeated).
    changed = tmp_path / "second"
    changed.mkdir()
    for path in source.glob("*.xpt"):
        frame, _ = pyreadstat.read_xport(str(path), encoding="cp1252")
        if path.stem == "ae":
            dm, _ = pyreadstat.read_xport(str(source / "dm.xpt"))
            at_701 = frame["USUBJID"].isin(dm.loc[dm["SITEID"] == "701", "USUBJID"])
            copies = pd.concat([frame[at_701]] * 9, ignore_index=True)
            # The copies numbered after the subject's last record: the first cut's AEs keep their
            # keys (renumbering them all would read as removals, which need --replace).
            copies["AESEQ"] = frame["AESEQ"].max() + 1 + copies.groupby("USUBJID").cumcount()
            frame = pd.concat([frame, copies], ignore_index=True)
        frame.to_csv(changed / f"{path.stem}.csv", index=False)
    import_sdtm(engine, changed, study_id="MSG")
    with Session(engine) as session:
        first, second = data_cuts(session, study_id="MSG")
        # Six sites: gsm's phi would absorb one outlier (its score cannot pass sqrt(6)), so the
        # robust over-dispersion, which does not let it, is the one to use here.
        view = build_site_risk(
            session, ViewContext("MSG", since_cut_id=first.id), SiteRiskOptions(method="robust")
        )
    engine.dispose()
    assert view.compared_cut is not None and view.compared_cut.id == first.id
    assert view.compared_has_counts
    # Both cuts kept their counts: the history has each.
    assert set(view.history["cut_id"]) == {first.id, second.id}
    ae = view.scores[(view.scores["kri"] == k.AE)].set_index("site_id")["flag"]
    assert ae.to_dict()["701"] >= 1
    new = view.new_flags
    row = new[(new["Site"] == "701") & (new["KRI"] == "Adverse event rate")]
    assert len(row) == 1 and int(row["Cuts flagged in a row"].iloc[0]) == 1
    # A flag the first cut had already is not new.
    before = view.history[view.history["cut_id"] == first.id].set_index(["site_id", "kri"])
    for site, kri in zip(new["Site"], new["KRI"], strict=True):
        kri_id = next(d.id for d in view.computed if d.name == kri)
        assert (
            pd.isna(before.loc[(site, kri_id), "flag"]) or before.loc[(site, kri_id), "flag"] == 0
        )


def test_demo_multi_planted_sites_are_flagged_and_no_other_is(users_db: str) -> None:
    from dashboard.demo import PLANTED_KRI_SITES

    engine = make_engine(users_db)
    with Session(engine) as session:
        view = build_site_risk(session, ViewContext(MULTI))
    engine.dispose()
    flags = view.scores.pivot(index="site_id", columns="kri", values="flag")
    flag: dict[tuple[str, str], Any] = {
        (row["site_id"], row["kri"]): row["flag"] for row in view.scores.to_dict("records")
    }
    planted = {
        k.AE: PLANTED_KRI_SITES["ae_under_reporting"],
        k.SCREEN_FAILURE: PLANTED_KRI_SITES["screen_failures"],
        k.DEVIATIONS: PLANTED_KRI_SITES["deviations"],
    }
    # The under-reporting site is red on the low side; with 10 sites a lone outlier's adjusted z
    # cannot pass about sqrt(10) (gsm's phi grows with it), so the other two reach amber.
    assert flag[(planted[k.AE], k.AE)] == -2
    assert flag[(planted[k.SCREEN_FAILURE], k.SCREEN_FAILURE)] >= 1
    assert flag[(planted[k.DEVIATIONS], k.DEVIATIONS)] >= 1
    for kri, site in planted.items():
        others = flags.drop(index=site)[kri].dropna()
        assert (others == 0).all(), (kri, others[others != 0].to_dict())
    # The robust method, whose phi the outlier does not inflate, makes each of them red.
    robust = SiteRiskOptions(method="robust")
    engine = make_engine(users_db)
    with Session(engine) as session:
        scores = build_site_risk(session, ViewContext(MULTI), robust).scores
    engine.dispose()
    red = scores[scores["flag"].abs() == 2].groupby("kri")["site_id"].apply(set)
    for kri, site in planted.items():
        assert site in red.get(kri, set()), kri


def test_an_excursion_is_evaluated_and_closed_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = SHARED_DATA / "sdtm" / "cdisc_msg_v2"
    if not source.is_dir():
        reference_absent(f"reference data folder {source} is absent")
    url = new_database_url(tmp_path, "excursion")
    engine = make_engine(url)
    # SDTM-MSG: 14 of 17 enrolled did not complete: the discontinuation QTL is crossed on load.
    import_sdtm(engine, source, study_id="MSG")
    at = open_study_page(url, "MSG", "site_risk.py", monkeypatch, timeout=120)
    assert any("The limit is crossed" in e.value for e in at.error)
    at.text_area[0].input("Two sites enrolled outside the population")
    at.text_area[1].input("Sites retrained; eligibility review added")
    at.checkbox[0].check()
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    with Session(engine) as session:
        excursion = session.exec(select(QtlExcursion)).one()
        audit = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "qtl-evaluate")
        ).one()
    engine.dispose()
    assert excursion.closed and excursion.action == "Sites retrained; eligibility review added"
    assert excursion.evaluated_by == audit.email and audit.detail["closed"] is True
    assert "No open QTL excursion." in [c.value for c in at.caption]
