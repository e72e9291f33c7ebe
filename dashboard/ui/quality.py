"""The Site risk page's form to record what was found and done about a QTL excursion: the write
goes through ``dashboard.quality`` (kept, audited), then the page's cached view is dropped so the
excursion shows its new state at once."""

import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from dashboard import access
from dashboard.db import session_scope
from dashboard.markdown import plain
from dashboard.metrics.kri_catalogue import QTL_BY_ID
from dashboard.quality import QualityError, evaluate_excursion
from dashboard.ui import loaders
from dashboard.ui.shell import PageContext

# Who may evaluate a study-level limit: those who see every site of it (a site's investigator
# sees the limit, not the study's decision about it).
EVALUATORS = (access.ADMIN, access.SPONSOR, access.MONITOR)


def _name(parameter: str) -> str:
    qtl = QTL_BY_ID.get(parameter)
    return qtl.name if qtl else parameter


def may_evaluate(ctx: PageContext) -> bool:
    return ctx.user.role in EVALUATORS and not ctx.restricted


def excursion_form(ctx: PageContext, open_excursions: pd.DataFrame) -> None:
    """A form to record an open excursion's evaluation and action, and close it if done."""
    numbers = {c.id: c.number for c in ctx.cuts}  # the study's own count, as users know its cuts
    labels = {
        int(row["id"]): f"Excursion {int(row['id'])}: {_name(row['parameter'])}, first over in "
        f"cut {numbers.get(int(row['cut_id']), int(row['cut_id']))}"
        for row in open_excursions.to_dict("records")
    }
    with st.form("qtl_evaluation", clear_on_submit=True):
        st.markdown("**Record an evaluation**")
        picked = st.selectbox("Excursion", list(labels), format_func=labels.__getitem__)
        evaluation = st.text_area("What was found", max_chars=2000)
        action = st.text_area("What was done", max_chars=2000)
        close = st.checkbox("Close the excursion (the action is complete)")
        if not st.form_submit_button("Record"):
            return
    if picked is None:
        return
    try:
        with session_scope(loaders.engine_for(ctx.db_url)) as session:
            evaluate_excursion(
                session,
                study_id=ctx.study_id,
                excursion_id=int(picked),
                evaluation=evaluation,
                action=action,
                close=close,
                email=ctx.user.email,
            )
    except QualityError as error:
        st.error(plain(error))
        return
    except SQLAlchemyError:
        st.error("The database refused the change: nothing was recorded. Try again.")
        return
    st.cache_data.clear()
    st.success(f"Excursion {picked}: evaluation recorded" + (" and closed." if close else "."))
    st.rerun()
