"""The query layer against independent counts: the demo's own plan (hand counts) and pandas over the
raw tables of the same SQLite file."""

from collections import Counter

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.demo import SEED_ADVERSE_EVENTS, SEED_ENROLLED, SEED_FAILURES
from dashboard.queries.adverse_events import count_adverse_events, incidence_by_soc
from dashboard.queries.baseline import baseline_values, demographic_counts
from dashboard.queries.enrollment import (
    any_subjects,
    daily_accrual,
    enrolled_by_arm,
    population_counts,
)
from dashboard.queries.safety_counts import changes_since
from dashboard.queries.screen_failures import failed_subject_counts, failures_by_criterion
from dashboard.queries.studies import data_cuts, site_count, sites, study_info

SEED = "NCT06466850"
MULTI = "DEMO-MULTI"


def _table(engine: Engine, sql: str) -> pd.DataFrame:
    return pd.read_sql_query(sql, engine)


@pytest.fixture(scope="module")
def raw(demo_engine: Engine) -> dict[str, pd.DataFrame]:
    """The raw tables joined to their subject and site, read with plain SQL (no query layer)."""
    subjects = _table(
        demo_engine,
        "SELECT s.*, site.site_id AS siteid FROM subject s JOIN site ON site.id = s.site_pk",
    )
    return {
        "subjects": subjects,
        "ie": _table(
            demo_engine,
            "SELECT f.subject_pk, c.code, c.study_id FROM eligibilityfinding f "
            "JOIN criterion c ON c.id = f.criterion_pk",
        ),
        "ae": _table(demo_engine, "SELECT * FROM adverseevent"),
        "findings": _table(demo_engine, "SELECT * FROM finding"),
    }


# -- NCT06466850: hand counts from the demo's plan ----------------------------------------------


def test_seed_population_counts(session: Session) -> None:
    counts = population_counts(session, study_id=SEED, scope=None)
    assert counts.screened == len(SEED_FAILURES) + SEED_ENROLLED == 36
    assert counts.screen_failures == len(SEED_FAILURES) == 16
    assert counts.enrolled == SEED_ENROLLED == 20
    assert counts.screen_failure_rate == pytest.approx(16 / 36)


def test_seed_failures_by_criterion(session: Session) -> None:
    frame = failures_by_criterion(session, study_id=SEED, scope=None)
    expected = Counter(code for failed in SEED_FAILURES for code in failed)
    # Every criterion is listed, zeros included: 3 inclusion + 7 exclusion.
    assert frame["code"].tolist() == [f"INCL0{i}" for i in range(1, 4)] + [
        f"EXCL0{i}" for i in range(1, 8)
    ]
    assert dict(zip(frame["code"], frame["subjects"], strict=True)) == {
        code: expected.get(code, 0) for code in frame["code"]
    }
    assert frame.set_index("code").loc["EXCL03", "subjects"] == 0
    assert frame.set_index("code").loc["INCL02", "subjects"] == 5
    counts = failed_subject_counts(session, study_id=SEED, scope=None)
    assert counts == {"with_reason": 16, "more_than_one": 3}


def test_seed_adverse_events(session: Session) -> None:
    counts = count_adverse_events(session, study_id=SEED, scope=None)
    assert counts.events == len(SEED_ADVERSE_EVENTS) == 17
    assert counts.subjects == len({ae[0] for ae in SEED_ADVERSE_EVENTS}) == 14
    assert counts.serious_events == sum(ae[7] == "Y" for ae in SEED_ADVERSE_EVENTS) == 1
    assert counts.serious_subjects == 1
    by_soc = incidence_by_soc(session, study_id=SEED, scope=None)
    expected: dict[str, set[int]] = {}
    for ae in SEED_ADVERSE_EVENTS:
        expected.setdefault(ae[4], set()).add(ae[0])
    assert dict(zip(by_soc["body_system"], by_soc["subjects"], strict=True)) == {
        soc: len(subjects) for soc, subjects in expected.items()
    }
    assert by_soc["events"].sum() == 17
    assert by_soc["subjects"].is_monotonic_decreasing


