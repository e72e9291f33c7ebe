"""The multicentre recruitment model (issue #22): each site recruits as a Poisson process of its
own rate, the rates drawn from one gamma distribution (Anisimov and Fedorov, *Modelling,
prediction and adaptive adjustment of recruitment in multicentre trials*, Stat Med 2007,
26(27):4958-4975, doi:10.1002/sim.2956).

- site i, open for tau_i days up to the cut-off, recruited k_i; its rate lambda_i ~ Gamma(alpha,
  beta) (shape alpha, rate beta per day), so k_i is negative binomial: the prior's parameters are
  fitted by maximum likelihood over the sites (``fit_rates``), on the log scale, with their
  covariance from the observed information;
- an open site's rate given what it did is Gamma(alpha + k_i, beta + tau_i); a site not yet open
  recruits from its opening day with a rate drawn from the prior;
- the predicted recruitment is simulated (``predict``): parameters drawn from their asymptotic
  normal (so their uncertainty widens the bands: Mountain and Sherlock, Biometrics 2022, showed
  that plug-in intervals under-cover), then each site's rate, then the day the remaining
  subjects are in, exactly: given the rates the recruitment is a Poisson process whose
  cumulative intensity is piecewise linear (a slope change at each site opening), and the m-th
  arrival of a unit-rate process is Gamma(m, 1). A fixed seed makes the answer the same on every
  run.

Pure: arrays in, arrays and frozen values out; days are days after the cut-off.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

# The shape's upper bound on the log scale: sites whose counts show no more spread than one
# Poisson rate would have their likelihood rising towards alpha -> infinity.
MAX_LOG_SHAPE = math.log(1e6)
# Above this shape the site rates differ by less than 1% (their coefficient of variation is
# 1 / sqrt(alpha)): one common rate, whose only uncertainty is the mean rate's.
COMMON_SHAPE = 1e4
DEFAULT_DRAWS = 4_000


@dataclass(frozen=True)
class RateFit:
    """The fitted gamma distribution of the sites' rates (per day): ``shape`` alpha, ``rate``
    beta, and the covariance of (log alpha, log beta); ``common_rate``: the shape is above
    ``COMMON_SHAPE`` (the sites differ no more than chance: one rate for all)."""

    shape: float
    rate: float
    covariance: FloatArray
    log_likelihood: float
    sites: int
    common_rate: bool

    @property
    def mean_rate(self) -> float:
        """The mean site rate, subjects per day."""
        return self.shape / self.rate

    def standard_errors(self) -> tuple[float, float]:
        """Standard errors of log alpha and log beta."""
        return (
            float(math.sqrt(max(self.covariance[0, 0], 0.0))),
            float(math.sqrt(max(self.covariance[1, 1], 0.0))),
        )


def _log_likelihood(log_shape: float, log_rate: float, k: FloatArray, tau: FloatArray) -> float:
    from scipy.special import gammaln  # type: ignore[import-untyped]

    a, b = math.exp(log_shape), math.exp(log_rate)
    terms = (
        gammaln(a + k)
        - gammaln(a)
        - gammaln(k + 1)
        + a * (math.log(b) - np.log(b + tau))
        + k * (np.log(tau) - np.log(b + tau))
    )
    return float(np.sum(terms))


def fit_rates(enrolled: npt.ArrayLike, open_days: npt.ArrayLike) -> RateFit:
    """The maximum-likelihood gamma prior of the site rates from each open site's subjects
    (``enrolled``) and days open (``open_days``, > 0). Needs at least two sites."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    k = np.asarray(enrolled, dtype=float)
    tau = np.asarray(open_days, dtype=float)
    if len(k) != len(tau) or len(k) < 2:
        raise ValueError("the multicentre model needs at least two open sites")
    if np.any(tau <= 0) or np.any(k < 0):
        raise ValueError("every site needs a positive time open and a count of zero or more")
    if k.sum() == 0:
        raise ValueError("no site has recruited yet: there is no rate to fit")
    # Start at the method of moments: the mean rate, and the spread of the site rates beyond
    # what Poisson counts would show (or a large shape where there is none).
    rates = k / tau
    mean = k.sum() / tau.sum()
    spread = float(np.var(rates, ddof=1) - mean * np.mean(1 / tau))
    start_shape = mean**2 / spread if spread > 0 else 100.0
    start = np.array([math.log(start_shape), math.log(start_shape / mean)])

    def objective(theta: FloatArray) -> float:
        return -_log_likelihood(float(theta[0]), float(theta[1]), k, tau)

    # The shape's bound holds the rate's to the same difference, so the mean rate stays free.
    found = minimize(
        objective,
        start,
        method="L-BFGS-B",
        bounds=[(math.log(1e-3), MAX_LOG_SHAPE), (None, None)],
    )
    log_shape, log_rate = (float(v) for v in found.x)
    common = log_shape >= math.log(COMMON_SHAPE)
    covariance = _covariance(log_shape, log_rate, k, tau, common)
    return RateFit(
        shape=math.exp(log_shape),
        rate=math.exp(log_rate),
        covariance=covariance,
        log_likelihood=-float(found.fun),
        sites=len(k),
        common_rate=common,
    )


