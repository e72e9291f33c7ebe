"""The CDISC ODM 1.3 reader and writer (``importers.odm``): a hand-built project written and read
back, files written by hand as REDCap (longitudinal and classic) and OpenClinica 3 export them,
and the fatal problems, each named by file and place. No database."""

from pathlib import Path

import pytest

from dashboard.importers.edc import Export, FieldDef, Record
from dashboard.importers.errors import ImportFailure
from dashboard.importers.odm import read_odm, write_odm

# A value of the identifying field: it must never come out of the reader.
CONTACT = "Mrs Example, 12 Any Street"


def _fields() -> dict[str, FieldDef]:
    fields = [
        FieldDef("record_id", "enrolment", "text", "Record ID"),
        FieldDef("contact", "enrolment", "notes", "Contact details", identifier=True),
        FieldDef("sex", "enrolment", "radio", "Sex", {"1": "Female", "2": "Male"}),
        FieldDef("consent", "enrolment", "yesno", "Consented?", {"1": "Yes", "0": "No"}),
        FieldDef("visit_date", "visit", "text", "Visit date", validation="date_ymd"),
        FieldDef("sbp", "visit", "text", "Systolic BP", validation="integer"),
        FieldDef("weight", "visit", "text", "Weight (kg)", validation="number"),
        FieldDef("symptoms", "visit", "checkbox", "Symptoms", {"1": "Headache", "2": "Dizziness"}),
        FieldDef("ae_term", "adverse_events", "text", "Adverse event"),
        FieldDef(
            "ae_severity",
            "adverse_events",
            "dropdown",
            "Severity",
            {"1": "Mild", "2": "Moderate", "3": "Severe"},
        ),
    ]
    return {f.name: f for f in fields}


def _export(sex_of_first: str = "1") -> Export:
    """A longitudinal project of two records: an enrolment event with a repeating instrument,
    a week-4 visit."""
    records = [
        Record(
            "01-001",
            {"sex": sex_of_first, "consent": "1", "contact": CONTACT},
            "x",
            event="enrolment_arm_1",
            group="site_a",
        ),
        Record(
            "01-001",
            {"ae_term": "Headache", "ae_severity": "1"},
            "x",
            event="enrolment_arm_1",
            instrument="adverse_events",
            instance=1,
            group="site_a",
        ),
        Record(
            "01-001",
            {"ae_term": "Nausea", "ae_severity": "2"},
            "x",
            event="enrolment_arm_1",
            instrument="adverse_events",
            instance=2,
            group="site_a",
        ),
        Record(
            "01-001",
            {
                "visit_date": "2025-02-03",
                "sbp": "142",
                "weight": "81.5",
                "symptoms___1": "1",
                "symptoms___2": "0",
            },
            "x",
            event="week_4_arm_1",
            group="site_a",
        ),
        Record("01-002", {"sex": "2", "consent": "0"}, "x", event="enrolment_arm_1"),
        Record("01-002", {"visit_date": "2025-02-10"}, "x", event="week_4_arm_1"),
    ]
    return Export(fields=_fields(), records=records, sources=[], record_id_field="record_id")


def _key(record: Record) -> tuple[object, ...]:
    return (
        record.record_id,
        record.event,
        record.instrument,
        record.instance,
        record.group,
        record.values,
    )


def _write(tmp_path: Path, text: str, name: str = "odm.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_keeps_fields_and_records_and_drops_the_identifying_field(
    tmp_path: Path,
) -> None:
    export = _export()
    path = tmp_path / "project.xml"
    write_odm(export, path, study_oid="Project.Pilot", study_name="Pilot")
    assert CONTACT in path.read_text(encoding="utf-8")  # the writer writes it: the reader drops it

    read = read_odm(path)

    assert read.fields == export.fields
    assert list(read.fields) == list(export.fields)
    assert read.record_id_field == "record_id"
    expected = [
        (*_key(r)[:5], {k: v for k, v in r.values.items() if k != "contact"})
        for r in export.records
    ]
    assert [_key(r) for r in read.records] == expected
    assert read.dropped == ("contact",)
    assert all("contact" not in r.values for r in read.records)
    assert not any(CONTACT in warning for warning in read.warnings)
    assert CONTACT not in repr(read.records)
    assert any("contact" in warning for warning in read.warnings)
    assert read.format_name == "ODM"
    assert read.events() == ["enrolment_arm_1", "week_4_arm_1"]
    assert read.sources[0]["kind"] == "CDISC ODM 1.3"
    assert read.sources[0]["file"] == "project.xml"
    assert read.sources[0]["records"] == len(export.records)
    assert read.records[1].where == (
        "project.xml subject '01-001', event 'enrolment_arm_1', adverse_events instance 1"
    )


def test_round_trip_of_a_project_without_events(tmp_path: Path) -> None:
    """A classic project: one event written, read back as none."""
    records = [
        Record("7", {"sex": "1"}, "x"),
        Record("7", {"ae_term": "Rash"}, "x", instrument="adverse_events", instance=1),
        Record("8", {"consent": "1"}, "x"),
    ]
    export = Export(fields=_fields(), records=records, sources=[], record_id_field="record_id")
    path = tmp_path / "classic.xml"
    write_odm(export, path, study_oid="Project.Classic", study_name="Classic")

    read = read_odm(path, label="upload.xml")

    assert [_key(r) for r in read.records] == [_key(r) for r in records]
    assert read.events() == []
    assert read.sources[0]["file"] == "upload.xml"


def test_a_choice_code_not_in_the_code_list_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "project.xml"
    write_odm(_export(sex_of_first="9"), path, study_oid="Project.Pilot", study_name="Pilot")

    with pytest.raises(ImportFailure) as failure:
        read_odm(path)

    message = str(failure.value)
    assert "'sex'" in message
    assert "'01-001'" in message
    assert "'9'" in message
    assert failure.value.problem.file == "project.xml"
    assert CONTACT not in message


