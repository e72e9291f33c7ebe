"""The review log (issue #20): marks keyed to a record's natural key and the cut it last changed
in, "changed since review" after a later cut changes the record, site scope and roles on every
write, blinded texts, the log append-only, concurrent marks both kept, and the figures read from
the log equal an independent count of its rows.

The re-import tests run on the real CDISC pilot (its AE file rewritten with two events changed);
each test runs on SQLite, and on PostgreSQL where TEST_POSTGRES_URL is set (.ci/run does both).
"""

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard import review
from dashboard.access import LOCAL_USER, CurrentUser
from dashboard.db import (
    delete_study,
    ensure_schema,
    fill_natural_keys,
    make_engine,
    session_scope,
)
from dashboard.demo import build_multisite_study
from dashboard.importers.run import import_sdtm
from dashboard.results.review import (
    HIDDEN_TEXT,
    MEDICAL_MONITOR,
    STATE_CHANGED,
    STATE_REVIEWED,
    STATE_UNREVIEWED,
)
from dashboard.views import review as views
from dashboard.views.context import ViewContext
from tests.conftest import SHARED_DATA, reference_absent
from tests.databases import new_database_url, read_sql

PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
STUDY = "CDISCPILOT01"
MULTI = "DEMO-MULTI"


def _package(folder: Path, ae: pd.DataFrame | None = None) -> Path:
    """The pilot's files linked into ``folder``, its AE file replaced by ``ae`` where given."""
    folder.mkdir(parents=True)
    for source in PILOT.iterdir():
        if source.suffix == ".xpt" and not (ae is not None and source.name == "ae.xpt"):
            (folder / source.name).symlink_to(source)
    if ae is not None:
        pyreadstat.write_xport(ae, str(folder / "ae.xpt"), table_name="AE", file_format_version=5)
    return folder


@pytest.fixture
def pilot(tmp_path: Path) -> Iterator[Engine]:
    if not PILOT.is_dir():
        reference_absent(f"reference data folder {PILOT} is absent")
    engine = make_engine(new_database_url(tmp_path, "review"))
    import_sdtm(engine, _package(tmp_path / "cut1"))
    yield engine
    engine.dispose()


def _states(engine: Engine, entity: str = "ae", ctx: ViewContext | None = None) -> pd.DataFrame:
    with Session(engine) as session:
        found = views.states(
            session, ctx or ViewContext(study_id=STUDY), entity=entity, role=MEDICAL_MONITOR
        )
    return found.set_index("natural_key")


def _mark(engine: Engine, keys: list[str], *, entity: str = "ae", user: CurrentUser = LOCAL_USER,
          role: str = MEDICAL_MONITOR, study: str = STUDY) -> int:  # fmt: skip
    with session_scope(engine) as session:
        return review.mark(session, user=user, study_id=study, entity=entity, keys=keys, role=role)


def test_a_later_cut_that_changes_two_reviewed_aes_turns_exactly_those_two(
    pilot: Engine, tmp_path: Path
) -> None:
    ae, _ = pyreadstat.read_xport(str(PILOT / "ae.xpt"))
    keys = [f"{u}/{int(s)}" for u, s in zip(ae["USUBJID"], ae["AESEQ"], strict=True)]
    reviewed, changed = keys[10:14], keys[10:12]
    assert _mark(pilot, reviewed) == 4
    _mark(pilot, [keys[20]], role="cra")  # another role's mark is its own
    before = _states(pilot)
    assert set(before.index[before["review_state"] == STATE_REVIEWED]) == set(reviewed)

    # The second cut: the same AEs, two of the reviewed ones with a new severity and end date.
    edited = ae.copy()
    rows = [keys.index(k) for k in changed]
    edited.loc[rows, "AESEV"] = ["SEVERE" if v != "SEVERE" else "MILD" for v in ae["AESEV"][rows]]
    import_sdtm(pilot, _package(tmp_path / "cut2", edited))

    with Session(pilot) as session:
        later_cut = session.execute(text("SELECT max(id) FROM datacut")).scalar_one()
    changes = read_sql(
        f"SELECT natural_key FROM cutchange WHERE cut_id = {later_cut} AND entity = 'ae' "
        "AND change = 'changed'",
        pilot,
    )
    assert sorted(changes["natural_key"]) == sorted(changed)  # the cut changed only those two
    after = _states(pilot)
    assert sorted(after.index[after["review_state"] == STATE_CHANGED]) == sorted(changed)
    assert sorted(after.index[after["review_state"] == STATE_REVIEWED]) == sorted(keys[12:14])
    assert (after["review_state"] == STATE_UNREVIEWED).sum() == len(ae) - 4
    # Who reviewed a changed record stays visible: the reviewer saw its earlier version.
    assert set(after.loc[changed, "reviewed_by"]) == {LOCAL_USER.email}
    # Marking it again reviews its present version.
    _mark(pilot, changed[:1])
    assert _states(pilot).loc[changed[0], "review_state"] == STATE_REVIEWED
    with Session(pilot) as session:
        counts = views.states(session, ViewContext(study_id=STUDY), entity="ae", role="cra")[
            "review_state"
        ].value_counts()
    assert counts.get(STATE_REVIEWED) == 1


