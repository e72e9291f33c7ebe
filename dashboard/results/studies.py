"""A study's registry identity and plan, and its data cuts."""

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class StudyInfo:
    """The registry identity and plan of a study (a plain value: safe to cache and to pass around)."""

    study_id: str
    registry_id: str | None
    title: str
    sponsor: str | None
    phase: str | None
    design: str | None
    allocation: str | None
    masking: str | None
    is_blinded: bool | None  # None: unknown (no TS TBLIND, no registry masking)
    status: str | None
    condition: str | None
    intervention: str | None
    planned_enrollment: int | None
    enrollment_type: str | None
    min_age: float | None
    max_age: float | None
    sex: str | None
    planned_start: dt.date | None
    planned_end: dt.date | None
    is_synthetic: bool

    @property
    def counts_as_blinded(self) -> bool:
        """Blinded, or blinding unknown: unknown counts as blinded (DESIGN.md security model), so
        only a study known to be open label shows its arms to every viewer."""
        return self.is_blinded is not False


@dataclass(frozen=True)
class CutInfo:
    """One data cut of a study. ``id`` is the database's key, counted across every study; users
    are shown ``number`` of ``total`` (the study's own cuts, 1-based in load order), so the pilot's
    only cut reads "cut 1 of 1" whatever else the database holds."""

    id: int
    loaded_at: dt.datetime
    cutoff_date: dt.date | None
    label: str | None
    domains: tuple[str, ...]  # the SDTM domains the cut held (keys of its row counts)
    warnings: tuple[str, ...]
    number: int  # this study's cuts counted from 1 in load order
    total: int  # how many cuts the study has
    files: tuple[str, ...] = ()
    records: int = 0  # all records loaded, over every domain

    @property
    def name(self) -> str:
        """The cut as users are told of it: "cut 2 of 2"."""
        return f"cut {self.number} of {self.total}"
