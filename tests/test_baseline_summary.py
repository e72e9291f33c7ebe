"""Table 1 from the load-time counts equals Table 1 from per-subject values, in every scope; the
count-based statistics equal pandas and scipy on the expanded values."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # type: ignore[import-untyped]
from sqlalchemy.engine import Engine
from sqlmodel import Session

from dashboard.db import make_engine
from dashboard.metrics.table_one import (
    SUBJECTS_KEY,
    Variable,
    column_summaries,
    counts_from_values,
    describe_continuous,
    histogram,
    level_counts,
    p_value_continuous,
    table_one,
)
from dashboard.queries.baseline import (
    baseline_catalogue,
    baseline_values,
    catalogue_from_findings,
    subjects_with_value,
    table_one_counts,
)


def _variables(catalogue: pd.DataFrame) -> list[Variable]:
    return [
        Variable(r["key"], r["label"], r["unit"], bool(r["categorical"]))
        for r in catalogue.to_dict("records")
        if r["subjects"] > 0
    ]


def _both_ways(
    session: Session, study_id: str, scope: tuple[str, ...] | None, population: str, by: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    variables = _variables(baseline_catalogue(session, study_id=study_id))
    keys = tuple(v.key for v in variables)
    counts = table_one_counts(
        session, study_id=study_id, scope=scope, population=population, by=by, keys=keys
    )
    values = baseline_values(
        session, study_id=study_id, scope=scope, population=population, by=by, keys=keys
    )
    columns = sorted(values["column"].unique())
    options = {"columns": columns, "show_range": True, "nonnormal": [keys[0]]}
    return (
        table_one(counts, variables, **options),  # type: ignore[arg-type]
        table_one(counts_from_values(values, variables), variables, **options),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("study_id", "scope", "population", "by"),
    [
        ("NCT06466850", None, "enrolled", "arm"),
        ("NCT06466850", None, "screened", "arm"),
        ("DEMO-MULTI", None, "enrolled", "arm"),
        ("DEMO-MULTI", None, "treated", "arm"),
        ("DEMO-MULTI", None, "screened", "arm"),
        ("DEMO-MULTI", ("101", "103"), "enrolled", "arm"),
        ("DEMO-MULTI", None, "enrolled", "site"),
        ("DEMO-MULTI", ("102",), "screened", "site"),
    ],
)
def test_summary_table_equals_the_per_subject_table(
    session: Session, study_id: str, scope: tuple[str, ...] | None, population: str, by: str
) -> None:
    from_counts, from_values = _both_ways(session, study_id, scope, population, by)
    assert len(from_counts) > 5
    pd.testing.assert_frame_equal(from_counts, from_values)


def test_summary_table_on_the_imported_cdisc_pilot(pilot_db_url: str) -> None:
    with Session(make_engine(pilot_db_url)) as session:
        from_counts, from_values = _both_ways(session, "CDISCPILOT01", None, "enrolled", "arm")
        catalogue = baseline_catalogue(session, study_id="CDISCPILOT01")
        raw = catalogue_from_findings(session, study_id="CDISCPILOT01")
    pd.testing.assert_frame_equal(from_counts, from_values)
    pd.testing.assert_frame_equal(catalogue, raw, check_dtype=False)


def test_quartiles_by_arm_equal_pandas_on_the_raw_rows(demo_engine: Engine) -> None:
    raw = pd.read_sql_query(
        "SELECT s.arm AS column, f.value_num FROM finding f JOIN subject s ON s.id = f.subject_pk "
        "WHERE s.study_id = 'DEMO-MULTI' AND s.population = 'ENROLLED' AND f.is_baseline "
        "AND f.test_code = 'BMI'",
        demo_engine,
    )
    with Session(demo_engine) as session:
        counts = table_one_counts(
            session,
            study_id="DEMO-MULTI",
            scope=None,
            population="enrolled",
            by="arm",
            keys=("VS.BMI",),
        )
    arms = sorted(raw["column"].unique())
    boxes = column_summaries(counts, key="VS.BMI", columns=arms).set_index("column")
    for arm in arms:
        values = raw.loc[raw["column"] == arm, "value_num"]
        assert boxes.loc[arm, "n"] == len(values)
        for statistic, p in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
            assert boxes.loc[arm, statistic] == pytest.approx(values.quantile(p)), (arm, statistic)
        assert (boxes.loc[arm, "minimum"], boxes.loc[arm, "maximum"]) == (
            values.min(),
            values.max(),
        )
    sizes = counts[counts["key"] == SUBJECTS_KEY].set_index("column")["subjects"]
    enrolled = pd.read_sql_query(
        "SELECT arm, count(*) AS n FROM subject WHERE study_id = 'DEMO-MULTI' "
        "AND population = 'ENROLLED' GROUP BY arm",
        demo_engine,
    ).set_index("arm")["n"]
    assert sizes.sort_index().tolist() == enrolled.sort_index().tolist()


def test_statistics_from_counts_equal_pandas_and_scipy_with_ties() -> None:
    rng = np.random.default_rng(11)
    samples = [pd.Series(rng.integers(20, 40, size)).astype(float) for size in (9, 14, 23)]
    for sample in samples:
        described = describe_continuous(histogram(sample), subjects=len(sample) + 2)
        assert described.missing == 2
        assert described.mean == pytest.approx(sample.mean())
        assert described.sd == pytest.approx(sample.std())
        for statistic, q in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
            assert getattr(described, statistic) == pytest.approx(sample.quantile(q))
    hists = [histogram(s) for s in samples]
    for groups, nonnormal, reference, name in (
        (hists, True, stats.kruskal(*samples).pvalue, "Kruskal-Wallis"),
        (hists, False, stats.f_oneway(*samples).pvalue, "One-way ANOVA"),
        (hists[:2], False, stats.ttest_ind(*samples[:2], equal_var=False).pvalue, "Welch's t-test"),
    ):
        p, test = p_value_continuous(groups, nonnormal=nonnormal)
        assert test == name and p == pytest.approx(reference), name


def test_distribution_drilldown_lists_the_segment(session: Session, demo_engine: Engine) -> None:
    counts = table_one_counts(
        session, study_id="DEMO-MULTI", scope=None, population="enrolled", by="arm", keys=("SEX",)
    )
    arms = sorted(counts.loc[counts["key"] == SUBJECTS_KEY, "column"].unique())
    levels = level_counts(counts, key="SEX", columns=arms)
    raw = pd.read_sql_query(
        "SELECT usubjid, arm, sex FROM subject WHERE study_id = 'DEMO-MULTI' "
        "AND population = 'ENROLLED'",
        demo_engine,
    )
    expected = raw.groupby(["arm", "sex"]).size()
    for row in levels.to_dict("records"):
        assert row["subjects"] == expected[(row["column"], row["value"])]
    listed, total = subjects_with_value(
        session,
        study_id="DEMO-MULTI",
        scope=None,
        population="enrolled",
        by="arm",
        key="SEX",
        column=arms[0],
        value="F",
        limit=10,
    )
    wanted = raw[(raw["arm"] == arms[0]) & (raw["sex"] == "F")]
    assert total == len(wanted) and len(listed) == min(10, total)
    assert set(listed["usubjid"]) <= set(wanted["usubjid"])
    assert (listed["value"] == "F").all()
