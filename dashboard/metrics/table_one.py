"""Table 1 statistics: pure functions over per-subject values, no database, no streamlit.

The statistics follow tableone (Pollard et al. 2018, the Python package) so a trial team sees the
figures it would compute itself:

- continuous: n, mean (SD, n - 1 denominator), median [Q1, Q3] (linear quantiles, as pandas and
  tableone), min, max; missing counted apart;
- categorical: n (%) over the non-missing values of the column, the denominator stated;
- standardized mean differences for each pair of columns: continuous (mean_b - mean_a) /
  sqrt((var_a + var_b) / 2); categorical the multinomial SMD of Yang and Dalton (2012), as tableone;
- p-values with the test named: two columns Welch's t-test, more one-way ANOVA; Kruskal-Wallis for a
  variable marked non-normal; chi-squared for categories, Fisher's exact for a 2 x 2 table with an
  expected count below 5 (tableone's rule; a larger table with small expected counts keeps
  chi-squared with a warning in the test's name).
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats  # type: ignore[import-untyped]

SMALL_EXPECTED = 5  # the usual threshold for chi-squared's expected counts


@dataclass(frozen=True)
class Continuous:
    n: int
    missing: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None
    minimum: float | None
    maximum: float | None


def describe_continuous(values: pd.Series) -> Continuous:
    """The continuous statistics of one column's values (NaN counted as missing)."""
    numbers = pd.to_numeric(values, errors="coerce")
    known = numbers.dropna()
    n = len(known)
    if n == 0:
        return Continuous(0, int(numbers.isna().sum()), None, None, None, None, None, None, None)
    return Continuous(
        n=n,
        missing=int(numbers.isna().sum()),
        mean=float(known.mean()),
        sd=float(known.std(ddof=1)) if n > 1 else None,
        median=float(known.median()),
        q1=float(known.quantile(0.25)),
        q3=float(known.quantile(0.75)),
        minimum=float(known.min()),
        maximum=float(known.max()),
    )


def describe_categorical(
    values: pd.Series, levels: Sequence[str]
) -> tuple[dict[str, int], int, int]:
    """(count per level, denominator = non-missing values, missing) of one column."""
    known = values.dropna().astype(str)
    counts = known.value_counts()
    return (
        {level: int(counts.get(level, 0)) for level in levels},
        len(known),
        int(values.isna().sum()),
    )


def smd_continuous(a: pd.Series, b: pd.Series) -> float | None:
    """(mean_b - mean_a) / sqrt((var_a + var_b) / 2); None where it cannot be computed."""
    a, b = pd.to_numeric(a, errors="coerce").dropna(), pd.to_numeric(b, errors="coerce").dropna()
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    if pooled == 0:
        return 0.0 if a.mean() == b.mean() else None
    return float((b.mean() - a.mean()) / pooled)


def smd_categorical(a: pd.Series, b: pd.Series, levels: Sequence[str]) -> float | None:
    """Yang and Dalton's multinomial SMD: sqrt(d' S^-1 d) over the levels but the first, with d
    the difference in proportions and S the mean of the two multinomial covariance matrices."""
    a, b = a.dropna().astype(str), b.dropna().astype(str)
    if len(a) == 0 or len(b) == 0 or len(levels) < 2:
        return None
    p = np.array([(a == level).mean() for level in levels[1:]])
    q = np.array([(b == level).mean() for level in levels[1:]])
    difference = p - q
    covariance = (np.diag(p) - np.outer(p, p) + np.diag(q) - np.outer(q, q)) / 2
    try:
        value = float(difference @ np.linalg.pinv(covariance) @ difference)
    except np.linalg.LinAlgError:
        return None
    return math.sqrt(max(value, 0.0))


def pairwise(columns: Sequence[str]) -> list[tuple[str, str]]:
    """Column pairs in table order, as tableone labels its SMD columns."""
    return list(itertools.combinations(columns, 2))


def p_value_continuous(groups: Sequence[pd.Series], *, nonnormal: bool) -> tuple[float | None, str]:
    """(p-value, test name) across the columns' values."""
    samples = [pd.to_numeric(g, errors="coerce").dropna().to_numpy() for g in groups]
    samples = [s for s in samples if len(s) > 0]
    if len(samples) < 2:
        return None, ""
    if nonnormal:
        return float(stats.kruskal(*samples).pvalue), "Kruskal-Wallis"
    if len(samples) == 2:
        return float(stats.ttest_ind(*samples, equal_var=False).pvalue), "Welch's t-test"
    return float(stats.f_oneway(*samples).pvalue), "One-way ANOVA"


def p_value_categorical(
    groups: Sequence[pd.Series], levels: Sequence[str]
) -> tuple[float | None, str]:
    """(p-value, test name): chi-squared, or Fisher's exact for a 2 x 2 table with a small
    expected count."""
    table = np.array(
        [[int((g.dropna().astype(str) == level).sum()) for level in levels] for g in groups]
    )
    table = table[:, table.sum(axis=0) > 0]
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None, ""
    _chi2, p, _dof, expected = stats.chi2_contingency(table)
    if (expected < SMALL_EXPECTED).any():
        if table.shape == (2, 2):
            return float(stats.fisher_exact(table).pvalue), "Fisher's exact"
        return float(p), "Chi-squared (expected count < 5)"
    return float(p), "Chi-squared"


@dataclass(frozen=True)
class Variable:
    """One characteristic of the table: its key in the values frame, label, unit and kind."""

    key: str
    label: str
    unit: str | None
    categorical: bool


