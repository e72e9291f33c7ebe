"""ClinicalTrials.gov API v2 study records: the registry facts of a study and its criteria.

Only the parsing lives here so far; ``study-monitor import ctgov`` builds on it (issue #3).
"""

import re
from dataclasses import dataclass
from typing import Any

_HEADINGS = {
    "inclusion criteria": "INCLUSION",
    "exclusion criteria": "EXCLUSION",
}
_BULLET = re.compile(r"^\s*(?:[*\-\u2022]|\d+[.)])\s+")


@dataclass(frozen=True)
class ParsedCriterion:
    category: str  # INCLUSION / EXCLUSION
    text: str


def parse_eligibility_criteria(text: str) -> list[ParsedCriterion]:
    """Split registry ``eligibilityCriteria`` text into criteria, one per bullet line.

    Lines before the first "Inclusion/Exclusion Criteria:" heading and lines that are not bullets are
    ignored; a trailing ";" of the registry's wording is dropped.
    """
    criteria: list[ParsedCriterion] = []
    category: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        heading = line.rstrip(":").strip().lower()
        if heading in _HEADINGS:
            category = _HEADINGS[heading]
            continue
        if category and _BULLET.match(line):
            wording = _BULLET.sub("", line).strip().rstrip(";").strip()
            if wording:
                criteria.append(ParsedCriterion(category, wording))
    return criteria


def age_in_years(value: str | None) -> float | None:
    """``"45 Years"`` -> 45.0; months and weeks converted; None where absent or unreadable."""
    if not value:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(year|month|week|day)s?\s*$", value, re.IGNORECASE)
    if not match:
        return None
    per_year = {"year": 1.0, "month": 12.0, "week": 52.1775, "day": 365.25}
    return float(match.group(1)) / per_year[match.group(2).lower()]


def protocol(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``protocolSection`` (empty where absent)."""
    section = record.get("protocolSection")
    return section if isinstance(section, dict) else {}
