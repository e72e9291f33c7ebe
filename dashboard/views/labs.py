"""The Labs page's view (issue #21): for one domain (LB or VS) and one measurement, the shift of
the range class and of the CTCAE grade from baseline to the worst post-baseline value by arm, the
abnormal values by arm for every measurement, the eDISH plot's points with the potential Hy's law
cases, and the values over time. The page, the pack's labs section and ``summary --json`` read
these, so a figure is composed once.

The records are the safety population's, by actual arm (``queries.labs``); a blinded viewer gets
them pooled (``views.reader``), so every table here has one "arm" for them.
"""

from dataclasses import dataclass, field

import pandas as pd
from sqlmodel import Session

from dashboard.metrics import labs
from dashboard.metrics.lab_grades import grade_records
from dashboard.queries import labs as lab_queries
from dashboard.views.adverse_events import _blinding_note
from dashboard.views.common import Metric, StudyFrame, study_frame
from dashboard.views.context import ViewContext
from dashboard.views.reader import Reader

# The measurement the page opens on: the first of these the study has (a liver test first: the
# page's eDISH plot is about the liver), else the first measurement.
DEFAULT_TESTS = {"LB": ("ALT", "AST", "BILI", "CREAT"), "VS": ("SYSBP", "DIABP")}
LIVER_TESTS = (*labs.ALT_CODES, *labs.AST_CODES, *labs.BILI_CODES)
DOMAIN_NAMES = {"LB": "Laboratory tests", "VS": "Vital signs"}
# The shift tables the pack prints: the liver tests and creatinine.
PACK_TESTS = ("ALT", "AST", "BILI", "CREAT")


@dataclass(frozen=True)
class LabsOptions:
    domain: str = "LB"
    measurement: str | None = None  # a label of ``labs.measurements``; None: the default
    term: str | None = None  # the CTCAE term of the grade shift; None: the measurement's first
    window_days: int | None = None  # Hy's law with bilirubin within this many days (None: any)


@dataclass(frozen=True)
class LabsView:
    frame: StudyFrame
    options: LabsOptions  # resolved: the measurement and term shown
    domains: tuple[str, ...]  # the lab domains the study has records of (in scope)
    measurements: pd.DataFrame  # ``labs.measurements`` of the domain
    range_shift: labs.ShiftTable | None
    terms: tuple[str, ...]  # the CTCAE terms the chosen measurement is graded by
    grade_shift: labs.ShiftTable | None
    incidence: pd.DataFrame  # ``labs.abnormal_incidence`` of the domain
    edish: pd.DataFrame  # ``labs.edish_points`` (LB only; empty for VS)
    hys_law: tuple[str, ...]  # subject codes in the potential Hy's law quadrant
    boxes: pd.DataFrame  # ``labs.box_stats`` of the chosen measurement's scheduled visits
    unscheduled: int  # its values at unscheduled visits, left out of the boxes
    blinding_note: str | None
    metrics: tuple[Metric, ...] = ()  # the page's headline
    rules: tuple[str, ...] = field(default=())  # the rules the figures follow, as the page says
    # The study has findings and no load-time summary (stored before it existed): its figures
    # wait for its next import.
    summary_missing: bool = False

    @property
    def empty(self) -> bool:
        return self.measurements.empty


def _default_measurement(measurements: pd.DataFrame, domain: str) -> str | None:
    if measurements.empty:
        return None
    for code in DEFAULT_TESTS.get(domain, ()):
        found = measurements[measurements["test_code"] == code]
        if not found.empty:
            # Supine before standing: the resting measurement is the one read first.
            supine = found[found["label"].str.contains("SUPINE", regex=False)]
            return str((supine if not supine.empty else found)["label"].iloc[0])
    return str(measurements["label"].iloc[0])


def graded_records(records: pd.DataFrame) -> pd.DataFrame:
    """CTCAE grades of the records (long: record, term, direction, grade, source); none for vital
    signs, which CTCAE's laboratory terms do not cover."""
    return grade_records(records[records["domain"] == "LB"])


