"""The NCT06466850 demo as a REDCap project would export it (issue #23). SYNTHETIC DATA.

``export_seed_redcap(session, folder)`` writes, from the seed study in the database at its cut-off:

- ``dictionary.csv``: the project's data dictionary (REDCap's columns), with two identifying fields
  (``initials``, ``dob``, "Identifier? y") that the importers must drop;
- ``records.csv``: the records, one row per record and event, the adverse events as instances of
  the repeating instrument ``adverse_event``, the laboratory results on instrument ``laboratory``
  at screening, week 4 and week 12, subjects in data access group ``isfahan``;
- ``project.xml``: the same project as a CDISC ODM 1.3 file (metadata and data);
- ``records.xlsx``: a spreadsheet copy: the records with every answer written as its label;
- ``mapping.toml``: the mapping file onto the data model, commented: the documented example.

Importing any of the three gives the seed demo's figures (``tests/test_import_edc.py``). The folder
shipped in ``dashboard/studies/NCT06466850-redcap`` is this function's output
(``study-monitor demo --redcap-export FOLDER`` writes it again; a test checks they agree).
The identifying fields hold made-up values (``XX``, a date in the year of birth): no real person.
"""

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select
from sqlmodel import Session, col

from dashboard.importers.edc import (
    DATA_ACCESS_GROUP,
    DICTIONARY_COLUMNS,
    EVENT,
    REPEAT_INSTANCE,
    REPEAT_INSTRUMENT,
    Export,
    FieldDef,
    Record,
)
from dashboard.importers.odm import write_odm
from dashboard.models import (
    AdverseEvent,
    Criterion,
    Disposition,
    EligibilityFinding,
    Exposure,
    Finding,
    Study,
    Subject,
    Visit,
)

STUDY_ID = "NCT06466850"
CUTOFF = dt.date(2025, 11, 30)  # demo.SEED_CUTOFF
GROUP = "isfahan"
# The project's events: the planned visits (VISITNUM, VISIT, planned day) and the end of study.
EVENTS = (
    ("screening_arm_1", 1, "SCREENING", -14),
    ("day_1_arm_1", 2, "DAY 1 (INJECTION)", 1),
    ("week_1_arm_1", 3, "WEEK 1", 8),
    ("week_4_arm_1", 4, "WEEK 4", 29),
    ("week_12_arm_1", 5, "WEEK 12", 85),
    ("week_24_arm_1", 6, "WEEK 24 (FOLLOW-UP)", 169),
)
END_EVENT = "end_of_study_arm_1"
# Screening values: (field, domain, TESTCD, TEST, unit, location, label).
BASELINE = (
    ("height", "VS", "HEIGHT", "Height", "cm", None, "Height (cm)"),
    ("weight", "VS", "WEIGHT", "Weight", "kg", None, "Weight (kg)"),
    ("bmi", "VS", "BMI", "Body Mass Index", "kg/m2", None, "Body mass index (kg/m2)"),
    ("pain_months", "SC", "PAINDUR", "Duration of Knee Pain", "months", None, "Knee pain (months)"),
    ("vas_pain", "QS", "VASPAIN", "Pain VAS (0-100)", "mm", None, "Pain VAS (mm)"),
    ("womac_total", "QS", "WOMACTOT", "WOMAC Total Score (0-96)", None, None, "WOMAC total"),
    ("kl_left", "MK", "KLGRADE", "Kellgren-Lawrence Grade", None, "LEFT KNEE", "K-L grade, left"),
    (
        "kl_right",
        "MK",
        "KLGRADE",
        "Kellgren-Lawrence Grade",
        None,
        "RIGHT KNEE",
        "K-L grade, right",
    ),
)
# The laboratory instrument, filled at these events: the sample's date and one field per test
# (field = the test code, lower-cased). The tests, names, units and normal ranges are the seed's.
LAB_EVENTS = ("screening_arm_1", "week_4_arm_1", "week_12_arm_1")
LAB_FORM = "laboratory"
DISPOSITIONS = ("Completed", "Screen failure", "Lost to follow-up", "Withdrawal by subject")
SEVERITIES = ("Mild", "Moderate", "Severe")
RELATIONSHIPS = (
    "Not related",
    "Unlikely related",
    "Possibly related",
    "Probably related",
    "Related",
)
ACTIONS = ("Dose not changed", "Drug interrupted", "Drug withdrawn", "Not applicable")
OUTCOMES = ("Recovered/resolved", "Not recovered/not resolved", "Recovering/resolving", "Fatal")


