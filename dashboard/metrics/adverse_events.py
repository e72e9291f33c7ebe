"""Adverse events: the classification rules of DESIGN.md ("Definitions") and the pure tables the
Adverse events page draws from the query layer's aggregates.

The rules are written once, here, as data: the query layer turns the same value lists into SQL
(``queries.adverse_events``), and the functions below apply them to single values, so a test can
compare the two.
"""

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from dashboard.results.dates import as_date, is_missing

# -- classification rules (DESIGN.md "Definitions", a contract) ------------------------------------

RELATED = "Related"
NOT_RELATED = "Not related"
UNKNOWN = "Unknown"
NO_AE = "No AE"
ALL_TERMS = "All terms in the class"  # the SOC's own row in its table of preferred terms

# AEREL as given, upper-cased and trimmed. Anything else (blank included) is "Unknown", shown as such.
RELATED_VALUES = (
    "Y",
    "RELATED",
    "DEFINITE",
    "PROBABLE",
    "PROBABLY RELATED",
    "POSSIBLE",
    "POSSIBLY RELATED",
)
NOT_RELATED_VALUES = ("N", "NOT RELATED", "NONE", "UNLIKELY", "UNLIKELY RELATED", "REMOTE")

# AESEV in the CDISC codelist (C66769), mildest first; AETOXGR as CTCAE grades 1-5.
SEVERITIES = ("MILD", "MODERATE", "SEVERE")
GRADES = ("1", "2", "3", "4", "5")
# "Severe / grade >= 3": AESEV SEVERE, or a CTCAE grade of 3 or more where AETOXGR is given.
SEVERE_SEVERITIES = ("SEVERE",)
SEVERE_GRADES = ("3", "4", "5")

DISCONTINUATION_ACTION = "DRUG WITHDRAWN"  # AEACN
DS_ADVERSE_EVENT = "ADVERSE EVENT"  # DSDECOD, used where AEACN is blank for every AE
FATAL_OUTCOME = "FATAL"  # AEOUT; a death is AESDTH = Y or AEOUT = FATAL

# The summary table's rows: key, label. The keys are what a click on a cell carries.
SUMMARY_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("any", "Any AE"),
    ("serious", "Serious AE"),
    ("related", "Related AE"),
    ("severe", "Severe or grade ≥ 3 AE"),
    ("discontinuation", "AE leading to discontinuation"),
    ("death", "AE with a fatal outcome (death)"),
)

# Per-subject views: each event gets a rank, a subject counts once at its highest rank (rank 0 is
# "Unknown": only where no event of the subject says). Source values upper-cased and trimmed.
WORST_DIMENSIONS: dict[str, str] = {
    "severity": "Maximum severity (AESEV)",
    "grade": "Maximum CTCAE grade (AETOXGR)",
    "seriousness": "Seriousness (AESER)",
    "relationship": "Relationship to treatment (AEREL)",
}
RANKED_VALUES: dict[str, dict[str, int]] = {
    "severity": {value: rank for rank, value in enumerate(SEVERITIES, start=1)},
    "grade": {value: int(value) for value in GRADES},
    "seriousness": {"N": 1, "Y": 2},
    "relationship": {
        **{value: 1 for value in NOT_RELATED_VALUES},
        **{value: 2 for value in RELATED_VALUES},
    },
}
LEVEL_LABELS: dict[str, dict[int, str]] = {
    "severity": {0: UNKNOWN, 1: "Mild", 2: "Moderate", 3: "Severe"},
    "grade": {0: UNKNOWN, **{int(g): f"Grade {g}" for g in GRADES}},
    "seriousness": {0: UNKNOWN, 1: "Not serious", 2: "Serious"},
    "relationship": {0: UNKNOWN, 1: NOT_RELATED, 2: RELATED},
}


def normalised(value: object) -> str:
    """A coded value as the rules compare it: trimmed, upper case, blank for None or NaN."""
    return value.strip().upper() if isinstance(value, str) else ""


def _text(value: object) -> str | None:
    """Text as given, None for a blank (pandas gives NaN for a missing string)."""
    return value if isinstance(value, str) and value.strip() else None


