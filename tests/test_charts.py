"""Chart builders: valid Vega-Lite carrying exactly the figures they were given."""

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.charts.baseline import categorical_distribution_chart, continuous_distribution_chart
from dashboard.charts.enrollment import accrual_chart
from dashboard.charts.screen_failures import criteria_chart, monthly_rate_chart
from dashboard.charts.time_axis import date_axis
from dashboard.metrics.table_one import (
    Variable,
    column_summaries,
    counts_from_values,
    level_counts,
)


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
    variables = [Variable("AGE", "Age", "years", False), Variable("SEX", "Sex", None, True)]
    counts = counts_from_values(values, variables)
    columns = ["Active", "Placebo"]
    boxes = column_summaries(counts, key="AGE", columns=columns)
    found = counts[counts["key"] == "AGE"][["column", "value_num", "subjects"]]
    spec = continuous_distribution_chart(boxes, found, label="Age").to_dict()
    box_rows, histogram_rows = _datasets(spec)
    assert {r["column"]: (r["minimum"], r["median"], r["maximum"]) for r in box_rows} == {
        "Active": (70.0, 71.0, 72.0),
        "Placebo": (60.0, 60.0, 60.0),
    }
    # The missing age is left out of both.
    assert sorted(r["value_num"] for r in histogram_rows) == [60.0, 70.0, 72.0]
    assert [layer["mark"]["type"] for layer in spec["vconcat"][0]["layer"]] == [
        "rule",
        "bar",
        "tick",
    ]
    bars = categorical_distribution_chart(
        level_counts(counts, key="SEX", columns=columns), label="Sex"
    ).to_dict()
    (rows,) = _datasets(bars)
    shares = {(r["column"], r["value"]): (r["subjects"], r["share"]) for r in rows}
    assert shares[("Active", "Missing")] == (1, 0.5)
    assert shares[("Placebo", "F")] == (1, 0.5)
    assert bars["params"][0]["name"] == "level"


def test_distribution_selection_carries_the_fields_the_baseline_page_reads() -> None:
    """pages/baseline.py lists a clicked segment's subjects from the selected point's "column"
    and "value": the chart's click selection must carry exactly those fields, under the name the
    page asks Streamlit for (``VALUE_SELECTION``)."""
    from dashboard.charts.baseline import VALUE_SELECTION

    levels = pd.DataFrame(
        {"column": ["A", "A", "B"], "value": ["F", "M", "F"], "subjects": [2, 1, 3]}
    )
    spec = categorical_distribution_chart(levels, label="Sex").to_dict()
    (param,) = spec["params"]
    assert param["name"] == VALUE_SELECTION
    assert param["select"]["type"] == "point" and param["select"]["on"] == "click"
    assert param["select"]["fields"] == ["column", "value"]
    page = (Path(__file__).resolve().parent.parent / "pages" / "baseline.py").read_text()
    assert 'points[0].get("column")' in page and 'points[0].get("value")' in page


def test_accrual_chart_planned_line_screened_series_and_cutoff() -> None:
    accrual = pd.DataFrame(
        {
            "period_start": pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20"]),
            "screened": [3, 1, 2],
            "enrolled": [1, 1, 0],
            "cumulative_screened": [3, 4, 6],
            "cumulative_enrolled": [1, 2, 2],
        }
    )
    start, end, cutoff = dt.date(2025, 1, 1), dt.date(2025, 12, 31), dt.date(2025, 1, 24)
    spec = accrual_chart(
        accrual, target=20, cutoff=cutoff, planned_start=start, planned_end=end
    ).to_dict()

    def layer_rows(layer: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = spec["datasets"][layer["data"]["name"]]
        return rows

    layers = spec["layer"]
    lines = layer_rows(layers[0])
    screened = [r["subjects"] for r in lines if r["series"] == "Screened"]
    assert screened == list(accrual["cumulative_screened"])
    assert [r["period_start"][:10] for r in lines if r["series"] == "Screened"] == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
    ]
    # The planned line: dashed, 0 at the planned start and the target at the planned end.
    (planned_layer,) = [
        layer for layer in layers if layer.get("mark", {}).get("strokeDash") == [6, 4]
    ]
    planned = layer_rows(planned_layer)
    assert [(r["period_start"][:10], r["series"], r["subjects"]) for r in planned] == [
        (start.isoformat(), "Planned", 0),
        (end.isoformat(), "Planned", 20),
    ]
    # The cut-off rule sits on the cut-off date.
    rules = [
        layer
        for layer in layers
        if layer.get("mark", {}).get("type") == "rule" and layer["encoding"].get("x")
    ]
    (cut_rule,) = rules
    assert cut_rule["encoding"]["x"]["field"] == "date"
    assert [r["date"][:10] for r in layer_rows(cut_rule)] == [cutoff.isoformat()]
    # Without both planned dates (or a target) there is no planned line.
    for kwargs in (
        {"target": 20, "planned_start": start, "planned_end": None},
        {"target": None, "planned_start": start, "planned_end": end},
    ):
        bare = accrual_chart(accrual, cutoff=cutoff, **kwargs).to_dict()
        assert not any(layer.get("mark", {}).get("strokeDash") == [6, 4] for layer in bare["layer"])


