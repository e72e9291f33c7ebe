"""Laboratory toxicity grades (NCI CTCAE v5) derived from a result, its normal range and the
subject's baseline, by the criteria table ``ctcae_v5_labs.csv`` beside this module.

The table holds one row per (term, grade) boundary: the grade applies when the value compares
(``comparison``) with ``threshold`` times the reference that ``basis`` names (``uln``, ``lln``,
``baseline``), with ``threshold`` itself (``value``, in ``unit``), or with ULN + ``threshold``
(``uln_plus``), where its ``when`` holds: ``any``; ``baseline normal`` / ``baseline high`` (the
subject's baseline record of the test is not above / is above its range: CTCAE's "if baseline was
normal / abnormal"); ``value low`` (the value is below the LLN and a baseline is known). A
record's grade for a term is the highest grade whose row holds. Only what a value
and a range can show is derived: criteria that need clinical input (symptoms, transfusion,
"life-threatening consequences") are not, and docs/lab-grading.md lists them.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import StringIO

import numpy as np
import numpy.typing as npt
import pandas as pd

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Texts = npt.NDArray[np.object_]

CRITERIA_FILE = "ctcae_v5_labs.csv"
COLUMNS = [
    "term",
    "direction",
    "test_codes",
    "grade",
    "basis",
    "comparison",
    "threshold",
    "unit",
    "when",
    "note",
]
BASES = {"uln", "lln", "value", "baseline", "uln_plus"}
COMPARISONS = {">", ">=", "<", "<="}
WHENS = {"any", "baseline normal", "baseline high", "value low"}

# Two numbers closer than this (relative) are equal: 3 * 0.1 is 0.30000000000000004 in floating
# point, and a value of exactly 3 x ULN must not read as above it. admiral rounds both sides to
# 15 significant digits (signif_dig) for the same reason.
RELATIVE_TOLERANCE = 1e-12

# Units that differ only in spelling or by a power of ten: (unit of the table, factor to it). A
# unit found neither here nor in the table is kept as written: a criterion in absolute figures
# then cannot grade it (grade <NA>), while those relative to the range or baseline still can.
_PER_MM3 = ("10^9/L", 0.001)  # cells per mm3 (= per uL) to 10^9/L
UNIT_SYNONYMS: dict[str, tuple[str, float]] = {
    "g/l": ("g/L", 1.0),
    "g/dl": ("g/dL", 1.0),
    "mmol/l": ("mmol/L", 1.0),
    "mg/dl": ("mg/dL", 1.0),
    **{
        u: ("10^9/L", 1.0)
        for u in (
            "10^9/l",
            "10*9/l",
            "10e9/l",
            "x10^9/l",
            "gi/l",
            "10^3/ul",
            "10*3/ul",
            "x10^3/ul",
            "10^3/mm3",
            "k/ul",
        )
    },
    **{u: _PER_MM3 for u in ("/ul", "/mm3", "1/ul", "cells/ul", "cells/mm3")},
}

# Every CTCAE term here is graded on blood: a record of these specimens is left out (urine pH is
# not an acidosis, urine glucose not a hypoglycaemia).
SPECIMENS_NOT_GRADED = frozenset(
    {"URINE", "CSF", "CEREBROSPINAL FLUID", "STOOL", "FECES", "SALIVA"}
)

RANGE_CLASSES = frozenset({"LOW", "NORMAL", "HIGH"})


@cache
def criteria() -> pd.DataFrame:
    """The criteria table, checked: every column present, known bases, comparisons and
    conditions, grades 1 to 4, directions H or L, a number for every threshold."""
    text = resources.files("dashboard.metrics").joinpath(CRITERIA_FILE).read_text("utf-8")
    table = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    if list(table.columns) != COLUMNS:
        raise ValueError(f"{CRITERIA_FILE}: columns {list(table.columns)}, expected {COLUMNS}")
    problems = [
        f"{CRITERIA_FILE} row {i + 2}: {what}"
        for i, row in enumerate(table.to_dict("records"))
        for what, bad in [
            (f"basis {row['basis']!r}", row["basis"] not in BASES),
            (f"comparison {row['comparison']!r}", row["comparison"] not in COMPARISONS),
            (f"when {row['when']!r}", row["when"] not in WHENS),
            (f"direction {row['direction']!r}", row["direction"] not in {"H", "L"}),
            (f"grade {row['grade']!r}", row["grade"] not in {"1", "2", "3", "4"}),
            (f"threshold {row['threshold']!r}", not _is_number(row["threshold"])),
            ("no test code", not row["test_codes"].split()),
        ]
        if bad
    ]
    codes_of_term = table.groupby(["term", "direction"])["test_codes"].nunique()
    problems += [
        f"{CRITERIA_FILE}: {key} names different test codes on its rows"
        for key in codes_of_term[codes_of_term > 1].index
    ]
    if problems:
        raise ValueError("; ".join(problems))
    table["grade"] = table["grade"].astype(int)
    table["threshold"] = table["threshold"].astype(float)
    return table


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


CRITERIA: pd.DataFrame = criteria()


@dataclass(frozen=True)
class Criterion:
    """One row of the table (see the module's docstring)."""

    term: str
    direction: str
    test_codes: tuple[str, ...]
    grade: int
    basis: str
    comparison: str
    threshold: float
    unit: str
    when: str


@cache
def criteria_by_term() -> dict[tuple[str, str], list[Criterion]]:
    """{(term, direction): its rows}, in the table's order."""
    out: dict[tuple[str, str], list[Criterion]] = {}
    for row in CRITERIA.to_dict("records"):
        criterion = Criterion(
            term=str(row["term"]),
            direction=str(row["direction"]),
            test_codes=tuple(str(row["test_codes"]).split()),
            grade=int(row["grade"]),
            basis=str(row["basis"]),
            comparison=str(row["comparison"]),
            threshold=float(row["threshold"]),
            unit=str(row["unit"]),
            when=str(row["when"]),
        )
        out.setdefault((criterion.term, criterion.direction), []).append(criterion)
    return out


def directions_of_tests() -> dict[str, set[str]]:
    """{test code: the directions its terms grade ("H", "L")}."""
    out: dict[str, set[str]] = {}
    for (_, direction), rows in criteria_by_term().items():
        for code in rows[0].test_codes:
            out.setdefault(code, set()).add(direction)
    return out


# -- the records' arrays ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coded:
    """A text column as integer codes into its distinct values (tidied; "" for a missing one):
    a million records hold a few dozen test codes, so the work on text is done once per value."""

    codes: Ints
    labels: Texts

    def values(self) -> Texts:
        return self.labels[self.codes]

    def isin(self, wanted: set[str] | frozenset[str] | tuple[str, ...]) -> Bools:
        return np.isin(self.labels, list(wanted))[self.codes]


def _coded(frame: pd.DataFrame, column: str, *, upper: bool = False) -> _Coded:
    if column not in frame:
        return _Coded(np.zeros(len(frame), dtype=np.int64), np.array([""], dtype=object))
    codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
    labels = [str(u).strip() for u in uniques]
    labels = [u.upper() for u in labels] if upper else labels
    tidy, codes_of_label = np.unique(np.array([*labels, ""], dtype=object), return_inverse=True)
    codes = np.where(codes < 0, len(labels), codes)  # missing: the "" appended last
    return _Coded(codes_of_label[codes].astype(np.int64), tidy.astype(object))


@dataclass(frozen=True)
class _Records:
    """The input's columns as arrays, values and limits converted to the table's unit."""

    test_code: _Coded
    unit: _Coded  # the table's spelling where known, else as written ("" when none)
    value: Floats
    low: Floats
    high: Floats
    baseline: Floats  # the subject's baseline value (NaN: none, or this is the baseline)
    baseline_high: Bools  # the baseline record is above its range
    gradable: Bools  # not a specimen left out
    indicator: _Coded


def _floats(column: pd.Series) -> Floats:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _range_class(
    value: np.ndarray, low: np.ndarray, high: np.ndarray, indicator: _Coded
) -> np.ndarray:
    """The contract's range class: the indicator where LOW/NORMAL/HIGH, else from the range
    ("" where neither tells)."""
    with np.errstate(invalid="ignore"):
        computed = np.where(value > high, "HIGH", np.where(value < low, "LOW", "NORMAL"))
    known = ~np.isnan(value) & (~np.isnan(low) | ~np.isnan(high))
    given = indicator.values()
    return np.where(indicator.isin(RANGE_CLASSES), given, np.where(known, computed, ""))


def _prepared(records: pd.DataFrame) -> _Records:
    test_code = _coded(records, "test_code", upper=True)
    written = _coded(records, "unit")
    mapped = [UNIT_SYNONYMS.get(u.lower(), (u, 1.0)) for u in written.labels]
    unit = _Coded(written.codes, np.array([m[0] for m in mapped], dtype=object))
    factor = np.array([m[1] for m in mapped], dtype=float)[written.codes]
    value = _floats(records["value"]) * factor
    low = _floats(records["low"]) * factor
    high = _floats(records["high"]) * factor
    is_baseline = records["is_baseline"].fillna(False).astype(bool).to_numpy()
    indicator = _coded(records, "indicator", upper=True)
    klass = _range_class(value, low, high, indicator)

    # The subject's baseline of a test in a unit: its baseline record, the last by date if
    # several. The baseline record itself has no baseline to be compared with (it is graded
    # against the range), so its own baseline stays empty.
    keys = pd.DataFrame(
        {
            "usubjid": _coded(records, "usubjid").codes,
            "test_code": test_code.codes,
            "unit": written.codes,
        }
    )
    dates = (
        pd.to_datetime(records["date"], errors="coerce").to_numpy()
        if "date" in records
        else np.full(len(records), np.datetime64("NaT"))
    )
    base = keys.assign(base=value, klass=klass, date=dates, order=np.arange(len(keys)))
    base = (
        base[is_baseline]
        .sort_values(["date", "order"], na_position="first")
        .drop_duplicates(["usubjid", "test_code", "unit"], keep="last")
        .drop(columns=["date", "order"])
    )
    joined = keys.merge(base, on=["usubjid", "test_code", "unit"], how="left")
    baseline = np.where(is_baseline, np.nan, joined["base"].to_numpy(dtype=float, na_value=np.nan))
    base_class = joined["klass"].fillna("").to_numpy(dtype=object)
    return _Records(
        test_code=test_code,
        unit=unit,
        value=value,
        low=low,
        high=high,
        baseline=baseline,
        baseline_high=(base_class == "HIGH") & ~is_baseline,
        gradable=~_coded(records, "specimen", upper=True).isin(SPECIMENS_NOT_GRADED),
        indicator=indicator,
    )


# -- grading ----------------------------------------------------------------------------------------


def _holds(value: Floats, reference: Floats, comparison: str) -> Bools:
    """``value <comparison> reference`` with equality to a relative tolerance; False where either
    is missing."""
    with np.errstate(invalid="ignore"):
        close = np.abs(value - reference) <= RELATIVE_TOLERANCE * np.maximum(
            np.abs(value), np.abs(reference)
        )
        if comparison == ">":
            return (value > reference) & ~close
        if comparison == ">=":
            return (value > reference) | close
        if comparison == "<":
            return (value < reference) & ~close
        return (value < reference) | close


def _reference(row: Criterion, r: _Records, at: Ints) -> Floats:
    """What the row compares the value with; NaN where its ULN, LLN or baseline is missing."""
    threshold = row.threshold
    basis = row.basis
    if basis == "uln":
        return threshold * r.high[at]
    if basis == "lln":
        return threshold * r.low[at]
    if basis == "uln_plus":
        return r.high[at] + threshold
    if basis == "baseline":
        return threshold * r.baseline[at]
    return np.full(len(at), threshold)


def _applies(row: Criterion, r: _Records, at: Ints) -> Bools:
    """Where the row applies: its baseline condition and its unit (a row in figures applies to
    the records in its unit)."""
    when = row.when
    if when == "baseline high":
        mask = r.baseline_high[at] & ~np.isnan(r.baseline[at])
    elif when == "value low":  # below the LLN, with a baseline to compare with
        mask = _holds(r.value[at], r.low[at], "<") & ~np.isnan(r.baseline[at])
    elif when == "baseline normal":
        mask = ~r.baseline_high[at]  # normal, low or unknown: the range-based criteria
    else:
        mask = np.ones(len(at), dtype=bool)
    if row.unit:
        mask &= (r.unit.labels == row.unit)[r.unit.codes[at]]
    return mask


def _term_grades(rows: list[Criterion], r: _Records, at: Ints) -> pd.arrays.IntegerArray:
    """The grades of one term for the records at positions ``at``: the highest grade whose row
    holds; 0 where none holds; <NA> where no value, where none holds but a row needing a missing
    ULN/LLN might have, or where the term has figures in units and the record's unit is none of
    them. A missing baseline only leaves the baseline rows out (admiral's reading)."""
    best = np.zeros(len(at), dtype=np.int64)
    any_held = np.zeros(len(at), dtype=bool)
    undecided = np.zeros(len(at), dtype=bool)
    value = r.value[at]
    for row in rows:
        applies = _applies(row, r, at)
        reference = _reference(row, r, at)
        held = applies & _holds(value, reference, row.comparison)
        best = np.where(held & (row.grade > best), row.grade, best)
        any_held |= held
        if row.basis in {"uln", "lln", "uln_plus"}:
            undecided |= applies & np.isnan(reference)
    unknown = np.isnan(value) | (~any_held & undecided)
    units = {row.unit for row in rows if row.unit}
    if units:
        unknown |= ~r.unit.isin(units)[at]
    return pd.arrays.IntegerArray(np.where(unknown, 0, best), mask=unknown)


def _record_direction(r: _Records) -> Texts:
    """Where a value lies: "H" above the ULN, "L" below the LLN, "N" inside a known limit, else
    the indicator's HIGH/LOW/NORMAL; "" when it cannot be told."""
    with np.errstate(invalid="ignore"):
        above = r.value > r.high
        below = r.value < r.low
    inside = ~np.isnan(r.value) & (~np.isnan(r.low) | ~np.isnan(r.high))
    by_indicator = np.select(
        [r.indicator.isin({"HIGH"}), r.indicator.isin({"LOW"}), r.indicator.isin({"NORMAL"})],
        ["H", "L", "N"],
        "",
    )
    return np.where(above, "H", np.where(below, "L", np.where(inside, "N", by_indicator)))


def grade_records(records: pd.DataFrame) -> pd.DataFrame:
    """One row per input record and CTCAE term of its test: ``record`` (the input's index label),
    ``term``, ``direction`` ("H"/"L"), ``grade`` (Int64; 0 when the value meets no grade, <NA>
    when it cannot be graded) and ``source``: "given" where the record's ``grade_given`` (LBTOXGR)
    is a number, which is then used (a test graded in two directions, such as potassium, gets it
    in the direction its value lies in and 0 in the other), else "derived".

    Records whose test has no term here, or of a specimen other than blood, give no row."""
    r = _prepared(records)
    pieces: list[pd.DataFrame] = []
    for (term, direction), rows in criteria_by_term().items():
        at = np.flatnonzero(r.test_code.isin(rows[0].test_codes) & r.gradable)
        if len(at) == 0:
            continue
        pieces.append(
            pd.DataFrame(
                {
                    "position": at,
                    "term": term,
                    "direction": direction,
                    "grade": _term_grades(rows, r, at),
                }
            )
        )
    if not pieces:
        return pd.DataFrame(
            {
                "record": records.index[:0],
                "term": pd.Series(dtype=object),
                "direction": pd.Series(dtype=object),
                "grade": pd.Series(dtype="Int64"),
                "source": pd.Series(dtype=object),
            }
        )
    out = pd.concat(pieces, ignore_index=True).sort_values(["position", "term"], kind="stable")
    position = out["position"].to_numpy()

    given_text = _coded(records, "grade_given")
    digits = np.array([text.isdigit() for text in given_text.labels], dtype=bool)
    as_number = np.array([int(t) if t.isdigit() else 0 for t in given_text.labels], dtype=np.int64)
    is_given = digits[given_text.codes[position]]
    given = as_number[given_text.codes[position]]
    two_way = {code for code, ways in directions_of_tests().items() if len(ways) == 2}
    split = r.test_code.isin(two_way)[position]
    lies = _record_direction(r)[position]
    term_direction = out["direction"].to_numpy(dtype=object)
    from_given = pd.array(given, dtype="Int64")
    # A two-way test: the given grade belongs to the direction the value lies in; 0 for the
    # other direction (and both when inside the range); unknown where that cannot be told.
    from_given[split & (lies != term_direction)] = 0
    from_given[split & (lies == "")] = pd.NA
    out["grade"] = out["grade"].where(~is_given, from_given)
    out["source"] = np.where(is_given, "given", "derived")
    out.insert(0, "record", records.index[position])
    return out.drop(columns="position").reset_index(drop=True)
