"""A mapping file (TOML): which fields of an EDC project are which parts of the data model (#23).

The commented example is ``dashboard/studies/NCT06466850-redcap/mapping.toml`` (the seed demo as a
REDCap project); ``study-monitor mapping draft DICTIONARY.csv`` proposes a first mapping. Every
table and key is read here and checked for its shape: an unknown key (a typo), a value of the wrong
kind or a missing required key is fatal, named by the file and the key. Whether the fields it names
exist in the project is checked against the export (``edc_package.check_fields``).

Values of choice fields are matched on their labels as the data dictionary decodes them ("Female",
"No"), case and surrounding spaces ignored, or on their codes: a spreadsheet without a dictionary
holds the labels themselves.
"""

import dataclasses
import datetime as dt
import tomllib
from collections.abc import Mapping as MappingType
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.importers.errors import fail

INCLUSION, EXCLUSION = "INCLUSION", "EXCLUSION"
FINDINGS = ("VS", "LB", "QS", "SC", "MK")
SCREEN_FAILURE_TERM = "SCREEN FAILURE"


@dataclass(frozen=True)
class Coded:
    """A field whose answers are translated: the answer's label (or code) -> the stored value.
    Without ``values`` the label is stored as it is."""

    field: str
    values: dict[str, str] = dataclasses.field(default_factory=dict)

    def translate(self, label: str, code: str) -> str | None:
        """The stored value of an answer given as its label and code; None where ``values`` is
        given and names neither."""
        if not self.values:
            return label
        wanted = {k.strip().casefold(): v for k, v in self.values.items()}
        for answer in (label, code):
            hit = wanted.get(answer.strip().casefold())
            if hit is not None:
                return hit
        return None


@dataclass(frozen=True)
class Criterion:
    code: str
    category: str  # INCLUSION / EXCLUSION
    field: str
    text: str
    not_met: tuple[str, ...]  # the answers (labels or codes) that mean "not met"
    rule: str | None = None  # a machine-checkable rule (TIRL), e.g. "BMI between 18 and 35 kg/m2"

    def is_not_met(self, label: str, code: str) -> bool:
        answers = {a.strip().casefold() for a in self.not_met}
        return label.strip().casefold() in answers or code.strip().casefold() in answers


# The adverse-event keys besides the instrument, in the order a mapping file lists them.
AE_KEYS = (
    "term",
    "decoded_term",
    "body_system",
    "start_date",
    "end_date",
    "severity",
    "grade",
    "serious",
    "related",
    "outcome",
    "action",
)


@dataclass(frozen=True)
class AdverseEvents:
    instrument: str | None  # the repeating instrument; None: the rows of any repeating one
    term: str
    decoded_term: str | None = None
    body_system: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    severity: str | None = None
    grade: str | None = None
    serious: str | None = None
    related: str | None = None
    outcome: str | None = None
    action: str | None = None


# The protocol-deviation keys besides the instrument, in the order a mapping file lists them.
DEVIATION_KEYS = ("term", "decoded_term", "category", "subcategory", "date")


@dataclass(frozen=True)
class Deviations:
    """Protocol deviations: the rows of a repeating instrument, one deviation per instance. Their
    category or subcategory answer says whether one is important ("Major", "Minor" ...)."""

    instrument: str | None
    term: str
    decoded_term: str | None = None
    category: str | None = None
    subcategory: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class Exposure:
    date: str
    treatment: str
    dose: str | None = None
    unit: str | None = None
    route: str | None = None


@dataclass(frozen=True)
class PlannedEvent:
    number: float
    name: str
    day: int | None = None


@dataclass(frozen=True)
class Visits:
    date: str
    events: dict[str, PlannedEvent]  # REDCap unique event name -> the visit it is


@dataclass(frozen=True)
class Baseline:
    field: str
    domain: str  # VS / LB / QS / SC / MK
    code: str  # --TESTCD
    test: str  # --TEST
    unit: str | None = None
    location: str | None = None
    event: str | None = None  # where the field is asked at several events: the baseline one


@dataclass(frozen=True)
class LabTest:
    """One laboratory test: a field asked at every event its instrument is filled at, or (on a
    repeating instrument of results) an answer of the field naming the test."""

    field: str | None  # the test's own field (one field per test)
    answer: str | None  # the test field's answer naming it (one result per instance)
    code: str  # LBTESTCD
    test: str  # LBTEST
    category: str | None = None  # LBCAT: HEMATOLOGY, CHEMISTRY ...
    unit: str | None = None
    # The normal range: one limit for everyone, or a limit by sex (the mapped sex, "F" / "M").
    low: dict[str, float] = dataclasses.field(default_factory=dict)  # sex ("" all) -> limit
    high: dict[str, float] = dataclasses.field(default_factory=dict)

    def limits(self, sex: str) -> tuple[float | None, float | None]:
        return (self.low.get(sex, self.low.get("")), self.high.get(sex, self.high.get("")))


