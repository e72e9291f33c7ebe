"""The CONSORT flow of a study from the query layer's aggregates (pure: no database, no streamlit)."""

import pandas as pd

from dashboard.results.consort import ArmFlow, ConsortFlow
from dashboard.results.enrollment import FunnelCounts


def consort_flow(
    *,
    funnel: FunnelCounts,
    by_criterion: pd.DataFrame,
    failures_with_reason: int,
    reasons: pd.DataFrame,
    by_arm: pd.DataFrame,
) -> ConsortFlow:
    """Assemble the flow: screened, excluded with reasons by criterion, enrolled by arm, and each
    arm's treated, discontinued (with reasons), completed and ongoing.

    Inputs: ``queries.enrollment.funnel``, ``queries.screen_failures.failures_by_criterion`` and
    ``failed_subject_counts()["with_reason"]``, ``queries.enrollment.discontinuation_reasons`` and
    ``queries.enrollment.outcome_by_arm``.
    """
    failed = by_criterion[by_criterion["subjects"] > 0].sort_values(
        ["subjects", "seq"], ascending=[False, True]
    )
    exclusion_reasons = tuple(
        (
            f"{row['code']}{' (' + row['protocol_version'] + ')' if row['protocol_version'] else ''}"
            f" {row['text']}",
            int(row["subjects"]),
        )
        for row in failed.to_dict("records")
    )
    arms = []
    for row in by_arm.to_dict("records"):
        arm_reasons = reasons[reasons["arm"] == row["arm"]]
        arms.append(
            ArmFlow(
                arm=str(row["arm"]),
                allocated=int(row["allocated"]),
                treated=int(row["treated"])
                if funnel.treated is not None
                else int(row["allocated"]),
                discontinued=int(row["discontinued"]),
                discontinuation_reasons=tuple(
                    (str(r["reason"]), int(r["subjects"])) for r in arm_reasons.to_dict("records")
                ),
                completed=int(row["completed"]),
                ongoing=int(row["ongoing"]),
            )
        )
    return ConsortFlow(
        screened=funnel.screened,
        screen_failures=funnel.screen_failures,
        exclusion_reasons=exclusion_reasons,
        failures_without_reason=max(funnel.screen_failures - failures_with_reason, 0),
        not_allocated=funnel.not_allocated,
        enrolled=funnel.enrolled,
        arms=tuple(arms),
    )