def _x_axes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The x axis settings of every layer (or of the single chart) that encodes x as a date."""
    layers = spec.get("layer", [spec])
    return [
        layer["encoding"]["x"].get("axis", {})
        for layer in layers
        if layer.get("encoding", {}).get("x", {}).get("type") == "temporal"
    ]


def _monthly_accrual(start: str, end: str) -> pd.DataFrame:
    periods = pd.date_range(start, end, freq="MS")
    n = len(periods)
    return pd.DataFrame(
        {
            "period_start": periods,
            "screened": [2] * n,
            "enrolled": [1] * n,
            "cumulative_screened": [2 * (i + 1) for i in range(n)],
            "cumulative_enrolled": [i + 1 for i in range(n)],
        }
    )


def test_time_axes_label_every_tick_with_its_year() -> None:
    # A recruitment across a year end (the seed demo's October to November): Vega-Lite's default
    # labels would read "October, December, February": no year on any of them.
    accrual = _monthly_accrual("2024-10-01", "2025-11-01")
    spec = accrual_chart(accrual, target=20, cutoff=dt.date(2025, 11, 30)).to_dict()
    axes = _x_axes(spec)
    assert axes and all(a.get("format") == "%b %Y" for a in axes)
    # The first layer (the lines) holds the shared x axis: month ticks, at most 8 of them.
    assert axes[0]["tickCount"] == {"interval": "month", "step": 2}
    monthly = pd.DataFrame(
        {
            "month": pd.date_range("2024-10-01", "2025-03-01", freq="MS"),
            "screened": [3] * 6,
            "screen_failures": [1] * 6,
            "screen_failure_rate": [1 / 3] * 6,
        }
    )
    (axis,) = {str(a) for a in _x_axes(monthly_rate_chart(monthly).to_dict())}
    assert "%Y" in axis and "'interval': 'month', 'step': 1" in axis
    # Over many years the ticks are years, labelled by the year.
    long_axis = date_axis([dt.date(2001, 1, 1), dt.date(2024, 6, 1)]).to_dict()
    assert long_axis["format"] == "%Y" and long_axis["tickCount"]["interval"] == "year"
    assert (2024 - 2001 + 1) / long_axis["tickCount"]["step"] <= 8


def test_accrual_legend_lists_only_the_series_drawn() -> None:
    accrual = _monthly_accrual("2025-01-01", "2025-06-01")

    def legend(spec: dict[str, Any]) -> list[str]:
        domains = {
            tuple(layer["encoding"]["color"]["scale"]["domain"])
            for layer in spec["layer"]
            if "color" in layer.get("encoding", {})
        }
        (domain,) = domains
        return list(domain)

    planned = accrual_chart(
        accrual,
        target=20,
        cutoff=dt.date(2025, 6, 30),
        planned_start=dt.date(2025, 1, 1),
        planned_end=dt.date(2025, 12, 31),
    ).to_dict()
    assert legend(planned) == ["Enrolled", "Screened", "Planned"]
    # Some sites in view (no planned line): no "Planned" entry beside the two lines drawn.
    unplanned = accrual_chart(accrual, target=20, cutoff=dt.date(2025, 6, 30)).to_dict()
    assert legend(unplanned) == ["Enrolled", "Screened"]
    assert not any(
        layer.get("mark", {}).get("strokeDash") == [6, 4] for layer in unplanned["layer"]
    )
