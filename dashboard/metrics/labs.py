"""Laboratory and vital-sign findings: range classes, baseline and post-baseline records, shift
tables (normal range and toxicity grade), abnormal-value incidence by arm, and the eDISH / Hy's
law points. Pure pandas on the Labs frame contract (``records``: one row per LB or VS finding);
every step is a groupby or a merge, since ``records`` reaches a million rows at scale.

A *measurement* is (domain, test_code, unit, specimen, position, timepoint): supine and standing
blood pressure are two measurements of one test and are never merged. ``measurements`` lists them
with a label ("Diastolic Blood Pressure (mmHg), SUPINE, AFTER LYING DOWN FOR 5 MINUTES") that the
other functions take to pick one.

Grades come from elsewhere (``grades``: LONG rows ``record``, ``term``, ``direction``, ``grade``,
``source``, ``record`` being the index label of the records row), so a grade joins its record by
the index of ``records``, which every function here keeps.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# -- the rules, as the page states them ------------------------------------------------------------

MEASUREMENT_KEY = ["domain", "test_code", "unit", "specimen", "location", "position", "timepoint"]


def _key(records: pd.DataFrame) -> list[str]:
    """The measurement key columns ``records`` has (a frame built without a location has none)."""
    return [k for k in MEASUREMENT_KEY if k in records.columns]


LOW = "LOW"
NORMAL = "NORMAL"
HIGH = "HIGH"
ABNORMAL = "ABNORMAL"  # an indicator without a numeric range (urinalysis text), kept as given
LOW_AND_HIGH = "LOW AND HIGH"
MISSING = "MISSING"  # a baseline without a value (or without a class): counted, not dropped
TOTAL = "Total"
# A subject without an arm (none recorded) is counted under this label, not dropped from the tables.
NO_ARM = "No arm recorded"

# The categories of a range shift table, in the order it is read (ABNORMAL only where present).
BASELINE_CLASSES = [LOW, NORMAL, HIGH, ABNORMAL, MISSING]
WORST_CLASSES = [LOW, NORMAL, HIGH, LOW_AND_HIGH, ABNORMAL]
ALWAYS_SHOWN_BASELINE = [LOW, NORMAL, HIGH, MISSING]
ALWAYS_SHOWN_WORST = [LOW, NORMAL, HIGH, LOW_AND_HIGH]

# Grade categories of a grade shift table (CTCAE lab grades stop at 4).
GRADE_LABELS = [f"Grade {g}" for g in range(5)]

BASELINE_RULE = (
    "Baseline: the subject's record of the measurement flagged as baseline (the last by date if "
    "several)."
)
POST_BASELINE_RULE = (
    "Post-baseline: a record not flagged as baseline, dated after the baseline record and, where "
    "the subject has a first dose date, on or after it. A subject without a baseline record (or "
    "with an undated one) counts records on or after the first dose; without either, none."
)
WORST_RULE = (
    "Worst post-baseline: HIGH if any post-baseline value is high and none low, LOW if any is low "
    "and none high, LOW AND HIGH if both, ABNORMAL if only an abnormal indicator without a range, "
    "NORMAL otherwise; only subjects with at least one post-baseline value with a known class."
)

# eDISH (FDA): peaks of ALT, AST and total bilirubin on treatment, each as a multiple of its ULN.
ALT_CODES = ("ALT", "SGPT")
AST_CODES = ("AST", "SGOT")
BILI_CODES = ("BILI", "TBILI")
TRANSAMINASE_LIMIT = 3.0  # x ULN
BILIRUBIN_LIMIT = 2.0  # x ULN

HYS_LAW = "Potential Hy's law"
TEMPLE = "Temple's corollary"
HYPERBILIRUBINAEMIA = "Hyperbilirubinaemia"
NORMAL_RANGE = "Normal range"
NOT_ASSESSABLE = "Not assessable"
# The window variant only: both peaks high, but no bilirubin in the window after a transaminase.
OUTSIDE_WINDOW = "Both elevated, not within window"
QUADRANTS = [HYS_LAW, TEMPLE, HYPERBILIRUBINAEMIA, NORMAL_RANGE, OUTSIDE_WINDOW, NOT_ASSESSABLE]

HYS_LAW_RULE = (
    "Potential Hy's law: peak ALT or AST at or above 3 x ULN and peak total bilirubin at or above "
    "2 x ULN, both on treatment (on or after the first dose; post-baseline where the first dose "
    "date is unknown), at any time. Temple's corollary: transaminase at or above 3 x ULN, "
    "bilirubin below 2 x ULN. Hyperbilirubinaemia: bilirubin at or above 2 x ULN, transaminase "
    "below 3 x ULN. A subject without an upper limit for the transaminases or for bilirubin is "
    "not assessable."
)
HYS_LAW_WINDOW_RULE = (
    "Potential Hy's law (window of {days} days): as above, and a total bilirubin at or above "
    "2 x ULN dated on the day of, or within {days} days after, an ALT or AST at or above "
    "3 x ULN. Subjects with both peaks high but no such pair are shown as '" + OUTSIDE_WINDOW + "'."
)


# Vital signs come without a normal range in SDTM (VS has no --STNRLO / --STNRHI): their low /
# normal / high is read against these adult reference limits (test code, unit, low, high), stated
# on the page, wherever a record has no range of its own. Tests and units not listed get no class.
VITAL_SIGN_LIMITS = (
    ("SYSBP", "mmHg", 90.0, 140.0),
    ("DIABP", "mmHg", 60.0, 90.0),
    ("PULSE", "beats/min", 60.0, 100.0),
    ("HR", "beats/min", 60.0, 100.0),
    ("RESP", "breaths/min", 12.0, 20.0),
    ("TEMP", "C", 36.0, 38.0),
)
VITAL_SIGN_RULE = (
    "Vital signs have no normal range in SDTM: low / normal / high reads against reference limits "
    + "; ".join(f"{code} {low:g}-{high:g} {unit}" for code, unit, low, high in VITAL_SIGN_LIMITS)
    + "."
)


def with_vital_sign_limits(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` with ``VITAL_SIGN_LIMITS`` as the low and high of every VS record that has
    neither of its own (a record with a range keeps it)."""
    limits = pd.DataFrame(VITAL_SIGN_LIMITS, columns=["test_code", "unit", "_low", "_high"])
    keyed = (
        records[["test_code", "unit"]]
        .astype(object)
        .merge(limits, on=["test_code", "unit"], how="left")
    )
    without = (
        records["domain"].eq("VS").to_numpy()
        & records["low"].isna().to_numpy()
        & records["high"].isna().to_numpy()
    )
    low = np.where(
        without, keyed["_low"].to_numpy(dtype=float), records["low"].to_numpy(dtype=float)
    )
    high = np.where(
        without, keyed["_high"].to_numpy(dtype=float), records["high"].to_numpy(dtype=float)
    )
    return records.assign(low=low, high=high)


