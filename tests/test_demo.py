"""The NCT06466850 demo study: registry facts from the seed text, internally consistent values."""

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from dashboard.demo import seed_record
from dashboard.importers.ctgov import age_in_years, parse_eligibility_criteria, protocol
from tests.conftest import SHARED_DATA, reference_absent

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
