"""What a view is built for: one study, seen by one viewer, at some sites, over some screening
period, compared with an earlier data cut. Plain values only: a ``ViewContext`` is hashable, so
the app's cache keys on it and two viewers with different rights never share an answer.

Whether the viewer sees the study's arms is decided here and nowhere else (DESIGN.md security
model): ``ViewContext.for_viewer`` is the one place the rule is written, and ``views.reader``
the one place it is applied.
"""

from dataclasses import dataclass

from dashboard.queries.scope import Period, SiteScope
from dashboard.results.studies import StudyInfo


@dataclass(frozen=True)
class ViewContext:
    study_id: str
    # What every query counts: the viewer's sites within their own choice (None: every site).
    scope: SiteScope = None
    # Subjects screened in this period only (None: every screening date).
    period: Period = None
    # The earlier cut "new since" refers to (None: one cut only, nothing to compare with).
    since_cut_id: int | None = None
    # False for a blinded viewer of a blinded study: every figure by arm is pooled, no arm is
    # named. Set through ``for_viewer``; a context built by hand for tests says so explicitly.
    shows_arms: bool = True
    # The sites the viewer may see at all (None: every site). A viewer limited to some sites
    # sees the study's totals only as aggregates (the Overview's "study-wide" line).
    viewer_sites: SiteScope = None

    @classmethod
    def for_viewer(
        cls,
        study: StudyInfo,
        *,
        unblinded: bool,
        scope: SiteScope = None,
        period: Period = None,
        since_cut_id: int | None = None,
        viewer_sites: SiteScope = None,
    ) -> "ViewContext":
        """The context for a viewer of ``study``: arms are shown in an open-label study, and in a
        blinded one (or one whose blinding is unknown, which counts as blinded) only to an
        unblinded viewer."""
        return cls(
            study_id=study.study_id,
            scope=scope,
            period=period,
            since_cut_id=since_cut_id,
            shows_arms=not study.counts_as_blinded or unblinded,
            viewer_sites=viewer_sites,
        )

    @property
    def restricted(self) -> bool:
        """The viewer sees only some sites of the study."""
        return self.viewer_sites is not None

    def site_count(self, study_sites: int) -> int:
        """How many sites the viewer may see, of the study's ``study_sites``: whether a page
        compares sites at all (one site has nothing to compare with)."""
        return len(self.viewer_sites) if self.viewer_sites is not None else study_sites

    @property
    def filtered(self) -> bool:
        """A site or screening-period filter is on: the study's own plan (its forecast) does not
        apply to what is counted."""
        return bool(self.scope) or self.period is not None
