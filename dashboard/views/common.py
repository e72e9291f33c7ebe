"""What every view carries: the study, its data cuts, the cut "new since" refers to, and the
headline metric as pages draw it (``st.metric``) and the pack prints it."""

import datetime as dt
from dataclasses import dataclass

from dashboard.queries import studies
from dashboard.results.studies import CutInfo, StudyInfo
from dashboard.views.reader import Reader


class UnknownStudyError(LookupError):
    """No study with this id in the database."""


class UnknownCutError(LookupError):
    """The cut to compare with is not an earlier data cut of the study."""


@dataclass(frozen=True)
class Metric:
    """One headline figure: its label, value and the line under it (None: no line)."""

    label: str
    value: str | int
    delta: str | None = None
    help: str | None = None  # how the figure is derived, or why it is unknown (a help icon)


@dataclass(frozen=True)
class StudyFrame:
    """The study and its cuts, as every view shows them."""

    study: StudyInfo
    cuts: tuple[CutInfo, ...]
    since_cut: CutInfo | None

    @property
    def cut(self) -> CutInfo | None:
        """The latest data cut (None: a registry record only)."""
        return self.cuts[-1] if self.cuts else None

    @property
    def cutoff(self) -> dt.date | None:
        """The latest cut's cut-off date."""
        return self.cut.cutoff_date if self.cut else None


def study_frame(read: Reader) -> StudyFrame:
    """The study of ``read``'s context and the cut it compares with: the one asked for, else the
    one before the latest (the sidebar's default); none for a study with one cut or none.

    Raises UnknownStudyError, or UnknownCutError for a cut that is not an earlier cut."""
    study_id = read.ctx.study_id
    study = read(studies.study_info)
    if study is None:
        raise UnknownStudyError(study_id)
    cuts = tuple(read(studies.data_cuts))
    earlier = cuts[:-1]
    wanted = read.ctx.since_cut_id
    if wanted is None:
        return StudyFrame(study, cuts, earlier[-1] if earlier else None)
    found = next((c for c in earlier if c.id == wanted), None)
    if found is None:
        if not earlier:
            raise UnknownCutError(
                f"study {study_id} has {'one data cut' if cuts else 'no data cut'}: there is no "
                f"earlier cut {wanted} to compare with"
            )
        # --since-cut takes the database id; the study's own number is said beside it.
        listed = ", ".join(f"{c.id} ({c.name})" for c in earlier)
        raise UnknownCutError(
            f"cut {wanted} is not an earlier data cut of study {study_id} (earlier cuts: {listed})"
        )
    return StudyFrame(study, cuts, found)
