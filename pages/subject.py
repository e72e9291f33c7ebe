"""Subject: one subject's whole record on one screen, opened as ``/subject?study=ID&subject=USUBJID``
(every subject code in a drilldown list links here): identity, a timeline from screening to
disposition, the eligibility findings of a screen failure, the visit schedule, baseline values and
the listings of AEs, dispositions, visits, doses and findings."""

import pandas as pd
import streamlit as st

from dashboard.charts.subject import subject_timeline_chart
from dashboard.markdown import plain
from dashboard.metrics.labs import VITAL_SIGN_RULE
from dashboard.metrics.subject import (
    ADVERSE_EVENT_LABELS,
    DISPOSITION_LABELS,
    ELIGIBILITY_LABELS,
    EXPOSURE_LABELS,
    FINDING_LABELS,
    SCHEDULE_LABELS,
    VISIT_LABELS,
    baseline_values,
    identity_facts,
    listing,
    observed_until,
    timeline_events,
    with_study_days,
)
from dashboard.metrics.visits import NEEDS_ACTION, OVERDUE, scheduled_visits
from dashboard.results.population import SCREEN_FAILURE
from dashboard.ui import review, views
from dashboard.ui.shell import domain_missing, page_context, page_header
from dashboard.ui.subject_labs import draw_values
from dashboard.ui.tables import dashed
from dashboard.ui.visits import kept_window_days, visits_as_of, window_days_setting
from dashboard.views.format import plural
from dashboard.views.subject import out_of_range_sentence

SEARCH_KEY = "subject_search"
AXIS_KEY = "subject_timeline_axis"
MEASUREMENT_KEY = "subject_lab_measurement"
LABS_KEY = "subject_labs"

ctx = page_context()
page_header("Subject", ctx)
who = review.review_as(ctx)

requested = st.query_params.get("subject", "").strip()
search_column, pick_column = st.columns([1, 2])
search = search_column.text_input(
    "Find a subject by code", key=SEARCH_KEY, placeholder="part of a code, e.g. 1015"
)
codes, matching = views.subject_codes(ctx.db_url, ctx.cut_id, ctx.view, search)
picked = pick_column.selectbox(
    f"Subject ({matching} match{'es' if matching != 1 else ''}"
    + (f", the first {len(codes)} listed" if matching > len(codes) else "")
    + ")",
    codes,
    index=codes.index(requested) if requested in codes else None,
    placeholder="Pick a subject",
)
if picked is not None and picked != requested:
    st.query_params["subject"] = requested = picked

if not requested:
    st.info(
        "Pick a subject above, or follow a subject code from any list in the app (screen-failure "
        "drilldown, site subjects, visit schedule): each opens the subject's page."
    )
    st.stop()

record = views.subject_record(ctx.db_url, ctx.cut_id, ctx.view, requested)
if record is None:
    where = "at the selected sites of" if ctx.scope else "in"
    st.warning(
        f"No subject **{plain(requested)}** {where} study {plain(ctx.study_id)}. Check the code (the picker "
        "above lists the study's subjects)" + (", or clear the site filter." if ctx.scope else ".")
    )
    st.stop()

day_one = record.enrollment_date


def reviewed_listing(
    frame: pd.DataFrame, dates: dict[str, str], labels: dict[str, str], entity: str
) -> None:
    """One of the subject's listings with each record's review state for the chosen role, and a
    tick box per record where the user may mark."""
    shown = listing(with_study_days(frame, day_one=day_one, dates=dates), labels)
    keys = frame["natural_key"].reset_index(drop=True)
    found = review.states(ctx, who.role, entity, keys=keys.dropna().tolist())
    review.review_table(
        ctx,
        who,
        review.with_review(shown.assign(natural_key=keys.to_numpy()), found),
        entity=entity,
        name=f"subject_{entity}",
        style=dashed,
        offer_filter=False,
    )


facts = identity_facts(
    site_id=record.site_id,
    arm=record.arm,
    actual_arm=record.actual_arm,
    population=record.population,
    status=record.status,
    age=record.age,
    age_unit=record.age_unit,
    sex=record.sex,
)
st.subheader(plain(record.usubjid))
# The subject's own review state for the chosen role, and a button to mark it.
subject_review = review.with_review(
    pd.DataFrame({"natural_key": [record.usubjid]}),
    review.states(ctx, who.role, "subject", keys=[record.usubjid]),
).iloc[0]
review_line = st.container(horizontal=True, vertical_alignment="center")
state_word = str(subject_review[review.STATE])
review_line.badge(
    f"Subject review ({who.name}): {state_word}",
    color="green" if subject_review[review.REVIEWED] else "orange",
    help=(
        f"Reviewed by {subject_review[review.BY]} at {subject_review[review.AT]}"
        if pd.notna(subject_review[review.BY])
        else f"Not reviewed by the {who.name.lower()} yet"
    ),
)
if who.can_mark:
    reviewed_now = bool(subject_review[review.REVIEWED])
    if review_line.button(
        "Withdraw subject review" if reviewed_now else "Mark subject reviewed",
        key="review_subject_button",
        type="secondary",
    ):
        review.write_marks(ctx, who, "subject", "subject", {record.usubjid: not reviewed_now})
