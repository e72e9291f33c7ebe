"""An EDC export, through its mapping file, as an SDTM package: one set of import rules (#23).

The export's records are laid out as the SDTM datasets the SDTM importer reads (DM, TS, TA, TI,
TV, IE, DS, AE, EX, SV and the findings domains), written as CSV files into a folder the import
owns, and read by ``sdtm.read_package``: who is screened, screen-failed and enrolled, the cut-off,
the history of changes and every check stay the SDTM importer's. What only an EDC export can get
wrong is checked here, before, and named by the export's own files, rows and fields: a mapping
naming a field the project does not have, an answer a mapping does not translate, a repeating
instrument the records do not hold as one.
"""

import dataclasses
import datetime as dt
import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.importers.edc import (
    CHECKBOX_LABELS,
    Export,
    FieldDef,
    Record,
    checkbox_options,
    iso_date_text,
)
from dashboard.importers.errors import ImportFailure, fail
from dashboard.importers.mapping import AdverseEvents, Coded, Deviations, Labs, LabTest, Mapping
from dashboard.importers.sdtm import Package, read_package
from dashboard.results.dates import InvalidDateError, parse_dtc


@dataclass(frozen=True)
class MappingEffect:
    """What a mapping does with an export, shown before anything is written (the Import page)."""

    used: tuple[tuple[str, str], ...]  # (field, what it becomes)
    ignored: tuple[str, ...]  # fields of the project the mapping does not use
    decoded: tuple[tuple[str, str, str], ...]  # (field, code, label) of the choice fields used
    dropped: tuple[str, ...]  # identifying fields, never read
    subjects: int
    records: int


def check_fields(export: Export, mapping: Mapping) -> None:
    """Fatal: a field the mapping names that the project does not have (a typo, or another
    version of the project), or one that identifies a person."""
    # A checkbox's options are mapped by their columns (``reasons___2``), as exports name them.
    known = set(export.fields) | set(checkbox_options(export.fields)) | {"redcap_data_access_group"}
    where = ", ".join(str(s["file"]) for s in export.sources)
    if mapping.record_id and mapping.record_id != export.record_id_field:
        raise fail(
            f"[subject] id is {mapping.record_id!r}, but the records are keyed by "
            f"{export.record_id_field!r} (the project's first field): name that one",
            file=mapping.file,
        )
    for name, use in mapping.fields_named():
        if name in export.dropped:
            raise fail(
                f"the {use} is field {name!r}, which identifies a person: it is never read "
                "(map another field, or none)",
                file=mapping.file,
            )
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(
                f"the {use} is field {name!r}, which is not in the project ({where}){hint}",
                file=mapping.file,
            )
    for table, instrument, term in (
        ("adverse_events", *_instrument_of(mapping.adverse_events)),
        ("deviations", *_instrument_of(mapping.deviations)),
        (
            "labs",
            *((mapping.labs.instrument, mapping.labs.value) if mapping.labs else (None, None)),
        ),
    ):
        if instrument and term:
            _check_instrument(export, mapping, table, instrument, term)


def _instrument_of(spec: AdverseEvents | Deviations | None) -> tuple[str | None, str | None]:
    return (spec.instrument, spec.term) if spec else (None, None)


def _check_instrument(
    export: Export, mapping: Mapping, table: str, instrument: str, term: str
) -> None:
    """A repeating instrument the mapping reads rows of: the project's, holding the term field,
    and exported with its instance numbers."""
    forms = {f.form for f in export.fields.values()}
    if export.has_dictionary and instrument not in forms:
        raise fail(
            f"[{table}] instrument {instrument!r} is not an instrument of the project "
            f"(its instruments are {', '.join(sorted(forms))})",
            file=mapping.file,
        )
    term_form = export.fields[term].form
    if export.has_dictionary and term_form != instrument:
        raise fail(
            f"[{table}] term {term!r} is on instrument {term_form!r}, not on {instrument!r}",
            file=mapping.file,
        )
    # The instrument's rows must be its repeat instances: a row without one is the record's
    # own row, and would be read as a subject's answer.
    for record in export.records:
        if record.instrument is None and term in record.values:
            raise fail(
                f"a row holds the repeating instrument {instrument!r} (field {term!r}) without "
                "its instance number: export the records with redcap_repeat_instrument and "
                "redcap_repeat_instance",
                **place(record, term),
            )


