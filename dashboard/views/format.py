"""Number and date wording shared by the views (and so by the pages, the pack and the CLI)."""

from dashboard.metrics.forecast import AccrualForecast


def percent(part: int, whole: int, digits: int = 0) -> str:
    """``"44%"``; a dash where the whole is zero."""
    return f"{100 * part / whole:.{digits}f}%" if whole else "–"


def count_of(part: int, whole: int | None) -> str:
    """``"20 / 20"`` against a target, or just the count where there is none."""
    return f"{part} / {whole}" if whole else f"{part}"


def projected_completion_label(forecast: AccrualForecast | None, *, filtered: bool) -> str:
    """The headline value for the forecast: a date, "reached <date>", or a dash."""
    if forecast is None or filtered:
        return "–"
    if forecast.status == "target_reached" and forecast.reached_on:
        return f"{forecast.reached_on:%d %b %Y}"
    if forecast.status == "ok" and forecast.median_date:
        return f"{forecast.median_date:%d %b %Y}"
    return "–"


def projected_interval_label(forecast: AccrualForecast | None, *, filtered: bool) -> str | None:
    """The 80% interval under the headline date, or why there is no forecast."""
    if forecast is None or filtered:
        return "whole study only" if filtered else None
    if forecast.status == "ok" and forecast.lower_date and forecast.upper_date:
        return f"80% interval {forecast.lower_date:%b %Y} – {forecast.upper_date:%b %Y}"
    if forecast.status == "target_reached":
        return "target reached"
    if forecast.status == "stalled":
        return "recruitment stalled"
    if forecast.status in ("too_few", "no_target"):
        return "not enough data" if forecast.status == "too_few" else "no target"
    return None
