"""DEMO-SCALE's bulk generator: a small build checked against the population rules and with pandas
over the raw tables (the figures the pages and the CLI compute come from these rows)."""

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import ensure_schema, make_engine, session_scope
from dashboard.demo_scale import (
    CUTOFF,
    HYS_LAW_CASES,
    INTERIM_CUTOFF,
    PLANTED_KRI_SITES,
    SCALE_STUDY_ID,
    build_scale_study,
)
from dashboard.metrics import kri_catalogue
from dashboard.metrics.eligibility import is_violation, parse_rule
from dashboard.metrics.population import DispositionEvent, classify_subject, subject_status
from dashboard.results.population import ENROLLED, IN_SCREENING, SCREEN_FAILURE
from dashboard.views.context import ViewContext
from dashboard.views.labs import hys_law_candidates
from dashboard.views.site_risk import build_site_risk
from tests.databases import new_database_url, read_sql

N_SUBJECTS, N_SITES = 2000, 20
SUBJECT_TABLES = (
    "subject",
    "eligibilityfinding",
    "disposition",
    "exposure",
    "visit",
    "finding",
    "adverseevent",
    "protocoldeviation",
)
STUDY_TABLES = ("site", "arm", "criterion", "datacut")


def _build(url: str, *, study_id: str = SCALE_STUDY_ID, seed: int = 8) -> None:
    engine = make_engine(url)
    ensure_schema(engine)
    with session_scope(engine) as session:
        build_scale_study(
            session, n_subjects=N_SUBJECTS, n_sites=N_SITES, seed=seed, study_id=study_id
        )
    engine.dispose()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = new_database_url(tmp_path_factory.mktemp("scale"), "scale")
    _build(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _read(engine: Engine, sql: str) -> pd.DataFrame:
    return read_sql(sql, engine)


@pytest.fixture(scope="module")
def subjects(engine: Engine) -> pd.DataFrame:
    return _read(engine, f"SELECT * FROM subject WHERE study_id = '{SCALE_STUDY_ID}'")


def _of_study(engine: Engine, table: str) -> pd.DataFrame:
    return _read(
        engine,
        f"SELECT t.* FROM {table} t JOIN subject s ON s.id = t.subject_pk "
        f"WHERE s.study_id = '{SCALE_STUDY_ID}'",
    )


@pytest.fixture(scope="module")
def dispositions(engine: Engine) -> pd.DataFrame:
    return _of_study(engine, "disposition")


@pytest.fixture(scope="module")
def adverse_events(engine: Engine) -> pd.DataFrame:
    return _of_study(engine, "adverseevent")


@pytest.fixture(scope="module")
def cuts(engine: Engine) -> pd.DataFrame:
    return _read(
        engine, f"SELECT * FROM datacut WHERE study_id = '{SCALE_STUDY_ID}' ORDER BY cutoff_date"
    )


def _none(value: object) -> object:
    return None if pd.isna(value) else value  # type: ignore[call-overload]


def test_population_follows_classify_subject(
    subjects: pd.DataFrame, dispositions: pd.DataFrame
) -> None:
    failed_in_ds = set(dispositions.loc[dispositions["term"] == "SCREEN FAILURE", "subject_pk"])
    for row in subjects.to_dict("records"):
        expected = classify_subject(
            arm_code=_none(row["arm_code"]),  # type: ignore[arg-type]
            arm=_none(row["arm"]),  # type: ignore[arg-type]
            arm_not_assigned_reason=_none(row["arm_not_assigned_reason"]),  # type: ignore[arg-type]
            has_screen_failure_disposition=row["id"] in failed_in_ds,
            enrollment_dtc=_none(row["enrollment_dtc"]),  # type: ignore[arg-type]
        )
        assert row["population"] == expected, row["usubjid"]


def test_status_follows_subject_status(subjects: pd.DataFrame, dispositions: pd.DataFrame) -> None:
    events: dict[int, list[DispositionEvent]] = {}
    for row in dispositions.to_dict("records"):
        events.setdefault(row["subject_pk"], []).append(
            DispositionEvent(
                row["category"], row["term"], row["epoch"], dt.date.fromisoformat(row["date"])
            )
        )
    for row in subjects.to_dict("records"):
        expected = subject_status(row["population"], events.get(row["id"], []))
        assert _none(row["status"]) == expected, row["usubjid"]
    assert set(subjects["status"].dropna()) == {"ONGOING", "COMPLETED", "DISCONTINUED"}


def test_populations_and_failures_are_realistic(engine: Engine, subjects: pd.DataFrame) -> None:
    share = subjects["population"].value_counts(normalize=True)
    assert 0.55 <= share[ENROLLED] <= 0.67
    assert 0.30 <= share[SCREEN_FAILURE] <= 0.42
    assert 0.005 <= share[IN_SCREENING] <= 0.08
    assert len(subjects) == N_SUBJECTS

    findings = _read(
        engine,
        "SELECT e.subject_pk, e.result, c.code, c.category, c.study_id "
        "FROM eligibilityfinding e LEFT JOIN criterion c ON c.id = e.criterion_pk "
        f"JOIN subject s ON s.id = e.subject_pk WHERE s.study_id = '{SCALE_STUDY_ID}'",
    )
    assert (findings["study_id"] == SCALE_STUDY_ID).all()  # every criterion exists, same study
    failures = subjects[subjects["population"] == SCREEN_FAILURE]
    assert set(findings["subject_pk"]) == set(failures["id"])  # IE rows for every failure only
    per_subject = findings.groupby("subject_pk").size()
    assert per_subject.max() == 2
    assert 0.08 <= (per_subject == 2).mean() <= 0.22
    expected_result = findings["category"].map({"INCLUSION": "N", "EXCLUSION": "Y"})
    assert (findings["result"] == expected_result).all()
    # A few criteria dominate, and 12 criteria exist with some failures for most.
    by_code = findings["code"].value_counts()
    criteria = _read(engine, f"SELECT * FROM criterion WHERE study_id = '{SCALE_STUDY_ID}'")
    assert len(criteria) == 12
    assert by_code.iloc[:3].sum() > 0.45 * by_code.sum()
    assert (failures["arm_not_assigned_reason"] == "SCREEN FAILURE").all()
    assert failures["arm_code"].isna().all()


def test_screening_values_agree_with_the_criteria(engine: Engine, subjects: pd.DataFrame) -> None:
    criteria = _read(
        engine,
        f"SELECT code, category, rule FROM criterion WHERE study_id = '{SCALE_STUDY_ID}' "
        "AND rule IS NOT NULL",
    )
    findings = _of_study(engine, "finding")
    # The screening values (the criteria are checked at screening; later LB values vary).
    values = findings.loc[
        findings["visit"] == "SCREENING", ["subject_pk", "test_code", "value_num"]
    ]
    ages = subjects[["id", "age"]].rename(columns={"id": "subject_pk", "age": "value_num"})
    values = pd.concat([values, ages.assign(test_code="AGE")])
    failed = _read(
        engine,
        "SELECT e.subject_pk, c.code FROM eligibilityfinding e "
        "JOIN criterion c ON c.id = e.criterion_pk",
    )
    enrolled = set(subjects.loc[subjects["population"] == ENROLLED, "id"])
    assert len(criteria) >= 8
    for criterion in criteria.to_dict("records"):
        rule = parse_rule(criterion["rule"])
        checked = values[values["test_code"] == rule.variable]
        assert not checked.empty, rule.variable
        violating = {
            int(r["subject_pk"])
            for r in checked.to_dict("records")
            if is_violation(criterion["category"], rule, float(r["value_num"]))
        }
        failing = set(failed.loc[failed["code"] == criterion["code"], "subject_pk"])
        assert failing <= violating, criterion["code"]  # every failure has its value
        # Among the enrolled only a planted handful break a rule (protocol deviations).
        assert len(violating & enrolled) <= 0.01 * len(enrolled), criterion["code"]
    enrolled_ages = subjects.loc[subjects["population"] == ENROLLED, "age"]
    assert enrolled_ages.between(40, 80).all()


def test_baseline_findings_are_the_enrolled_screening_values(
    engine: Engine, subjects: pd.DataFrame
) -> None:
    every = _of_study(engine, "finding").merge(
        subjects[["id", "population", "screening_date"]], left_on="subject_pk", right_on="id"
    )
    # The screening values; the laboratory values of later visits are never baseline (below).
    findings = every[every["visit"] == "SCREENING"]
    assert not every.loc[every["visit"] != "SCREENING", "is_baseline"].astype(bool).any()
    assert findings.groupby("subject_pk").size().eq(20).all()
    assert findings["subject_pk"].nunique() == len(subjects)
    assert (findings["is_baseline"].astype(bool) == (findings["population"] == ENROLLED)).all()
    assert (findings["visit"] == "SCREENING").all()
    assert (findings["date"] == findings["screening_date"]).all()
    assert set(findings["domain"]) == {"VS", "LB", "QS", "MK", "SC"}
    assert findings["value_num"].notna().all()


def test_adverse_events_follow_the_first_dose(
    subjects: pd.DataFrame, adverse_events: pd.DataFrame
) -> None:
    ae = adverse_events.merge(
        subjects[["id", "population", "first_dose_date"]], left_on="subject_pk", right_on="id"
    )
    assert (ae["population"] == ENROLLED).all()
    assert ae["first_dose_date"].notna().all()
    start = pd.to_datetime(ae["start_date"])
    first_dose = pd.to_datetime(ae["first_dose_date"])
    assert (start >= first_dose).all()
    assert (start <= pd.Timestamp(CUTOFF)).all()
    assert ((start - first_dose).dt.days + 1 == ae["start_day"]).all()  # no day 0
    ended = ae["end_date"].notna()
    assert (pd.to_datetime(ae.loc[ended, "end_date"]) >= start[ended]).all()
    assert (ae.loc[~ended, "outcome"] != "RECOVERED/RESOLVED").all()
    # AESEQ numbers each subject's events 1..n.
    seqs = ae.sort_values(["subject_pk", "seq"]).groupby("subject_pk")["seq"]
    assert seqs.apply(lambda s: list(s) == list(range(1, len(s) + 1))).all()
    assert 3.5 * N_SUBJECTS <= len(ae) <= 6.5 * N_SUBJECTS
    assert 0.01 <= (ae["serious"] == "Y").mean() <= 0.03
    assert ae["body_system"].nunique() >= 20
    frequencies = ae["decoded_term"].value_counts()
    assert frequencies.iloc[0] > 20 * frequencies.median()  # a few common PTs, a long tail
    assert set(ae["severity"]) == {"MILD", "MODERATE", "SEVERE"}
    withdrawn = ae.loc[ae["action"] == "DRUG WITHDRAWN", "subject_pk"]
    assert not withdrawn.empty


def test_dispositions_exposure_and_visits(
    engine: Engine, subjects: pd.DataFrame, dispositions: pd.DataFrame
) -> None:
    assert (dispositions["date"] <= CUTOFF.isoformat()).all()
    consent = dispositions[dispositions["term"] == "INFORMED CONSENT OBTAINED"]
    assert set(consent["subject_pk"]) == set(subjects["id"])
    assert (consent["epoch"] == "SCREENING").all()
    ended = dispositions[
        (dispositions["category"] == "DISPOSITION EVENT")
        & (dispositions["term"] != "SCREEN FAILURE")
    ]
    assert {"COMPLETED", "ADVERSE EVENT", "WITHDRAWAL BY SUBJECT", "LOST TO FOLLOW-UP"} <= set(
        ended["term"]
    )
    assert ended["epoch"].isin(["TREATMENT", "FOLLOW-UP"]).all()
    assert not dispositions.duplicated(["subject_pk", "seq"]).any()

    treated = subjects[subjects["first_dose_date"].notna()]
    assert set(treated["population"]) == {ENROLLED}
    exposure = _of_study(engine, "exposure")
    assert sorted(exposure["subject_pk"]) == sorted(treated["id"])
    visits = _of_study(engine, "visit")
    assert set(visits["subject_pk"]) == set(subjects.loc[subjects["population"] == ENROLLED, "id"])
    assert visits.groupby("subject_pk").size().max() <= 6
    assert (visits["date"] <= CUTOFF.isoformat()).all()
    # Planned arm = actual arm except a small share.
    differs = treated["arm_code"] != treated["actual_arm_code"]
    assert differs.mean() < 0.05


def test_every_subject_has_a_site_of_the_study(engine: Engine, subjects: pd.DataFrame) -> None:
    sites = _read(engine, f"SELECT * FROM site WHERE study_id = '{SCALE_STUDY_ID}'")
    assert len(sites) == N_SITES
    assert sites["activated_on"].notna().all() and sites["planned_enrollment"].ge(1).all()
    joined = subjects.merge(sites, left_on="site_pk", right_on="id", suffixes=("", "_site"))
    assert len(joined) == len(subjects)
    assert (joined["country"] == joined["country_site"]).all()
    assert (joined["screening_date"] >= joined["activated_on"]).all()
    assert (joined["usubjid"].str.split("-").str[2] == joined["site_id"]).all()
    assert subjects["usubjid"].is_unique


def test_two_cuts_date_the_rows(
    engine: Engine,
    subjects: pd.DataFrame,
    dispositions: pd.DataFrame,
    adverse_events: pd.DataFrame,
    cuts: pd.DataFrame,
) -> None:
    assert cuts["cutoff_date"].tolist() == [INTERIM_CUTOFF.isoformat(), CUTOFF.isoformat()]
    interim_id, current_id = cuts["id"].tolist()
    for source in cuts["source"]:
        assert json.loads(source) == [{"file": "dashboard/demo_scale.py", "sha256": None}]

    def first_cut_by_date(frame: pd.DataFrame, date_column: str) -> None:
        expected = (
            frame[date_column]
            .le(INTERIM_CUTOFF.isoformat())
            .map({True: interim_id, False: current_id})
        )
        assert (frame["first_cut_id"] == expected).all()
        assert (frame["updated_cut_id"] >= frame["first_cut_id"]).all()

    first_cut_by_date(subjects, "screening_date")
    first_cut_by_date(dispositions, "date")
    first_cut_by_date(adverse_events, "start_date")
    first_cut_by_date(_of_study(engine, "eligibilityfinding"), "assessed_date")

    # Subjects of the interim cut decided (enrolled or failed) after it were updated by the current.
    decided_later = (
        (subjects["first_cut_id"] == interim_id)
        & (subjects["population"] != IN_SCREENING)
        & (subjects["status"].isna() | (subjects["status"] != "ONGOING"))
    )
    assert (subjects["updated_cut_id"] == current_id).any()
    assert (subjects.loc[decided_later, "updated_cut_id"] == current_id).any()
    untouched = (subjects["updated_cut_id"] == interim_id) & (subjects["population"] == ENROLLED)
    late = subjects.loc[untouched, "enrollment_date"] > INTERIM_CUTOFF.isoformat()
    assert not late.any()

    changes = _read(engine, f"SELECT * FROM cutchange WHERE cut_id = {current_id}")
    added = changes[(changes["entity"] == "subject") & (changes["change"] == "added")]
    assert set(added["natural_key"]) == set(
        subjects.loc[subjects["first_cut_id"] == current_id, "usubjid"]
    )
    changed = changes[(changes["entity"] == "subject") & (changes["change"] == "changed")]
    assert set(changed["natural_key"]) == set(
        subjects.loc[
            (subjects["first_cut_id"] == interim_id) & (subjects["updated_cut_id"] == current_id),
            "usubjid",
        ]
    )
    ae_added = changes[(changes["entity"] == "ae") & (changes["change"] == "added")]
    assert len(ae_added) == (adverse_events["first_cut_id"] == current_id).sum()

    counts = json.loads(cuts["row_counts"].iloc[1])
    assert counts["DM"] == len(subjects)
    assert counts["AE"] == len(adverse_events)
    assert counts["DS"] == len(dispositions)
    interim_counts = json.loads(cuts["row_counts"].iloc[0])
    assert interim_counts["DM"] == (subjects["first_cut_id"] == interim_id).sum()
    assert interim_counts["AE"] == (adverse_events["first_cut_id"] == interim_id).sum()
    # 20 screening values per subject, and the 8 laboratory tests and bilirubin at every visit
    # after screening.
    visits = _of_study(engine, "visit")
    after_screening = (visits["visit"] != "SCREENING").sum()
    assert sum(counts[d] for d in ("VS", "LB", "QS", "MK", "SC")) == 20 * len(subjects) + (
        9 * after_screening
    )


def test_laboratory_values_at_every_visit_after_screening(engine: Engine) -> None:
    findings = _of_study(engine, "finding")
    visits = _of_study(engine, "visit")
    later = findings[findings["visit"] != "SCREENING"]
    assert set(later["domain"]) == {"LB"}
    # The 8 tests and bilirubin at each visit held after screening, on the visit's date.
    held = visits[visits["visit"] != "SCREENING"][["subject_pk", "visit", "date"]]
    per_visit = later.groupby(["subject_pk", "visit", "date"]).size()
    assert per_visit.eq(9).all()
    assert set(later["test_code"]) == {"HGB", "ALT", "AST", "CREAT", "EGFR", "GLUC", "WBC"} | {
        "PLAT",
        "BILI",
    }
    assert len(per_visit) == len(held)
    assert set(per_visit.index) == set(held.itertuples(index=False, name=None))
    assert later["value_num"].notna().all() and (later["value_num"] >= 0).all()
    assert later["unit"].notna().all()


def _lab_findings(engine: Engine) -> pd.DataFrame:
    rows = _read(
        engine,
        "SELECT s.usubjid, s.sex, s.first_dose_date, t.* FROM finding t JOIN subject s "
        f"ON s.id = t.subject_pk WHERE s.study_id = '{SCALE_STUDY_ID}' AND t.domain = 'LB'",
    )
    for column in ("date", "first_dose_date"):
        rows[column] = pd.to_datetime(rows[column])
    return rows


def test_laboratory_ranges_indicators_visits_and_study_days(engine: Engine) -> None:
    lab = _lab_findings(engine)
    # Every LB value has an upper limit but eGFR (a lower one only), and an indicator that agrees.
    assert lab["normal_low"].notna().all()
    assert lab.loc[lab["test_code"] != "EGFR", "normal_high"].notna().all()
    assert lab.loc[lab["test_code"] == "EGFR", "normal_high"].isna().all()
    expected = pd.Series("NORMAL", index=lab.index)
    expected[lab["value_num"] < lab["normal_low"]] = "LOW"
    expected[lab["value_num"] > lab["normal_high"]] = "HIGH"
    assert (lab["normal_indicator"] == expected).all()
    assert 0.8 < (lab["normal_indicator"] == "NORMAL").mean() < 1.0
    hgb_uln = lab[lab["test_code"] == "HGB"].groupby("sex")["normal_high"].unique().map(list)
    assert hgb_uln.to_dict() == {"F": [16.0], "M": [17.5]}
    # VISITNUM as SV has it; study day from the first dose (day 1, no day 0), none undosed.
    visits = _of_study(engine, "visit")[["subject_pk", "visit", "visit_num"]].drop_duplicates()
    numbered = lab.merge(visits, on=["subject_pk", "visit"], how="left")
    # Screen failures have no SV row: their screening values are VISITNUM 1 all the same.
    attended = numbered["visit_num"].notna()
    assert attended[numbered["visit"] != "SCREENING"].all()
    assert (numbered.loc[attended, "visit_num"] == numbered.loc[attended, "visit_number"]).all()
    assert (numbered.loc[~attended, "visit_number"] == 1).all()
    offset = (lab["date"] - lab["first_dose_date"]).dt.days
    day = offset.where(offset < 0, offset + 1)
    dosed = lab["first_dose_date"].notna()
    assert (lab.loc[dosed, "study_day"] == day[dosed]).all()
    assert lab.loc[~dosed, "study_day"].isna().all()
    later = lab[lab["visit"] != "SCREENING"]
    assert (later["study_day"] >= 1).all() and not later["is_baseline"].astype(bool).any()


def test_planted_hys_law_cases(engine: Engine) -> None:
    lab = _lab_findings(engine)
    on_treatment = lab[
        ~lab["is_baseline"].astype(bool) & (lab["date"] >= lab["first_dose_date"])
    ].assign(ratio=lambda f: f["value_num"] / f["normal_high"])
    peak = on_treatment.pivot_table(
        index="usubjid", columns="test_code", values="ratio", aggfunc="max"
    )
    transaminase = peak[["ALT", "AST"]].max(axis=1)
    cases = sorted(peak.index[(transaminase >= 3) & (peak["BILI"] >= 2)])
    assert len(cases) == HYS_LAW_CASES
    # Only the planted: nobody else's bilirubin reaches twice the ULN.
    assert (peak.drop(cases)["BILI"] < 2).all()
    with Session(engine) as session:
        assert hys_law_candidates(session, ViewContext(SCALE_STUDY_ID)) == cases


def test_study_row(engine: Engine) -> None:
    study = _read(engine, f"SELECT * FROM study WHERE study_id = '{SCALE_STUDY_ID}'").iloc[0]
    assert study["is_synthetic"] == 1
    assert "synthetic" in study["title"].lower()
    assert study["allocation"] == "RANDOMIZED" and study["masking"] == "NONE"
    assert study["planned_enrollment"] > 0
    assert study["planned_start"] < study["planned_end"]
    arms = _read(engine, f"SELECT arm FROM arm WHERE study_id = '{SCALE_STUDY_ID}'")
    assert sorted(arms["arm"]) == ["High dose", "Low dose", "Placebo"]


def _counts(engine: Engine, study_id: str) -> dict[str, int]:
    counts = {
        table: int(
            _read(
                engine,
                f"SELECT count(*) AS n FROM {table} t JOIN subject s ON s.id = t.subject_pk "
                f"WHERE s.study_id = '{study_id}'",
            )["n"].iloc[0]
        )
        for table in SUBJECT_TABLES[1:]
    }
    for table in ("subject", *STUDY_TABLES):
        counts[table] = int(
            _read(engine, f"SELECT count(*) AS n FROM {table} WHERE study_id = '{study_id}'")[
                "n"
            ].iloc[0]
        )
    counts["cutchange"] = int(
        _read(
            engine,
            "SELECT count(*) AS n FROM cutchange c JOIN datacut d ON d.id = c.cut_id "
            f"WHERE d.study_id = '{study_id}'",
        )["n"].iloc[0]
    )
    return counts


def test_rebuilding_replaces_the_study(tmp_path: Path) -> None:
    url = new_database_url(tmp_path, "rebuild")
    _build(url)
    _build(url, study_id="DEMO-OTHER", seed=9)
    engine = make_engine(url)
    first, other = _counts(engine, SCALE_STUDY_ID), _counts(engine, "DEMO-OTHER")
    assert first["subject"] == N_SUBJECTS and first["adverseevent"] > 0
    _build(url)
    assert _counts(engine, SCALE_STUDY_ID) == first
    assert _counts(engine, "DEMO-OTHER") == other  # another study is left alone
    assert _read(engine, "SELECT count(*) AS n FROM study")["n"].iloc[0] == 2
    engine.dispose()


# -- Site risk (issue #16): deviations, and the planted outlier sites ------------------------------


@pytest.fixture(scope="module")
def deviations(engine: Engine) -> pd.DataFrame:
    return _of_study(engine, "protocoldeviation")


def test_deviations_lie_within_time_on_study(
    subjects: pd.DataFrame, deviations: pd.DataFrame, cuts: pd.DataFrame
) -> None:
    dv = deviations.merge(
        subjects[["id", "population", "enrollment_date", "status"]],
        left_on="subject_pk",
        right_on="id",
    )
    assert len(dv) > 0 and set(dv["population"]) == {ENROLLED}
    assert (dv["start_date"] >= dv["enrollment_date"]).all()
    assert (dv["start_date"] <= CUTOFF.isoformat()).all()
    assert (dv["start_dtc"] == dv["start_date"]).all()
    assert set(dv["category"]) == {"MAJOR", "MINOR"}
    assert (dv["important"].astype(bool) == (dv["category"] == "MAJOR")).all()
    assert 0.12 < (dv["category"] == "MAJOR").mean() < 0.30  # about a fifth important
    assert (dv["term"] == dv["decoded_term"]).all() and dv["term"].nunique() == 7
    seqs = dv.sort_values(["subject_pk", "seq"]).groupby("subject_pk")["seq"]
    assert seqs.apply(lambda s: list(s) == list(range(1, len(s) + 1))).all()
    # Most enrolled subjects have some, on study about 120 days apiece (4x at one site).
    assert dv["subject_pk"].nunique() > 0.5 * (subjects["population"] == ENROLLED).sum()
    interim_counts, counts = (json.loads(c) for c in cuts["row_counts"])
    assert counts["DV"] == len(dv)
    assert interim_counts["DV"] == (dv["start_date"] <= INTERIM_CUTOFF.isoformat()).sum()
    assert 0 < interim_counts["DV"] < counts["DV"]


def _site_kri_counts(
    engine: Engine,
    subjects: pd.DataFrame,
    dispositions: pd.DataFrame,
    adverse_events: pd.DataFrame,
    deviations: pd.DataFrame,
) -> pd.DataFrame:
    """The planted KRIs' numerator and denominator per site, from the rows as stored: AEs of the
    enrolled, non-important and important deviations, each over the enrolled subjects' days on
    study (enrollment to the end-of-study disposition event of a subject who completed or
    discontinued, else the cut-off, both days counted); screen failures over subjects screened.

    Columns: site_id, kri, numerator, denominator (one row per site and KRI)."""
    sites = _read(engine, f"SELECT id, site_id FROM site WHERE study_id = '{SCALE_STUDY_ID}'")
    subjects = subjects.merge(
        sites.rename(columns={"id": "site_pk"}), on="site_pk", how="left", validate="m:1"
    )
    site_of = subjects.set_index("id")["site_id"]
    ended = dispositions[
        (dispositions["category"] == "DISPOSITION EVENT")
        & (dispositions["epoch"] != "SCREENING")
        & (dispositions["term"] != "SCREEN FAILURE")
    ]
    left = ended.groupby("subject_pk")["date"].max()
    enrolled = subjects[subjects["population"] == ENROLLED].copy()
    left_on = enrolled["id"].map(left).where(enrolled["status"].isin(["COMPLETED", "DISCONTINUED"]))
    last_day = pd.Timestamp(CUTOFF)
    end = pd.to_datetime(left_on).fillna(last_day)
    end = end.where(end <= last_day, last_day)
    enrolled["days"] = (end - pd.to_datetime(enrolled["enrollment_date"])).dt.days + 1
    site_ids = sorted(sites["site_id"])
    days = enrolled.groupby("site_id")["days"].sum().reindex(site_ids, fill_value=0)

    def per_site(subject_pks: pd.Series) -> pd.Series:
        return subject_pks.map(site_of).value_counts().reindex(site_ids, fill_value=0)

    enrolled_pks = set(enrolled["id"])
    ae = adverse_events[adverse_events["subject_pk"].isin(enrolled_pks)]
    important = deviations["important"].astype(bool)
    failed = subjects["population"] == SCREEN_FAILURE
    pairs = {
        kri_catalogue.AE: (per_site(ae["subject_pk"]), days),
        kri_catalogue.DEVIATIONS: (per_site(deviations.loc[~important, "subject_pk"]), days),
        kri_catalogue.IMPORTANT_DEVIATIONS: (
            per_site(deviations.loc[important, "subject_pk"]),
            days,
        ),
        kri_catalogue.SCREEN_FAILURE: (
            per_site(subjects.loc[failed, "id"]),
            per_site(subjects["id"]),
        ),
    }
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "site_id": site_ids,
                    "kri": kri,
                    "numerator": numerator.astype(float).to_numpy(),
                    "denominator": denominator.astype(float).to_numpy(),
                }
            )
            for kri, (numerator, denominator) in pairs.items()
        ],
        ignore_index=True,
    )


