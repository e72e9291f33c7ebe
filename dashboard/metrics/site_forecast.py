"""The recruitment forecast by site (issue #22): each site's opening, the multicentre model of
``metrics.multicentre`` fitted to the study's sites, its bands and completion dates, a "what if"
of more sites, how well it would have forecast at earlier cuts, and which sites recruit below
what it expects. Pure: frames and dates in, frozen values out.

Days: a site open from the start of its opening day to the end of the cut-off day has been open
``(cutoff - opened).days + 1`` days (as ``metrics.forecast`` counts from a start date); a
completion ``w`` days after the end of the cut-off day falls on ``cutoff + ceil(w)``.
"""

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.metrics.forecast import DAYS_PER_MONTH, date_after
from dashboard.metrics.multicentre import (
    Prediction,
    RateFit,
    below_expected,
    calibrate,
    fit_rates,
    predict,
    recruitment_bands,
)

# Where a site's opening date came from, in the order they are taken.
ACTIVATION = "activation date"
REGISTRY = "registry start"
FIRST_SCREENING = "first screening"
PLANNED = "planned"

MIN_ENROLLED = 5  # as metrics.forecast: fewer say little about a rate
# "Below expected": a site of the fitted population would recruit this few or fewer with a
# probability under this (one site in twenty by chance alone).
BELOW_EXPECTED = 0.05
CALIBRATION_CUTS = 8  # at most, month-ends: the table stays short and the page quick
# Draws per earlier cut: a 10th or 90th percentile of 1,000 draws is within about 1% of its
# probability, plenty to say whether an interval held, at a quarter of the page's time (0.85 s
# for eight cuts of 200 sites at 4,000 draws).
CALIBRATION_DRAWS = 1_000
BAND_POINTS = 60

MODEL_METHOD = (
    "Multicentre Poisson-gamma model (Anisimov and Fedorov, Stat Med 2007): each open site "
    "recruits at its own rate, the sites' rates drawn from one gamma distribution fitted by "
    "maximum likelihood; a site given its own record, a planned site from the gamma from its "
    "opening date. The parameters' uncertainty is carried into the intervals (Mountain and "
    "Sherlock 2022); completion and bands are simulated (4,000 draws, fixed seed)."
)


def site_openings(
    sites: pd.DataFrame, *, cutoff: dt.date, registry_start: dt.date | None
) -> pd.DataFrame:
    """Each site's opening date and where it came from, from ``queries.enrollment
    .enrollment_by_site`` (site_id, activated_on, planned_activation_on, first_screening).

    The activation date where the site table gives one; the registry's start date for the site
    of a one-site study (the registry's start is that site's); else the first screening (a
    site is open at least from then); else the planned activation date (a site not open yet).
    Columns: site_id, opened_on (None: no date at all), source, is_open (on or before the
    cut-off)."""
    one_site = len(sites) == 1
    rows = []
    for site in sites.itertuples(index=False):
        activated, planned, first = (
            site.activated_on,
            site.planned_activation_on,
            site.first_screening,
        )
        if isinstance(activated, dt.date):
            opened, source = activated, ACTIVATION
        elif (
            one_site
            and registry_start is not None
            and (not isinstance(first, dt.date) or registry_start <= first)
        ):
            opened, source = registry_start, REGISTRY
        elif isinstance(first, dt.date):
            opened, source = first, FIRST_SCREENING
        elif isinstance(planned, dt.date):
            opened, source = planned, PLANNED
        else:
            opened, source = None, ""
        rows.append(
            {
                "site_id": site.site_id,
                "opened_on": opened,
                "source": source,
                "is_open": opened is not None and opened <= cutoff,
            }
        )
    return pd.DataFrame(rows, columns=["site_id", "opened_on", "source", "is_open"])


@dataclass(frozen=True)
class SiteForecast:
    """The multicentre forecast of a study as of its cut-off.

    ``sites``: the open sites (site_id, opened_on, source, open_days, enrolled, expected: what
    the fitted population's mean rate gives in that time, p_at_most: the probability of a site
    of that population recruiting at most what it did, below: under ``BELOW_EXPECTED``).
    ``planned``: the sites opening after the cut-off (site_id, opened_on). ``open_now`` and
    ``with_planned``: the (10th, 50th, 90th) percentile dates of the target-th enrollment by
    the open sites alone and with the planned ones (None: no planned site, or the draws do not
    get there). ``bands``: date, enrolled (q10..q90) from the cut-off on, planned sites in.
    """

    fit: RateFit
    cutoff: dt.date
    target: int
    enrolled: int
    sites: pd.DataFrame
    planned: pd.DataFrame
    undated_sites: int  # no activation, planned or screening date: left out
    sources: dict[str, int]  # open sites by where their opening date came from
    open_now: tuple[dt.date, dt.date, dt.date] | None
    with_planned: tuple[dt.date, dt.date, dt.date] | None
    bands: pd.DataFrame
    rate_per_month: float  # the open sites' expected subjects a month, all together

    @property
    def headline(self) -> tuple[dt.date, dt.date, dt.date] | None:
        """The dates the page leads with: with the planned sites where there are any."""
        return self.with_planned if len(self.planned) else self.open_now

    def what_if(self, extra_sites: int, opening_on: dt.date) -> tuple[dt.date, dt.date, dt.date]:
        """The (10th, 50th, 90th) percentile dates with ``extra_sites`` more sites opening on
        ``opening_on`` (on top of the planned ones)."""
        openings = [*self.planned["opened_on"], *([opening_on] * extra_sites)]
        dates = _dates(
            _predict(self.fit, self.sites, self.target, openings, self.cutoff), self.cutoff
        )
        assert dates is not None  # open sites recruit: every draw completes
        return dates


