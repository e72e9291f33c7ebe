"""ClinicalTrials.gov API v2 study records: the registry facts of a study, its criteria and sites.

``import_ctgov_record`` turns one record (``/api/v2/studies/NCT...``) into the Study row, one Site per
location and one Criterion per eligibility criterion, in the caller's session: the caller commits.
The whole record is read and checked before anything is written, so a bad record writes nothing.
Registry figures are taken as given (an ACTUAL enrollment of 0 is 0).
"""

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from dashboard.models import Criterion, DataCut, EligibilityFinding, Site, Study, Subject
from dashboard.views.format import plural

INCLUSION = "INCLUSION"
EXCLUSION = "EXCLUSION"


class RegistryRecordError(ValueError):
    """A registry record that cannot be imported; the message names the file and the field."""


@dataclass(frozen=True)
class ParsedCriterion:
    category: str  # INCLUSION / EXCLUSION
    text: str


@dataclass(frozen=True)
class CtgovImportResult:
    """What one import did: the study it wrote, the counts it found in the record, and warnings."""

    study_id: str
    created: bool
    inclusion: int
    exclusion: int
    sites: int
    warnings: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# eligibilityCriteria: Markdown text written by hand, so headings and list styles vary
# ---------------------------------------------------------------------------------------------

# "Key Inclusion Criteria:", "INCLUSION CRITERIA", "Inclusion criteria include:", "Exclusion:" ...
_HEADING = re.compile(
    r"^(?:(?:key|main|major|principal|general|additional|other)\s+)?"
    r"(?P<kind>inclusion|exclusion)"
    r"(?P<word>\s+criteri(?:a|on))?"
    r"(?P<tail>[^:]*?)\s*"
    r"(?:(?P<colon>:)\s*(?P<rest>.*))?$",
    re.IGNORECASE,
)
_HEADING_TAIL_WORDS = {"", "include", "includes", "are", "is"}
# A heading that names no category: "Eligibility criteria:", "Eligibility", "Criteria:",
# "Key eligibility criteria", "Selection criteria:", "Criteria for participation:".
_GENERIC_HEADING = re.compile(
    r"^(?:(?:key|main|general|study|participant|patient|subject)\s+)?"
    r"(?:eligibility(?:\s+criteri(?:a|on))?|criteria|selection\s+criteria)"
    r"(?:\s+for\s+[^:.]{1,40})?\s*(?::\s*(?P<rest>.*))?$",
    re.IGNORECASE,
)
# "*", "-", "+", "•" and numbered or lettered items ("1.", "2)", "a.", "(b)", "iv.").
_BULLET = re.compile(
    r"^(?P<indent>[ \t]*)"
    r"(?:[*\-+\u2022\u25aa\u25cf\u00b7]|\d{1,3}[.)]|\((?:\d{1,3}|[ivx]+|[a-z])\)|(?:[ivx]+|[a-z])[.)])"
    r"(?:[ \t]+|$)(?P<text>.*)$",
    re.IGNORECASE,
)
# Markdown escapes ("\<126 mg/dl", "\[Eichenfeld 2004\]") are syntax, not wording.
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")
# The registry's list punctuation ("...; or", "...;") is not part of a criterion's wording.
_TRAILING_JOINER = re.compile(r"\s*;\s*(?:(?:and|or)\s*)?$", re.IGNORECASE)
# "Exclusion criteria: None" lists no criterion.
_NO_CRITERION = {"none", "n/a", "na", "not applicable", "-"}


def _heading(line: str) -> tuple[str, str] | None:
    """(category, text after the colon) where ``line`` is an inclusion/exclusion heading."""
    plain = re.sub(r"[*_\\]", "", line).lstrip("#").strip()
    match = _HEADING.match(plain)
    if not match:
        return None
    tail = match.group("tail").strip().lower()
    if match.group("word"):
        # "Inclusion Criteria for Part A:" is a heading; "Inclusion criteria were ..." is a sentence.
        is_heading = (
            bool(match.group("colon"))
            or tail in _HEADING_TAIL_WORDS
            or (len(tail) <= 40 and not tail.endswith("."))
        )
    else:
        # Without the word "criteria" only a bare "Inclusion:" / "EXCLUSION" is taken as a heading.
        is_heading = tail == "" and not (match.group("rest") or "").strip()
    if not is_heading:
        return None
    return match.group("kind").upper(), (match.group("rest") or "").strip()


