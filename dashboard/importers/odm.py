"""CDISC ODM 1.3 XML, as REDCap ("CDISC ODM (XML)", metadata and data) and OpenClinica 3 export it,
read into an ``Export`` (``importers.edc``) and written from one.

Reading: the fields come from the file's MetaDataVersion, the records from its ClinicalData, with
the rules of a REDCap CSV export (``edc.read_redcap``): identifying fields dropped, choice codes
checked against their CodeList. REDCap's attributes (namespace ``https://projectredcap.org``) give
the names and types its data dictionary uses; without them (OpenClinica) the type is derived from
the ODM DataType and the field is named by the ItemDef's Name.

What REDCap's export looks like, and is read as such:

- every FormData has a FormRepeatKey ("1" for a form that does not repeat) and every ItemGroupData
  an ItemGroupRepeatKey "1": a form repeats where the metadata says so (``Repeating="Yes"``, or
  REDCap's ``redcap:RepeatingInstrument`` in GlobalVariables, whose FormDefs all say "No");
- a classic (non-longitudinal) project has no StudyEventDef and no StudyEventData: its FormData sit
  in the SubjectData; a file of one StudyEventDef without ``redcap:UniqueEventName`` is read the
  same way (event None);
- the record id is an ItemData of the record's first form, and the data access group an ItemData
  ``redcap_data_access_group`` (``redcap:DataAccessGroup`` on SubjectData and OpenClinica's SiteRef
  are read too);
- a checkbox is one ItemDef per option (``symptoms___1``, ``redcap:Variable="symptoms"``, its
  choices in ``redcap:CheckboxChoices``): read as one checkbox field, as the data dictionary defines
  it, whose values are stored under the option names, as in the CSV;
- REDCap's internal type names (``select``, ``textarea``; validation ``int``, ``float``) are read as
  its data dictionary names them (``dropdown``, ``notes``; ``integer``, ``number``).

The file is parsed without resolving entities or fetching anything (``no_network``), and a file
too deep or too large for lxml's default limits (``huge_tree=False``) is refused as malformed.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from dashboard.importers.csvfile import read_file
from dashboard.importers.edc import (
    _CHECKBOX,
    _COMPLETE,
    _FIXED_CHOICES,
    DATA_ACCESS_GROUP,
    Export,
    FieldDef,
    Record,
    check_choices,
    checkbox_column,
    drop_identifying,
    source,
)
from dashboard.importers.errors import fail

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
REDCAP_NS = "https://projectredcap.org"
SOURCE_KIND = "CDISC ODM 1.3"
# lxml ships no type stubs: its elements are typed as Any here.
Element = Any

# REDCap's internal names in ODM (redcap:FieldType, redcap:TextValidationType) -> its data
# dictionary's names, which the rest of the import uses.
_FIELD_TYPE_FROM_REDCAP = {"select": "dropdown", "textarea": "notes"}
_VALIDATION_FROM_REDCAP = {"int": "integer", "float": "number"}
_FIELD_TYPE_TO_REDCAP = {v: k for k, v in _FIELD_TYPE_FROM_REDCAP.items()}
_VALIDATION_TO_REDCAP = {v: k for k, v in _VALIDATION_FROM_REDCAP.items()}
# REDCap's survey identifier: its own item, not a project's field (as are the survey timestamps and
# the data access group, read as the record's group).
_SURVEY_IDENTIFIER = "redcap_survey_identifier"
# The event REDCap names a classic project's repeating instruments by (it has no StudyEventDef).
_CLASSIC_EVENT = "event_1_arm_1"
# The event written for records that have none (read back as no event).
_DEFAULT_EVENT = "Event_1"
_FORM_STATUS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
_LXML_PLACE = re.compile(r",? line \d+, column \d+$")


def _odm(tag: str) -> str:
    return f"{{{ODM_NS}}}{tag}"


def _redcap(name: str) -> str:
    return f"{{{REDCAP_NS}}}{name}"


def _line(element: Element) -> str:
    """An element's place for a message, ' (line 12)', where lxml knows its line."""
    line = element.sourceline
    return f" (line {line})" if line else ""


def _again(element: Element, first: int) -> str:
    """The places of something given twice, ' (line 30; line 24 has it too)'."""
    if not element.sourceline or not first:
        return ""
    return f" (line {element.sourceline}; line {first} has it too)"


def _text(element: Element | None) -> str:
    """The text of an element's first TranslatedText (a Question, a Decode), stripped."""
    if element is None:
        return ""
    translated = element.find(_odm("TranslatedText"))
    if translated is None or translated.text is None:
        return ""
    return str(translated.text).strip()


# -- reading: the file -----------------------------------------------------------------------------


def _parse(path: Path, label: str) -> Element:
    data = read_file(path, label, kind="an ODM XML file")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        # lxml's message ends with its place ("..., line 3, column 5"): said once, first.
        message = _LXML_PLACE.sub("", str(error.msg or error)).strip()
        line = f" (line {error.lineno})" if error.lineno else ""
        raise fail(f"is not well-formed XML{line}: {message}", file=label) from None
    if root.tag != _odm("ODM"):
        name = etree.QName(root)
        found = (
            f"{name.localname} in the namespace {name.namespace}"
            if name.namespace
            else f"{name.localname} without a namespace"
        )
        raise fail(
            f"is not a CDISC ODM 1.3 file: its root element is {found}, not ODM in the namespace "
            f"{ODM_NS}",
            file=label,
        )
    return root