class _Subject:
    """One record's rows: its own values (first non-empty over its events, in file order) and
    its repeating instruments' instances."""

    def __init__(self, record_id: str) -> None:
        self.record_id = record_id
        self.values: dict[str, str] = {}
        self.value_event: dict[str, str | None] = {}
        self.by_event: dict[str | None, dict[str, str]] = {}
        self.repeats: list[Record] = []
        self.group: str | None = None
        self.where = ""
        self.value_record: dict[str, Record] = {}  # the row each value was taken from
        self.event_record: dict[str | None, Record] = {}

    def add(self, record: Record) -> None:
        if not self.where:
            self.where = record.where
        self.group = self.group or record.group
        if record.instrument is not None:
            self.repeats.append(record)
            return
        self.by_event.setdefault(record.event, {}).update(record.values)
        self.event_record.setdefault(record.event, record)
        for name, value in record.values.items():
            if name not in self.values:
                self.values[name] = value
                self.value_event[name] = record.event
                self.value_record[name] = record

    def place(self, name: str) -> dict[str, Any]:
        """Where a value of this subject's was read, for a message."""
        record = self.value_record.get(name)
        return place(record, name) if record else {"file": self.where}


def place(record: Record, name: str | None = None) -> dict[str, Any]:
    """A record's place for ``fail``: file, row and column of a table; file and subject of ODM."""
    if record.row is not None:
        return {"file": record.file, "row": record.row, "column": name}
    return {"file": record.where, "column": name}


def checked_date(value: str | None, where: dict[str, Any]) -> str:
    """An export's date as ISO 8601 text, "" where empty; fatal where it is not a date on the
    calendar (the SDTM rules would refuse it too, but naming the SDTM file made on the way)."""
    if not value:
        return ""
    text = iso_date_text(value)
    try:
        parse_dtc(text)
    except InvalidDateError as error:
        raise fail(f"{error}: write dates as YYYY-MM-DD", **where) from None
    return text


class _Decoder:
    def __init__(self, export: Export, mapping: Mapping) -> None:
        self.export, self.mapping = export, mapping
        self.options = checkbox_options(export.fields)

    def label(self, name: str, value: str) -> str:
        definition: FieldDef | None = self.export.fields.get(name)
        if definition is None and name in self.options:
            return CHECKBOX_LABELS.get(value, value)  # an option's column: 1 checked, 0 not
        return definition.decode(value) if definition else value

    def coded(self, coded: Coded, value: str, where: dict[str, Any], use: str) -> str:
        label = self.label(coded.field, value)
        translated = coded.translate(label, value)
        if translated is None:
            known = ", ".join(sorted(coded.values))
            raise fail(
                f"the {use} field {coded.field!r} holds {label!r}, which the mapping's values do "
                f"not translate (they name {known}): add it to the mapping ({self.mapping.file})",
                **where,
            )
        return translated


def _subjects(export: Export) -> list[_Subject]:
    subjects: dict[str, _Subject] = {}
    for record in export.records:
        subjects.setdefault(record.record_id, _Subject(record.record_id)).add(record)
    return list(subjects.values())