def _covariance(
    log_shape: float, log_rate: float, k: FloatArray, tau: FloatArray, common: bool
) -> FloatArray:
    """The inverse of the observed information at the fit (central differences). With one
    common rate the shape is held (the likelihood is flat along it): only the mean rate's
    uncertainty is left, through log beta."""
    h = 1e-4
    theta = np.array([log_shape, log_rate])

    def f(t: FloatArray) -> float:
        return -_log_likelihood(float(t[0]), float(t[1]), k, tau)

    if common:
        # With alpha held, only log beta moves (the mean rate alpha / beta).
        step = np.array([0.0, h])
        second = (f(theta + step) - 2 * f(theta) + f(theta - step)) / h**2
        variance = 1 / second if second > 0 else 0.0
        return np.array([[0.0, 0.0], [0.0, variance]])
    hessian = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hessian[i, j] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h**2)
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.zeros((2, 2))
    if np.any(np.diag(covariance) < 0):
        return np.zeros((2, 2))
    return np.asarray(covariance, dtype=float)


@dataclass(frozen=True)
class Prediction:
    """Simulated recruitment after the cut-off: ``completion_days`` (one per draw: days after
    the cut-off until the remaining subjects are in; inf where the draw's sites never get
    there) and ``intensity`` (per draw, the function's pieces: the knots in days and the
    cumulative intensity at them, and the slope after each knot)."""

    completion_days: FloatArray
    knots: FloatArray  # (K,) days after the cut-off: 0, then the openings in order
    cumulative: FloatArray  # (draws, K) expected subjects by each knot
    slopes: FloatArray  # (draws, K) subjects a day from each knot on

    def completion_quantiles(self, probabilities: tuple[float, ...]) -> tuple[float, ...]:
        """Quantiles of the days until completion (inf where more than that share of draws
        never complete)."""
        return tuple(float(np.quantile(self.completion_days, p)) for p in probabilities)

    def expected_by(self, days: float) -> FloatArray:
        """Per draw, the expected subjects recruited in ``days`` after the cut-off."""
        index = np.searchsorted(self.knots, days, side="right") - 1
        expected = self.cumulative[:, index] + self.slopes[:, index] * (days - self.knots[index])
        return np.asarray(expected, dtype=float)