review.show_notice("subject")
# Columns as wide as their values, so an arm name is not cut short.
widths = [max(len(value), len(label), 4) for label, value in facts.items()]
for column, (label, value) in zip(st.columns(widths), facts.items(), strict=True):
    column.metric(plain(label), plain(value))
dates = [
    f"screened {record.screening_dtc or 'date unknown'}",
    f"consent {record.consent_dtc}" if record.consent_dtc else None,
    f"day 1 (RFSTDTC) {record.enrollment_dtc}" if record.enrollment_dtc else "no day 1",
    f"first dose {record.first_dose_dtc}" if record.first_dose_dtc else None,
]
others = [
    f"SUBJID {record.subjid}" if record.subjid else None,
    f"population: {record.population.lower()}",
    record.country,
    record.race,
    record.ethnicity,
]
# Dates, codes, country, race: as the imported files give them, shown as text.
st.caption(" · ".join(plain(p) for p in [*dates, *others] if p))
if ctx.study.counts_as_blinded:
    blinding = (
        "The study is blinded"
        if ctx.study.is_blinded
        else "The study's blinding is unknown, so it counts as blinded"
    )
    st.caption(
        f"{blinding}: the arm is shown because you are unblinded."
        if ctx.shows_arms
        else f"{blinding}: the subject's arm is shown only to unblinded users."
    )

as_of, as_of_label = visits_as_of(ctx)
window_days = kept_window_days()  # the setting is drawn with the schedule, below the timeline
# Without SV nothing is known to be held: a schedule would call every visit overdue.
has_visits = ctx.latest_cut is None or "SV" in ctx.latest_cut.domains
schedule = (
    views.subject_schedule(ctx.db_url, ctx.cut_id, ctx.view, record.usubjid, as_of, window_days)
    if day_one is not None and has_visits
    else None
)
events = timeline_events(
    day_one=day_one,
    screening_date=record.screening_date,
    consent_dtc=record.consent_dtc,
    first_dose_date=record.first_dose_date,
    dispositions=record.dispositions,
    exposures=record.exposures,
    visits=record.visits,
    adverse_events=record.adverse_events,
    schedule=schedule,
    until=observed_until(status=record.status, dispositions=record.dispositions, cutoff=as_of),
)
st.subheader("Timeline")
if events.empty:
    st.info("Nothing in this subject's record carries a date: there is no timeline to draw.")
else:
    on_dates = (
        day_one is None
        or st.radio(
            "Axis",
            ["Study day", "Date"],
            horizontal=True,
            key=AXIS_KEY,
            label_visibility="collapsed",
        )
        == "Date"
    )
    st.altair_chart(
        subject_timeline_chart(events, day_one=day_one, axis="date" if on_dates else "day"),
        width="stretch",
    )
    st.caption(
        "AE bars run from onset to end, coloured by severity; a red triangle marks a serious AE."
        + ("" if day_one is not None else " This subject has no day 1: dates only."),
        help="Study days count from day 1, the reference start date (RFSTDTC); there is no day 0 "
        "(the day before day 1 is day -1). An ongoing AE runs to the last disposition record, "
        "else the cut-off. Partial dates are placed on the first day of their period.",
    )

if record.population == SCREEN_FAILURE or not record.eligibility.empty:
    st.subheader("Eligibility")
    if not record.eligibility.empty:
        st.markdown(f"Criteria **not met** ({len(record.eligibility)}):")
        reviewed_listing(record.eligibility, {}, ELIGIBILITY_LABELS, "ie")
    elif not domain_missing(
        ctx, "IE", "which criteria this screen failure did not meet is unknown"
    ):
        st.info("No eligibility finding (IE) is recorded for this screen failure.")

if day_one is not None:
    st.subheader("Visit schedule")
    if domain_missing(ctx, "SV", "which planned visits were held is unknown"):
        pass
    elif schedule is None or schedule.empty:
        planned = scheduled_visits(views.planned_schedule(ctx.db_url, ctx.cut_id, ctx.view))
        st.info(
            "No planned visit schedule for this study (no TV domain with planned days, and the "
            "study defines none): only the visits held are listed below."
            if planned.empty
            else "This subject is not on the visit schedule (only enrolled subjects are)."
        )
    else:
        with st.columns([1, 3])[0]:
            window_days_setting()
        due = schedule[schedule["status"].isin(NEEDS_ACTION)]
        if not due.empty:
            overdue = (due["status"] == OVERDUE).sum()
            st.warning(
                f"{plural(int(overdue), 'visit')} overdue and {len(due) - overdue} due on {as_of_label}: "
                + plain(
                    ", ".join(
                        f"{v} ({s})" for v, s in zip(due["visit"], due["status"], strict=True)
                    )
                )
            )
        st.dataframe(dashed(listing(schedule, SCHEDULE_LABELS)), hide_index=True, width="stretch")
        st.caption(
            f"Status on {as_of_label}. Due dates from day 1 "
            f"({day_one:%d %b %Y}); visits held outside the window are marked. Visits planned "
            "only under a condition (early termination, unscheduled) are not on the schedule."
        )