# -- reading: the metadata -------------------------------------------------------------------------


@dataclass
class _Metadata:
    """What the MetaDataVersion (and REDCap's GlobalVariables) say about the data."""

    fields: dict[str, FieldDef]
    item_names: dict[str, str]  # ItemOID -> the name its values are stored under
    bookkeeping: dict[str, str]  # ItemOID -> REDCap's own item (group, survey identifier ...)
    forms: dict[str, str]  # FormOID -> form name
    repeating_forms: set[str]  # FormOIDs declared Repeating="Yes"
    repeating_in_event: set[tuple[str, str]]  # (unique event name, form name): REDCap's
    events: dict[str, str | None]  # StudyEventOID -> event name; None in a classic project
    repeating_events: set[str]  # StudyEventOIDs
    repeating_groups: set[str]  # ItemGroupOIDs declared Repeating="Yes" (OpenClinica's tables)
    record_id_field: str
    record_id_declared: bool  # REDCap names it (redcap:RecordIdField)
    classic: bool
    warnings: list[str] = field(default_factory=list)

    def form_repeats(self, form_oid: str, event_oid: str | None) -> bool:
        if form_oid in self.repeating_forms:
            return True
        form = self.forms[form_oid]
        if self.classic or event_oid is None:
            return any(name == form for _, name in self.repeating_in_event)
        return (self.events[event_oid] or "", form) in self.repeating_in_event


def _code_lists(metadata: Element, label: str) -> dict[str, tuple[dict[str, str], Element]]:
    lists: dict[str, tuple[dict[str, str], Element]] = {}
    for code_list in metadata.iterfind(_odm("CodeList")):
        choices: dict[str, str] = {}
        for item in code_list:
            if item.tag == _odm("CodeListItem"):
                choices[str(item.get("CodedValue", "")).strip()] = _text(item.find(_odm("Decode")))
            elif item.tag == _odm("EnumeratedItem"):  # a code without a label
                code = str(item.get("CodedValue", "")).strip()
                choices[code] = code
        oid = code_list.get("OID")
        if oid is None:
            raise fail(f"a CodeList has no OID{_line(code_list)}", file=label)
        lists[str(oid)] = (choices, code_list)
    return lists


def _parse_checkbox_choices(text: str) -> dict[str, str]:
    """REDCap's ``redcap:CheckboxChoices`` ("1, Headache | 2, Fever") as code -> label."""
    choices: dict[str, str] = {}
    for part in text.split("|"):
        code, _, name = part.partition(",")
        if code.strip():
            choices[code.strip()] = name.strip()
    return choices


def _derived_type(item: Element, has_code_list: bool) -> tuple[str, str | None]:
    """The field type and validation of an ItemDef REDCap did not type (OpenClinica's)."""
    if has_code_list:
        return "radio", None
    data_type = item.get("DataType")
    return {
        "date": ("text", "date_ymd"),
        "datetime": ("text", "datetime_ymd"),
        "integer": ("text", "integer"),
        "float": ("text", "number"),
    }.get(str(data_type), ("text", None))


def _is_bookkeeping(variable: str | None, redcap_type: str | None) -> bool:
    """REDCap's own items: the data access group, the survey identifier and the survey
    timestamps (``<form>_timestamp``, the only ones REDCap gives no field type)."""
    if variable in (DATA_ACCESS_GROUP, _SURVEY_IDENTIFIER):
        return True
    return variable is not None and redcap_type is None and variable.endswith("_timestamp")