def sdtm_tables(export: Export, mapping: Mapping) -> dict[str, pd.DataFrame]:
    """The export as SDTM datasets (by domain), as the SDTM importer reads them."""
    check_fields(export, mapping)
    if not export.records:
        raise fail(
            "holds no records: an export of a project without records cannot be a data cut",
            file=str(export.sources[-1]["file"]) if export.sources else None,
        )
    decoder = _Decoder(export, mapping)
    study_id = mapping.study_id
    dm: list[dict[str, Any]] = []
    ds: list[dict[str, Any]] = []
    ie: list[dict[str, Any]] = []
    ae: list[dict[str, Any]] = []
    dv: list[dict[str, Any]] = []
    ex: list[dict[str, Any]] = []
    sv: list[dict[str, Any]] = []
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    arms: dict[str, str] = {}
    if mapping.arm_code and mapping.arm_name:
        arms[mapping.arm_code] = mapping.arm_name
    for subject in _subjects(export):
        usubjid = f"{mapping.usubjid_prefix}{subject.record_id}"
        v = subject.values

        def value(name: str | None, v: dict[str, str] = v) -> str:
            return v.get(name, "") if name else ""

        def date(name: str | None, subject: _Subject = subject) -> str:
            return checked_date(value(name), subject.place(name or ""))

        site = mapping.site_id or ""
        if mapping.site_field:
            raw = (
                subject.group or ""
                if mapping.site_field == "redcap_data_access_group"
                else value(mapping.site_field)
            )
            label = decoder.label(mapping.site_field, raw) if raw else ""
            site = mapping.site_names.get(label, mapping.site_names.get(raw, label))
        consent = date(mapping.consent_date) or date(mapping.screening_date)
        dosed_on = date(mapping.first_dose_date)
        # Without an enrollment date field, the first dose is the enrollment (a single-arm
        # study often records only the day of treatment).
        enrolled_on = date(mapping.enrollment_date) if mapping.enrollment_date else dosed_on
        arm_code = arm_name = ""
        if mapping.arm and value(mapping.arm.field):
            raw = value(mapping.arm.field)
            arm_code = decoder.coded(mapping.arm, raw, subject.place(mapping.arm.field), "arm")
            arm_name = mapping.arm_names.get(arm_code) or decoder.label(mapping.arm.field, raw)
            arms.setdefault(arm_code, arm_name)
        elif mapping.arm_code and enrolled_on:
            arm_code, arm_name = mapping.arm_code, mapping.arm_name or mapping.arm_code
        dispositions: list[dict[str, Any]] = []
        if consent:
            dispositions.append(
                {
                    "DSTERM": "INFORMED CONSENT OBTAINED",
                    "DSDECOD": "INFORMED CONSENT OBTAINED",
                    "DSCAT": "PROTOCOL MILESTONE",
                    "EPOCH": "SCREENING",
                    "DSSTDTC": consent,
                }
            )
        failed = False
        if mapping.disposition and value(mapping.disposition.field):
            term = decoder.coded(
                mapping.disposition,
                value(mapping.disposition.field),
                subject.place(mapping.disposition.field),
                "disposition",
            ).upper()
            failed = term == "SCREEN FAILURE"
            dispositions.append(
                {
                    "DSTERM": term,
                    "DSDECOD": term,
                    "DSCAT": "DISPOSITION EVENT",
                    "EPOCH": mapping.disposition_epochs.get(term, mapping.disposition_epoch),
                    "DSSTDTC": date(mapping.disposition_date),
                }
            )
        for seq, record in enumerate(dispositions, start=1):
            ds.append({"STUDYID": study_id, "USUBJID": usubjid, "DSSEQ": seq, **record})
        sex = ""
        if mapping.sex and value(mapping.sex.field):
            sex = decoder.coded(
                mapping.sex, value(mapping.sex.field), subject.place(mapping.sex.field), "sex"
            )
        age = value(mapping.age)
        if age and not _is_number(age):
            raise fail(f"age {age!r} is not a number of years", **subject.place(mapping.age or ""))
        dm.append(
            {
                "STUDYID": study_id,
                "DOMAIN": "DM",
                "USUBJID": usubjid,
                "SUBJID": subject.record_id,
                "SITEID": site,
                "RFICDTC": consent,
                "RFSTDTC": enrolled_on if arm_code else "",
                "RFXSTDTC": dosed_on,
                "AGE": age,
                "AGEU": "YEARS" if age else "",
                "SEX": sex,
                "ARMCD": arm_code if enrolled_on else "",
                "ARM": arm_name if enrolled_on else "",
                "ACTARMCD": arm_code if dosed_on else "",
                "ACTARM": arm_name if dosed_on else "",
                "ARMNRS": "SCREEN FAILURE" if failed else "",
                "COUNTRY": mapping.country or "",
            }
        )
        for criterion in mapping.criteria:
            raw = value(criterion.field)
            if raw and criterion.is_not_met(decoder.label(criterion.field, raw), raw):
                ie.append(
                    {
                        "STUDYID": study_id,
                        "USUBJID": usubjid,
                        "IESEQ": len(ie) + 1,
                        "IETESTCD": criterion.code,
                        "IETEST": criterion.text,
                        "IECAT": criterion.category,
                        "IEORRES": "N" if criterion.category == "INCLUSION" else "Y",
                        "IEDTC": consent,
                    }
                )
        if mapping.adverse_events:
            ae += _adverse_events(subject, usubjid, mapping, decoder)
        if mapping.exposure and value(mapping.exposure.date):
            day = date(mapping.exposure.date)
            ex.append(
                {
                    "STUDYID": study_id,
                    "USUBJID": usubjid,
                    "EXTRT": mapping.exposure.treatment,
                    "EXDOSE": value(mapping.exposure.dose),
                    "EXDOSU": mapping.exposure.unit or "",
                    "EXROUTE": mapping.exposure.route or "",
                    "EXSTDTC": day,
                    "EXENDTC": day,
                }
            )
        visit_dates: dict[str | None, str] = {}
        if mapping.visits:
            for event, planned in mapping.visits.events.items():
                day = checked_date(
                    subject.by_event.get(event, {}).get(mapping.visits.date),
                    place(subject.event_record[event], mapping.visits.date)
                    if event in subject.event_record
                    else {},
                )
                if day:
                    visit_dates[event] = day
                    sv.append(
                        {
                            "STUDYID": study_id,
                            "USUBJID": usubjid,
                            "VISITNUM": planned.number,
                            "VISIT": planned.name,
                            "VISITDY": planned.day,
                            "SVSTDTC": day,
                        }
                    )
        for item in mapping.baseline:
            asked_at = item.event if item.event else subject.value_event.get(item.field)
            raw = subject.by_event.get(asked_at, {}).get(item.field, "")
            if not raw:
                continue
            d = item.domain
            visit = (
                mapping.visits.events[asked_at].name
                if mapping.visits and asked_at in mapping.visits.events
                else ""
            )
            findings[d].append(
                {
                    "STUDYID": study_id,
                    "USUBJID": usubjid,
                    f"{d}TESTCD": item.code,
                    f"{d}TEST": item.test,
                    f"{d}LOC": item.location or "",
                    f"{d}ORRES": decoder.label(item.field, raw),
                    f"{d}STRESC": decoder.label(item.field, raw),
                    f"{d}STRESU": item.unit or "",
                    "VISIT": visit,
                    f"{d}DTC": visit_dates.get(asked_at) or consent,
                }
            )
        if mapping.deviations:
            dv += _deviations(subject, usubjid, mapping, decoder)
        if mapping.labs:
            findings["LB"] += _lab_results(
                subject,
                usubjid,
                mapping,
                decoder,
                sex=sex,
                day_one=dosed_on or enrolled_on,
                visits=visit_dates,
            )
    tables = {
        "DM": pd.DataFrame(dm),
        "TS": _trial_summary(mapping),
        "TA": pd.DataFrame(
            [{"STUDYID": study_id, "ARMCD": c, "ARM": n} for c, n in arms.items()],
            columns=["STUDYID", "ARMCD", "ARM"],
        ),
        "TI": pd.DataFrame(
            [
                {
                    "STUDYID": study_id,
                    "IETESTCD": c.code,
                    "IETEST": c.text,
                    "IECAT": c.category,
                    "TIRL": c.rule or "",
                }
                for c in mapping.criteria
            ],
            columns=["STUDYID", "IETESTCD", "IETEST", "IECAT", "TIRL"],
        ),
        "IE": pd.DataFrame(
            ie,
            columns=[
                "STUDYID",
                "USUBJID",
                "IESEQ",
                "IETESTCD",
                "IETEST",
                "IECAT",
                "IEORRES",
                "IEDTC",
            ],
        ),
        "DS": pd.DataFrame(ds),
    }
    if mapping.adverse_events:
        tables["AE"] = pd.DataFrame(
            ae,
            columns=[
                "STUDYID",
                "USUBJID",
                "AESEQ",
                "AETERM",
                "AEDECOD",
                "AEBODSYS",
                "AESEV",
                "AETOXGR",
                "AESER",
                "AEREL",
                "AEOUT",
                "AEACN",
                "AESTDTC",
                "AEENDTC",
            ],
        )
    if mapping.deviations:
        tables["DV"] = pd.DataFrame(
            dv,
            columns=[
                "STUDYID",
                "USUBJID",
                "DVSEQ",
                "DVTERM",
                "DVDECOD",
                "DVCAT",
                "DVSCAT",
                "DVSTDTC",
            ],
        )
    if mapping.exposure:
        tables["EX"] = pd.DataFrame(ex)
    if mapping.visits:
        tables["SV"] = pd.DataFrame(sv)
        tables["TV"] = pd.DataFrame(
            [
                {"STUDYID": study_id, "VISITNUM": p.number, "VISIT": p.name, "VISITDY": p.day}
                for p in mapping.visits.events.values()
            ]
        )
    for domain, rows in findings.items():
        frame = pd.DataFrame(rows)
        frame[f"{domain}STRESN"] = pd.to_numeric(frame[f"{domain}STRESC"], errors="coerce")
        tables[domain] = frame
    return {name: frame for name, frame in tables.items() if not frame.empty or name == "IE"}


