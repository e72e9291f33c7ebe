"""The view's state in the URL: which study, which sites, which screening period.

A copied link (or one opened in a new tab) must show what its sender saw, so the shell writes
``?study=S&sites=101,102&from=2025-01-01&to=2025-03-31`` on every run and reads it on the first
run of a session. What a link asks for is checked here, in plain functions (no streamlit, so
tests call them directly): an unknown site, a site the reader may not see, a date that is not
one, a period that runs backwards or outside the study's screening dates each give a sentence
the shell shows as a warning, and are left out or clamped. Access itself is decided in
``dashboard.access``: these functions only refuse what is not offered.
"""

import datetime as dt
from collections.abc import Sequence

from dashboard.markdown import plain

# Query-string names (DESIGN.md: `study` is the contract; the others follow it).
STUDY = "study"
SITES = "sites"
FROM = "from"
TO = "to"

Span = tuple[dt.date, dt.date]


def parse_sites(
    raw: str | None, *, offered: Sequence[str], every_site: Sequence[str], study_id: str
) -> tuple[list[str], tuple[str, ...]]:
    """The link's ``sites=`` as a choice among ``offered`` (the reader's sites, in their order),
    and a warning for each site left out: not a site of the study, or not one of the reader's."""
    if raw is None:
        return [], ()
    asked = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    warnings = []
    for site in asked:
        if site not in every_site:
            warnings.append(
                f"Site **{plain(site)}** in the link is not a site of study "
                f"{plain(study_id)}: left out of the site filter."
            )
        elif site not in offered:
            warnings.append(
                f"Site **{plain(site)}** in the link is not open to your account: left out of the "
                "site filter."
            )
    kept = set(asked)
    return [s for s in offered if s in kept], tuple(warnings)


def _day(raw: str, name: str, warnings: list[str]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        warnings.append(f"**{name}={plain(raw)}** in the link is not a date (YYYY-MM-DD): ignored.")
        return None


def parse_period(
    raw_from: str | None, raw_to: str | None, *, span: Span | None
) -> tuple[Span | None, tuple[str, ...]]:
    """The link's ``from=`` / ``to=`` as a screening period within ``span`` (the study's first and
    last screening dates; None: no screening date at all), and what was wrong with it. A missing
    end is the span's own; a period reaching outside the span is cut to it; one that runs
    backwards, or lies wholly outside the span, is ignored. None: every screening date."""
    if raw_from is None and raw_to is None:
        return None, ()
    warnings: list[str] = []
    start = _day(raw_from, FROM, warnings) if raw_from is not None else None
    end = _day(raw_to, TO, warnings) if raw_to is not None else None
    if span is None:
        warnings.append("The link's screening period is ignored: no subject has a screening date.")
        return None, tuple(warnings)
    start = start or span[0]
    end = end or span[1]
    if end < span[0] or start > span[1]:
        warnings.append(
            f"The link's screening period ({start:%d %b %Y} to {end:%d %b %Y}) is outside the "
            f"screening dates ({span[0]:%d %b %Y} to {span[1]:%d %b %Y}): ignored."
        )
        return None, tuple(warnings)
    if start > end:
        warnings.append(
            f"The link's screening period runs backwards ({start:%d %b %Y} to {end:%d %b %Y}): "
            "ignored."
        )
        return None, tuple(warnings)
    clamped = (max(start, span[0]), min(end, span[1]))
    if clamped != (start, end):
        warnings.append(
            f"The link's screening period ({start:%d %b %Y} to {end:%d %b %Y}) reaches outside "
            f"the screening dates; cut to {clamped[0]:%d %b %Y} to {clamped[1]:%d %b %Y}."
        )
    return (None if clamped == span else clamped), tuple(warnings)


def fit_period(period: Span | None, span: Span | None) -> Span | None:
    """A period kept in the session, cut to ``span`` (the screening dates of the sites now in
    view, which change with the site filter or a new cut); None where nothing of it is left or it
    is the whole span."""
    if period is None or span is None:
        return None
    start, end = max(period[0], span[0]), min(period[1], span[1])
    if start > end or (start, end) == span:
        return None
    return (start, end)


def state_params(study_id: str, sites: Sequence[str], period: Span | None) -> dict[str, str]:
    """The query string of a view: the study always, the sites and the period where chosen."""
    params = {STUDY: study_id}
    if sites:
        params[SITES] = ",".join(sites)
    if period is not None:
        params[FROM], params[TO] = period[0].isoformat(), period[1].isoformat()
    return params