def _read_metadata(root: Element, label: str) -> _Metadata:
    study = root.find(_odm("Study"))
    metadata = study.find(_odm("MetaDataVersion")) if study is not None else None
    if metadata is None:
        raise fail(
            "has no Study/MetaDataVersion, the project's fields: export the metadata with the "
            "data (REDCap: CDISC ODM (XML) with the project's metadata)",
            file=label,
        )
    code_lists = _code_lists(metadata, label)

    # The form of each item: the FormDef that refers to the ItemGroup that refers to it.
    groups = {str(g.get("OID")): g for g in metadata.iterfind(_odm("ItemGroupDef"))}
    forms: dict[str, str] = {}
    repeating_forms: set[str] = set()
    item_form: dict[str, str] = {}
    first_item: str | None = None
    for form in metadata.iterfind(_odm("FormDef")):
        oid = str(form.get("OID"))
        name = str(form.get(_redcap("FormName")) or form.get("Name") or oid)
        forms[oid] = name
        if form.get("Repeating") == "Yes":
            repeating_forms.add(oid)
        for group_ref in form.iterfind(_odm("ItemGroupRef")):
            group = groups.get(str(group_ref.get("ItemGroupOID")))
            if group is None:
                continue
            for item_ref in group.iterfind(_odm("ItemRef")):
                item_oid = str(item_ref.get("ItemOID"))
                item_form.setdefault(item_oid, name)
                if first_item is None:
                    first_item = item_oid
    repeating_groups = {oid for oid, g in groups.items() if g.get("Repeating") == "Yes"}

    fields: dict[str, FieldDef] = {}
    item_names: dict[str, str] = {}
    bookkeeping: dict[str, str] = {}
    named_by: dict[str, str] = {}  # field name -> the ItemOID it was first read from
    warnings: list[str] = []
    for item in metadata.iterfind(_odm("ItemDef")):
        oid = item.get("OID")
        if oid is None:
            raise fail(f"an ItemDef has no OID{_line(item)}", file=label)
        oid = str(oid)
        if oid in item_names or oid in bookkeeping:
            raise fail(f"ItemDef {oid!r} is defined twice{_line(item)}", file=label)
        variable = item.get(_redcap("Variable"))
        redcap_type = item.get(_redcap("FieldType"))
        if _is_bookkeeping(variable, redcap_type):
            bookkeeping[oid] = str(variable)
            continue
        column = str(item.get("Name") or oid)
        name = str(variable or column)
        code_list_ref = item.find(_odm("CodeListRef"))
        code_list: tuple[dict[str, str], Element] | None = None
        if code_list_ref is not None:
            code_list = code_lists.get(str(code_list_ref.get("CodeListOID")))
            if code_list is None:
                raise fail(
                    f"ItemDef {oid!r} refers to CodeList {code_list_ref.get('CodeListOID')!r}, "
                    f"which the metadata does not define{_line(code_list_ref)}",
                    file=label,
                )
        if redcap_type == "checkbox":
            # One ItemDef per option, all of the same redcap:Variable: one field, as REDCap's
            # data dictionary defines it; the values are stored under the option names.
            item_names[oid] = column
            listed = code_list[1].get(_redcap("CheckboxChoices")) if code_list else None
            option = _CHECKBOX.match(column) if column != name else None
            code = option.group(2) if option else None
            existing = fields.get(name)
            if existing is not None and existing.field_type == "checkbox":
                if not listed and code is not None and code not in existing.choices:
                    # No list of the choices: each option's code, as its own label.
                    fields[name] = replace(existing, choices={**existing.choices, code: code})
                continue
            if listed:
                choices = _parse_checkbox_choices(str(listed))
            else:
                choices = {code: code} if code is not None else {}
        else:
            choices = dict(code_list[0]) if code_list is not None else {}
        definition_name = name
        if definition_name in fields:
            # Two items of one name (OpenClinica's Names repeat across CRFs): the second is read
            # under its OID, which is unique.
            if oid in fields:
                raise fail(
                    f"items {named_by[definition_name]!r} and {oid!r} are both named "
                    f"{definition_name!r}{_line(item)}",
                    file=label,
                )
            warnings.append(
                f"{label}: items {named_by[definition_name]} and {oid} are both named "
                f"{definition_name}: the second is read under its OID, {oid}"
            )
            definition_name = oid
        if redcap_type:
            field_type = _FIELD_TYPE_FROM_REDCAP.get(str(redcap_type), str(redcap_type))
            validation_text = item.get(_redcap("TextValidationType"))
            validation = (
                _VALIDATION_FROM_REDCAP.get(str(validation_text), str(validation_text))
                if validation_text
                else None
            )
        else:
            field_type, validation = _derived_type(item, code_list is not None)
        if field_type in _FIXED_CHOICES and not choices:
            choices = dict(_FIXED_CHOICES[field_type])
        fields[definition_name] = FieldDef(
            name=definition_name,
            form=item_form.get(oid, ""),
            field_type=field_type,
            label=_text(item.find(_odm("Question"))) or str(item.get("Comment") or "").strip(),
            choices=choices,
            validation=validation,
            identifier=str(item.get(_redcap("Identifier"), "")).strip().lower() in ("y", "yes"),
        )
        named_by[definition_name] = oid
        if redcap_type != "checkbox":
            item_names[oid] = definition_name
    if not fields:
        raise fail("defines no field (its MetaDataVersion has no ItemDef)", file=label)

    declared = metadata.get(_redcap("RecordIdField"))
    if declared:
        record_id_field = str(declared)
    elif first_item is not None and first_item in item_names:
        record_id_field = item_names[first_item]
    else:
        record_id_field = next(iter(fields))

    event_defs = list(metadata.iterfind(_odm("StudyEventDef")))
    classic = not event_defs or (
        len(event_defs) == 1 and event_defs[0].get(_redcap("UniqueEventName")) is None
    )
    events: dict[str, str | None] = {}
    for event in event_defs:
        oid = str(event.get("OID"))
        events[oid] = (
            None
            if classic
            else str(event.get(_redcap("UniqueEventName")) or event.get("Name") or oid)
        )
    repeating_events = {str(e.get("OID")) for e in event_defs if e.get("Repeating") == "Yes"}

    # REDCap declares repeating instruments and events in GlobalVariables only.
    repeating_in_event: set[tuple[str, str]] = set()
    variables = study.find(_odm("GlobalVariables"))
    if variables is not None:
        for declared_form in variables.iter(_redcap("RepeatingInstrument")):
            repeating_in_event.add(
                (
                    str(declared_form.get(_redcap("UniqueEventName")) or ""),
                    str(declared_form.get(_redcap("RepeatInstrument")) or ""),
                )
            )
        for declared_event in variables.iter(_redcap("RepeatingEvent")):
            name = str(declared_event.get(_redcap("UniqueEventName")) or "")
            repeating_events |= {oid for oid, event in events.items() if event == name}

    return _Metadata(
        fields=fields,
        item_names=item_names,
        bookkeeping=bookkeeping,
        forms=forms,
        repeating_forms=repeating_forms,
        repeating_in_event=repeating_in_event,
        events=events,
        repeating_events=repeating_events,
        repeating_groups=repeating_groups,
        record_id_field=record_id_field,
        record_id_declared=bool(declared),
        classic=classic,
        warnings=warnings,
    )