def test_a_removed_record_keeps_its_history(pilot: Engine, tmp_path: Path) -> None:
    ae, _ = pyreadstat.read_xport(str(PILOT / "ae.xpt"))
    key = f"{ae['USUBJID'][0]}/{int(ae['AESEQ'][0])}"
    _mark(pilot, [key])
    with session_scope(pilot) as session:
        thread = review.open_query(
            session, user=LOCAL_USER, study_id=STUDY, entity="ae", key=key, audience="site",
            text="Please check the end date.",
        )  # fmt: skip
    import_sdtm(pilot, _package(tmp_path / "cut2", ae.iloc[1:].reset_index(drop=True)))
    assert key not in _states(pilot).index
    with Session(pilot) as session:
        log = views.export(session, ViewContext(study_id=STUDY))
        threads = views.queries(session, ViewContext(study_id=STUDY), today=dt.date.today())
    assert list(log.loc[log["natural_key"] == key, "kind"]) == ["reviewed", "query"]
    assert list(threads["thread_id"]) == [thread]
    removed = read_sql(
        f"SELECT change FROM cutchange WHERE entity = 'ae' AND natural_key = '{key}'", pilot
    )
    assert list(removed["change"]) == ["added", "removed"]


def test_the_natural_keys_filled_in_sql_equal_the_importers(pilot: Engine) -> None:
    tables = ("adverseevent", "disposition", "eligibilityfinding")
    stored = {t: read_sql(f"SELECT id, natural_key FROM {t} ORDER BY id", pilot) for t in tables}
    assert stored["adverseevent"]["natural_key"].notna().all()
    with pilot.begin() as connection:
        for table in tables:
            connection.execute(text(f"UPDATE {table} SET natural_key = NULL"))
        fill_natural_keys(connection)
    for table in tables:
        filled = read_sql(f"SELECT id, natural_key FROM {table} ORDER BY id", pilot)
        pd.testing.assert_frame_equal(filled, stored[table])


