"""Access rules (dashboard/access.py), the user commands, `--as EMAIL`, and the audit trail.

Scoped figures are compared with counts made independently in pandas on the rows of the
investigator's site, read straight from the tables.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from typer.testing import CliRunner

from dashboard import access
from dashboard.access import CurrentUser, effective_scope
from dashboard.cli import app
from dashboard.db import make_engine, session_scope
from dashboard.importers.errors import ImportFailure
from dashboard.importers.run import import_sdtm
from dashboard.models import AuditEvent, User, UserSite
from dashboard.queries import adverse_events, baseline, enrollment, screen_failures, subject
from dashboard.queries.audit import audit_events
from dashboard.results.audit import AuditFilter
from tests.access_support import (
    INVESTIGATOR,
    INVESTIGATOR_SITE,
    MONITOR,
    MONITOR_SITES,
    MULTI,
    SEED,
    SPONSOR,
    add_demo_users,
    sites_named,
)
from tests.databases import copy_database

runner = CliRunner()


@pytest.fixture(scope="module")
def users_db_url(demo_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo database with the demo users (a copy: these tests write to it)."""
    url = copy_database(demo_db_url, tmp_path_factory.mktemp("access"), "access")
    add_demo_users(url)
    return url


@pytest.fixture
def engine(users_db_url: str) -> Iterator[Engine]:
    engine = make_engine(users_db_url)
    yield engine
    engine.dispose()


def _user(role: str, *grants: tuple[str, tuple[str, ...]]) -> CurrentUser:
    return CurrentUser(email=f"{role}@x.example", role=role, unblinded=False, grants=grants)


# -- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "chosen", "expected"),
    [
        (None, [], None),  # every site, nothing chosen: every site
        (None, ["103", "101"], ("101", "103")),  # sorted: one cache key per set of sites
        (("101",), [], ("101",)),  # a site user without a choice: their sites
        (("101", "102"), ["102"], ("102",)),  # a choice within them
        (("101", "102"), ["102", "105"], ("102",)),  # a site outside is dropped
        (("101",), ["105"], ("101",)),  # nothing allowed chosen: back to their sites, not all
        ((), [], ()),  # no site at all stays no site
        ((), ["101"], ()),
    ],
)
def test_effective_scope(
    allowed: tuple[str, ...] | None, chosen: list[str], expected: tuple[str, ...] | None
) -> None:
    assert effective_scope(allowed, chosen) == expected


def test_what_each_role_may_see() -> None:
    investigator = _user(access.INVESTIGATOR, (MULTI, ("101",)))
    assert access.may_see_study(investigator, MULTI)
    assert not access.may_see_study(investigator, SEED)
    assert access.allowed_sites(investigator, MULTI) == ("101",)
    assert access.allowed_sites(investigator, SEED) == ()  # fails closed if asked anyway
    for role in (access.SPONSOR, access.MONITOR, access.ADMIN):
        everywhere = _user(role)
        assert access.may_see_study(everywhere, SEED)
        assert access.allowed_sites(everywhere, SEED) is None
        limited = _user(role, (MULTI, ("102", "103")))
        assert access.allowed_sites(limited, MULTI) == ("102", "103")
        assert access.allowed_sites(limited, SEED) is None  # no grant there: every site


def test_pages_by_role() -> None:
    for role in ("sponsor", "monitor", "investigator"):
        pages = access.allowed_pages(role)
        assert set(access.DATA_PAGES) <= set(pages)
        assert access.IMPORT_PAGE not in pages and access.AUDIT_PAGE not in pages
        assert not access.can_import(role) and not access.can_read_audit(role)
    assert {access.IMPORT_PAGE, access.AUDIT_PAGE} <= set(access.allowed_pages("admin"))
    assert access.can_import("admin") and access.can_read_audit("admin")


# -- users -------------------------------------------------------------------------------------


