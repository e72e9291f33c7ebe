"""The headline figures of a study as one dict: ``study-monitor summary --json`` (DESIGN.md contract).

Built only from the query functions the pages use, so the CLI and the dashboard never disagree.
"""

from typing import Any

from sqlmodel import Session

from dashboard.queries.adverse_events import count_adverse_events
from dashboard.queries.enrollment import enrolled_by_arm, population_counts
from dashboard.queries.scope import SiteScope
from dashboard.queries.screen_failures import failures_by_criterion
from dashboard.queries.studies import data_cuts, site_count, study_info


class UnknownStudyError(LookupError):
    """No study with this id in the database."""


def study_summary(session: Session, *, study_id: str, scope: SiteScope = None) -> dict[str, Any]:
    """The contract's JSON object for one study (keys in the contract's order)."""
    info = study_info(session, study_id=study_id)
    if info is None:
        raise UnknownStudyError(study_id)
    counts = population_counts(session, study_id=study_id, scope=scope)
    arms = enrolled_by_arm(session, study_id=study_id, scope=scope)
    by_criterion = failures_by_criterion(session, study_id=study_id, scope=scope)
    # The CLI lists criteria with at least one failure, keyed by code; a code amended across protocol
    # versions is one key (its versions' subjects are distinct people, so they add).
    failed = (
        by_criterion[by_criterion["subjects"] > 0].groupby("code", sort=False)["subjects"].sum()
    )
    ae = count_adverse_events(session, study_id=study_id, scope=scope)
    cuts = data_cuts(session, study_id=study_id)
    latest = cuts[-1] if cuts else None
    return {
        "study_id": info.study_id,
        "registry_id": info.registry_id,
        "planned_enrollment": info.planned_enrollment,
        "sites": site_count(session, study_id=study_id, scope=scope),
        "screened": counts.screened,
        "screen_failures": counts.screen_failures,
        "enrolled": counts.enrolled,
        "enrolled_by_arm": {
            str(row["arm"] or row["arm_code"] or "(no arm)"): int(row["enrolled"])
            for row in arms.to_dict("records")
        },
        "screen_failures_by_criterion": {
            str(code): int(n)
            for code, n in zip(failed.index, failed.to_numpy(dtype=int), strict=True)
        },
        "ae_events": ae.events,
        "ae_subjects": ae.subjects,
        "sae_events": ae.serious_events,
        "sae_subjects": ae.serious_subjects,
        "data_cut": (
            {"id": latest.id, "loaded_at": latest.loaded_at.isoformat()} if latest else None
        ),
    }
