"""Review (issue #20) as the pages, the pack and the command line read it: each record's review
state for a role, the counts beside "new", the queries with their texts as the viewer may read
them, and the status counts per page, site and state. Composed once here; the review log itself
is read by ``queries.review`` and written by ``dashboard.review``.

Blinding: nothing here carries an arm (the frames have no arm column), and a message an unblinded
reviewer wrote in a blinded study is replaced for a viewer who sees no arms
(``metrics.review.shown_text``).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from dashboard.metrics.review import record_states, shown_text, thread_states
from dashboard.queries import review as log
from dashboard.results.review import (
    ENTITIES,
    MEDICAL_MONITOR,
    NEEDS_REVIEW,
    PAGE_OF_ENTITY,
    QUERY_STATES,
    RECORD_STATES,
    REVIEW_ROLES,
    STATE_CHANGED,
)
from dashboard.views.context import ViewContext

# Columns of ``states``: the record's key, subject and site, the cut it last changed in, and its
# state for the role (metrics.review.STATE_COLUMNS).
STATE_FRAME = [
    "natural_key", "usubjid", "site_id", "version_cut",
    "review_state", "reviewed_by", "reviewed_at", "reviewed_in_cut",
]  # fmt: skip


def states(
    session: Session,
    ctx: ViewContext,
    *,
    entity: str,
    role: str,
    keys: list[str] | None = None,
    serious_only: bool = False,
    usubjid: str | None = None,
) -> pd.DataFrame:
    """Every record of ``entity`` in the context's scope (or those of ``keys``, or of one subject)
    with its review state for ``role`` (``STATE_FRAME``)."""
    records = log.record_versions(
        session,
        study_id=ctx.study_id,
        scope=ctx.scope,
        entity=entity,
        keys=keys,
        serious_only=serious_only,
        usubjid=usubjid,
    )
    marks = log.latest_marks(
        session, study_id=ctx.study_id, scope=ctx.scope, entity=entity, role=role
    )
    return record_states(records, marks)[STATE_FRAME]


def log_version(session: Session, *, study_id: str) -> int:
    """The study's latest log row id (0: none yet): part of the pages' cache keys of review
    states, so a mark written in any session shows in every other at its next run."""
    return log.last_event_id(session, study_id=study_id)


@dataclass(frozen=True)
class ReviewCounts:
    """How many records need review in a role: never reviewed (or withdrawn), and reviewed but
    changed by a later cut; their sum is what "unreviewed" beside "new" counts."""

    role: str
    unreviewed: int
    changed: int

    @property
    def needs_review(self) -> int:
        return self.unreviewed + self.changed

    def sentence(self, noun: str) -> str:
        """ "2 unreviewed SAEs (1 changed since review)" """
        changed = f" ({self.changed} changed since review)" if self.changed else ""
        return f"{self.needs_review:,} unreviewed {noun}{changed}"


def counts(found: pd.DataFrame, role: str) -> ReviewCounts:
    """The counts of a ``states`` frame."""
    tally = found["review_state"].value_counts()
    return ReviewCounts(
        role=role,
        unreviewed=int(tally.get(NEEDS_REVIEW[0], 0)),
        changed=int(tally.get(STATE_CHANGED, 0)),
    )


def sae_counts(session: Session, ctx: ViewContext, *, role: str = MEDICAL_MONITOR) -> ReviewCounts:
    """The SAEs in scope that need review in ``role`` (the Overview's and the AE page's count)."""
    found = states(session, ctx, entity="ae", role=role, serious_only=True)
    return counts(found, role)


def queries(session: Session, ctx: ViewContext, *, today: dt.date) -> pd.DataFrame:
    """Every query in scope (``metrics.review.thread_states``), open ones first and oldest first,
    its question as the viewer may read it."""
    messages = log.query_messages(session, study_id=ctx.study_id, scope=ctx.scope)
    messages = _readable(messages, ctx)
    return thread_states(messages, today=today)


def messages(session: Session, ctx: ViewContext, *, thread_id: int) -> pd.DataFrame:
    """One query's messages in the order written (``queries.review.LOG_COLUMNS``), texts as the
    viewer may read them; empty where the query is not in the viewer's scope."""
    found = log.review_log(session, study_id=ctx.study_id, scope=ctx.scope, thread_id=thread_id)
    return _readable(found, ctx)