# -- reading: the data -----------------------------------------------------------------------------


@dataclass
class _Unit:
    """The values read for one record: a subject at one event (and event instance), or one
    instance of a repeating form there."""

    subject: str
    event: str | None
    instrument: str | None
    instance: int | None
    values: dict[str, str] = field(default_factory=dict)


def _repeat_key(element: Element, attribute: str, label: str) -> int | None:
    """A repeat key (FormRepeatKey ...) as a number; None where absent; fatal where it is not a
    whole number of 1 or more."""
    text = element.get(attribute)
    if text is None:
        return None
    text = str(text).strip()
    if not text.isdigit() or int(text) < 1:
        raise fail(
            f"{attribute} {text!r} is not a whole number of 1 or more{_line(element)}", file=label
        )
    return int(text)


def _place(subject: str, event: str | None) -> str:
    return f"subject {subject!r}" + (f", event {event!r}" if event else "")


class _Reader:
    """The ClinicalData of one file read into units (records), in the order they first appear."""

    def __init__(self, metadata: _Metadata, label: str) -> None:
        self.metadata = metadata
        self.label = label
        self.units: dict[tuple[str, str | None, str | None, int | None], _Unit] = {}
        self.groups: dict[str, str] = {}  # subject -> data access group (or site)
        self.unknown: dict[str, None] = {}  # ItemOIDs the metadata does not define
        self.seen: dict[tuple[object, ...], int] = {}  # a FormData's key -> its line

    def subject(self, subject: Element) -> None:
        key = subject.get("SubjectKey")
        if key is None or not str(key).strip():
            raise fail(f"a SubjectData has no SubjectKey{_line(subject)}", file=self.label)
        # OpenClinica's SubjectKey is an OID (SS_101001); the study subject id people use and
        # see (101-001) is its own attribute.
        key = _openclinica_subject_id(subject) or str(key).strip()
        group = subject.get(_redcap("DataAccessGroup"))
        if group is None:
            site = subject.find(_odm("SiteRef"))
            group = site.get("LocationOID") if site is not None else None
        if group:
            self.groups.setdefault(key, str(group))
        for child in subject:
            if child.tag == _odm("StudyEventData"):
                self.event(key, child)
            elif child.tag == _odm("FormData"):  # REDCap's classic project: no event
                self.form(key, None, None, None, child)

    def event(self, subject: str, element: Element) -> None:
        oid = str(element.get("StudyEventOID"))
        if oid not in self.metadata.events:
            if self.metadata.events or not self.metadata.classic:
                raise fail(
                    f"{_place(subject, None)}: StudyEventOID {oid!r} is not defined in the "
                    f"metadata{_line(element)}",
                    file=self.label,
                )
            name = None  # a classic project's data under an event the metadata leaves out
        else:
            name = self.metadata.events[oid]
        instance = _repeat_key(element, "StudyEventRepeatKey", self.label)
        if oid in self.metadata.repeating_events:
            if instance is None:
                raise fail(
                    f"{_place(subject, name or oid)}: the repeating event has no "
                    f"StudyEventRepeatKey, its instance number{_line(element)}",
                    file=self.label,
                )
        elif instance not in (None, 1):
            raise fail(
                f"{_place(subject, name or oid)}: StudyEventRepeatKey {instance} of an event the "
                f"metadata does not declare repeating{_line(element)}",
                file=self.label,
            )
        else:
            instance = None
        for form in element.iterfind(_odm("FormData")):
            self.form(subject, oid, name, instance, form)

    def form(
        self,
        subject: str,
        event_oid: str | None,
        event: str | None,
        event_instance: int | None,
        element: Element,
    ) -> None:
        form_oid = str(element.get("FormOID"))
        place = _place(subject, event)
        if form_oid not in self.metadata.forms:
            raise fail(
                f"{place}: FormOID {form_oid!r} is not defined in the metadata{_line(element)}",
                file=self.label,
            )
        form = self.metadata.forms[form_oid]
        form_key = _repeat_key(element, "FormRepeatKey", self.label)
        repeats = self.metadata.form_repeats(form_oid, event_oid)
        if repeats and event_instance is not None:
            raise fail(
                f"{place}: the repeating instrument {form!r} in an instance of a repeating event: "
                f"a record has one instance number{_line(element)}",
                file=self.label,
            )
        if not repeats and form_key not in (None, 1):
            raise fail(
                f"{place}: FormRepeatKey {form_key} of the form {form!r}, which the metadata "
                f"does not declare repeating{_line(element)}",
                file=self.label,
            )
        key = (subject, event_oid, event_instance, form_oid, form_key if repeats else None)
        if key in self.seen:
            raise fail(
                f"{place}: the form {form!r}"
                + (f" instance {form_key}" if repeats and form_key else "")
                + f" is repeated{_again(element, self.seen[key])}",
                file=self.label,
            )
        self.seen[key] = element.sourceline or 0
        if not repeats:
            # A record's own row exists where any of its forms does, even without a value.
            main = self.unit(subject, event, None, event_instance)
        elif form_key is not None:
            main = self.unit(subject, event, form, form_key)
        else:
            main = None  # the instance is each ItemGroupData's (ItemGroupRepeatKey)
        for group in element.iterfind(_odm("ItemGroupData")):
            group_oid = str(group.get("ItemGroupOID"))
            group_key = _repeat_key(group, "ItemGroupRepeatKey", self.label)
            if main is None or (not repeats and group_oid in self.metadata.repeating_groups):
                # A repeating form without FormRepeatKey, or a repeating item group (a table
                # on a form): an instance of the form per ItemGroupRepeatKey.
                if event_instance is not None:
                    raise fail(
                        f"{place}: the repeating item group {group_oid!r} in an instance of a "
                        f"repeating event: a record has one instance number{_line(group)}",
                        file=self.label,
                    )
                if group_key is None:
                    raise fail(
                        f"{place}: a row of the repeating instrument {form!r} without its "
                        "instance number (neither FormRepeatKey nor ItemGroupRepeatKey): export "
                        f"the records with their repeat instances{_line(group)}",
                        file=self.label,
                    )
                group_seen = (*key, group_oid, group_key)
                if group_seen in self.seen:
                    raise fail(
                        f"{place}: {form} instance {group_key} is repeated"
                        f"{_again(group, self.seen[group_seen])}",
                        file=self.label,
                    )
                self.seen[group_seen] = group.sourceline or 0
                unit = self.unit(subject, event, form, group_key)
            else:
                if group_key not in (None, 1) and not repeats:
                    raise fail(
                        f"{place}: ItemGroupRepeatKey {group_key} of the item group "
                        f"{group_oid!r}, which the metadata does not declare repeating"
                        f"{_line(group)}",
                        file=self.label,
                    )
                unit = main
            self.items(unit, group)

    def unit(
        self, subject: str, event: str | None, instrument: str | None, instance: int | None
    ) -> _Unit:
        key = (subject, event, instrument, instance)
        if key not in self.units:
            self.units[key] = _Unit(subject, event, instrument, instance)
        return self.units[key]

    def items(self, unit: _Unit, group: Element) -> None:
        for item in group:
            tag = item.tag
            if not isinstance(tag, str) or not tag.startswith(_odm("ItemData")):
                continue
            if tag == _odm("ItemDataBase64Binary"):
                continue  # an uploaded file's content: not read
            oid = str(item.get("ItemOID"))
            if tag == _odm("ItemData"):
                if item.get("IsNull") == "Yes":
                    continue
                value = str(item.get("Value") or "").strip()
            else:  # ODM 1.3.1's typed ItemData (ItemDataString ...): the value is the text
                value = str(item.text or "").strip()
            if not value:
                continue
            if oid in self.metadata.bookkeeping:
                if self.metadata.bookkeeping[oid] == DATA_ACCESS_GROUP:
                    self.groups.setdefault(unit.subject, value)
                continue
            name = self.metadata.item_names.get(oid)
            if name is None:
                self.unknown.setdefault(oid, None)
                continue
            if unit.values.get(name, value) != value:
                raise fail(
                    f"{_place(unit.subject, unit.event)}: item {oid!r} has two different "
                    f"values{_line(item)}",
                    file=self.label,
                )
            unit.values[name] = value

    def records(self) -> list[Record]:
        record_id_field = self.metadata.record_id_field
        records: list[Record] = []
        for unit in self.units.values():
            values = dict(unit.values)
            # REDCap repeats the record id as an item of the record's first form.
            repeated = values.get(record_id_field)
            if repeated is not None and (
                repeated == unit.subject or self.metadata.record_id_declared
            ):
                if repeated != unit.subject:
                    raise fail(
                        f"{_place(unit.subject, unit.event)}: the record id field "
                        f"{record_id_field!r} holds another record id than the SubjectKey",
                        file=self.label,
                    )
                del values[record_id_field]
            where = f"{self.label} {_place(unit.subject, unit.event)}"
            if unit.instrument:
                where += f", {unit.instrument} instance {unit.instance}"
            elif unit.instance is not None:
                where += f", instance {unit.instance}"
            records.append(
                Record(
                    record_id=unit.subject,
                    values=values,
                    where=where,
                    event=unit.event,
                    instrument=unit.instrument,
                    instance=unit.instance,
                    group=self.groups.get(unit.subject),
                    file=self.label,
                )
            )
        return records