def lab_measurements(read: Reader, domain: str, counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The measurements of ``domain`` in the viewer's scope, labelled (``labs.measurements``'s
    columns, with category and records with a range), from the load's counts (``counts``:
    ``queries.labs.lab_counts`` where already read)."""
    if counts is None:
        counts = read(lab_queries.lab_counts)
    mine = counts[counts["domain"] == domain]
    keys = labs.MEASUREMENT_KEY
    found = mine.groupby(keys, dropna=False, sort=True).agg(
        test=("test", "max"),
        category=("category", "max"),
        records=("records", "sum"),
        subjects=("subjects", "sum"),
        with_range=("with_range", "sum"),
    )
    found = found.reset_index()
    return labs.labelled_measurements(found.assign(measurement_id=range(len(found))))


def measurement_key(measurements: pd.DataFrame, label: str) -> lab_queries.MeasurementKey:
    """The key of the measurement ``label`` (a label of ``measurements``), as the summary
    queries take it."""
    row = measurements.loc[measurements["label"] == label].iloc[0]
    return tuple(None if pd.isna(row[k]) else str(row[k]) for k in labs.MEASUREMENT_KEY)


def measurement_records(read: Reader, measurements: pd.DataFrame, label: str) -> pd.DataFrame:
    """The records of one measurement (``queries.labs.lab_records``, labelled ``label``, vital
    signs with their reference limits)."""
    key = measurement_key(measurements, label)
    records = read(lab_queries.lab_records, domain=str(key[0]), key=key, ordered=False)
    chosen = records.assign(measurement=label)
    return labs.with_vital_sign_limits(chosen)


def measurement_boxes(
    read: Reader, measurements: pd.DataFrame, label: str
) -> tuple[pd.DataFrame, int]:
    """The values-by-visit boxes of the measurement ``label`` (``labs.box_stats``) and its values
    at unscheduled visits, left out of them. Every site's are the load's (``stored_boxes``,
    pooled for a viewer who sees no arms); a site scope's are counted from its values, read with
    only the columns the boxes need."""
    key = measurement_key(measurements, label)
    if read.ctx.scope is None:
        pooled = not read.ctx.shows_arms
        stored = read(lab_queries.stored_boxes, key=key, pooled=pooled)
        if not stored.empty:
            unscheduled = int(stored["unscheduled"].iloc[0])  # the measurement's, every arm
            return stored[labs.BOX_COLUMNS].reset_index(drop=True), unscheduled
    values = read(lab_queries.lab_values, key=key)
    scheduled = labs.scheduled_values(values)
    return labs.box_stats(scheduled), len(values) - len(scheduled)


@dataclass(frozen=True)
class MeasurementShifts:
    """The shift tables of one measurement: range, and CTCAE grade of ``term`` (one of
    ``terms``, the terms it is graded by)."""

    range_shift: labs.ShiftTable
    terms: tuple[str, ...]
    term: str | None
    grade_shift: labs.ShiftTable | None


def measurement_shifts(
    read: Reader, measurements: pd.DataFrame, label: str, term: str | None = None
) -> MeasurementShifts:
    """The range and grade shift tables of the measurement ``label``, counted in SQL from what
    the load decided per subject (``queries.labs.shift_counts``; a cell's subjects are read on a
    click, ``shift_subjects``): ``term`` where it grades the measurement, else the first term in
    alphabetical order."""
    key = measurement_key(measurements, label)
    range_shift = labs.range_shift_table(
        label, counts=read(lab_queries.shift_counts, key=key, term=None)
    )
    terms = tuple(read(lab_queries.graded_terms, key=key))
    chosen = term if term in terms else (terms[0] if terms else None)
    grade_shift = (
        labs.grade_shift_table(
            label, chosen, counts=read(lab_queries.shift_counts, key=key, term=chosen)
        )
        if chosen is not None
        else None
    )
    return MeasurementShifts(range_shift, terms, chosen, grade_shift)


def shift_subjects(
    session: Session,
    ctx: ViewContext,
    *,
    domain: str,
    measurement: str,
    term: str | None,
    arm: str | None,
    baseline: str | None,
    worst: str | None,
) -> pd.DataFrame:
    """The subjects of one cell of a shift table (``term`` None: the range shift; None or
    "Total" for arm, baseline or worst: any): ``labs.SHIFT_SUBJECT_COLUMNS``, as
    ``ShiftTable.subjects_of`` gives them from subjects computed from the records."""
    read = Reader(session, ctx)
    measurements = lab_measurements(read, domain)
    if measurement not in set(measurements["label"]):
        return pd.DataFrame(columns=labs.SHIFT_SUBJECT_COLUMNS)
    found = read(
        lab_queries.shift_subjects,
        key=measurement_key(measurements, measurement),
        term=term,
        arm=arm,
        baseline=None if baseline == labs.TOTAL else baseline,
        worst=None if worst == labs.TOTAL else worst,
    )
    rows = labs.range_shift_table(measurement, found).subjects
    return rows.sort_values("usubjid", kind="stable", ignore_index=True)


def abnormal_incidence(counts: pd.DataFrame, measurements: pd.DataFrame) -> pd.DataFrame:
    """``labs.abnormal_incidence`` from the load's counts (``queries.labs.lab_counts``) of the
    ``measurements``, labelled as they are; arms without a post-baseline value are left out."""
    counts = counts[counts["N"] > 0].copy()
    labels = {
        tuple(None if pd.isna(v) else str(v) for v in row): label
        for row, label in zip(
            measurements[labs.MEASUREMENT_KEY].itertuples(index=False, name=None),
            measurements["label"],
            strict=True,
        )
    }
    counts["measurement"] = [
        labels.get(tuple(None if pd.isna(v) else str(v) for v in row))
        for row in counts[labs.MEASUREMENT_KEY].itertuples(index=False, name=None)
    ]
    return labs.incidence_from_counts(counts[counts["measurement"].notna()])


def edish(read: Reader, window_days: int | None = None) -> pd.DataFrame:
    """``labs.edish_points`` of the viewer's scope, from the peaks the load found."""
    return labs.edish_from_peaks(read(lab_queries.liver_peaks), window_days)