def _instances(
    subject: _Subject, spec: AdverseEvents | Deviations, decoder: _Decoder, what: str
) -> Iterator[tuple[Record, Callable[[str | None], str], str]]:
    """The subject's instances of the repeating instrument ``spec`` reads, each with its answers
    (decoded: a field's label, "" where unanswered) and its term, which it must have."""
    for record in subject.repeats:
        if spec.instrument is not None and record.instrument != spec.instrument:
            continue

        def answer(name: str | None, values: dict[str, str] = record.values) -> str:
            return decoder.label(name, values[name]) if name and values.get(name) else ""

        term = answer(spec.term)
        if not term:
            raise fail(
                f"{what} {record.instance} has no term (field {spec.term!r})",
                **place(record, spec.term),
            )
        yield record, answer, term


def _adverse_events(
    subject: _Subject, usubjid: str, mapping: Mapping, decoder: _Decoder
) -> list[dict[str, Any]]:
    spec = mapping.adverse_events
    assert spec is not None
    rows = []
    for record, answer, term in _instances(subject, spec, decoder, "adverse event"):
        values = record.values
        serious = answer(spec.serious).strip().upper()
        rows.append(
            {
                "STUDYID": mapping.study_id,
                "USUBJID": usubjid,
                "AESEQ": record.instance,
                "AETERM": term,
                "AEDECOD": answer(spec.decoded_term),
                "AEBODSYS": answer(spec.body_system),
                "AESEV": answer(spec.severity).upper(),
                "AETOXGR": answer(spec.grade),
                "AESER": {"YES": "Y", "NO": "N", "TRUE": "Y", "FALSE": "N"}.get(serious, serious),
                "AEREL": answer(spec.related).upper(),
                "AEOUT": answer(spec.outcome).upper(),
                "AEACN": answer(spec.action).upper(),
                "AESTDTC": checked_date(
                    values.get(spec.start_date or ""), place(record, spec.start_date)
                ),
                "AEENDTC": checked_date(
                    values.get(spec.end_date or ""), place(record, spec.end_date)
                ),
            }
        )
    return rows


