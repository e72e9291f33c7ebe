"""What changed since an earlier data cut: the subjects' half, the AEs' half and both together."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SubjectChanges:
    since_cut_id: int
    new_subjects: int
    new_screen_failures: int
    new_enrolled: int
    changed_subjects: int


@dataclass(frozen=True)
class AdverseEventChanges:
    since_cut_id: int
    new_adverse_events: int
    new_serious_adverse_events: int
    changed_adverse_events: int  # AEs of an earlier cut that a later one altered


@dataclass(frozen=True)
class ChangesSince(SubjectChanges, AdverseEventChanges):
    """Both kinds of change: the Overview and the pack show them all
    (``safety_counts.changes_since``)."""
