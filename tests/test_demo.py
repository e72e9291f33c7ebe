"""The NCT06466850 demo study: registry facts from the seed text, internally consistent values."""

import json

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from dashboard.demo import seed_record
from dashboard.importers.ctgov import age_in_years, parse_eligibility_criteria, protocol
from tests.conftest import SHARED_DATA, reference_absent
from tests.databases import read_sql

SEED = "NCT06466850"


def test_registry_facts_match_the_seed_text() -> None:
    seeds = SHARED_DATA.parent / "seeds"
    if not seeds.is_dir():
        reference_absent(f"seed text folder {seeds} is absent")
    text = "\n".join(p.read_text(encoding="utf-8") for p in seeds.glob("*.txt"))
    proto = protocol(seed_record())
    assert proto["identificationModule"]["nctId"] in text
    assert proto["identificationModule"]["briefTitle"] in text
    assert proto["sponsorCollaboratorsModule"]["leadSponsor"]["name"] in text
    criteria = parse_eligibility_criteria(proto["eligibilityModule"]["eligibilityCriteria"])
    assert [c.category for c in criteria] == ["INCLUSION"] * 3 + ["EXCLUSION"] * 7
    for criterion in criteria:
        assert criterion.text in text  # the protocol wording, word for word


def test_parse_eligibility_criteria_on_real_registry_records(shared_data: object) -> None:
    import json

    record = json.loads((SHARED_DATA / "ctgov" / "NCT05594173.json").read_text(encoding="utf-8"))
    criteria = parse_eligibility_criteria(
        protocol(record)["eligibilityModule"]["eligibilityCriteria"]
    )
    assert [c.category for c in criteria] == ["INCLUSION"] + ["EXCLUSION"] * 7
    assert criteria[0].text == "Healthy adults under age 60"


@pytest.mark.parametrize(
    ("text", "years"),
    [("45 Years", 45.0), ("6 Months", 0.5), ("75 years", 75.0), ("N/A", None), (None, None)],
)
def test_age_in_years(text: str | None, years: float | None) -> None:
    assert age_in_years(text) == years


@pytest.fixture(scope="module")
def seed_values(demo_engine: Engine) -> pd.DataFrame:
    """One row per screening value, with the codes of every criterion its subject failed."""
    rows = pd.read_sql_query(
        "SELECT f.id AS finding_id, s.usubjid, s.population, s.age, f.test_code, f.location, "
        "f.value_num, c.code "
        "FROM subject s JOIN finding f ON f.subject_pk = s.id "
        "LEFT JOIN eligibilityfinding e ON e.subject_pk = s.id "
        "LEFT JOIN criterion c ON c.id = e.criterion_pk "
        f"WHERE s.study_id = '{SEED}'",
        demo_engine,
    )
    failed = rows.groupby("finding_id")["code"].agg(lambda codes: ",".join(codes.dropna()))
    values = rows.drop_duplicates("finding_id").set_index("finding_id").drop(columns="code")
    return values.assign(failed=failed)


def test_screening_values_agree_with_the_criteria(seed_values: pd.DataFrame) -> None:
    values = seed_values.assign(failed=seed_values["failed"].fillna(""))
    bmi = values[values["test_code"] == "BMI"]
    in_range = bmi["value_num"].between(21.5, 29.5)
    # Out of range means failed INCL02, except the one planted deviation: enrolled with BMI 30.1.
    deviation = (bmi["population"] == "ENROLLED") & ~in_range
    assert bmi.loc[deviation, "value_num"].tolist() == [30.1]
    assert (~in_range[~deviation] == bmi.loc[~deviation, "failed"].str.contains("INCL02")).all()
    hgb = values[values["test_code"] == "HGB"]
    assert ((hgb["value_num"] < 10) == hgb["failed"].str.contains("EXCL07")).all()
    kl = values[values["test_code"] == "KLGRADE"]
    enrolled_kl = kl[kl["population"] == "ENROLLED"]["value_num"]
    assert enrolled_kl.between(2, 3).all()  # the arm's description: grade 2-3 in both knees
    grade_4 = kl[kl["value_num"] > 3]["usubjid"].unique()
    failed_in03 = kl[kl["failed"].str.contains("INCL03")]["usubjid"].unique()
    assert sorted(grade_4) == sorted(failed_in03)
    assert values["age"].between(45, 75).all()


def test_subject_codes_only(demo_engine: Engine) -> None:
    # No direct identifiers: the subject table has codes, no names or initials, birth year only.
    columns = set(pd.read_sql_query("SELECT * FROM subject LIMIT 1", demo_engine).columns)
    assert not {"name", "initials", "brthdtc", "birth_date"} & columns


# -- DEMO-MULTI's planted site-risk outliers (issue #16) ------------------------------------------


