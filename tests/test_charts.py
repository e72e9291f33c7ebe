"""Chart builders: valid Vega-Lite carrying exactly the figures they were given."""

import datetime as dt
from typing import Any

import pandas as pd

from dashboard.charts.baseline import categorical_distribution_chart, continuous_distribution_chart
from dashboard.charts.enrollment import accrual_chart
from dashboard.charts.screen_failures import criteria_chart


def _datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def test_criteria_chart_has_every_criterion_and_shares() -> None:
    failures = pd.DataFrame(
        {
            "code": ["INCL01", "EXCL01", "EXCL12A"],
            "protocol_version": ["", "", "AMENDMENT 1"],
            "category": ["INCLUSION", "EXCLUSION", "EXCLUSION"],
            "text": ["Knee pain for 3 months", "Rheumatoid arthritis", "Amended wording"],
            "seq": [1, 2, 3],
            "subjects": [4, 0, 1],
        }
    )
    spec = criteria_chart(failures, screened=40).to_dict()
    (rows,) = _datasets(spec)
    assert [r["label"] for r in rows] == [
        "INCL01: Knee pain for 3 months",
        "EXCL01: Rheumatoid arthritis",
        "EXCL12A (AMENDMENT 1): Amended wording",
    ]
    assert [r["subjects"] for r in rows] == [4, 0, 1]
    assert [r["share_of_screened"] for r in rows] == [0.1, 0.0, 0.025]
    assert {r["kind"] for r in rows} == {"Inclusion not met", "Exclusion met"}


def test_accrual_chart_layers() -> None:
    accrual = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2025-01-06", "2025-01-13"]),
            "screened": [3, 1],
            "enrolled": [1, 1],
            "cumulative_screened": [3, 4],
            "cumulative_enrolled": [1, 2],
        }
    )
    spec = accrual_chart(
        accrual,
        target=20,
        cutoff=dt.date(2025, 1, 20),
        planned_start=dt.date(2025, 1, 1),
        planned_end=dt.date(2025, 12, 31),
    ).to_dict()
    assert len(spec["layer"]) == 6  # lines, planned, target rule + label, cut-off rule + label
    data = _datasets(spec)
    lines = next(d for d in data if any(r.get("series") == "Enrolled" for r in d))
    assert [r["subjects"] for r in lines if r["series"] == "Enrolled"] == [1, 2]
    assert any(d == [{"subjects": 20, "label": "Target 20"}] for d in data)
    bare = accrual_chart(accrual, target=None, cutoff=None).to_dict()
    assert len(bare["layer"]) == 1


def test_distribution_charts() -> None:
    values = pd.DataFrame(
        {
            "usubjid": ["a", "b", "c", "d"],
            "column": ["Placebo", "Placebo", "Active", "Active"],
            "AGE": [60.0, None, 70.0, 72.0],
            "SEX": ["F", "M", "F", None],
        }
    )
    spec = continuous_distribution_chart(values, key="AGE", label="Age").to_dict()
    (rows,) = _datasets(spec)
    assert sorted(r["value"] for r in rows) == [60.0, 70.0, 72.0]  # the missing age left out
    assert spec["layer"][0]["mark"]["type"] == "boxplot"
    bars = categorical_distribution_chart(values, key="SEX", label="Sex").to_dict()
    (rows,) = _datasets(bars)
    shares = {(r["column"], r["value"]): (r["subjects"], r["share"]) for r in rows}
    assert shares[("Active", "Missing")] == (1, 0.5)
    assert shares[("Placebo", "F")] == (1, 0.5)
    assert bars["params"][0]["name"] == "level"
