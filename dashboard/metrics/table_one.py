"""Table 1 statistics: pure functions over counted values, no database, no streamlit.

Table 1 is computed from how many subjects have each value (a histogram per column and variable),
not from per-subject rows: the counts are what the database keeps per load (``BaselineCount``), so a
million findings cost a few thousand rows. Every statistic below is exact from those counts.

The statistics follow tableone (Pollard et al. 2018, the Python package) so a trial team sees the
figures it would compute itself:

- continuous: n, mean (SD, n - 1 denominator), median [Q1, Q3] (linear quantiles, as pandas and
  tableone), min, max; missing counted apart;
- categorical: n (%) over the non-missing values of the column, the denominator stated: the
  column's n in the header, and a "N with a value" row of its own where some values are missing;
- standardized mean differences for each pair of columns: continuous (mean_b - mean_a) /
  sqrt((var_a + var_b) / 2); categorical the multinomial SMD of Yang and Dalton (2012), as tableone;
- p-values with the test named: two columns Welch's t-test, more one-way ANOVA; Kruskal-Wallis for a
  variable marked non-normal (average ranks over ties, with the tie correction, as scipy);
  chi-squared for categories, Fisher's exact for a 2 x 2 table with an expected count below 5
  (tableone's rule; a larger table with small expected counts keeps chi-squared with a warning in
  the test's name). A p-value below 0.001 is shown "<0.001", as tableone and gtsummary do.

The formatted table carries its display headers ("Characteristic", "Statistic", "<column> (n=..)",
"Overall (n=..)", "SMD (a, b)", "p-value", "Test"): the page shows it and exports it as it is.
"""

import itertools
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SMALL_EXPECTED = 5  # the usual threshold for chi-squared's expected counts
# The key of the rows that count a column's subjects (with or without a value) in a counts frame.
SUBJECTS_KEY = "*"
# A counts frame: one row per (column, key, value) with the number of subjects holding it.
COUNT_COLUMNS = ["column", "key", "value_num", "value_text", "subjects"]


def histogram(values: pd.Series) -> pd.Series:
    """Subjects per value of one column's per-subject values (missing values left out): the
    shape the functions below take. Numbers for a continuous variable, text for a categorical one."""
    return values.dropna().value_counts().sort_index()


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