def read_odm(path: Path, *, label: str | None = None) -> Export:
    """A project from a CDISC ODM 1.3 file holding its metadata and its data (REDCap's CDISC ODM
    export, OpenClinica 3's ODM 1.3 extract). Raises ImportFailure on a fatal problem; touches no
    database."""
    label = label or path.name
    root = _parse(path, label)
    metadata = _read_metadata(root, label)
    reader = _Reader(metadata, label)
    for clinical in root.iterfind(_odm("ClinicalData")):
        for subject in clinical.iterfind(_odm("SubjectData")):
            reader.subject(subject)
    records = reader.records()
    fields = metadata.fields
    warnings = list(metadata.warnings)
    columns = dict.fromkeys([*fields, *(name for r in records for name in r.values)])
    records, dropped = drop_identifying(fields, records, columns, warnings)
    unknown = list(reader.unknown)
    if unknown:
        warnings.append(
            f"{label}: item{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not in the "
            "file's metadata: not read"
        )
    check_choices(fields, records)
    return Export(
        fields=fields,
        records=records,
        sources=[source(path, SOURCE_KIND, len(records), label)],
        record_id_field=metadata.record_id_field,
        warnings=warnings,
        dropped=dropped,
        unknown_columns=tuple(unknown),
        format_name="ODM",
    )