def classify_relationship(value: str | None) -> str:
    """AEREL as given -> Related / Not related / Unknown (DESIGN.md)."""
    code = normalised(value)
    if code in RELATED_VALUES:
        return RELATED
    if code in NOT_RELATED_VALUES:
        return NOT_RELATED
    return UNKNOWN


def is_severe(severity: str | None, grade: str | None) -> bool:
    """AESEV SEVERE, or AETOXGR 3 or more."""
    return normalised(severity) in SEVERE_SEVERITIES or normalised(grade) in SEVERE_GRADES


def study_day(day: dt.date | None, reference: dt.date | None) -> int | None:
    """The study day of ``day`` counted from ``reference`` (day 1). In the SDTM there is no day 0:
    the day before the reference is day -1."""
    if day is None or reference is None:
        return None
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def is_treatment_emergent(
    start_dtc: str | None,
    start_date: dt.date | None,
    first_dose_dtc: str | None,
    first_dose_date: dt.date | None,
) -> bool:
    """Onset on or after the first dose. A subject never dosed has no treatment-emergent AE. An
    unknown onset, or a partial one (``2013-04``) in the period of the first dose, cannot be shown
    to precede the dose, so it counts as treatment-emergent (the conservative reading)."""
    if first_dose_date is None:
        return False
    if start_date is None:
        return True
    if start_date >= first_dose_date:
        return True
    onset = (_text(start_dtc) or "").strip()
    return 0 < len(onset) < 10 and (_text(first_dose_dtc) or "").startswith(onset)


def seriousness_criteria(flags: dict[str, str | None]) -> str:
    """The criteria flagged Y, as a short list ("Death, Hospitalisation"); blank where none."""
    return ", ".join(name for name, value in flags.items() if normalised(value) == "Y")


# -- the denominators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmColumn:
    """One column group of the tables by arm: ``arm`` None is every arm together."""

    arm: str | None
    n: int
    label: str  # "Placebo (N=86)": the column's header


def arm_columns(population: pd.DataFrame) -> list[ArmColumn]:
    """The column groups of a table by arm: one per arm (``population``: arm, subjects), then the
    total; a single-arm study gets its arm alone (the total would repeat it)."""
    arms = [
        ArmColumn(str(arm), int(n), f"{arm} (N={int(n)})")
        for arm, n in zip(population["arm"], population["subjects"], strict=True)
    ]
    if len(arms) == 1:
        return arms
    total = int(population["subjects"].sum())
    return [*arms, ArmColumn(None, total, f"Total (N={total})")]


def n_percent(n: int, whole: int, events: int | None = None) -> str:
    """``"69 (80.2%)"``, with the events in brackets where given: ``"69 (80.2%) [237]"`` (the
    safety tables' "n (%) [E]"); the count alone where the whole is zero."""
    text = f"{n} ({100 * n / whole:.1f}%)" if whole else f"{n}"
    return text if events is None else f"{text} [{events}]"


Figures = dict[tuple[object, ...], int | None]


def _per_arm(frame: pd.DataFrame, keys: list[str], value: str, columns: list[ArmColumn]) -> Figures:
    """{(key..., arm or None): value}: the per-arm figures, plus totals summed over the arms (a
    subject belongs to one arm, so distinct subjects add up; an unknown figure stays unknown)."""
    out: Figures = {}
    # Column lists zipped, not records: a PT table has thousands of rows at scale.
    columns_of_key = [frame[k].tolist() for k in [*keys, "arm"]]
    for *parts, number in zip(*columns_of_key, frame[value].tolist(), strict=True):
        out[tuple(parts)] = None if pd.isna(number) else int(number)
    if any(c.arm is None for c in columns):
        totals: Figures = {}
        for key, number in out.items():
            total_key = (*key[:-1], None)
            if number is None or totals.get(total_key, 0) is None:
                totals[total_key] = None
            else:
                totals[total_key] = (totals.get(total_key) or 0) + number
        out.update(totals)
    return out


# -- the summary table ------------------------------------------------------------------------------