def test_seed_study_and_site(session: Session) -> None:
    info = study_info(session, study_id=SEED)
    assert info is not None
    assert info.registry_id == "NCT06466850"
    assert info.planned_enrollment == 20
    assert (info.min_age, info.max_age) == (45, 75)
    assert site_count(session, study_id=SEED) == 1
    assert sites(session, study_id=SEED)["name"].tolist() == [
        "Isfahan University of Medical Sciences"
    ]
    assert [
        c.cutoff_date.isoformat() for c in data_cuts(session, study_id=SEED) if c.cutoff_date
    ] == [
        "2025-04-30",
        "2025-11-30",
    ]
    assert enrolled_by_arm(session, study_id=SEED, scope=None).to_dict("records") == [
        {"arm_code": "EXO", "arm": "Exosome", "enrolled": 20}
    ]


def test_unknown_study_is_empty(session: Session) -> None:
    assert study_info(session, study_id="NOPE") is None
    assert population_counts(session, study_id="NOPE", scope=None).screened == 0
    assert not any_subjects(session, study_id="NOPE", scope=None)
    assert any_subjects(session, study_id="NCT06466850", scope=None)
    assert not any_subjects(session, study_id="NCT06466850", scope=("no such site",))
    assert population_counts(session, study_id="NOPE", scope=None).screen_failure_rate is None
    assert failures_by_criterion(session, study_id="NOPE", scope=None).empty
    assert daily_accrual(session, study_id="NOPE", scope=None).empty


# -- DEMO-MULTI: pandas over the raw rows, whole study and scoped to sites -----------------------


@pytest.mark.parametrize("scope", [None, ("101",), ("103", "107", "110"), ("999",)])
def test_multisite_counts_match_pandas(
    session: Session, raw: dict[str, pd.DataFrame], scope: tuple[str, ...] | None
) -> None:
    subjects = raw["subjects"][raw["subjects"]["study_id"] == MULTI]
    if scope is not None:
        subjects = subjects[subjects["siteid"].isin(scope)]
    counts = population_counts(session, study_id=MULTI, scope=scope)
    assert counts.screened == len(subjects)
    assert counts.screen_failures == (subjects["population"] == "SCREEN FAILURE").sum()
    assert counts.enrolled == (subjects["population"] == "ENROLLED").sum()

    failed_ids = set(subjects.loc[subjects["population"] == "SCREEN FAILURE", "id"])
    ie = raw["ie"][raw["ie"]["subject_pk"].isin(failed_ids)]
    expected = ie.groupby("code")["subject_pk"].nunique()
    frame = failures_by_criterion(session, study_id=MULTI, scope=scope).set_index("code")
    assert len(frame) == 9
    for code, n in frame["subjects"].items():
        assert n == expected.get(code, 0), code
    per_subject = ie.groupby("subject_pk")["code"].nunique()
    assert failed_subject_counts(session, study_id=MULTI, scope=scope) == {
        "with_reason": len(per_subject),
        "more_than_one": int((per_subject > 1).sum()),
    }

    ae = raw["ae"][raw["ae"]["subject_pk"].isin(set(subjects["id"]))]
    ae_counts = count_adverse_events(session, study_id=MULTI, scope=scope)
    assert ae_counts.events == len(ae)
    assert ae_counts.subjects == ae["subject_pk"].nunique()
    assert ae_counts.serious_events == (ae["serious"] == "Y").sum()
    assert ae_counts.serious_subjects == ae.loc[ae["serious"] == "Y", "subject_pk"].nunique()

    arms = enrolled_by_arm(session, study_id=MULTI, scope=scope)
    enrolled = subjects[subjects["population"] == "ENROLLED"]
    assert (
        dict(zip(arms["arm"], arms["enrolled"], strict=True))
        == enrolled.groupby("arm").size().to_dict()
    )


