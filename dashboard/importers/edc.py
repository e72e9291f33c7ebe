"""An EDC export as read, before any mapping: the project's fields and its records (issue #23).

REDCap (data dictionary + records CSV), CDISC ODM 1.3 XML (REDCap's and OpenClinica's export,
``importers.odm``) and a plain spreadsheet (``importers.table``) are each read into one ``Export``:

- ``fields``: every field the project defines: its instrument (form), type, label, choices
  (code -> label) and whether it identifies a person;
- ``records``: one ``Record`` per record, event and repeat instance, values as stored (choice
  codes, not labels), with where it was read (file and row) for messages.

Identifying fields (REDCap's "Identifier? y", ODM's ``redcap:Identifier``, or a name that says it
holds a name, initials, a birth date, an address, a phone number or an e-mail) are dropped here,
with a warning naming the field only, never its values: they are never stored, never shown.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dashboard.importers.csvfile import csv_records, read_text
from dashboard.importers.errors import fail
from dashboard.importers.readers import sha256_of

# REDCap's data dictionary columns (the export's headings), by what is read from them.
DICTIONARY_COLUMNS = {
    "name": "Variable / Field Name",
    "form": "Form Name",
    "type": "Field Type",
    "label": "Field Label",
    "choices": "Choices, Calculations, OR Slider Labels",
    "validation": "Text Validation Type OR Show Slider Number",
    "identifier": "Identifier?",
}
# The same columns as the API's metadata export and PyCap name them.
API_DICTIONARY_COLUMNS = {
    "name": "field_name",
    "form": "form_name",
    "type": "field_type",
    "label": "field_label",
    "choices": "select_choices_or_calculations",
    "validation": "text_validation_type_or_show_slider_number",
    "identifier": "identifier",
}
# Field types whose values are choice codes, and the codes REDCap gives the fixed ones.
CHOICE_TYPES = {"radio", "dropdown", "yesno", "truefalse", "checkbox"}
_FIXED_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
# Columns of a records export that are REDCap's own, not the project's fields.
RECORD_ID_DEFAULT = "record_id"
EVENT = "redcap_event_name"
REPEAT_INSTRUMENT = "redcap_repeat_instrument"
REPEAT_INSTANCE = "redcap_repeat_instance"
DATA_ACCESS_GROUP = "redcap_data_access_group"
SURVEY_COLUMNS = re.compile(r"^redcap_survey_identifier$|_timestamp$|^redcap_")
_COMPLETE = re.compile(r"_complete$")
_CHECKBOX = re.compile(r"^(.+)___(.+)$")
# A field named for what identifies a person (matched on the name upper-cased without "_", "-"
# and spaces): names and initials, birth dates, addresses, phones, e-mails, record numbers.
_IDENTIFYING_NAME = re.compile(
    r"^(?:(?:SUBJ|SUBJECT|PAT|PATIENT|PT|FULL|FIRST|LAST|SUR|GIVEN|MIDDLE|MAIDEN|FAMILY)?NAMES?|"
    r"(?:SUBJ|SUBJECT|PAT|PATIENT|PT)?INITIALS?|FNAME|LNAME|DOB|DATEOFBIRTH|BIRTHDATE|BIRTHDAY|"
    r"BRTHDTC|E?MAIL|EMAILADDRESS|(?:HOME|STREET|POSTAL)?ADDRESS\d?|STREET|CITY|ZIP|ZIPCODE|"
    r"POSTCODE|POSTALCODE|(?:MOBILE|CELL|HOME|WORK)?PHONE(?:NUMBER)?|TELEPHONE|MOBILE|MRN|"
    r"MEDICALRECORDNUMBER|SSN|NATIONALID|PASSPORT)$"
)


def looks_identifying(name: str) -> bool:
    """Whether a field's name says it holds a person's identity (dropped even where unmarked)."""
    return bool(_IDENTIFYING_NAME.match(re.sub(r"[_\-\s]", "", name).upper()))


@dataclass(frozen=True)
class FieldDef:
    """One field of the project, as its data dictionary (or ODM metadata) defines it."""

    name: str
    form: str
    field_type: str  # REDCap's: text, radio, dropdown, yesno, truefalse, checkbox, calc, notes ...
    label: str = ""
    choices: dict[str, str] = field(default_factory=dict)  # code -> label, in the project's order
    validation: str | None = None  # date_ymd, datetime_ymd, integer, number ...
    identifier: bool = False

    def decode(self, value: str) -> str:
        """The label of a choice code; other values as they are."""
        return self.choices.get(value, value)


# What a checkbox option's column holds, as REDCap's labelled export writes it.
CHECKBOX_LABELS = {"1": "Checked", "0": "Unchecked"}


def checkbox_column(name: str, code: str) -> str:
    """The column of a checkbox option, as REDCap names it (``symptoms___1``; a code lower-cased,
    other characters than letters, digits and "_" as "_")."""
    return f"{name}___{re.sub(r'[^a-z0-9_]', '_', code.lower())}"


def checkbox_options(fields: dict[str, "FieldDef"]) -> dict[str, str]:
    """Every checkbox option's column, and the checkbox field it is an option of."""
    return {
        checkbox_column(f.name, code): f.name
        for f in fields.values()
        if f.field_type == "checkbox"
        for code in f.choices
    }