def _generic_heading(line: str) -> str | None:
    """The text after the colon (possibly "") where ``line`` is a heading naming no category."""
    plain = re.sub(r"[*_\\]", "", line).lstrip("#").strip()
    match = _GENERIC_HEADING.match(plain)
    return None if match is None else (match.group("rest") or "").strip()


def _preview(lines: list[str], limit: int = 80) -> str:
    text = " / ".join(line.strip() for line in lines if line.strip())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _clean(text: str) -> str:
    text = _ESCAPE.sub(r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    return _TRAILING_JOINER.sub("", text).strip()


def _indent(whitespace: str) -> int:
    return len(whitespace.expandtabs(4))


def _leading(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _is_wording(text: str) -> bool:
    return bool(text) and text.lower().rstrip(".") not in _NO_CRITERION


@dataclass
class _Item:
    text: str
    subs: list[str] = field(default_factory=list)

    def append(self, more: str) -> None:
        if self.subs:
            self.subs[-1] = f"{self.subs[-1]} {more}"
        else:
            self.text = f"{self.text} {more}"

    def wording(self) -> str:
        text = _clean(self.text)
        subs = [s for s in (_clean(sub) for sub in self.subs) if s]
        if not subs:
            return text
        return f"{text.rstrip(':').rstrip()}: {'; '.join(subs)}"


def _section_criteria(lines: list[str]) -> list[str]:
    """The criteria of one heading's lines: list items, or every plain line where there is no list."""
    bullets = [_BULLET.match(line) for line in lines]
    if not any(m and m.group("text").strip() for m in bullets):
        return [text for text in (_clean(line) for line in lines) if _is_wording(text)]
    items: list[_Item] = []
    top_indent: int | None = None
    after_blank = False
    for line, bullet in zip(lines, bullets, strict=True):
        if not line.strip():
            after_blank = True
            continue
        if bullet:
            text = bullet.group("text").strip()
            indent = _indent(bullet.group("indent"))
            if not text:
                pass  # an empty list marker, a leftover of the registry's text conversion
            elif top_indent is None or indent <= top_indent or not items:
                # The first item sets the list's level; a sub-item is indented deeper than it.
                top_indent = indent if top_indent is None else min(top_indent, indent)
                items.append(_Item(text))
            else:
                items[-1].subs.append(text)
        elif items and (not after_blank or _indent(_leading(line)) > (top_indent or 0)):
            # Markdown: a line right after an item, or an indented paragraph, continues that item.
            items[-1].append(line.strip())
        # Anything else (a lead-in sentence, a closing note) is not a criterion.
        after_blank = False
    return [text for text in (item.wording() for item in items) if _is_wording(text)]


def parse_eligibility_criteria(text: str) -> list[ParsedCriterion]:
    """Split registry ``eligibilityCriteria`` text into criteria, in the record's order (see
    ``read_eligibility_criteria``, which also says what was not read as written)."""
    return read_eligibility_criteria(text)[0]


def read_eligibility_criteria(text: str) -> tuple[list[ParsedCriterion], list[str]]:
    """Criteria of registry ``eligibilityCriteria`` text, and notes on what was not read as written.

    Criteria are the list items under each inclusion/exclusion heading ("Inclusion Criteria:",
    "Key Exclusion Criteria", "INCLUSION CRITERIA", "**Exclusion criteria:**" ...). An indented
    sub-item belongs to its parent: ``"parent: sub 1; sub 2"``. Under a heading without any list,
    every non-empty line is a criterion. Markdown escapes and the list's trailing ";" / "; or" are
    dropped from the wording; notes outside a list under a heading are not criteria.

    Under a heading that names no category ("Eligibility criteria:", "Criteria:") before any
    inclusion or exclusion heading, the criteria are inclusion criteria (the registry's form lists
    inclusion first), and a note says so; after one, such a line is part of that heading's section
    ("Criteria for part B:" under "Exclusion Criteria:"). Text before the first heading, and plain
    lines (no list) under a generic heading followed by named ones, are not read as criteria, and a
    note quotes them.
    """
    sections: list[tuple[str | None, str, list[str]]] = []  # category, heading, lines
    before: list[str] = []
    for raw in text.splitlines():
        heading = None if _BULLET.match(raw) else _heading(raw.strip())
        named_before = any(section[0] is not None for section in sections)
        generic = (
            None if heading or named_before or _BULLET.match(raw) else _generic_heading(raw.strip())
        )
        if heading:
            kind, rest = heading
            sections.append((kind, raw.strip(), [rest] if rest else []))
        elif generic is not None:
            sections.append((None, raw.strip(), [generic] if generic else []))
        elif sections:
            sections[-1][2].append(raw.rstrip())
        else:
            before.append(raw)
    notes: list[str] = []
    if sections and any(line.strip() for line in before):
        notes.append(
            f"text before the first inclusion or exclusion heading was not read as criteria: "
            f"{_preview(before)!r}"
        )
    criteria: list[ParsedCriterion] = []
    has_named = any(section[0] is not None for section in sections)
    for named, heading_text, lines in sections:
        wordings = _section_criteria(lines)
        category = named
        if category is None and wordings and has_named and not any(map(_BULLET.match, lines)):
            # Plain lines under "Eligibility criteria:" before "Inclusion Criteria:": a lead-in.
            notes.append(
                f"text under the heading {heading_text!r} was not read as criteria: "
                f"{_preview(wordings)!r}"
            )
            continue
        if category is None and wordings:
            notes.append(
                f"{len(wordings)} criteria under the heading {heading_text!r} (no inclusion heading) "
                "were read as inclusion criteria"
            )
            category = INCLUSION
        criteria += [ParsedCriterion(category, wording) for wording in wordings if category]
    return criteria, notes


# ---------------------------------------------------------------------------------------------
# Registry values
# ---------------------------------------------------------------------------------------------

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?\s*$", re.IGNORECASE)
_PER_YEAR = {
    "year": 1.0,
    "month": 12.0,
    "week": 52.1775,
    "day": 365.25,
    "hour": 365.25 * 24,
    "minute": 365.25 * 24 * 60,
}
_REGISTRY_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def age_in_years(value: str | None) -> float | None:
    """``"45 Years"`` -> 45.0; months, weeks, days, hours converted; None where absent or unreadable."""
    if not value:
        return None
    match = _AGE.match(value)
    if not match:
        return None
    return float(match.group(1)) / _PER_YEAR[match.group(2).lower()]


def registry_date(value: str | None) -> dt.date | None:
    """``"2019-09-13"`` -> that day; a partial ``"2019-09"`` or ``"2019"`` -> the period's first day.

    None where absent; ValueError for anything else.
    """
    if value is None or not value.strip():
        return None
    match = _REGISTRY_DATE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    year, month, day = (int(part) if part else 1 for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


def phase_label(phases: list[str]) -> str | None:
    """``["PHASE2"]`` -> "Phase 2"; ``["PHASE1", "PHASE2"]`` -> "Phase 1/Phase 2"; ``["NA"]`` ->
    "Not applicable"; None for an empty list (observational studies have no phase)."""
    labels = []
    for phase in phases:
        code = phase.strip().upper()
        if code == "NA":
            labels.append("Not applicable")
        elif match := re.fullmatch(r"(EARLY_)?PHASE(\d)", code):
            labels.append(f"{'Early phase' if match.group(1) else 'Phase'} {match.group(2)}")
        else:
            labels.append(phase)
    return "/".join(labels) or None


def _words(code: object) -> str:
    return str(code).strip().replace("_", " ").lower()


def design_phrase(design: dict[str, Any], study_type: str | None) -> str | None:
    """A short readable design, e.g. "Randomized, parallel assignment, double blind" or, for an
    observational study, "Observational, cohort, prospective"."""
    info = design.get("designInfo")
    if not isinstance(info, dict):
        info = {}
    parts: list[str] = []
    if (study_type or "").upper() == "OBSERVATIONAL":
        parts.append("observational")
        parts += [_words(info[k]) for k in ("observationalModel", "timePerspective") if info.get(k)]
    else:
        allocation = str(info.get("allocation") or "").upper()
        if allocation == "NON_RANDOMIZED":
            parts.append("non-randomized")
        elif allocation and allocation != "NA":
            parts.append(_words(allocation))
        if info.get("interventionModel"):
            parts.append(f"{_words(info['interventionModel'])} assignment")
        masking = _masking(info)
        if masking:
            parts.append("open label" if masking == "NONE" else f"{_words(masking)} blind")
    phrase = ", ".join(parts)
    return phrase[:1].upper() + phrase[1:] if phrase else None


def _masking(info: dict[str, Any]) -> str | None:
    masking_info = info.get("maskingInfo")
    value = masking_info.get("masking") if isinstance(masking_info, dict) else None
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def protocol(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``protocolSection`` (empty where absent)."""
    section = record.get("protocolSection")
    return section if isinstance(section, dict) else {}


# ---------------------------------------------------------------------------------------------
# Reading a record into plain facts (checked, nothing written yet)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SiteFacts:
    site_id: str
    name: str | None
    city: str | None
    country: str | None


@dataclass(frozen=True)
class _CriterionFacts:
    code: str
    category: str
    text: str
    seq: int


@dataclass(frozen=True)
class _RecordFacts:
    nct_id: str
    study: dict[str, Any]  # Study field -> value; None where the record does not say
    sites: tuple[_SiteFacts, ...]
    criteria: tuple[_CriterionFacts, ...] | None  # None: the record has no eligibility text
    warnings: tuple[str, ...]


class _Reader:
    """Typed access to the record's nested JSON; a value of the wrong type names its path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []

    def error(self, message: str) -> RegistryRecordError:
        return RegistryRecordError(f"{self.source}: {message}")

    def module(self, parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = parent.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{path}.{key} should be an object, not {_json_type(value)}")
        return value

    def text(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"{path}.{key} should be text, not {_json_type(value)}")
        return value.strip() or None

    def texts(self, parent: dict[str, Any], key: str, path: str) -> list[str]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(f"{path}.{key} should be a list of texts")
        return [v.strip() for v in value if v.strip()]

    def modules(self, parent: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(f"{path}.{key} should be a list of objects")
        return value

    def count(self, parent: dict[str, Any], key: str, path: str) -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(f"{path}.{key} should be a whole number >= 0, not {value!r}")
        return value

    def date(self, parent: dict[str, Any], key: str, path: str) -> dt.date | None:
        struct = self.module(parent, key, path)
        try:
            return registry_date(self.text(struct, "date", f"{path}.{key}"))
        except ValueError as error:
            self.warnings.append(f"{path}.{key}.date: {error}; left empty")
            return None

    def age(self, parent: dict[str, Any], key: str, path: str) -> float | None:
        value = self.text(parent, key, path)
        years = age_in_years(value)
        if value is not None and years is None:
            self.warnings.append(f"{path}.{key}: {value!r} is not an age; left empty")
        return years


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _title_code(code: str) -> str:
    words = _words(code)
    return words[:1].upper() + words[1:]


def _read_record(record: object, *, source: str) -> _RecordFacts:
    """Check a record and read it into plain facts; RegistryRecordError names what is wrong."""
    reader = _Reader(source)
    if not isinstance(record, dict):
        raise reader.error(f"expected one study record (a JSON object), not {_json_type(record)}")
    if "protocolSection" not in record:
        if isinstance(record.get("studies"), list):
            raise reader.error(
                f"a search result with {len(record['studies'])} studies, not one study record"
            )
        raise reader.error("no protocolSection: not a ClinicalTrials.gov API v2 study record")
    p = "protocolSection"
    proto = reader.module(record, p, "record")
    ident = reader.module(proto, "identificationModule", p)
    nct_id = reader.text(ident, "nctId", f"{p}.identificationModule")
    if nct_id is None:
        raise reader.error(f"{p}.identificationModule.nctId is missing")
    if nct_id not in source:
        reader.source = f"{source} ({nct_id})"

    status = reader.module(proto, "statusModule", p)
    sponsors = reader.module(proto, "sponsorCollaboratorsModule", p)
    lead_sponsor = reader.module(sponsors, "leadSponsor", f"{p}.sponsorCollaboratorsModule")
    design = reader.module(proto, "designModule", p)
    design_info = reader.module(design, "designInfo", f"{p}.designModule")
    enrollment = reader.module(design, "enrollmentInfo", f"{p}.designModule")
    eligibility = reader.module(proto, "eligibilityModule", p)
    conditions = reader.module(proto, "conditionsModule", p)
    arms = reader.module(proto, "armsInterventionsModule", p)
    contacts = reader.module(proto, "contactsLocationsModule", p)

    interventions = []
    path = f"{p}.armsInterventionsModule.interventions"
    for i, item in enumerate(reader.modules(arms, "interventions", f"{p}.armsInterventionsModule")):
        name = reader.text(item, "name", f"{path}[{i}]")
        kind = reader.text(item, "type", f"{path}[{i}]")
        if name:
            interventions.append(f"{_title_code(kind)}: {name}" if kind else name)
    masking = _masking(design_info)
    study_type = reader.text(design, "studyType", f"{p}.designModule")
    is_blinded: bool | None = None if masking is None else masking != "NONE"
    if masking is None and (study_type or "").upper() == "OBSERVATIONAL":
        is_blinded = False  # no treatment is assigned, so there is nothing to blind
    elif masking is None:
        reader.warnings.append(
            f"{p}.designModule.designInfo.maskingInfo.masking is missing: the record does "
            "not say whether the study is blinded (unknown blinding counts as blinded)"
        )
    study: dict[str, Any] = {
        "registry_id": nct_id,
        "title": reader.text(ident, "briefTitle", f"{p}.identificationModule")
        or reader.text(ident, "officialTitle", f"{p}.identificationModule"),
        "sponsor": reader.text(lead_sponsor, "name", f"{p}.sponsorCollaboratorsModule.leadSponsor"),
        "phase": phase_label(reader.texts(design, "phases", f"{p}.designModule")),
        "design": design_phrase(design, study_type),
        "allocation": reader.text(design_info, "allocation", f"{p}.designModule.designInfo"),
        "masking": masking,
        "is_blinded": is_blinded,
        "status": reader.text(status, "overallStatus", f"{p}.statusModule"),
        "condition": ", ".join(reader.texts(conditions, "conditions", f"{p}.conditionsModule"))
        or None,
        "intervention": "; ".join(interventions) or None,
        "planned_enrollment": reader.count(enrollment, "count", f"{p}.designModule.enrollmentInfo"),
        "enrollment_type": reader.text(enrollment, "type", f"{p}.designModule.enrollmentInfo"),
        "min_age": reader.age(eligibility, "minimumAge", f"{p}.eligibilityModule"),
        "max_age": reader.age(eligibility, "maximumAge", f"{p}.eligibilityModule"),
        "sex": reader.text(eligibility, "sex", f"{p}.eligibilityModule"),
        "planned_start": reader.date(status, "startDateStruct", f"{p}.statusModule"),
        "planned_end": reader.date(status, "primaryCompletionDateStruct", f"{p}.statusModule")
        or reader.date(status, "completionDateStruct", f"{p}.statusModule"),
    }

    path = f"{p}.contactsLocationsModule.locations"
    sites = []
    for number, location in enumerate(
        reader.modules(contacts, "locations", f"{p}.contactsLocationsModule"), start=1
    ):
        where = f"{path}[{number - 1}]"
        sites.append(
            _SiteFacts(
                site_id=f"{number:02d}",
                name=reader.text(location, "facility", where),
                city=reader.text(location, "city", where),
                country=reader.text(location, "country", where),
            )
        )

    path = f"{p}.eligibilityModule.eligibilityCriteria"
    criteria_text = reader.text(eligibility, "eligibilityCriteria", f"{p}.eligibilityModule")
    parsed, notes = read_eligibility_criteria(criteria_text or "")
    reader.warnings += [f"{path}: {note}" for note in notes]
    criteria: tuple[_CriterionFacts, ...] | None = None
    if criteria_text is None:
        reader.warnings.append(f"{path} is missing: the study's criteria are left as they are")
    elif not parsed:
        reader.warnings.append(
            f"{path} has no inclusion or exclusion heading to read criteria under: the study's "
            "criteria are left as they are"
        )
    else:
        numbers = {INCLUSION: 0, EXCLUSION: 0}
        found = []
        for position, criterion in enumerate(parsed, start=1):
            numbers[criterion.category] += 1
            # CDISC TI codes: INCL01.., EXCL01.., numbered within each category.
            code = f"{criterion.category[:4]}{numbers[criterion.category]:02d}"
            found.append(_CriterionFacts(code, criterion.category, criterion.text, position))
        criteria = tuple(found)
    return _RecordFacts(nct_id, study, tuple(sites), criteria, tuple(reader.warnings))


# ---------------------------------------------------------------------------------------------
# Writing the facts (in the caller's session; the caller commits)
# ---------------------------------------------------------------------------------------------


def import_ctgov_record(
    session: Session,
    record: dict[str, Any],
    *,
    study_id: str | None = None,
    source: str | None = None,
) -> CtgovImportResult:
    """Create or update a study from a ClinicalTrials.gov API v2 record, with its sites and criteria.

    The study's id is the record's NCT id, unless ``study_id`` names an existing study to enrich
    (a study loaded from SDTM, say). Registry facts the record gives replace the study's; facts it
    does not give are left as they are; ``is_synthetic`` is never changed. Sites ("01", "02", ...
    in record order) and criteria (INCL01.., EXCL01.., protocol version "") are matched by their
    codes: updated, added, and removed when no longer in the record unless subject data refer to
    them (then kept, with a warning). Nothing is written when the record is invalid.
    """
    facts = _read_record(record, source=source or "registry record")
    label = source or f"registry record {facts.nct_id}"
    warnings = list(facts.warnings)
    if study_id is not None:
        study = session.get(Study, study_id)
        if study is None:
            raise RegistryRecordError(f"{label}: there is no study {study_id!r} to enrich")
        if study.registry_id and study.registry_id != facts.nct_id:
            raise RegistryRecordError(
                f"{label}: study {study_id} has registry id {study.registry_id}, "
                f"the record is {facts.nct_id}"
            )
    else:
        study_id = facts.nct_id
        study = session.get(Study, study_id)
        namesakes = session.exec(
            select(col(Study.study_id)).where(
                col(Study.registry_id) == facts.nct_id, col(Study.study_id) != study_id
            )
        ).all()
        warnings += [
            f"study {other} already carries registry id {facts.nct_id}; this record was imported "
            f"as study {study_id} (name {other} as the study id to enrich it instead)"
            for other in namesakes
        ]

    created = study is None
    if study is None:
        study = Study(study_id=study_id)
    for name, value in facts.study.items():
        if value is not None:
            setattr(study, name, value)
    session.add(study)
    # No ORM relationships are declared, so the study is flushed before the rows that refer to it.
    session.flush()

    has_data = session.exec(
        select(col(DataCut.id)).where(col(DataCut.study_id) == study_id).limit(1)
    ).first()
    if has_data is None:
        warnings += _write_sites(session, study_id=study_id, sites=facts.sites)
        if facts.criteria is not None:
            warnings += _write_criteria(session, study_id=study_id, criteria=facts.criteria)
    else:
        # Loaded study data (SDTM SITEID, TI) name the sites and criteria the figures count; the
        # registry's locations and bullet list cannot be matched to them, so they are left out.
        warnings.append(
            f"study {study_id} has loaded data: its sites and criteria come from the data, the "
            f"registry's {plural(len(facts.sites), 'location')} and "
            f"{len(facts.criteria or ())} criteria were not applied"
        )
    session.flush()
    criteria = facts.criteria or ()
    return CtgovImportResult(
        study_id=study_id,
        created=created,
        inclusion=sum(c.category == INCLUSION for c in criteria),
        exclusion=sum(c.category == EXCLUSION for c in criteria),
        sites=len(facts.sites),
        warnings=tuple(warnings),
    )


def _write_sites(session: Session, *, study_id: str, sites: tuple[_SiteFacts, ...]) -> list[str]:
    existing = {
        site.site_id: site
        for site in session.exec(select(Site).where(col(Site.study_id) == study_id)).all()
    }
    for facts in sites:
        site = existing.get(facts.site_id) or Site(study_id=study_id, site_id=facts.site_id)
        for name in ("name", "city", "country"):
            value = getattr(facts, name)
            if value is not None:
                setattr(site, name, value)
        session.add(site)
    wanted = {facts.site_id for facts in sites}
    stale = [site for site_id, site in sorted(existing.items()) if site_id not in wanted]
    in_use: set[int | None] = set()
    if stale:
        in_use = set(
            session.exec(
                select(col(Subject.site_pk)).where(col(Subject.site_pk).in_([s.id for s in stale]))
            ).all()
        )
    kept: list[str] = []
    for site in stale:
        if site.id in in_use:
            kept.append(site.site_id)
        else:
            session.delete(site)
    return [
        f"site {site_id} of study {study_id} is not among the record's locations; kept because "
        "subjects belong to it"
        for site_id in kept
    ]


def _write_criteria(
    session: Session, *, study_id: str, criteria: tuple[_CriterionFacts, ...]
) -> list[str]:
    existing = {
        criterion.code: criterion
        for criterion in session.exec(
            select(Criterion).where(
                col(Criterion.study_id) == study_id, col(Criterion.protocol_version) == ""
            )
        ).all()
    }
    for facts in criteria:
        # A rule set on the criterion (by hand or by the demo) is kept: the registry has none.
        criterion = existing.get(facts.code) or Criterion(
            study_id=study_id, code=facts.code, protocol_version="", category="", text=""
        )
        criterion.category = facts.category
        criterion.text = facts.text
        criterion.seq = facts.seq
        session.add(criterion)
    wanted = {facts.code for facts in criteria}
    stale = [c for code, c in sorted(existing.items()) if code not in wanted]
    in_use: set[int] = set()
    if stale:
        in_use = set(
            session.exec(
                select(col(EligibilityFinding.criterion_pk)).where(
                    col(EligibilityFinding.criterion_pk).in_([c.id for c in stale])
                )
            ).all()
        )
    warnings = []
    for criterion in stale:
        if criterion.id in in_use:
            warnings.append(
                f"criterion {criterion.code} of study {study_id} is no longer in the record; "
                "kept because eligibility findings refer to it"
            )
        else:
            session.delete(criterion)
    return warnings


def import_ctgov_file(
    session: Session, path: Path, *, study_id: str | None = None
) -> CtgovImportResult:
    """Import one ClinicalTrials.gov API v2 study record from a JSON file (see import_ctgov_record)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RegistryRecordError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RegistryRecordError(f"{path}: is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise RegistryRecordError(f"{path}: not UTF-8 text, so not a JSON record") from None
    except OSError as error:
        raise RegistryRecordError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise RegistryRecordError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    return import_ctgov_record(session, record, study_id=study_id, source=str(path))