def _choices(labels: tuple[str, ...]) -> dict[str, str]:
    return {str(n): label for n, label in enumerate(labels, start=1)}


def _code(choices: dict[str, str], label: str) -> str:
    wanted = label.casefold()
    return next(code for code, name in choices.items() if name.casefold() == wanted)


@dataclass(frozen=True)
class LabTest:
    """One test of the seed's laboratory panel, as its findings hold it."""

    code: str
    name: str
    category: str
    unit: str
    ranges: dict[str, tuple[float, float]]  # sex -> (normal low, normal high)

    @property
    def field(self) -> str:
        return self.code.lower()


def seed_lab_tests(session: Session) -> list[LabTest]:
    """The seed's laboratory tests with their normal ranges by sex, read from its findings."""
    rows = session.execute(
        select(
            col(Finding.test_code),
            col(Finding.test),
            col(Finding.category),
            col(Finding.unit),
            col(Subject.sex),
            col(Finding.normal_low),
            col(Finding.normal_high),
        )
        .join(Subject, col(Subject.id) == col(Finding.subject_pk))
        .where(col(Subject.study_id) == STUDY_ID, col(Finding.domain) == "LB")
        .distinct()
    ).all()
    tests: dict[str, LabTest] = {}
    for code, name, category, unit, sex, low, high in sorted(rows, key=lambda r: (r[0], r[4])):
        test = tests.setdefault(code, LabTest(code, name, category or "", unit or "", {}))
        assert low is not None and high is not None, f"{code} has no normal range"
        test.ranges[sex or ""] = (low, high)
    return list(tests.values())


def seed_fields(criteria: list[Criterion], lab_tests: list[LabTest]) -> dict[str, FieldDef]:
    """The project's data dictionary, in REDCap's order (record id first)."""
    fields = [
        FieldDef("record_id", "screening", "text", "Record ID"),
        FieldDef("initials", "screening", "text", "Initials", identifier=True),
        FieldDef(
            "dob", "screening", "text", "Date of birth", validation="date_ymd", identifier=True
        ),
        FieldDef(
            "consent_date", "screening", "text", "Informed consent signed", validation="date_ymd"
        ),
        FieldDef("sex", "screening", "radio", "Sex", {"1": "Female", "2": "Male"}),
        FieldDef("age", "screening", "text", "Age (years)", validation="integer"),
    ]
    fields += [
        FieldDef(name, "screening", "text", label, validation="number")
        for name, *_rest, label in BASELINE
    ]
    fields += [
        FieldDef(
            c.code.lower(),
            "screening",
            "yesno",
            f"{'Meets' if c.category == 'INCLUSION' else 'Has'}: {c.text}",
            {"1": "Yes", "0": "No"},
        )
        for c in criteria
    ]
    fields += [
        FieldDef("inj_date", "injection", "text", "Injection date", validation="date_ymd"),
        FieldDef("inj_volume", "injection", "text", "Volume injected (mL)", validation="number"),
        FieldDef("visit_date", "visit", "text", "Visit date", validation="date_ymd"),
        FieldDef("lab_date", LAB_FORM, "text", "Sample date", validation="date_ymd"),
        *(
            FieldDef(t.field, LAB_FORM, "text", f"{t.name} ({t.unit})", validation="number")
            for t in lab_tests
        ),
        FieldDef("ae_term", "adverse_event", "text", "Adverse event (verbatim)"),
        FieldDef("ae_pt", "adverse_event", "text", "MedDRA preferred term"),
        FieldDef("ae_soc", "adverse_event", "text", "MedDRA system organ class"),
        FieldDef("ae_start", "adverse_event", "text", "Start date", validation="date_ymd"),
        FieldDef("ae_end", "adverse_event", "text", "End date", validation="date_ymd"),
        FieldDef("ae_severity", "adverse_event", "radio", "Severity", _choices(SEVERITIES)),
        FieldDef("ae_grade", "adverse_event", "text", "CTCAE grade", validation="integer"),
        FieldDef("ae_serious", "adverse_event", "yesno", "Serious", {"1": "Yes", "0": "No"}),
        FieldDef("ae_related", "adverse_event", "radio", "Relationship", _choices(RELATIONSHIPS)),
        FieldDef("ae_outcome", "adverse_event", "radio", "Outcome", _choices(OUTCOMES)),
        FieldDef("ae_action", "adverse_event", "radio", "Action taken", _choices(ACTIONS)),
        FieldDef("ds_status", "study_completion", "radio", "Status", _choices(DISPOSITIONS)),
        FieldDef("ds_date", "study_completion", "text", "Date", validation="date_ymd"),
    ]
    return {f.name: f for f in fields}