def test_site_counts_add_up(session: Session) -> None:
    whole = population_counts(session, study_id=MULTI, scope=None)
    site_ids = sites(session, study_id=MULTI)["site_id"].tolist()
    assert len(site_ids) == 10
    per_site = [population_counts(session, study_id=MULTI, scope=(s,)) for s in site_ids]
    assert sum(c.screened for c in per_site) == whole.screened
    assert sum(c.enrolled for c in per_site) == whole.enrolled
    assert sum(c.screen_failures for c in per_site) == whole.screen_failures


def test_daily_accrual_matches_pandas(session: Session, raw: dict[str, pd.DataFrame]) -> None:
    subjects = raw["subjects"][raw["subjects"]["study_id"] == MULTI]
    daily = daily_accrual(session, study_id=MULTI, scope=None)
    assert daily["screened"].sum() == subjects["screening_date"].notna().sum()
    enrolled = subjects[(subjects["population"] == "ENROLLED")]
    assert daily["enrolled"].sum() == enrolled["enrollment_date"].notna().sum()
    first_day = pd.Timestamp(subjects["screening_date"].min())
    assert daily.iloc[0]["date"] == first_day


def test_baseline_sums_match_pandas(session: Session, raw: dict[str, pd.DataFrame]) -> None:
    subjects = raw["subjects"]
    enrolled_ids = set(
        subjects.loc[(subjects["study_id"] == SEED) & (subjects["population"] == "ENROLLED"), "id"]
    )
    findings = raw["findings"]
    baseline = findings[findings["subject_pk"].isin(enrolled_ids) & (findings["is_baseline"] == 1)]
    table = baseline_values(
        session,
        study_id=SEED,
        scope=None,
        population="enrolled",
        by="arm",
        keys=("VS.BMI", "MK.KLGRADE.LEFT KNEE", "MK.KLGRADE.RIGHT KNEE"),
    )
    values = baseline.loc[baseline["test_code"] == "BMI", "value_num"]
    assert len(table) == len(values) == 20
    assert table["VS.BMI"].astype(float).mean() == pytest.approx(values.mean())
    assert table["VS.BMI"].astype(float).std() == pytest.approx(values.std(ddof=1))
    # One column per knee for the K-L grade; enrolled knees are grade 2-3 (the arm's description).
    for knee in ("LEFT KNEE", "RIGHT KNEE"):
        assert table[f"MK.KLGRADE.{knee}"].astype(float).between(2, 3).all()

    demographics = demographic_counts(session, study_id=SEED, scope=None)
    enrolled = subjects[subjects["id"].isin(enrolled_ids)]
    assert demographics["subjects"].sum() == 20
    assert (
        demographics.groupby("sex")["subjects"].sum().to_dict()
        == enrolled.groupby("sex").size().to_dict()
    )


def test_changes_since_previous_cut(session: Session, raw: dict[str, pd.DataFrame]) -> None:
    cuts = data_cuts(session, study_id=SEED)
    first, latest = cuts
    subjects = raw["subjects"][raw["subjects"]["study_id"] == SEED]
    changes = changes_since(session, study_id=SEED, scope=None, since_cut_id=first.id)
    new = subjects[subjects["first_cut_id"] > first.id]
    assert changes.new_subjects == len(new) > 0
    assert changes.new_enrolled == (new["population"] == "ENROLLED").sum()
    assert changes.new_screen_failures == (new["population"] == "SCREEN FAILURE").sum()
    # Subjects first in cut 1 are those screened by its cut-off.
    assert first.cutoff_date is not None
    screened_by_cut1 = pd.to_datetime(subjects["screening_date"]).dt.date <= first.cutoff_date
    assert (subjects["first_cut_id"] == first.id).sum() == screened_by_cut1.sum()
    ae = raw["ae"][raw["ae"]["subject_pk"].isin(set(subjects["id"]))]
    assert changes.new_adverse_events == (ae["first_cut_id"] > first.id).sum()
    nothing = changes_since(session, study_id=SEED, scope=None, since_cut_id=latest.id)
    assert nothing.new_subjects == nothing.new_adverse_events == nothing.changed_subjects == 0