def _openclinica_subject_id(subject: Element) -> str | None:
    """OpenClinica's ``StudySubjectID`` attribute (any version of its extension namespace)."""
    for name, value in subject.attrib.items():
        if (
            isinstance(name, str)
            and name.endswith("}StudySubjectID")
            and "openclinica" in name.lower()
            and str(value).strip()
        ):
            return str(value).strip()
    return None


# -- writing ---------------------------------------------------------------------------------------


def _data_type(definition: FieldDef) -> str:
    """The ODM DataType of a field, as REDCap gives it."""
    if definition.field_type in ("yesno", "truefalse", "checkbox"):
        return "boolean"
    if definition.field_type == "calc":
        return "float"
    if definition.field_type == "slider":
        return "integer"
    validation = definition.validation or ""
    if definition.field_type != "text":
        return "text"
    if validation.startswith("date_"):
        return "date"
    if validation.startswith("datetime"):
        return "datetime"
    if validation == "integer":
        return "integer"
    if validation.startswith("number"):
        return "float"
    return "text"


@dataclass
class _Item:
    """One ItemDef to write: a field, or one option of a checkbox field."""

    column: str  # the OID and Name, and the key of its values
    definition: FieldDef
    choices: dict[str, str]  # its CodeList
    checkbox_choices: str | None = None  # redcap:CheckboxChoices


def _items(export: Export) -> tuple[dict[str, _Item], dict[str, list[str]]]:
    """The items to write, by column, and the columns of each form, in order."""
    items: dict[str, _Item] = {}
    fields = dict(export.fields)
    if export.record_id_field not in fields:
        first_form = next((f.form for f in fields.values()), "form_1")
        fields = {
            export.record_id_field: FieldDef(export.record_id_field, first_form, "text"),
            **fields,
        }
    for definition in fields.values():
        if definition.field_type == "checkbox":
            listed = " | ".join(f"{code}, {label}" for code, label in definition.choices.items())
            for code in definition.choices or {definition.name: ""}:
                column = (
                    checkbox_column(definition.name, code)
                    if definition.choices
                    else definition.name
                )
                items[column] = _Item(
                    column, definition, {"1": "Checked", "0": "Unchecked"}, listed
                )
        else:
            items[definition.name] = _Item(definition.name, definition, dict(definition.choices))
    # Values the fields do not define: a checkbox option named otherwise, REDCap's form status.
    for record in export.records:
        for name in record.values:
            if name in items:
                continue
            option = _CHECKBOX.match(name)
            base = fields.get(option.group(1)) if option else None
            if base is not None and base.field_type == "checkbox":
                first = next(i for i in items.values() if i.definition is base)
                items[name] = _Item(name, base, first.choices, first.checkbox_choices)
            elif _COMPLETE.search(name):
                form = _COMPLETE.sub("", name)
                status = FieldDef(name, form, "dropdown", "Complete?", dict(_FORM_STATUS))
                items[name] = _Item(name, status, dict(_FORM_STATUS))
            else:
                raise ValueError(
                    f"{record.where}: a value of {name!r}, which the export's fields do not define"
                )
    forms: dict[str, list[str]] = {}
    for column, item in items.items():
        forms.setdefault(item.definition.form, []).append(column)
    # REDCap puts a form's status last.
    for columns in forms.values():
        columns.sort(key=lambda c: bool(_COMPLETE.search(c)) and c not in fields)
    return items, forms


def _sub(parent: Element, tag: str, attributes: dict[str, str] | None = None) -> Element:
    return etree.SubElement(parent, tag, attributes or {})


def _translated(parent: Element, tag: str, text: str) -> None:
    _sub(_sub(parent, _odm(tag)), _odm("TranslatedText")).text = text