def _adjusted_z(counts: pd.DataFrame, *, proportion: bool) -> pd.Series:
    """gsm's over-dispersion adjusted z per site (sites with a denominator): m = n / D,
    mu = sum n / sum D, z0 = (m - mu) / sqrt(V / D), phi = mean z0^2 over the sites,
    z = (m - mu) / sqrt(phi V / D); V = mu for a rate, mu (1 - mu) for a proportion."""
    counts = counts[counts["denominator"] > 0].set_index("site_id")
    n, d = counts["numerator"], counts["denominator"]
    mu = n.sum() / d.sum()
    variance = mu * (1 - mu) if proportion else mu
    m = n / d
    phi = (((m - mu) / (variance / d) ** 0.5) ** 2).mean()
    z: pd.Series = (m - mu) / (phi * variance / d) ** 0.5
    return z


@pytest.fixture(scope="module")
def site_kris(
    engine: Engine,
    subjects: pd.DataFrame,
    dispositions: pd.DataFrame,
    adverse_events: pd.DataFrame,
    deviations: pd.DataFrame,
) -> pd.DataFrame:
    counts = _site_kri_counts(engine, subjects, dispositions, adverse_events, deviations)
    scored = []
    for kri, rows in counts.groupby("kri"):
        z = _adjusted_z(rows, proportion=kri == kri_catalogue.SCREEN_FAILURE)
        scored.append(rows.assign(score=rows["site_id"].map(z)))
    return pd.concat(scored, ignore_index=True)