def test_user_add_update_remove_and_their_audit(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    with session_scope(engine) as session:
        added = access.add_user(
            session,
            email=" Jane.Doe@Site.example ",
            role="investigator",
            study_id="S1",
            sites=["02", "01", "01"],
            actor="cli",
        )
    assert added.created
    assert added.user.email == "jane.doe@site.example"
    assert added.user.grants == (("S1", ("01", "02")),)
    assert added.warnings == ("study S1 has no sites in the database yet",)
    with session_scope(engine) as session:
        # A second study, then new sites in the first: the grants of each study are replaced alone.
        access.add_user(
            session, email="jane.doe@site.example", role="investigator", study_id="S2",
            sites=["9"], actor="cli",
        )  # fmt: skip
        changed = access.add_user(
            session, email="JANE.DOE@site.example", role="investigator", study_id="S1",
            sites=["03"], unblinded=True, actor="admin@x.example",
        )  # fmt: skip
    assert not changed.created
    assert changed.user.grants == (("S1", ("03",)), ("S2", ("9",)))
    assert changed.user.unblinded
    with session_scope(engine) as session:
        assert access.remove_user(session, email="Jane.Doe@site.example", actor="cli")
        assert not access.remove_user(session, email="nobody@x.example", actor="cli")
    with Session(engine) as session:
        assert session.exec(select(User)).all() == []
        assert session.exec(select(UserSite)).all() == []
        trail, total = audit_events(session, wanted=AuditFilter(), limit=10)
    assert total == 4
    assert trail["action"].tolist() == ["user-remove", "user-change", "user-change", "user-add"]
    assert trail["email"].tolist() == ["cli", "admin@x.example", "cli", "cli"]
    assert trail["detail"].iloc[1]["user"] == "jane.doe@site.example"
    assert trail["sites"].iloc[1] == ["03"] and trail["study_id"].iloc[1] == "S1"
    engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "not-an-email", "role": "sponsor"}, "is not an e-mail address"),
        ({"email": "a@b.example", "role": "owner"}, "is not one of admin, sponsor"),
        ({"email": "a@b.example", "role": "sponsor", "study_id": "S1"}, "go together"),
        ({"email": "a@b.example", "role": "sponsor", "sites": ["1"]}, "go together"),
        ({"email": "a@b.example", "role": "investigator"}, "give --study ID --sites"),
    ],
)
def test_user_add_refuses_what_it_cannot_store(
    empty_db_url: str, kwargs: dict[str, object], message: str
) -> None:
    engine = make_engine(empty_db_url)
    with pytest.raises(ValueError, match=message), Session(engine) as session:
        access.add_user(session, actor="cli", **kwargs)  # type: ignore[arg-type]
    engine.dispose()


