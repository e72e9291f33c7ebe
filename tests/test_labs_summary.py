"""The Labs page's load-time counts (issue #21 at scale): what a load stores per subject
(``models.LabSubjectSummary``, ``LabGradeSummary``, ``LiverSummary``) and per site and arm
(``LabCount``) gives every figure the metric functions give from the raw records, on the CDISC
pilot: each LB and VS measurement's range shift, every CTCAE term's grade shift, the abnormal
values, the eDISH points (with and without a time window), for the whole study, one site, and a
blinded viewer. And a study stored before the counts existed says so instead of showing none.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete
from sqlmodel import Session
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.metrics import labs
from dashboard.models import (
    LabBoxStats,
    LabCount,
    LabGradeSummary,
    LabSubjectSummary,
    LiverSummary,
)
from dashboard.queries import labs as lab_queries
from dashboard.report.labs import build_lab_safety
from dashboard.views.context import ViewContext
from dashboard.views.labs import (
    LabsOptions,
    build_labs,
    graded_records,
    hys_law_candidates,
    incidence_subjects,
    lab_measurements,
    measurement_boxes,
    measurement_key,
    measurement_shifts,
    shift_subjects,
)
from dashboard.views.reader import Reader
from tests.databases import copy_database

STUDY = "CDISCPILOT01"
CONTEXTS = {
    "every site": ViewContext(study_id=STUDY),
    "site 701": ViewContext(study_id=STUDY, scope=("701",)),
    "blinded": ViewContext(study_id=STUDY, shows_arms=False),
}


def _raw(session: Session, ctx: ViewContext, domain: str) -> pd.DataFrame:
    """The domain's records as the metric functions take them, read raw (no load-time count)."""
    records = Reader(session, ctx)(lab_queries.lab_records, domain=domain)
    return labs.with_measurement(labs.with_vital_sign_limits(records))


def _listed(
    session: Session,
    ctx: ViewContext,
    domain: str,
    label: str,
    term: str | None,
    cell: tuple[str | None, str | None, str | None] = (None, None, None),
) -> pd.DataFrame:
    """The subjects a click on a shift-table cell lists (None: any arm, baseline or worst)."""
    arm, baseline, worst = cell
    return shift_subjects(
        session,
        ctx,
        domain=domain,
        measurement=label,
        term=term,
        arm=arm,
        baseline=baseline,
        worst=worst,
    )