def build_labs(session: Session, ctx: ViewContext, options: LabsOptions | None = None) -> LabsView:
    read = Reader(session, ctx)
    frame = study_frame(read)
    chosen = options or LabsOptions()
    found = read(lab_queries.lab_counts)
    domains = tuple(d for d in lab_queries.LAB_DOMAINS if d in set(found["domain"]))
    domain = chosen.domain if chosen.domain in domains else (domains[0] if domains else "LB")
    measurements = lab_measurements(read, domain, found)
    measurement = chosen.measurement
    if measurement not in set(measurements["label"]):
        measurement = _default_measurement(measurements, domain)
    range_shift = grade_shift = None
    terms: tuple[str, ...] = ()
    term = None
    boxes, unscheduled = pd.DataFrame(columns=labs.BOX_COLUMNS), 0
    if measurement is not None:
        shifts = measurement_shifts(read, measurements, measurement, chosen.term)
        range_shift, terms, term = shifts.range_shift, shifts.terms, shifts.term
        grade_shift = shifts.grade_shift
        boxes, unscheduled = measurement_boxes(read, measurements, measurement)
    points = (
        edish(read, chosen.window_days)
        if domain == "LB"
        else pd.DataFrame(columns=["usubjid", "quadrant"])
    )
    rules = [labs.BASELINE_RULE, labs.POST_BASELINE_RULE, labs.WORST_RULE]
    if domain == "VS":
        rules.append(labs.VITAL_SIGN_RULE)
    if domain == "LB":
        rules.append(
            labs.HYS_LAW_WINDOW_RULE.format(days=chosen.window_days)
            if chosen.window_days is not None
            else labs.HYS_LAW_RULE
        )
    hys_law = tuple(labs.hys_law_candidates(points)) if domain == "LB" else ()
    subjects = read(lab_queries.lab_subject_count, domain=domain) if domains else 0
    metrics = [
        Metric(
            "Subjects with values",
            int(subjects),
            f"{DOMAIN_NAMES.get(domain, domain).lower()}, treated subjects",
        ),
        Metric(
            "Measurements", len(measurements), f"{int(measurements['records'].sum()):,} records"
        ),
    ]
    if domain == "LB":
        metrics.append(
            Metric(
                "Potential Hy's law cases",
                len(hys_law),
                "ALT or AST >= 3 x ULN and bilirubin >= 2 x ULN",
                help=rules[-1],
            )
        )
    return LabsView(
        frame=frame,
        options=LabsOptions(domain, measurement, term, chosen.window_days),
        domains=domains,
        measurements=measurements,
        range_shift=range_shift,
        terms=terms,
        grade_shift=grade_shift,
        incidence=abnormal_incidence(found, measurements),
        edish=points,
        hys_law=hys_law,
        boxes=boxes,
        unscheduled=unscheduled,
        blinding_note=_blinding_note(frame.study, shows_arms=ctx.shows_arms),
        metrics=tuple(metrics),
        rules=tuple(rules),
        summary_missing=read(lab_queries.summary_missing),
    )


