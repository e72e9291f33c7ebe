"""Key risk indicators (KRIs): which sites stand out, scored as Gilead's gsm does and, where gsm is
weak, better. Pure: frames of counts in, frames of scores out.

A KRI is a ratio per group (a site or a country): a numerator (AEs, screen failures ...) over a
denominator (days on study, subjects screened ...). A *rate* counts events per unit of exposure
(variance of the metric mu / D under the null); a *binary* KRI is a proportion of units
(variance mu (1 - mu) / D). mu is the overall ratio: the sum of numerators over the sum of
denominators of every group, scored or not.

Three methods score a group, each giving a z-like score that the same thresholds flag:

- ``gsm`` (the default, gsm.core's ``Analyze_NormalApprox``): the normal approximation with a
  multiplicative over-dispersion factor. z0 = (m - mu) / sqrt(V / D); phi = mean(z0^2) over every
  group; score = (m - mu) / sqrt(phi V / D). Reproduces gsm's reference output to 1e-9
  (tests/test_kri.py). Its weaknesses: phi is inflated by the very outlier it should find (one
  extreme site raises phi and shrinks its own score), and the normal approximation is poor for a
  site with a handful of events.
- ``robust`` (Spiegelhalter, *Handling over-dispersion of performance indicators*, Qual Saf
  Health Care 2005;14:347-351): phi from the z0 winsorised at their 10th and 90th percentiles, so
  one extreme group cannot inflate it, and applied only when it is above 1 (the data over-dispersed);
  otherwise the score is z0.
- ``exact``: the group's count against its exact null distribution (Poisson(mu D) for a rate,
  Binomial(D, mu) for a proportion), its mid-p tail turned into a z-score: right for small sites,
  where a normal approximation flags too often or never. No over-dispersion.

Flags, as gsm's ``Flag_NormalApprox``: with thresholds (t1, t2, t3, t4) a score below t1 is -2,
below t2 -1, below t3 0, below t4 1, else 2; with two thresholds (t1, t2) only the upper side:
below t1 0, below t2 1, else 2. A study with one group scores none. A group under a minimum
denominator (or numerator) is neither scored nor flagged (gsm's accrual threshold), but still
counts in mu and phi, as in gsm.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["rate", "binary"]
Method = Literal["gsm", "robust", "exact"]
METHODS: tuple[Method, ...] = ("gsm", "robust", "exact")
KINDS: tuple[Kind, ...] = ("rate", "binary")

# What the flags mean on screen and in the pack (gsm's colours: red is 2 either side).
FLAG_NAMES = {-2: "red (low)", -1: "amber (low)", 0: "green", 1: "amber (high)", 2: "red (high)"}
SCORED_COLUMNS = ["group", "numerator", "denominator", "metric", "score", "flag"]
WINSOR = (0.10, 0.90)  # Spiegelhalter's (2005) winsorisation of the z-scores


@dataclass(frozen=True)
class Scoring:
    """How one KRI is scored: its kind, thresholds (ascending: four, or two for the upper side
    only), the minimum denominator and numerator below which a group is not scored, and the
    method."""

    kind: Kind
    thresholds: tuple[float, ...]
    min_denominator: float | None = None
    min_numerator: float | None = None
    method: Method = "gsm"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"type must be rate or binary, not {self.kind!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if len(self.thresholds) not in (2, 4):
            raise ValueError("thresholds must be four numbers (lower and upper) or two (upper)")
        if list(self.thresholds) != sorted(self.thresholds):
            raise ValueError("thresholds must be in ascending order")


def overall_ratio(numerator: pd.Series, denominator: pd.Series) -> float:
    """mu: every group's events over every group's exposure (NaN where there is no exposure)."""
    total = float(denominator.sum())
    return float(numerator.sum()) / total if total > 0 else float("nan")


def null_variance(mu: float, kind: Kind) -> float:
    """The variance of one unit's contribution under the null: mu for a rate (Poisson),
    mu (1 - mu) for a proportion (binomial)."""
    return mu if kind == "rate" else mu * (1 - mu)


def unadjusted_z(metric: pd.Series, denominator: pd.Series, mu: float, kind: Kind) -> pd.Series:
    """z0 = (m - mu) / sqrt(V / D). Zero where mu leaves no variance (mu 0, or 1 for a
    proportion), as gsm sets it."""
    variance = null_variance(mu, kind)
    if not variance > 0:
        return pd.Series(0.0, index=metric.index)
    z0: pd.Series = (metric - mu) / np.sqrt(variance / denominator)
    return z0


def overdispersion(z0: pd.Series, method: Method) -> float:
    """phi: gsm's mean of z0^2 over every group; the robust method's mean of the winsorised z0^2,
    floored at 1 (no correction for data that are not over-dispersed)."""
    z0 = z0.dropna()
    if z0.empty:
        return float("nan")
    if method == "robust":
        low, high = z0.quantile(list(WINSOR)).tolist()
        return max(1.0, float((z0.clip(low, high) ** 2).mean()))
    return float((z0**2).mean())


def exact_z(numerator: pd.Series, denominator: pd.Series, mu: float, kind: Kind) -> pd.Series:
    """The mid-p position of each count in its null distribution, as a standard normal score:
    Phi^-1(P(X < x) + P(X = x) / 2) with X ~ Poisson(mu D) or Binomial(D, mu)."""
    from scipy import stats  # type: ignore[import-untyped]  # a second of start-up: here only

    x = numerator.to_numpy(dtype=float)
    d = denominator.to_numpy(dtype=float)
    if kind == "rate":
        below = stats.poisson.cdf(x - 1, mu * d)
        at = stats.poisson.pmf(x, mu * d)
    else:
        n = np.rint(d)
        below = stats.binom.cdf(x - 1, n, mu)
        at = stats.binom.pmf(x, n, mu)
    mid_p = np.clip(below + at / 2, 1e-300, 1 - 1e-16)
    return pd.Series(stats.norm.ppf(mid_p), index=numerator.index)


def flag_scores(score: pd.Series, thresholds: Sequence[float]) -> pd.Series:
    """gsm's flags (see the module docstring); <NA> where there is no score."""
    cuts = list(thresholds)
    values = [-2, -1, 0, 1, 2] if len(cuts) == 4 else [0, 1, 2]
    # searchsorted(side="right"): a score equal to a threshold belongs to the band above it.
    bands = np.searchsorted(np.asarray(cuts, dtype=float), score.fillna(0).to_numpy(), "right")
    flags = pd.Series(np.asarray(values)[bands], index=score.index).astype("Int64")
    return flags.where(score.notna(), pd.NA)