def write_odm(
    export: Export,
    path: Path,
    *,
    study_oid: str,
    study_name: str,
    created: dt.datetime | None = None,
) -> None:
    """Write a project's fields and records as REDCap writes its CDISC ODM export (metadata and
    data, ODM 1.3.1 with REDCap's attributes), identifying fields and their values included:
    ``read_odm`` reads it back to the same fields and records, identifying values dropped. The
    records keep their order where they are grouped by record and event, as REDCap exports them.
    Raises ValueError for records the format cannot hold."""
    items, forms = _items(export)
    records = export.records
    with_event = [r for r in records if r.event]
    if with_event and len(with_event) != len(records):
        raise ValueError("some records have an event and some none: a project has events or not")
    events = list(dict.fromkeys(r.event for r in with_event if r.event)) or [_DEFAULT_EVENT]
    named_events = bool(with_event)
    repeating_events = {
        r.event or _DEFAULT_EVENT for r in records if r.instance and not r.instrument
    }
    for record in records:
        if (record.event or _DEFAULT_EVENT) in repeating_events and record.instance is None:
            raise ValueError(f"{record.where}: a row without an instance in a repeating event")
    # Where each form repeats; a form repeating wherever it has data is Repeating="Yes".
    repeating = {(r.event or _CLASSIC_EVENT, r.instrument) for r in records if r.instrument}
    not_repeating = {
        items[name].definition.form
        for r in records
        if not r.instrument
        for name in r.values
        if name in items
    }
    repeating_forms = {form for _, form in repeating if form not in not_repeating}
    forms_of_event: dict[str, dict[str, None]] = {event: {} for event in events}
    for record in records:
        used = forms_of_event[record.event or _DEFAULT_EVENT]
        if record.instrument:
            used.setdefault(record.instrument, None)
        for name in record.values:
            used.setdefault(items[name].definition.form, None)
        if not record.instrument:
            used.setdefault(items[export.record_id_field].definition.form, None)
    for record in records:
        if record.instrument and record.instrument not in forms:
            forms[record.instrument] = []

    # ``created``: a fixed time makes the same export the same file (the demo's is shipped).
    now = (created or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S")
    root = etree.Element(
        _odm("ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"{study_oid}.{now}",
            "ODMVersion": "1.3.1",
            "CreationDateTime": now,
            "Description": study_name,
            "SourceSystem": "study-monitor",
        },
        nsmap={None: ODM_NS, "redcap": REDCAP_NS},
    )
    study = _sub(root, _odm("Study"), {"OID": study_oid})
    variables = _sub(study, _odm("GlobalVariables"))
    _sub(variables, _odm("StudyName")).text = study_name
    _sub(
        variables, _odm("StudyDescription")
    ).text = f'This file contains the metadata, events, and data for the project "{study_name}".'
    _sub(variables, _odm("ProtocolName")).text = study_name
    if repeating or repeating_events:
        declared = _sub(variables, _redcap("RepeatingInstrumentsAndEvents"))
        if repeating:
            instruments = _sub(declared, _redcap("RepeatingInstruments"))
            for event, form in sorted(repeating, key=lambda pair: (pair[0], pair[1] or "")):
                _sub(
                    instruments,
                    _redcap("RepeatingInstrument"),
                    {
                        _redcap("UniqueEventName"): event,
                        _redcap("RepeatInstrument"): form or "",
                        _redcap("CustomLabel"): "",
                    },
                )
        for event in events:
            if event in repeating_events and named_events:
                _sub(declared, _redcap("RepeatingEvent"), {_redcap("UniqueEventName"): event})

    metadata = _sub(
        study,
        _odm("MetaDataVersion"),
        {
            "OID": f"Metadata.{study_oid}",
            "Name": study_name,
            _redcap("RecordIdField"): export.record_id_field,
        },
    )
    protocol = _sub(metadata, _odm("Protocol"))
    for number, event in enumerate(events, start=1):
        _sub(
            protocol,
            _odm("StudyEventRef"),
            {"StudyEventOID": f"Event.{event}", "OrderNumber": str(number), "Mandatory": "No"},
        )
    for event in events:
        attributes = {
            "OID": f"Event.{event}",
            "Name": event,
            "Type": "Common",
            "Repeating": "Yes" if event in repeating_events else "No",
        }
        if named_events:
            attributes[_redcap("UniqueEventName")] = event
        definition = _sub(metadata, _odm("StudyEventDef"), attributes)
        event_forms = forms_of_event[event] if named_events else dict.fromkeys(forms)
        for number, form in enumerate(f for f in forms if f in event_forms):
            _sub(
                definition,
                _odm("FormRef"),
                {
                    "FormOID": f"Form.{form}",
                    "OrderNumber": str(number + 1),
                    "Mandatory": "No",
                    _redcap("FormName"): form,
                },
            )
    group_of_form = {
        form: f"{form}.{columns[0] if columns else form}" for form, columns in forms.items()
    }
    for form in forms:
        form_def = _sub(
            metadata,
            _odm("FormDef"),
            {
                "OID": f"Form.{form}",
                "Name": form,
                "Repeating": "Yes" if form in repeating_forms else "No",
                _redcap("FormName"): form,
            },
        )
        _sub(
            form_def,
            _odm("ItemGroupRef"),
            {"ItemGroupOID": group_of_form[form], "Mandatory": "No"},
        )
    for form, columns in forms.items():
        group = _sub(
            metadata,
            _odm("ItemGroupDef"),
            {"OID": group_of_form[form], "Name": form, "Repeating": "No"},
        )
        for column in columns:
            _sub(
                group,
                _odm("ItemRef"),
                {
                    "ItemOID": column,
                    "Mandatory": "No",
                    _redcap("Variable"): items[column].definition.name,
                },
            )
    # All ItemDefs, then all CodeLists (ODM's order), a form's items together.
    written = [items[column] for columns in forms.values() for column in columns]
    for item in written:
        _write_item_def(metadata, item)
    for item in written:
        _write_code_list(metadata, item)

    clinical = _sub(
        root,
        _odm("ClinicalData"),
        {"StudyOID": study_oid, "MetaDataVersionOID": f"Metadata.{study_oid}"},
    )
    _write_data(clinical, export, items, group_of_form, named_events)
    etree.ElementTree(root).write(
        str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True
    )


def _write_item_def(metadata: Element, item: _Item) -> None:
    definition = item.definition
    attributes = {
        "OID": item.column,
        "Name": item.column,
        "DataType": _data_type(definition),
        "Length": str(max((len(c) for c in item.choices), default=999) if item.choices else 999),
        _redcap("Variable"): definition.name,
        _redcap("FieldType"): _FIELD_TYPE_TO_REDCAP.get(
            definition.field_type, definition.field_type
        ),
    }
    if definition.validation:
        attributes[_redcap("TextValidationType")] = _VALIDATION_TO_REDCAP.get(
            definition.validation, definition.validation
        )
    if definition.identifier:
        attributes[_redcap("Identifier")] = "y"
    element = _sub(metadata, _odm("ItemDef"), attributes)
    _translated(element, "Question", definition.label)
    if item.choices:
        _sub(element, _odm("CodeListRef"), {"CodeListOID": f"{item.column}.choices"})


def _write_code_list(metadata: Element, item: _Item) -> None:
    if not item.choices:
        return
    attributes = {
        "OID": f"{item.column}.choices",
        "Name": item.column,
        "DataType": _data_type(item.definition),
        _redcap("Variable"): item.definition.name,
    }
    if item.checkbox_choices is not None:
        attributes[_redcap("CheckboxChoices")] = item.checkbox_choices
    code_list = _sub(metadata, _odm("CodeList"), attributes)
    for code, label in item.choices.items():
        _translated(_sub(code_list, _odm("CodeListItem"), {"CodedValue": code}), "Decode", label)


def _grouped(
    records: Iterable[Record],
) -> dict[str, dict[tuple[str | None, int | None], list[Record]]]:
    """The records by record id, then by event and event instance, in the order they appear."""
    subjects: dict[str, dict[tuple[str | None, int | None], list[Record]]] = {}
    for record in records:
        event_instance = record.instance if not record.instrument else None
        subjects.setdefault(record.record_id, {}).setdefault(
            (record.event, event_instance), []
        ).append(record)
    return subjects


def _write_data(
    clinical: Element,
    export: Export,
    items: dict[str, _Item],
    group_of_form: dict[str, str],
    named_events: bool,
) -> None:
    record_id_form = items[export.record_id_field].definition.form
    for record_id, events in _grouped(export.records).items():
        groups = {r.group for rs in events.values() for r in rs if r.group}
        if len(groups) > 1:
            raise ValueError(f"record {record_id!r} is in data access groups {sorted(groups)}")
        attributes = {"SubjectKey": record_id, _redcap("RecordIdField"): export.record_id_field}
        if groups:
            attributes[_redcap("DataAccessGroup")] = groups.pop()
        subject = _sub(clinical, _odm("SubjectData"), attributes)
        for (event, event_instance), records in events.items():
            name = event or _DEFAULT_EVENT
            event_attributes = {
                "StudyEventOID": f"Event.{name}",
                "StudyEventRepeatKey": str(event_instance or 1),
            }
            if named_events:
                event_attributes[_redcap("UniqueEventName")] = name
            event_data = _sub(subject, _odm("StudyEventData"), event_attributes)
            for record in records:
                by_form: dict[str, dict[str, str]] = {}
                if not record.instrument:
                    # REDCap repeats the record id in the record's first form.
                    by_form[record_id_form] = {export.record_id_field: record_id}
                for column, value in record.values.items():
                    form = items[column].definition.form
                    if record.instrument and form != record.instrument:
                        raise ValueError(
                            f"{record.where}: {column!r} is on the form {form!r}, not on the "
                            f"repeating instrument {record.instrument!r}"
                        )
                    by_form.setdefault(form, {})[column] = value
                if record.instrument:
                    by_form.setdefault(record.instrument, {})
                for form, values in by_form.items():
                    form_data = _sub(
                        event_data,
                        _odm("FormData"),
                        {
                            "FormOID": f"Form.{form}",
                            "FormRepeatKey": str(record.instance if record.instrument else 1),
                        },
                    )
                    if not values:
                        continue
                    group = _sub(
                        form_data,
                        _odm("ItemGroupData"),
                        {"ItemGroupOID": group_of_form[form], "ItemGroupRepeatKey": "1"},
                    )
                    for column, value in values.items():
                        _sub(group, _odm("ItemData"), {"ItemOID": column, "Value": value})