def summary_table(
    counts: pd.DataFrame, population: pd.DataFrame, *, discontinuation_from_ds: bool
) -> pd.DataFrame:
    """Subjects n (%) [events] per arm for each summary category (``SUMMARY_CATEGORIES`` order).

    ``counts``: arm, category, subjects, events; ``population``: arm, subjects (the denominators);
    ``discontinuation_from_ds``: discontinuation was read from DS, which counts subjects, not
    events (its cells then have no bracket).
    Columns: category (the key), Category (the label), then a column per ``arm_columns`` label.
    """
    columns = arm_columns(population)
    subjects = _per_arm(counts, ["category"], "subjects", columns)
    events = _per_arm(counts.fillna({"events": 0}), ["category"], "events", columns)
    records = []
    for key, label in SUMMARY_CATEGORIES:
        record: dict[str, object] = {"category": key, "Category": label}
        for column in columns:
            unknown = key == "discontinuation" and discontinuation_from_ds
            record[column.label] = n_percent(
                subjects.get((key, column.arm)) or 0,
                column.n,
                None if unknown else (events.get((key, column.arm)) or 0),
            )
        records.append(record)
    return pd.DataFrame.from_records(records)


# -- incidence by SOC and PT ------------------------------------------------------------------------


def incidence_table(
    by_pt: pd.DataFrame,
    by_soc: pd.DataFrame,
    population: pd.DataFrame,
    *,
    threshold: float = 0.0,
) -> pd.DataFrame:
    """The hierarchical incidence table: each SOC, then its preferred terms, most frequent first
    (by subjects over all arms, then events, then name).

    ``by_pt``: arm, soc, pt, subjects, events; ``by_soc``: arm, soc, subjects, events (distinct
    subjects per SOC, which are not the sum of its PTs); ``population``: arm, subjects.
    ``threshold`` (percent): a PT is kept where at least that share of some arm's subjects had it;
    a SOC is kept where one of its PTs is, and keeps its figures over all its PTs. Default 0: all.

    Columns: soc, pt (None on the SOC's own row), level ("SOC"/"PT"), then per arm column
    (``arm_columns``) ``n:<label>``, ``pct:<label>`` and ``events:<label>``, and ``max_pct`` (the
    highest share in any arm, what the threshold compares).
    """
    columns = arm_columns(population)
    pt_subjects = _per_arm(by_pt, ["soc", "pt"], "subjects", columns)
    pt_events = _per_arm(by_pt, ["soc", "pt"], "events", columns)
    soc_subjects = _per_arm(by_soc, ["soc"], "subjects", columns)
    soc_events = _per_arm(by_soc, ["soc"], "events", columns)

    def row(level: str, soc: str, pt: str | None, n: Figures, e: Figures) -> dict[str, object]:
        key = (soc,) if pt is None else (soc, pt)
        record: dict[str, object] = {"soc": soc, "pt": pt, "level": level}
        shares = []
        for column in columns:
            count = n.get((*key, column.arm)) or 0
            share = 100 * count / column.n if column.n else 0.0
            record[f"n:{column.label}"] = count
            record[f"pct:{column.label}"] = share
            record[f"events:{column.label}"] = e.get((*key, column.arm)) or 0
            if column.arm is not None:
                shares.append(share)
        record["max_pct"] = max(shares, default=0.0)
        return record

    total = columns[-1]
    records: list[dict[str, object]] = []
    socs = sorted(
        {str(s) for s in by_soc["soc"]},
        key=lambda s: (
            -(soc_subjects.get((s, total.arm)) or 0),
            -(soc_events.get((s, total.arm)) or 0),
            s,
        ),
    )
    pts_of: dict[str, list[str]] = {}
    for soc, pt in zip(by_pt["soc"], by_pt["pt"], strict=True):
        pts_of.setdefault(str(soc), [])
        if str(pt) not in pts_of[str(soc)]:
            pts_of[str(soc)].append(str(pt))
    for soc in socs:
        pt_rows = [row("PT", soc, pt, pt_subjects, pt_events) for pt in pts_of.get(soc, [])]
        kept = [r for r in pt_rows if float(r["max_pct"]) >= threshold - 1e-9]  # type: ignore[arg-type]
        if not kept:
            continue
        kept.sort(
            key=lambda r: (-int(r[f"n:{total.label}"]), -int(r[f"events:{total.label}"]), r["pt"])  # type: ignore[call-overload]
        )
        records.append(row("SOC", soc, None, soc_subjects, soc_events))
        records.extend(kept)
    result = pd.DataFrame.from_records(records)
    if result.empty:
        base = ["soc", "pt", "level"]
        for column in columns:
            base += [f"n:{column.label}", f"pct:{column.label}", f"events:{column.label}"]
        return pd.DataFrame(columns=[*base, "max_pct"])
    return result