def _deviations(
    subject: _Subject, usubjid: str, mapping: Mapping, decoder: _Decoder
) -> list[dict[str, Any]]:
    spec = mapping.deviations
    assert spec is not None
    rows = []
    for record, answer, term in _instances(subject, spec, decoder, "protocol deviation"):
        values = record.values
        rows.append(
            {
                "STUDYID": mapping.study_id,
                "USUBJID": usubjid,
                "DVSEQ": record.instance,
                "DVTERM": term,
                "DVDECOD": answer(spec.decoded_term),
                "DVCAT": answer(spec.category).upper(),
                "DVSCAT": answer(spec.subcategory).upper(),
                "DVSTDTC": checked_date(values.get(spec.date or ""), place(record, spec.date)),
            }
        )
    return rows


@dataclass(frozen=True)
class _Result:
    """One laboratory result as read, before it becomes an LB row."""

    test: LabTest
    text: str  # the result as written (a choice decoded)
    event: str | None
    day: str  # the sample date, ISO ("" unknown)
    unit: str | None
    low: float | None
    high: float | None


def _lab_results(
    subject: _Subject,
    usubjid: str,
    mapping: Mapping,
    decoder: _Decoder,
    *,
    sex: str,
    day_one: str,
    visits: dict[str | None, str],
) -> list[dict[str, Any]]:
    """The subject's laboratory results (one field per test at each event, or one result per
    instance of a repeating instrument) with their visit, normal range and indicator, study day
    and baseline flag. ``day_one`` is the first dose (else the enrollment): study day 1, and the
    baseline is the last result on or before it, as SDTM's LBBLFL."""
    labs = mapping.labs
    assert labs is not None
    read = (
        _results_per_instance(subject, labs, decoder, sex=sex, visits=visits)
        if labs.instrument
        else _results_per_field(subject, labs, decoder, sex=sex, visits=visits)
    )
    rows: list[dict[str, Any]] = []
    for result in read:
        planned = mapping.visits.events.get(result.event or "") if mapping.visits else None
        number = float(result.text) if _is_number(result.text) else None
        rows.append(
            {
                "STUDYID": mapping.study_id,
                "USUBJID": usubjid,
                "LBTESTCD": result.test.code,
                "LBTEST": result.test.test,
                "LBCAT": result.test.category or "",
                "LBORRES": result.text,
                "LBORRESU": result.unit or "",
                "LBSTRESC": result.text,
                "LBSTRESU": result.unit or "",
                "LBSTNRLO": result.low,
                "LBSTNRHI": result.high,
                "LBNRIND": _range_indicator(number, result.low, result.high),
                "VISITNUM": planned.number if planned else None,
                "VISIT": planned.name if planned else (result.event or ""),
                "LBDTC": result.day,
                "LBDY": _study_day(result.day, day_one),
                "LBBLFL": "",
            }
        )
    # The baseline: per test, the last result dated on or before day one (ISO dates compare as
    # text; a partial date cannot be placed).
    for code in {r["LBTESTCD"] for r in rows}:
        before = [
            r
            for r in rows
            if r["LBTESTCD"] == code
            and _full(r["LBDTC"])
            and _full(day_one)
            and r["LBDTC"] <= day_one
        ]
        if before:
            max(before, key=lambda r: r["LBDTC"])["LBBLFL"] = "Y"
    return rows