@pytest.fixture
def multi(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(new_database_url(tmp_path, "multi"))
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_multisite_study(session)
    yield engine
    engine.dispose()


def _site_user(role: str, site: str) -> CurrentUser:
    return CurrentUser(
        email=f"{role}@site{site}.example", role=role, unblinded=False, grants=((MULTI, (site,)),)
    )


def _log_rows(engine: Engine) -> int:
    return int(read_sql("SELECT count(*) AS n FROM reviewevent", engine)["n"][0])


def test_a_site_user_cannot_mark_raise_or_answer_at_another_site(multi: Engine) -> None:
    ctx = ViewContext(study_id=MULTI)
    with Session(multi) as session:
        aes = views.states(session, ctx, entity="ae", role="cra")
    at_101 = aes.loc[aes["site_id"] == "101", "natural_key"].iloc[0]
    at_102 = aes.loc[aes["site_id"] == "102", "natural_key"].iloc[0]
    cra_101 = _site_user("monitor", "101")
    investigator_102 = _site_user("investigator", "102")
    before = _log_rows(multi)

    with pytest.raises(review.ReviewRefused, match="not found in DEMO-MULTI at your sites"):
        _mark(multi, [at_101, at_102], user=cra_101, role="cra", study=MULTI)
    with pytest.raises(review.ReviewRefused, match="may not mark records as Medical monitor"):
        _mark(multi, [at_101], user=cra_101, role=MEDICAL_MONITOR, study=MULTI)
    with pytest.raises(review.ReviewRefused, match="may not mark"):
        _mark(multi, [at_102], user=investigator_102, role="cra", study=MULTI)
    assert _log_rows(multi) == before  # nothing written, not even the allowed key

    assert _mark(multi, [at_101], user=cra_101, role="cra", study=MULTI) == 1
    with session_scope(multi) as session:
        at_101_query = review.open_query(
            session, user=cra_101, study_id=MULTI, entity="ae", key=at_101, audience="site",
            text="Onset date?",
        )  # fmt: skip
        with pytest.raises(review.ReviewRefused, match="at your sites"):
            review.open_query(
                session, user=cra_101, study_id=MULTI, entity="ae", key=at_102, audience="site",
                text="Onset date?",
            )  # fmt: skip
    with session_scope(multi) as session, pytest.raises(review.ReviewRefused, match="not found"):
        review.post(
            session, user=investigator_102, study_id=MULTI, thread_id=at_101_query, kind="answer",
            text="Confirmed.",
        )  # fmt: skip
    with session_scope(multi) as session, pytest.raises(review.ReviewRefused, match="answer"):
        review.open_query(
            session, user=investigator_102, study_id=MULTI, entity="ae", key=at_102,
            audience="site", text="?",
        )  # fmt: skip
    investigator_101 = _site_user("investigator", "101")
    with session_scope(multi) as session:
        review.post(
            session, user=investigator_101, study_id=MULTI, thread_id=at_101_query, kind="answer",
            text="Confirmed from the source notes.",
        )  # fmt: skip
    with session_scope(multi) as session, pytest.raises(review.ReviewRefused, match="answer"):
        review.post(
            session, user=investigator_101, study_id=MULTI, thread_id=at_101_query, kind="close",
            text="Done.",
        )  # fmt: skip

    # What the site-102 investigator's scope reads: nothing of site 101's.
    scoped = ViewContext(study_id=MULTI, scope=("102",), viewer_sites=("102",))
    with Session(multi) as session:
        threads = views.queries(session, scoped, today=dt.date.today())
        assert at_101_query not in set(threads["thread_id"])
        assert set(threads["site_id"]) <= {"102"}
        exported = views.export(session, scoped)
        assert set(exported["site_id"]) == {"102"}  # the demo's own review rows at site 102
        assert at_101 not in set(exported["natural_key"])
        assert set(views.status(session, scoped, today=dt.date.today()).records["site_id"]) == {
            "102"
        }
    audit = read_sql("SELECT action FROM auditevent ORDER BY id", multi)
    assert [a for a in audit["action"] if a.startswith(("review-", "query-"))] == [
        "review-mark",
        "query-open",
        "query-answer",
    ]


def test_concurrent_marks_of_one_record_are_both_kept(multi: Engine) -> None:
    with Session(multi) as session:
        key = views.states(session, ViewContext(study_id=MULTI), entity="ae", role="cra")[
            "natural_key"
        ].iloc[0]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def reviewer(role: str) -> None:
        try:
            with session_scope(multi) as session:
                start.wait(timeout=30)  # both sessions open and writing at once
                review.mark(
                    session, user=LOCAL_USER, study_id=MULTI, entity="ae", keys=[key], role=role
                )
                start.wait(timeout=30)  # neither commits before both have written
        except BaseException as error:
            errors.append(error)

    # On PostgreSQL both insert inside open transactions at the same time. SQLite takes one
    # writer at a time (the second waits for the first, its busy timeout), so there the two marks
    # overlap only as far as SQLite lets them: started together, no barrier inside.
    def in_turn(role: str) -> None:
        try:
            _mark(multi, [key], role=role, study=MULTI)
        except BaseException as error:
            errors.append(error)

    target = in_turn if multi.dialect.name == "sqlite" else reviewer
    threads = [threading.Thread(target=target, args=(r,)) for r in ("cra", MEDICAL_MONITOR)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    log = read_sql(
        "SELECT role, natural_key FROM reviewevent WHERE email = 'local' ORDER BY role", multi
    )
    assert list(log["role"]) == ["cra", MEDICAL_MONITOR]
    assert set(log["natural_key"]) == {key}
    for role in ("cra", MEDICAL_MONITOR):
        with Session(multi) as session:
            found = views.states(session, ViewContext(study_id=MULTI), entity="ae", role=role)
        assert found.set_index("natural_key").loc[key, "review_state"] == STATE_REVIEWED


def test_the_status_counts_equal_an_independent_count_of_the_log(multi: Engine) -> None:
    ctx = ViewContext(study_id=MULTI)
    with Session(multi) as session:
        aes = views.states(session, ctx, entity="ae", role=MEDICAL_MONITOR)
    # AEs the current cut added: a mark on an earlier cut's version of one is out of date.
    keys = list(aes.loc[aes["version_cut"] == aes["version_cut"].max(), "natural_key"])
    _mark(multi, keys[:6], study=MULTI)
    _mark(multi, keys[:2], study=MULTI, role="data-manager")
    with session_scope(multi) as session:
        review.mark(session, user=LOCAL_USER, study_id=MULTI, entity="ae", keys=keys[:1],
                    role=MEDICAL_MONITOR, reviewed=False)  # fmt: skip
    # A mark made on an older version of the record: as if a later cut had changed it since.
    with multi.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO reviewevent (at, email, role, study_id, site_id, entity, natural_key,"
                " kind, record_cut_id, by_unblinded) SELECT at, email, role, study_id, site_id,"
                " entity, natural_key, kind, (SELECT min(id) FROM datacut), by_unblinded FROM"
                " reviewevent WHERE"
                f" natural_key = '{keys[5]}' AND role = '{MEDICAL_MONITOR}'"
            )
        )
    with Session(multi) as session:
        status = views.status(session, ctx, today=dt.date.today()).as_json()

    # Independently: the log's rows and the AEs' versions, read with plain SQL, in plain Python.
    log = read_sql(
        "SELECT id, role, natural_key, kind, record_cut_id FROM reviewevent WHERE entity = 'ae'"
        " AND kind IN ('reviewed', 'unreviewed')",
        multi,
    )
    versions = read_sql(
        "SELECT a.natural_key, st.site_id, coalesce(a.updated_cut_id, a.first_cut_id) AS v "
        "FROM adverseevent a JOIN subject s ON s.id = a.subject_pk JOIN site st ON "
        "st.id = s.site_pk WHERE s.study_id = 'DEMO-MULTI'",
        multi,
    )
    for role in ("medical-monitor", "cra", "data-manager"):
        latest: dict[str, tuple[str, int]] = {}
        for entry in log[log["role"] == role].sort_values("id").to_dict("records"):
            latest[entry["natural_key"]] = (entry["kind"], entry["record_cut_id"])
        expected: dict[str, dict[str, int]] = {}
        for record in versions.to_dict("records"):
            kind, cut = latest.get(record["natural_key"], ("none", 0))
            state = (
                "unreviewed" if kind != "reviewed"
                else "changed since review" if record["v"] > cut else "reviewed"
            )  # fmt: skip
            site = expected.setdefault(record["site_id"], dict.fromkeys(
                ("unreviewed", "changed since review", "reviewed"), 0))  # fmt: skip
            site[state] += 1
        found = {s: roles[role] for s, roles in status["pages"]["adverse-events"]["ae"].items()}
        assert found == expected, role
    with Session(multi) as session:
        mine = views.states(session, ctx, entity="ae", role=MEDICAL_MONITOR, keys=keys[:6])
    assert (
        dict(zip(mine["natural_key"], mine["review_state"], strict=True))
        == {
            keys[0]: STATE_UNREVIEWED,  # withdrawn
            **dict.fromkeys(keys[1:5], STATE_REVIEWED),
            keys[5]: STATE_CHANGED,
        }
    )


def test_a_blinded_viewer_never_reads_an_unblinded_reviewers_text(pilot: Engine) -> None:
    ae = _states(pilot)
    key = ae.index[0]
    unblinded = CurrentUser(email="mm@sponsor.example", role="sponsor", unblinded=True)
    blinded = CurrentUser(email="dm@sponsor.example", role="sponsor", unblinded=False)
    with session_scope(pilot) as session:
        thread = review.open_query(
            session, user=unblinded, study_id=STUDY, entity="ae", key=key,
            audience="medical-monitor", text="Xanomeline High Dose: is this expected?",
        )  # fmt: skip
        review.post(session, user=blinded, study_id=STUDY, thread_id=thread, kind="answer",
                    text="Data checked against the CRF.")  # fmt: skip
    today = dt.date.today()
    with Session(pilot) as session:
        info_blinded = read_sql("SELECT is_blinded FROM study", pilot)["is_blinded"][0]
        assert info_blinded  # the pilot is double blind
        for shows_arms, first in ((False, HIDDEN_TEXT), (True, "Xanomeline High Dose: is this")):
            ctx = ViewContext(study_id=STUDY, shows_arms=shows_arms)
            assert views.queries(session, ctx, today=today)["question"][0].startswith(first)
            texts = list(views.messages(session, ctx, thread_id=thread)["text"])
            assert texts[0].startswith(first) and texts[1] == "Data checked against the CRF."
            exported = views.export(session, ctx)
            assert exported["text"].str.contains("Xanomeline").any() == shows_arms


def test_the_log_is_append_only_and_goes_only_with_its_study(multi: Engine) -> None:
    with Session(multi) as session:
        key = views.states(session, ViewContext(study_id=MULTI), entity="ae", role="cra")[
            "natural_key"
        ].iloc[0]
    before = _log_rows(multi)
    _mark(multi, [key], role="cra", study=MULTI)
    for statement in ("UPDATE reviewevent SET kind = 'unreviewed'", "DELETE FROM reviewevent"):
        with (
            pytest.raises(Exception, match="review log is append-only"),
            multi.begin() as connection,
        ):
            connection.execute(text(statement))
    assert _log_rows(multi) == before + 1
    # A demo rebuilt (the study deleted and written anew) takes its old review log with it.
    with session_scope(multi) as session:
        delete_study(session, MULTI)
    assert _log_rows(multi) == 0
    assert read_sql("SELECT count(*) AS n FROM reviewpurge", multi)["n"][0] == 0