@dataclass(frozen=True)
class Labs:
    date: str | None  # the sample's date field; None: the event's visit date
    tests: tuple[LabTest, ...]
    # A repeating instrument of results, one per instance (None: one field per test). Its fields:
    # the test's name, the result, and optionally the unit and the normal range of each result.
    instrument: str | None = None
    test: str | None = None
    value: str | None = None
    unit: str | None = None
    low: str | None = None
    high: str | None = None

    def test_named(self, label: str, code: str) -> LabTest | None:
        """The test a result's test answer (its label or code, case ignored) names."""
        for test in self.tests:
            wanted = (test.answer or test.code).strip().casefold()
            if wanted in (label.strip().casefold(), code.strip().casefold()):
                return test
        return None


@dataclass(frozen=True)
class Mapping:
    file: str
    study_id: str
    study: dict[str, Any]  # title, registry_id, planned_enrollment, blinding
    cutoff: dt.date | None
    record_id: str | None  # the record id field; None: the project's first field
    usubjid_prefix: str
    site_field: str | None
    site_id: str | None
    site_names: dict[str, str]  # data access group or site answer -> site id
    country: str | None
    sex: Coded | None
    age: str | None
    consent_date: str | None
    screening_date: str | None
    enrollment_date: str | None
    first_dose_date: str | None
    arm: Coded | None
    arm_code: str | None
    arm_name: str | None
    arm_names: dict[str, str]  # arm code -> name
    disposition: Coded | None
    disposition_date: str | None
    disposition_epochs: dict[str, str]
    disposition_epoch: str
    criteria: tuple[Criterion, ...]
    adverse_events: AdverseEvents | None
    exposure: Exposure | None
    visits: Visits | None
    baseline: tuple[Baseline, ...]
    labs: Labs | None = None
    deviations: Deviations | None = None

    def fields_named(self) -> list[tuple[str, str]]:
        """Every (field, what it is for) the mapping names, in the file's order."""
        named: list[tuple[str, str | None]] = [
            (self.record_id or "", "record id"),
            (self.site_field or "", "site"),
            (self.sex.field if self.sex else "", "sex"),
            (self.age or "", "age"),
            (self.consent_date or "", "informed consent date"),
            (self.screening_date or "", "screening date"),
            (self.enrollment_date or "", "enrollment date"),
            (self.first_dose_date or "", "first dose date"),
            (self.arm.field if self.arm else "", "arm"),
            (self.disposition.field if self.disposition else "", "disposition"),
            (self.disposition_date or "", "disposition date"),
        ]
        named += [(c.field, f"criterion {c.code}") for c in self.criteria]
        if self.adverse_events:
            ae = self.adverse_events
            named += [
                (getattr(ae, key) or "", f"adverse event {key.replace('_', ' ')}")
                for key in AE_KEYS
            ]
        if self.exposure:
            named += [(self.exposure.date, "dose date"), (self.exposure.dose or "", "dose")]
        if self.visits:
            named.append((self.visits.date, "visit date"))
        named += [(b.field, f"baseline {b.domain} {b.code}") for b in self.baseline]
        if self.deviations:
            dv = self.deviations
            named += [
                (getattr(dv, key) or "", f"protocol deviation {key.replace('_', ' ')}")
                for key in DEVIATION_KEYS
            ]
        if self.labs:
            labs = self.labs
            named.append((labs.date or "", "laboratory sample date"))
            named += [
                (labs.test or "", "laboratory test name"),
                (labs.value or "", "laboratory result"),
                (labs.unit or "", "laboratory unit"),
                (labs.low or "", "laboratory normal low"),
                (labs.high or "", "laboratory normal high"),
            ]
            named += [(t.field or "", f"laboratory test {t.code}") for t in labs.tests]
        return [(name, use or "") for name, use in named if name]


# -- reading the file ------------------------------------------------------------------------------