# -- files written by hand -----------------------------------------------------------------------

_HEAD = """<?xml version="1.0" encoding="UTF-8" ?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org"
  ODMVersion="1.3.1" FileOID="000-00-0000" FileType="Snapshot">
"""

_SMALL_METADATA = """<Study OID="Project.Small">
<GlobalVariables><StudyName>Small</StudyName><StudyDescription>Small</StudyDescription>
<ProtocolName>Small</ProtocolName></GlobalVariables>
<MetaDataVersion OID="Metadata.Small" Name="Small">
  <FormDef OID="Form.enrolment" Name="Enrolment" Repeating="No">
    <ItemGroupRef ItemGroupOID="enrolment.record_id" Mandatory="No"/>
  </FormDef>
  <FormDef OID="Form.meds" Name="Medications" Repeating="Yes">
    <ItemGroupRef ItemGroupOID="meds.drug" Mandatory="No"/>
  </FormDef>
  <ItemGroupDef OID="enrolment.record_id" Name="Enrolment" Repeating="No">
    <ItemRef ItemOID="record_id" Mandatory="No"/>
  </ItemGroupDef>
  <ItemGroupDef OID="meds.drug" Name="Medications" Repeating="No">
    <ItemRef ItemOID="drug" Mandatory="No"/>
  </ItemGroupDef>
  <ItemDef OID="record_id" Name="record_id" DataType="text"/>
  <ItemDef OID="drug" Name="drug" DataType="text"/>
</MetaDataVersion>
</Study>
"""


def _small(data: str) -> str:
    return f"{_HEAD}{_SMALL_METADATA}<ClinicalData StudyOID='Project.Small' " + (
        f"MetaDataVersionOID='Metadata.Small'>{data}</ClinicalData></ODM>"
    )


def test_a_repeating_form_without_its_repeat_key_is_fatal(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _small(
            """<SubjectData SubjectKey="S-1">
              <FormData FormOID="Form.meds">
                <ItemGroupData ItemGroupOID="meds.drug">
                  <ItemData ItemOID="drug" Value="Aspirin"/>
                </ItemGroupData>
              </FormData>
            </SubjectData>"""
        ),
    )

    with pytest.raises(ImportFailure) as failure:
        read_odm(path)

    message = str(failure.value)
    assert message.startswith("odm.xml: ")
    assert "repeating instrument 'Medications' without its instance number" in message
    assert "'S-1'" in message


def test_a_repeat_key_that_is_not_a_whole_number_is_fatal(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _small(
            """<SubjectData SubjectKey="S-1">
              <FormData FormOID="Form.meds" FormRepeatKey="0"/>
            </SubjectData>"""
        ),
    )

    with pytest.raises(ImportFailure, match=r"FormRepeatKey '0' is not a whole number"):
        read_odm(path)


def test_the_same_instance_twice_is_fatal(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        _small(
            """<SubjectData SubjectKey="S-1">
              <FormData FormOID="Form.meds" FormRepeatKey="1"/>
              <FormData FormOID="Form.meds" FormRepeatKey="1"/>
            </SubjectData>"""
        ),
    )

    with pytest.raises(ImportFailure, match=r"subject 'S-1': the form 'Medications' instance 1"):
        read_odm(path)


def test_malformed_xml_is_fatal_and_names_the_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _HEAD + "<Study OID='x'>\n</ODM>\n", name="export.xml")

    with pytest.raises(ImportFailure) as failure:
        read_odm(path)

    message = str(failure.value)
    assert message.startswith("export.xml: is not well-formed XML (line 5): ")
    assert failure.value.problem.file == "export.xml"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("<records><record id='1'/></records>", "records without a namespace"),
        (
            "<ODM xmlns='http://www.cdisc.org/ns/odm/v1.2'/>",
            "ODM in the namespace http://www.cdisc.org/ns/odm/v1.2",
        ),
    ],
)
def test_a_file_that_is_not_odm_1_3_is_fatal(tmp_path: Path, text: str, found: str) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(ImportFailure) as failure:
        read_odm(path)

    assert str(failure.value) == (
        f"odm.xml: is not a CDISC ODM 1.3 file: its root element is {found}, not ODM in the "
        "namespace http://www.cdisc.org/ns/odm/v1.3"
    )


def test_an_odm_file_without_metadata_is_fatal(tmp_path: Path) -> None:
    path = _write(tmp_path, _HEAD + "<ClinicalData StudyOID='x' MetaDataVersionOID='y'/></ODM>")

    with pytest.raises(ImportFailure, match=r"^odm\.xml: has no Study/MetaDataVersion"):
        read_odm(path)


def test_a_missing_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ImportFailure, match=r"^gone\.xml: no such file$"):
        read_odm(tmp_path / "gone.xml")