def score_groups(counts: pd.DataFrame, scoring: Scoring) -> pd.DataFrame:
    """Score every group of ``counts`` (columns group, numerator, denominator; several rows of a
    group are summed, as gsm sums its subjects). A group with no denominator has no metric.

    Columns: group, numerator, denominator, metric, score, flag, in group order. ``score`` and
    ``flag`` are NA for a group under a minimum or without exposure.
    """
    summed = (
        counts.groupby("group", sort=True)[["numerator", "denominator"]].sum().reset_index()
        if not counts.empty
        else pd.DataFrame(columns=["group", "numerator", "denominator"])
    )
    summed["numerator"] = summed["numerator"].astype(float)
    summed["denominator"] = summed["denominator"].astype(float)
    exposed = summed["denominator"] > 0
    metric = (summed["numerator"] / summed["denominator"]).where(exposed)
    mu = overall_ratio(summed["numerator"][exposed], summed["denominator"][exposed])
    z0 = unadjusted_z(metric[exposed], summed["denominator"][exposed], mu, scoring.kind)
    if scoring.method == "exact":
        score = exact_z(
            summed["numerator"][exposed], summed["denominator"][exposed], mu, scoring.kind
        )
    else:
        phi = overdispersion(z0, scoring.method)
        score = z0 / np.sqrt(phi) if phi > 0 else z0 * 0.0
    score = score.reindex(summed.index)
    # One group has nothing to be compared with (its metric is mu): no score.
    scored = exposed & (int(exposed.sum()) > 1)
    if scoring.min_denominator is not None:
        scored &= summed["denominator"] >= scoring.min_denominator
    if scoring.min_numerator is not None:
        scored &= summed["numerator"] >= scoring.min_numerator
    score = score.where(scored)
    return pd.DataFrame(
        {
            "group": summed["group"],
            "numerator": summed["numerator"],
            "denominator": summed["denominator"],
            "metric": metric,
            "score": score.astype(float),
            "flag": flag_scores(score, scoring.thresholds),
        }
    )[SCORED_COLUMNS]


