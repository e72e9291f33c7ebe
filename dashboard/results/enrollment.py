"""What the enrollment queries return: subjects by population and the screening funnel."""

from dataclasses import dataclass


@dataclass(frozen=True)
class PopulationCounts:
    """Subjects by population (DESIGN.md definitions); screened is every subject."""

    screened: int
    screen_failures: int
    enrolled: int
    not_assigned: int
    in_screening: int

    @property
    def screen_failure_rate(self) -> float | None:
        """Screen failures / screened; None for a study with nobody screened."""
        return self.screen_failures / self.screened if self.screened else None


@dataclass(frozen=True)
class FunnelCounts:
    """The screening funnel (DESIGN.md definitions).

    treated: enrolled subjects with a first dose (RFXSTDTC / EX); None where the data hold no
    exposure at all (treatment unknown, not zero).
    """

    screened: int
    screen_failures: int
    in_screening: int  # no decision yet
    not_assigned: int  # eligible, not (yet) assigned to an arm
    enrolled: int
    treated: int | None
    completed: int
    discontinued: int
    ongoing: int

    @property
    def not_allocated(self) -> int:
        """Screened, neither failed nor enrolled."""
        return self.in_screening + self.not_assigned
