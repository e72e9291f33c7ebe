"""Review in the pages (issue #20): the "Review as" picker, each listed record's review state for
the chosen role, and tick-to-mark.

- ``review_as(ctx)`` draws the picker in the sidebar and returns the ``Reviewer``: the role whose
  states are shown, and whether the user may mark in it. The choice is kept under ``ROLE_KEY``
  across pages. A user whose access role makes no marks (an investigator) sees the medical
  monitor's states, read-only.
- ``states(ctx, role, entity, keys=...)`` reads the states (cached in ``dashboard.ui.views``,
  keyed by the review log's version too, so a mark made in any session shows everywhere).
- ``with_review(frame, found)`` adds the review columns to a listing; ``review_table`` draws it
  with a "Reviewed" tick box per row (the only editable column), the filter "Only unreviewed /
  changed since review" and "Mark all shown reviewed". A tick writes through
  ``dashboard.review.mark`` (an untick withdraws the mark), and the page runs again; a refused
  write is said in words beside the listing.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from dashboard.db import session_scope
from dashboard.results.review import (
    ENTITIES,
    MEDICAL_MONITOR,
    ROLE_NAMES,
    STATE_REVIEWED,
    STATE_UNREVIEWED,
)
from dashboard.review import ReviewRefused, mark, review_roles
from dashboard.ui import loaders, views
from dashboard.ui.shell import PageContext
from dashboard.views import review as review_view
from dashboard.views.review import ReviewCounts

ROLE_KEY = "review_role"  # the chosen review role, kept across pages
_PICKER_KEY = "_review_role_picker"  # the picker's own state (dropped on pages without it)
_GENERATION_KEY = "_review_generation"  # bumped by every write: the tick boxes start afresh
_NOTICE_KEY = "_review_notice"  # (listing, level, message) to show after the write's rerun
EDITOR_PREFIX = "review_editor"  # an editor's key: f"{EDITOR_PREFIX}_{name}_{generation}"
FILTER_PREFIX = "review_only"  # the filter's key: f"{FILTER_PREFIX}_{name}"

# The review columns a listing gets (``with_review``).
REVIEWED = "Reviewed"
STATE = "Review"
BY = "Reviewed by"
AT = "Reviewed at"
REVIEW_COLUMNS = (REVIEWED, STATE, BY, AT)


@dataclass(frozen=True)
class Reviewer:
    """Whose review states a page shows, and whether the user may mark in that role."""

    role: str
    can_mark: bool

    @property
    def name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)


def _default_role(roles: Sequence[str]) -> str:
    return MEDICAL_MONITOR if MEDICAL_MONITOR in roles or not roles else roles[0]


def reviewer(ctx: PageContext) -> Reviewer:
    """The role chosen (kept across pages), without drawing the picker."""
    roles = review_roles(ctx.user.role)
    if not roles:
        return Reviewer(MEDICAL_MONITOR, can_mark=False)
    kept = st.session_state.get(ROLE_KEY)
    if kept not in roles:
        kept = _default_role(roles)
        st.session_state[ROLE_KEY] = kept
    return Reviewer(str(kept), can_mark=True)


def _on_role_change() -> None:
    st.session_state[ROLE_KEY] = st.session_state.get(_PICKER_KEY)


def review_as(ctx: PageContext) -> Reviewer:
    """The "Review as" picker in the sidebar (the review roles the user's access role allows);
    returns the chosen ``Reviewer``."""
    chosen = reviewer(ctx)
    roles = review_roles(ctx.user.role)
    if not roles:
        st.sidebar.caption(
            f"Review states shown: the {chosen.name.lower()}'s. Your role makes no review marks."
        )
        return chosen
    st.session_state[_PICKER_KEY] = chosen.role
    st.sidebar.selectbox(
        "Review as",
        roles,
        key=_PICKER_KEY,
        format_func=lambda r: ROLE_NAMES.get(r, r),
        on_change=_on_role_change,
        help="Each role keeps its own review marks: the states shown and the ticks you make are "
        "this role's.",
    )
    return chosen


def log_version(ctx: PageContext) -> int:
    """The review log's version for the study (not cached: it tells the caches of a new mark)."""
    with loaders.session_for(ctx.db_url) as session:
        return review_view.log_version(session, study_id=ctx.study_id)


def states(
    ctx: PageContext,
    role: str,
    entity: str,
    *,
    keys: Sequence[str] | None = None,
    serious_only: bool = False,
) -> pd.DataFrame:
    """The review states (``views.review.STATE_FRAME``) of the records of ``entity`` in view
    (those of ``keys`` only, where given) for ``role``."""
    return views.review_states(
        ctx.db_url,
        ctx.cut_id,
        log_version(ctx),
        ctx.view,
        entity,
        role,
        None if keys is None else tuple(sorted(set(keys))),
        serious_only,
    )


def sae_counts(ctx: PageContext, role: str) -> ReviewCounts:
    """The SAEs in view that need review in ``role`` (``views.review.sae_counts``)."""
    return views.review_sae_counts(ctx.db_url, ctx.cut_id, log_version(ctx), ctx.view, role)


def _when(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def with_review(
    frame: pd.DataFrame, found: pd.DataFrame, *, key: str = "natural_key"
) -> pd.DataFrame:
    """``frame`` (a listing with the records' natural keys in ``key``) with ``REVIEW_COLUMNS``
    from ``found`` (``states``): Reviewed (reviewed in the version the record has now), the
    state in words, who reviewed it and when (kept for a record changed since)."""
    by_key = found.drop_duplicates("natural_key").set_index("natural_key")
    keys = frame[key]
    state = keys.map(by_key["review_state"]).fillna(STATE_UNREVIEWED)
    out = frame.copy()
    out[REVIEWED] = (state == STATE_REVIEWED).astype(bool)
    out[STATE] = state.astype(object)
    out[BY] = keys.map(by_key["reviewed_by"]).astype(object)
    out[AT] = [_when(v) for v in keys.map(by_key["reviewed_at"])]
    return out


def review_column_config(who: Reviewer) -> dict[str, Any]:
    """The review columns' headers, each with its help on hover."""
    return {
        REVIEWED: st.column_config.CheckboxColumn(
            REVIEWED,
            help=f"Tick to mark the record reviewed as {who.name}; untick to withdraw the mark"
            if who.can_mark
            else f"Reviewed by the {who.name.lower()} in the version it has now",
            pinned=True,
            # Narrow, as the state beside it: the listing's own columns stay in view at 1024 px.
            width="small",
        ),
        STATE: st.column_config.TextColumn(
            STATE,
            help=f"The {who.name.lower()}'s review: unreviewed, reviewed, or changed since "
            "review (a later data cut changed the record after it was reviewed)",
            width="small",
        ),
        BY: st.column_config.TextColumn(
            BY, help="Who last marked the record reviewed in this role (e-mail)"
        ),
        AT: st.column_config.TextColumn(AT, help="When the mark was made (UTC)"),
    }


def editor_key(name: str) -> str:
    """The widget key of listing ``name``'s tick boxes at this run (tests seed edits by it)."""
    return f"{EDITOR_PREFIX}_{name}_{st.session_state.get(_GENERATION_KEY, 0)}"


def write_marks(
    ctx: PageContext, who: Reviewer, entity: str, name: str, ticks: dict[str, bool]
) -> None:
    """Mark (or unmark: False) the records of ``entity`` named in ``ticks`` as ``who``, then
    run the page again; what was done (or why not) is said by ``show_notice(name)``."""
    marked = [k for k, on in ticks.items() if on]
    withdrawn = [k for k, on in ticks.items() if not on]
    try:
        with session_scope(loaders.engine_for(ctx.db_url)) as session:
            for keys, reviewed in ((marked, True), (withdrawn, False)):
                if keys:
                    mark(
                        session,
                        user=ctx.user,
                        study_id=ctx.study_id,
                        entity=entity,
                        keys=keys,
                        role=who.role,
                        reviewed=reviewed,
                    )
    except ReviewRefused as refusal:
        st.session_state[_NOTICE_KEY] = (name, "error", str(refusal))
    else:
        noun = ENTITIES[entity] + ("s" if len(ticks) != 1 else "")
        done = []
        if marked:
            done.append(f"{len(marked)} marked reviewed")
        if withdrawn:
            done.append(f"{len(withdrawn)} mark{'s' if len(withdrawn) != 1 else ''} withdrawn")
        st.session_state[_NOTICE_KEY] = (
            name,
            "success",
            f"{len(ticks)} {noun}: {', '.join(done)} as {who.name}.",
        )
    # A new editor: the edits just written are the data now, and the rows may have moved.
    st.session_state[_GENERATION_KEY] = st.session_state.get(_GENERATION_KEY, 0) + 1
    st.rerun()


def show_notice(name: str) -> None:
    """What the last write of listing ``name`` did, or why it was refused (once)."""
    notice = st.session_state.get(_NOTICE_KEY)
    if isinstance(notice, tuple) and notice[0] == name:
        st.session_state.pop(_NOTICE_KEY)
        (st.error if notice[1] == "error" else st.success)(notice[2])


def review_table(
    ctx: PageContext,
    who: Reviewer,
    table: pd.DataFrame,
    *,
    entity: str,
    name: str,
    column_config: dict[str, Any] | None = None,
    key: str = "natural_key",
    style: Callable[[pd.DataFrame], pd.DataFrame | Styler] | None = None,
    offer_filter: bool = True,
    offer_mark_all: bool = True,
) -> pd.DataFrame:
    """Draw ``table`` (``with_review`` columns and the records' keys in ``key``, not shown) with
    a tick box per row where the user may mark; ``style`` dresses the frame drawn (a Styler).
    Returns the rows shown (after the filter), keys included."""
    show_notice(name)
    if offer_filter:
        only = st.toggle(
            "Only unreviewed / changed since review",
            key=f"{FILTER_PREFIX}_{name}",
            help=f"Hide the records the {who.name.lower()} reviewed in their present version.",
        )
        if only:
            table = table[table[STATE] != STATE_REVIEWED]
    table = table.reset_index(drop=True)
    if table.empty:
        st.success(f"Every record here is reviewed by the {who.name.lower()}.")
        return table
    marks = [REVIEWED, STATE] if who.can_mark else [STATE]
    others = [c for c in table.columns if c not in (*REVIEW_COLUMNS, key)]
    # After the subject code where the listing has one (its key, pinned), else first.
    lead = [c for c in others if str(c).lower() == "usubjid"][:1]
    rest = [c for c in others if c not in lead]
    shown = table[[*lead, *marks, *rest, BY, AT]]
    drawn = style(shown) if style is not None else shown
    config = {**(column_config or {}), **review_column_config(who)}
    if not who.can_mark:
        st.dataframe(drawn, hide_index=True, width="stretch", column_config=config)
        return table
    editor = editor_key(name)
    st.data_editor(
        drawn,
        hide_index=True,
        width="stretch",
        column_config=config,
        disabled=[c for c in shown.columns if c != REVIEWED],
        key=editor,
    )
    keys = table[key].tolist()
    edits = st.session_state.get(editor) or {}
    ticks: dict[str, bool] = {}
    for row, values in dict(edits.get("edited_rows") or {}).items():
        position = int(row)
        if REVIEWED in values and 0 <= position < len(keys):
            wanted = bool(values[REVIEWED])
            if wanted != bool(table[REVIEWED].iloc[position]):
                ticks[str(keys[position])] = wanted
    pending = [str(k) for k, done in zip(keys, table[REVIEWED], strict=True) if not done]
    if offer_mark_all and st.button(
        f"Mark all shown reviewed ({len(pending)})",
        key=f"review_all_{name}",
        disabled=not pending,
        help=f"Mark every record listed here reviewed as {who.name}.",
    ):
        ticks.update(dict.fromkeys(pending, True))
    if ticks:
        write_marks(ctx, who, entity, name, ticks)
    return table