ALL_ARMS = "All arms"
# The abnormal-values table's choices: the flag of ``labs.abnormal_incidence`` and its wording.
INCIDENCE_FLAGS = {"high": "High", "low": "Low", "grade3": "CTCAE grade 3 or more"}


def shift_display(table: labs.ShiftTable) -> pd.DataFrame:
    """A shift table as one frame for the screen and the pack: per arm (then every arm together
    where there are several) its rows of baseline categories and Total, columns Arm, Baseline,
    the worst post-baseline categories and Total, cells "n (x%)" of the arm's subjects."""
    arms: list[str | None] = [*table.arms]
    if len(arms) > 1:
        arms.append(None)
    parts = []
    for arm in arms:
        wide = table.wide(arm).reset_index()
        wide.columns = ["Baseline", *[str(c) for c in wide.columns[1:]]]
        wide.insert(0, "Arm", ALL_ARMS if arm is None else arm)
        parts.append(wide)
    if not parts:
        return pd.DataFrame(columns=["Arm", "Baseline"])
    return pd.concat(parts, ignore_index=True)


def incidence_display(incidence: pd.DataFrame, flag: str) -> pd.DataFrame:
    """The abnormal-values table for one ``flag`` (``INCIDENCE_FLAGS``): a row per measurement,
    a column per arm, cells "n/N (x%)" where N is the arm's subjects with a post-baseline value;
    "-" where the measurement cannot show the flag (no grade for a test CTCAE does not grade)."""
    if incidence.empty:
        return pd.DataFrame(columns=["Measurement"])
    counts = incidence[f"{flag}_n"]
    cells = [
        "-" if pd.isna(n) else f"{int(n)}/{int(whole)} ({100 * n / whole:.1f}%)" if whole else "0/0"
        for n, whole in zip(counts, incidence["N"], strict=True)
    ]
    shown = incidence.assign(cell=cells).pivot_table(
        index="measurement", columns="arm", values="cell", aggfunc="first", sort=False
    )
    shown = shown.reset_index().rename(columns={"measurement": "Measurement"})
    shown.columns.name = None
    return shown


def hys_law_candidates(
    session: Session, ctx: ViewContext, window_days: int | None = None
) -> list[str] | None:
    """The potential Hy's law cases (``labs.HYS_LAW_RULE``): the subject codes, sorted (the
    command line's ``summary --json``); None, not an empty list, for a study whose lab figures
    wait for its next import (``LabsView.summary_missing``)."""
    read = Reader(session, ctx)
    if read(lab_queries.summary_missing):
        return None
    return labs.hys_law_candidates(edish(read, window_days))


def incidence_subjects(
    session: Session,
    ctx: ViewContext,
    *,
    domain: str,
    measurement: str,
    arm: str | None,
    flag: str | None,
) -> pd.DataFrame:
    """The subjects behind one cell of the abnormal-values table (``labs.incidence_subjects``):
    the measurement's records alone are read."""
    read = Reader(session, ctx)
    measurements = lab_measurements(read, domain)
    if measurement not in set(measurements["label"]):
        return pd.DataFrame(
            columns=["usubjid", "site_id", "arm", "records", "lowest", "highest", "first_date"]
        )
    records = measurement_records(read, measurements, measurement)
    return labs.incidence_subjects(records, graded_records(records), measurement, arm, flag)
