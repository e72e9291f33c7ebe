"""Adverse events: the safety tables by arm (summary, incidence by SOC and PT, the per-subject
worst levels and the values as given), built from the query layer's aggregates.
"""

from dataclasses import dataclass

import pandas as pd

from dashboard.metrics.ae_rules import (
    LEVEL_LABELS,
    RANKED_VALUES,
    SOURCE_VARIABLES,
    SUMMARY_CATEGORIES,
    normalised,
)

NO_AE = "No AE"  # the subjects of an arm without an AE, in the per-subject views
ALL_TERMS = "All terms in the class"  # the SOC's own row in its table of preferred terms

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