def _sample_day(
    labs: Labs,
    values: dict[str, str],
    record: Record,
    event: str | None,
    visits: dict[str | None, str],
) -> str:
    """A result's date: the sample date field where mapped, else its event's visit date."""
    if labs.date:
        return checked_date(values.get(labs.date), place(record, labs.date))
    return visits.get(event, "")


def _results_per_field(
    subject: _Subject, labs: Labs, decoder: _Decoder, *, sex: str, visits: dict[str | None, str]
) -> Iterator[_Result]:
    """One field per test, answered at each event the instrument is filled at."""
    for event, values in subject.by_event.items():
        record = subject.event_record[event]
        day = _sample_day(labs, values, record, event, visits)
        for test in labs.tests:
            raw = values.get(test.field or "", "")
            if raw:
                low, high = test.limits(sex)
                text = decoder.label(test.field or "", raw)
                yield _Result(test, text, event, day, test.unit, low, high)


def _results_per_instance(
    subject: _Subject, labs: Labs, decoder: _Decoder, *, sex: str, visits: dict[str | None, str]
) -> Iterator[_Result]:
    """A repeating instrument of results: each instance names its test (an answer a
    [[labs.tests]] names, else fatal) and holds its result, and may hold its unit and range."""
    assert labs.test and labs.value
    for record in subject.repeats:
        if record.instrument != labs.instrument:
            continue
        values = record.values
        raw_test = values.get(labs.test, "")
        label = decoder.label(labs.test, raw_test)
        test = labs.test_named(label, raw_test)
        if test is None:
            named = ", ".join(t.answer or t.code for t in labs.tests)
            raise fail(
                f"laboratory result {record.instance} is of test {label!r}, which no "
                f"[[labs.tests]] answer names (they name {named}): add it to the mapping",
                **place(record, labs.test),
            )
        raw = values.get(labs.value, "")
        if not raw:
            continue
        low, high = test.limits(sex)
        yield _Result(
            test,
            decoder.label(labs.value, raw),
            record.event,
            _sample_day(labs, values, record, record.event, visits),
            (
                decoder.label(labs.unit, values[labs.unit])
                if labs.unit and values.get(labs.unit)
                else test.unit
            ),
            _range_limit(values, labs.low, record) if labs.low and values.get(labs.low) else low,
            _range_limit(values, labs.high, record)
            if labs.high and values.get(labs.high)
            else high,
        )