def predict(
    fit: RateFit,
    enrolled: npt.ArrayLike,
    open_days: npt.ArrayLike,
    remaining: int,
    *,
    opening_days: npt.ArrayLike = (),
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    parameter_uncertainty: bool = True,
) -> Prediction:
    """The recruitment of ``remaining`` more subjects by the open sites (their ``enrolled`` and
    ``open_days``) and the sites opening ``opening_days`` after the cut-off (>= 0), simulated
    ``draws`` times (see the module's docstring). ``parameter_uncertainty`` False plugs the
    fitted parameters in (the under-covering plug-in, for comparison)."""
    rng = np.random.default_rng(seed)
    k = np.asarray(enrolled, dtype=float)
    tau = np.asarray(open_days, dtype=float)
    openings = np.sort(np.asarray(opening_days, dtype=float))
    mean = np.array([math.log(fit.shape), math.log(fit.rate)])
    if parameter_uncertainty and np.any(fit.covariance):
        theta = rng.multivariate_normal(mean, fit.covariance, size=draws, method="eigh")
    else:
        theta = np.tile(mean, (draws, 1))
    shape, rate = np.exp(theta[:, 0]), np.exp(theta[:, 1])
    # Each open site's rate given its own record; each new site's from the prior.
    open_rates = rng.gamma(shape[:, None] + k[None, :], 1 / (rate[:, None] + tau[None, :]))
    new_rates = rng.gamma(
        np.repeat(shape[:, None], len(openings), axis=1), 1 / rate[:, None]
    ).reshape(draws, len(openings))
    knots = np.concatenate([[0.0], np.maximum(openings, 0.0)])
    slopes = open_rates.sum(axis=1)[:, None] + np.concatenate(
        [np.zeros((draws, 1)), np.cumsum(new_rates, axis=1)], axis=1
    )
    widths = np.diff(knots)
    cumulative = np.concatenate(
        [np.zeros((draws, 1)), np.cumsum(slopes[:, :-1] * widths[None, :], axis=1)], axis=1
    )
    completion = _completion(cumulative, slopes, knots, rng.gamma(remaining, 1.0, size=draws))
    return Prediction(completion, knots, cumulative, slopes)


def _completion(
    cumulative: FloatArray, slopes: FloatArray, knots: FloatArray, needed: FloatArray
) -> FloatArray:
    """Per draw, the day the cumulative intensity reaches ``needed`` (inf where it never
    does: no site recruits)."""
    # The last knot whose cumulative intensity is below what is needed starts the piece.
    below = cumulative < needed[:, None]
    piece = below.sum(axis=1) - 1
    rows = np.arange(len(needed))
    start, slope = cumulative[rows, piece], slopes[rows, piece]
    with np.errstate(divide="ignore", invalid="ignore"):
        days = knots[piece] + (needed - start) / slope
    return np.where(slope > 0, days, np.inf)


def below_expected(fit: RateFit, enrolled: int, open_days: float) -> float:
    """The probability that a site of the fitted population, open ``open_days``, recruits at
    most ``enrolled`` subjects (negative binomial): small means it recruits below what the
    model expects of its sites."""
    from scipy.stats import nbinom  # type: ignore[import-untyped]

    success = fit.rate / (fit.rate + open_days)
    return float(nbinom.cdf(enrolled, fit.shape, success))


# The bands the Enrollment page draws: the 80% and 50% central intervals and the median.
BAND_PROBABILITIES = (0.1, 0.25, 0.5, 0.75, 0.9)