def _count_percent(count: int, denominator: int, digits: int) -> str:
    """``"12 (60.0%)"`` over the non-missing values; a bare 0 for an empty column."""
    return f"{count} ({100 * count / denominator:.{digits}f}%)" if denominator else "0"


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table_one(
    values: pd.DataFrame,
    variables: Sequence[Variable],
    *,
    columns: Sequence[str],
    nonnormal: Sequence[str] = (),
    show_range: bool = False,
    with_tests: bool = True,
    digits: int = 1,
) -> pd.DataFrame:
    """The formatted Table 1.

    ``values``: one row per subject with a ``column`` column (the group: arm, site ...) and one
    column per variable key. ``columns``: the groups in display order. Returns the rows as
    displayed: characteristic, statistic, one column per group headed "<group> (n=..)", "Overall
    (n=..)", then (with two or more groups and ``with_tests``) one "SMD (a, b)" column per pair,
    "p-value" and "test".
    """
    groups = {c: values[values["column"] == c] for c in columns}
    headers = {c: f"{c} (n={len(g)})" for c, g in groups.items()}
    overall = f"Overall (n={len(values)})"
    pairs = pairwise(columns) if len(columns) > 1 and with_tests else []
    rows: list[dict[str, object]] = []

    def row(
        characteristic: str, statistic: str, cells: dict[str, str], extra: dict[str, object]
    ) -> None:
        rows.append(
            {
                "characteristic": characteristic,
                "statistic": statistic,
                **{headers[c]: cells.get(c, "") for c in columns},
                overall: cells.get("__overall__", ""),
                **extra,
            }
        )

    for variable in variables:
        label = variable.label + (f" ({variable.unit})" if variable.unit else "")
        column_values = {c: groups[c][variable.key] for c in columns}
        everyone = values[variable.key]
        tests: dict[str, object] = {}
        if variable.categorical:
            levels = sorted(everyone.dropna().astype(str).unique())
            if pairs:
                for a, b in pairs:
                    smd = smd_categorical(column_values[a], column_values[b], levels)
                    tests[f"SMD ({a}, {b})"] = "" if smd is None else f"{smd:.3f}"
                p, test = p_value_categorical(list(column_values.values()), levels)
                tests["p-value"], tests["test"] = ("" if p is None else f"{p:.3f}"), test
            described = {c: describe_categorical(v, levels) for c, v in column_values.items()}
            whole = describe_categorical(everyone, levels)
            for index, level in enumerate(levels):
                cells = {c: _count_percent(d[0][level], d[1], digits) for c, d in described.items()}
                cells["__overall__"] = _count_percent(whole[0][level], whole[1], digits)
                row(
                    label if index == 0 else "",
                    f"{level}, n (%)",
                    cells,
                    tests if index == 0 else {},
                )
            if whole[2]:
                cells = {c: str(d[2]) for c, d in described.items()}
                cells["__overall__"] = str(whole[2])
                row("", "Missing, n", cells, {})
            continue
        described_c = {c: describe_continuous(v) for c, v in column_values.items()}
        whole_c = describe_continuous(everyone)
        if pairs:
            for a, b in pairs:
                smd = smd_continuous(column_values[a], column_values[b])
                tests[f"SMD ({a}, {b})"] = "" if smd is None else f"{smd:.3f}"
            p, test = p_value_continuous(
                list(column_values.values()), nonnormal=variable.key in nonnormal
            )
            tests["p-value"], tests["test"] = ("" if p is None else f"{p:.3f}"), test
        every = {**described_c, "__overall__": whole_c}
        row(
            label,
            "Mean (SD)",
            {
                c: f"{_fmt(d.mean, digits)} ({_fmt(d.sd, digits)})" if d.n else "–"
                for c, d in every.items()
            },
            tests,
        )
        row(
            "",
            "Median [Q1, Q3]",
            {
                c: f"{_fmt(d.median, digits)} [{_fmt(d.q1, digits)}, {_fmt(d.q3, digits)}]"
                if d.n
                else "–"
                for c, d in every.items()
            },
            {},
        )
        if show_range:
            row(
                "",
                "Min, max",
                {
                    c: f"{_fmt(d.minimum, digits)}, {_fmt(d.maximum, digits)}" if d.n else "–"
                    for c, d in every.items()
                },
                {},
            )
        if whole_c.missing:
            row("", "Missing, n", {c: str(d.missing) for c, d in every.items()}, {})
    table = pd.DataFrame(rows)
    return table.fillna("")


MAX_DEFAULT_FINDINGS = 12  # more than a dozen baseline tests make the default table a wall


def default_keys(catalogue: pd.DataFrame) -> list[str]:
    """The characteristics Table 1 opens with: age and sex, race and ethnicity where recorded, then
    the baseline findings (the first dozen by how many subjects have them)."""
    with_values = catalogue[catalogue["subjects"] > 0]
    demographics = [k for k in ("AGE", "SEX", "RACE", "ETHNIC") if k in set(with_values["key"])]
    findings = with_values[with_values["key"].str.contains(".", regex=False)]
    top = findings.sort_values("subjects", ascending=False, kind="stable").head(
        MAX_DEFAULT_FINDINGS
    )
    return demographics + [k for k in findings["key"] if k in set(top["key"])]


def column_order(columns: Sequence[str], *, last: Sequence[str] = ()) -> list[str]:
    """Table 1 columns: the groups in name order, then the ``last`` ones (screen failures, not
    allocated) where present."""
    present = set(columns)
    return sorted(c for c in present if c not in last) + [c for c in last if c in present]
