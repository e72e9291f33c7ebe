"""The ClinicalTrials.gov API v2 importer on the six real records in ../shared/data/ctgov, and on small
hand-written records for the edge cases. Criteria counts are counted by hand from each record's
eligibilityCriteria text, never with the parser under test."""

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from dashboard.db import make_engine, session_scope
from dashboard.importers.ctgov import (
    CtgovImportResult,
    ParsedCriterion,
    RegistryRecordError,
    design_phrase,
    import_ctgov_file,
    import_ctgov_record,
    parse_eligibility_criteria,
    phase_label,
    read_eligibility_criteria,
    registry_date,
)
from dashboard.models import Criterion, EligibilityFinding, Site, Study, Subject
from tests.conftest import SHARED_DATA
from tests.databases import new_database_url

INCL, EXCL = "INCLUSION", "EXCLUSION"


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def _record_path(nct_id: str) -> Path:
    return SHARED_DATA / "ctgov" / f"{nct_id}.json"


def _real_record(nct_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(_record_path(nct_id).read_text(encoding="utf-8"))
    return record


def _import_file(engine: Engine, path: Path, study_id: str | None = None) -> CtgovImportResult:
    with session_scope(engine) as session:
        return import_ctgov_file(session, path, study_id=study_id)


def _import(
    engine: Engine, record: dict[str, Any], study_id: str | None = None
) -> CtgovImportResult:
    with session_scope(engine) as session:
        return import_ctgov_record(session, record, study_id=study_id)


def _row_counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            table.__name__: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (Study, Site, Criterion)
        }


