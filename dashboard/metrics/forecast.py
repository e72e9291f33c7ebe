"""When will the enrollment target be reached? A Poisson-gamma accrual forecast, pure and exact.

The model is the Bayesian accrual model of Gajewski, Simon and Carlson (2008), *Predicting accrual
in clinical trials with Bayesian posterior predictive distributions*, Stat Med 27(13):2328-2340,
doi:10.1002/sim.3128, as in the R ``accrual`` package. They put an inverse-gamma prior on the mean
waiting time of exponential gaps; the same model, stated for the rate, reads:

- enrollments arrive as a Poisson process with a constant rate λ per day;
- prior λ ~ Gamma(shape = n·P, rate = T·P), where n is the target, T the planned duration in days
  (n / T is the planned rate) and P in [0, 1] the weight given to the plan;
- after k enrollments in t days of observation the posterior is Gamma(α = k + n·P, β = t + T·P);
- the waiting time W for the remaining m = target - k enrollments is Gamma(m, λ) given λ, so its
  posterior predictive distribution is W = β·B / (1 - B) with B ~ Beta(m, α) (a beta-prime
  distribution). W increases with B, so every quantile of W is exact through the Beta quantile:
  no sampling, the same answer on every run.

Days are whole calendar days. An enrollment dated d happened at some time during day d; the data
are complete to the end of the cut-off day.
"""

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

# 365.25 / 12, the mean Gregorian month: "per month" then does not depend on which month.
DAYS_PER_MONTH = 30.4375

OK = "ok"
TOO_FEW = "too_few"
TARGET_REACHED = "target_reached"
NO_TARGET = "no_target"


@dataclass(frozen=True)
class AccrualForecast:
    """The forecast of the date the enrollment target is reached, as of a data cut-off.

    ============================  =====================================================================
    field                         meaning
    ============================  =====================================================================
    status                        ``"ok"``, ``"too_few"``, ``"target_reached"`` or ``"no_target"``
    message                       one plain sentence for the page, whatever the status
    enrolled                      enrollments on or before the cut-off
    target                        the enrollment target (``None``: no target)
    observed_days                 days of observation the rate is fitted on (see ``forecast_completion``)
    rate_per_month                posterior mean accrual rate, enrollments per 30.4375 days (``"ok"`` only)
    median_date                   median of the predicted date of the target-th enrollment
    lower_date, upper_date        the central ``interval`` of that date (10th and 90th percentiles for 0.8)
    interval                      the probability the interval holds, e.g. 0.8
    required_rate_per_month       enrollments a month needed from the cut-off to reach the target by
                                  ``planned_end``; ``None`` without a planned end, once it is on or
                                  before the cut-off, or when the target is reached or absent
    reached_on                    date of the target-th enrollment (``"target_reached"`` only)
    ============================  =====================================================================
    """

    status: str
    message: str
    enrolled: int
    target: int | None
    observed_days: float
    rate_per_month: float | None
    median_date: dt.date | None
    lower_date: dt.date | None
    upper_date: dt.date | None
    interval: float
    required_rate_per_month: float | None
    reached_on: dt.date | None