def _by_subject(session: Session, table: Any, ids: Any) -> dict[int, list[Any]]:
    rows: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(table).where(col(table.subject_pk).in_(ids)).order_by(col(table.id))
    ).scalars():
        rows[row.subject_pk].append(row)
    return rows


def _on_or_before(day: dt.date | None) -> bool:
    return day is not None and day <= CUTOFF


def _criteria(session: Session) -> list[Criterion]:
    return list(
        session.execute(
            select(Criterion)
            .where(col(Criterion.study_id) == STUDY_ID)
            .order_by(col(Criterion.seq))
        ).scalars()
    )


def seed_export(session: Session) -> Export:
    """The seed study in the database, at its cut-off, as the REDCap project's records."""
    criteria = _criteria(session)
    lab_tests = seed_lab_tests(session)
    fields = seed_fields(criteria, lab_tests)
    lab_visits = {event: visit for event, _n, visit, _d in EVENTS if event in LAB_EVENTS}
    code_of = {c.id: c.code.lower() for c in criteria}
    subjects = list(
        session.execute(
            select(Subject)
            .where(col(Subject.study_id) == STUDY_ID, col(Subject.screening_date) <= CUTOFF)
            .order_by(col(Subject.usubjid))
        ).scalars()
    )
    ids = select(col(Subject.id)).where(col(Subject.study_id) == STUDY_ID)
    failures = _by_subject(session, EligibilityFinding, ids)
    dispositions = _by_subject(session, Disposition, ids)
    events = _by_subject(session, AdverseEvent, ids)
    doses = _by_subject(session, Exposure, ids)
    visits = _by_subject(session, Visit, ids)
    findings = _by_subject(session, Finding, ids)
    records: list[Record] = []
    for subject in subjects:
        assert subject.id is not None and subject.screening_date is not None
        record_id = subject.usubjid.removeprefix(f"{STUDY_ID}-")
        failed = {code_of[f.criterion_pk] for f in failures[subject.id]}
        screening: dict[str, str] = {
            "initials": "XX",
            "dob": f"{subject.screening_date.year - int(subject.age or 0)}-07-01",
            "consent_date": subject.consent_dtc or "",
            "sex": {"F": "1", "M": "2"}[subject.sex or "F"],
            "age": f"{subject.age:g}" if subject.age is not None else "",
        }
        screening_values = {
            (f.domain, f.test_code, f.location): f.value_text
            for f in findings[subject.id]
            if f.visit == "SCREENING"
        }
        for name, domain, code, _test, _unit, location, _label in BASELINE:
            screening[name] = screening_values.get((domain, code, location)) or ""
        for criterion in criteria:
            name = criterion.code.lower()
            met = name not in failed
            # Inclusion: "meets it?" yes when met; exclusion: "has it?" yes when not met.
            screening[name] = "1" if met == (criterion.category == "INCLUSION") else "0"
        held = {v.visit: v.dtc for v in visits[subject.id] if _on_or_before(v.date)}
        for event, _number, visit, _day in EVENTS:
            values: dict[str, str] = {}
            if event == "screening_arm_1":
                values.update(screening)
            if visit in held:
                values["visit_date"] = held[visit] or ""
            if event in lab_visits:
                values.update(_lab_values(findings[subject.id], lab_visits[event]))
            if event == "day_1_arm_1":
                for dose in doses[subject.id]:
                    if _on_or_before(dose.start_date):
                        values["inj_date"] = dose.start_dtc or ""
                        values["inj_volume"] = f"{dose.dose:g}" if dose.dose is not None else ""
            values = {k: v for k, v in values.items() if v}
            if values:
                records.append(Record(record_id, values, "", event=event, group=GROUP))
            if event == "day_1_arm_1":
                for ae in events[subject.id]:
                    if not _on_or_before(ae.start_date):
                        continue
                    resolved = _on_or_before(ae.end_date)
                    outcome = ae.outcome if resolved else "NOT RECOVERED/NOT RESOLVED"
                    answers = {
                        "ae_term": ae.term,
                        "ae_pt": ae.decoded_term or "",
                        "ae_soc": ae.body_system or "",
                        "ae_start": ae.start_dtc or "",
                        "ae_end": (ae.end_dtc or "") if resolved else "",
                        "ae_severity": _code(fields["ae_severity"].choices, ae.severity or ""),
                        "ae_grade": ae.grade or "",
                        "ae_serious": "1" if ae.serious == "Y" else "0",
                        "ae_related": _code(fields["ae_related"].choices, ae.relationship or ""),
                        "ae_outcome": _code(fields["ae_outcome"].choices, outcome or ""),
                        "ae_action": (
                            _code(fields["ae_action"].choices, ae.action) if ae.action else ""
                        ),
                    }
                    records.append(
                        Record(
                            record_id,
                            {k: v for k, v in answers.items() if v},
                            "",
                            event=event,
                            instrument="adverse_event",
                            instance=ae.seq,
                            group=GROUP,
                        )
                    )
        ended = [
            d
            for d in dispositions[subject.id]
            if d.category == "DISPOSITION EVENT" and _on_or_before(d.date)
        ]
        if ended:
            last = ended[-1]
            records.append(
                Record(
                    record_id,
                    {
                        "ds_status": _code(fields["ds_status"].choices, last.term or ""),
                        "ds_date": last.dtc or "",
                    },
                    "",
                    event=END_EVENT,
                    group=GROUP,
                )
            )
    return Export(
        fields=fields,
        records=records,
        sources=[],
        record_id_field="record_id",
    )