def _snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the importer writes, with its primary key, for comparing two imports."""
    with Session(engine) as session:
        return {
            table.__name__: sorted(
                (row.model_dump() for row in session.scalars(select(table))), key=repr
            )
            for table in (Study, Site, Criterion)
        }


def _minimal(
    criteria: str = "Inclusion Criteria:\n\n* Adults\n\nExclusion Criteria:\n\n* Children",
) -> dict[str, Any]:
    """A small valid record (the fields the importer reads), to change one thing at a time."""
    return {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT99999999", "briefTitle": "A test study"},
            "statusModule": {
                "overallStatus": "RECRUITING",
                "startDateStruct": {"date": "2019-09"},
                "primaryCompletionDateStruct": {"date": "2021-06-30"},
            },
            "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Test sponsor"}},
            "conditionsModule": {"conditions": ["Knee OA", "Hip OA"]},
            "designModule": {
                "studyType": "INTERVENTIONAL",
                "phases": ["PHASE2", "PHASE3"],
                "designInfo": {
                    "allocation": "RANDOMIZED",
                    "interventionModel": "PARALLEL",
                    "maskingInfo": {"masking": "DOUBLE"},
                },
                "enrollmentInfo": {"count": 120, "type": "ESTIMATED"},
            },
            "armsInterventionsModule": {
                "interventions": [
                    {"type": "DRUG", "name": "Compound X"},
                    {"type": "DIETARY_SUPPLEMENT", "name": "Vitamin D"},
                ]
            },
            "eligibilityModule": {
                "eligibilityCriteria": criteria,
                "sex": "FEMALE",
                "minimumAge": "6 Months",
                "maximumAge": "80 Years",
            },
            "contactsLocationsModule": {
                "locations": [
                    {"facility": "Hospital A", "city": "Lyon", "country": "France"},
                    {"facility": "Hospital B", "city": "Oslo", "country": "Norway"},
                ]
            },
        }
    }


# -- the six real records --------------------------------------------------------------------------

# (NCT id, enrollmentInfo count and type, inclusion and exclusion criteria counted by hand, locations)
REAL_RECORDS = [
    # "* " bullets: 5 under "Inclusion Criteria:", 6 under "Exclusion Criteria:".
    ("NCT00763412", 31, "ACTUAL", 5, 6, 1),
    # Numbered 1.-5. under "Key Inclusion Criteria:", 1.-7. under "Key Exclusion Criteria:"; the
    # closing note ("The information listed above is not intended ...") is not a criterion.
    ("NCT02210780", 194, "ACTUAL", 5, 7, 42),
    # The stored text is cut short: one item ("1. Male participants...") and no exclusion heading.
    ("NCT03418623", 24, "ACTUAL", 1, 0, 1),
    # Numbered 1.-9. and 1.-19.; inclusion 7 and exclusion 19 have three indented sub-items each,
    # which belong to them; an empty "-" item at the end is nothing.
    ("NCT04207047", 3, "ACTUAL", 9, 19, 1),
    # "* " bullets: 1 inclusion ("Healthy adults under age 60"), 7 exclusion.
    ("NCT05594173", 20, "ACTUAL", 1, 7, 1),
    # The stored text is cut short: one item ("* Patient over 18 years...") and no exclusion heading.
    ("NCT06171568", 400, "ESTIMATED", 1, 0, 1),
]


@pytest.mark.parametrize(
    ("nct_id", "count", "kind", "inclusion", "exclusion", "locations"), REAL_RECORDS
)
def test_real_records_import(
    engine: Engine,
    shared_data: Path,
    nct_id: str,
    count: int,
    kind: str,
    inclusion: int,
    exclusion: int,
    locations: int,
) -> None:
    result = _import_file(engine, shared_data / "ctgov" / f"{nct_id}.json")
    assert result == CtgovImportResult(nct_id, True, inclusion, exclusion, locations, ())
    with Session(engine) as session:
        study = session.get(Study, nct_id)
        assert study is not None
        assert study.registry_id == nct_id
        assert (study.planned_enrollment, study.enrollment_type) == (count, kind)
        assert not study.is_synthetic
        by_category = dict(
            session.execute(
                select(col(Criterion.category), func.count())
                .where(col(Criterion.study_id) == nct_id)
                .group_by(col(Criterion.category))
            ).all()
        )
        assert (by_category.get(INCL, 0), by_category.get(EXCL, 0)) == (inclusion, exclusion)
        codes = session.scalars(
            select(col(Criterion.code))
            .where(col(Criterion.study_id) == nct_id)
            .order_by(col(Criterion.seq))
        ).all()
        assert codes == [f"INCL{n:02d}" for n in range(1, inclusion + 1)] + [
            f"EXCL{n:02d}" for n in range(1, exclusion + 1)
        ]
        site_ids = session.scalars(
            select(col(Site.site_id)).where(col(Site.study_id) == nct_id).order_by(col(Site.id))
        ).all()
        assert site_ids == [f"{n:02d}" for n in range(1, locations + 1)]


def test_registry_facts_of_a_real_record(engine: Engine, shared_data: Path) -> None:
    _import_file(engine, shared_data / "ctgov" / "NCT02210780.json")
    with Session(engine) as session:
        study = session.get(Study, "NCT02210780")
        assert study is not None
        assert (
            study.title
            == "Study of Dupilumab and Immune Responses in Adults With Atopic Dermatitis (AD)"
        )
        assert study.sponsor == "Regeneron Pharmaceuticals"
        assert study.phase == "Phase 2"
        assert study.design == "Randomized, parallel assignment, triple blind"
        assert (study.allocation, study.masking, study.is_blinded) == ("RANDOMIZED", "TRIPLE", True)
        assert study.status == "COMPLETED"
        assert study.condition == "Atopic Dermatitis"
        assert study.intervention == "Drug: Dupilumab; Drug: Placebo"
        assert (study.min_age, study.max_age, study.sex) == (18, 64, "ALL")
        # primaryCompletionDateStruct is the planned end; completionDateStruct only stands in.
        assert (study.planned_start, study.planned_end) == (
            dt.date(2014, 8, 5),
            dt.date(2015, 9, 15),
        )
        first = session.scalars(
            select(Site).where(col(Site.study_id) == "NCT02210780", col(Site.site_id) == "01")
        ).one()
        # The first location has a city but no facility name in the registry.
        assert (first.name, first.city, first.country) == (None, "Birmingham", "United States")
        excl02 = session.scalars(
            select(col(Criterion.text)).where(
                col(Criterion.study_id) == "NCT02210780", col(Criterion.code) == "EXCL02"
            )
        ).one()
        # Markdown escapes are syntax: "\>10 mg" in the record reads ">10 mg".
        assert excl02.startswith("Patients needing >10 mg of daily prednisone")


def test_real_partial_dates_and_observational_design(engine: Engine, shared_data: Path) -> None:
    _import_file(engine, shared_data / "ctgov" / "NCT00763412.json")
    _import_file(engine, shared_data / "ctgov" / "NCT05594173.json")
    with Session(engine) as session:
        partial = session.get(Study, "NCT00763412")
        assert partial is not None
        # startDateStruct "2006-11", primaryCompletionDateStruct "2013-01": first day of the month.
        assert (partial.planned_start, partial.planned_end) == (
            dt.date(2006, 11, 1),
            dt.date(2013, 1, 1),
        )
        assert partial.phase == "Not applicable"
        observational = session.get(Study, "NCT05594173")
        assert observational is not None
        assert observational.phase is None
        assert observational.design == "Observational, cohort, prospective"
        assert not observational.is_blinded


def test_sub_items_belong_to_their_parent_in_a_real_record(shared_data: Path) -> None:
    text = _real_record("NCT04207047")["protocolSection"]["eligibilityModule"][
        "eligibilityCriteria"
    ]
    criteria = parse_eligibility_criteria(text)
    inclusion = [c.text for c in criteria if c.category == INCL]
    exclusion = [c.text for c in criteria if c.category == EXCL]
    assert inclusion[6].endswith(
        "documented on the medical history: Postmenopausal for at least 12 months prior to study; "
        "Without a uterus and/or both ovaries; Bilateral tubal ligation at least six months prior "
        "to study enrollment."
    )
    assert exclusion[18].startswith(
        "History or current use of the following medications: Daily anticoagulants, aspirin,"
    )
    assert exclusion[18].endswith("understanding and signing the informed consent.")
    assert exclusion[-1].count("; ") >= 2  # three sub-items in one criterion


# -- re-import, enrichment, updates ----------------------------------------------------------------


def test_reimport_is_idempotent(engine: Engine, shared_data: Path) -> None:
    path = shared_data / "ctgov" / "NCT04207047.json"
    first = _import_file(engine, path)
    before = _snapshot(engine)
    second = _import_file(engine, path)
    assert first.created and not second.created
    assert (second.inclusion, second.exclusion, second.sites) == (9, 19, 1)
    assert _snapshot(engine) == before  # same rows, same primary keys


def test_study_id_enriches_an_existing_study(engine: Engine, shared_data: Path) -> None:
    with session_scope(engine) as session:
        session.add(Study(study_id="LOCAL-01", title="Local title", is_synthetic=True))
    result = _import_file(engine, shared_data / "ctgov" / "NCT00763412.json", study_id="LOCAL-01")
    assert (result.study_id, result.created) == ("LOCAL-01", False)
    with Session(engine) as session:
        assert session.get(Study, "NCT00763412") is None  # no second study
        study = session.get(Study, "LOCAL-01")
        assert study is not None
        assert study.registry_id == "NCT00763412"
        assert study.planned_enrollment == 31
        assert study.is_synthetic  # the importer never changes it
        assert (
            session.execute(
                select(func.count()).where(col(Criterion.study_id) == "LOCAL-01")
            ).scalar_one()
            == 11
        )


def test_unknown_study_id_raises_and_writes_nothing(engine: Engine, shared_data: Path) -> None:
    with pytest.raises(RegistryRecordError, match="NOPE"):
        _import_file(engine, shared_data / "ctgov" / "NCT00763412.json", study_id="NOPE")
    assert _row_counts(engine) == {"Study": 0, "Site": 0, "Criterion": 0}


def test_study_id_with_another_registry_id_is_refused(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Study(study_id="PILOT", registry_id="NCT00987090"))
    with pytest.raises(RegistryRecordError, match="NCT00987090"):
        _import(engine, _minimal(), study_id="PILOT")
    assert _row_counts(engine) == {"Study": 1, "Site": 0, "Criterion": 0}


def test_a_study_already_carrying_the_nct_id_is_pointed_out(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Study(study_id="SDTM-STUDY", registry_id="NCT99999999"))
    result = _import(engine, _minimal())
    assert result.study_id == "NCT99999999"
    assert any("SDTM-STUDY" in warning for warning in result.warnings)


def _add_subject_with_finding(engine: Engine, *, site_id: str, criterion_code: str) -> None:
    with session_scope(engine) as session:
        site = session.scalars(select(Site).where(col(Site.site_id) == site_id)).one()
        criterion = session.scalars(
            select(Criterion).where(col(Criterion.code) == criterion_code)
        ).one()
        subject = Subject(study_id="NCT99999999", site_pk=site.id, usubjid="S-001")
        session.add(subject)
        session.flush()
        assert subject.id is not None and criterion.id is not None
        session.add(
            EligibilityFinding(subject_pk=subject.id, criterion_pk=criterion.id, result="Y")
        )


def test_update_adds_changes_and_removes_what_nothing_refers_to(engine: Engine) -> None:
    _import(
        engine,
        _minimal(
            "Inclusion Criteria:\n* Adults\n* Consent\nExclusion Criteria:\n* Children\n* Pregnancy"
        ),
    )
    with session_scope(engine) as session:
        incl01 = session.scalars(select(Criterion).where(col(Criterion.code) == "INCL01")).one()
        incl01.rule = "AGE >= 18"
    _add_subject_with_finding(engine, site_id="02", criterion_code="EXCL02")
    changed = _minimal(
        "Inclusion Criteria:\n* Adults (18 or over)\nExclusion Criteria:\n* Children"
    )
    changed["protocolSection"]["contactsLocationsModule"]["locations"] = [
        {"facility": "Hospital A2", "city": "Lyon", "country": "France"}
    ]
    result = _import(engine, changed)
    assert (result.created, result.inclusion, result.exclusion, result.sites) == (False, 1, 1, 1)
    with Session(engine) as session:
        criteria = {
            c.code: (c.text, c.rule)
            for c in session.scalars(
                select(Criterion).where(col(Criterion.study_id) == "NCT99999999")
            )
        }
        sites = {s.site_id: s.name for s in session.scalars(select(Site))}
    # INCL02 went (no finding refers to it); EXCL02 stays: a subject failed it. The rule is kept.
    assert criteria == {
        "INCL01": ("Adults (18 or over)", "AGE >= 18"),
        "EXCL01": ("Children", None),
        "EXCL02": ("Pregnancy", None),
    }
    assert any("EXCL02" in w and "kept" in w for w in result.warnings)
    # Site 02 is no longer a location but a subject belongs to it: kept, with a warning.
    assert sites == {"01": "Hospital A2", "02": "Hospital B"}
    assert any("02" in w and "subjects" in w for w in result.warnings)


def test_unreferenced_sites_no_longer_listed_are_removed(engine: Engine) -> None:
    _import(engine, _minimal())
    fewer = _minimal()
    fewer["protocolSection"]["contactsLocationsModule"]["locations"] = []
    result = _import(engine, fewer)
    assert result.sites == 0 and result.warnings == ()
    assert _row_counts(engine)["Site"] == 0


def test_record_without_eligibility_text_keeps_the_criteria(engine: Engine) -> None:
    _import(engine, _minimal())
    without = _minimal()
    del without["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    result = _import(engine, without)
    assert (result.inclusion, result.exclusion) == (0, 0)
    assert any("eligibilityCriteria is missing" in w for w in result.warnings)
    assert _row_counts(engine)["Criterion"] == 2


# -- registry values -------------------------------------------------------------------------------


def test_actual_enrollment_of_zero_stays_zero(engine: Engine) -> None:
    record = _minimal()
    record["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 0, "type": "ACTUAL"}
    _import(engine, record)
    with Session(engine) as session:
        study = session.get(Study, "NCT99999999")
        assert study is not None
        assert (study.planned_enrollment, study.enrollment_type) == (0, "ACTUAL")


def test_values_of_a_small_record(engine: Engine) -> None:
    _import(engine, _minimal())
    with Session(engine) as session:
        study = session.get(Study, "NCT99999999")
        assert study is not None
        assert study.planned_start == dt.date(2019, 9, 1)  # "2019-09": the month's first day
        assert study.planned_end == dt.date(2021, 6, 30)
        assert study.min_age == 0.5  # "6 Months"
        assert study.max_age == 80
        assert study.sex == "FEMALE"
        assert study.phase == "Phase 2/Phase 3"
        assert study.design == "Randomized, parallel assignment, double blind"
        assert study.is_blinded
        assert study.condition == "Knee OA, Hip OA"
        assert study.intervention == "Drug: Compound X; Dietary supplement: Vitamin D"
        sites = session.scalars(select(Site).order_by(col(Site.site_id))).all()
        assert [(s.site_id, s.name, s.city, s.country) for s in sites] == [
            ("01", "Hospital A", "Lyon", "France"),
            ("02", "Hospital B", "Oslo", "Norway"),
        ]


def test_completion_date_stands_in_for_primary_completion(engine: Engine) -> None:
    record = _minimal()
    status = record["protocolSection"]["statusModule"]
    del status["primaryCompletionDateStruct"]
    status["completionDateStruct"] = {"date": "2022"}
    _import(engine, record)
    with Session(engine) as session:
        study = session.get(Study, "NCT99999999")
        assert study is not None and study.planned_end == dt.date(2022, 1, 1)


def test_unreadable_optional_values_are_warnings(engine: Engine) -> None:
    record = _minimal()
    record["protocolSection"]["statusModule"]["startDateStruct"] = {"date": "2019-13"}
    record["protocolSection"]["eligibilityModule"]["maximumAge"] = "no limit"
    result = _import(engine, record)
    assert sorted(w.split(":")[0] for w in result.warnings) == [
        "protocolSection.eligibilityModule.maximumAge",
        "protocolSection.statusModule.startDateStruct.date",
    ]
    with Session(engine) as session:
        study = session.get(Study, "NCT99999999")
        assert study is not None and (study.planned_start, study.max_age) == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-09-13", dt.date(2019, 9, 13)),
        ("2019-09", dt.date(2019, 9, 1)),
        ("2019", dt.date(2019, 1, 1)),
        (None, None),
        ("", None),
    ],
)
def test_registry_date(text: str | None, expected: dt.date | None) -> None:
    assert registry_date(text) == expected


@pytest.mark.parametrize("text", ["2019-13", "2019-02-30", "Sept 2019", "19-09"])
def test_registry_date_refuses_what_is_not_a_date(text: str) -> None:
    with pytest.raises(ValueError, match="date"):
        registry_date(text)


@pytest.mark.parametrize(
    ("phases", "label"),
    [
        (["PHASE2"], "Phase 2"),
        (["NA"], "Not applicable"),
        (["EARLY_PHASE1"], "Early phase 1"),
        (["PHASE1", "PHASE2"], "Phase 1/Phase 2"),
        ([], None),
    ],
)
def test_phase_label(phases: list[str], label: str | None) -> None:
    assert phase_label(phases) == label


@pytest.mark.parametrize(
    ("info", "phrase"),
    [
        (
            {
                "allocation": "RANDOMIZED",
                "interventionModel": "PARALLEL",
                "maskingInfo": {"masking": "DOUBLE"},
            },
            "Randomized, parallel assignment, double blind",
        ),
        (
            {
                "allocation": "NA",
                "interventionModel": "SINGLE_GROUP",
                "maskingInfo": {"masking": "NONE"},
            },
            "Single group assignment, open label",
        ),
        (
            {"allocation": "NON_RANDOMIZED", "interventionModel": "CROSSOVER"},
            "Non-randomized, crossover assignment",
        ),
        ({}, None),
    ],
)
def test_design_phrase(info: dict[str, Any], phrase: str | None) -> None:
    assert design_phrase({"designInfo": info}, "INTERVENTIONAL") == phrase


# -- broken records: a message naming the file and the field, nothing written ---------------------


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("broken.json", '{"protocolSection": {', "not valid JSON"),
        ("a-list.json", '[{"protocolSection": {}}]', "not a list"),
        ("no-protocol.json", '{"hasResults": false}', "no protocolSection"),
        (
            "no-nct-id.json",
            '{"protocolSection": {"identificationModule": {"briefTitle": "x"}}}',
            "identificationModule.nctId is missing",
        ),
        (
            "search.json",
            '{"studies": [{}, {}], "nextPageToken": "x"}',
            "search result with 2 studies",
        ),
        (
            "bad-module.json",
            '{"protocolSection": {"identificationModule": []}}',
            "should be an object",
        ),
    ],
)
def test_broken_files_name_the_file_and_write_nothing(
    engine: Engine, tmp_path: Path, name: str, content: str, problem: str
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(RegistryRecordError) as raised:
        _import_file(engine, path)
    assert name in str(raised.value)
    assert problem in str(raised.value)
    assert _row_counts(engine) == {"Study": 0, "Site": 0, "Criterion": 0}


def test_missing_file(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(RegistryRecordError, match=r"missing\.json: no such file"):
        _import_file(engine, tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("designModule", "enrollmentInfo", "count"), "lots", "enrollmentInfo.count"),
        (("designModule", "enrollmentInfo", "count"), -1, "enrollmentInfo.count"),
        (("conditionsModule", "conditions"), "Knee OA", "conditionsModule.conditions"),
        (("contactsLocationsModule", "locations"), [{"city": 7}], "locations[0].city"),
    ],
)
def test_a_bad_value_names_its_field_and_leaves_the_study_as_it_was(
    engine: Engine, path: tuple[str, ...], value: object, field: str
) -> None:
    _import(engine, _minimal())
    before = _snapshot(engine)
    record = copy.deepcopy(_minimal("Inclusion Criteria:\n* Something new"))
    parent = record["protocolSection"]
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    with pytest.raises(RegistryRecordError, match=field.replace("[", r"\[").replace("]", r"\]")):
        _import(engine, record)
    assert _snapshot(engine) == before


# -- eligibilityCriteria text ----------------------------------------------------------------------


def _parsed(*items: tuple[str, str]) -> list[ParsedCriterion]:
    return [ParsedCriterion(category, text) for category, text in items]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Key Inclusion Criteria:\n\n- Adults\n- Consent\n\nKey Exclusion Criteria:\n\n- Pregnancy",
            _parsed((INCL, "Adults"), (INCL, "Consent"), (EXCL, "Pregnancy")),
            id="key-headings",
        ),
        pytest.param(
            "INCLUSION CRITERIA\n* Adults\n**Exclusion criteria:**\n* Pregnancy",
            _parsed((INCL, "Adults"), (EXCL, "Pregnancy")),
            id="capitals-and-emphasis",
        ),
        pytest.param(
            "Inclusion criteria include:\n\u2022 Adults\n\u2022 Consent;\n\n"
            "Exclusion Criteria\n\u2022 Pregnancy",
            _parsed((INCL, "Adults"), (INCL, "Consent"), (EXCL, "Pregnancy")),
            id="include-colon-and-round-bullets",
        ),
        pytest.param(
            "Inclusion Criteria:\n\n1. Adults\n2. One of:\n\n   1. knee pain;\n   2. hip pain; or\n"
            "      - a sub-sub item\n3. Consent\n\nExclusion Criteria:\n\n10. Pregnancy",
            _parsed(
                (INCL, "Adults"),
                (INCL, "One of: knee pain; hip pain; a sub-sub item"),
                (INCL, "Consent"),
                (EXCL, "Pregnancy"),
            ),
            id="numbered-and-nested",
        ),
        pytest.param(
            "Inclusion Criteria:\n* Adults\n  * aged 18 to 65\n* Consent",
            _parsed((INCL, "Adults: aged 18 to 65"), (INCL, "Consent")),
            id="nested-bullets",
        ),
        pytest.param(
            "Inclusion Criteria:\n\n* Adults\n* Consent",
            _parsed((INCL, "Adults"), (INCL, "Consent")),
            id="no-exclusion-heading",
        ),
        pytest.param(
            "Inclusion Criteria:\nAdults aged 18 or over\nSigned consent\n\nExclusion Criteria:\nPregnancy\n",
            _parsed(
                (INCL, "Adults aged 18 or over"), (INCL, "Signed consent"), (EXCL, "Pregnancy")
            ),
            id="plain-lines",
        ),
        pytest.param(
            "Healthy volunteers are sought.\n* not a criterion\n\nInclusion Criteria:\n* Adults",
            _parsed((INCL, "Adults")),
            id="text-before-the-first-heading",
        ),
        pytest.param(
            "Inclusion Criteria:\n* Adults with knee pain\nfor at least 3 months\n\n"
            "* Consent\n\nThe list above is not complete.",
            _parsed((INCL, "Adults with knee pain for at least 3 months"), (INCL, "Consent")),
            id="continuation-line-and-closing-note",
        ),
        pytest.param(
            "Inclusion Criteria: Adults\nExclusion Criteria: None",
            _parsed((INCL, "Adults")),
            id="criterion-on-the-heading-line",
        ),
        pytest.param(
            "Inclusion Criteria:\n* Glucose \\<126 mg/dl\n* \\[see protocol\\]",
            _parsed((INCL, "Glucose <126 mg/dl"), (INCL, "[see protocol]")),
            id="markdown-escapes",
        ),
        pytest.param("No headings here.\n* Adults", [], id="no-heading"),
        pytest.param("", [], id="empty"),
    ],
)
def test_parse_eligibility_criteria(text: str, expected: list[ParsedCriterion]) -> None:
    assert parse_eligibility_criteria(text) == expected


def test_a_sentence_about_criteria_is_not_a_heading() -> None:
    text = "Inclusion Criteria:\nAdults\nInclusion criteria were checked by two doctors.\nConsent"
    assert [c.text for c in parse_eligibility_criteria(text)] == [
        "Adults",
        "Inclusion criteria were checked by two doctors.",
        "Consent",
    ]


# -- the NCT06466850 demo study comes through the importer -----------------------------------------


def test_demo_study_is_the_imported_record_with_demo_facts(session: Session) -> None:
    study = session.get(Study, "NCT06466850")
    assert study is not None
    assert study.is_synthetic
    assert (study.phase, study.enrollment_type) == ("Not applicable", "ESTIMATED")
    criteria = session.scalars(
        select(Criterion)
        .where(col(Criterion.study_id) == "NCT06466850")
        .order_by(col(Criterion.seq))
    ).all()
    assert [c.code for c in criteria] == [f"INCL{n:02d}" for n in range(1, 4)] + [
        f"EXCL{n:02d}" for n in range(1, 8)
    ]
    assert {c.code for c in criteria if c.rule} == {"INCL01", "INCL02", "INCL03", "EXCL07"}
    site = session.scalars(select(Site).where(col(Site.study_id) == "NCT06466850")).one()
    assert (site.site_id, site.city, site.country) == ("01", "Isfahan", "IRN")


# -- the command line -------------------------------------------------------------------------


def test_cli_imports_every_reference_record_with_zero_subject_figures(
    shared_data: Path, tmp_path: Path
) -> None:
    import json as json_module

    from typer.testing import CliRunner

    from dashboard.cli import app

    runner = CliRunner()
    url = new_database_url(tmp_path, "ctgov-cli")
    for record in sorted((shared_data / "ctgov").glob("NCT*.json")):
        result = runner.invoke(app, ["import", "ctgov", str(record), "--db", url])
        assert result.exit_code == 0, result.stderr
        assert f"study {record.stem} created" in result.stdout
        summary = json_module.loads(
            runner.invoke(app, ["summary", "--study", record.stem, "--json", "--db", url]).stdout
        )
        assert summary["registry_id"] == record.stem
        assert summary["screened"] == summary["enrolled"] == summary["ae_events"] == 0
        assert summary["data_cut"] is None
    actual_zero = runner.invoke(app, ["summary", "--study", "NCT02210780", "--json", "--db", url])
    assert json_module.loads(actual_zero.stdout)["planned_enrollment"] == 194


def test_cli_refuses_a_broken_record_with_status_2(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dashboard.cli import app

    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["import", "ctgov", str(broken), "--db", new_database_url(tmp_path, "x")]
    )
    assert result.exit_code == 2
    assert "broken.json" in result.stderr and "nothing was written" in result.stderr


def test_enriching_a_study_with_data_keeps_its_sites_and_criteria(tmp_path: Path) -> None:
    from dashboard.importers.run import import_sdtm
    from tests.sdtm_builders import write_package

    engine = make_engine(new_database_url(tmp_path, "enrich"))
    import_sdtm(engine, write_package(tmp_path / "tiny"))
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000001", "briefTitle": "Tiny, registered"},
            "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\n\n* Adults\n"},
            "contactsLocationsModule": {"locations": [{"facility": "Somewhere"}]},
        }
    }
    with session_scope(engine) as session:
        result = import_ctgov_record(session, record, study_id="TINY")
    assert any("come from the data" in w for w in result.warnings)
    with Session(engine) as session:
        study = session.get(Study, "TINY")
        assert study is not None and study.title == "Tiny, registered"
        sites = list(
            session.execute(select(col(Site.site_id)).where(col(Site.study_id) == "TINY")).scalars()
        )
        codes = list(
            session.execute(
                select(col(Criterion.code)).where(col(Criterion.study_id) == "TINY")
            ).scalars()
        )
    assert sorted(sites) == ["01", "02"]  # the SDTM SITEIDs, no registry location added
    assert sorted(codes) == ["EXCL01", "INCL01"]  # TI's criteria kept


def test_uploaded_record_imports_in_one_transaction(tmp_path: Path) -> None:
    from dashboard.importers.run import import_ctgov_upload

    engine = make_engine(new_database_url(tmp_path, "upload"))
    record = b'{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"}}}'
    result = import_ctgov_upload(engine, "../x/NCT01234567.json", record)
    assert result.study_id == "NCT01234567" and result.created
    with pytest.raises(RegistryRecordError, match=r"NCT01234567\.json"):
        import_ctgov_upload(engine, "NCT01234567.json", b"[]")


def test_actual_enrollment_of_zero_through_the_command_line(tmp_path: Path) -> None:
    # DESIGN.md: registry figures are taken as given; an ACTUAL enrollment of 0 is 0, not null.
    from typer.testing import CliRunner

    from dashboard.cli import app

    record = _minimal()
    record["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 0, "type": "ACTUAL"}
    path = tmp_path / "NCT99999999.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    url = new_database_url(tmp_path, "actual-zero")
    runner = CliRunner()
    imported = runner.invoke(app, ["import", "ctgov", str(path), "--db", url])
    assert imported.exit_code == 0, imported.stderr
    result = runner.invoke(app, ["summary", "--study", "NCT99999999", "--json", "--db", url])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["planned_enrollment"] == 0 and summary["planned_enrollment"] is not None
    assert summary["registry_id"] == "NCT99999999"
    assert (summary["screened"], summary["enrolled"], summary["sites"]) == (0, 0, 2)  # 2 locations
    assert summary["data_cut"] is None


# -- registry (#17): headings that name no category, unknown masking, enrollment and ages --------

CRITERIA_PATH = "protocolSection.eligibilityModule.eligibilityCriteria"


def _real_record_with_criteria(nct_id: str, tmp_path: Path, change: Any) -> Path:
    """A real record with its eligibilityCriteria text changed, written to ``tmp_path``."""
    record = _real_record(nct_id)
    eligibility = record["protocolSection"]["eligibilityModule"]
    eligibility["eligibilityCriteria"] = change(eligibility["eligibilityCriteria"])
    path = tmp_path / f"{nct_id}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_an_eligibility_criteria_heading_reads_as_inclusion_with_a_warning(
    engine: Engine, tmp_path: Path
) -> None:
    # NCT00763412: 5 "* " items under "Inclusion Criteria:", 6 under "Exclusion Criteria:".
    path = _real_record_with_criteria(
        "NCT00763412",
        tmp_path,
        lambda text: text.replace("Inclusion Criteria:", "Eligibility criteria:", 1),
    )
    result = _import_file(engine, path)
    assert (result.inclusion, result.exclusion) == (5, 6)
    assert [w for w in result.warnings if CRITERIA_PATH in w] == [
        f"{CRITERIA_PATH}: 5 criteria under the heading 'Eligibility criteria:' (no inclusion "
        "heading) were read as inclusion criteria"
    ]
    with Session(engine) as session:
        categories = session.scalars(
            select(col(Criterion.category)).where(col(Criterion.study_id) == "NCT00763412")
        ).all()
    assert sorted(categories) == [EXCL] * 6 + [INCL] * 5


def test_criteria_text_under_no_heading_is_warned_about(engine: Engine, tmp_path: Path) -> None:
    path = _real_record_with_criteria(
        "NCT00763412",
        tmp_path,
        lambda text: "Patients must meet all of the following:\n* Signed consent\n\n" + text,
    )
    result = _import_file(engine, path)
    assert (result.inclusion, result.exclusion) == (5, 6)  # the quoted text is no criterion
    notes = [w.removeprefix(f"{CRITERIA_PATH}: ") for w in result.warnings if CRITERIA_PATH in w]
    assert notes == [
        "text before the first inclusion or exclusion heading was not read as criteria: "
        "'Patients must meet all of the following: / * Signed consent'"
    ]


def test_generic_headings_before_and_after_named_ones() -> None:
    # A lead-in under "Eligibility Criteria:" is not a criterion; "Criteria for part B:" under
    # "Exclusion Criteria:" belongs to that section.
    text = (
        "Eligibility Criteria:\nParticipants are adults.\n\nInclusion Criteria:\n\n* Age 18+\n\n"
        "Exclusion Criteria:\n\n* Pregnancy\n\nCriteria for part B:\n\n* Prior surgery\n"
    )
    criteria, notes = read_eligibility_criteria(text)
    assert criteria == [
        ParsedCriterion(INCL, "Age 18+"),
        ParsedCriterion(EXCL, "Pregnancy"),
        ParsedCriterion(EXCL, "Prior surgery"),
    ]
    assert notes == [
        "text under the heading 'Eligibility Criteria:' was not read as criteria: "
        "'Participants are adults.'"
    ]
    assert read_eligibility_criteria("Criteria:\n\n* Adults\n* Consent\n") == (
        [ParsedCriterion(INCL, "Adults"), ParsedCriterion(INCL, "Consent")],
        [
            "2 criteria under the heading 'Criteria:' (no inclusion heading) were read as inclusion "
            "criteria"
        ],
    )


def test_the_command_line_prints_the_criteria_warning(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dashboard.cli import app

    path = _real_record_with_criteria(
        "NCT00763412", tmp_path, lambda text: text.replace("Inclusion Criteria:", "Eligibility:")
    )
    result = CliRunner().invoke(
        app, ["import", "ctgov", str(path), "--db", new_database_url(tmp_path, "cli")]
    )
    assert result.exit_code == 0, result.stderr
    assert "5 criteria under the heading 'Eligibility:'" in result.stdout + result.stderr


def test_a_record_without_masking_counts_as_blinded(engine: Engine) -> None:
    record = _real_record("NCT02210780")  # interventional, TRIPLE masking
    del record["protocolSection"]["designModule"]["designInfo"]["maskingInfo"]
    result = _import(engine, record)
    assert any(
        "designInfo.maskingInfo.masking is missing" in w and "counts as blinded" in w
        for w in result.warnings
    )
    observational = _import(engine, _real_record("NCT05594173"))  # no masking: nothing to blind
    assert not any("masking" in w for w in observational.warnings)
    with Session(engine) as session:
        blinded = session.get(Study, "NCT02210780")
        open_study = session.get(Study, "NCT05594173")
        assert blinded is not None and blinded.is_blinded is None  # unknown
        assert open_study is not None and open_study.is_blinded is False


@pytest.mark.parametrize(
    ("count", "kind", "shown"),
    [
        (0, "ACTUAL", ("Enrollment", "0 (actual)")),
        (20, "ESTIMATED", ("Target enrollment", "20 (estimated)")),
        (300, None, ("Target enrollment", "300")),
        (None, None, ("Target enrollment", "–")),
    ],
)
def test_registry_enrollment_wording(
    count: int | None, kind: str | None, shown: tuple[str, str]
) -> None:
    from dashboard.views.format import registry_enrollment

    assert registry_enrollment(count, kind) == shown


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (18, 65, "18 to 65 years"),
        (18, None, "18 years or older"),
        (None, 65, "up to 65 years"),
        (0.5, None, "0.5 years or older"),
        (None, None, "–"),
    ],
)
def test_ages_wording(low: float | None, high: float | None, shown: str) -> None:
    from dashboard.views.format import ages_label

    assert ages_label(low, high) == shown


def test_overview_and_pack_show_an_actual_zero_and_a_one_sided_age_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A withdrawn study (ACTUAL 0) of adults 18 or older: NCT04207047 (minimumAge 18 Years, no
    maximum) with its enrollment set to 0 and another of the records' ESTIMATED count beside it."""
    from streamlit.testing.v1 import AppTest
    from typer.testing import CliRunner

    from dashboard.cli import app
    from tests.access_support import readable
    from tests.conftest import PROJECT_ROOT

    record = _real_record("NCT04207047")
    record["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 0, "type": "ACTUAL"}
    record["protocolSection"]["statusModule"]["overallStatus"] = "WITHDRAWN"
    path = tmp_path / "NCT04207047.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    url = new_database_url(tmp_path, "overview")
    runner = CliRunner()
    for source in (path, _record_path("NCT06171568")):  # ESTIMATED 400, 18 Years, no maximum
        imported = runner.invoke(app, ["import", "ctgov", str(source), "--db", url])
        assert imported.exit_code == 0, imported.stderr

    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(str(PROJECT_ROOT / "dashboard" / "app.py"), default_timeout=60)
    shown = {}
    for study_id in ("NCT04207047", "NCT06171568"):
        at.query_params["study"] = study_id
        at.session_state["study"] = study_id
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown[study_id] = "\n".join(m.value for m in at.markdown)
    assert "**Enrollment:** 0 (actual)" in shown["NCT04207047"]
    assert "**Ages:** 18 years or older" in shown["NCT04207047"]
    assert "Target enrollment" not in shown["NCT04207047"]
    assert "**Target enrollment:** 400 (estimated)" in shown["NCT06171568"]

    out = tmp_path / "pack"
    report = runner.invoke(
        app, ["report", "--study", "NCT04207047", "--out", str(out), "--db", url]
    )
    assert report.exit_code == 0, report.stderr
    pdf = next(f for f in out.iterdir() if f.suffix == ".pdf")
    text = " ".join(str(readable(pdf.name, pdf.read_bytes())).split())
    assert "Enrollment 0 (actual)" in text or "Enrollment: 0 (actual)" in text
    assert "18 years or older" in text