def _same_subjects(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    columns = labs.SHIFT_SUBJECT_COLUMNS
    left = got[columns].sort_values(["arm", "usubjid"], ignore_index=True)
    right = expected[columns].sort_values(["arm", "usubjid"], ignore_index=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("domain", ["LB", "VS"])
def test_every_shift_table_equals_the_one_counted_from_the_records(
    pilot_db_url: str, context: str, domain: str
) -> None:
    ctx = CONTEXTS[context]
    engine = make_engine(pilot_db_url)
    with Session(engine) as session:
        view = build_labs(session, ctx, LabsOptions(domain=domain))
        records = _raw(session, ctx, domain)
        grades = graded_records(records)
        assert set(view.measurements["label"]) == set(records["measurement"])
        read = Reader(session, ctx)
        compared = 0
        for label in view.measurements["label"]:
            shifts = measurement_shifts(read, view.measurements, label)
            expected = labs.range_shift(records, None, label)
            pd.testing.assert_frame_equal(shifts.range_shift.cells, expected.cells)

            _same_subjects(_listed(session, ctx, domain, label, None), expected.subjects)
            # One cell's subjects, as a click lists them: the largest cell off the diagonal.
            off = expected.cells[expected.cells["baseline"] != expected.cells["worst"]]
            if off["n"].sum() > 0:
                top = off.sort_values("n", ascending=False).iloc[0]
                cell = (str(top["arm"]), str(top["baseline"]), str(top["worst"]))
                listed = _listed(session, ctx, domain, label, None, cell)
                assert len(listed) == int(top["n"])
                _same_subjects(listed, expected.subjects_of(*cell))
            mine = records[records["measurement"] == label]
            terms = sorted(grades.loc[grades["record"].isin(mine.index), "term"].unique())
            for term in terms:
                table = measurement_shifts(read, view.measurements, label, term).grade_shift
                expected_grades = labs.grade_shift(records, grades, None, term, label)
                if expected_grades.subjects.empty:  # graded only at baseline: no table
                    assert table is None or table.cells["n"].sum() == 0
                    continue
                assert table is not None
                pd.testing.assert_frame_equal(table.cells, expected_grades.cells)
                _same_subjects(_listed(session, ctx, domain, label, term), expected_grades.subjects)
            compared += 1
    engine.dispose()
    assert compared == len(view.measurements) > 0


@pytest.mark.parametrize("context", list(CONTEXTS))
def test_abnormal_values_and_edish_equal_those_counted_from_the_records(
    pilot_db_url: str, context: str
) -> None:
    ctx = CONTEXTS[context]
    engine = make_engine(pilot_db_url)
    with Session(engine) as session:
        for domain in ("LB", "VS"):
            view = build_labs(session, ctx, LabsOptions(domain=domain))
            records = _raw(session, ctx, domain)
            expected = labs.abnormal_incidence(records, graded_records(records))
            pd.testing.assert_frame_equal(view.incidence, expected, check_dtype=False)
        lb = _raw(session, ctx, "LB")
        for window in (None, 0, 30):
            view = build_labs(session, ctx, LabsOptions(window_days=window))
            pd.testing.assert_frame_equal(view.edish, labs.edish_points(lb, window))
        if ctx.scope is None and ctx.shows_arms:
            # The pilot's one case: the figure the Done-when names.
            assert view.hys_law == ("01-705-1186",)
        # A click on an abnormal-values cell lists what the records list.
        label = str(view.incidence["measurement"].iloc[0])
        listed = incidence_subjects(
            session, ctx, domain="LB", measurement=label, arm=None, flag="high"
        )
        direct = labs.incidence_subjects(lb, graded_records(lb), label, None, "high")
        pd.testing.assert_frame_equal(listed, direct, check_dtype=False)
    engine.dispose()


@pytest.mark.parametrize("context", ["every site", "blinded"])
def test_the_stored_boxes_equal_those_counted_from_the_values(
    pilot_db_url: str, context: str
) -> None:
    # Every site's boxes are the load's (quartiles do not add over sites); they must equal the
    # boxes of the values read raw, per arm and pooled, with the unscheduled values left out.
    ctx = CONTEXTS[context]
    engine = make_engine(pilot_db_url)
    compared = 0
    with Session(engine) as session:
        read = Reader(session, ctx)
        for domain in ("LB", "VS"):
            measurements = lab_measurements(read, domain)
            for label in measurements["label"]:
                key = measurement_key(measurements, label)
                stored = read(lab_queries.stored_boxes, key=key, pooled=not ctx.shows_arms)
                values = read(lab_queries.lab_values, key=key)
                scheduled = labs.scheduled_values(values)
                expected = labs.box_stats(scheduled)
                boxes, unscheduled = measurement_boxes(read, measurements, label)
                assert not stored.empty or expected.empty
                pd.testing.assert_frame_equal(boxes, expected, check_dtype=False)
                assert unscheduled == len(values) - len(scheduled)
                compared += int(not expected.empty)
    engine.dispose()
    assert compared > 50  # most of the pilot's 64 LB and VS measurements have boxes


def test_a_study_stored_before_the_counts_says_to_import_again(
    pilot_db_url: str, tmp_path: Path
) -> None:
    # What a database upgraded to migration 0007 holds: findings, and no lab counts yet.
    copy = copy_database(pilot_db_url, tmp_path, "before-0007")
    engine = make_engine(copy)
    with Session(engine) as session:
        for table in (LabSubjectSummary, LabGradeSummary, LiverSummary, LabCount, LabBoxStats):
            session.execute(delete(table))
        session.commit()
        view = build_labs(session, ViewContext(study_id=STUDY))
        section = build_lab_safety(session, ViewContext(study_id=STUDY))
        cases = hys_law_candidates(session, ViewContext(study_id=STUDY))
    engine.dispose()
    assert view.summary_missing and view.domains == ()
    # The pack and the command line say so too, rather than "no laboratory data" or no case.
    assert section.summary_missing and cases is None
    result = CliRunner().invoke(app, ["summary", "--json", "--study", STUDY, "--db", copy])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["hys_law_candidates"] is None
    assert "import" in result.stderr and "hys_law_candidates is null" in result.stderr