# -- range classes and measurements ----------------------------------------------------------------


def range_class(records: pd.DataFrame) -> pd.Series:
    """Each record's class against its normal range: the indicator where it says LOW, NORMAL,
    HIGH or ABNORMAL (ABNORMAL kept for tests without a range, e.g. urinalysis text); else the
    value against the limits (below the low: LOW, above the high: HIGH); else NORMAL where the
    value and at least one limit are known; else None."""
    indicator = records["indicator"].astype("object").where(records["indicator"].notna(), "")
    indicator = indicator.astype(str).str.strip().str.upper()
    value = pd.to_numeric(records["value"], errors="coerce")
    low = pd.to_numeric(records["low"], errors="coerce")
    high = pd.to_numeric(records["high"], errors="coerce")
    given = indicator.isin([LOW, NORMAL, HIGH, ABNORMAL])
    classes = pd.Series(None, index=records.index, dtype=object, name="range_class")
    # Assigned from the weakest rule to the strongest, each overwriting the one before.
    classes[value.notna() & (low.notna() | high.notna())] = NORMAL
    classes[value > high] = HIGH
    classes[value < low] = LOW
    classes[given] = indicator[given]
    # None, not NaN, where unknown (pandas fills an object Series' gaps with NaN).
    return classes.where(classes.notna(), None)