def _range_limit(values: dict[str, str], name: str, record: Record) -> float:
    text = values[name]
    if not _is_number(text):
        raise fail(f"normal-range limit {text!r} is not a number", **place(record, name))
    return float(text)


def _full(day: str) -> bool:
    """A complete date (YYYY-MM-DD): a partial one cannot be placed before or after a dose."""
    return len(day) == 10


def _study_day(day: str, first_dose: str) -> int | None:
    """--DY: day 1 is the first dose, the day before it day -1 (no day 0)."""
    if not (_full(day) and _full(first_dose)):
        return None
    offset = (dt.date.fromisoformat(day) - dt.date.fromisoformat(first_dose)).days
    return offset + 1 if offset >= 0 else offset


def _range_indicator(value: float | None, low: float | None, high: float | None) -> str:
    """LBNRIND of a value against its normal range ("" without a number or a range)."""
    if value is None or (low is None and high is None):
        return ""
    if low is not None and value < low:
        return "LOW"
    if high is not None and value > high:
        return "HIGH"
    return "NORMAL"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _trial_summary(mapping: Mapping) -> pd.DataFrame:
    study = mapping.study
    blinding = study.get("blinding")
    parameters = [
        ("TITLE", study.get("title")),
        ("REGID", study.get("registry_id")),
        ("PLANSUB", study.get("planned_enrollment")),
        ("TBLIND", blinding),
        ("DCUTDTC", mapping.cutoff.isoformat() if mapping.cutoff else None),
    ]
    return pd.DataFrame(
        [
            {"STUDYID": mapping.study_id, "TSPARMCD": code, "TSVAL": value}
            for code, value in parameters
            if value is not None
        ],
        columns=["STUDYID", "TSPARMCD", "TSVAL"],
    )


