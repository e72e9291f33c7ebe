"""What the adverse-event queries return (``queries.adverse_events`` from the raw AEs,
``queries.safety_counts`` from the load-time counts): the same types either way."""

from dataclasses import dataclass

import pandas as pd

# Blank AEDECOD/AEBODSYS (the SDTM-MSG sample has them blank): the page groups by the verbatim term
# and an explicit "uncoded" class rather than dropping the events.
UNCODED_SOC = "(not coded)"
NO_ARM = "(no arm)"
TREATED = "treated"  # SafetyPopulation.basis: subjects with a first dose or an exposure record
# How a figure told treatment-emergent AEs (the captions say which; metrics.ae_rules has the rule).
EMERGENT_FLAGGED = "treatment-emergent as flagged by the sponsor (AETRTEM)"
EMERGENT_DERIVED = "derived: start on or after first dose"
ENROLLED_BASIS = "enrolled"  # no exposure in the study: enrolled subjects, planned arm


@dataclass(frozen=True)
class AdverseEventCounts:
    """The headline AE figures: events and distinct subjects, all and serious (AESER = Y)."""

    events: int
    subjects: int
    serious_events: int
    serious_subjects: int


@dataclass(frozen=True)
class SafetyPopulation:
    """The denominators of the tables by arm.

    basis: ``TREATED`` (actual arm) or ``ENROLLED_BASIS`` (planned arm, no exposure
    data);
    by_arm: arm, subjects (in arm order); first_dose_dates: some subject of the study has a first
    dose date; emergent_flagged: some AE of the study carries the sponsor's AETRTEM (Y / N);
    emergent_rule: how "treatment-emergent" is told (``metrics.ae_rules.EMERGENT_FLAGGED`` /
    ``EMERGENT_DERIVED``, or both where only some AEs are flagged), for the captions.
    """

    basis: str
    by_arm: pd.DataFrame
    first_dose_dates: bool
    emergent_flagged: bool = False
    emergent_rule: str = EMERGENT_DERIVED

    @property
    def tells_emergent(self) -> bool:
        """Treatment-emergent AEs can be told (first-dose dates or the sponsor's flag): the
        pages offer the switch."""
        return self.first_dose_dates or self.emergent_flagged

    @property
    def subjects(self) -> int:
        return int(self.by_arm["subjects"].sum())


@dataclass(frozen=True)
class SafetySummary:
    """The summary table's figures.

    counts: arm, category (a ``metrics.ae_rules.SUMMARY_CATEGORIES`` key), subjects, events
    (null for discontinuation read from DS); discontinuation_from_ds: AEACN is blank for every AE of the
    study, so "leading to discontinuation" is the subject-level DS reason ADVERSE EVENT;
    outside_events / outside_subjects: AEs (of subjects in scope) that are not in the safety
    population, so in the headline counts but in no table by arm; graded_events: AEs with an
    AETOXGR; uncoded_events: AEs without AEDECOD (grouped by AETERM).
    """

    counts: pd.DataFrame
    discontinuation_from_ds: bool
    outside_events: int
    outside_subjects: int
    graded_events: int
    uncoded_events: int
    # Per site (site_pk, outside_events, outside_subjects, graded, uncoded): the load-time
    # counts' rows; None when the figures above are already for the whole scope.
    outside_by_site: pd.DataFrame | None = None


@dataclass(frozen=True)
class TermIncidence:
    """Incidence by SOC and PT per arm. by_pt: arm, soc, pt, subjects, events; by_soc: arm, soc,
    subjects, events. The PT is AEDECOD, else AETERM; the SOC is AEBODSYS, else ``UNCODED_SOC``."""

    by_pt: pd.DataFrame
    by_soc: pd.DataFrame