def _sorted_numbers(counts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    known = counts[counts > 0]
    values = known.index.to_numpy(dtype=float)
    order = np.argsort(values, kind="stable")
    return values[order], known.to_numpy(dtype=np.int64)[order]


def _quantile(values: np.ndarray, cumulative: np.ndarray, p: float) -> float:
    """Linear-interpolated quantile (pandas' default) of the expanded sample, found in the counts:
    the value at 0-based position i is the first whose cumulative count exceeds i."""
    n = int(cumulative[-1])
    position = (n - 1) * p
    below = math.floor(position)
    low = values[np.searchsorted(cumulative, below, side="right")]
    if below + 1 >= n:
        return float(low)
    high = values[np.searchsorted(cumulative, below + 1, side="right")]
    return float(low + (position - below) * (high - low))


def _mean_var(counts: pd.Series) -> tuple[int, float, float]:
    """(n, mean, variance with n - 1) of a numeric histogram; variance NaN below two values."""
    values, weights = _sorted_numbers(counts)
    n = int(weights.sum())
    if n == 0:
        return 0, math.nan, math.nan
    mean = float((values * weights).sum() / n)
    variance = float((weights * (values - mean) ** 2).sum() / (n - 1)) if n > 1 else math.nan
    return n, mean, variance


def describe_continuous(counts: pd.Series, *, subjects: int) -> Continuous:
    """The continuous statistics of one column: ``counts`` subjects per number, ``subjects`` the
    column's size (the difference is missing)."""
    values, weights = _sorted_numbers(counts)
    n = int(weights.sum())
    if n == 0:
        return Continuous(0, subjects, None, None, None, None, None, None, None)
    _, mean, variance = _mean_var(counts)
    cumulative = np.cumsum(weights)
    return Continuous(
        n=n,
        missing=subjects - n,
        mean=mean,
        sd=math.sqrt(variance) if n > 1 else None,
        median=_quantile(values, cumulative, 0.5),
        q1=_quantile(values, cumulative, 0.25),
        q3=_quantile(values, cumulative, 0.75),
        minimum=float(values[0]),
        maximum=float(values[-1]),
    )


def describe_categorical(
    counts: pd.Series, levels: Sequence[str], *, subjects: int
) -> tuple[dict[str, int], int, int]:
    """(count per level, denominator = non-missing values, missing) of one column."""
    known = {str(level): int(n) for level, n in counts.items()}
    denominator = sum(known.values())
    return {level: known.get(level, 0) for level in levels}, denominator, subjects - denominator


def smd_continuous(a: pd.Series, b: pd.Series) -> float | None:
    """(mean_b - mean_a) / sqrt((var_a + var_b) / 2); None where it cannot be computed."""
    n_a, mean_a, var_a = _mean_var(a)
    n_b, mean_b, var_b = _mean_var(b)
    if n_a < 2 or n_b < 2:
        return None
    pooled = math.sqrt((var_a + var_b) / 2)
    if pooled == 0:
        return 0.0 if mean_a == mean_b else None
    return (mean_b - mean_a) / pooled


def _proportions(counts: pd.Series, levels: Sequence[str]) -> np.ndarray:
    known = {str(level): int(n) for level, n in counts.items()}
    total = sum(known.values())
    return np.array([known.get(level, 0) / total for level in levels])


def smd_categorical(a: pd.Series, b: pd.Series, levels: Sequence[str]) -> float | None:
    """Yang and Dalton's multinomial SMD: sqrt(d' S^-1 d) over the levels but the first, with d
    the difference in proportions and S the mean of the two multinomial covariance matrices."""
    if a.sum() == 0 or b.sum() == 0 or len(levels) < 2:
        return None
    p = _proportions(a, levels)[1:]
    q = _proportions(b, levels)[1:]
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


def _kruskal(groups: Sequence[pd.Series]) -> float:
    """Kruskal-Wallis p-value from histograms: each distinct value gets the average of the ranks
    its subjects span in the pooled sample; H is corrected for ties (scipy.stats.kruskal)."""
    # scipy only where a p-value is asked for: it costs a second of start-up (imports).
    from scipy import stats  # type: ignore[import-untyped]

    pooled = pd.concat([g[g > 0] for g in groups]).groupby(level=0).sum().sort_index()
    weights = pooled.to_numpy(dtype=float)
    ends = np.cumsum(weights)
    average_rank = pd.Series(ends - (weights - 1) / 2, index=pooled.index)
    total = float(weights.sum())
    h = 0.0
    for group in groups:
        known = group[group > 0]
        rank_sum = float((known * average_rank.reindex(known.index)).sum())
        h += rank_sum**2 / float(known.sum())
    h = 12 / (total * (total + 1)) * h - 3 * (total + 1)
    ties = 1 - float((weights**3 - weights).sum()) / (total**3 - total)
    if ties == 0:
        return math.nan
    return float(stats.chi2.sf(h / ties, len(groups) - 1))


def _anova(groups: Sequence[tuple[int, float, float]]) -> float:
    """One-way ANOVA p-value from each group's (n, mean, variance)."""
    from scipy import stats

    total = sum(n for n, _, _ in groups)
    if total <= len(groups):  # one value a group: no variance within groups to test against
        return math.nan
    grand = sum(n * mean for n, mean, _ in groups) / total
    between = sum(n * (mean - grand) ** 2 for n, mean, _ in groups) / (len(groups) - 1)
    within = sum((n - 1) * var for n, _, var in groups if n > 1) / (total - len(groups))
    if within == 0:
        return math.nan
    return float(stats.f.sf(between / within, len(groups) - 1, total - len(groups)))


def p_value_continuous(groups: Sequence[pd.Series], *, nonnormal: bool) -> tuple[float | None, str]:
    """(p-value, test name) across the columns' histograms."""
    from scipy import stats

    present = [g for g in groups if g.sum() > 0]
    if len(present) < 2:
        return None, ""
    if nonnormal:
        p, test = _kruskal(present), "Kruskal-Wallis"
    elif len(present) == 2:
        (n_a, mean_a, var_a), (n_b, mean_b, var_b) = (_mean_var(g) for g in present)
        p = float(
            stats.ttest_ind_from_stats(
                mean_a, math.sqrt(var_a), n_a, mean_b, math.sqrt(var_b), n_b, equal_var=False
            ).pvalue
        )
        test = "Welch's t-test"
    else:
        p, test = _anova([_mean_var(g) for g in present]), "One-way ANOVA"
    return (None if math.isnan(p) else p), test


def p_value_categorical(
    groups: Sequence[pd.Series], levels: Sequence[str]
) -> tuple[float | None, str]:
    """(p-value, test name): chi-squared, or Fisher's exact for a 2 x 2 table with a small
    expected count."""
    from scipy import stats

    known = [{str(level): int(n) for level, n in g.items()} for g in groups]
    table = np.array([[k.get(level, 0) for level in levels] for k in known])
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


# The formatted table's headers (as on screen and in the exports).
CHARACTERISTIC, STATISTIC, P_VALUE, TEST = "Characteristic", "Statistic", "p-value", "Test"
DENOMINATOR_ROW = "N with a value"  # a categorical variable's denominator, where values are missing
MISSING_ROW = "Missing, n"


def smd_header(a: str, b: str) -> str:
    """The header of the SMD column of the pair (a, b)."""
    return f"SMD ({a}, {b})"


@dataclass(frozen=True)
class Variable:
    """One characteristic of the table: its key in the values frame, label, unit and kind."""

    key: str
    label: str
    unit: str | None
    categorical: bool


# A grade, score, stage or class with few whole-number levels is ordinal: its levels are
# categories (n, %), not a mean (SD) of codes (the Kellgren-Lawrence grade 0-4, ECOG 0-5, a CTCAE
# grade). A wider range (a WOMAC total 0-96, a pain VAS) stays continuous.
ORDINAL_NAME = re.compile(r"\b(grade|score|stage|class|classification)\b", re.IGNORECASE)
ORDINAL_MAX_RANGE = 10


def is_ordinal(label: str, values: pd.Series) -> bool:
    """``label`` names a grade, score, stage or class and ``values`` (numbers) are whole numbers
    spanning at most ``ORDINAL_MAX_RANGE``."""
    known = pd.to_numeric(values, errors="coerce").dropna()
    if known.empty or not ORDINAL_NAME.search(label):
        return False
    return bool((known == known.round()).all()) and known.max() - known.min() <= ORDINAL_MAX_RANGE


def as_ordinal(counts: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """A counts frame with the numbers of ``keys`` also as level text ("2" for 2.0), so Table 1
    and the distribution tabulate them as categories."""
    rows = counts["key"].isin(list(keys)) & counts["value_num"].notna()
    if not rows.any():
        return counts
    text = counts["value_text"].astype(object).copy()
    text[rows] = [f"{float(v):g}" for v in counts.loc[rows, "value_num"]]
    return counts.assign(value_text=text)


def level_order(level: str) -> tuple[int, float, str]:
    """Levels in order: numbers by value (grade 2 before grade 10), then text alphabetically."""
    try:
        return (0, float(level), "")
    except ValueError:
        return (1, 0.0, level)


def _count_percent(count: int, denominator: int, digits: int) -> str:
    """``"12 (60.0%)"`` over the non-missing values; a bare 0 for an empty column."""
    return f"{count} ({100 * count / denominator:.{digits}f}%)" if denominator else "0"


P_VALUE_FLOOR = 0.001  # below it a p-value is shown as "<0.001"


def format_p(p: float | None) -> str:
    """A p-value to three decimals, ``"<0.001"`` below 0.001 (tableone's and gtsummary's style);
    empty where no test could be done."""
    if p is None:
        return ""
    return f"<{P_VALUE_FLOOR:.3f}" if p < P_VALUE_FLOOR else f"{p:.3f}"


def _fmt(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def counts_from_values(
    values: pd.DataFrame, variables: Sequence[Variable], *, by: Sequence[str] = ("column",)
) -> pd.DataFrame:
    """Subjects per (``by`` groups, key, value) from per-subject values (one row per subject, the
    ``by`` columns and one column per variable key), with each group's size under
    ``SUBJECTS_KEY``. With the default ``by`` this is a counts frame (``COUNT_COLUMNS``); by site,
    cohort and arm it is what ``dashboard.precomputed`` stores at load time."""
    groups = list(by)
    frames = [
        values.groupby(groups, dropna=False)
        .size()
        .rename("subjects")
        .reset_index()
        .assign(key=SUBJECTS_KEY)
    ]
    for variable in variables:
        raw = values[[*groups, variable.key]].dropna(subset=[variable.key])
        if variable.categorical:
            kept = raw.assign(value_text=raw[variable.key].astype(str), value_num=np.nan)
        else:
            # A number kept as text (an SDTM --STRESC without --STRESN) still counts as a number.
            numbers = pd.to_numeric(raw[variable.key], errors="coerce")
            kept = raw.assign(value_num=numbers, value_text=None)[numbers.notna()]
        grouped = (
            kept.groupby([*groups, "value_num", "value_text"], dropna=False)
            .size()
            .rename("subjects")
            .reset_index()
        )
        frames.append(grouped.assign(key=variable.key))
    columns = [*groups, "key", "value_num", "value_text", "subjects"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns)


def table_one(
    counts: pd.DataFrame,
    variables: Sequence[Variable],
    *,
    columns: Sequence[str],
    nonnormal: Sequence[str] = (),
    show_range: bool = False,
    with_tests: bool = True,
    smd: bool = True,
    p_values: bool = True,
    digits: int = 1,
) -> pd.DataFrame:
    """The formatted Table 1, as displayed and exported.

    ``counts``: subjects per (column, key, value), ``COUNT_COLUMNS``, with each column's size on
    its ``SUBJECTS_KEY`` row. ``columns``: the groups in display order. Returns the rows as
    displayed: Characteristic, Statistic, one column per group headed "<group> (n=..)", "Overall
    (n=..)" where there are two groups or more (one group is its own overall), then, with two or
    more groups and ``with_tests``: one "SMD (a, b)" column per pair
    (``smd``), and "p-value" with the "Test" named on each variable's first row (``p_values``).
    A categorical variable with missing values leads with a "N with a value" row: the
    denominator of its percentages (without missing values it is the header's n).
    """
    sizes = counts[counts["key"] == SUBJECTS_KEY].groupby("column")["subjects"].sum()
    size = {c: int(sizes.get(c, 0)) for c in columns}
    headers = {c: f"{c} (n={size[c]})" for c in columns}
    # One column (a single-arm study, one site) is its own overall: no identical second column.
    overall = f"Overall (n={sum(size.values())})" if len(columns) > 1 else None
    compared = len(columns) > 1 and with_tests
    pairs = pairwise(columns) if compared and smd else []
    with_p = compared and p_values
    by_key = {key: frame for key, frame in counts.groupby("key")}
    rows: list[dict[str, object]] = []

    def row(
        characteristic: str, statistic: str, cells: dict[str, str], extra: dict[str, object]
    ) -> None:
        rows.append(
            {
                CHARACTERISTIC: characteristic,
                STATISTIC: statistic,
                **{headers[c]: cells.get(c, "") for c in columns},
                **({overall: cells.get("__overall__", "")} if overall else {}),
                **extra,
            }
        )

    for variable in variables:
        label = variable.label + (f" ({variable.unit})" if variable.unit else "")
        found = by_key.get(variable.key, pd.DataFrame(columns=COUNT_COLUMNS))
        value = "value_text" if variable.categorical else "value_num"
        found = found[found["column"].isin(columns) & found[value].notna()]
        column_counts = {
            c: found[found["column"] == c].groupby(value)["subjects"].sum() for c in columns
        }
        everyone = found.groupby(value)["subjects"].sum()
        total = sum(size.values())
        tests: dict[str, object] = {}
        if variable.categorical:
            levels = sorted((str(level) for level in everyone.index), key=level_order)
            for a, b in pairs:
                difference = smd_categorical(column_counts[a], column_counts[b], levels)
                tests[smd_header(a, b)] = "" if difference is None else f"{difference:.3f}"
            if with_p:
                p, test = p_value_categorical(list(column_counts.values()), levels)
                tests[P_VALUE], tests[TEST] = format_p(p), test
            described = {
                c: describe_categorical(v, levels, subjects=size[c])
                for c, v in column_counts.items()
            }
            whole = describe_categorical(everyone, levels, subjects=total)
            first = True
            if whole[2]:
                # Some values are missing: the percentages' denominator differs from the header n.
                cells = {c: str(d[1]) for c, d in described.items()}
                cells["__overall__"] = str(whole[1])
                row(label, DENOMINATOR_ROW, cells, tests)
                first = False
            for level in levels:
                cells = {c: _count_percent(d[0][level], d[1], digits) for c, d in described.items()}
                cells["__overall__"] = _count_percent(whole[0][level], whole[1], digits)
                row(label if first else "", f"{level}, n (%)", cells, tests if first else {})
                first = False
            if whole[2]:
                cells = {c: str(d[2]) for c, d in described.items()}
                cells["__overall__"] = str(whole[2])
                row("", MISSING_ROW, cells, {})
            continue
        described_c = {
            c: describe_continuous(v, subjects=size[c]) for c, v in column_counts.items()
        }
        whole_c = describe_continuous(everyone, subjects=total)
        for a, b in pairs:
            difference = smd_continuous(column_counts[a], column_counts[b])
            tests[smd_header(a, b)] = "" if difference is None else f"{difference:.3f}"
        if with_p:
            p, test = p_value_continuous(
                list(column_counts.values()), nonnormal=variable.key in nonnormal
            )
            tests[P_VALUE], tests[TEST] = format_p(p), test
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
            row("", MISSING_ROW, {c: str(d.missing) for c, d in every.items()}, {})
    table = pd.DataFrame(rows)
    return table.fillna("")


MAX_DEFAULT_FINDINGS = 12  # more than a dozen baseline tests make the default table a wall


# BMI summarises height and weight: where BMI is recorded they stay out of the default selection
# (one click away in the picker), as in the default for NCT06466850.
BMI_KEY = "VS.BMI"
BMI_PARTS = ("VS.HEIGHT", "VS.WEIGHT")


def default_keys(catalogue: pd.DataFrame, eligibility_tests: Collection[str] = ()) -> list[str]:
    """The characteristics Table 1 opens with: age and sex, race and ethnicity where recorded, then
    the baseline findings (the first dozen by how many subjects have them; height and weight left
    out where BMI is recorded). A laboratory test only where an eligibility rule reads it
    (``eligibility_tests``: test codes, e.g. HGB for "HGB < 10 g/dL"), after every other finding:
    the lab tests have a page of their own, so a study with 40 baseline lab tests still opens on
    its vital signs and its eligibility measures."""
    with_values = catalogue[catalogue["subjects"] > 0]
    present = set(with_values["key"])
    demographics = [k for k in ("AGE", "SEX", "RACE", "ETHNIC") if k in present]
    findings = with_values[with_values["key"].str.contains(".", regex=False)]
    lab = findings["key"].str.startswith("LB.")
    named = findings["key"].str.split(".").str[1].isin({t.upper() for t in eligibility_tests})
    findings = findings[~lab | named]
    if BMI_KEY in present:
        findings = findings[~findings["key"].isin(BMI_PARTS)]
    top = (
        findings.assign(lab=findings["key"].str.startswith("LB."))
        .sort_values(["lab", "subjects"], ascending=[True, False], kind="stable")
        .head(MAX_DEFAULT_FINDINGS)
    )
    return demographics + [k for k in findings["key"] if k in set(top["key"])]


def column_order(columns: Sequence[str], *, last: Sequence[str] = ()) -> list[str]:
    """Table 1 columns: the groups in name order, then the ``last`` ones (screen failures, not
    allocated) where present."""
    present = set(columns)
    return sorted(c for c in present if c not in last) + [c for c in last if c in present]


MISSING_LEVEL = "Missing"


def level_counts(counts: pd.DataFrame, *, key: str, columns: Sequence[str]) -> pd.DataFrame:
    """One categorical variable's subjects per (column, level), with the column's subjects
    without a value as the level ``MISSING_LEVEL``: the distribution chart's frame."""
    sizes = counts[counts["key"] == SUBJECTS_KEY].groupby("column")["subjects"].sum()
    found = counts[(counts["key"] == key) & counts["column"].isin(columns)]
    levels = (
        found.groupby(["column", "value_text"])["subjects"]
        .sum()
        .reset_index()
        .rename(columns={"value_text": "value"})
    )
    known = levels.groupby("column")["subjects"].sum()
    missing = pd.DataFrame(
        {
            "column": list(columns),
            "value": MISSING_LEVEL,
            "subjects": [int(sizes.get(c, 0)) - int(known.get(c, 0)) for c in columns],
        }
    )
    frame = pd.concat([levels, missing[missing["subjects"] > 0]], ignore_index=True)
    frame["subjects"] = frame["subjects"].astype(int)
    return frame


def column_summaries(counts: pd.DataFrame, *, key: str, columns: Sequence[str]) -> pd.DataFrame:
    """One continuous variable's n, quartiles, min and max per column (the box plot's frame)."""
    sizes = counts[counts["key"] == SUBJECTS_KEY].groupby("column")["subjects"].sum()
    found = counts[(counts["key"] == key) & counts["value_num"].notna()]
    described = [
        (
            c,
            describe_continuous(
                found[found["column"] == c].groupby("value_num")["subjects"].sum(),
                subjects=int(sizes.get(c, 0)),
            ),
        )
        for c in columns
    ]
    return pd.DataFrame(
        [
            {
                "column": c,
                "n": d.n,
                "minimum": d.minimum,
                "q1": d.q1,
                "median": d.median,
                "q3": d.q3,
                "maximum": d.maximum,
            }
            for c, d in described
            if d.n
        ],
        columns=["column", "n", "minimum", "q1", "median", "q3", "maximum"],
    )