st.subheader("Baseline values")
baseline = baseline_values(record.findings)
if baseline.empty:
    st.info(
        "No finding of this subject is flagged baseline"
        + (
            " (a screen failure has none): its screening values are under All findings below."
            if record.population == SCREEN_FAILURE and not record.findings.empty
            else "."
        )
    )
else:
    st.dataframe(
        dashed(
            listing(
                with_study_days(baseline, day_one=day_one, dates={"date": "study_day"}),
                FINDING_LABELS,
            )
        ),
        hide_index=True,
        width="stretch",
    )


# In a keyed container (class st-key-subject_labs): the browser tests find the section by it.
with st.container(key=LABS_KEY):
    st.subheader("Lab and vital signs over time")
    lab_values = views.subject_labs(ctx.db_url, ctx.cut_id, ctx.view, record.usubjid)
    if lab_values.measurements.empty:
        st.info(
            "No laboratory (LB) or vital-sign (VS) value of this subject is read here: values over "
            "time are shown for the safety population, as on the Labs page."
            + (
                f" Its {plural(lab_values.other_findings, 'LB or VS finding')} are under All "
                "findings below."
                if lab_values.other_findings
                else ""
            )
        )
    else:
        labels = lab_values.measurements["label"].tolist()
        counts = dict(zip(labels, lab_values.measurements["records"], strict=True))
        domains = dict(zip(labels, lab_values.measurements["domain"], strict=True))
        with st.columns([2, 1])[0]:
            measurement = st.selectbox(
                "Measurement",
                labels,
                index=labels.index(lab_values.default_measurement or labels[0]),
                format_func=lambda label: (
                    f"{'Vital sign' if domains[label] == 'VS' else 'Lab'}: {label} "
                    f"({plural(int(counts[label]), 'record')})"
                ),
                # One key per subject: another subject's pick is not carried over.
                key=f"{MEASUREMENT_KEY}_{record.usubjid}",
            )
        series = lab_values.series(measurement)
        if series.empty:
            st.info(f"No numeric value of {plain(measurement)} for this subject: nothing to draw.")
        else:
            st.markdown(plain(out_of_range_sentence(series)))
            draw_values(series, lab_values.aes_beside(series))
            st.caption(
                "The shaded band is the normal range of each record (vital signs: reference limits, "
                "SDTM gives them none); a point's colour is its class (the lab's LOW/HIGH flag where "
                "given). The subject's AEs are the bars beneath, on the same study days; an AE "
                "without an end date runs to the last value shown."
                + (
                    f" {plural(lab_values.aes_not_placed, 'AE')} without an onset day "
                    f"{'is' if lab_values.aes_not_placed == 1 else 'are'} not drawn."
                    if lab_values.aes_not_placed
                    else ""
                ),
                help=VITAL_SIGN_RULE,
            )


def record_table(frame: pd.DataFrame, dates: dict[str, str], labels: dict[str, str]) -> None:
    """One of the subject's listings, with study days beside the dates named, as labelled."""
    st.dataframe(
        dashed(listing(with_study_days(frame, day_one=day_one, dates=dates), labels)),
        hide_index=True,
        width="stretch",
    )


st.subheader("Adverse events")
if not domain_missing(ctx, "AE", "adverse events are unknown"):
    if record.adverse_events.empty:
        st.info("No adverse event recorded for this subject.")
    else:
        reviewed_listing(record.adverse_events, {"end_date": "end_day"}, ADVERSE_EVENT_LABELS, "ae")

st.subheader("Dispositions")
if not domain_missing(ctx, "DS", "the subject's disposition is unknown"):
    if record.dispositions.empty:
        st.info("No disposition record for this subject.")
    else:
        reviewed_listing(record.dispositions, {"date": "study_day"}, DISPOSITION_LABELS, "ds")

st.subheader("Visits held")
if not domain_missing(ctx, "SV", "the visits held are unknown"):
    if record.visits.empty:
        st.info("No visit (SV) recorded for this subject.")
    else:
        record_table(record.visits, {"date": "study_day"}, VISIT_LABELS)

if not record.exposures.empty:
    st.subheader("Doses")
    record_table(
        record.exposures, {"start_date": "start_day", "end_date": "end_day"}, EXPOSURE_LABELS
    )

if not record.findings.empty:
    with st.expander(f"All findings ({len(record.findings)})"):
        record_table(record.findings, {"date": "study_day"}, FINDING_LABELS)