# REDCap 14's CDISC ODM export of a longitudinal project with a repeating instrument, a data
# access group, a checkbox and an identifier (dob), as REDCap writes it: every FormData with its
# FormRepeatKey, every FormDef Repeating="No", the repeating instrument declared in
# GlobalVariables, the group as an item of the record id's group.
REDCAP_LONGITUDINAL = """<?xml version="1.0" encoding="UTF-8" ?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:redcap="https://projectredcap.org" \
xsi:schemaLocation="http://www.cdisc.org/ns/odm/v1.3 schema/odm/ODM1-3-1.xsd" ODMVersion="1.3.1" \
FileOID="000-00-0000" FileType="Snapshot" Description="Hypertension Pilot" \
AsOfDateTime="2025-03-04T10:15:02" CreationDateTime="2025-03-04T10:15:02" SourceSystem="REDCap" \
SourceSystemVersion="14.5.8">
<Study OID="Project.HypertensionPilot">
<GlobalVariables>
	<StudyName>Hypertension Pilot</StudyName>
	<StudyDescription>This file contains the metadata, events, and data for REDCap project \
"Hypertension Pilot".</StudyDescription>
	<ProtocolName>Hypertension Pilot</ProtocolName>
	<redcap:RecordAutonumberingEnabled>0</redcap:RecordAutonumberingEnabled>
	<redcap:CustomRecordLabel></redcap:CustomRecordLabel>
	<redcap:SurveysEnabled>0</redcap:SurveysEnabled>
	<redcap:RepeatingInstrumentsAndEvents>
		<redcap:RepeatingInstruments>
			<redcap:RepeatingInstrument redcap:UniqueEventName="screening_arm_1" \
redcap:RepeatInstrument="adverse_events" redcap:CustomLabel=""/>
		</redcap:RepeatingInstruments>
	</redcap:RepeatingInstrumentsAndEvents>
</GlobalVariables>
<MetaDataVersion OID="Metadata.HypertensionPilot_2025-03-04_1015" Name="Hypertension Pilot" \
redcap:RecordIdField="record_id">
	<Protocol>
		<StudyEventRef StudyEventOID="Event.screening_arm_1" OrderNumber="1" Mandatory="No"/>
		<StudyEventRef StudyEventOID="Event.week_4_arm_1" OrderNumber="2" Mandatory="No"/>
	</Protocol>
	<StudyEventDef OID="Event.screening_arm_1" Name="Screening" Type="Common" Repeating="No" \
redcap:EventName="Screening" redcap:CustomEventLabel="" redcap:UniqueEventName="screening_arm_1" \
redcap:ArmNum="1" redcap:ArmName="Arm 1" redcap:DayOffset="0" redcap:OffsetMin="0" \
redcap:OffsetMax="0">
		<FormRef FormOID="Form.demographics" OrderNumber="1" Mandatory="No" \
redcap:FormName="demographics"/>
		<FormRef FormOID="Form.adverse_events" OrderNumber="2" Mandatory="No" \
redcap:FormName="adverse_events"/>
	</StudyEventDef>
	<StudyEventDef OID="Event.week_4_arm_1" Name="Week 4" Type="Common" Repeating="No" \
redcap:EventName="Week 4" redcap:CustomEventLabel="" redcap:UniqueEventName="week_4_arm_1" \
redcap:ArmNum="1" redcap:ArmName="Arm 1" redcap:DayOffset="28" redcap:OffsetMin="3" \
redcap:OffsetMax="3">
		<FormRef FormOID="Form.vital_signs" OrderNumber="1" Mandatory="No" \
redcap:FormName="vital_signs"/>
	</StudyEventDef>
	<FormDef OID="Form.demographics" Name="Demographics" Repeating="No" \
redcap:FormName="demographics">
		<ItemGroupRef ItemGroupOID="demographics.record_id" Mandatory="No"/>
		<ItemGroupRef ItemGroupOID="demographics.demographics_complete" Mandatory="No"/>
	</FormDef>
	<FormDef OID="Form.adverse_events" Name="Adverse Events" Repeating="No" \
redcap:FormName="adverse_events">
		<ItemGroupRef ItemGroupOID="adverse_events.ae_term" Mandatory="No"/>
		<ItemGroupRef ItemGroupOID="adverse_events.adverse_events_complete" Mandatory="No"/>
	</FormDef>
	<FormDef OID="Form.vital_signs" Name="Vital Signs" Repeating="No" \
redcap:FormName="vital_signs">
		<ItemGroupRef ItemGroupOID="vital_signs.sbp" Mandatory="No"/>
		<ItemGroupRef ItemGroupOID="vital_signs.vital_signs_complete" Mandatory="No"/>
	</FormDef>
	<ItemGroupDef OID="demographics.record_id" Name="Demographics" Repeating="No">
		<ItemRef ItemOID="record_id" Mandatory="No" redcap:Variable="record_id"/>
		<ItemRef ItemOID="redcap_data_access_group" Mandatory="No" \
redcap:Variable="redcap_data_access_group"/>
		<ItemRef ItemOID="dob" Mandatory="No" redcap:Variable="dob"/>
		<ItemRef ItemOID="sex" Mandatory="No" redcap:Variable="sex"/>
		<ItemRef ItemOID="race" Mandatory="No" redcap:Variable="race"/>
	</ItemGroupDef>
	<ItemGroupDef OID="demographics.demographics_complete" Name="Form Status" Repeating="No">
		<ItemRef ItemOID="demographics_complete" Mandatory="No" \
redcap:Variable="demographics_complete"/>
	</ItemGroupDef>
	<ItemGroupDef OID="adverse_events.ae_term" Name="Adverse Events" Repeating="No">
		<ItemRef ItemOID="ae_term" Mandatory="No" redcap:Variable="ae_term"/>
		<ItemRef ItemOID="ae_serious" Mandatory="No" redcap:Variable="ae_serious"/>
		<ItemRef ItemOID="ae_onset" Mandatory="No" redcap:Variable="ae_onset"/>
	</ItemGroupDef>
	<ItemGroupDef OID="adverse_events.adverse_events_complete" Name="Form Status" Repeating="No">
		<ItemRef ItemOID="adverse_events_complete" Mandatory="No" \
redcap:Variable="adverse_events_complete"/>
	</ItemGroupDef>
	<ItemGroupDef OID="vital_signs.sbp" Name="Vital Signs" Repeating="No">
		<ItemRef ItemOID="sbp" Mandatory="No" redcap:Variable="sbp"/>
		<ItemRef ItemOID="symptoms___1" Mandatory="No" redcap:Variable="symptoms"/>
		<ItemRef ItemOID="symptoms___2" Mandatory="No" redcap:Variable="symptoms"/>
	</ItemGroupDef>
	<ItemGroupDef OID="vital_signs.vital_signs_complete" Name="Form Status" Repeating="No">
		<ItemRef ItemOID="vital_signs_complete" Mandatory="No" \
redcap:Variable="vital_signs_complete"/>
	</ItemGroupDef>
	<ItemDef OID="record_id" Name="record_id" DataType="text" Length="999" \
redcap:Variable="record_id" redcap:FieldType="text">
		<Question><TranslatedText>Record ID</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="redcap_data_access_group" Name="redcap_data_access_group" DataType="text" \
Length="999" redcap:Variable="redcap_data_access_group">
		<Question><TranslatedText>Data Access Group</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="dob" Name="dob" DataType="date" Length="999" redcap:Variable="dob" \
redcap:FieldType="text" redcap:TextValidationType="date_ymd" redcap:Identifier="y">
		<Question><TranslatedText>Date of birth</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="sex" Name="sex" DataType="text" Length="1" redcap:Variable="sex" \
redcap:FieldType="radio">
		<Question><TranslatedText>Sex</TranslatedText></Question>
		<CodeListRef CodeListOID="sex.choices"/>
	</ItemDef>
	<ItemDef OID="race" Name="race" DataType="text" Length="1" redcap:Variable="race" \
redcap:FieldType="select">
		<Question><TranslatedText>Race</TranslatedText></Question>
		<CodeListRef CodeListOID="race.choices"/>
	</ItemDef>
	<ItemDef OID="demographics_complete" Name="demographics_complete" DataType="text" Length="1" \
redcap:Variable="demographics_complete" redcap:FieldType="select" \
redcap:SectionHeader="Form Status">
		<Question><TranslatedText>Complete?</TranslatedText></Question>
		<CodeListRef CodeListOID="demographics_complete.choices"/>
	</ItemDef>
	<ItemDef OID="ae_term" Name="ae_term" DataType="text" Length="999" redcap:Variable="ae_term" \
redcap:FieldType="text">
		<Question><TranslatedText>Adverse event</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="ae_serious" Name="ae_serious" DataType="boolean" Length="1" \
redcap:Variable="ae_serious" redcap:FieldType="yesno">
		<Question><TranslatedText>Serious?</TranslatedText></Question>
		<CodeListRef CodeListOID="ae_serious.choices"/>
	</ItemDef>
	<ItemDef OID="ae_onset" Name="ae_onset" DataType="datetime" Length="999" \
redcap:Variable="ae_onset" redcap:FieldType="text" \
redcap:TextValidationType="datetime_seconds_ymd">
		<Question><TranslatedText>Onset</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="adverse_events_complete" Name="adverse_events_complete" DataType="text" \
Length="1" redcap:Variable="adverse_events_complete" redcap:FieldType="select" \
redcap:SectionHeader="Form Status">
		<Question><TranslatedText>Complete?</TranslatedText></Question>
		<CodeListRef CodeListOID="adverse_events_complete.choices"/>
	</ItemDef>
	<ItemDef OID="sbp" Name="sbp" DataType="integer" Length="999" redcap:Variable="sbp" \
redcap:FieldType="text" redcap:TextValidationType="int">
		<Question><TranslatedText>Systolic BP (mmHg)</TranslatedText></Question>
		<RangeCheck Comparator="GE" SoftHard="Soft">
			<CheckValue>60</CheckValue>
			<ErrorMessage><TranslatedText>The value you provided is outside the suggested range \
(60 - 250). This value is admissible, but you may wish to double check it.</TranslatedText>\
</ErrorMessage>
		</RangeCheck>
	</ItemDef>
	<ItemDef OID="symptoms___1" Name="symptoms___1" DataType="boolean" Length="1" \
redcap:Variable="symptoms" redcap:FieldType="checkbox">
		<Question><TranslatedText>Symptoms</TranslatedText></Question>
		<CodeListRef CodeListOID="symptoms___1.choices"/>
	</ItemDef>
	<ItemDef OID="symptoms___2" Name="symptoms___2" DataType="boolean" Length="1" \
redcap:Variable="symptoms" redcap:FieldType="checkbox">
		<Question><TranslatedText>Symptoms</TranslatedText></Question>
		<CodeListRef CodeListOID="symptoms___2.choices"/>
	</ItemDef>
	<ItemDef OID="vital_signs_complete" Name="vital_signs_complete" DataType="text" Length="1" \
redcap:Variable="vital_signs_complete" redcap:FieldType="select" \
redcap:SectionHeader="Form Status">
		<Question><TranslatedText>Complete?</TranslatedText></Question>
		<CodeListRef CodeListOID="vital_signs_complete.choices"/>
	</ItemDef>
	<CodeList OID="sex.choices" Name="sex" DataType="text" redcap:Variable="sex">
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Female</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="2"><Decode><TranslatedText>Male</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="race.choices" Name="race" DataType="text" redcap:Variable="race">
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Asian</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="2"><Decode><TranslatedText>Black</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="3"><Decode><TranslatedText>White</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="demographics_complete.choices" Name="demographics_complete" DataType="text" \
redcap:Variable="demographics_complete">
		<CodeListItem CodedValue="0"><Decode><TranslatedText>Incomplete</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Unverified</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="2"><Decode><TranslatedText>Complete</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="ae_serious.choices" Name="ae_serious" DataType="boolean" \
redcap:Variable="ae_serious">
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Yes</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="0"><Decode><TranslatedText>No</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="adverse_events_complete.choices" Name="adverse_events_complete" \
DataType="text" redcap:Variable="adverse_events_complete">
		<CodeListItem CodedValue="0"><Decode><TranslatedText>Incomplete</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Unverified</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="2"><Decode><TranslatedText>Complete</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="symptoms___1.choices" Name="symptoms___1" DataType="boolean" \
redcap:Variable="symptoms" redcap:CheckboxChoices="1, Headache | 2, Dizziness">
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Checked</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="0"><Decode><TranslatedText>Unchecked</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="symptoms___2.choices" Name="symptoms___2" DataType="boolean" \
redcap:Variable="symptoms" redcap:CheckboxChoices="1, Headache | 2, Dizziness">
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Checked</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="0"><Decode><TranslatedText>Unchecked</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
	<CodeList OID="vital_signs_complete.choices" Name="vital_signs_complete" DataType="text" \
redcap:Variable="vital_signs_complete">
		<CodeListItem CodedValue="0"><Decode><TranslatedText>Incomplete</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="1"><Decode><TranslatedText>Unverified</TranslatedText></Decode>\
</CodeListItem>
		<CodeListItem CodedValue="2"><Decode><TranslatedText>Complete</TranslatedText></Decode>\
</CodeListItem>
	</CodeList>
</MetaDataVersion>
</Study>
<ClinicalData StudyOID="Project.HypertensionPilot" \
MetaDataVersionOID="Metadata.HypertensionPilot_2025-03-04_1015">
	<SubjectData SubjectKey="1001" redcap:RecordIdField="record_id">
		<StudyEventData StudyEventOID="Event.screening_arm_1" StudyEventRepeatKey="1" \
redcap:UniqueEventName="screening_arm_1">
			<FormData FormOID="Form.demographics" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="demographics.record_id" ItemGroupRepeatKey="1">
					<ItemData ItemOID="record_id" Value="1001"/>
					<ItemData ItemOID="redcap_data_access_group" Value="boston"/>
					<ItemData ItemOID="dob" Value="1961-04-17"/>
					<ItemData ItemOID="sex" Value="1"/>
					<ItemData ItemOID="race" Value=""/>
				</ItemGroupData>
				<ItemGroupData ItemGroupOID="demographics.demographics_complete" \
ItemGroupRepeatKey="1">
					<ItemData ItemOID="demographics_complete" Value="2"/>
				</ItemGroupData>
			</FormData>
			<FormData FormOID="Form.adverse_events" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="adverse_events.ae_term" ItemGroupRepeatKey="1">
					<ItemData ItemOID="ae_term" Value="Headache"/>
					<ItemData ItemOID="ae_serious" Value="0"/>
					<ItemData ItemOID="ae_onset" Value="2025-01-09T08:30:00"/>
				</ItemGroupData>
				<ItemGroupData ItemGroupOID="adverse_events.adverse_events_complete" \
ItemGroupRepeatKey="1">
					<ItemData ItemOID="adverse_events_complete" Value="2"/>
				</ItemGroupData>
			</FormData>
			<FormData FormOID="Form.adverse_events" FormRepeatKey="2">
				<ItemGroupData ItemGroupOID="adverse_events.ae_term" ItemGroupRepeatKey="1">
					<ItemData ItemOID="ae_term" Value="Syncope"/>
					<ItemData ItemOID="ae_serious" Value="1"/>
				</ItemGroupData>
				<ItemGroupData ItemGroupOID="adverse_events.adverse_events_complete" \
ItemGroupRepeatKey="1">
					<ItemData ItemOID="adverse_events_complete" Value="0"/>
				</ItemGroupData>
			</FormData>
		</StudyEventData>
		<StudyEventData StudyEventOID="Event.week_4_arm_1" StudyEventRepeatKey="1" \
redcap:UniqueEventName="week_4_arm_1">
			<FormData FormOID="Form.vital_signs" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="vital_signs.sbp" ItemGroupRepeatKey="1">
					<ItemData ItemOID="sbp" Value="142"/>
					<ItemData ItemOID="symptoms___1" Value="1"/>
					<ItemData ItemOID="symptoms___2" Value="0"/>
				</ItemGroupData>
				<ItemGroupData ItemGroupOID="vital_signs.vital_signs_complete" \
ItemGroupRepeatKey="1">
					<ItemData ItemOID="vital_signs_complete" Value="1"/>
				</ItemGroupData>
			</FormData>
		</StudyEventData>
	</SubjectData>
	<SubjectData SubjectKey="1002" redcap:RecordIdField="record_id">
		<StudyEventData StudyEventOID="Event.screening_arm_1" StudyEventRepeatKey="1" \
redcap:UniqueEventName="screening_arm_1">
			<FormData FormOID="Form.demographics" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="demographics.record_id" ItemGroupRepeatKey="1">
					<ItemData ItemOID="record_id" Value="1002"/>
					<ItemData ItemOID="redcap_data_access_group" Value="chicago"/>
					<ItemData ItemOID="dob" Value="1958-11-02"/>
					<ItemData ItemOID="sex" Value="2"/>
					<ItemData ItemOID="race" Value="3"/>
				</ItemGroupData>
				<ItemGroupData ItemGroupOID="demographics.demographics_complete" \
ItemGroupRepeatKey="1">
					<ItemData ItemOID="demographics_complete" Value="1"/>
				</ItemGroupData>
			</FormData>
		</StudyEventData>
	</SubjectData>
</ClinicalData>
</ODM>
"""