def _label_part(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def measurements(records: pd.DataFrame) -> pd.DataFrame:
    """The distinct measurements: the key columns, ``test``, ``label`` (unique; what the other
    functions take as ``measurement``), ``records`` and ``subjects``; sorted by domain, test and
    label. The label is "test (unit)", then the specimen where the test has several, the position
    and the timepoint: "Diastolic Blood Pressure (mmHg), SUPINE, AFTER LYING DOWN FOR 5 MINUTES"."""
    keyed = records.assign(_m=_measurement_ids(records))
    table = keyed.groupby("_m", sort=True).agg(
        **{k: (k, "first") for k in _key(records)},
        test=("test", "first"),
        records=("usubjid", "size"),
        subjects=("usubjid", "nunique"),
    )
    # first() skips missing values: a key part missing in the group is missing for all its rows.
    for k in _key(records):
        missing = keyed[k].isna().groupby(keyed["_m"]).all()
        table[k] = table[k].astype(object).where(~missing.reindex(table.index), None)
    return labelled_measurements(table.rename_axis("measurement_id").reset_index())


def labelled_measurements(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per measurement: its key columns, ``test``, ``measurement_id`` and any
    counts) with ``label``, sorted as ``measurements`` sorts: what the load-time counts
    (``queries.labs.lab_measurements``) are labelled by, so their labels equal the records'."""
    table = table.reset_index(drop=True)
    specimens = table.groupby(["domain", "test_code"], dropna=False)["specimen"].transform(
        lambda s: s.dropna().nunique()
    )
    labels = []
    locations = table["location"] if "location" in table else pd.Series(None, index=table.index)
    for test, code, unit, specimen, location, position, timepoint, several in zip(
        table["test"],
        table["test_code"],
        table["unit"],
        table["specimen"],
        locations,
        table["position"],
        table["timepoint"],
        specimens > 1,
        strict=True,
    ):
        # One row per measurement (a handful), not per record: a loop is fine here.
        name = _label_part(test) or _label_part(code) or "?"
        unit_text = _label_part(unit)
        label = f"{name} ({unit_text})" if unit_text else name
        parts = [_label_part(specimen) if several else None, _label_part(location)]
        parts.append(_label_part(position))
        parts.append(_label_part(timepoint))
        labels.append(", ".join([label, *[p for p in parts if p]]))
    table["label"] = pd.Series(labels, index=table.index, dtype=object)
    # Two keys with one label (same test name in two domains or codes): the code tells them apart.
    clash = table["label"].duplicated(keep=False)
    table.loc[clash, "label"] = (
        table.loc[clash, "label"]
        + " ["
        + table.loc[clash, "domain"].astype(str)
        + " "
        + table.loc[clash, "test_code"].astype(str)
        + "]"
    )
    return table.sort_values(["domain", "test", "label"], kind="stable").reset_index(drop=True)


def _measurement_ids(records: pd.DataFrame) -> pd.Series:
    """An integer per measurement key (missing key parts equal to each other)."""
    return records.groupby(_key(records), dropna=False, sort=True).ngroup()


def with_measurement(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` with a ``measurement`` column: the label of its measurement; a missing arm
    reads ``NO_ARM``. A frame already labelled is returned as it is: a view labels its records
    once and hands them to every function here."""
    if "measurement" in records.columns:
        return records
    ids = _measurement_ids(records)
    table = measurements(records)
    labels = pd.Series(table["label"].to_numpy(), index=table["measurement_id"].to_numpy())
    arm = records["arm"].astype(object).where(records["arm"].notna(), NO_ARM)
    return records.assign(measurement=ids.map(labels), arm=arm)


def _pick(records: pd.DataFrame, test_code: str | None, measurement: str | None) -> pd.DataFrame:
    """The records of one measurement: ``measurement`` (a label) where given, else the only
    measurement of ``test_code`` (an error naming them where the test has several)."""
    labelled = with_measurement(records)
    if measurement is not None:
        chosen = labelled[labelled["measurement"] == measurement]
        if test_code is not None:
            chosen = chosen[chosen["test_code"] == test_code]
        return chosen
    chosen = labelled[labelled["test_code"] == test_code]
    names = chosen["measurement"].drop_duplicates().tolist()
    if len(names) > 1:
        raise ValueError(f"{test_code} has several measurements, pick one: {sorted(names)}")
    return chosen


# -- baseline and post-baseline --------------------------------------------------------------------

SUBJECT_KEY = ["usubjid", "arm", "measurement"]


def baseline_and_post(records: pd.DataFrame) -> pd.DataFrame:
    """``records`` (same index, every row) with the baseline and post-baseline marks of each
    subject's measurement (``SUBJECT_KEY``: usubjid, arm, measurement label):

    - ``measurement``: the measurement's label; ``range_class``: the record's class;
    - ``is_baseline_record``: the record chosen as baseline (the last by date of those flagged);
    - ``baseline_value``, ``baseline_low``, ``baseline_high``, ``baseline_date``,
      ``baseline_class`` (``MISSING`` where there is no baseline record, no value or no class),
      ``baseline_record`` (its index label): repeated on every record of the subject's measurement;
    - ``is_post``: post-baseline under ``POST_BASELINE_RULE``.

    A frame already marked is returned as it is (the load-time summary marks a chunk once).
    """
    if "is_post" in records.columns:
        return records
    # A frame already labelled (by ``_pick``) keeps its labels.
    frame = records.copy() if "measurement" in records else with_measurement(records)
    frame["range_class"] = range_class(frame)
    flagged = frame[frame["is_baseline"].fillna(False).astype(bool)]
    # The last by date: undated first, then by date, then the record order; keep the last.
    ordered = flagged.assign(_dated=flagged["date"].notna(), _row=np.arange(len(flagged)))
    ordered = ordered.sort_values(["_dated", "date", "_row"], kind="stable")
    chosen = ordered.groupby(SUBJECT_KEY, dropna=False, sort=False).tail(1)
    baseline = pd.DataFrame(
        {
            "usubjid": chosen["usubjid"],
            "arm": chosen["arm"],
            "measurement": chosen["measurement"],
            "baseline_value": chosen["value"].astype(float),
            "baseline_low": chosen["low"].astype(float),
            "baseline_high": chosen["high"].astype(float),
            "baseline_date": chosen["date"],
            "baseline_class": chosen["range_class"],
            "baseline_record": chosen.index.to_numpy(),
        }
    )
    frame["is_baseline_record"] = frame.index.isin(chosen.index)
    merged = frame.reset_index(names="_index").merge(baseline, on=SUBJECT_KEY, how="left")
    merged = merged.set_index("_index")
    merged.index.name = records.index.name
    missing_class = merged["baseline_value"].isna() & merged["baseline_class"].ne(ABNORMAL)
    merged["baseline_class"] = merged["baseline_class"].astype(object)
    merged.loc[missing_class | merged["baseline_class"].isna(), "baseline_class"] = MISSING

    date = merged["date"]
    first_dose = merged["first_dose"]
    after_baseline = date > merged["baseline_date"]  # False where either is NaT
    on_treatment = date >= first_dose
    has_baseline_date = merged["baseline_date"].notna()
    has_dose = first_dose.notna()
    not_flagged = ~merged["is_baseline"].fillna(False).astype(bool)
    merged["is_post"] = (
        not_flagged
        & date.notna()
        & (has_baseline_date | has_dose)
        & (after_baseline | ~has_baseline_date)
        & (on_treatment | ~has_dose)
    )
    marked: pd.DataFrame = merged.loc[records.index]
    return marked


def _worst_class(post: pd.DataFrame) -> pd.Series:
    """Per ``SUBJECT_KEY``: the worst post-baseline class (``WORST_RULE``) of records with a
    known class."""
    known = post[post["range_class"].notna()]
    keys = [known[k] for k in SUBJECT_KEY]
    flags = pd.DataFrame(
        {
            "low": known["range_class"].eq(LOW).to_numpy(),
            "high": known["range_class"].eq(HIGH).to_numpy(),
            "abnormal": known["range_class"].eq(ABNORMAL).to_numpy(),
        },
        index=known.index,
    )
    any_flag = flags.groupby(keys, dropna=False).any()
    worst = np.select(
        [
            any_flag["low"] & any_flag["high"],
            any_flag["high"],
            any_flag["low"],
            any_flag["abnormal"],
        ],
        [LOW_AND_HIGH, HIGH, LOW, ABNORMAL],
        default=NORMAL,
    )
    return pd.Series(worst, index=any_flag.index, name="worst", dtype=object)


# -- shift tables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftTable:
    """A shift table: ``cells`` (long: arm, baseline, worst, n, N, pct; every category of
    ``baseline_order`` x ``worst_order`` per arm, zeros included), and ``subjects`` (one row per
    subject counted: usubjid, site_id, arm, baseline, worst, baseline_value, worst_value,
    worst_date) behind the cells. N is the arm's subjects with a post-baseline value of known
    class (or grade), baseline MISSING included."""

    measurement: str
    cells: pd.DataFrame
    subjects: pd.DataFrame
    baseline_order: list[str] = field(default_factory=list)
    worst_order: list[str] = field(default_factory=list)

    @property
    def arms(self) -> list[str]:
        return [str(a) for a in self.cells["arm"].drop_duplicates()]

    def wide(self, arm: str | None) -> pd.DataFrame:
        """The table as shown for ``arm`` (None: all arms together): rows the baseline category
        then Total, columns the worst post-baseline category then Total, cells "n (pct%)" of
        the arm's N."""
        cells = self.cells if arm is None else self.cells[self.cells["arm"] == arm]
        summed = cells.groupby(["baseline", "worst"], observed=True)["n"].sum()
        counts = summed.unstack("worst")
        counts = counts.reindex(index=self.baseline_order, columns=self.worst_order).fillna(0)
        counts = counts.astype(int)
        counts[TOTAL] = counts.sum(axis=1)
        counts.loc[TOTAL] = counts.sum(axis=0)
        whole = int(counts[TOTAL].iloc[-1])
        shown = pd.DataFrame(
            [[_n_pct(int(n), whole) for n in row] for row in counts.to_numpy()],
            index=pd.Index(counts.index, name="Baseline"),
            columns=pd.Index(counts.columns, name="Worst post-baseline"),
        )
        return shown

    def subjects_of(self, arm: str | None, baseline: str | None, post: str | None) -> pd.DataFrame:
        """The subjects of one cell (None: any value of that part, e.g. a Total)."""
        return _cell_subjects(self.subjects, arm, baseline, post)


def _n_pct(n: int, whole: int) -> str:
    return f"{n} ({100 * n / whole:.1f}%)" if whole else f"{n}"


def _cell_subjects(
    subjects: pd.DataFrame, arm: str | None, baseline: str | None, post: str | None
) -> pd.DataFrame:
    keep = pd.Series(True, index=subjects.index)
    if arm is not None:
        keep &= subjects["arm"] == arm
    if baseline is not None and baseline != TOTAL:
        keep &= subjects["baseline"] == baseline
    if post is not None and post != TOTAL:
        keep &= subjects["worst"] == post
    return subjects[keep].sort_values("usubjid").reset_index(drop=True)


def _counts(subjects: pd.DataFrame) -> pd.DataFrame:
    """Subjects per arm, baseline and worst category (``n``): a shift table's counts."""
    return subjects.groupby(["arm", "baseline", "worst"]).size().rename("n").reset_index()


def _cells(counts: pd.DataFrame, baseline_order: list[str], worst_order: list[str]) -> pd.DataFrame:
    """The long cells of a shift table from its counts (arm, baseline, worst, n): every arm with
    a subject x baseline x worst, zeros included."""
    counts = counts[counts["n"] > 0]
    arms = counts["arm"].drop_duplicates().sort_values().tolist()
    grid = pd.MultiIndex.from_product(
        [arms, baseline_order, worst_order], names=["arm", "baseline", "worst"]
    )
    summed = counts.groupby(["arm", "baseline", "worst"])["n"].sum()
    cells = summed.reindex(grid, fill_value=0).astype(int).rename("n").reset_index()
    whole = counts.groupby("arm")["n"].sum()
    cells["N"] = cells["arm"].map(whole).astype(int)
    cells["pct"] = np.where(cells["N"] > 0, 100 * cells["n"] / cells["N"].clip(lower=1), np.nan)
    return cells


def _shown(present: pd.Series, always: list[str], order: list[str]) -> list[str]:
    seen = set(present.dropna())
    return [c for c in order if c in always or c in seen]


def _range_subjects(chosen: pd.DataFrame) -> pd.DataFrame:
    """One row per subject (``SUBJECT_KEY``) with a post-baseline value of known class: baseline
    class and value, worst class, and the record that decides it (value and date): the highest
    high value for HIGH and LOW AND HIGH, the lowest low value for LOW, the first abnormal one for
    ABNORMAL, the highest value for NORMAL; the earliest at a tie."""
    marked = baseline_and_post(chosen)
    post = marked[marked["is_post"] & marked["range_class"].notna()]
    worst = _worst_class(post).rename("worst").reset_index()
    post = post.merge(worst, on=SUBJECT_KEY, how="left")
    deciding_class = post["worst"].replace({LOW_AND_HIGH: HIGH})
    decides = post["range_class"].eq(deciding_class)
    extreme = np.where(post["worst"].eq(LOW), post["value"], -post["value"])
    ordered = post.assign(_decides=~decides, _extreme=extreme).sort_values(
        ["_decides", "_extreme", "date"], kind="stable", na_position="last"
    )
    first = ordered.groupby(SUBJECT_KEY, dropna=False, sort=False).head(1)
    return pd.DataFrame(
        {
            "usubjid": first["usubjid"].to_numpy(),
            "site_id": first["site_id"].to_numpy(),
            "arm": first["arm"].to_numpy(),
            "measurement": first["measurement"].to_numpy(),
            "baseline": first["baseline_class"].to_numpy(),
            "worst": first["worst"].to_numpy(),
            "baseline_value": first["baseline_value"].to_numpy(),
            "worst_value": first["value"].to_numpy(),
            "worst_date": first["date"].to_numpy(),
        }
    ).sort_values(["arm", "usubjid"], kind="stable", ignore_index=True)


def range_shift(
    records: pd.DataFrame, test_code: str | None, measurement: str | None = None
) -> ShiftTable:
    """Baseline range class against the worst post-baseline class, by arm, for one measurement:
    ``measurement`` (a label of ``measurements``) or the only measurement of ``test_code`` (a
    ValueError listing them where the test has several, e.g. supine and standing DIABP)."""
    chosen = _pick(records, test_code, measurement)
    label = measurement or (str(chosen["measurement"].iloc[0]) if len(chosen) else str(test_code))
    return range_shift_table(label, _range_subjects(chosen))


# The subjects behind a shift table's cells (``ShiftTable.subjects``).
SHIFT_SUBJECT_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "baseline",
    "worst",
    "baseline_value",
    "worst_value",
    "worst_date",
]


def range_shift_table(
    label: str, subjects: pd.DataFrame | None = None, *, counts: pd.DataFrame | None = None
) -> ShiftTable:
    """The range shift table of one measurement, from its subjects (one row per subject counted,
    ``SHIFT_SUBJECT_COLUMNS``: computed from the records, ``range_shift``) or from its counts
    per arm, baseline and worst class (arm, baseline, worst, n: summed in SQL from the load-time
    summary, ``views.labs``; the table's ``subjects`` are then empty, read per cell on a click)."""
    subjects, counts = _subjects_and_counts(subjects, counts)
    present = counts[counts["n"] > 0]
    baseline_order = _shown(present["baseline"], ALWAYS_SHOWN_BASELINE, BASELINE_CLASSES)
    worst_order = _shown(present["worst"], ALWAYS_SHOWN_WORST, WORST_CLASSES)
    return ShiftTable(
        label, _cells(counts, baseline_order, worst_order), subjects, baseline_order, worst_order
    )


def _subjects_and_counts(
    subjects: pd.DataFrame | None, counts: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if counts is None:
        if subjects is None:
            raise ValueError("a shift table needs its subjects or its counts")
        rows = _subject_rows(subjects)
        return rows, _counts(rows)
    counts = counts.assign(
        arm=counts["arm"].astype(object).where(counts["arm"].notna(), NO_ARM),
        n=pd.to_numeric(counts["n"]).astype(int),
    )
    return _subject_rows(pd.DataFrame(columns=SHIFT_SUBJECT_COLUMNS)), counts


def _subject_rows(subjects: pd.DataFrame) -> pd.DataFrame:
    """A shift table's subjects in one shape, whichever way they were counted: the columns, float
    values, datetime dates, and subjects in arm then subject order."""
    rows = subjects.reindex(columns=SHIFT_SUBJECT_COLUMNS)
    rows = rows.assign(
        arm=rows["arm"].astype(object).where(rows["arm"].notna(), NO_ARM),
        baseline_value=rows["baseline_value"].astype(float),
        worst_value=rows["worst_value"].astype(float),
        worst_date=pd.to_datetime(rows["worst_date"]),
    )
    return rows.sort_values(["arm", "usubjid"], kind="stable", ignore_index=True)


def shift_subjects(
    records: pd.DataFrame,
    test_code: str | None,
    *,
    measurement: str | None = None,
    arm: str | None,
    baseline: str | None,
    post: str | None,
) -> pd.DataFrame:
    """The subjects of one cell of ``range_shift`` (None or "Total": any): usubjid, site_id, arm,
    baseline, worst, baseline_value, worst_value, worst_date."""
    return range_shift(records, test_code, measurement).subjects_of(arm, baseline, post)


def _record_grades(grades: pd.DataFrame, term: str | None) -> pd.Series:
    """The highest grade of each record (index: the record label), of ``term`` where given;
    records without a grade are left out."""
    chosen = grades if term is None else grades[grades["term"] == term]
    chosen = chosen[chosen["grade"].notna()]
    return chosen.groupby("record")["grade"].max().astype(int)


def _grade_subjects(chosen: pd.DataFrame, grades: pd.DataFrame, term: str) -> pd.DataFrame:
    graded = _record_grades(grades, term)
    marked = baseline_and_post(chosen)
    # assign, not a column set: a frame already marked is the caller's own.
    marked = marked.assign(grade=graded.reindex(marked.index).astype("Int64"))
    post = marked[marked["is_post"] & marked["grade"].notna()]
    # Baseline grade: the grade of the baseline record (MISSING: no record, or not gradable).
    base_grade = marked["baseline_record"].map(graded)
    post = post.assign(_base=base_grade.loc[post.index])
    ordered = post.assign(_neg=-post["grade"].astype(float)).sort_values(
        ["_neg", "date"], kind="stable", na_position="last"
    )
    first = ordered.groupby(SUBJECT_KEY, dropna=False, sort=False).head(1)
    baseline = [MISSING if pd.isna(g) else f"Grade {int(g)}" for g in first["_base"]]
    return pd.DataFrame(
        {
            "usubjid": first["usubjid"].to_numpy(),
            "site_id": first["site_id"].to_numpy(),
            "arm": first["arm"].to_numpy(),
            "measurement": first["measurement"].to_numpy(),
            "baseline": baseline,
            "worst": [f"Grade {int(g)}" for g in first["grade"]],
            "baseline_value": first["baseline_value"].to_numpy(),
            "worst_value": first["value"].to_numpy(),
            "worst_date": first["date"].to_numpy(),
        }
    ).sort_values(["arm", "usubjid"], kind="stable", ignore_index=True)


def grade_shift(
    records: pd.DataFrame,
    grades: pd.DataFrame,
    test_code: str | None,
    term: str,
    measurement: str | None = None,
) -> ShiftTable:
    """Baseline grade (Grade 0-4, MISSING where the baseline record is absent or not gradable)
    against the worst post-baseline grade of ``term``, by arm; subjects with at least one graded
    post-baseline record. ``grades``: the long grade rows (record, term, direction, grade)."""
    chosen = _pick(records, test_code, measurement)
    label = measurement or (str(chosen["measurement"].iloc[0]) if len(chosen) else str(test_code))
    return grade_shift_table(label, term, _grade_subjects(chosen, grades, term))


def grade_shift_table(
    label: str,
    term: str,
    subjects: pd.DataFrame | None = None,
    *,
    counts: pd.DataFrame | None = None,
) -> ShiftTable:
    """The grade shift table of one measurement and CTCAE term, from its subjects or its counts
    (as ``range_shift_table``)."""
    subjects, counts = _subjects_and_counts(subjects, counts)
    shown = counts[counts["n"] > 0]
    present = set(shown["worst"]) | set(shown["baseline"])
    extra = sorted(g for g in present if g not in GRADE_LABELS and g != MISSING)
    baseline_order = [*GRADE_LABELS, *extra, MISSING]
    worst_order = [*GRADE_LABELS, *extra]
    return ShiftTable(
        f"{label}: {term}",
        _cells(counts, baseline_order, worst_order),
        subjects,
        baseline_order,
        worst_order,
    )


def grade_shift_subjects(
    records: pd.DataFrame,
    grades: pd.DataFrame,
    test_code: str | None,
    term: str,
    *,
    measurement: str | None = None,
    arm: str | None,
    baseline: str | None,
    post: str | None,
) -> pd.DataFrame:
    """The subjects of one cell of ``grade_shift`` (None or "Total": any)."""
    table = grade_shift(records, grades, test_code, term, measurement)
    return table.subjects_of(arm, baseline, post)


# -- abnormal values by arm ------------------------------------------------------------------------

INCIDENCE_FLAGS = ("low", "high", "grade3")


def _post_flags(records: pd.DataFrame, grades: pd.DataFrame | None) -> pd.DataFrame:
    """The post-baseline records with a value or a class, flagged low, high, graded >= 3 (any
    term of the record), with ``gradable`` (the record has a grade)."""
    marked = baseline_and_post(records)
    post = marked[marked["is_post"] & (marked["value"].notna() | marked["range_class"].notna())]
    post = post.assign(low=post["range_class"].eq(LOW), high=post["range_class"].eq(HIGH))
    if grades is None:
        return post.assign(grade3=False, gradable=False)
    graded = _record_grades(grades, None)
    grade = graded.reindex(post.index).astype("Float64")
    return post.assign(grade3=grade.ge(3).fillna(False).astype(bool), gradable=grade.notna())


def _incidence_per_subject(post: pd.DataFrame) -> pd.DataFrame:
    """Per measurement, arm and subject with a post-baseline value (``_post_flags``'s rows): any
    low, high, graded >= 3, and gradable record."""
    return (
        post.groupby(["measurement", "arm", "usubjid"], dropna=False)
        .agg(
            low=("low", "any"),
            high=("high", "any"),
            grade3=("grade3", "any"),
            gradable=("gradable", "any"),
        )
        .reset_index()
    )


# The counts of the abnormal-values table per measurement and arm (``incidence_from_counts``).
INCIDENCE_COUNTS = ["N", "low_n", "high_n", "grade3_n", "gradable_n"]


def abnormal_incidence(records: pd.DataFrame, grades: pd.DataFrame | None) -> pd.DataFrame:
    """Per measurement and arm: ``N`` subjects with a post-baseline value, and of them those with
    at least one post-baseline LOW (``low_n``, ``low_pct``), HIGH (``high_n``, ``high_pct``) and,
    where ``grades`` are given, graded 3 or above (``grade3_n``, ``grade3_pct``; NA for a
    measurement without any graded record). Also domain, test_code, test, unit."""
    post = _post_flags(records, grades)
    per_subject = _incidence_per_subject(post)
    counts = per_subject.groupby(["measurement", "arm"], dropna=False).agg(
        N=("usubjid", "size"),
        low_n=("low", "sum"),
        high_n=("high", "sum"),
        grade3_n=("grade3", "sum"),
        gradable_n=("gradable", "sum"),
    )
    names = post.groupby("measurement").agg(
        domain=("domain", "first"),
        test_code=("test_code", "first"),
        test=("test", "first"),
        unit=("unit", "first"),
    )
    counts = counts.reset_index().merge(names.reset_index(), on="measurement", how="left")
    return incidence_from_counts(counts, graded=grades is not None)


def incidence_from_counts(counts: pd.DataFrame, *, graded: bool = True) -> pd.DataFrame:
    """``abnormal_incidence``'s table from its counts per measurement and arm (measurement, arm,
    domain, test_code, test, unit and ``INCIDENCE_COUNTS``): computed from the records or read
    from the load-time summary. ``grade3_n`` is NA for a measurement none of whose post-baseline
    records has a grade, in any arm (and everywhere where ``graded`` is False)."""
    table = counts.copy()
    for name in INCIDENCE_COUNTS:
        table[name] = pd.to_numeric(table[name]).fillna(0).astype(int)
    table["arm"] = table["arm"].astype(object).where(table["arm"].notna(), NO_ARM)
    for flag in INCIDENCE_FLAGS:
        table[f"{flag}_n"] = table[f"{flag}_n"].astype("Int64")
    gradable = table.groupby("measurement")["gradable_n"].sum() > 0
    if graded:
        table.loc[~table["measurement"].map(gradable).fillna(False).astype(bool), "grade3_n"] = (
            pd.NA
        )
    else:
        table["grade3_n"] = pd.NA
    table["grade3_n"] = table["grade3_n"].astype("Int64")
    for flag in INCIDENCE_FLAGS:
        table[f"{flag}_pct"] = (100 * table[f"{flag}_n"].astype("Float64") / table["N"]).astype(
            "Float64"
        )
    columns = ["domain", "test_code", "test", "unit", "measurement", "arm", "N"]
    columns += [f"{f}_{p}" for f in INCIDENCE_FLAGS for p in ("n", "pct")]
    return table[columns].sort_values(["domain", "test", "measurement", "arm"], ignore_index=True)


def incidence_subjects(
    records: pd.DataFrame,
    grades: pd.DataFrame | None,
    measurement: str,
    arm: str | None,
    flag: str | None,
) -> pd.DataFrame:
    """The subjects of one cell of ``abnormal_incidence``: ``flag`` "low", "high", "grade3", or
    None (the N: every subject with a post-baseline value); ``arm`` None: every arm. Columns
    usubjid, site_id, arm, records (the flagged post-baseline records, or all where ``flag`` is
    None), lowest, highest, first_date."""
    if flag is not None and flag not in INCIDENCE_FLAGS:
        raise ValueError(f"flag must be one of {INCIDENCE_FLAGS} or None, not {flag!r}")
    post = _post_flags(records, grades)
    post = post[post["measurement"] == measurement]
    if arm is not None:
        post = post[post["arm"] == arm]
    if flag is not None:
        post = post[post[flag]]
    out = post.groupby(["usubjid", "site_id", "arm"], dropna=False).agg(
        records=("value", "size"),
        lowest=("value", "min"),
        highest=("value", "max"),
        first_date=("date", "min"),
    )
    return out.reset_index().sort_values("usubjid", ignore_index=True)


# -- eDISH / Hy's law ------------------------------------------------------------------------------

_PEAKS = {"alt": ALT_CODES, "ast": AST_CODES, "bili": BILI_CODES}


def _liver_records(records: pd.DataFrame) -> pd.DataFrame:
    """The on-treatment ALT, AST and bilirubin records with ``group`` (alt/ast/bili) and
    ``ratio`` (value / ULN; NaN without a positive ULN). On treatment: not flagged as baseline and
    on or after the first dose where the subject has one; post-baseline otherwise."""
    codes = [c for group in _PEAKS.values() for c in group]
    liver = records[records["test_code"].isin(codes)]
    marked = baseline_and_post(liver)
    not_flagged = ~marked["is_baseline"].fillna(False).astype(bool)
    has_dose = marked["first_dose"].notna()
    on_treatment = np.where(
        has_dose, not_flagged & (marked["date"] >= marked["first_dose"]), marked["is_post"]
    )
    chosen = marked[on_treatment.astype(bool)]
    group = pd.Series(None, index=chosen.index, dtype=object)
    for name, group_codes in _PEAKS.items():
        group[chosen["test_code"].isin(group_codes)] = name
    high = chosen["high"].astype(float)
    ratio = chosen["value"].astype(float) / high.where(high > 0)
    return chosen.assign(group=group, ratio=ratio)


def _quadrant(transaminase: pd.Series, bili: pd.Series) -> np.ndarray:
    tx_high = transaminase >= TRANSAMINASE_LIMIT
    bili_high = bili >= BILIRUBIN_LIMIT
    return np.select(
        [
            transaminase.isna() | bili.isna(),
            tx_high & bili_high,
            tx_high,
            bili_high,
        ],
        [NOT_ASSESSABLE, HYS_LAW, TEMPLE, HYPERBILIRUBINAEMIA],
        default=NORMAL_RANGE,
    )


# One row per subject of ``liver_peaks`` (and of the load-time ``models.LiverSummary``).
PEAK_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "peak_alt_uln",
    "peak_alt_date",
    "peak_ast_uln",
    "peak_ast_date",
    "peak_bili_uln",
    "peak_bili_date",
    "pair_gap_days",
]


def liver_peaks(records: pd.DataFrame) -> pd.DataFrame:
    """One row per subject with an on-treatment ALT, AST or total bilirubin record
    (``PEAK_COLUMNS``): each peak value / ULN (NaN without a ULN or a value) and its date (the
    earliest at a tie), and ``pair_gap_days``: the fewest days from an ALT or AST >= 3 x ULN to a
    bilirubin >= 2 x ULN dated on or after it (NaN: no such pair), so that any time window of
    ``HYS_LAW_WINDOW_RULE`` is answered from this row."""
    liver = _liver_records(records)
    points = liver.groupby("usubjid", sort=True).agg(
        site_id=("site_id", "first"), arm=("arm", "first")
    )
    rated = liver[liver["ratio"].notna()]
    # The peak record of each subject and group: highest ratio, then earliest date.
    ordered = rated.assign(_neg=-rated["ratio"]).sort_values(
        ["_neg", "date"], kind="stable", na_position="last"
    )
    peaks = ordered.groupby(["usubjid", "group"], sort=False).head(1)
    ratio = peaks.pivot(index="usubjid", columns="group", values="ratio")
    dates = peaks.pivot(index="usubjid", columns="group", values="date")
    for name in _PEAKS:
        points[f"peak_{name}_uln"] = ratio.get(name, np.nan)
        points[f"peak_{name}_uln"] = points[f"peak_{name}_uln"].astype(float)
        points[f"peak_{name}_date"] = (
            dates[name] if name in dates else pd.Series(pd.NaT, index=points.index)
        )
        points[f"peak_{name}_date"] = pd.to_datetime(points[f"peak_{name}_date"])
    points["pair_gap_days"] = _pair_gaps(rated).reindex(points.index).astype(float)
    return points.reset_index()[PEAK_COLUMNS]


def edish_points(records: pd.DataFrame, window_days: int | None = None) -> pd.DataFrame:
    """One row per subject with an on-treatment ALT, AST or total bilirubin record: usubjid,
    site_id, arm, ``peak_alt_uln``, ``peak_ast_uln``, ``peak_transaminase_uln`` (the larger of
    the two known), ``peak_bili_uln`` (each the highest value / ULN; NaN without a ULN or a value),
    the date of each peak (``peak_alt_date``, ...; the earliest at a tie) and ``quadrant``
    (``HYS_LAW_RULE``; with ``window_days``, ``HYS_LAW_WINDOW_RULE``). Subjects whose
    transaminase or bilirubin peak is unknown are ``NOT_ASSESSABLE``."""
    return edish_from_peaks(liver_peaks(records), window_days)


def edish_from_peaks(peaks: pd.DataFrame, window_days: int | None = None) -> pd.DataFrame:
    """``edish_points`` from the subjects' peaks (``PEAK_COLUMNS``): computed from the records
    (``liver_peaks``) or read from the load-time summary."""
    points = peaks.reindex(columns=PEAK_COLUMNS).copy()
    points["arm"] = points["arm"].astype(object).where(points["arm"].notna(), NO_ARM)
    for name in _PEAKS:
        points[f"peak_{name}_uln"] = pd.to_numeric(points[f"peak_{name}_uln"]).astype(float)
        points[f"peak_{name}_date"] = pd.to_datetime(points[f"peak_{name}_date"])
    points["peak_transaminase_uln"] = points[["peak_alt_uln", "peak_ast_uln"]].max(axis=1)
    quadrant = pd.Series(
        _quadrant(points["peak_transaminase_uln"], points["peak_bili_uln"]),
        index=points.index,
        dtype=object,
    )
    if window_days is not None:
        gap = pd.to_numeric(points["pair_gap_days"]).astype(float)
        paired = gap.le(window_days).to_numpy()  # NaN (no pair) is not within any window
        quadrant[(quadrant == HYS_LAW) & ~paired] = OUTSIDE_WINDOW
    points["quadrant"] = quadrant
    columns = ["usubjid", "site_id", "arm", "peak_alt_uln", "peak_ast_uln"]
    columns += ["peak_transaminase_uln", "peak_bili_uln", "peak_alt_date", "peak_ast_date"]
    columns += ["peak_bili_date", "quadrant"]
    return points.sort_values("usubjid", kind="stable", ignore_index=True)[columns]


def _pair_gaps(rated: pd.DataFrame) -> pd.Series:
    """Per subject (index), the fewest days from an ALT or AST >= 3 x ULN to a bilirubin >= 2 x
    ULN dated 0 or more days after it; subjects without such a pair are left out (only the
    elevated records are paired, so the merge stays small)."""
    dated = rated[rated["date"].notna()]
    tx = dated[dated["group"].isin(["alt", "ast"]) & (dated["ratio"] >= TRANSAMINASE_LIMIT)]
    bili = dated[dated["group"].eq("bili") & (dated["ratio"] >= BILIRUBIN_LIMIT)]
    if tx.empty or bili.empty:
        return pd.Series(dtype=float)
    pairs = tx[["usubjid", "date"]].merge(
        bili[["usubjid", "date"]], on="usubjid", suffixes=("_tx", "_bili")
    )
    gap = (pairs["date_bili"].dt.normalize() - pairs["date_tx"].dt.normalize()).dt.days
    after = pairs.assign(gap=gap)[gap >= 0]
    gaps: pd.Series = after.groupby("usubjid")["gap"].min().astype(float)
    return gaps


def hys_law_candidates(points: pd.DataFrame) -> list[str]:
    """The subject codes in the Potential Hy's law quadrant, sorted."""
    return sorted(points.loc[points["quadrant"] == HYS_LAW, "usubjid"].astype(str))


# -- values over time ------------------------------------------------------------------------------

VALUE_COLUMNS = [
    "usubjid",
    "site_id",
    "arm",
    "measurement",
    "visit",
    "visit_number",
    "date",
    "study_day",
    "value",
    "low",
    "high",
    "range_class",
    "is_baseline",
]


def values_over_time(records: pd.DataFrame, measurement: str) -> pd.DataFrame:
    """The values of one measurement (a label of ``measurements``), for box plots by visit and
    arm: ``VALUE_COLUMNS``, records with a value, ordered by visit number, arm, subject and date."""
    chosen = with_measurement(records)
    chosen = chosen[(chosen["measurement"] == measurement) & chosen["value"].notna()]
    chosen = chosen.assign(range_class=range_class(chosen))
    ordered = chosen.sort_values(
        ["visit_number", "arm", "usubjid", "date"], kind="stable", na_position="last"
    )
    return ordered[VALUE_COLUMNS].reset_index(drop=True)


# One box of the values by visit: the visit (and its number), the arm, the values' count and
# their lowest, quartiles (linear interpolation, as pandas and Vega compute them) and highest.
BOX_COLUMNS = ["visit", "visit_number", "arm", "n", "lowest", "q1", "median", "q3", "highest"]


def scheduled_values(values: pd.DataFrame) -> pd.DataFrame:
    """The values of scheduled visits: VISITNUM a whole number, or no VISITNUM at all (an
    unscheduled visit is numbered between two scheduled ones, e.g. 4.1)."""
    number = values["visit_number"]
    return values[number.isna() | (number % 1 == 0)]


def box_stats(values: pd.DataFrame) -> pd.DataFrame:
    """A box per visit and arm of ``values`` (``values_over_time``'s rows): ``BOX_COLUMNS``, in
    visit number then arm order. Counted here, so a chart of a couple of hundred thousand values
    sends the browser a few dozen boxes."""
    known = values[values["value"].notna() & values["visit"].notna()]
    if known.empty:
        return pd.DataFrame(columns=BOX_COLUMNS)
    groups = known.assign(arm=known["arm"].astype(str), visit=known["visit"].astype(str))
    grouped = groups.groupby(["visit", "arm"], sort=False)["value"]
    boxes = grouped.agg(
        n="size",
        lowest="min",
        q1=lambda v: v.quantile(0.25),
        median="median",
        q3=lambda v: v.quantile(0.75),
        highest="max",
    ).reset_index()
    numbers = groups.groupby("visit")["visit_number"].min()
    boxes["visit_number"] = boxes["visit"].map(numbers).astype(float)
    boxes = boxes.sort_values(["visit_number", "arm"], kind="stable", na_position="last")
    return boxes[BOX_COLUMNS].reset_index(drop=True)


def visit_order(values: pd.DataFrame) -> list[str]:
    """The visits of ``values`` by their (lowest) visit number; unnumbered visits last."""
    numbers = values.groupby("visit", dropna=True)["visit_number"].min()
    return [str(v) for v in numbers.sort_values(kind="stable", na_position="last").index]


def subject_series(records: pd.DataFrame, measurement: str, usubjid: str) -> pd.DataFrame:
    """One subject's values of one measurement over time (``VALUE_COLUMNS``, by date)."""
    values = values_over_time(records, measurement)
    mine = values[values["usubjid"] == usubjid]
    return mine.sort_values(["date", "study_day"], kind="stable").reset_index(drop=True)


# -- the load-time summary -------------------------------------------------------------------------


@dataclass(frozen=True)
class SubjectSummaries:
    """What the Labs page counts, decided per subject (``subject_summaries``)."""

    measurements: pd.DataFrame  # per usubjid and measurement: records, with_range, the range
    # shift's baseline / worst / values / date (None where not counted) and the post_* flags
    grades: pd.DataFrame  # per usubjid, measurement and term: the grade shift's row
    liver: pd.DataFrame  # ``liver_peaks`` without site and arm


def subject_summaries(records: pd.DataFrame, grades: pd.DataFrame) -> SubjectSummaries:
    """Every subject's rows of the Labs page's tables, from ``records`` (some subjects' records
    of a domain, with a ``measurement`` column naming each measurement) and their CTCAE
    ``grades``: the same functions as the tables computed from the records, so the load-time
    counts (``dashboard.precomputed``) cannot count otherwise. A subject's rows depend on that
    subject's records alone, so the records can be summarised a batch of subjects at a time."""
    has_range = records["low"].notna() | records["high"].notna()
    counts = (
        records.assign(_range=has_range)
        .groupby(["usubjid", "measurement"], dropna=False)
        .agg(records=("usubjid", "size"), with_range=("_range", "sum"))
    )
    marked = baseline_and_post(with_vital_sign_limits(records))
    shift = _range_subjects(marked).set_index(["usubjid", "measurement"])
    shift = shift.drop(columns=["site_id", "arm"]).add_prefix("range_")
    flags = _incidence_per_subject(_post_flags(marked, grades))
    flags = flags.drop(columns=["arm"]).groupby(["usubjid", "measurement"]).any()
    flags = flags.add_prefix("post_").assign(post_value=True)
    table = counts.join(shift, how="left").join(flags, how="left")
    for name in ("post_value", "post_low", "post_high", "post_grade3", "post_gradable"):
        table[name] = table[name].fillna(False).astype(bool)
    graded = []
    for term in sorted(grades["term"].dropna().unique()):
        of_term = grades.loc[grades["term"] == term, "record"]
        graded_measurements = marked.loc[marked.index.isin(of_term), "measurement"].unique()
        chosen = marked[marked["measurement"].isin(graded_measurements)]
        rows = _grade_subjects(chosen, grades, term).assign(term=term)
        graded.append(rows.drop(columns=["site_id", "arm"]))
    grade_rows = (
        pd.concat(graded, ignore_index=True)
        if graded
        else pd.DataFrame(columns=["usubjid", "measurement", "term", *SHIFT_SUBJECT_COLUMNS[3:]])
    )
    liver = liver_peaks(marked).drop(columns=["site_id", "arm"])
    return SubjectSummaries(table.reset_index(), grade_rows, liver)