def _readable(found: pd.DataFrame, ctx: ViewContext) -> pd.DataFrame:
    texts = [
        shown_text(text, by_unblinded=bool(hidden), viewer_sees_arms=ctx.shows_arms)
        for text, hidden in zip(found["text"], found["by_unblinded"], strict=True)
    ]
    return found.assign(text=pd.Series(texts, index=found.index, dtype=object))


def export(session: Session, ctx: ViewContext) -> pd.DataFrame:
    """The whole log in scope, in the order written, texts as the viewer may read them (the CSV
    ``study-monitor review export`` writes)."""
    return _readable(log.review_log(session, study_id=ctx.study_id, scope=ctx.scope), ctx)


@dataclass(frozen=True)
class ReviewStatus:
    """The status counts ``study-monitor review status --json`` prints."""

    # page, entity, site_id, role, state, records: every (page, site, role) has a row per state.
    records: pd.DataFrame
    # site_id, state, queries: a row per site and state.
    queries: pd.DataFrame

    def as_json(self) -> dict[str, Any]:
        """{"pages": {page: {entity: {site: {role: {state: n}}}}}, "queries": {site: {state: n}}}
        (the Subject page lists two kinds of record: subjects and dispositions)."""
        by_page: dict[str, dict[str, dict[str, dict[str, dict[str, int]]]]] = {}
        for page, entity, site, role, state, n in self.records[
            ["page", "entity", "site_id", "role", "state", "records"]
        ].to_numpy():
            sites = by_page.setdefault(str(page), {}).setdefault(str(entity), {})
            sites.setdefault(str(site), {}).setdefault(str(role), {})[str(state)] = int(n)
        by_site: dict[str, dict[str, int]] = {}
        for site, state, n in self.queries[["site_id", "state", "queries"]].to_numpy():
            by_site.setdefault(str(site), {})[str(state)] = int(n)
        return {"pages": by_page, "queries": by_site}


def _per_site(site_ids: pd.Series, states: pd.Series, every: tuple[str, ...]) -> pd.DataFrame:
    """site_id, state, n: how many of each state per site, every state of ``every`` for every
    site (zeros included)."""
    sites = site_ids.fillna("(no site)").astype(str)
    found = pd.DataFrame({"site_id": sites, "state": states}).value_counts()
    index = pd.MultiIndex.from_product([sorted(set(sites)), every], names=["site_id", "state"])
    return found.reindex(index, fill_value=0).rename("n").reset_index()


def status(session: Session, ctx: ViewContext, *, today: dt.date) -> ReviewStatus:
    """Records per page, site, role and state (zeros included), and queries per site and state."""
    parts = []
    for entity in ENTITIES:
        # The records once per entity; each role's marks read against them.
        records = log.record_versions(
            session, study_id=ctx.study_id, scope=ctx.scope, entity=entity
        )
        for role in REVIEW_ROLES:
            marks = log.latest_marks(
                session, study_id=ctx.study_id, scope=ctx.scope, entity=entity, role=role
            )
            found = record_states(records, marks)
            tally = _per_site(found["site_id"], found["review_state"], RECORD_STATES)
            parts.append(tally.assign(page=PAGE_OF_ENTITY[entity], entity=entity, role=role))
    records = pd.concat(parts, ignore_index=True).rename(columns={"n": "records"})
    threads = queries(session, ctx, today=today)
    query_counts = _per_site(threads["site_id"], threads["state"], QUERY_STATES)
    return ReviewStatus(
        records=records[["page", "entity", "site_id", "role", "state", "records"]],
        queries=query_counts.rename(columns={"n": "queries"}),
    )


def open_queries(session: Session, ctx: ViewContext, *, today: dt.date) -> pd.DataFrame:
    """The queries not closed, per site then oldest first (the pack's list)."""
    found = queries(session, ctx, today=today)
    kept = found[found["state"] != "closed"]
    return kept.sort_values(["site_id", "opened_at"], kind="stable").reset_index(drop=True)


def unreviewed_saes(
    session: Session, ctx: ViewContext, *, role: str = MEDICAL_MONITOR
) -> pd.DataFrame:
    """The SAEs in scope not reviewed in their present version by ``role``, per site (the
    pack's list): ``STATE_FRAME`` rows."""
    found = states(session, ctx, entity="ae", role=role, serious_only=True)
    kept = found[found["review_state"].isin(NEEDS_REVIEW)]
    return kept.sort_values(["site_id", "natural_key"], kind="stable").reset_index(drop=True)