def waiting_time_quantile(q: float, *, remaining: int, alpha: float, beta: float) -> float:
    """The q-quantile, in days, of the predictive waiting time for ``remaining`` more enrollments.

    ``alpha`` and ``beta`` are the shape and rate (per day) of the Gamma posterior of the accrual
    rate. W = β·B / (1 - B) with B ~ Beta(remaining, alpha), and W is increasing in B, so the
    quantile of W is the transform of the Beta quantile.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile {q} must lie strictly between 0 and 1")
    if remaining < 1 or alpha <= 0.0 or beta <= 0.0:
        raise ValueError("remaining must be at least 1 and alpha, beta positive")
    # scipy.stats takes about a second to import: loaded by the first forecast, not by every module
    # that names AccrualForecast (the views, `study-monitor summary`).
    from scipy.stats import beta as beta_distribution  # type: ignore[import-untyped]

    b = float(beta_distribution.ppf(q, remaining, alpha))
    return beta * b / (1.0 - b)


def date_after(cutoff: dt.date, waiting_days: float) -> dt.date:
    """The date of an enrollment ``waiting_days`` after the end of the cut-off day.

    The end of day ``cutoff`` is the start of day ``cutoff + 1``, so the enrollment falls on
    ``cutoff + 1 + floor(w)``. For the date's own q-quantile this is ``cutoff + ceil(w_q)``: the
    smallest date d with P(date <= d) = P(W < d - cutoff) >= q.
    """
    return cutoff + dt.timedelta(days=max(1, math.ceil(waiting_days)))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def required_rate_per_month(
    *, remaining: int, cutoff: dt.date, planned_end: dt.date | None
) -> float | None:
    """Enrollments a month needed after the cut-off to enroll ``remaining`` more by ``planned_end``.

    The days available are those after the cut-off day up to and including ``planned_end``:
    ``(planned_end - cutoff).days``. ``None`` without a planned end, when it is on or before the
    cut-off (no time is left: the figure would be infinite) or when nothing remains.
    """
    if planned_end is None or planned_end <= cutoff or remaining <= 0:
        return None
    return remaining / ((planned_end - cutoff).days / DAYS_PER_MONTH)


def forecast_completion(
    enrollment_dates: Sequence[dt.date],
    *,
    target: int | None,
    cutoff: dt.date,
    start: dt.date | None = None,
    planned_end: dt.date | None = None,
    interval: float = 0.8,
    min_enrolled: int = 5,
    prior_rate_per_day: float | None = None,
    prior_weight: float = 0.0,
) -> AccrualForecast:
    """Forecast the date of the ``target``-th enrollment from the accrual up to ``cutoff``.

    ``enrollment_dates``: one date per enrolled subject (repeats for several on a day, any order);
    dates after the cut-off are ignored, as a data cut would not have them.

    The observation window (``observed_days``, the exposure t of the model):

    - ``start`` given (the date accrual opened, e.g. TS SSTDTC): from the start of that day to the
      end of the cut-off day, ``(cutoff - start).days + 1`` days, and all k enrollments count.
    - ``start`` not given (default): the window opens at the first enrollment, whose time within
      its day is unknown and taken as mid-day, so t = ``(cutoff - first).days + 0.5`` and the
      k - 1 enrollments after the first count (the first only marks when accrual began). Give
      ``start`` when it is known: a slow start before the first enrollment is then part of the fit.

    Statuses, checked in this order:

    - ``"no_target"``: ``target`` is ``None``.
    - ``"target_reached"``: at least ``target`` enrollments by the cut-off; ``reached_on`` is the
      date of the ``target``-th.
    - ``"too_few"``: fewer than ``min_enrolled`` enrollments, or a window of zero calendar days
      (the cut-off on the start date, or on the first enrollment date without ``start``): no
      rate can be told from one day. Default ``min_enrolled`` is 5 because each enrollment moves
      the fitted rate by about 1/k of itself (20% at five, a third at three), and the 80%
      interval of the rate (Gamma(k) 10th to 90th percentile) spans a factor of 3.3 at five
      enrollments, 3.8 at four and 4.8 at three: fewer than five say little about the rate.
    - ``"ok"``: the forecast.

    Defaults: ``interval`` 0.8 (the 10th to 90th percentile, as the issue asks: wide enough to be
    honest, narrow enough to plan by); ``prior_weight`` 0, so the forecast rests on the observed
    accrual alone and is not pulled towards a planned schedule that may have been a guess. With
    ``prior_weight`` P > 0 the prior is Gamma(target·P, (target / r)·P) for the planned rate r:
    ``prior_rate_per_day`` when given, else ``target`` over the planned window from ``start``
    (or the first enrollment) to ``planned_end`` inclusive.

    Raises ``ValueError`` for arguments no caller should pass: a target below 1, ``interval`` or
    ``prior_weight`` out of range, ``min_enrolled`` below 1, ``start`` after the cut-off or after
    an enrollment, or P > 0 with no planned rate to be had.
    """
    if target is not None and target < 1:
        raise ValueError(f"target {target} must be at least 1")
    if not 0.0 < interval < 1.0:
        raise ValueError(f"interval {interval} must lie strictly between 0 and 1")
    if not 0.0 <= prior_weight <= 1.0:
        raise ValueError(f"prior_weight {prior_weight} must lie in [0, 1]")
    if min_enrolled < 1:
        raise ValueError(f"min_enrolled {min_enrolled} must be at least 1")
    if start is not None and start > cutoff:
        raise ValueError(f"start {start} is after the cut-off {cutoff}")

    dates = sorted(d for d in enrollment_dates if d <= cutoff)
    if start is not None and dates and dates[0] < start:
        raise ValueError(f"an enrollment on {dates[0]} precedes the start {start}")
    enrolled = len(dates)
    opened = start if start is not None else (dates[0] if dates else None)
    window_days = (cutoff - opened).days if opened is not None else 0
    if start is not None:
        observed_days = window_days + 1.0
        arrivals = enrolled
    elif dates:
        observed_days = window_days + 0.5
        arrivals = enrolled - 1
    else:
        observed_days = 0.0
        arrivals = 0

    def result(
        status: str,
        message: str,
        *,
        rate: float | None = None,
        quantiles: tuple[dt.date, dt.date, dt.date] | None = None,
        required: float | None = None,
        reached_on: dt.date | None = None,
    ) -> AccrualForecast:
        median, lower, upper = quantiles if quantiles is not None else (None, None, None)
        return AccrualForecast(
            status=status,
            message=message,
            enrolled=enrolled,
            target=target,
            observed_days=observed_days,
            rate_per_month=rate,
            median_date=median,
            lower_date=lower,
            upper_date=upper,
            interval=interval,
            required_rate_per_month=required,
            reached_on=reached_on,
        )

    if target is None:
        return result(NO_TARGET, "No enrollment target is set, so there is nothing to forecast.")
    if enrolled >= target:
        reached_on = dates[target - 1]
        return result(
            TARGET_REACHED,
            f"The target of {target} was reached on {reached_on.isoformat()}.",
            reached_on=reached_on,
        )

    remaining = target - enrolled
    required = required_rate_per_month(remaining=remaining, cutoff=cutoff, planned_end=planned_end)
    if enrolled < min_enrolled:
        return result(
            TOO_FEW,
            f"Too few enrollments to forecast ({enrolled}; at least {min_enrolled} are needed).",
            required=required,
        )
    if window_days == 0:
        return result(
            TOO_FEW,
            f"All {enrolled} enrollments fall on one day ({cutoff.isoformat()}); "
            "a rate cannot be estimated from a single day.",
            required=required,
        )

    prior_shape = prior_rate = 0.0
    if prior_weight > 0.0:
        planned_rate = prior_rate_per_day
        if planned_rate is None and planned_end is not None and opened is not None:
            planned_rate = target / ((planned_end - opened).days + 1)
        if planned_rate is None or planned_rate <= 0.0:
            raise ValueError(
                "prior_weight > 0 needs a planned rate: prior_rate_per_day, or planned_end after start"
            )
        prior_shape = target * prior_weight
        prior_rate = target / planned_rate * prior_weight
    alpha = arrivals + prior_shape
    beta = observed_days + prior_rate
    if alpha <= 0.0:  # start=None with min_enrolled=1 and a single enrollment
        return result(
            TOO_FEW,
            f"Too few enrollments to forecast ({enrolled}; at least 2 are needed).",
            required=required,
        )

    tail = (1.0 - interval) / 2.0
    median, lower, upper = (
        date_after(cutoff, waiting_time_quantile(q, remaining=remaining, alpha=alpha, beta=beta))
        for q in (0.5, tail, 1.0 - tail)
    )
    rate = alpha / beta * DAYS_PER_MONTH
    return result(
        OK,
        f"At {rate:.1f} enrollments a month, the {_ordinal(target)} is expected around "
        f"{median.isoformat()} ({interval:.0%} interval {lower.isoformat()} to "
        f"{upper.isoformat()}).",
        rate=rate,
        quantiles=(median, lower, upper),
        required=required,
    )