def test_planted_sites_stand_out_and_no_other(site_kris: pd.DataFrame) -> None:
    """Checked on this module's build (2,000 subjects, 20 sites, where an adjusted z can reach at
    most sqrt(20), about 4.5): each planted site passes its KRI's red threshold and no other site
    reaches |z| 3 in any of the three KRIs. The full DEMO-SCALE (50,000 subjects, 200 sites) goes
    far beyond: z -9.9, 8.6 and 13.6 with seed 8."""
    planted = PLANTED_KRI_SITES
    assert len(set(planted.values())) == 3
    z = site_kris.pivot(index="site_id", columns="kri", values="score")
    assert z.notna().all().all() and len(z) == N_SITES
    assert z[kri_catalogue.AE][planted["ae_under_reporting"]] < -2
    assert z[kri_catalogue.SCREEN_FAILURE][planted["screen_failures"]] > 3
    assert z[kri_catalogue.DEVIATIONS][planted["deviations"]] > 3
    assert z[kri_catalogue.IMPORTANT_DEVIATIONS][planted["deviations"]] > 3
    for kri, site in (
        (kri_catalogue.AE, planted["ae_under_reporting"]),
        (kri_catalogue.SCREEN_FAILURE, planted["screen_failures"]),
        (kri_catalogue.DEVIATIONS, planted["deviations"]),
        (kri_catalogue.IMPORTANT_DEVIATIONS, planted["deviations"]),
    ):
        others = z[kri].drop(site).abs()
        assert others.max() < 3, (kri, others.idxmax(), others.max())
    # Each planted site has many subjects: among the largest third of the sites by days on study
    # (the AE and deviation sites) or by subjects screened (the screen-failures site).
    size = site_kris.pivot(index="site_id", columns="kri", values="denominator")
    assert (
        size[kri_catalogue.AE].rank(ascending=False)[
            [planted["ae_under_reporting"], planted["deviations"]]
        ]
        <= N_SITES / 3
    ).all()
    assert (
        size[kri_catalogue.SCREEN_FAILURE].rank(ascending=False)[planted["screen_failures"]]
        <= N_SITES / 3
    )


def test_site_risk_view_scores_as_pandas(engine: Engine, site_kris: pd.DataFrame) -> None:
    with Session(engine) as session:
        scores = build_site_risk(session, ViewContext(SCALE_STUDY_ID)).scores
    view = scores[scores["kri"].isin(site_kris["kri"].unique())]
    merged = site_kris.merge(
        view, on=["site_id", "kri"], how="outer", suffixes=("", "_view"), validate="1:1"
    )
    assert len(merged) == len(site_kris) == 4 * N_SITES
    assert (merged["numerator"] == merged["numerator_view"]).all()
    assert (merged["denominator"] == merged["denominator_view"]).all()
    assert ((merged["score"] - merged["score_view"]).abs() < 1e-9).all()
    flags = merged.set_index(["kri", "site_id"])["flag"]
    assert flags[(kri_catalogue.AE, PLANTED_KRI_SITES["ae_under_reporting"])] == -2
    assert flags[(kri_catalogue.SCREEN_FAILURE, PLANTED_KRI_SITES["screen_failures"])] == 2
    assert flags[(kri_catalogue.DEVIATIONS, PLANTED_KRI_SITES["deviations"])] == 2