def test_reads_a_redcap_longitudinal_export(tmp_path: Path) -> None:
    read = read_odm(_write(tmp_path, REDCAP_LONGITUDINAL, "HypertensionPilot_CDISC_ODM.xml"))

    assert read.record_id_field == "record_id"
    assert list(read.fields) == [
        "record_id",
        "dob",
        "sex",
        "race",
        "demographics_complete",
        "ae_term",
        "ae_serious",
        "ae_onset",
        "adverse_events_complete",
        "sbp",
        "symptoms",
        "vital_signs_complete",
    ]
    fields = read.fields
    assert fields["record_id"] == FieldDef("record_id", "demographics", "text", "Record ID")
    assert fields["dob"].identifier and fields["dob"].validation == "date_ymd"
    assert fields["sex"] == FieldDef(
        "sex", "demographics", "radio", "Sex", {"1": "Female", "2": "Male"}
    )
    assert fields["race"].field_type == "dropdown"  # REDCap's "select"
    assert fields["ae_serious"].choices == {"1": "Yes", "0": "No"}
    assert fields["ae_onset"].validation == "datetime_seconds_ymd"
    assert fields["sbp"] == FieldDef(
        "sbp", "vital_signs", "text", "Systolic BP (mmHg)", validation="integer"
    )
    assert fields["symptoms"] == FieldDef(
        "symptoms", "vital_signs", "checkbox", "Symptoms", {"1": "Headache", "2": "Dizziness"}
    )
    assert fields["vital_signs_complete"].choices == {
        "0": "Incomplete",
        "1": "Unverified",
        "2": "Complete",
    }

    assert [_key(r) for r in read.records] == [
        (
            "1001",
            "screening_arm_1",
            None,
            None,
            "boston",
            {"sex": "1", "demographics_complete": "2"},
        ),
        (
            "1001",
            "screening_arm_1",
            "adverse_events",
            1,
            "boston",
            {
                "ae_term": "Headache",
                "ae_serious": "0",
                "ae_onset": "2025-01-09T08:30:00",
                "adverse_events_complete": "2",
            },
        ),
        (
            "1001",
            "screening_arm_1",
            "adverse_events",
            2,
            "boston",
            {"ae_term": "Syncope", "ae_serious": "1", "adverse_events_complete": "0"},
        ),
        (
            "1001",
            "week_4_arm_1",
            None,
            None,
            "boston",
            {"sbp": "142", "symptoms___1": "1", "symptoms___2": "0", "vital_signs_complete": "1"},
        ),
        (
            "1002",
            "screening_arm_1",
            None,
            None,
            "chicago",
            {"sex": "2", "race": "3", "demographics_complete": "1"},
        ),
    ]
    assert read.dropped == ("dob",)
    assert read.warnings == ["identifying field dob dropped: not read, not stored"]
    assert "1961-04-17" not in repr(read)
    assert read.unknown_columns == ()
    assert read.records[0].where == (
        "HypertensionPilot_CDISC_ODM.xml subject '1001', event 'screening_arm_1'"
    )


