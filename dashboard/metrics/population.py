"""Who counts as screened, screen-failed, enrolled: DESIGN.md's figure definitions, in one place.

These run once per subject at load time (demo or import) and the result is stored in
``Subject.population`` / ``Subject.status``, so every SQL count, page and CLI figure agrees.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from dashboard.results.population import ENROLLED, IN_SCREENING, NOT_ASSIGNED, SCREEN_FAILURE

SCREEN_FAILURE_ARMCD = "SCRNFAIL"  # CDISC pilot writes it "Scrnfail": compared case-blind
NOT_ASSIGNED_ARMCD = "NOTASSGN"


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def classify_subject(
    *,
    arm_code: str | None,
    arm: str | None,
    arm_not_assigned_reason: str | None,
    has_screen_failure_disposition: bool,
    enrollment_dtc: str | None,
) -> str:
    """The subject's population, one of ``results.population.POPULATIONS``.

    - Screen failure: ARMCD ``SCRNFAIL`` (any case), or ARM blank with ARMNRS ``SCREEN FAILURE``,
      or a DS ``SCREEN FAILURE`` with no arm assigned (a rescreened subject later assigned to an arm
      is enrolled, not a failure).
    - Enrolled: assigned to an arm (ARMCD not blank, not ``NOTASSGN``) or with an enrollment date.
    - Not assigned: ARMCD ``NOTASSGN`` or ARMNRS ``NOT ASSIGNED`` without a failure.
    - In screening: none of these yet.
    """
    armcd = (arm_code or "").strip().upper()
    reason = (arm_not_assigned_reason or "").strip().upper()
    assigned = bool(armcd) and armcd not in (SCREEN_FAILURE_ARMCD, NOT_ASSIGNED_ARMCD)
    if armcd == SCREEN_FAILURE_ARMCD:
        return SCREEN_FAILURE
    if _blank(arm) and reason == "SCREEN FAILURE":
        return SCREEN_FAILURE
    if has_screen_failure_disposition and not assigned:
        return SCREEN_FAILURE
    if assigned or not _blank(enrollment_dtc):
        return ENROLLED
    if armcd == NOT_ASSIGNED_ARMCD or reason == "NOT ASSIGNED":
        return NOT_ASSIGNED
    return IN_SCREENING


@dataclass(frozen=True)
class DispositionEvent:
    category: str | None  # DSCAT
    term: str | None  # DSDECOD
    epoch: str | None
    date: date | None


def subject_status(population: str, events: Iterable[DispositionEvent]) -> str | None:
    """ONGOING / COMPLETED / DISCONTINUED for an enrolled subject, None for anyone else.

    The status is the latest DSCAT ``DISPOSITION EVENT`` outside the SCREENING epoch (protocol
    milestones do not count): a subject with an end-of-treatment and an end-of-study COMPLETED is one
    completer; any other latest term is a discontinuation.
    """
    if population != ENROLLED:
        return None
    relevant = [
        e
        for e in events
        if (e.category or "").upper() == "DISPOSITION EVENT"
        and (e.epoch or "").upper() != "SCREENING"
        and (e.term or "").upper() != "SCREEN FAILURE"
    ]
    if not relevant:
        return "ONGOING"
    latest = max(relevant, key=lambda e: e.date or date.min)
    return "COMPLETED" if (latest.term or "").upper() == "COMPLETED" else "DISCONTINUED"