def _predict(
    fit: RateFit, sites: pd.DataFrame, target: int, openings: list[dt.date], cutoff: dt.date
) -> Prediction:
    """The open ``sites``' recruitment of the rest of ``target`` with sites opening on
    ``openings``: a site opens at the start of its day, ``(day - cutoff).days - 1`` days after
    the end of the cut-off day."""
    return predict(
        fit,
        sites["enrolled"].to_numpy(float),
        sites["open_days"].to_numpy(float),
        target - int(sites["enrolled"].sum()),
        opening_days=[float(max((d - cutoff).days - 1, 0)) for d in openings],
    )


def _dates(prediction: Prediction, cutoff: dt.date) -> tuple[dt.date, dt.date, dt.date] | None:
    low, median, high = prediction.completion_quantiles((0.1, 0.5, 0.9))
    if not math.isfinite(high):
        return None
    return (
        date_after(cutoff, low),
        date_after(cutoff, median),
        date_after(cutoff, high),
    )


def multicentre_reason(
    openings: pd.DataFrame, enrollment_days: pd.DataFrame, *, cutoff: dt.date
) -> str | None:
    """Why the multicentre model cannot be fitted (None: it can): one site open, or too few
    enrolled at the open sites by the cut-off (a site table may date a site's opening after its
    enrollments: those do not count for a site not open)."""
    open_ids = set(openings.loc[openings["is_open"], "site_id"])
    counted = enrollment_days[
        (enrollment_days["date"] <= cutoff) & enrollment_days["site_id"].isin(open_ids)
    ]
    enrolled = int(counted["enrolled"].sum())
    open_sites = len(open_ids)
    if open_sites < 2:
        return (
            "one site open: there is no spread of site rates to fit"
            if open_sites == 1
            else "no site open at the cut-off"
        )
    if enrolled < MIN_ENROLLED:
        return f"{enrolled} enrolled: at least {MIN_ENROLLED} are needed to fit site rates"
    return None


def site_expectations(
    openings: pd.DataFrame, enrollment_days: pd.DataFrame, *, cutoff: dt.date
) -> tuple[RateFit, pd.DataFrame]:
    """The fitted gamma of the site rates and the open sites of ``site_openings`` with their
    days open, subjects enrolled by the cut-off, what the fitted population's mean rate gives
    in that time (``expected``), the probability of a site of that population recruiting at
    most what it did (``p_at_most``) and whether that is under ``BELOW_EXPECTED`` (``below``).
    The caller has checked ``multicentre_reason`` is None."""
    counted = enrollment_days[enrollment_days["date"] <= cutoff]
    per_site = counted.groupby("site_id")["enrolled"].sum()
    open_sites = openings[openings["is_open"]].copy()
    open_sites["open_days"] = [(cutoff - d).days + 1 for d in open_sites["opened_on"]]
    open_sites["enrolled"] = [int(per_site.get(s, 0)) for s in open_sites["site_id"]]
    fit = fit_rates(open_sites["enrolled"], open_sites["open_days"])
    open_sites["expected"] = open_sites["open_days"] * fit.mean_rate
    open_sites["p_at_most"] = [
        below_expected(fit, int(k), float(t))
        for k, t in zip(open_sites["enrolled"], open_sites["open_days"], strict=True)
    ]
    open_sites["below"] = open_sites["p_at_most"] < BELOW_EXPECTED
    return fit, open_sites.reset_index(drop=True)