# REDCap's export of a classic project: no StudyEventDef, no StudyEventData (the FormData sit in
# the SubjectData), a repeating instrument declared for "event_1_arm_1".
REDCAP_CLASSIC = f"""{_HEAD}<Study OID="Project.Classic">
<GlobalVariables>
	<StudyName>Classic</StudyName><StudyDescription>Classic</StudyDescription>
	<ProtocolName>Classic</ProtocolName>
	<redcap:RepeatingInstrumentsAndEvents>
		<redcap:RepeatingInstruments>
			<redcap:RepeatingInstrument redcap:UniqueEventName="event_1_arm_1" \
redcap:RepeatInstrument="meds" redcap:CustomLabel=""/>
		</redcap:RepeatingInstruments>
	</redcap:RepeatingInstrumentsAndEvents>
</GlobalVariables>
<MetaDataVersion OID="Metadata.Classic" Name="Classic" redcap:RecordIdField="study_id">
	<FormDef OID="Form.enrolment" Name="Enrolment" Repeating="No" redcap:FormName="enrolment">
		<ItemGroupRef ItemGroupOID="enrolment.study_id" Mandatory="No"/>
	</FormDef>
	<FormDef OID="Form.meds" Name="Medications" Repeating="No" redcap:FormName="meds">
		<ItemGroupRef ItemGroupOID="meds.drug" Mandatory="No"/>
	</FormDef>
	<ItemGroupDef OID="enrolment.study_id" Name="Enrolment" Repeating="No">
		<ItemRef ItemOID="study_id" Mandatory="No" redcap:Variable="study_id"/>
		<ItemRef ItemOID="enrolled_on" Mandatory="No" redcap:Variable="enrolled_on"/>
	</ItemGroupDef>
	<ItemGroupDef OID="meds.drug" Name="Medications" Repeating="No">
		<ItemRef ItemOID="drug" Mandatory="No" redcap:Variable="drug"/>
	</ItemGroupDef>
	<ItemDef OID="study_id" Name="study_id" DataType="text" Length="999" \
redcap:Variable="study_id" redcap:FieldType="text">
		<Question><TranslatedText>Study ID</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="enrolled_on" Name="enrolled_on" DataType="date" Length="999" \
redcap:Variable="enrolled_on" redcap:FieldType="text" redcap:TextValidationType="date_dmy">
		<Question><TranslatedText>Enrolled on</TranslatedText></Question>
	</ItemDef>
	<ItemDef OID="drug" Name="drug" DataType="text" Length="999" redcap:Variable="drug" \
redcap:FieldType="textarea">
		<Question><TranslatedText>Drug</TranslatedText></Question>
	</ItemDef>
</MetaDataVersion>
</Study>
<ClinicalData StudyOID="Project.Classic" MetaDataVersionOID="Metadata.Classic">
	<SubjectData SubjectKey="A-1" redcap:RecordIdField="study_id">
			<FormData FormOID="Form.enrolment" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="enrolment.study_id" ItemGroupRepeatKey="1">
					<ItemData ItemOID="study_id" Value="A-1"/>
					<ItemData ItemOID="enrolled_on" Value="2025-01-06"/>
				</ItemGroupData>
			</FormData>
			<FormData FormOID="Form.meds" FormRepeatKey="1">
				<ItemGroupData ItemGroupOID="meds.drug" ItemGroupRepeatKey="1">
					<ItemData ItemOID="drug" Value="Amlodipine 5 mg"/>
				</ItemGroupData>
			</FormData>
			<FormData FormOID="Form.meds" FormRepeatKey="2">
				<ItemGroupData ItemGroupOID="meds.drug" ItemGroupRepeatKey="1">
					<ItemData ItemOID="drug" Value="Ramipril 2.5 mg"/>
					<ItemData ItemOID="dose_unit" Value="mg"/>
				</ItemGroupData>
			</FormData>
	</SubjectData>
</ClinicalData>
</ODM>
"""