def funnel_bounds(
    counts: pd.DataFrame, scoring: Scoring, denominators: Sequence[float]
) -> pd.DataFrame:
    """The funnel plot's limits: for each denominator D and each threshold t, the metric at which
    a group of that size would score t. gsm: mu + t sqrt(phi V / D); robust: the same with the
    robust phi; exact: the Poisson or binomial quantile at Phi(t), over D.

    Columns: denominator, threshold, metric (clipped at 0, and at 1 for a proportion).
    """
    summed = counts.groupby("group")[["numerator", "denominator"]].sum()
    summed = summed[summed["denominator"] > 0]
    if summed.empty:
        return pd.DataFrame(columns=["denominator", "threshold", "metric"])
    mu = overall_ratio(summed["numerator"], summed["denominator"])
    d = np.asarray(denominators, dtype=float)
    frames = []
    for threshold in scoring.thresholds:
        if scoring.method == "exact":
            from scipy import stats

            p = stats.norm.cdf(threshold)
            if scoring.kind == "rate":
                bound = stats.poisson.ppf(p, mu * d) / d
            else:
                bound = stats.binom.ppf(p, np.rint(d), mu) / np.rint(d)
        else:
            metric = summed["numerator"] / summed["denominator"]
            z0 = unadjusted_z(metric, summed["denominator"], mu, scoring.kind)
            phi = overdispersion(z0, scoring.method)
            bound = mu + threshold * np.sqrt(phi * null_variance(mu, scoring.kind) / d)
        upper = 1.0 if scoring.kind == "binary" else np.inf
        frames.append(
            pd.DataFrame(
                {"denominator": d, "threshold": threshold, "metric": np.clip(bound, 0, upper)}
            )
        )
    return pd.concat(frames, ignore_index=True)


def site_risk_scores(flags: pd.DataFrame) -> pd.Series:
    """gsm's site risk score of each row (a site; one column per KRI, its flag or NA): 100 x the
    sum of the flags' weights over the largest sum possible. A flag weighs its size (amber 1, red
    2, either side); the maximum is red on every KRI that has a score. NaN where none has."""
    values = flags.astype(float)
    scored = values.notna().sum(axis=1)
    return (100.0 * values.abs().sum(axis=1) / (2.0 * scored)).where(scored > 0)


def qtl_limit(p0: float, z: float, n: float) -> float:
    """The quality tolerance limit for a study-level proportion over n units, as gsm.qtl: the
    proportion is over its limit when p > p0 + z sqrt(p0 (1 - p0) / n)."""
    return p0 + z * float(np.sqrt(p0 * (1 - p0) / n)) if n > 0 else float("nan")


def qtl_by_cut(totals: pd.DataFrame, p0: float, z: float) -> pd.DataFrame:
    """A study-level proportion against its quality tolerance limit, per data cut: ``totals`` has
    columns cut_id, numerator, denominator (the study's sums); adds proportion, limit and over.
    Cuts without a denominator are left out: no units, no proportion to judge."""
    rows = totals[totals["denominator"] > 0].reset_index(drop=True)
    proportion = rows["numerator"] / rows["denominator"]
    limit = pd.Series([qtl_limit(p0, z, float(n)) for n in rows["denominator"]], dtype=float)
    return rows.assign(proportion=proportion, limit=limit, over=proportion > limit)


def json_number(value: object) -> float | int | None:
    """A count or score as JSON prints it: whole numbers as integers, NaN and NA as null (the
    contract's output of ``study-monitor kri``)."""
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    if number != number:  # NaN
        return None
    return int(number) if number.is_integer() else number


def read_counts(path: Path) -> pd.DataFrame:
    """A table to score (``study-monitor kri score``): a CSV with columns GroupID, Numerator and
    Denominator, as gsm's analytics input. Columns: group, numerator, denominator. Raises
    ValueError naming what is wrong and where."""
    try:
        frame = pd.read_csv(path, dtype={"GroupID": str})
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror})") from None
    missing = [c for c in ("GroupID", "Numerator", "Denominator") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: column {', '.join(missing)} is missing")
    if frame.empty:
        raise ValueError(f"{path}: no rows to score")
    counts = pd.DataFrame({"group": frame["GroupID"].astype(str)})
    for column in ("Numerator", "Denominator"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(bad.to_numpy().argmax()) + 2  # the file's line: a header, then rows
            raise ValueError(
                f"{path}, line {row}: {column} {frame[column].iloc[row - 2]!r} is not a number "
                "of zero or more"
            )
        counts[column.lower()] = values.astype(float)
    blank = frame["GroupID"].isna().to_numpy()
    if blank.any():
        raise ValueError(f"{path}, line {int(blank.argmax()) + 2}: GroupID is blank")
    return counts
