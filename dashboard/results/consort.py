"""The counts of a CONSORT flow diagram: built by ``metrics.consort``, drawn by ``charts.consort``."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ArmFlow:
    """The enrolled subjects of one planned arm (DM.ARM) and where they are at the data cut.

    ``treated`` is None when exposure (EX) is unknown: the box says so instead of a count.
    ``discontinuation_reasons`` holds (DSDECOD, subjects) pairs, most first.
    """

    arm: str
    allocated: int
    treated: int | None  # None where exposure is unknown: the line is left out
    discontinued: int
    discontinuation_reasons: tuple[tuple[str, int], ...]
    completed: int
    ongoing: int


@dataclass(frozen=True)
class ConsortFlow:
    """The counts of a CONSORT diagram for one study (and site scope) at one data cut.

    ``exclusion_reasons`` holds (criterion label, distinct subjects) pairs, most first. A subject
    may fail several criteria, so they need not add up to ``screen_failures``;
    ``failures_without_reason`` counts screen failures with no criterion recorded (no IE domain,
    for instance) and ``not_allocated`` the screened subjects who are neither screen failures nor
    enrolled yet.
    """

    screened: int
    screen_failures: int
    exclusion_reasons: tuple[tuple[str, int], ...]
    failures_without_reason: int
    not_allocated: int
    enrolled: int
    arms: tuple[ArmFlow, ...]