def test_reads_a_redcap_classic_export(tmp_path: Path) -> None:
    read = read_odm(_write(tmp_path, REDCAP_CLASSIC))

    assert read.record_id_field == "study_id"
    assert read.fields["enrolled_on"].validation == "date_dmy"
    assert read.fields["drug"].field_type == "notes"  # REDCap's "textarea"
    assert [_key(r) for r in read.records] == [
        ("A-1", None, None, None, None, {"enrolled_on": "2025-01-06"}),
        ("A-1", None, "meds", 1, None, {"drug": "Amlodipine 5 mg"}),
        ("A-1", None, "meds", 2, None, {"drug": "Ramipril 2.5 mg"}),
    ]
    assert read.unknown_columns == ("dose_unit",)
    assert read.warnings == ["odm.xml: item dose_unit not in the file's metadata: not read"]


# OpenClinica 3's ODM 1.3 extract (with its extensions): no REDCap attributes, a repeating event,
# a repeating item group (a table on a form), the site as the subject's SiteRef, the subject's
# birth date as an OpenClinica attribute (never read).
OPENCLINICA = """<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" \
xmlns:OpenClinica="http://www.openclinica.org/ns/odm_ext_v130/v3.1" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" FileType="Snapshot" \
FileOID="Study-HTN0120250304101502+0000" CreationDateTime="2025-03-04T10:15:02+00:00" \
ODMVersion="1.3" Description="Study-HTN01">
  <Study OID="S_HTN01">
    <GlobalVariables>
      <StudyName>Hypertension 01</StudyName>
      <StudyDescription>Hypertension 01</StudyDescription>
      <ProtocolName>HTN01</ProtocolName>
    </GlobalVariables>
    <MetaDataVersion OID="v1.0.0" Name="MetaDataVersion_v1.0.0">
      <Protocol>
        <StudyEventRef StudyEventOID="SE_SCREENING" OrderNumber="1" Mandatory="Yes"/>
        <StudyEventRef StudyEventOID="SE_VISIT" OrderNumber="2" Mandatory="No"/>
      </Protocol>
      <StudyEventDef OID="SE_SCREENING" Name="Screening" Repeating="No" Type="Scheduled">
        <FormRef FormOID="F_DEMOG_V1" Mandatory="Yes"/>
        <FormRef FormOID="F_CONMED_V1" Mandatory="No"/>
      </StudyEventDef>
      <StudyEventDef OID="SE_VISIT" Name="Visit" Repeating="Yes" Type="Unscheduled">
        <FormRef FormOID="F_VITALS_V1" Mandatory="Yes"/>
      </StudyEventDef>
      <FormDef OID="F_DEMOG_V1" Name="Demographics - v1" Repeating="No">
        <ItemGroupRef ItemGroupOID="IG_DEMOG_UNGROUPED" Mandatory="Yes"/>
      </FormDef>
      <FormDef OID="F_CONMED_V1" Name="Concomitant medications - v1" Repeating="No">
        <ItemGroupRef ItemGroupOID="IG_CONME_CM" Mandatory="Yes"/>
      </FormDef>
      <FormDef OID="F_VITALS_V1" Name="Vital signs - v1" Repeating="No">
        <ItemGroupRef ItemGroupOID="IG_VITAL_UNGROUPED" Mandatory="Yes"/>
      </FormDef>
      <ItemGroupDef OID="IG_DEMOG_UNGROUPED" Name="IG_DEMOG_UNGROUPED" Repeating="No" \
SASDatasetName="UNGROUPE">
        <ItemRef ItemOID="I_DEMOG_ENROLDATE" OrderNumber="1" Mandatory="Yes"/>
        <ItemRef ItemOID="I_DEMOG_SEX" OrderNumber="2" Mandatory="Yes"/>
        <ItemRef ItemOID="I_DEMOG_AGE" OrderNumber="3" Mandatory="No"/>
      </ItemGroupDef>
      <ItemGroupDef OID="IG_CONME_CM" Name="CM" Repeating="Yes" SASDatasetName="CM">
        <ItemRef ItemOID="I_CONME_CMTRT" OrderNumber="1" Mandatory="Yes"/>
      </ItemGroupDef>
      <ItemGroupDef OID="IG_VITAL_UNGROUPED" Name="IG_VITAL_UNGROUPED" Repeating="No">
        <ItemRef ItemOID="I_VITAL_SBP" OrderNumber="1" Mandatory="Yes"/>
        <ItemRef ItemOID="I_VITAL_WEIGHT" OrderNumber="2" Mandatory="No"/>
      </ItemGroupDef>
      <ItemDef OID="I_DEMOG_ENROLDATE" Name="ENROLDATE" DataType="date" Length="10" \
SASFieldName="ENROLDAT" Comment="Date of enrolment"/>
      <ItemDef OID="I_DEMOG_SEX" Name="SEX" DataType="text" Length="1" SASFieldName="SEX" \
Comment="Sex">
        <Question><TranslatedText>Sex</TranslatedText></Question>
        <CodeListRef CodeListOID="CL_SEX"/>
      </ItemDef>
      <ItemDef OID="I_DEMOG_AGE" Name="AGE" DataType="integer" Length="3" SASFieldName="AGE" \
Comment="Age (years)"/>
      <ItemDef OID="I_CONME_CMTRT" Name="CMTRT" DataType="text" Length="200" \
SASFieldName="CMTRT" Comment="Medication"/>
      <ItemDef OID="I_VITAL_SBP" Name="SBP" DataType="integer" Length="3" SASFieldName="SBP" \
Comment="Systolic BP"/>
      <ItemDef OID="I_VITAL_WEIGHT" Name="WEIGHT" DataType="float" Length="5" \
SignificantDigits="1" SASFieldName="WEIGHT" Comment="Weight (kg)"/>
      <CodeList OID="CL_SEX" Name="SEX" DataType="text" SASFormatName="$SEX">
        <CodeListItem CodedValue="1"><Decode><TranslatedText>Male</TranslatedText></Decode>\
</CodeListItem>
        <CodeListItem CodedValue="2"><Decode><TranslatedText>Female</TranslatedText></Decode>\
</CodeListItem>
      </CodeList>
    </MetaDataVersion>
  </Study>
  <ClinicalData StudyOID="S_HTN01" MetaDataVersionOID="v1.0.0">
    <SubjectData SubjectKey="SS_101001" OpenClinica:StudySubjectID="101-001" \
OpenClinica:DateOfBirth="1960-05-14" OpenClinica:Sex="m" OpenClinica:Status="available">
      <SiteRef LocationOID="S_SITE101"/>
      <StudyEventData StudyEventOID="SE_SCREENING" OpenClinica:StartDate="2025-01-02">
        <FormData FormOID="F_DEMOG_V1" OpenClinica:Version="v1" OpenClinica:Status="complete">
          <ItemGroupData ItemGroupOID="IG_DEMOG_UNGROUPED" ItemGroupRepeatKey="1" \
TransactionType="Insert">
            <ItemData ItemOID="I_DEMOG_ENROLDATE" Value="2025-01-02"/>
            <ItemData ItemOID="I_DEMOG_SEX" Value="1"/>
            <ItemData ItemOID="I_DEMOG_AGE" Value="64"/>
          </ItemGroupData>
        </FormData>
        <FormData FormOID="F_CONMED_V1" OpenClinica:Version="v1">
          <ItemGroupData ItemGroupOID="IG_CONME_CM" ItemGroupRepeatKey="1" \
TransactionType="Insert">
            <ItemData ItemOID="I_CONME_CMTRT" Value="Aspirin"/>
          </ItemGroupData>
          <ItemGroupData ItemGroupOID="IG_CONME_CM" ItemGroupRepeatKey="2" \
TransactionType="Insert">
            <ItemData ItemOID="I_CONME_CMTRT" Value="Lisinopril"/>
          </ItemGroupData>
        </FormData>
      </StudyEventData>
      <StudyEventData StudyEventOID="SE_VISIT" StudyEventRepeatKey="1">
        <FormData FormOID="F_VITALS_V1" OpenClinica:Version="v1">
          <ItemGroupData ItemGroupOID="IG_VITAL_UNGROUPED" ItemGroupRepeatKey="1" \
TransactionType="Insert">
            <ItemData ItemOID="I_VITAL_SBP" Value="150"/>
            <ItemData ItemOID="I_VITAL_WEIGHT" Value="81.5"/>
          </ItemGroupData>
        </FormData>
      </StudyEventData>
      <StudyEventData StudyEventOID="SE_VISIT" StudyEventRepeatKey="2">
        <FormData FormOID="F_VITALS_V1" OpenClinica:Version="v1">
          <ItemGroupData ItemGroupOID="IG_VITAL_UNGROUPED" ItemGroupRepeatKey="1" \
TransactionType="Insert">
            <ItemData ItemOID="I_VITAL_SBP" Value="138"/>
          </ItemGroupData>
        </FormData>
      </StudyEventData>
    </SubjectData>
  </ClinicalData>
</ODM>
"""