def _lab_values(findings: list[Finding], visit: str) -> dict[str, str]:
    """The laboratory instrument's answers at one visit: the sample date and each result."""
    drawn = [f for f in findings if f.domain == "LB" and f.visit == visit and _on_or_before(f.date)]
    if not drawn:
        return {}
    return {
        "lab_date": drawn[0].dtc or "",
        **{f.test_code.lower(): f.value_text or "" for f in drawn},
    }


# REDCap's data dictionary, every column in its order (the importer reads some of them).
_DICTIONARY_HEADINGS = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)


def dictionary_csv(fields: dict[str, FieldDef]) -> str:
    assert set(DICTIONARY_COLUMNS.values()) <= set(_DICTIONARY_HEADINGS)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_DICTIONARY_HEADINGS)
    for f in fields.values():
        choices = (
            ""
            if f.field_type == "yesno"
            else " | ".join(f"{code}, {label}" for code, label in f.choices.items())
        )
        cells = {
            "Variable / Field Name": f.name,
            "Form Name": f.form,
            "Field Type": f.field_type,
            "Field Label": f.label,
            "Choices, Calculations, OR Slider Labels": choices,
            "Text Validation Type OR Show Slider Number": f.validation or "",
            "Identifier?": "y" if f.identifier else "",
        }
        writer.writerow([cells.get(heading, "") for heading in _DICTIONARY_HEADINGS])
    return out.getvalue()


def _record_rows(export: Export, *, labels: bool) -> list[list[str]]:
    names = [n for n in export.fields if n != export.record_id_field]
    header = [export.record_id_field, EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, DATA_ACCESS_GROUP]
    rows = [header + names]
    for r in export.records:
        values = [
            export.fields[n].decode(r.values.get(n, "")) if labels else r.values.get(n, "")
            for n in names
        ]
        rows.append(
            [
                r.record_id,
                r.event or "",
                r.instrument or "",
                str(r.instance) if r.instance is not None else "",
                r.group or "",
                *values,
            ]
        )
    return rows