_KEYS = {
    "study": {"id", "title", "registry_id", "planned_enrollment", "blinding", "cutoff"},
    "subject": {
        "id",
        "usubjid_prefix",
        "site",
        "site_id",
        "site_names",
        "country",
        "sex",
        "age",
        "consent_date",
        "screening_date",
        "enrollment_date",
        "first_dose_date",
    },
    "arm": {"field", "values", "code", "name", "names"},
    "disposition": {"field", "values", "date", "epochs", "epoch"},
    "criteria": {"code", "category", "field", "text", "not_met", "rule"},
    "adverse_events": {"instrument", *AE_KEYS},
    "exposure": {"date", "treatment", "dose", "unit", "route"},
    "visits": {"date", "events"},
    "baseline": {"field", "domain", "code", "test", "unit", "location", "event"},
    "deviations": {"instrument", *DEVIATION_KEYS},
    "labs": {"date", "tests", "instrument", "test", "value", "unit", "low", "high"},
    "labs.tests": {"field", "answer", "code", "test", "category", "unit", "low", "high"},
}


class _Reader:
    """Typed access to one table of the file; every problem names the file and the key."""

    def __init__(self, file: str, where: str, table: MappingType[str, Any]) -> None:
        self.file, self.where, self.table = file, where, table
        known = _KEYS[where.split("]")[0].strip("[").split(" ")[0]]
        unknown = sorted(set(table) - known)
        if unknown:
            raise fail(
                f"{where}: unknown key {unknown[0]!r} (the keys of this table are "
                f"{', '.join(sorted(known))})",
                file=file,
            )

    def problem(self, key: str, message: str) -> Exception:
        return fail(f"{self.where} {key}: {message}", file=self.file)

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.problem(key, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.problem(key, f"must be a non-empty text in quotes, not {value!r}")
        return value.strip()

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def words(self, key: str) -> dict[str, str]:
        value = self.table.get(key, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.problem(key, 'must be a table of texts, e.g. { Female = "F", Male = "M" }')
        return {k.strip(): v.strip() for k, v in value.items()}

    def coded(self, key: str) -> Coded | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return Coded(field=self.required(key))
        if isinstance(value, dict):
            inner = _Reader.__new__(_Reader)
            inner.file, inner.where, inner.table = self.file, f"{self.where} {key}", value
            unknown = sorted(set(value) - {"field", "values"})
            if unknown:
                raise self.problem(key, f"unknown key {unknown[0]!r} (the keys are field, values)")
            return Coded(field=inner.required("field"), values=inner.words("values"))
        raise self.problem(key, 'must be a field name, or { field = "...", values = { ... } }')


def _tables(document: dict[str, Any], name: str, file: str) -> list[dict[str, Any]]:
    value = document.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise fail(f"[[{name}]] must be a list of tables, each one starting [[{name}]]", file=file)
    return value


def _table(document: dict[str, Any], name: str, file: str) -> dict[str, Any] | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail(f"[{name}] must be a table", file=file)
    return value


def parse_mapping(text: str, *, file: str) -> Mapping:
    """Read a mapping file's text. Raises ImportFailure naming the file and key on any problem."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise fail(f"is not valid TOML: {error}", file=file) from None
    tables = sorted(k for k in _KEYS if "." not in k)  # labs.tests is inside [labs]
    unknown = sorted(set(document) - set(tables))
    if unknown:
        raise fail(f"unknown table [{unknown[0]}] (the tables are {', '.join(tables)})", file=file)
    study_table = _table(document, "study", file)
    if study_table is None:
        raise fail('has no [study] table: it names the study, id = "..."', file=file)
    study = _Reader(file, "[study]", study_table)
    cutoff_text = study.text("cutoff")
    cutoff = None
    if cutoff_text:
        try:
            cutoff = dt.date.fromisoformat(cutoff_text)
        except ValueError:
            raise study.problem("cutoff", f"{cutoff_text!r} is not a date (YYYY-MM-DD)") from None
    planned = study_table.get("planned_enrollment")
    if planned is not None and (not isinstance(planned, int) or planned < 0):
        raise study.problem("planned_enrollment", f"must be a whole number, not {planned!r}")
    subject = _Reader(file, "[subject]", _table(document, "subject", file) or {})
    site_field, site_id = subject.text("site"), subject.text("site_id")
    if site_field and site_id:
        raise subject.problem(
            "site_id", "give either site (a field) or site_id (one site), not both"
        )
    arm = _Reader(file, "[arm]", _table(document, "arm", file) or {})
    arm_field = arm.text("field")
    if arm_field is None and arm.table and not (arm.text("code") and arm.text("name")):
        raise arm.problem("code", "a study with one arm gives its code and name; else give field")
    disposition_table = _table(document, "disposition", file)
    disposition = _Reader(file, "[disposition]", disposition_table or {})

    criteria = []
    for number, table in enumerate(_tables(document, "criteria", file), start=1):
        reader = _Reader(file, f"[[criteria]] {number}", table)
        category = reader.required("category").upper()
        if category not in (INCLUSION, EXCLUSION):
            raise reader.problem("category", f"is {category!r}: write INCLUSION or EXCLUSION")
        not_met = table.get("not_met")
        if isinstance(not_met, str):
            not_met = [not_met]
        if (
            not isinstance(not_met, list)
            or not not_met
            or not all(isinstance(a, str) for a in not_met)
        ):
            raise reader.problem(
                "not_met",
                'is required: the answer that means the criterion is not met, e.g. "No" for an '
                'inclusion, "Yes" for an exclusion',
            )
        criteria.append(
            Criterion(
                code=reader.required("code"),
                category=category,
                field=reader.required("field"),
                text=reader.text("text") or reader.required("code"),
                not_met=tuple(not_met),
                rule=reader.text("rule"),
            )
        )
    codes = [c.code for c in criteria]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise fail(f"[[criteria]]: code {repeated[0]!r} is given twice", file=file)

    ae_table = _table(document, "adverse_events", file)
    adverse_events = None
    if ae_table is not None:
        ae = _Reader(file, "[adverse_events]", ae_table)
        adverse_events = AdverseEvents(
            instrument=ae.text("instrument"),
            term=ae.required("term"),
            **{k: ae.text(k) for k in AE_KEYS if k != "term"},
        )
    exposure_table = _table(document, "exposure", file)
    exposure = None
    if exposure_table is not None:
        ex = _Reader(file, "[exposure]", exposure_table)
        exposure = Exposure(
            date=ex.required("date"),
            treatment=ex.required("treatment"),
            dose=ex.text("dose"),
            unit=ex.text("unit"),
            route=ex.text("route"),
        )
    visits_table = _table(document, "visits", file)
    visits = None
    if visits_table is not None:
        vs = _Reader(file, "[visits]", visits_table)
        events_table = visits_table.get("events")
        if not isinstance(events_table, dict) or not events_table:
            raise vs.problem(
                "events",
                "is required: each event's visit, e.g. screening_arm_1 = { number = 1, name = "
                '"SCREENING" }',
            )
        events = {}
        for event, visit in events_table.items():
            if not isinstance(visit, dict) or set(visit) - {"number", "name", "day"}:
                raise vs.problem(
                    f"events.{event}", "must be { number = ..., name = ..., day = ... }"
                )
            visit_number, name = visit.get("number"), visit.get("name")
            planned_day = visit.get("day")
            if not isinstance(visit_number, int | float) or isinstance(visit_number, bool):
                raise vs.problem(f"events.{event}", "needs a number (the visit number)")
            if not isinstance(name, str) or not name.strip():
                raise vs.problem(f"events.{event}", "needs a name (the visit's name)")
            if planned_day is not None and (
                not isinstance(planned_day, int) or isinstance(planned_day, bool)
            ):
                raise vs.problem(f"events.{event}", "day must be a whole number (the study day)")
            events[event] = PlannedEvent(float(visit_number), name.strip(), planned_day)
        visits = Visits(date=vs.required("date"), events=events)

    baseline = []
    for number, table in enumerate(_tables(document, "baseline", file), start=1):
        reader = _Reader(file, f"[[baseline]] {number}", table)
        domain = reader.required("domain").upper()
        if domain not in FINDINGS:
            raise reader.problem("domain", f"is {domain!r}: one of {', '.join(FINDINGS)}")
        baseline.append(
            Baseline(
                field=reader.required("field"),
                domain=domain,
                code=reader.required("code").upper(),
                test=reader.text("test") or reader.required("code"),
                unit=reader.text("unit"),
                location=reader.text("location"),
                event=reader.text("event"),
            )
        )
    labs_table = _table(document, "labs", file)
    deviations_table = _table(document, "deviations", file)
    deviations = None
    if deviations_table is not None:
        dv = _Reader(file, "[deviations]", deviations_table)
        deviations = Deviations(
            instrument=dv.text("instrument"),
            term=dv.required("term"),
            **{k: dv.text(k) for k in DEVIATION_KEYS if k != "term"},
        )
    labs = _labs(labs_table, file, baseline) if labs_table is not None else None
    repeating = {
        name: spec.instrument
        for name, spec in (
            ("[adverse_events]", adverse_events),
            ("[deviations]", deviations),
            ("[labs]", labs if labs and labs.instrument else None),
        )
        if spec is not None
    }
    if len(repeating) > 1 and not all(repeating.values()):
        # Without it, each would read the others' rows as its own.
        raise fail(
            f'{" and ".join(repeating)} each need instrument = "...": each reads the rows of a '
            "repeating instrument",
            file=file,
        )
    arm_code, arm_name = arm.text("code"), arm.text("name")
    return Mapping(
        file=file,
        study_id=study.required("id"),
        study={
            "title": study.text("title"),
            "registry_id": study.text("registry_id"),
            "planned_enrollment": planned,
            "blinding": study.text("blinding"),
        },
        cutoff=cutoff,
        record_id=subject.text("id"),
        usubjid_prefix=subject.text("usubjid_prefix") or "",
        site_field=site_field,
        site_id=site_id,
        site_names=subject.words("site_names"),
        country=subject.text("country"),
        sex=subject.coded("sex"),
        age=subject.text("age"),
        consent_date=subject.text("consent_date"),
        screening_date=subject.text("screening_date"),
        enrollment_date=subject.text("enrollment_date"),
        first_dose_date=subject.text("first_dose_date"),
        arm=Coded(arm_field, arm.words("values")) if arm_field else None,
        arm_code=arm_code,
        arm_name=arm_name,
        arm_names=arm.words("names"),
        disposition=(
            Coded(disposition.required("field"), disposition.words("values"))
            if disposition_table is not None
            else None
        ),
        disposition_date=disposition.text("date"),
        disposition_epochs={
            k.upper(): v.upper()
            for k, v in {SCREEN_FAILURE_TERM: "SCREENING", **disposition.words("epochs")}.items()
        },
        disposition_epoch=(disposition.text("epoch") or "FOLLOW-UP").upper(),
        criteria=tuple(criteria),
        adverse_events=adverse_events,
        exposure=exposure,
        visits=visits,
        baseline=tuple(baseline),
        labs=labs,
        deviations=deviations,
    )


def _labs(table: dict[str, Any], file: str, baseline: list[Baseline]) -> Labs:
    reader = _Reader(file, "[labs]", table)
    tests = table.get("tests")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, dict) for t in tests):
        raise reader.problem(
            "tests",
            'is required: one [[labs.tests]] per test, with field = "..." and code = "..."',
        )
    if isinstance(table.get("test"), list):  # [[labs.test]] for [[labs.tests]]
        raise reader.problem(
            "test", "is the field naming each result's test; the tests are [[labs.tests]] tables"
        )
    instrument = reader.text("instrument")
    if instrument:
        for key in ("test", "value"):
            reader.required(key)
    else:
        for key in ("test", "value", "unit", "low", "high"):
            if key in table:
                raise reader.problem(
                    key, 'is for a repeating instrument of results: give instrument = "..." too'
                )
    read = []
    for number, test in enumerate(tests, start=1):
        item = _Reader(file, f"[[labs.tests]] {number}", test)
        if instrument and "field" in test:
            raise item.problem(
                "field", "a repeating instrument's tests are named by answer, not by field"
            )
        read.append(
            LabTest(
                field=None if instrument else item.required("field"),
                answer=item.text("answer") if instrument else None,
                code=item.required("code").upper(),
                test=item.text("test") or item.required("code"),
                category=item.text("category"),
                unit=item.text("unit"),
                low=_limit(item, "low"),
                high=_limit(item, "high"),
            )
        )
    codes = [t.code for t in read]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise fail(f"[[labs.tests]]: code {repeated[0]!r} is given twice", file=file)
    twice = [b for b in baseline if b.domain == "LB" and b.code in codes]
    if twice:
        # Both would store the test's results: every count of it would double.
        raise fail(
            f"LB {twice[0].code} is both a [[baseline]] and a [[labs.tests]]: keep the "
            "[[labs.tests]] one (its screening result is the baseline)",
            file=file,
        )
    return Labs(
        date=reader.text("date"),
        tests=tuple(read),
        instrument=instrument,
        **{k: reader.text(k) for k in ("test", "value", "unit", "low", "high")},
    )


def _limit(reader: "_Reader", key: str) -> dict[str, float]:
    """A normal-range limit: a number for everyone, or a table of numbers by sex."""
    value = reader.table.get(key)
    if value is None:
        return {}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"": float(value)}
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
    ):
        return {k.strip().upper(): float(v) for k, v in value.items()}
    raise reader.problem(key, "must be a number, or numbers by sex, e.g. { F = 12.0, M = 13.5 }")


def read_mapping(path: Path, *, label: str | None = None) -> Mapping:
    label = label or path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file", file=label) from None
    except OSError as error:
        raise fail(f"cannot be read ({error.strerror or error})", file=label) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text", file=label) from None
    return parse_mapping(text, file=label)
