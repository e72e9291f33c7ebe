"""The population rules of DESIGN.md, at their boundaries and on real SDTM DM data."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from dashboard.metrics.population import DispositionEvent, classify_subject, subject_status
from dashboard.results.population import ENROLLED, IN_SCREENING, NOT_ASSIGNED, SCREEN_FAILURE


@pytest.mark.parametrize(
    ("arm_code", "arm", "armnrs", "ds_failure", "rfstdtc", "expected"),
    [
        ("SCRNFAIL", "Screen Failure", None, False, None, SCREEN_FAILURE),
        ("Scrnfail", "Screen Failure", None, False, None, SCREEN_FAILURE),  # CDISC pilot spelling
        ("", "", "SCREEN FAILURE", False, None, SCREEN_FAILURE),  # SDTMIG 3.3: blank ARM + ARMNRS
        (None, None, "screen failure", False, None, SCREEN_FAILURE),
        ("", "", None, True, None, SCREEN_FAILURE),  # DS only
        ("PBO", "Placebo", None, True, "2014-01-02", ENROLLED),  # rescreened, then assigned
        ("PBO", "Placebo", None, False, None, ENROLLED),
        ("", "", None, False, "2014-01-02", ENROLLED),  # single group: an enrollment date
        ("NOTASSGN", "Not Assigned", None, False, None, NOT_ASSIGNED),
        ("", "", "NOT ASSIGNED", False, None, NOT_ASSIGNED),
        ("", "", None, False, None, IN_SCREENING),
        ("  ", " ", "", False, "", IN_SCREENING),
    ],
)
def test_classify_subject(
    arm_code: str | None,
    arm: str | None,
    armnrs: str | None,
    ds_failure: bool,
    rfstdtc: str | None,
    expected: str,
) -> None:
    assert (
        classify_subject(
            arm_code=arm_code,
            arm=arm,
            arm_not_assigned_reason=armnrs,
            has_screen_failure_disposition=ds_failure,
            enrollment_dtc=rfstdtc,
        )
        == expected
    )


def _event(
    term: str, day: int, category: str = "DISPOSITION EVENT", epoch: str = "TREATMENT"
) -> DispositionEvent:
    return DispositionEvent(category, term, epoch, dt.date(2025, 1, 1) + dt.timedelta(days=day))


def test_subject_status() -> None:
    assert subject_status(SCREEN_FAILURE, [_event("SCREEN FAILURE", 1)]) is None
    assert subject_status(ENROLLED, []) == "ONGOING"
    # Protocol milestones and screening-epoch records do not decide the status.
    assert subject_status(ENROLLED, [_event("RANDOMIZED", 1, "PROTOCOL MILESTONE")]) == "ONGOING"
    assert subject_status(ENROLLED, [_event("COMPLETED", 5, epoch="SCREENING")]) == "ONGOING"
    # End of treatment and end of study both COMPLETED: one completer.
    assert (
        subject_status(
            ENROLLED, [_event("COMPLETED", 5), _event("COMPLETED", 9, epoch="FOLLOW-UP")]
        )
        == "COMPLETED"
    )
    # The latest record wins.
    assert (
        subject_status(ENROLLED, [_event("COMPLETED", 5), _event("ADVERSE EVENT", 9)])
        == "DISCONTINUED"
    )


def _read_xpt(path: Path) -> pd.DataFrame:
    frame = pd.read_sas(path, format="xport", encoding="cp1252")
    return frame


def _classify_dm(dm: pd.DataFrame, ds: pd.DataFrame) -> pd.Series:
    failed_by_ds = set(ds.loc[ds["DSDECOD"].str.upper() == "SCREEN FAILURE", "USUBJID"])
    get = dm.get
    return pd.Series(
        [
            classify_subject(
                arm_code=row.get("ARMCD"),
                arm=row.get("ARM"),
                arm_not_assigned_reason=row.get("ARMNRS") if get("ARMNRS") is not None else None,
                has_screen_failure_disposition=row["USUBJID"] in failed_by_ds,
                enrollment_dtc=row.get("RFSTDTC"),
            )
            for _, row in dm.iterrows()
        ],
        index=dm["USUBJID"],
    )


def test_cdisc_pilot_populations(shared_data: Path) -> None:
    # Known figures from shared/data/README.md: 306 subjects, 52 screen failures (ARMCD Scrnfail),
    # 254 randomized.
    folder = shared_data / "sdtm" / "cdiscpilot01"
    populations = _classify_dm(_read_xpt(folder / "dm.xpt"), _read_xpt(folder / "ds.xpt"))
    assert len(populations) == 306
    assert (populations == SCREEN_FAILURE).sum() == 52
    assert (populations == ENROLLED).sum() == 254


def test_sdtm_msg_populations(shared_data: Path) -> None:
    # Known figures: 18 subjects, 1 screen failure (CDISC015: blank ARM, ARMNRS SCREEN FAILURE).
    folder = shared_data / "sdtm" / "cdisc_msg_v2"
    populations = _classify_dm(_read_xpt(folder / "dm.xpt"), _read_xpt(folder / "ds.xpt"))
    assert len(populations) == 18
    assert populations[populations == SCREEN_FAILURE].index.tolist() == ["CDISC015"]
    assert (populations == ENROLLED).sum() == 17