def records_csv(export: Export) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(_record_rows(export, labels=False))
    return out.getvalue()


def write_records_xlsx(export: Export, path: Path) -> None:
    """The records as a spreadsheet: the answers written as their labels, cells as text."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "records"
    for row in _record_rows(export, labels=True):
        sheet.append(row)
    book.save(path)


def mapping_toml(session: Session) -> str:
    """The commented mapping of this project (the documented example of a mapping file)."""
    study = session.get(Study, STUDY_ID)
    assert study is not None
    criteria = _criteria(session)
    lines = [
        "# How the REDCap project of NCT06466850 (SYNTHETIC DEMO DATA) maps onto study-monitor's",
        "# data model. Import with:",
        "#   study-monitor import redcap --records records.csv --dictionary dictionary.csv \\",
        "#       --mapping mapping.toml",
        "#   study-monitor import odm project.xml --mapping mapping.toml",
        "#   study-monitor import table records.xlsx --mapping mapping.toml",
        "# Field names are the project's variable names. Answers of choice fields are matched on",
        '# their labels ("Female", "No"), case ignored, or on their codes. Every import is a new',
        "# data cut; nothing is written unless the whole export maps.",
        "",
        "[study]",
        f'id = "{STUDY_ID}"                  # the study the data are loaded into',
        f'title = "{study.title}"',
        f'registry_id = "{study.registry_id}"',
        f"planned_enrollment = {study.planned_enrollment}      # the target enrollment",
        'blinding = "NONE"                    # NONE (open label), SINGLE, DOUBLE ...',
        f'cutoff = "{CUTOFF.isoformat()}"              # the data cut-off; default: the latest '
        "date in the data",
        "",
        "[subject]",
        'id = "record_id"                     # the record id field (default: the first field)',
        f'usubjid_prefix = "{STUDY_ID}-"      # subject code = prefix + record id',
        'site = "redcap_data_access_group"    # the data access group, or a field; or site_id = "01"',
        f'site_names = {{ {GROUP} = "01" }}       # data access group (or answer) -> site id',
        'country = "IRN"',
        'sex = { field = "sex", values = { Female = "F", Male = "M" } }',
        'age = "age"',
        'consent_date = "consent_date"        # also the screening date, unless screening_date',
        'enrollment_date = "inj_date"',
        'first_dose_date = "inj_date"',
        "",
        "# One group: the arm every enrolled subject is in. A randomized study names the field:",
        '#   field = "arm"',
        '#   values = { Placebo = "PBO", "Low dose" = "LOW" }   # answer -> arm code',
        "[arm]",
        'code = "EXO"',
        'name = "Exosome"',
        "",
        "[disposition]",
        'field = "ds_status"',
        'date = "ds_date"',
        "# answer -> the CDISC disposition term; SCREEN FAILURE is in the SCREENING epoch, the",
        "# others in `epoch` (default FOLLOW-UP) unless `epochs` says otherwise",
        'values = { Completed = "COMPLETED", "Screen failure" = "SCREEN FAILURE", '
        '"Lost to follow-up" = "LOST TO FOLLOW-UP", "Withdrawal by subject" = '
        '"WITHDRAWAL BY SUBJECT" }',
        "",
        "# Eligibility: one field per criterion, and the answer that means it is NOT met.",
    ]
    for c in criteria:
        lines += [
            "[[criteria]]",
            f'code = "{c.code}"',
            f'category = "{c.category}"',
            f'field = "{c.code.lower()}"',
            f"text = {_toml_text(c.text)}",
            *(
                [f"rule = {_toml_text(c.rule)}       # checked against the baseline values"]
                if c.rule
                else []
            ),
            f'not_met = "{"No" if c.category == "INCLUSION" else "Yes"}"',
            "",
        ]
    lines += [
        "# Adverse events: the rows of a repeating instrument, one event per instance.",
        "[adverse_events]",
        'instrument = "adverse_event"',
        'term = "ae_term"',
        'decoded_term = "ae_pt"',
        'body_system = "ae_soc"',
        'start_date = "ae_start"',
        'end_date = "ae_end"',
        'severity = "ae_severity"            # the label, upper-cased: MILD, MODERATE, SEVERE',
        'grade = "ae_grade"',
        'serious = "ae_serious"              # Yes / No',
        'related = "ae_related"',
        'outcome = "ae_outcome"',
        'action = "ae_action"                # the action taken with the treatment',
        "",
        "# Protocol deviations, where a project logs them on a repeating instrument (this one",
        "# does not): a category or subcategory answer such as Major / Minor says whether one is",
        "# important. With adverse events too, each table names its instrument.",
        "#   [deviations]",
        '#   instrument = "protocol_deviation"',
        '#   term = "dv_term"',
        '#   category = "dv_category"',
        '#   date = "dv_date"',
        "",
        "[exposure]",
        'date = "inj_date"',
        'dose = "inj_volume"',
        'treatment = "MSC-DERIVED EXOSOMES"',
        'unit = "mL"',
        'route = "INTRA-ARTICULAR"',
        "",
        "# Visits: the date field asked at each event, and the planned visit each event is.",
        "[visits]",
        'date = "visit_date"',
        "[visits.events]",
    ]
    lines += [
        f'{event} = {{ number = {number}, name = "{name}", day = {day} }}'
        for event, number, name, day in EVENTS
    ]
    lines += [
        "",
        "# Laboratory results: one field per test on an instrument filled at several events. Each",
        "# result's visit is its event's; the last result on or before the first dose is the",
        "# baseline. The normal range is one number, or a number by sex (the mapped sex).",
        "[labs]",
        'date = "lab_date"                    # the sample date (default: the visit date)',
    ]
    for lab in seed_lab_tests(session):
        lines += [
            "[[labs.tests]]",
            f'field = "{lab.field}"',
            f'code = "{lab.code}"',
            f'test = "{lab.name}"',
            f'category = "{lab.category}"',
            f'unit = "{lab.unit}"',
            *_limit_lines(lab.ranges),
        ]
    lines += ["", "# Baseline characteristics: screening fields as findings (VS, LB, QS, SC, MK)."]
    for name, domain, code, test, unit, location, _label in BASELINE:
        lines += [
            "[[baseline]]",
            f'field = "{name}"',
            f'domain = "{domain}"',
            f'code = "{code}"',
            f'test = "{test}"',
        ]
        if unit:
            lines.append(f'unit = "{unit}"')
        if location:
            lines.append(f'location = "{location}"')
        lines.append("")
    return "\n".join(_aligned(line) for line in lines)


def _limit_lines(ranges: dict[str, tuple[float, float]]) -> list[str]:
    """low = and high = of a test: one number where the sexes share it, else one by sex."""
    lines = []
    for key, side in (("low", 0), ("high", 1)):
        limits = {sex: limits[side] for sex, limits in ranges.items()}
        if len(set(limits.values())) == 1:
            lines.append(f"{key} = {next(iter(limits.values())):g}")
        else:
            by_sex = ", ".join(f"{sex} = {limit:g}" for sex, limit in limits.items())
            lines.append(f"{key} = {{ {by_sex} }}")
    return lines


def _aligned(line: str) -> str:
    """A key line's comment at column 38, where the key leaves room (the file reads as a table)."""
    code, marker, comment = line.partition("  # ")
    if not marker or line.startswith("#"):
        return line
    return f"{code.rstrip():<37} # {comment.strip()}"


def _toml_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def export_seed_redcap(session: Session, folder: Path) -> Path:
    """Write the seed study's REDCap-style export into ``folder`` (see the module's docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    export = seed_export(session)
    (folder / "dictionary.csv").write_text(dictionary_csv(export.fields), encoding="utf-8")
    (folder / "records.csv").write_text(records_csv(export), encoding="utf-8")
    write_odm(
        export,
        folder / "project.xml",
        study_oid=f"Project.{STUDY_ID}",
        study_name=STUDY_ID,
        created=dt.datetime.combine(CUTOFF, dt.time(9, 0)),  # the export of the cut-off
    )
    write_records_xlsx(export, folder / "records.xlsx")
    (folder / "mapping.toml").write_text(mapping_toml(session), encoding="utf-8")
    return folder
