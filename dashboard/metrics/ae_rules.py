"""Adverse events: the classification rules of DESIGN.md ("Definitions"), a contract.

The rules are written once, here, as data: the query layer turns the same value lists into SQL
(``queries.adverse_events``), and the functions below apply them to single values, so a test can
compare the two.
"""

import datetime as dt

from dashboard.results.adverse_events import EMERGENT_DERIVED, EMERGENT_FLAGGED

__all__ = ["EMERGENT_DERIVED", "EMERGENT_FLAGGED"]  # the captions' wording of the rule below

# -- classification rules (DESIGN.md "Definitions", a contract) ------------------------------------

RELATED = "Related"
NOT_RELATED = "Not related"
UNKNOWN = "Unknown"

# AEREL as given, upper-cased and trimmed. Anything else (blank included) is "Unknown", shown as such.
RELATED_VALUES = (
    "Y",
    "RELATED",
    "DEFINITE",
    "PROBABLE",
    "PROBABLY RELATED",
    "POSSIBLE",
    "POSSIBLY RELATED",
)
NOT_RELATED_VALUES = ("N", "NOT RELATED", "NONE", "UNLIKELY", "UNLIKELY RELATED", "REMOTE")

# AESEV in the CDISC codelist (C66769), mildest first; AETOXGR as CTCAE grades 1-5.
SEVERITIES = ("MILD", "MODERATE", "SEVERE")
GRADES = ("1", "2", "3", "4", "5")
# "Severe / grade >= 3": AESEV SEVERE, or a CTCAE grade of 3 or more where AETOXGR is given.
SEVERE_SEVERITIES = ("SEVERE",)
SEVERE_GRADES = ("3", "4", "5")

# Treatment-emergent (DESIGN.md "AE incidence"): the sponsor's flag AETRTEM where the study's AEs
# carry it (the importer keeps it where all or most records hold Y or N), else derived from the
# dates. An AE without a flag in a flagged study is derived too. The captions name the rule used.
SPONSOR_FLAGS = ("Y", "N")  # AETRTEM values kept; anything else is not a flag

DISCONTINUATION_ACTION = "DRUG WITHDRAWN"  # AEACN
DS_ADVERSE_EVENT = "ADVERSE EVENT"  # DSDECOD, used where AEACN is blank for every AE
FATAL_OUTCOME = "FATAL"  # AEOUT; a death is AESDTH = Y or AEOUT = FATAL

# The summary table's rows: key, label. The keys are what a click on a cell carries.
SUMMARY_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("any", "Any AE"),
    ("serious", "Serious AE"),
    ("related", "Related AE"),
    ("severe", "Severe or grade ≥ 3 AE"),
    ("discontinuation", "AE leading to discontinuation"),
    ("death", "AE with a fatal outcome (death)"),
)

# Per-subject views: each event gets a rank, a subject counts once at its highest rank (rank 0 is
# "Unknown": only where no event of the subject says). Source values upper-cased and trimmed.
WORST_DIMENSIONS: dict[str, str] = {
    "severity": "Maximum severity (AESEV)",
    "grade": "Maximum CTCAE grade (AETOXGR)",
    "seriousness": "Seriousness (AESER)",
    "relationship": "Relationship to treatment (AEREL)",
}
# The SDTM variable behind each per-subject view.
SOURCE_VARIABLES = {
    "severity": "AESEV",
    "grade": "AETOXGR",
    "seriousness": "AESER",
    "relationship": "AEREL",
}
RANKED_VALUES: dict[str, dict[str, int]] = {
    "severity": {value: rank for rank, value in enumerate(SEVERITIES, start=1)},
    "grade": {value: int(value) for value in GRADES},
    "seriousness": {"N": 1, "Y": 2},
    "relationship": {
        **{value: 1 for value in NOT_RELATED_VALUES},
        **{value: 2 for value in RELATED_VALUES},
    },
}
LEVEL_LABELS: dict[str, dict[int, str]] = {
    "severity": {0: UNKNOWN, 1: "Mild", 2: "Moderate", 3: "Severe"},
    "grade": {0: UNKNOWN, **{int(g): f"Grade {g}" for g in GRADES}},
    "seriousness": {0: UNKNOWN, 1: "Not serious", 2: "Serious"},
    "relationship": {0: UNKNOWN, 1: NOT_RELATED, 2: RELATED},
}


def normalised(value: object) -> str:
    """A coded value as the rules compare it: trimmed, upper case, blank for None or NaN."""
    return value.strip().upper() if isinstance(value, str) else ""


def given_text(value: object) -> str | None:
    """Text as given, None for a blank (pandas gives NaN for a missing string)."""
    return value if isinstance(value, str) and value.strip() else None


def classify_relationship(value: str | None) -> str:
    """AEREL as given -> Related / Not related / Unknown (DESIGN.md)."""
    code = normalised(value)
    if code in RELATED_VALUES:
        return RELATED
    if code in NOT_RELATED_VALUES:
        return NOT_RELATED
    return UNKNOWN


def is_severe(severity: str | None, grade: str | None) -> bool:
    """AESEV SEVERE, or AETOXGR 3 or more."""
    return normalised(severity) in SEVERE_SEVERITIES or normalised(grade) in SEVERE_GRADES


def is_treatment_emergent(
    start_dtc: str | None,
    start_date: dt.date | None,
    first_dose_dtc: str | None,
    first_dose_date: dt.date | None,
    flag: str | None = None,
) -> bool:
    """The sponsor's AETRTEM where the AE carries it (Y / N); else derived: onset on or after the
    first dose. A subject never dosed has no treatment-emergent AE. An unknown onset, or a partial
    one (``2013-04``) in the period of the first dose, cannot be shown to precede the dose, so it
    counts as treatment-emergent (the conservative reading)."""
    if normalised(flag) in SPONSOR_FLAGS:
        return normalised(flag) == "Y"
    if first_dose_date is None:
        return False
    if start_date is None:
        return True
    if start_date >= first_dose_date:
        return True
    onset = (given_text(start_dtc) or "").strip()
    return 0 < len(onset) < 10 and (given_text(first_dose_dtc) or "").startswith(onset)


def seriousness_criteria(flags: dict[str, str | None]) -> str:
    """The criteria flagged Y, as a short list ("Death, Hospitalisation"); blank where none."""
    return ", ".join(name for name, value in flags.items() if normalised(value) == "Y")