def test_the_audit_trail_refuses_update_and_delete(engine: Engine) -> None:
    access.record_event(engine, email="tests", action="export", study_id=MULTI, sites=["101"])
    for statement in ("UPDATE auditevent SET email = 'someone else'", "DELETE FROM auditevent"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with Session(engine) as session:
        assert "tests" in session.exec(select(AuditEvent.email)).all()


def test_nothing_in_the_package_deletes_or_updates_audit_events() -> None:
    # The trigger is the lock; this says no code even tries (a search of the sources).
    package = Path(__file__).resolve().parent.parent / "dashboard"
    for path in package.rglob("*.py"):
        source = path.read_text()
        for pattern in ("delete(AuditEvent", "update(AuditEvent", "DELETE FROM auditevent"):
            assert pattern not in source, f"{path}: {pattern}"


# -- scope in the query layer --------------------------------------------------------------------


def _site_subjects(engine: Engine, site_id: str) -> pd.DataFrame:
    """The multisite study's subjects at one site, read with pandas (no query-layer code)."""
    subjects = pd.read_sql_table("subject", engine)
    sites = pd.read_sql_table("site", engine)
    site_pk = sites.loc[(sites["study_id"] == MULTI) & (sites["site_id"] == site_id), "id"]
    return subjects[(subjects["study_id"] == MULTI) & subjects["site_pk"].isin(site_pk)]


def _expected_summary(engine: Engine, site_id: str) -> dict[str, object]:
    """The summary's figures for one site, counted in pandas from the raw tables."""
    subjects = _site_subjects(engine, site_id)
    enrolled = subjects[subjects["population"] == "ENROLLED"]
    failed = subjects[subjects["population"] == "SCREEN FAILURE"]
    events = pd.read_sql_table("adverseevent", engine)
    events = events[events["subject_pk"].isin(subjects["id"])]
    serious = events[events["serious"] == "Y"]
    findings = pd.read_sql_table("eligibilityfinding", engine).merge(
        pd.read_sql_table("criterion", engine)[["id", "code", "seq"]],
        left_on="criterion_pk",
        right_on="id",
    )
    findings = findings[findings["subject_pk"].isin(failed["id"])]
    by_code = findings.groupby("code")["subject_pk"].nunique()
    return {
        "sites": 1,
        "screened": len(subjects),
        "screen_failures": len(failed),
        "enrolled": len(enrolled),
        "enrolled_by_arm": enrolled.groupby("arm").size().to_dict(),
        "screen_failures_by_criterion": {str(k): int(v) for k, v in by_code.items()},
        "ae_events": len(events),
        "ae_subjects": events["subject_pk"].nunique(),
        "sae_events": len(serious),
        "sae_subjects": serious["subject_pk"].nunique(),
    }


def test_an_investigators_scope_reaches_only_their_site(engine: Engine) -> None:
    with Session(engine) as session:
        user = access.load_user(session, email=INVESTIGATOR.upper())
        assert user is not None and user.role == "investigator"
        scope = access.allowed_sites(user, MULTI)
        assert scope == (INVESTIGATOR_SITE,)
        expected = _expected_summary(engine, INVESTIGATOR_SITE)
        counts = enrollment.population_counts(session, study_id=MULTI, scope=scope)
        assert (counts.screened, counts.enrolled) == (expected["screened"], expected["enrolled"])
        # The drilldowns: a listing of another site's subjects comes back empty.
        assert enrollment.site_subjects(session, study_id=MULTI, site_id="102", scope=scope).empty
        own = enrollment.site_subjects(session, study_id=MULTI, site_id="101", scope=scope)
        assert len(own) == expected["screened"]
        listing, total = adverse_events.adverse_event_listing(
            session, study_id=MULTI, scope=scope, treatment_emergent=False, limit=5000
        )
        assert total == expected["ae_events"] and sites_named(listing) == {INVESTIGATOR_SITE}
        failed = screen_failures.failed_subjects(
            session,
            study_id=MULTI,
            scope=scope,
            period=None,
            code="INCL03",
            protocol_version="",
            value_codes=(),
        )
        assert sites_named(failed) == {INVESTIGATOR_SITE}  # site 101 has INCL03 failures
        picked, women = baseline.subjects_with_value(
            session, study_id=MULTI, scope=scope, population="enrolled", by="arm", key="SEX",
            column="Placebo", value="F", limit=500,
        )  # fmt: skip
        assert women > 0 and sites_named(picked) == {INVESTIGATOR_SITE}
        other = _site_subjects(engine, "102")["usubjid"].iloc[0]
        assert subject.subject_record(session, study_id=MULTI, usubjid=other, scope=scope) is None
        assert access.load_user(session, email="nobody@x.example") is None


# -- the command line ----------------------------------------------------------------------------


def _summary(db: str, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["summary", "--json", "--db", db, *args])
    assert result.exit_code == 0, result.stderr
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def test_summary_as_an_investigator_counts_their_site_only(
    users_db_url: str, engine: Engine
) -> None:
    figures = _summary(users_db_url, "--study", MULTI, "--as", INVESTIGATOR)
    expected = _expected_summary(engine, INVESTIGATOR_SITE)
    assert {k: figures[k] for k in expected} == expected
    # Without --study: the only study the investigator may see.
    assert _summary(users_db_url, "--as", INVESTIGATOR) == figures


def test_summary_as_a_monitor_and_a_sponsor(users_db_url: str, engine: Engine) -> None:
    monitor = _summary(users_db_url, "--study", MULTI, "--as", MONITOR)
    per_site = [_expected_summary(engine, s) for s in MONITOR_SITES]
    assert monitor["sites"] == 2
    assert monitor["screened"] == sum(int(str(e["screened"])) for e in per_site)
    assert monitor["ae_events"] == sum(int(str(e["ae_events"])) for e in per_site)
    # A sponsor sees what an unscoped call sees.
    assert _summary(users_db_url, "--study", MULTI, "--as", SPONSOR) == _summary(
        users_db_url, "--study", MULTI
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", MULTI, "--as", "nobody@x.example"], "no user 'nobody@x.example'"),
        (["--study", SEED, "--as", INVESTIGATOR], "has no access to study 'NCT06466850'"),
    ],
)
def test_summary_as_refuses_plainly(users_db_url: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["summary", "--json", "--db", users_db_url, *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_user_commands(tmp_path: Path, demo_db_url: str) -> None:
    db = copy_database(demo_db_url, tmp_path, "users")
    added = runner.invoke(
        app,
        ["user", "add", "PI@Hospital.example", "--role", "investigator", "--study", MULTI,
         "--sites", "101,199", "--unblinded", "--db", db],
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "warning: not a site of DEMO-MULTI (yet): 199" in added.stdout
    assert "user pi@hospital.example added: investigator, unblinded" in added.stdout
    sponsor = runner.invoke(
        app, ["user", "add", "s@pharma.example", "--role", "sponsor", "--db", db]
    )
    assert sponsor.exit_code == 0
    listed = json.loads(runner.invoke(app, ["user", "list", "--json", "--db", db]).stdout)
    assert listed == [
        {
            "email": "pi@hospital.example",
            "role": "investigator",
            "unblinded": True,
            "sites": {MULTI: ["101", "199"]},
        },
        {"email": "s@pharma.example", "role": "sponsor", "unblinded": False, "sites": {}},
    ]
    text_list = runner.invoke(app, ["user", "list", "--db", db]).stdout
    assert "every site of every study" in text_list and "DEMO-MULTI: 101, 199" in text_list
    bad_role = runner.invoke(app, ["user", "add", "x@y.example", "--role", "owner", "--db", db])
    assert bad_role.exit_code == 2
    no_sites = runner.invoke(
        app, ["user", "add", "x@y.example", "--role", "investigator", "--db", db]
    )
    assert no_sites.exit_code == 2 and "give --study ID --sites" in no_sites.stderr
    assert runner.invoke(app, ["user", "remove", "PI@hospital.example", "--db", db]).exit_code == 0
    gone = runner.invoke(app, ["user", "remove", "pi@hospital.example", "--db", db])
    assert gone.exit_code == 2 and "no user 'pi@hospital.example'" in gone.stderr
    engine = make_engine(db)
    with Session(engine) as session:
        trail, _ = audit_events(session, wanted=AuditFilter(emails=("cli",)), limit=10)
    engine.dispose()
    assert trail["action"].tolist() == ["user-remove", "user-add", "user-add"]


# -- imports are audited -------------------------------------------------------------------------


def test_an_import_and_its_audit_event_are_written_together(tmp_path: Path) -> None:
    from tests.databases import new_database_url
    from tests.sdtm_builders import write_package

    url = new_database_url(tmp_path, "import")
    engine = make_engine(url)
    folder = write_package(tmp_path / "package")
    report = import_sdtm(engine, folder, actor="admin@cro.example")
    (folder / "dm.csv").write_text("not,a,dm\n")  # a broken package: refused, nothing written
    with pytest.raises(ImportFailure):
        import_sdtm(engine, folder, actor="admin@cro.example")
    with Session(engine) as session:
        trail, total = audit_events(session, wanted=AuditFilter(actions=("import",)), limit=10)
    engine.dispose()
    assert total == 1
    event = trail.iloc[0]
    assert (event["email"], event["study_id"]) == ("admin@cro.example", report.result.study_id)
    assert event["detail"]["cut_id"] == report.result.cut_id
    assert event["detail"]["kind"] == "sdtm"