def recruitment_bands(
    prediction: Prediction,
    days: npt.ArrayLike,
    *,
    probabilities: tuple[float, ...] = BAND_PROBABILITIES,
    seed: int = 0,
) -> pd.DataFrame:
    """Subjects recruited after the cut-off by each of ``days``: per draw a Poisson count of the
    draw's expected subjects (the recruitment's own noise on top of the rates'), then the
    ``probabilities``' quantiles over the draws. Columns: day, then ``q10``, ``q25``... ."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in np.asarray(days, dtype=float):
        counts = rng.poisson(np.maximum(prediction.expected_by(float(day)), 0.0))
        rows.append([day, *np.quantile(counts, probabilities)])
    columns = ["day", *[f"q{round(100 * p)}" for p in probabilities]]
    return pd.DataFrame(rows, columns=columns)


CALIBRATION_COLUMNS = [
    "cut",
    "sites_open",
    "enrolled",
    "low",
    "median",
    "high",
    "truth",
    "covered",
    "error_days",
    "by_horizon_low",
    "by_horizon_median",
    "by_horizon_high",
    "by_horizon_truth",
    "by_horizon_covered",
]


def calibrate(
    openings: npt.ArrayLike,
    enrollments: Sequence[npt.ArrayLike],
    target: int,
    cuts: npt.ArrayLike,
    *,
    horizon: float | None = None,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> pd.DataFrame:
    """How the model would have forecast the ``target``-th enrollment had the data been cut at
    each of ``cuts`` (days, like ``openings``, each site's first day, and ``enrollments``, each
    site's enrollment days): per cut (``CALIBRATION_COLUMNS``) the sites open and the subjects
    by then, the 80% interval and median of the completion day (days from the same origin), the
    true day where it was reached, whether the interval held it, and the median's error (days,
    positive: too late). A cut with the target already reached, fewer than two sites open or
    none recruiting has no forecast (NaN); sites that opened after a cut count as planned on
    the day they opened.

    ``horizon`` (a day after every cut, e.g. the latest cut-off) also judges a study that has
    not reached its target: the ``by_horizon_*`` columns are the 10th, 50th and 90th percentiles
    of the subjects enrolled by then (``recruitment_bands`` with the cut's seed), the subjects
    actually enrolled by then, and whether the interval held them; all counted up to the target
    (recruitment stops there)."""
    opened = np.asarray(openings, dtype=float)
    days = [np.sort(np.asarray(e, dtype=float)) for e in enrollments]
    every = np.sort(np.concatenate(days)) if days else np.array([])
    truth = float(every[target - 1]) if len(every) >= target else math.nan
    rows = []
    for index, cut in enumerate(np.asarray(cuts, dtype=float)):
        is_open = opened < cut  # a site opening at the cut has had no day open
        enrolled = np.array([np.sum(d <= cut) for d, o in zip(days, is_open, strict=True) if o])
        open_days = cut - opened[is_open]
        done = int(enrolled.sum()) if len(enrolled) else 0
        row: dict[str, float] = {"cut": cut, "sites_open": int(is_open.sum()), "enrolled": done}
        usable = len(enrolled) >= 2 and done > 0 and done < target and np.all(open_days > 0)
        if usable:
            fit = fit_rates(enrolled, open_days)
            prediction = predict(
                fit,
                enrolled,
                open_days,
                target - done,
                opening_days=opened[~is_open] - cut,
                draws=draws,
                seed=seed + index,
            )
            low, median, high = (cut + q for q in prediction.completion_quantiles((0.1, 0.5, 0.9)))
            row |= {"low": low, "median": median, "high": high}
            if not math.isnan(truth):
                row |= {"covered": float(low <= truth <= high), "error_days": median - truth}
            if horizon is not None and horizon > cut:
                band = recruitment_bands(
                    prediction, [horizon - cut], probabilities=(0.1, 0.5, 0.9), seed=seed + index
                ).iloc[0]
                # Recruitment stops at the target: counts beyond it are not forecast or judged.
                happened = float(min(int(np.sum(every <= horizon)), target))
                low_n, median_n, high_n = (
                    min(done + band[q], target) for q in ("q10", "q50", "q90")
                )
                row |= {
                    "by_horizon_low": low_n,
                    "by_horizon_median": median_n,
                    "by_horizon_high": high_n,
                    "by_horizon_truth": happened,
                    "by_horizon_covered": float(low_n <= happened <= high_n),
                }
        row["truth"] = truth
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=CALIBRATION_COLUMNS)


def calibration_summary(table: pd.DataFrame) -> tuple[int, float, float]:
    """Of the cuts with a forecast and a known truth: how many, the share whose 80% interval
    held the truth, and the median absolute error of the median (days)."""
    assessed = table[table["covered"].notna()]
    if assessed.empty:
        return 0, math.nan, math.nan
    return (
        len(assessed),
        float(assessed["covered"].mean()),
        float(assessed["error_days"].abs().median()),
    )