def _adjusted_z(numerator: pd.Series, denominator: pd.Series, *, proportion: bool) -> pd.Series:
    """gsm's over-dispersion adjusted z per site: z0 = (m - mu) / sqrt(V / D), phi = mean z0^2,
    z = (m - mu) / sqrt(phi V / D), V = mu for a rate, mu (1 - mu) for a proportion."""
    mu = numerator.sum() / denominator.sum()
    variance = mu * (1 - mu) if proportion else mu
    m = numerator / denominator
    phi = (((m - mu) / (variance / denominator) ** 0.5) ** 2).mean()
    return (m - mu) / (phi * variance / denominator) ** 0.5


def _multi_kris(engine: Engine) -> pd.DataFrame:
    """AE and deviation rates per subject-day on study and the screen-failure proportion, per
    site, from the rows as stored (enrolled subjects on study from enrollment to their disposition
    event or the cut-off)."""
    subjects = pd.read_sql_query(
        "SELECT s.id, site.site_id, s.population, s.enrollment_date FROM subject s "
        "JOIN site ON site.id = s.site_pk WHERE s.study_id = 'DEMO-MULTI'",
        engine,
    )
    cutoff = pd.read_sql_query(
        "SELECT max(cutoff_date) AS c FROM datacut WHERE study_id = 'DEMO-MULTI'", engine
    )["c"][0]
    left = pd.read_sql_query(
        "SELECT subject_pk, max(date) AS left_on FROM disposition "
        "WHERE category = 'DISPOSITION EVENT' GROUP BY subject_pk",
        engine,
    )
    enrolled = subjects[subjects["population"] == "ENROLLED"].merge(
        left, left_on="id", right_on="subject_pk", how="left"
    )
    end = pd.to_datetime(enrolled["left_on"]).fillna(pd.Timestamp(cutoff))
    enrolled["days"] = (end - pd.to_datetime(enrolled["enrollment_date"])).dt.days + 1
    days = enrolled.groupby("site_id")["days"].sum()
    site_of = subjects.set_index("id")["site_id"]

    def per_site(table: str) -> pd.Series:
        rows = pd.read_sql_query(f"SELECT subject_pk FROM {table}", engine)
        rows = rows[rows["subject_pk"].isin(site_of.index)]
        return rows["subject_pk"].map(site_of).value_counts().reindex(days.index, fill_value=0)

    screened = subjects.groupby("site_id").size()
    failures = (subjects["population"] == "SCREEN FAILURE").groupby(subjects["site_id"]).sum()
    return pd.DataFrame(
        {
            "ae": _adjusted_z(per_site("adverseevent"), days, proportion=False),
            "deviations": _adjusted_z(per_site("protocoldeviation"), days, proportion=False),
            "screen_failures": _adjusted_z(failures, screened, proportion=True),
        }
    )


def test_demo_multi_plants_one_outlier_site_per_kri(demo_engine: Engine) -> None:
    from dashboard.demo import PLANTED_KRI_SITES

    z = _multi_kris(demo_engine)
    planted = PLANTED_KRI_SITES
    assert len(set(planted.values())) == 3
    # With 10 sites one outlier's adjusted z cannot pass sqrt(10 (1 - its share)), about 3:
    # the thresholds here are what 10 sites allow (DEMO-SCALE's 200 sites meet gsm's 3).
    assert z["ae"][planted["ae_under_reporting"]] < -2
    assert z["screen_failures"][planted["screen_failures"]] > 2
    assert z["deviations"][planted["deviations"]] > 2.5
    for kri, site in (
        ("ae", planted["ae_under_reporting"]),
        ("screen_failures", planted["screen_failures"]),
        ("deviations", planted["deviations"]),
    ):
        others = z[kri].drop(site)
        assert others.abs().max() < 2, (kri, others.abs().idxmax())


def test_demo_multi_deviations_lie_within_time_on_study(demo_engine: Engine) -> None:
    rows = read_sql(
        "SELECT d.start_date, d.important, d.category, s.population, s.enrollment_date "
        "FROM protocoldeviation d JOIN subject s ON s.id = d.subject_pk "
        "WHERE s.study_id = 'DEMO-MULTI'",
        demo_engine,
    )
    cuts = read_sql(
        "SELECT row_counts FROM datacut WHERE study_id = 'DEMO-MULTI' ORDER BY id", demo_engine
    )
    assert len(rows) > 0 and set(rows["population"]) == {"ENROLLED"}
    assert (rows["start_date"] >= rows["enrollment_date"]).all()
    assert (rows["start_date"] <= "2025-12-31").all()
    assert set(rows["category"]) == {"MAJOR", "MINOR"}
    assert (rows["important"].astype(bool) == (rows["category"] == "MAJOR")).all()
    assert 0.05 < (rows["category"] == "MAJOR").mean() < 0.5  # some important, most not
    assert json.loads(cuts["row_counts"].iloc[-1])["DV"] == len(rows)
