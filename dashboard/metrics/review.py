"""Review state from the log (issue #20), pure pandas: a record's state for one role, a query's
state from its messages. The log is read by ``queries.review``; nothing here sees a session."""

import datetime as dt

import numpy as np
import pandas as pd

from dashboard.results.review import (
    HIDDEN_TEXT,
    QUERY,
    REVIEWED,
    STATE_AFTER,
    STATE_CHANGED,
    STATE_REVIEWED,
    STATE_UNREVIEWED,
)

STATE_COLUMNS = ["review_state", "reviewed_by", "reviewed_at", "reviewed_in_cut"]


def record_states(records: pd.DataFrame, marks: pd.DataFrame) -> pd.DataFrame:
    """``records`` (natural_key, version_cut: the cut the record was last changed in, and any
    other columns) with its review state for one role, from ``marks`` (the role's latest mark per
    natural_key: kind, email, at, record_cut_id).

    Reviewed: the latest mark says reviewed, made on the version the record has now. Changed since
    review: a later cut changed the record after that mark. Unreviewed: no mark, or withdrawn.
    Adds ``STATE_COLUMNS``; reviewer and time are kept for a changed record (who saw it before).
    """
    latest = marks.set_index("natural_key") if len(marks) else None
    out = records.copy()
    if latest is None:
        out["review_state"] = STATE_UNREVIEWED
        out["reviewed_by"] = None
        out["reviewed_at"] = pd.NaT
        out["reviewed_in_cut"] = None
        return out
    keys = out["natural_key"]
    kind = keys.map(latest["kind"])
    marked_cut = keys.map(latest["record_cut_id"])
    is_mark = (kind == REVIEWED).to_numpy()
    version = pd.to_numeric(out["version_cut"]).to_numpy(dtype=float)
    changed = is_mark & (version > pd.to_numeric(marked_cut).to_numpy(dtype=float))
    out["review_state"] = np.where(
        changed, STATE_CHANGED, np.where(is_mark, STATE_REVIEWED, STATE_UNREVIEWED)
    )
    out["reviewed_by"] = keys.map(latest["email"]).where(is_mark, None)
    out["reviewed_at"] = pd.to_datetime(keys.map(latest["at"]), utc=True).where(is_mark)
    out["reviewed_in_cut"] = marked_cut.where(is_mark, None)
    return out


def shown_text(text: str | None, *, by_unblinded: bool, viewer_sees_arms: bool) -> str | None:
    """A message's text as a viewer may read it: a text an unblinded reviewer wrote in a blinded
    study may name an arm, so a viewer who sees no arms reads ``HIDDEN_TEXT`` instead."""
    if by_unblinded and not viewer_sees_arms:
        return HIDDEN_TEXT
    return text


def thread_states(messages: pd.DataFrame, *, today: dt.date) -> pd.DataFrame:
    """One row per query from its messages (id, thread_id, at, email, role, kind, site_id,
    entity, natural_key, audience, text; a query's first message has kind "query" and is its own
    thread): its state after the latest message, who opened it and when, the latest message and
    its age in days (``today`` minus the opening date). Open queries first, oldest first."""
    columns = [
        "thread_id", "site_id", "entity", "natural_key", "audience", "opened_by", "opened_at",
        "question", "state", "last_at", "last_by", "messages", "age_days",
    ]  # fmt: skip
    if messages.empty:
        return pd.DataFrame(columns=columns)
    ordered = messages.sort_values("id")
    threads = ordered.assign(thread_id=ordered["thread_id"].fillna(ordered["id"]).astype(int))
    opening = threads[threads["kind"] == QUERY].set_index("thread_id")
    grouped = threads.groupby("thread_id", sort=False)
    last = grouped.tail(1).set_index("thread_id")
    found = pd.DataFrame(
        {
            "site_id": opening["site_id"],
            "entity": opening["entity"],
            "natural_key": opening["natural_key"],
            "audience": opening["audience"],
            "opened_by": opening["email"],
            "opened_at": pd.to_datetime(opening["at"], utc=True),
            "question": opening["text"],
        }
    )
    found["state"] = last["kind"].map(STATE_AFTER).reindex(found.index)
    found["last_at"] = pd.to_datetime(last["at"], utc=True).reindex(found.index)
    found["last_by"] = last["email"].reindex(found.index)
    found["messages"] = grouped.size().reindex(found.index).astype(int)
    opened_on = found["opened_at"].dt.date
    found["age_days"] = [(today - day).days for day in opened_on]
    found = found.reset_index()
    order = found.assign(_closed=found["state"] == "closed").sort_values(
        ["_closed", "opened_at", "thread_id"], kind="stable"
    )
    return order[columns].reset_index(drop=True)