def build_package(export: Export, mapping: Mapping, folder: Path) -> Package:
    """The export as a checked ``Package`` of ``mapping.study_id``. ``folder`` holds the SDTM files
    it is read from until the package is stored (its findings are read then). Raises
    ImportFailure on a fatal problem."""
    tables = sdtm_tables(export, mapping)
    folder.mkdir(parents=True, exist_ok=True)
    for domain, frame in tables.items():
        frame.to_csv(folder / f"{domain.lower()}.csv", index=False)
    try:
        package = read_package(folder, study_id=mapping.study_id, cutoff=mapping.cutoff)
    except ImportFailure as failure:
        # A rule of the SDTM import the checks above do not repeat: say which dataset the
        # export became, so the message can be traced back to the fields mapped to it.
        problem = failure.problem
        if problem.file:  # the SDTM file's name, not the temporary folder it is in
            problem = dataclasses.replace(problem, file=Path(problem.file).name)
        raise fail(
            f"the export, laid out as SDTM datasets through {mapping.file}, is refused: {problem}"
        ) from None
    package.warnings[:] = [
        *export.warnings,
        *(_in_mapping_words(w, mapping) for w in package.warnings),
    ]
    return package


# The mapping table an SDTM domain comes from: a warning about a missing domain names it.
_TABLE_OF_DOMAIN = {
    "IE": "[[criteria]]",
    "TI": "[[criteria]]",
    "DS": "[disposition]",
    "AE": "[adverse_events]",
    "DV": "[deviations]",
    "EX": "[exposure]",
    "SV": "[visits]",
}
_NO_DOMAIN = re.compile(r"^no (\w+) domain: (.*)$", re.DOTALL)
_NO_BLINDING = re.compile(r"^ts\.csv: no TBLIND parameter: (.*)$", re.DOTALL)


def _in_mapping_words(warning: str, mapping: Mapping) -> str:
    """An SDTM import warning said as what the mapping file lacks: the person who wrote the
    mapping never saw the SDTM datasets it became."""
    missing = _NO_DOMAIN.match(warning)
    if missing and missing[1] in _TABLE_OF_DOMAIN:
        return f"{mapping.file} has no {_TABLE_OF_DOMAIN[missing[1]]}: {missing[2]}"
    unblinded = _NO_BLINDING.match(warning)
    if unblinded:
        return (
            f'{mapping.file}: [study] has no blinding (e.g. blinding = "NONE" for open label): '
            f"{unblinded[1]}"
        )
    return warning


def mapping_effect(export: Export, mapping: Mapping) -> MappingEffect:
    """What the mapping reads from the export and how (checked first: a missing field is fatal)."""
    check_fields(export, mapping)
    named = mapping.fields_named()
    options = checkbox_options(export.fields)
    # A checkbox whose options are mapped is used, not ignored.
    used_names = {options.get(name, name) for name, _ in named}
    decoded = tuple(
        (name, code, label)
        for name, _use in named
        if name in export.fields or name in options
        for code, label in (
            export.fields[name].choices if name in export.fields else CHECKBOX_LABELS
        ).items()
    )
    bookkeeping = {export.record_id_field}
    ignored = tuple(
        name
        for name, definition in export.fields.items()
        if name not in used_names
        and name not in bookkeeping
        and not definition.identifier
        and name not in export.dropped
        and not name.endswith("_complete")
        and definition.field_type not in ("descriptive",)
    )
    return MappingEffect(
        used=tuple(dict.fromkeys(named)),
        ignored=ignored,
        decoded=tuple(dict.fromkeys(decoded)),
        dropped=export.dropped,
        subjects=len({r.record_id for r in export.records}),
        records=len(export.records),
    )