@dataclass(frozen=True)
class Record:
    """One row of the records: a record at one event and, for a repeating instrument, one
    instance. ``values`` holds the non-empty values only, by field name."""

    record_id: str
    values: dict[str, str]
    where: str  # "records.csv row 12", "odm.xml subject '01-001', event 'v1_arm_1'" (messages)
    event: str | None = None
    instrument: str | None = None  # the repeating instrument, None for a record's own row
    instance: int | None = None
    group: str | None = None  # REDCap data access group
    file: str = ""  # the file read (its label), for a problem's place
    row: int | None = None  # its row in a table file; None where the file has no rows (ODM)


@dataclass
class Export:
    """A project's fields and records, identifying fields dropped."""

    fields: dict[str, FieldDef]
    records: list[Record]
    sources: list[dict[str, object]]  # file, kind, sha256, records: stored on the data cut
    record_id_field: str
    warnings: list[str] = field(default_factory=list)
    dropped: tuple[str, ...] = ()  # identifying fields dropped
    unknown_columns: tuple[str, ...] = ()  # record columns the dictionary does not define
    has_dictionary: bool = True  # a spreadsheet has none: values are taken as written
    format_name: str = "REDCap"

    def events(self) -> list[str]:
        seen: dict[str, None] = {}
        for record in self.records:
            if record.event:
                seen.setdefault(record.event, None)
        return list(seen)


def source(path: Path, kind: str, records: int, label: str | None = None) -> dict[str, object]:
    return {
        "file": label or path.name,
        "kind": kind,
        "sha256": sha256_of(path),
        "records": records,
    }


# -- REDCap: data dictionary and records (CSV) -----------------------------------------------------


def parse_choices(text: str, *, label: str, row: int, column: str) -> dict[str, str]:
    """REDCap's choices cell, ``1, Female | 2, Male``, as code -> label; fatal where a choice has
    no code."""
    choices: dict[str, str] = {}
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        code, comma, name = part.partition(",")
        if not comma or not code.strip():
            raise fail(
                f"choice {part!r} has no code: write choices as '1, Label | 2, Label'",
                file=label,
                row=row,
                column=column,
            )
        choices[code.strip()] = name.strip()
    return choices


def _dictionary_header(header: list[str], label: str) -> dict[str, int]:
    positions = {heading.strip(): i for i, heading in enumerate(header)}
    found: dict[str, int] = {}
    for key, heading in DICTIONARY_COLUMNS.items():
        if heading in positions:
            found[key] = positions[heading]
        elif API_DICTIONARY_COLUMNS[key] in positions:
            found[key] = positions[API_DICTIONARY_COLUMNS[key]]
    for key in ("name", "form", "type"):
        if key not in found:
            raise fail(
                f"has no column {DICTIONARY_COLUMNS[key]!r}: is this a REDCap data dictionary "
                "(Project Setup > Data Dictionary > Download)?",
                file=label,
                row=1,
            )
    return found