def display_incidence(frame: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """``incidence_table`` rows for the screen: Term, then per arm column ``<label>`` as
    n (%) [events]."""
    columns = arm_columns(population)
    out = pd.DataFrame(
        {
            "Term": [
                ALL_TERMS if level == "SOC" else str(pt)
                for pt, level in zip(frame["pt"], frame["level"], strict=True)
            ]
        }
    )
    for column in columns:
        out[column.label] = [
            n_percent(int(n), column.n, int(e))
            for n, e in zip(
                frame[f"n:{column.label}"], frame[f"events:{column.label}"], strict=True
            )
        ]
    return out


def soc_label(rows: pd.DataFrame, population: pd.DataFrame) -> str:
    """The heading of one SOC's rows of ``incidence_table``: its name, subjects n (%) and events
    over all arms."""
    total = arm_columns(population)[-1]
    head = rows.iloc[0]
    subjects = n_percent(int(head[f"n:{total.label}"]), total.n)
    events = int(head[f"events:{total.label}"])
    return f"**{head['soc']}** · {subjects} subjects, {events} event{'s' if events != 1 else ''}"


def soc_incidence(frame: pd.DataFrame, population: pd.DataFrame) -> pd.DataFrame:
    """The SOC rows of ``incidence_table`` in long form for a chart: soc, arm, subjects, events,
    share (of the arm's subjects, 0-1), rank (the SOC's place in the table)."""
    columns = [c for c in arm_columns(population) if c.arm is not None]
    socs = frame[frame["level"] == "SOC"].reset_index(drop=True)
    records = []
    for rank, row in socs.iterrows():
        for column in columns:
            records.append(
                {
                    "soc": row["soc"],
                    "arm": column.arm,
                    "subjects": int(row[f"n:{column.label}"]),
                    "events": int(row[f"events:{column.label}"]),
                    "share": float(row[f"pct:{column.label}"]) / 100,
                    "rank": int(str(rank)),
                }
            )
    return pd.DataFrame.from_records(
        records, columns=["soc", "arm", "subjects", "events", "share", "rank"]
    )


# -- per-subject worst level ------------------------------------------------------------------------


def worst_level_table(
    counts: pd.DataFrame, population: pd.DataFrame, dimension: str
) -> pd.DataFrame:
    """Subjects by their highest level in one dimension, per arm, with the subjects without an AE,
    so each arm adds up to its N.

    ``counts``: arm, rank, subjects (from ``queries.adverse_events.subjects_by_worst_level``).
    Columns: arm (None for the total), arm_label, level, rank (-1 for "No AE"), subjects, share
    (0-1 of the arm's N), order (the level's place in the legend, "No AE" first).
    """
    labels = LEVEL_LABELS[dimension]
    by_key = {
        (str(a), int(r)): int(n)
        for a, r, n in zip(counts["arm"], counts["rank"], counts["subjects"], strict=True)
    }
    records = []
    for column in arm_columns(population):
        per_rank = {
            rank: (
                sum(n for (a, r), n in by_key.items() if r == rank)
                if column.arm is None
                else by_key.get((column.arm, rank), 0)
            )
            for rank in labels
        }
        with_ae = sum(per_rank.values())
        levels = [(-1, NO_AE, column.n - with_ae), *((r, labels[r], per_rank[r]) for r in labels)]
        for order, (rank, level, n) in enumerate(levels):
            if rank == 0 and n == 0:
                continue  # no "Unknown" segment where every event says
            records.append(
                {
                    "arm": column.arm,
                    "arm_label": column.label,
                    "level": level,
                    "rank": rank,
                    "subjects": n,
                    "share": n / column.n if column.n else 0.0,
                    "order": order,
                }
            )
    return pd.DataFrame.from_records(
        records, columns=["arm", "arm_label", "level", "rank", "subjects", "share", "order"]
    )


def display_worst_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """``worst_level_table`` as a table: a row per level (highest first, "No AE" last), a column
    per arm with n (%)."""
    levels = (
        frame[["level", "rank"]].drop_duplicates().sort_values("rank", ascending=False)["level"]
    )
    out = pd.DataFrame({"Level": levels.tolist()})
    for label, group in frame.groupby("arm_label", sort=False):
        cells = dict(zip(group["level"], group["subjects"], strict=True))
        whole = int(group["subjects"].sum())
        out[str(label)] = [n_percent(int(cells.get(level, 0)), whole) for level in out["Level"]]
    return out


# The SDTM variable behind each per-subject view.
SOURCE_VARIABLES = {
    "severity": "AESEV",
    "grade": "AETOXGR",
    "seriousness": "AESER",
    "relationship": "AEREL",
}
BLANK_VALUE = "(blank)"


def source_values(values: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The values as given of ``dimension``'s variable (AESEV, AETOXGR, AESER or AEREL), each with
    the level it counts as: Group, <variable>, Events, Subjects (over all arms), and value (the
    value as the query gives it, '' for a blank: what a click on the row lists). Highest level
    first ("Unknown" last), then most events.

    ``values``: arm, value, events, subjects (``queries.adverse_events.events_by_source_value``).
    Subjects per value add up over arms (a subject is in one arm) but not over values.
    """
    variable = SOURCE_VARIABLES[dimension]
    columns = ["Group", variable, "Events", "Subjects", "value"]
    if values.empty:
        return pd.DataFrame(columns=columns)
    totals = values.groupby("value", dropna=False)[["events", "subjects"]].sum().reset_index()
    totals["value"] = totals["value"].fillna("")
    ranks = RANKED_VALUES[dimension]
    totals["rank"] = totals["value"].map(lambda v: ranks.get(normalised(v), 0))
    totals["Group"] = totals["rank"].map(LEVEL_LABELS[dimension])
    totals[variable] = totals["value"].map(lambda v: v if v else BLANK_VALUE)
    totals = totals.sort_values(["rank", "events", "value"], ascending=[False, False, True])
    return totals.rename(columns={"events": "Events", "subjects": "Subjects"})[columns].reset_index(
        drop=True
    )


def relationship_values(values: pd.DataFrame) -> pd.DataFrame:
    """AEREL as given, with the group it falls in: Group, AEREL, Events, Subjects (over all arms)
    (``source_values`` of the relationship, without its value column)."""
    return source_values(values, "relationship").drop(columns="value")


# -- listings ---------------------------------------------------------------------------------------

# The seriousness criteria (the AES* flags), in the order the listing names them. AESCAN and AESOD
# were dropped from the AE domain in SDTMIG 3.4 but are in older packages (the CDISC pilot, SDTM-MSG).
SERIOUSNESS_FLAGS = {
    "serious_death": "Death",  # AESDTH
    "serious_life_threatening": "Life-threatening",  # AESLIFE
    "serious_hospitalisation": "Hospitalisation",  # AESHOSP
    "serious_disability": "Disability",  # AESDISAB
    "serious_congenital": "Congenital anomaly",  # AESCONG
    "serious_cancer": "Cancer",  # AESCAN
    "serious_overdose": "Overdose",  # AESOD
    "serious_other": "Other medically important",  # AESMIE
}


def derive_listing(events: pd.DataFrame, *, compare_cut_id: int | None) -> pd.DataFrame:
    """Adds to an AE listing (``queries.adverse_events.adverse_event_listing``) the columns the
    rules give: study_day (counted from the subject's first dose, day 1, no day 0: the timeline's
    axis; AESTDY as given stays in start_day, counted from RFSTDTC),
    related (the AEREL group), preferred_term (AEDECOD, else AETERM), treatment_emergent,
    criteria (the seriousness criteria flagged Y), new (first held by a cut after
    ``compare_cut_id``; False where there is nothing to compare) and changed (held by that cut
    and altered by a later one)."""
    frame = events.copy()
    if frame.empty:
        for column in (
            "study_day",
            "related",
            "preferred_term",
            "treatment_emergent",
            "criteria",
            "new",
            "changed",
        ):
            frame[column] = pd.Series(dtype=object)
        return frame
    frame["study_day"] = pd.array(
        [
            study_day(as_date(s), as_date(d))
            for s, d in zip(frame["start_date"], frame["first_dose_date"], strict=True)
        ],
        dtype="Int64",
    )
    if "start_day" in frame:
        frame["start_day"] = pd.array(
            [None if is_missing(v) else int(v) for v in frame["start_day"]], dtype="Int64"
        )
    frame["related"] = frame["relationship"].map(classify_relationship)
    frame["preferred_term"] = [
        _text(d) or t for d, t in zip(frame["decoded_term"], frame["term"], strict=True)
    ]
    frame["treatment_emergent"] = [
        is_treatment_emergent(sd, as_date(s), fd, as_date(f))
        for sd, s, fd, f in zip(
            frame["start_dtc"],
            frame["start_date"],
            frame["first_dose_dtc"],
            frame["first_dose_date"],
            strict=True,
        )
    ]
    flags = [column for column in SERIOUSNESS_FLAGS if column in frame]
    frame["criteria"] = [
        seriousness_criteria(
            {label: row.get(column) for column, label in SERIOUSNESS_FLAGS.items()}
        )
        for row in frame[flags].to_dict("records")  # the flag columns only: far fewer to copy
    ]
    frame["new"] = (
        frame["first_cut_id"].fillna(0).astype(int) > compare_cut_id
        if compare_cut_id is not None
        else False
    )
    frame["changed"] = (
        ~frame["new"] & (frame["updated_cut_id"].fillna(0).astype(int) > compare_cut_id)
        if compare_cut_id is not None and "updated_cut_id" in frame
        else False
    )
    return frame


# The listing's columns as shown and downloaded, in order, with SDTM names where there is one.
LISTING_LABELS = {
    "new": "New",
    "changed": "Changed",
    "usubjid": "USUBJID",
    "site_id": "SITEID",
    "arm": "Arm",
    "preferred_term": "Term",
    "body_system": "AEBODSYS",
    "start_dtc": "AESTDTC",
    "study_day": "Study day",  # from the first dose (day 1), as the timeline counts
    "start_day": "AESTDY",  # as given: from RFSTDTC
    "end_dtc": "AEENDTC",
    "outcome": "AEOUT",
    "severity": "AESEV",
    "grade": "AETOXGR",
    "serious": "AESER",
    "criteria": "Seriousness criteria",
    "related": "Related",
    "relationship": "AEREL",
    "action": "AEACN",
    "treatment_emergent": "Treatment-emergent",
    "term": "AETERM",
    "decoded_term": "AEDECOD",
    "seq": "AESEQ",
}
# Left out of a listing where no row has a value (e.g. AETOXGR in a study graded by AESEV only).
OPTIONAL_LISTING_COLUMNS = (
    "site_id",
    "grade",
    "decoded_term",
    "body_system",
    "action",
    "seq",
    "start_day",
)


def listing_table(derived: pd.DataFrame, *, show_new: bool) -> pd.DataFrame:
    """A derived listing (``derive_listing``) as shown and downloaded: ``LISTING_LABELS`` columns
    in that order and named so; optional columns that are empty throughout are left out, and the
    New and Changed columns where there is no earlier cut to compare with (Changed also where no
    event changed: most cuts only add). A listing pooled for a blinded user has no arm column,
    and gets none."""
    keep = [
        c
        for c in LISTING_LABELS
        if c in derived.columns
        and (c not in ("new", "changed") or show_new)
        and not (c == "changed" and not derived[c].any())
        and not (
            c in OPTIONAL_LISTING_COLUMNS
            and derived[c].map(lambda v: is_missing(v) or v == "").all()
        )
    ]
    return derived[keep].rename(columns=LISTING_LABELS).reset_index(drop=True)


def _observed_until(start: dt.date, observed: object, cutoff: dt.date | None) -> dt.date:
    """Where an ongoing AE's bar ends: the subject's last disposition record, else the cut-off."""
    until = as_date(observed) or cutoff
    return until if until is not None and until >= start else start


def day_position(day: int) -> int:
    """Where a study day sits on the timeline's axis: days since day 1 (day 1 -> 0, day 2 -> 1,
    day -1 -> -1). Study days skip 0, positions do not, so a bar from one day's position to the
    position after another's is as long as the days it covers, and no day 0 appears between day
    -1 and day 1. The axis labels turn positions back into study days (``position_label``)."""
    return day - 1 if day > 0 else day


def position_label(position: int) -> int:
    """The study day at an axis position (the inverse of ``day_position``)."""
    return position + 1 if position >= 0 else position


# The timeline starts at most this many days before the first dose: an onset years earlier (a
# year-only AESTDTC such as "2003" is placed on 1 January) would squeeze every other bar.
EARLIEST_TIMELINE_DAY = -90


def timeline_frame(
    events: pd.DataFrame, *, cutoff: dt.date | None, earliest_day: int = EARLIEST_TIMELINE_DAY
) -> tuple[pd.DataFrame, int]:
    """One bar per AE on the study-day axis of its subject (day 1 = first dose, no day 0), and the
    number of events left out (no onset date, or a subject without a first dose).

    ``events``: an AE listing with usubjid, term/decoded_term, severity, serious, relationship,
    start/end dates and dtc, first dose. An AE without an end date is ongoing: its bar runs to the
    subject's last disposition record (``observed_until``), else to the cut-off, never before
    its onset. Bars start no earlier than ``earliest_day``. Columns: usubjid, term, severity,
    serious, related, start_dtc, end_dtc, start_day, end_day (study days), x_start (the axis
    position of start_day, ``day_position``; that of ``earliest_day`` for an earlier onset), x_end
    (the position after end_day's: a bar covers its days whole, so x_end - x_start is the number
    of days it covers), cut (the bar starts at ``earliest_day`` instead of its onset), ongoing,
    treatment_emergent.
    """
    columns = [
        "usubjid",
        "term",
        "severity",
        "serious",
        "related",
        "start_dtc",
        "end_dtc",
        "start_day",
        "end_day",
        "x_start",
        "x_end",
        "cut",
        "ongoing",
        "treatment_emergent",
    ]
    records = []
    left_out = 0
    for row in events.to_dict("records"):
        dose, start, end = (
            as_date(row["first_dose_date"]),
            as_date(row["start_date"]),
            as_date(row["end_date"]),
        )
        if dose is None or start is None:
            left_out += 1
            continue
        ongoing = end is None
        last = end if end is not None else _observed_until(start, row.get("observed_until"), cutoff)
        first_day, last_day = study_day(start, dose) or 0, study_day(last, dose) or 0
        x_start = day_position(max(first_day, earliest_day))
        records.append(
            {
                "usubjid": row["usubjid"],
                "term": _text(row.get("decoded_term")) or row["term"],
                "severity": (_text(row["severity"]) or UNKNOWN).title(),
                "serious": "Serious" if normalised(row["serious"]) == "Y" else "Not serious",
                "related": classify_relationship(row["relationship"]),
                "start_dtc": _text(row["start_dtc"]),
                "end_dtc": _text(row["end_dtc"]) or "ongoing",
                "start_day": first_day,
                "end_day": last_day,
                "x_start": x_start,
                # A bar covers its days whole: a one-day AE is one day wide.
                "x_end": max(day_position(last_day) + 1, x_start + 1),
                "cut": first_day < earliest_day,
                "ongoing": ongoing,
                "treatment_emergent": is_treatment_emergent(
                    row["start_dtc"], start, row["first_dose_dtc"], dose
                ),
            }
        )
    return pd.DataFrame.from_records(records, columns=columns), left_out


# -- drilldown --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventPick:
    """What a click selected: the events behind one cell or bar. ``source`` names the control (so
    the listing is drawn beside it); the other fields filter the events (None: any)."""

    source: str  # "summary" | "terms" | "soc" | "worst"
    title: str
    arm: str | None = None
    category: str | None = None  # a SUMMARY_CATEGORIES key
    soc: str | None = None
    pt: str | None = None
    dimension: str | None = None  # a WORST_DIMENSIONS key, with rank or value
    rank: int | None = None
    value: str | None = None  # the dimension's variable as given ('' for blank): those events


def summary_cell_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, population: pd.DataFrame
) -> EventPick | None:
    """The pick of a cell of ``summary_table``: its row's category, its column's arm (the label
    column: every arm)."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    row, column = cell
    key, label = str(table.iloc[row]["category"]), str(table.iloc[row]["Category"])
    arm = next((c.arm for c in arm_columns(population) if column == c.label), None)
    return EventPick(
        source="summary",
        title=f"{label} · {arm or 'all arms'}",
        arm=arm,
        category=key,
    )


def incidence_cell_pick(
    cell: tuple[int, str] | None, rows: pd.DataFrame, population: pd.DataFrame
) -> EventPick | None:
    """The pick of a cell of one SOC's table (``rows``: its ``incidence_table`` rows)."""
    if cell is None or not 0 <= cell[0] < len(rows):
        return None
    row, column = cell
    record = rows.iloc[row]
    arm = next((c.arm for c in arm_columns(population) if column == c.label), None)
    pt = None if record["level"] == "SOC" else str(record["pt"])
    return EventPick(
        source="terms",
        title=f"{pt or record['soc']} · {arm or 'all arms'}",
        arm=arm,
        soc=str(record["soc"]),
        pt=pt,
    )


def soc_point_pick(point: dict[str, object] | None) -> EventPick | None:
    """The pick of a dot of the SOC chart (its fields: soc, arm)."""
    if not point or point.get("soc") is None:
        return None
    soc, arm = str(point["soc"]), point.get("arm")
    return EventPick(
        source="soc",
        title=f"{soc} · {arm or 'all arms'}",
        arm=None if arm is None else str(arm),
        soc=soc,
    )


def level_point_pick(
    point: dict[str, object] | None, population: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a segment of the per-subject chart (its fields: arm_label, level): the events
    at that level of the arm's subjects whose highest level it is. "No AE" is rank -1."""
    if not point or point.get("level") is None:
        return None
    label, level = str(point.get("arm_label")), str(point["level"])
    ranks = {name: rank for rank, name in LEVEL_LABELS[dimension].items()} | {NO_AE: -1}
    if level not in ranks:
        return None
    arm = next((c.arm for c in arm_columns(population) if c.label == label), None)
    return EventPick(
        source="worst",
        title=f"{WORST_DIMENSIONS[dimension]}: {level} · {arm or 'all arms'}",
        arm=arm,
        dimension=dimension,
        rank=ranks[level],
    )


def level_cell_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, population: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a cell of ``display_worst_levels``: its row's level, its column's arm (the
    Level column: every arm) -- the same events as the chart's segment (``level_point_pick``)."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    row, column = cell
    point: dict[str, object] = {"arm_label": column, "level": str(table.iloc[row]["Level"])}
    return level_point_pick(point, population, dimension)


def source_value_pick(
    cell: tuple[int, str] | None, table: pd.DataFrame, dimension: str
) -> EventPick | None:
    """The pick of a cell of ``source_values``: the events (of every arm) whose variable holds
    that row's value as given."""
    if cell is None or not 0 <= cell[0] < len(table):
        return None
    value = str(table.iloc[cell[0]]["value"])
    variable = SOURCE_VARIABLES[dimension]
    return EventPick(
        source="worst",
        title=f"{variable} = {value or BLANK_VALUE} · all arms",
        dimension=dimension,
        value=value,
    )
