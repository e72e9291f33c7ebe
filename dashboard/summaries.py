"""Load-time summaries (DESIGN.md performance rules): what cannot be fast from raw rows at scale is
counted once per load, here, in the same transaction as the load.

Table 1's medians and quartiles need every value; a million findings cannot be read per page view.
So each load counts subjects per (site, cohort, planned arm, variable, value), plus each group's
size: any site scope and any population is then an exact sum of these rows, and the all-sites rows
(the same counts summed over sites) serve the unscoped view in a few thousand rows.
"""

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert
from sqlmodel import Session, col

from dashboard.metrics.table_one import SUBJECTS_KEY
from dashboard.models import BaselineCount, BaselineVariable
from dashboard.queries.baseline import (
    FAILED,
    NOT_ALLOCATED,
    baseline_values,
    catalogue_from_findings,
)

GROUP = ["site_pk", "cohort", "arm"]


def baseline_counts(session: Session, *, study_id: str, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Subjects per (site_pk, cohort, arm, key, value_num, value_text) for every variable of the
    catalogue, with each (site_pk, cohort, arm) group's size under ``SUBJECTS_KEY``; the
    all-sites sums follow with ``all_sites`` True."""
    keys = tuple(catalogue["key"])
    values = baseline_values(
        session, study_id=study_id, scope=None, population="screened", by="arm", keys=keys
    )
    # The planned arm only names an enrolled cohort's column; the others are columns of their own.
    values["arm"] = values["column"].where(~values["cohort"].isin([FAILED, NOT_ALLOCATED]), None)
    values["site_pk"] = values["site_pk"].astype("Int64")
    frames = [values.groupby(GROUP, dropna=False).size().rename("subjects").reset_index()]
    frames[0]["key"] = SUBJECTS_KEY
    for key, categorical in zip(catalogue["key"], catalogue["categorical"], strict=True):
        found = values[[*GROUP, key]].dropna(subset=[key])
        if bool(categorical):
            found = found.assign(value_text=found[key].astype(str), value_num=np.nan)
        else:
            # A number kept as text (an SDTM --STRESC without --STRESN) still counts as a number.
            numbers = pd.to_numeric(found[key], errors="coerce")
            found = found.assign(value_num=numbers, value_text=None)[numbers.notna()]
        counted = (
            found.groupby([*GROUP, "value_num", "value_text"], dropna=False)
            .size()
            .rename("subjects")
            .reset_index()
        )
        frames.append(counted.assign(key=key))
    per_site = pd.concat(frames, ignore_index=True).assign(all_sites=False)
    all_sites = (
        per_site.groupby(["cohort", "arm", "key", "value_num", "value_text"], dropna=False)[
            "subjects"
        ]
        .sum()
        .reset_index()
        .assign(all_sites=True, site_pk=None)
    )
    return pd.concat([per_site, all_sites], ignore_index=True)


def rebuild_baseline_summary(session: Session, study_id: str) -> int:
    """Replace the study's baseline summary with counts of its current rows; returns the number
    of count rows. Runs inside the caller's transaction: a failed load leaves the old summary."""
    session.execute(delete(BaselineCount).where(col(BaselineCount.study_id) == study_id))
    session.execute(delete(BaselineVariable).where(col(BaselineVariable.study_id) == study_id))
    catalogue = catalogue_from_findings(session, study_id=study_id)
    session.execute(
        insert(BaselineVariable),
        [
            {
                "study_id": study_id,
                "key": row["key"],
                "label": row["label"],
                "unit": row["unit"] if isinstance(row["unit"], str) else None,
                "categorical": bool(row["categorical"]),
                "subjects": int(row["subjects"]),
                "position": position,
            }
            for position, row in enumerate(catalogue.to_dict("records"))
        ],
    )
    counts = baseline_counts(session, study_id=study_id, catalogue=catalogue)
    if counts.empty:
        return 0
    # None, not NaN or pd.NA, reaches the driver.
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in counts.astype(object)
        .where(counts.notna(), None)
        .assign(study_id=study_id)
        .to_dict("records")
    ]
    session.execute(insert(BaselineCount), records)
    return len(records)