def read_dictionary(path: Path, *, label: str | None = None) -> tuple[dict[str, FieldDef], str]:
    """A REDCap data dictionary: its fields (in order) and the record id field (the first)."""
    label = label or path.name
    rows = csv_records(read_text(path, label), label)
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise fail("is empty: a data dictionary starts with REDCap's header row", file=label)
    columns = _dictionary_header(rows[0], label)
    # Messages name a column as the file heads it (the download's or the API's heading).
    heading = {key: rows[0][position].strip() for key, position in columns.items()}
    fields: dict[str, FieldDef] = {}
    for row, record in enumerate(rows[1:], start=2):

        def cell(key: str, record: list[str] = record) -> str:
            position = columns.get(key)
            return (
                record[position].strip() if position is not None and position < len(record) else ""
            )

        name = cell("name")
        if not name:
            raise fail("the field has no name", file=label, row=row, column=heading["name"])
        if name in fields:
            raise fail(
                f"field {name!r} is defined twice",
                file=label,
                row=row,
                column=heading["name"],
            )
        field_type = cell("type").lower()
        choices: dict[str, str] = {}
        if field_type in _FIXED_CHOICES:
            choices = dict(_FIXED_CHOICES[field_type])
        elif field_type in CHOICE_TYPES:
            choices = parse_choices(
                cell("choices"),
                label=label,
                row=row,
                column=heading.get("choices", DICTIONARY_COLUMNS["choices"]),
            )
        fields[name] = FieldDef(
            name=name,
            form=cell("form"),
            field_type=field_type,
            label=cell("label"),
            choices=choices,
            validation=cell("validation") or None,
            identifier=cell("identifier").lower() in ("y", "yes"),
        )
    if not fields:
        raise fail("defines no field", file=label)
    return fields, next(iter(fields))


def _instance(text: str, *, label: str, row: int) -> int:
    text = text.strip()
    if not text.isdigit() or int(text) < 1:
        raise fail(
            f"{REPEAT_INSTANCE} {text!r} is not a whole number of 1 or more",
            file=label,
            row=row,
            column=REPEAT_INSTANCE,
        )
    return int(text)


