"""Queries (issue #20): the questions raised on records, by site, age and state (open ones
first, the oldest first), each query's thread with the record it is on, and the forms that
answer, close, reopen and raise them. Site users see and answer only their sites' queries."""

import streamlit as st

from dashboard.results.review import AUDIENCES, ENTITIES, QUERY_STATES
from dashboard.ui import queries
from dashboard.ui.links import subject_url
from dashboard.ui.shell import page_context, page_header
from dashboard.views.format import plural

context = page_context()
page_header("Queries", context)
queries.flash()

found = queries.load_queries(context)
if found.empty:
    st.info("No query in this study at the sites in view yet.")
else:
    state_pick, site_pick, audience_pick = st.columns(3)
    states = state_pick.multiselect(
        "State", QUERY_STATES, placeholder="Every state", key="queries_states"
    )
    sites = site_pick.multiselect(
        "Site", sorted(found["site_id"].dropna().unique()), placeholder="Every site",
        key="queries_sites",
    )  # fmt: skip
    audiences = audience_pick.multiselect(
        "Addressed to", list(AUDIENCES), format_func=AUDIENCES.__getitem__,
        placeholder="Everyone", key="queries_audiences",
    )  # fmt: skip
    shown = queries.filtered(found, states=states, sites=sites, audiences=audiences)
    open_count = int((found["state"] == "open").sum())
    st.caption(
        f"{plural(len(found), 'query', 'queries')} at the sites in view, {open_count} open; "
        f"{len(shown)} shown. Open queries first, the oldest first; age in days since raised."
    )
    table = queries.listing(shown)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "thread_id": "Query",
            "site_id": "Site",
            "age_days": "Age (days)",
            "state": "State",
            "audience": "To",
            "record": "Record",
            "question": st.column_config.TextColumn("Question", width="large"),
            "last_by": "Last message by",
        },
        key="queries_table",
    )
    if not shown.empty:
        labels = {
            int(t): f"{int(t)} · site {s} · {st_} · {ENTITIES.get(e, e)} {k}"
            for t, s, st_, e, k in shown[
                ["thread_id", "site_id", "state", "entity", "natural_key"]
            ].itertuples(index=False)
        }
        chosen = st.selectbox(
            "Query", list(labels), format_func=labels.__getitem__, key="queries_chosen"
        )
        thread = shown[shown["thread_id"] == chosen].iloc[0]
        st.subheader(f"Query {chosen}: {thread['state']}")
        usubjid = queries.record_subject(context, thread["entity"], thread["natural_key"])
        record = f"{ENTITIES.get(thread['entity'], thread['entity'])} {thread['natural_key']}"
        if usubjid:
            url = subject_url(context.study_id, usubjid, context.url_params)
            st.markdown(f"On {record} of subject [{usubjid}]({url}), site {thread['site_id']}.")
        else:
            st.markdown(f"On {record} (no longer in the latest cut), site {thread['site_id']}.")
        for message in queries.load_thread(context, int(chosen)).itertuples(index=False):
            with st.chat_message("user" if message.role == "site" else "assistant"):
                st.markdown(
                    # The address in code type: markdown would make it a mailto link.
                    f"`{message.email}` ({queries.role_words(str(message.role))}), "
                    f"{message.kind}, {message.at:%d %b %Y %H:%M} UTC"
                )
                st.text(message.text or "")
        queries.step_form(context, thread)

queries.raise_form(context)