def site_forecast(
    openings: pd.DataFrame,
    enrollment_days: pd.DataFrame,
    *,
    cutoff: dt.date,
    target: int,
) -> SiteForecast:
    """The multicentre forecast from ``site_openings`` and ``queries.enrollment
    .site_enrollment_days``; the caller has checked ``multicentre_reason`` is None and that
    fewer than ``target`` are enrolled."""
    fit, open_sites = site_expectations(openings, enrollment_days, cutoff=cutoff)
    planned = openings[~openings["is_open"] & openings["opened_on"].notna()][
        ["site_id", "opened_on"]
    ].reset_index(drop=True)
    enrolled = int(open_sites["enrolled"].sum())
    k = open_sites["enrolled"].to_numpy(float)
    tau = open_sites["open_days"].to_numpy(float)
    posterior_rate = float(np.sum((fit.shape + k) / (fit.rate + tau)))
    open_sites = open_sites.reset_index(drop=True)
    now = _predict(fit, open_sites, target, [], cutoff)
    with_planned = (
        _predict(fit, open_sites, target, list(planned["opened_on"]), cutoff)
        if len(planned)
        else now
    )
    end = with_planned.completion_quantiles((0.9,))[0]
    horizon = end if math.isfinite(end) else 365.0
    days = np.linspace(0.0, math.ceil(horizon * 1.1), BAND_POINTS)
    bands = recruitment_bands(with_planned, days)
    bands.insert(0, "date", [cutoff + dt.timedelta(days=round(d)) for d in bands.pop("day")])
    for column in bands.columns[1:]:  # recruitment stops at the target
        bands[column] = np.minimum(bands[column] + enrolled, target)
    return SiteForecast(
        fit=fit,
        cutoff=cutoff,
        target=target,
        enrolled=enrolled,
        sites=open_sites,
        planned=planned,
        undated_sites=int(openings["opened_on"].isna().sum()),
        sources={str(k): int(v) for k, v in open_sites["source"].value_counts().items()},
        open_now=_dates(now, cutoff),
        with_planned=_dates(with_planned, cutoff) if len(planned) else None,
        bands=bands,
        rate_per_month=posterior_rate * DAYS_PER_MONTH,
    )


def calibration_cuts(first_opening: dt.date, cutoff: dt.date) -> list[dt.date]:
    """Earlier cuts to judge the forecast by: month-ends from three months after the first site
    opened to a month before the cut-off, at most ``CALIBRATION_CUTS`` of them, evenly spread
    and always with the latest."""
    month_ends = [
        (p.to_timestamp(how="end")).date()
        for p in pd.period_range(first_opening + dt.timedelta(days=90), cutoff, freq="M")
    ]
    cuts = [d for d in month_ends if d <= cutoff - dt.timedelta(days=30)]
    if len(cuts) <= CALIBRATION_CUTS:
        return cuts
    picked = np.linspace(0, len(cuts) - 1, CALIBRATION_CUTS).round().astype(int)
    return [cuts[i] for i in sorted(set(picked))]


CALIBRATION_TABLE_COLUMNS = [
    "cut",
    "sites_open",
    "enrolled",
    "low",
    "median",
    "high",
    "reached_on",
    "covered",
    "error_days",
    "by_cutoff_low",
    "by_cutoff_high",
    "by_cutoff",
    "by_cutoff_covered",
]


def calibration_table(
    openings: pd.DataFrame,
    enrollment_days: pd.DataFrame,
    *,
    cutoff: dt.date,
    target: int,
    cuts: list[dt.date],
) -> pd.DataFrame:
    """The forecast the model would have made at each of ``cuts``, against what happened: the
    target date's 80% interval and median (and, where the target was reached by the cut-off,
    the day it was, whether the interval held it and the median's error in days), and the 80%
    interval of the subjects enrolled by the cut-off against how many were
    (``CALIBRATION_TABLE_COLUMNS``). Cuts where the model could not be fitted yet (fewer than
    two sites open or none recruiting) or the target was already reached are left out. Sites
    are placed by ``site_openings``; a site that opened after a cut counts as planned for its
    opening date."""
    dated = openings[openings["opened_on"].notna()].reset_index(drop=True)
    if dated.empty or not cuts:
        return pd.DataFrame(columns=CALIBRATION_TABLE_COLUMNS)
    origin: dt.date = min(dated["opened_on"])

    def day(d: dt.date) -> float:
        return float((d - origin).days)

    counted = enrollment_days[enrollment_days["date"] <= cutoff]
    enrollments = []
    for site_id in dated["site_id"]:
        mine = counted[counted["site_id"] == site_id]
        # An enrollment at mid-day of its date: within (opening, end of the cut-off day].
        enrollments.append(np.repeat([day(d) + 0.5 for d in mine["date"]], mine["enrolled"]))
    table = calibrate(
        [day(d) for d in dated["opened_on"]],
        enrollments,
        target,
        [day(c) + 1 for c in cuts],  # a cut is the end of its day
        horizon=day(cutoff) + 1,
        draws=CALIBRATION_DRAWS,
    )

    def as_date(value: float) -> dt.date | None:
        return None if pd.isna(value) else origin + dt.timedelta(days=math.floor(value))

    made = table["low"].notna().to_numpy()  # a cut with too little data then forecast nothing
    table = table[made].reset_index(drop=True)
    return pd.DataFrame(
        {
            "cut": [c for c, m in zip(cuts, made, strict=True) if m],
            "sites_open": table["sites_open"].astype(int),
            "enrolled": table["enrolled"].astype(int),
            "low": [as_date(v) for v in table["low"]],
            "median": [as_date(v) for v in table["median"]],
            "high": [as_date(v) for v in table["high"]],
            "reached_on": [as_date(v) for v in table["truth"]],
            "covered": table["covered"],
            "error_days": table["error_days"],
            "by_cutoff_low": table["by_horizon_low"],
            "by_cutoff_high": table["by_horizon_high"],
            "by_cutoff": table["by_horizon_truth"],
            "by_cutoff_covered": table["by_horizon_covered"],
        }
    )