def test_reads_an_openclinica_export(tmp_path: Path) -> None:
    read = read_odm(_write(tmp_path, OPENCLINICA))

    assert read.fields["ENROLDATE"] == FieldDef(
        "ENROLDATE", "Demographics - v1", "text", "Date of enrolment", validation="date_ymd"
    )
    assert read.fields["SEX"] == FieldDef(
        "SEX", "Demographics - v1", "radio", "Sex", {"1": "Male", "2": "Female"}
    )
    assert read.fields["AGE"].validation == "integer"
    assert read.fields["WEIGHT"].validation == "number"
    assert read.fields["CMTRT"].form == "Concomitant medications - v1"
    conmed = "Concomitant medications - v1"
    # Subjects by OpenClinica's study subject id, not the SubjectKey OID (SS_101001).
    assert [_key(r) for r in read.records] == [
        (
            "101-001",
            "Screening",
            None,
            None,
            "S_SITE101",
            {"ENROLDATE": "2025-01-02", "SEX": "1", "AGE": "64"},
        ),
        ("101-001", "Screening", conmed, 1, "S_SITE101", {"CMTRT": "Aspirin"}),
        ("101-001", "Screening", conmed, 2, "S_SITE101", {"CMTRT": "Lisinopril"}),
        ("101-001", "Visit", None, 1, "S_SITE101", {"SBP": "150", "WEIGHT": "81.5"}),
        ("101-001", "Visit", None, 2, "S_SITE101", {"SBP": "138"}),
    ]
    assert "1960-05-14" not in repr(read)
    assert read.dropped == ()