def records_from_rows(
    rows: list[list[str]],
    *,
    label: str,
    record_id_field: str,
    first_row: int = 1,
) -> tuple[list[str], list[Record]]:
    """Records from a table in REDCap's records layout (header first): one ``Record`` per row.
    Fatal: no record id column, an empty record id, a repeating instrument without its instance
    number, the same record, event, instrument and instance twice."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise fail(
            f"is empty: the records start with a header row naming {record_id_field}", file=label
        )
    header = [h.strip() for h in rows[0]]
    if record_id_field not in header:
        raise fail(
            f"has no column {record_id_field!r}, the record id (the first field of the project)",
            file=label,
            row=first_row,
        )
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:
        raise fail(f"column {repeated[0]!r} appears twice", file=label, row=first_row)
    position = {h: i for i, h in enumerate(header)}
    records: list[Record] = []
    seen: dict[tuple[str, str | None, str | None, int | None], int] = {}
    for offset, cells in enumerate(rows[1:], start=1):
        row = first_row + offset
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header) :]):
            raise fail(f"has {len(cells)} cells, the header {len(header)}", file=label, row=row)
        values = {
            name: cells[i].strip()
            for name, i in position.items()
            if name and i < len(cells) and cells[i].strip()
        }
        record_id = values.pop(record_id_field, "")
        if not record_id:
            raise fail("the record id is empty", file=label, row=row, column=record_id_field)
        event = values.pop(EVENT, None)
        instrument = values.pop(REPEAT_INSTRUMENT, None)
        instance_text = values.pop(REPEAT_INSTANCE, None)
        group = values.pop(DATA_ACCESS_GROUP, None)
        instance = None
        if instance_text is not None:
            instance = _instance(instance_text, label=label, row=row)
        if instrument is not None and instance is None:
            raise fail(
                f"a row of the repeating instrument {instrument!r} without its instance number "
                f"({REPEAT_INSTANCE} is empty): export the records with their repeat instances",
                file=label,
                row=row,
                column=REPEAT_INSTANCE,
            )
        key = (record_id, event, instrument, instance)
        if key in seen:
            raise fail(
                f"record {record_id!r}"
                + (f", event {event!r}" if event else "")
                + (f", {instrument} instance {instance}" if instrument else "")
                + f" is repeated (row {seen[key]} has it too)"
                + (
                    ""
                    if REPEAT_INSTANCE in position
                    else f"; rows of a repeating instrument need their instance number: export "
                    f"the records with {REPEAT_INSTRUMENT} and {REPEAT_INSTANCE}"
                ),
                file=label,
                row=row,
            )
        seen[key] = row
        records.append(
            Record(
                record_id=record_id,
                values=values,
                where=f"{label} row {row}",
                event=event,
                instrument=instrument,
                instance=instance,
                group=group,
                file=label,
                row=row,
            )
        )
    return header, records


def _is_bookkeeping(column: str, record_id_field: str) -> bool:
    return (
        column == record_id_field
        or column in (EVENT, REPEAT_INSTRUMENT, REPEAT_INSTANCE, DATA_ACCESS_GROUP)
        or bool(_COMPLETE.search(column))
        or bool(SURVEY_COLUMNS.match(column))
    )


def drop_identifying(
    fields: dict[str, FieldDef], records: list[Record], columns: Iterable[str], warnings: list[str]
) -> tuple[list[Record], tuple[str, ...]]:
    """Drop the fields marked or named as identifying from the records, with one warning that
    names them (never their values)."""

    # A checkbox's options are columns of their own (``field___1``): judged by their field.
    def base(name: str) -> str:
        return _CHECKBOX.sub(r"\1", name)

    dropped = sorted(
        {
            base(name)
            for name in columns
            if (base(name) in fields and fields[base(name)].identifier)
            or looks_identifying(base(name))
        }
    )
    if not dropped:
        return records, ()
    gone = set(dropped)
    warnings.append(
        f"identifying field{'s' if len(dropped) > 1 else ''} {', '.join(dropped)} dropped: "
        "not read, not stored"
    )
    kept = [
        replace(r, values={k: v for k, v in r.values.items() if base(k) not in gone})
        for r in records
    ]
    return kept, tuple(dropped)


def _whose(record: Record) -> str:
    """A record named by its subject, event and instance (for a file without rows)."""
    return (
        f"subject {record.record_id!r}"
        + (f", event {record.event!r}" if record.event else "")
        + (f", {record.instrument} instance {record.instance}" if record.instrument else "")
        + (f", instance {record.instance}" if record.instance and not record.instrument else "")
    )


def check_choices(fields: dict[str, FieldDef], records: list[Record]) -> None:
    """Fatal: a value of a choice field that is not one of its codes (the records and the
    dictionary are of different versions of the project)."""
    for record in records:
        for name, value in record.values.items():
            definition = fields.get(name)
            if definition is None or not definition.choices or definition.field_type == "checkbox":
                continue
            if value not in definition.choices:
                codes = ", ".join(f"{c} ({label})" for c, label in definition.choices.items())
                if record.row is None:
                    # A record of an ODM file has no row: the message says whose value it is.
                    raise fail(
                        f"{_whose(record)}: {value!r} is not a choice of field {name!r} in the "
                        f"file's metadata (its choices are {codes})",
                        file=record.file or None,
                        column=name,
                    )
                raise fail(
                    f"{value!r} is not a choice of field {name!r} in the data dictionary "
                    f"(its choices are {codes}): export the records and the dictionary of the "
                    "same project version",
                    file=record.file,
                    row=record.row,
                    column=name,
                )


def read_redcap(
    records_path: Path,
    dictionary_path: Path,
    *,
    records_label: str | None = None,
    dictionary_label: str | None = None,
) -> Export:
    """A REDCap project from its data dictionary and its records export ("CSV / Microsoft Excel
    (raw data)"). Raises ImportFailure on a fatal problem; touches no database."""
    fields, record_id_field = read_dictionary(dictionary_path, label=dictionary_label)
    label = records_label or records_path.name
    rows = csv_records(read_text(records_path, label), label)
    header, records = records_from_rows(rows, label=label, record_id_field=record_id_field)
    warnings: list[str] = []
    unknown = [
        column
        for column in header
        if column
        and not _is_bookkeeping(column, record_id_field)
        and column not in fields
        and not (_CHECKBOX.match(column) and _CHECKBOX.sub(r"\1", column) in fields)
    ]
    records, dropped = drop_identifying(fields, records, [*fields, *header], warnings)
    if unknown:
        warnings.append(
            f"{label}: column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not in the "
            "data dictionary: not read"
        )
        unknown_set = set(unknown)
        for record in records:
            for column in unknown_set & set(record.values):
                del record.values[column]
    check_choices(fields, records)
    return Export(
        fields=fields,
        records=records,
        sources=[
            source(dictionary_path, "REDCap data dictionary", len(fields), dictionary_label),
            source(records_path, "REDCap records", len(records), records_label),
        ],
        record_id_field=record_id_field,
        warnings=warnings,
        dropped=dropped,
        unknown_columns=tuple(unknown),
    )


def iso_date_text(value: str) -> str:
    """A REDCap date or date-time as ISO 8601 text (``2025-01-02 10:30`` -> ``2025-01-02T10:30``);
    other text unchanged (the SDTM rules then judge it)."""
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", value):
        return value.replace(" ", "T")
    return value
