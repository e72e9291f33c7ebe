"""DEMO-SCALE: a large synthetic study, generated with numpy and written with bulk inserts.

SYNTHETIC DATA: no real patient is behind any row. For ``n_subjects`` = 50,000 (the default): 200
sites, 3 arms, about 36% screen failures over 12 criteria, about 61% enrolled, a few % still in
screening at the cut-off, about 250,000 adverse events over 25 MedDRA SOCs and 800 PTs, 20 baseline
findings per screened subject (1,000,000), the 8 laboratory tests and total bilirubin at every
visit a treated subject attended after screening (about 1,100,000 more LB records, never baseline:
an LB domain of the size a 200-site study ships) and two data cuts. The same seed gives the same
study. Laboratory values carry a normal range and indicator, VISITNUM and study day; a handful of
subjects (``HYS_LAW_CASES``) are planted potential Hy's law cases for the eDISH plot.

Everything is drawn as numpy arrays (one element per subject, event or finding) and written with
SQLAlchemy Core ``insert(table)`` executemany of plain dicts, in chunks, inside the caller's
transaction: row-by-row ORM adds (``demo._write_study``) are far too slow at this size.

Each subject's population is set by ``metrics.population.classify_subject``'s rules and its status
by ``subject_status``'s (computed here for whole arrays; tests check both against the functions):

- screen failure: no arm, ARMNRS ``SCREEN FAILURE``, a DS ``SCREEN FAILURE`` record and one
  EligibilityFinding per criterion not met (most fail one, about 15% two);
- enrolled: a planned arm and an enrollment date (randomisation); treated once dosed (first dose
  0-3 days after randomisation), with ACTARM = ARM except about 1%;
- in screening: screened so close to the cut-off that no decision is recorded yet.

Site risk (issue #16): protocol deviations (DV) for every enrolled subject at one rate, and one
site planted as an outlier of each of three key risk indicators (``PLANTED_KRI_SITES``); every
other site is drawn alike for those three (AE rate, screen-failure proportion, deviation rate), so
that gsm's adjusted z flags the planted sites and no other beyond chance.

History: an interim cut and the current cut. Rows dated after the interim cut-off are first held by
the current cut; subjects whose population, status, arm or dosing changed after it, and AEs that
ended after it, were updated by the current cut. CutChange rows record added and changed subjects
and AEs.
"""

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, Table, insert, select
from sqlmodel import Session, SQLModel, col

from dashboard.db import delete_study, fill_natural_keys
from dashboard.models import (
    AdverseEvent,
    Arm,
    Criterion,
    CutChange,
    DataCut,
    Disposition,
    EligibilityFinding,
    Exposure,
    Finding,
    ProtocolDeviation,
    Site,
    Study,
    Subject,
    Visit,
)
from dashboard.precomputed import rebuild_precomputed_counts
from dashboard.results.population import ENROLLED, IN_SCREENING, SCREEN_FAILURE

Array = NDArray[Any]

SCALE_STUDY_ID = "DEMO-SCALE"
PLANNED_START = dt.date(2024, 1, 8)
PLANNED_END = dt.date(2026, 12, 31)
INTERIM_CUTOFF = dt.date(2025, 6, 30)
CUTOFF = dt.date(2025, 12, 31)
SOURCE = "dashboard/demo_scale.py"
CHUNK_ROWS = 25_000  # rows per executemany

SCREEN_FAILURE_SHARE = 0.37  # chance a screened subject fails (higher at the planted site)
TWO_CRITERIA_SHARE = 0.15  # failures that fail a second criterion
TARGET_SHARE = 0.66  # planned enrollment / screened: the current cut has not reached it yet
DISCONTINUED_SHARE = 0.13
ACTUAL_ARM_DIFFERS_SHARE = 0.01
DEVIATION_SHARE = 0.003  # enrolled subjects with one screening value outside a rule
AE_PER_SCREENED = 5.0  # expected adverse events per screened subject
SERIOUS_SHARE = 0.02
TREATMENT_DAYS = 84  # daily dosing for 12 weeks
COMPLETION_DAY = 181  # end of study: the month-6 visit

_COUNTRIES = (
    ("USA", 30),
    ("DEU", 14),
    ("FRA", 10),
    ("ESP", 9),
    ("ITA", 8),
    ("GBR", 7),
    ("POL", 7),
    ("CAN", 5),
    ("NLD", 4),
    ("AUS", 4),
    ("BRA", 4),
    ("JPN", 4),
    ("KOR", 3),
    ("CZE", 3),
    ("HUN", 3),
)
_RACES = (
    ("WHITE", 0.72),
    ("BLACK OR AFRICAN AMERICAN", 0.09),
    ("ASIAN", 0.11),
    ("AMERICAN INDIAN OR ALASKA NATIVE", 0.01),
    ("MULTIPLE", 0.02),
    ("NOT REPORTED", 0.05),
)
_ETHNICITIES = (
    ("NOT HISPANIC OR LATINO", 0.85),
    ("HISPANIC OR LATINO", 0.12),
    ("NOT REPORTED", 0.03),
)
_ARMS = (("PBO", "Placebo", 0.0), ("LOW", "Low dose", 50.0), ("HIGH", "High dose", 100.0))

# code, category, wording, rule (on a finding generated below, or AGE), weight among failures.
_CRITERIA: tuple[tuple[str, str, str, str | None, float], ...] = (
    ("INCL01", "INCLUSION", "Age 40 to 80 years at screening", "AGE between 40 and 80", 2.0),
    (
        "INCL02",
        "INCLUSION",
        "Knee osteoarthritis, Kellgren-Lawrence grade 2 or 3 (both knees)",
        "KLGRADE between 2 and 3",
        16.0,
    ),
    (
        "INCL03",
        "INCLUSION",
        "Pain VAS of at least 40 mm in the index knee",
        "VASPAIN >= 40 mm",
        22.0,
    ),
    (
        "INCL04",
        "INCLUSION",
        "Body mass index 18.5 to 35 kg/m2",
        "BMI between 18.5 and 35 kg/m2",
        12.0,
    ),
    ("INCL05", "INCLUSION", "Knee pain for at least 6 months", "PAINDUR >= 6 months", 6.0),
    ("INCL06", "INCLUSION", "Able to follow the visit schedule and diary", None, 3.0),
    ("EXCL01", "EXCLUSION", "Inflammatory arthritis (rheumatoid, psoriatic, gout)", None, 4.0),
    (
        "EXCL02",
        "EXCLUSION",
        "Intra-articular injection in the index knee within 6 months",
        None,
        9.0,
    ),
    ("EXCL03", "EXCLUSION", "Haemoglobin below 10 g/dL", "HGB < 10 g/dL", 2.0),
    ("EXCL04", "EXCLUSION", "eGFR below 45 mL/min/1.73 m2", "EGFR < 45 mL/min/1.73m2", 3.0),
    ("EXCL05", "EXCLUSION", "ALT above 3 x ULN (120 U/L)", "ALT > 120 U/L", 1.5),
    (
        "EXCL06",
        "EXCLUSION",
        "Uncontrolled hypertension (systolic >= 160 mmHg)",
        "SYSBP >= 160",
        7.0,
    ),
)
_CODES = tuple(c[0] for c in _CRITERIA)
# A handful of sites fail one criterion far more often than the others (a training problem, or a
# local population): these criteria, at as many sites drawn by the seed. Their mix of criteria
# differs, not how many they fail, but for the first: the planted screen-failures site (below).
_SITE_OUTLIER_CRITERIA = ("INCL03", "INCL02", "EXCL02", "INCL04", "EXCL06")
_SITE_OUTLIER_FACTOR = 12.0

# Site risk (issue #16): one site planted as an outlier of each key risk indicator, three different
# sites among the first 20 (so that the tests' small builds have them too), each made one of the
# most productive (activated on the first day, productivity at about the 90th percentile of the
# others'), so that its flag rests on many subjects. The other sites are drawn alike for these
# three KRIs: no site-level effect on the AE rate, the screen-failure chance or the deviation rate.
# With 200 sites gsm's over-dispersion adjusted z of each is far past its red threshold (AE rate
# below -2, the other two above 3), and no other site reaches |z| 3 (tests/test_demo_scale.py).
PLANTED_KRI_SITES = {
    "ae_under_reporting": "1004",  # reports a quarter of its AEs (every serious one, and those
    # that led to a withdrawal of the drug)
    "screen_failures": "1011",  # fails INCL03 more, and 60% of its screened fail (37% elsewhere)
    "deviations": "1017",  # four times the deviations per subject-day of the others
}
PLANTED_PRODUCTIVITY = 2.0  # the planted sites' productivity factor (others: lognormal(0, 0.55))
PLANTED_FAILURE_SHARE = 0.60
AE_REPORTED_SHARE = 0.25  # of its AEs the under-reporting site reports (but the two kinds above)
DV_RATE = 1 / 120  # protocol deviations per subject-day on study (enrollment to leaving/cut-off)
DV_FACTOR = 4.0  # at the deviations site
# DVDECOD-like terms and DVCAT (MAJOR: an important deviation), with their relative frequency
# (about a fifth MAJOR); DEMO-MULTI's too (dashboard.demo imports them from here).
DEVIATION_TERMS = (
    ("VISIT OUT OF WINDOW", "MINOR", 8),
    ("ASSESSMENT NOT DONE", "MINOR", 5),
    ("DIARY NOT COMPLETED", "MINOR", 4),
    ("STUDY DRUG STORED OUT OF RANGE", "MINOR", 2),
    ("CONSENT NOT RE-SIGNED AFTER AMENDMENT", "MAJOR", 2),
    ("PROHIBITED MEDICATION TAKEN", "MAJOR", 2),
    ("ELIGIBILITY CRITERION NOT MET", "MAJOR", 1),
)

_DISCONTINUATION_REASONS = (
    ("ADVERSE EVENT", 0.30),
    ("WITHDRAWAL BY SUBJECT", 0.33),
    ("LOST TO FOLLOW-UP", 0.22),
    ("PHYSICIAN DECISION", 0.08),
    ("LACK OF EFFICACY", 0.07),
)
# name, planned study day, jitter (days either side); the screening visit is on the screening date.
_VISITS = (
    ("DAY 1", 1, 0),
    ("WEEK 2", 15, 1),
    ("MONTH 1", 29, 3),
    ("MONTH 3", 85, 5),
    ("MONTH 6 (END OF STUDY)", COMPLETION_DAY, 0),
)

# 25 MedDRA system organ classes with a relative weight for the synthetic PTs filed under them.
_SOCS = (
    ("Blood and lymphatic system disorders", 3),
    ("Cardiac disorders", 4),
    ("Congenital, familial and genetic disorders", 1),
    ("Ear and labyrinth disorders", 2),
    ("Endocrine disorders", 1),
    ("Eye disorders", 3),
    ("Gastrointestinal disorders", 8),
    ("General disorders and administration site conditions", 6),
    ("Hepatobiliary disorders", 2),
    ("Immune system disorders", 1),
    ("Infections and infestations", 8),
    ("Injury, poisoning and procedural complications", 6),
    ("Investigations", 7),
    ("Metabolism and nutrition disorders", 4),
    ("Musculoskeletal and connective tissue disorders", 9),
    ("Neoplasms benign, malignant and unspecified (incl cysts and polyps)", 2),
    ("Nervous system disorders", 6),
    ("Psychiatric disorders", 3),
    ("Renal and urinary disorders", 3),
    ("Reproductive system and breast disorders", 2),
    ("Respiratory, thoracic and mediastinal disorders", 5),
    ("Skin and subcutaneous tissue disorders", 5),
    ("Social circumstances", 1),
    ("Surgical and medical procedures", 2),
    ("Vascular disorders", 3),
)
# The most frequent PTs are real MedDRA terms (most frequent first); the rest are synthetic.
_COMMON_PTS = (
    ("Arthralgia", "Musculoskeletal and connective tissue disorders"),
    ("Headache", "Nervous system disorders"),
    ("Nasopharyngitis", "Infections and infestations"),
    ("Back pain", "Musculoskeletal and connective tissue disorders"),
    ("Nausea", "Gastrointestinal disorders"),
    ("Joint swelling", "Musculoskeletal and connective tissue disorders"),
    ("Upper respiratory tract infection", "Infections and infestations"),
    ("Diarrhoea", "Gastrointestinal disorders"),
    ("Fatigue", "General disorders and administration site conditions"),
    ("Hypertension", "Vascular disorders"),
    ("Dizziness", "Nervous system disorders"),
    ("Pain in extremity", "Musculoskeletal and connective tissue disorders"),
    ("Urinary tract infection", "Infections and infestations"),
    ("Dyspepsia", "Gastrointestinal disorders"),
    ("Cough", "Respiratory, thoracic and mediastinal disorders"),
    ("Fall", "Injury, poisoning and procedural complications"),
    ("Oedema peripheral", "General disorders and administration site conditions"),
    ("Rash", "Skin and subcutaneous tissue disorders"),
    ("Constipation", "Gastrointestinal disorders"),
    ("Influenza", "Infections and infestations"),
    ("Myalgia", "Musculoskeletal and connective tissue disorders"),
    ("Insomnia", "Psychiatric disorders"),
    ("Pruritus", "Skin and subcutaneous tissue disorders"),
    ("Alanine aminotransferase increased", "Investigations"),
    ("Contusion", "Injury, poisoning and procedural complications"),
    ("Abdominal pain upper", "Gastrointestinal disorders"),
    ("Vertigo", "Ear and labyrinth disorders"),
    ("Anaemia", "Blood and lymphatic system disorders"),
    ("Pyrexia", "General disorders and administration site conditions"),
    ("Blood creatinine increased", "Investigations"),
)
N_PTS = 800
_PT_ZIPF_EXPONENT = 1.15  # PT frequency ~ 1 / (rank + 2) ** s: a few common, most rare
_SEVERITIES = np.array(["MILD", "MODERATE", "SEVERE"], dtype=object)
_RELATIONSHIPS = (
    ("NOT RELATED", 0.35),
    ("UNLIKELY RELATED", 0.25),
    ("POSSIBLY RELATED", 0.25),
    ("PROBABLY RELATED", 0.10),
    ("RELATED", 0.05),
)
_NOT_RESOLVED = "NOT RECOVERED/NOT RESOLVED"

# Baseline findings (20 per screened subject): domain, code, name, location, unit, decimals.
_TESTS = (
    ("VS", "HEIGHT", "Height", None, "cm", 0),
    ("VS", "WEIGHT", "Weight", None, "kg", 1),
    ("VS", "BMI", "Body Mass Index", None, "kg/m2", 1),
    ("VS", "SYSBP", "Systolic Blood Pressure", None, "mmHg", 0),
    ("VS", "DIABP", "Diastolic Blood Pressure", None, "mmHg", 0),
    ("VS", "PULSE", "Pulse Rate", None, "beats/min", 0),
    ("VS", "TEMP", "Temperature", None, "C", 1),
    ("LB", "HGB", "Hemoglobin", None, "g/dL", 1),
    ("LB", "ALT", "Alanine Aminotransferase", None, "U/L", 0),
    ("LB", "AST", "Aspartate Aminotransferase", None, "U/L", 0),
    ("LB", "CREAT", "Creatinine", None, "mg/dL", 2),
    ("LB", "EGFR", "Glomerular Filtration Rate, Estimated", None, "mL/min/1.73m2", 0),
    ("LB", "GLUC", "Glucose", None, "mg/dL", 0),
    ("LB", "WBC", "Leukocytes", None, "10^9/L", 1),
    ("LB", "PLAT", "Platelets", None, "10^9/L", 0),
    ("QS", "VASPAIN", "Pain VAS (0-100)", None, "mm", 0),
    ("QS", "WOMACTOT", "WOMAC Total Score (0-96)", None, None, 0),
    ("MK", "KLGRADE", "Kellgren-Lawrence Grade", "LEFT KNEE", None, 0),
    ("MK", "KLGRADE", "Kellgren-Lawrence Grade", "RIGHT KNEE", None, 0),
    ("SC", "PAINDUR", "Duration of Knee Pain", None, "months", 0),
)

# Laboratory normal ranges (issue #21), in the units of ``_TESTS``: (women, men) as (LLN, ULN),
# NaN where the test has no limit on that side. The demo's own, as adult laboratories print them.
_NO_LIMIT = float("nan")
_LAB_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "HGB": ((12.0, 16.0), (13.5, 17.5)),
    "ALT": ((7.0, 40.0), (7.0, 40.0)),
    "AST": ((10.0, 40.0), (10.0, 40.0)),
    "CREAT": ((0.5, 1.0), (0.7, 1.3)),
    "EGFR": ((60.0, _NO_LIMIT), (60.0, _NO_LIMIT)),
    "GLUC": ((70.0, 140.0), (70.0, 140.0)),  # not fasting
    "WBC": ((4.0, 11.0), (4.0, 11.0)),
    "PLAT": ((150.0, 400.0), (150.0, 400.0)),
    "BILI": ((0.2, 1.2), (0.2, 1.2)),
}
# Total bilirubin at every visit after screening (not at screening: the 20 baseline findings per
# subject and Table 1 stay as they were), so that the eDISH plot reads ALT and AST against it.
_BILIRUBIN: tuple[str, str, str, None, str, int] = ("LB", "BILI", "Bilirubin", None, "mg/dL", 2)
# Subjects' own bilirubin stays below this multiple of the ULN but for the planted cases: the
# potential Hy's law cases (ALT or AST >= 3 x ULN and bilirubin >= 2 x ULN) are exactly those.
_BILI_CAP_ULN = 1.9
HYS_LAW_CASES = 5  # planted potential Hy's law cases (fewer where fewer subjects have two visits)


# ---------------------------------------------------------------------------------------------
# Array helpers
# ---------------------------------------------------------------------------------------------


def _day(value: dt.date) -> np.datetime64:
    return np.datetime64(value, "D")


def _iso(days: Array) -> Array:
    """ISO 8601 text of a datetime64[D] array; None where the date is missing (NaT)."""
    text = np.datetime_as_string(days, unit="D").astype(object)
    text[np.isnat(days)] = None
    return text


def _choice(rng: np.random.Generator, options: Sequence[tuple[str, float]], size: int) -> Array:
    """``size`` draws of the options' names with the options' weights (an object array)."""
    names = np.array([name for name, _ in options], dtype=object)
    weights = np.array([weight for _, weight in options], dtype=float)
    return names[rng.choice(len(names), size=size, p=weights / weights.sum())]


def _lab_limits(code: Array, female: Array) -> tuple[Array, Array]:
    """Each row's (LLN, ULN) for its test code and the subject's sex; NaN for other tests."""
    low, high = np.full(len(code), np.nan), np.full(len(code), np.nan)
    for test, ((f_low, f_high), (m_low, m_high)) in _LAB_RANGES.items():
        rows = code == test
        low[rows] = np.where(female[rows], f_low, m_low)
        high[rows] = np.where(female[rows], f_high, m_high)
    return low, high


def _range_columns(value: Array, low: Array, high: Array) -> dict[str, Array]:
    """normal_low, normal_high (None where NaN) and normal_indicator (LOW / HIGH / NORMAL against
    the limits known; None where the row has no limit at all)."""
    indicator = np.where(value < low, "LOW", np.where(value > high, "HIGH", "NORMAL")).astype(
        object
    )
    indicator[np.isnan(low) & np.isnan(high)] = None

    def none_for_nan(limit: Array) -> Array:
        values: Array = limit.astype(object)
        values[np.isnan(limit)] = None
        return values

    return {
        "normal_low": none_for_nan(low),
        "normal_high": none_for_nan(high),
        "normal_indicator": indicator,
    }


def _study_days(dates: Array, day_one: Array) -> Array:
    """--DY (day 1 = the first dose, no day 0) as an object array; None without a first dose."""
    offset = (dates - day_one).astype("timedelta64[D]").astype(np.int64)
    days: Array = np.where(offset >= 0, offset + 1, offset).astype(object)
    days[np.isnat(day_one) | np.isnat(dates)] = None
    return days


def _draw_rows(rng: np.random.Generator, weights: Array) -> Array:
    """One column index per row of ``weights`` (rows need not be normalised; zeros never drawn)."""
    cumulative = weights.cumsum(axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    drawn: Array = (u[:, None] >= cumulative).sum(axis=1)
    return drawn


def _within_group_rank(groups: Array) -> Array:
    """1, 2, 3... within each run of equal values of a sorted array."""
    index = np.arange(len(groups))
    starts = np.ones(len(groups), dtype=bool)
    starts[1:] = groups[1:] != groups[:-1]
    return index - np.maximum.accumulate(np.where(starts, index, 0)) + 1


def _key_to_pk(session: Session, statement: Select[str, int | None]) -> dict[str, int]:
    """{natural key: primary key} from a SELECT of both."""
    return {str(key): int(pk) for key, pk in session.execute(statement).all() if pk is not None}


def _table(model: type[SQLModel]) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def _insert(session: Session, model: type[SQLModel], columns: Mapping[str, Any], n: int) -> int:
    """Insert ``n`` rows given column-wise (numpy arrays or lists of length ``n``, or one value for
    every row) with executemany in chunks; returns ``n``."""
    keys = list(columns)
    statement = insert(_table(model))
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        values: list[Iterable[Any]] = []
        for value in columns.values():
            if isinstance(value, np.ndarray):
                values.append(value[start:stop].tolist())
            elif isinstance(value, list):
                values.append(value[start:stop])
            else:
                values.append(itertools.repeat(value, stop - start))
        session.execute(
            statement, [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=False)]
        )
    return n


# ---------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------


@dataclass
class _Design:
    """The study-level rows as written: site arrays (by site index), criterion pks, the two cuts."""

    study_id: str
    site_ids: list[str]
    site_pk: Array
    site_country: Array
    activation: Array  # datetime64[D]
    share: Array  # each site's share of the screened
    criterion_pk: Array  # by index in _CRITERIA
    interim: DataCut
    current: DataCut

    @property
    def interim_id(self) -> int:
        assert self.interim.id is not None
        return self.interim.id

    @property
    def current_id(self) -> int:
        assert self.current.id is not None
        return self.current.id

    def cut_of(self, days: Array) -> Array:
        """The cut that first held rows dated ``days``."""
        return np.where(days <= _day(INTERIM_CUTOFF), self.interim_id, self.current_id)


@dataclass
class _Plan:
    """One element per subject, in screening order (rows of ``failed``: one column per criterion)."""

    site: Array  # site index
    screening: Array  # datetime64[D]: consent = screening
    failed: Array  # bool (subjects x criteria): what the subject fails, decided or not yet
    decision: Array  # the screen failure or randomisation date (may be after the cut-off)
    is_failure: Array
    is_enrolled: Array
    population: Array
    sex: Array
    age: Array
    birth_year: Array
    enrollment: Array  # datetime64[D], NaT unless enrolled
    planned_dose: Array  # first dose as planned (also after the cut-off)
    first_dose: Array  # NaT unless dosed by the cut-off
    treated: Array
    arm: Array  # index in _ARMS (meaningful for the enrolled)
    actual_arm: Array
    discontinued: Array  # will discontinue (the event may be after the cut-off)
    end_event: Array  # date of the end-of-study DS event (completion or discontinuation)
    end_term: Array
    end_epoch: Array
    ended: Array  # the end-of-study event happened by the cut-off
    status: Array
    observed_to: Array  # the last day observed at the cut-off

    @property
    def n(self) -> int:
        return len(self.site)

    def usubjids(self, design: _Design) -> list[str]:
        width = max(5, len(str(self.n)))
        return [
            f"{design.study_id}-{design.site_ids[s]}-{i:0{width}d}"
            for i, s in enumerate(self.site.tolist(), start=1)
        ]


@dataclass
class _Counts:
    """Rows per domain in the current cut and in the interim cut."""

    current: dict[str, int]
    interim: dict[str, int]

    def add(self, domain: str, dates: Array) -> None:
        self.current[domain] = self.current.get(domain, 0) + len(dates)
        self.interim[domain] = self.interim.get(domain, 0) + int(
            (dates <= _day(INTERIM_CUTOFF)).sum()
        )


def build_scale_study(
    session: Session,
    *,
    n_subjects: int = 50_000,
    n_sites: int = 200,
    seed: int = 8,
    study_id: str = SCALE_STUDY_ID,
) -> None:
    """(Re)create a large synthetic randomized 3-arm study with two data cuts, in ``session``'s
    transaction. A previous copy of ``study_id`` is deleted first."""
    if n_subjects < 1 or n_sites < 1:
        raise ValueError("a scale study needs at least one subject and one site")
    rng = np.random.default_rng(seed)
    # Site risk's draws (under-reported AEs, deviations) from a generator of their own.
    kri_rng = np.random.default_rng((seed, 16))
    # The post-baseline laboratory values (issue #19) from one more: every figure drawn before
    # they existed stays the same.
    lab_rng = np.random.default_rng((seed, 19))
    delete_study(session, study_id)
    design = _write_design(session, rng, study_id=study_id, n_subjects=n_subjects, n_sites=n_sites)
    plan = _plan_subjects(rng, design, n_subjects)
    counts = _Counts({}, {})
    usubjid = plan.usubjids(design)
    subject_pk, subject_changes = _write_subjects(session, rng, design, plan, usubjid, counts)
    _write_eligibility(session, design, plan, subject_pk, counts)
    _write_dispositions(session, design, plan, subject_pk, counts)
    _write_exposure(session, plan, subject_pk, counts)
    visits = _write_visits(session, rng, plan, subject_pk, counts)
    screening_values = _write_findings(session, rng, plan, subject_pk, counts)
    _write_lab_visits(session, lab_rng, plan, subject_pk, visits, screening_values, counts)
    ae_changes = _write_adverse_events(
        session, rng, kri_rng, design, plan, subject_pk, usubjid, counts
    )
    _write_protocol_deviations(session, kri_rng, design, plan, subject_pk, counts)
    _insert_cut_changes(session, design.current_id, [*subject_changes, *ae_changes])
    design.interim.row_counts = counts.interim
    design.current.row_counts = counts.current
    session.add_all([design.interim, design.current])
    session.flush()
    # The natural keys an SDTM import would give AE, IE and DS (review marks are keyed to them).
    fill_natural_keys(session.connection())
    rebuild_precomputed_counts(session, study_id)


def _write_design(
    session: Session, rng: np.random.Generator, *, study_id: str, n_subjects: int, n_sites: int
) -> _Design:
    """The Study, Site, Arm, Criterion and DataCut rows."""
    start, cutoff = _day(PLANNED_START), _day(CUTOFF)
    target = max(1, round(n_subjects * TARGET_SHARE))
    session.add(
        Study(
            study_id=study_id,
            registry_id=None,
            title=(
                f"Synthetic large-scale randomized study in knee osteoarthritis ({n_sites} sites, "
                f"{n_subjects:,} screened; SYNTHETIC DATA)"
            ),
            sponsor="Demo sponsor (synthetic)",
            phase="Phase 3",
            design="Randomized, parallel, 3 arms, open label",
            allocation="RANDOMIZED",
            masking="NONE",
            is_blinded=False,
            status="RECRUITING",
            condition="Osteoarthritis, Knee",
            intervention="Drug: demo compound (oral, daily for 12 weeks)",
            planned_enrollment=target,
            enrollment_type="ESTIMATED",
            min_age=40,
            max_age=80,
            sex="ALL",
            planned_start=PLANNED_START,
            planned_end=PLANNED_END,
            is_synthetic=True,
        )
    )
    session.flush()

    # Sites: activated over the first year, productivity varying several-fold.
    site_ids = [f"{1000 + k}" for k in range(1, n_sites + 1)]
    country_names = np.array([c for c, _ in _COUNTRIES], dtype=object)
    country_weights = np.array([w for _, w in _COUNTRIES], dtype=float)
    site_country = country_names[
        rng.choice(len(_COUNTRIES), size=n_sites, p=country_weights / country_weights.sum())
    ]
    activation = start + rng.integers(0, 365, n_sites)
    activation[0] = start
    factor = rng.lognormal(0.0, 0.55, n_sites)
    planted = [site_ids.index(s) for s in PLANTED_KRI_SITES.values() if s in site_ids]
    activation[planted] = start
    factor[planted] = PLANTED_PRODUCTIVITY
    open_days = (cutoff - activation).astype(np.int64) + 1
    productivity = factor * open_days
    share = productivity / productivity.sum()
    site_target = np.maximum(1, np.round(target * share * rng.uniform(0.8, 1.25, n_sites)))
    _insert(
        session,
        Site,
        {
            "study_id": study_id,
            "site_id": site_ids,
            "name": [f"Demo site {s} (synthetic)" for s in site_ids],
            "country": site_country,
            "activated_on": activation,
            "planned_enrollment": site_target.astype(np.int64),
        },
        n_sites,
    )
    site_pk_of = _key_to_pk(
        session,
        select(col(Site.site_id), col(Site.id)).where(col(Site.study_id) == study_id),
    )
    _insert(
        session,
        Arm,
        {
            "study_id": study_id,
            "arm_code": [code for code, _, _ in _ARMS],
            "arm": [name for _, name, _ in _ARMS],
            "description": [
                f"Demo compound {dose:g} mg once daily for 12 weeks"
                if dose
                else "Placebo once daily for 12 weeks"
                for _, _, dose in _ARMS
            ],
            "planned_n": round(target / len(_ARMS)),
        },
        len(_ARMS),
    )
    _insert(
        session,
        Criterion,
        {
            "study_id": study_id,
            "code": list(_CODES),
            "protocol_version": "",
            "category": [c[1] for c in _CRITERIA],
            "text": [c[2] for c in _CRITERIA],
            "seq": list(range(1, len(_CRITERIA) + 1)),
            "rule": [c[3] for c in _CRITERIA],
        },
        len(_CRITERIA),
    )
    criterion_pk_of = _key_to_pk(
        session,
        select(col(Criterion.code), col(Criterion.id)).where(col(Criterion.study_id) == study_id),
    )
    cuts = [
        DataCut(
            study_id=study_id,
            loaded_at=dt.datetime.combine(cut + dt.timedelta(days=7), dt.time(9), dt.UTC),
            cutoff_date=cut,
            label=f"{label} cut (synthetic demo)",
            source=[{"file": SOURCE, "sha256": None}],
        )
        for cut, label in ((INTERIM_CUTOFF, "Interim"), (CUTOFF, "Current"))
    ]
    session.add_all(cuts)
    session.flush()
    return _Design(
        study_id=study_id,
        site_ids=site_ids,
        site_pk=np.array([site_pk_of[s] for s in site_ids], dtype=np.int64),
        site_country=site_country,
        activation=activation,
        share=share,
        criterion_pk=np.array([criterion_pk_of[c] for c in _CODES], dtype=np.int64),
        interim=cuts[0],
        current=cuts[1],
    )


def _plan_subjects(rng: np.random.Generator, design: _Design, n: int) -> _Plan:
    """Who is screened where and when, what they fail, who is enrolled, dosed, completes."""
    cutoff = _day(CUTOFF)
    n_sites = len(design.site_ids)
    site = rng.choice(n_sites, size=n, p=design.share)
    open_days = (cutoff - design.activation[site]).astype(np.int64) + 1
    screening = design.activation[site] + np.floor(open_days * rng.random(n) ** 0.85).astype(
        np.int64
    )
    order = np.lexsort((site, screening))
    site, screening = site[order], screening[order]

    # Criteria failed: most fail one, some two; a few sites fail one criterion far more often, the
    # first of them (INCL03) at the planted screen-failures site, which also fails more subjects.
    weights = np.tile(np.array([c[4] for c in _CRITERIA]), (n_sites, 1))
    failure_share = np.full(n_sites, SCREEN_FAILURE_SHARE)
    outliers = rng.choice(n_sites, size=min(len(_SITE_OUTLIER_CRITERIA), n_sites), replace=False)
    planted = _site_index(design, PLANTED_KRI_SITES["screen_failures"])
    if planted is not None:
        outliers[outliers == planted] = outliers[0]  # drawn for another criterion: swapped
        outliers[0] = planted
        failure_share[planted] = PLANTED_FAILURE_SHARE
    for outlier, code in zip(outliers.tolist(), _SITE_OUTLIER_CRITERIA, strict=False):
        weights[outlier, _CODES.index(code)] *= _SITE_OUTLIER_FACTOR
    fails = rng.random(n) < failure_share[site]
    failing = np.flatnonzero(fails)
    failing_weights = weights[site[failing]]
    first = _draw_rows(rng, failing_weights)
    two = rng.random(len(failing)) < TWO_CRITERIA_SHARE
    second_weights = failing_weights[two].copy()
    second_weights[np.arange(int(two.sum())), first[two]] = 0.0
    failed = np.zeros((n, len(_CODES)), dtype=bool)
    failed[failing, first] = True
    failed[failing[two], _draw_rows(rng, second_weights)] = True

    # The decision (screen failure or randomisation) follows screening; none yet near the cut-off.
    decision = screening + np.where(fails, rng.integers(2, 15, n), rng.integers(7, 29, n))
    is_failure = fails & (decision <= cutoff)
    is_enrolled = ~fails & (decision <= cutoff)
    population = np.full(n, IN_SCREENING, dtype=object)
    population[is_failure] = SCREEN_FAILURE
    population[is_enrolled] = ENROLLED

    sex = np.where(rng.random(n) < 0.62, "F", "M").astype(object)
    age = np.clip(np.round(rng.normal(63.0, 8.5, n)), 40, 80)
    out_of_range = failed[:, _CODES.index("INCL01")]
    k = int(out_of_range.sum())
    age[out_of_range] = np.where(
        rng.random(k) < 0.6, rng.integers(33, 40, k), rng.integers(81, 87, k)
    )
    birth_year = screening.astype("datetime64[Y]").astype(np.int64) + 1970 - age.astype(np.int64)
    birth_year -= (rng.random(n) < 0.5).astype(np.int64)  # birthday not yet reached this year

    nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    enrollment = np.where(is_enrolled, decision, nat)
    planned_dose = enrollment + rng.integers(0, 4, n)  # NaT stays NaT
    first_dose = np.where(planned_dose <= cutoff, planned_dose, nat)
    treated = ~np.isnat(first_dose)
    arm = rng.integers(0, len(_ARMS), n)
    actual_arm = arm.copy()
    swapped = treated & (rng.random(n) < ACTUAL_ARM_DIFFERS_SHARE)
    shift = rng.integers(1, len(_ARMS), int(swapped.sum()))
    actual_arm[swapped] = (arm[swapped] + shift) % len(_ARMS)

    # End of study: completion at month 6, or an earlier discontinuation (AE ones while dosing).
    discontinued = is_enrolled & (rng.random(n) < DISCONTINUED_SHARE)
    reason = _choice(rng, _DISCONTINUATION_REASONS, n)
    day = np.where(
        reason == "ADVERSE EVENT",
        rng.integers(5, TREATMENT_DAYS + 1, n),
        rng.integers(5, COMPLETION_DAY - 10, n),
    )
    day[~discontinued] = COMPLETION_DAY
    end_event = planned_dose + (day - 1)
    ended = is_enrolled & (end_event <= cutoff)
    return _Plan(
        site=site,
        screening=screening,
        failed=failed,
        decision=decision,
        is_failure=is_failure,
        is_enrolled=is_enrolled,
        population=population,
        sex=sex,
        age=age,
        birth_year=birth_year,
        enrollment=enrollment,
        planned_dose=planned_dose,
        first_dose=first_dose,
        treated=treated,
        arm=arm,
        actual_arm=actual_arm,
        discontinued=discontinued,
        end_event=end_event,
        end_term=np.where(discontinued, reason, "COMPLETED").astype(object),
        end_epoch=np.where(day <= TREATMENT_DAYS, "TREATMENT", "FOLLOW-UP").astype(object),
        ended=ended,
        status=_status(is_enrolled, ended, discontinued),
        observed_to=np.where(ended, end_event, cutoff),
    )


def _site_index(design: _Design, site_id: str) -> int | None:
    """The index of a SITEID in the design's sites (None: the study has fewer sites)."""
    return design.site_ids.index(site_id) if site_id in design.site_ids else None


def _status(enrolled: Array, ended: Array, discontinued: Array) -> Array:
    """``subject_status`` for whole arrays: the latest disposition event decides."""
    status = np.full(len(enrolled), None, dtype=object)
    status[enrolled] = "ONGOING"
    status[enrolled & ended] = "COMPLETED"
    status[enrolled & ended & discontinued] = "DISCONTINUED"
    return status


def _write_subjects(
    session: Session,
    rng: np.random.Generator,
    design: _Design,
    plan: _Plan,
    usubjid: list[str],
    counts: _Counts,
) -> tuple[Array, list[tuple[str, str, str, dict[str, Any]]]]:
    """The Subject rows; returns their primary keys (in plan order) and the CutChange rows
    (entity, natural key, change, fields) of subjects added or changed by the current cut."""
    n, interim = plan.n, _day(INTERIM_CUTOFF)
    none = np.full(n, None, dtype=object)
    arm_codes = np.array([a[0] for a in _ARMS], dtype=object)
    arm_names = np.array([a[1] for a in _ARMS], dtype=object)
    enrolled, treated = plan.is_enrolled, plan.treated
    screening_dtc = _iso(plan.screening)
    current: dict[str, Array] = {
        "population": plan.population,
        "status": plan.status,
        "arm_code": np.where(enrolled, arm_codes[plan.arm], none),
        "arm": np.where(enrolled, arm_names[plan.arm], none),
        "arm_not_assigned_reason": np.where(plan.is_failure, "SCREEN FAILURE", none),
        "enrollment_dtc": _iso(plan.enrollment),
        "first_dose_dtc": _iso(plan.first_dose),
        "actual_arm_code": np.where(treated, arm_codes[plan.actual_arm], none),
        "actual_arm": np.where(treated, arm_names[plan.actual_arm], none),
    }
    # The same fields as the interim cut held them: decisions, doses and events up to its cut-off.
    decided = plan.decision <= interim
    enrolled_then = enrolled & decided
    dosed_then = treated & (plan.first_dose <= interim)
    then = {
        "population": np.where(decided, plan.population, IN_SCREENING),
        "status": _status(enrolled_then, plan.end_event <= interim, plan.discontinued),
        "arm_not_assigned_reason": np.where(decided, current["arm_not_assigned_reason"], none),
        **{
            k: np.where(enrolled_then, current[k], none)
            for k in ("arm_code", "arm", "enrollment_dtc")
        },
        **{
            k: np.where(dosed_then, current[k], none)
            for k in ("first_dose_dtc", "actual_arm_code", "actual_arm")
        },
    }
    in_interim = plan.screening <= interim
    changed = np.zeros(n, dtype=bool)
    for name, values in current.items():
        changed |= then[name] != values
    changed &= in_interim
    first_cut = design.cut_of(plan.screening)
    _insert(
        session,
        Subject,
        {
            "study_id": design.study_id,
            "site_pk": design.site_pk[plan.site],
            "usubjid": usubjid,
            "subjid": [u.removeprefix(f"{design.study_id}-") for u in usubjid],
            "screening_dtc": screening_dtc,
            "screening_date": plan.screening,
            "consent_dtc": screening_dtc,
            "enrollment_date": plan.enrollment,
            "first_dose_date": plan.first_dose,
            **current,
            "sex": plan.sex,
            "age": plan.age,
            "age_unit": "YEARS",
            "birth_year": plan.birth_year,
            "race": _choice(rng, _RACES, n),
            "ethnicity": _choice(rng, _ETHNICITIES, n),
            "country": design.site_country[plan.site],
            "first_cut_id": first_cut,
            "updated_cut_id": np.where(changed, design.current_id, first_cut),
        },
        n,
    )
    counts.add("DM", plan.screening)
    pk_of = _key_to_pk(
        session,
        select(col(Subject.usubjid), col(Subject.id)).where(
            col(Subject.study_id) == design.study_id
        ),
    )
    subject_pk = np.array([pk_of[u] for u in usubjid], dtype=np.int64)

    changes: list[tuple[str, str, str, dict[str, Any]]] = [
        ("subject", usubjid[i], "added", {})
        for i in np.flatnonzero(first_cut == design.current_id).tolist()
    ]
    rows = np.flatnonzero(changed)
    old_new = {name: (then[name][rows].tolist(), current[name][rows].tolist()) for name in current}
    for j, i in enumerate(rows.tolist()):
        fields = {
            name: [old[j], new[j]] for name, (old, new) in old_new.items() if old[j] != new[j]
        }
        changes.append(("subject", usubjid[i], "changed", fields))
    return subject_pk, changes


def _write_eligibility(
    session: Session, design: _Design, plan: _Plan, subject_pk: Array, counts: _Counts
) -> None:
    """IE: one row per criterion not met, for the screen failures (decided by the cut-off)."""
    subject, criterion = np.nonzero(plan.failed & plan.is_failure[:, None])
    assessed = plan.decision[subject]
    cut = design.cut_of(assessed)
    is_inclusion = np.array([c[1] == "INCLUSION" for c in _CRITERIA])
    _insert(
        session,
        EligibilityFinding,
        {
            "subject_pk": subject_pk[subject],
            "criterion_pk": design.criterion_pk[criterion],
            "result": np.where(is_inclusion[criterion], "N", "Y").astype(object),
            "assessed_dtc": _iso(assessed),
            "assessed_date": assessed,
            "first_cut_id": cut,
            "updated_cut_id": cut,
        },
        len(subject),
    )
    counts.add("IE", assessed)


def _write_dispositions(
    session: Session, design: _Design, plan: _Plan, subject_pk: Array, counts: _Counts
) -> None:
    """DS: consent for everyone, then the screen failure, or the randomisation and the end of
    study (completion or discontinuation) where the cut-off reached it."""
    parts = (
        (np.arange(plan.n), 1, "PROTOCOL MILESTONE", "INFORMED CONSENT OBTAINED", plan.screening),
        (np.flatnonzero(plan.is_failure), 2, "DISPOSITION EVENT", "SCREEN FAILURE", plan.decision),
        (np.flatnonzero(plan.is_enrolled), 2, "PROTOCOL MILESTONE", "RANDOMIZED", plan.enrollment),
    )
    finished = np.flatnonzero(plan.ended)
    subject = np.concatenate([p[0] for p in parts] + [finished])
    seq = np.concatenate([np.full(len(p[0]), p[1]) for p in parts] + [np.full(len(finished), 3)])
    category = np.concatenate(
        [np.full(len(p[0]), p[2], dtype=object) for p in parts]
        + [np.full(len(finished), "DISPOSITION EVENT", dtype=object)]
    )
    term = np.concatenate(
        [np.full(len(p[0]), p[3], dtype=object) for p in parts] + [plan.end_term[finished]]
    )
    epoch = np.concatenate(
        [np.full(len(p[0]), "SCREENING", dtype=object) for p in parts] + [plan.end_epoch[finished]]
    )
    date = np.concatenate([p[4][p[0]] for p in parts] + [plan.end_event[finished]])
    order = np.lexsort((seq, subject))
    subject, seq, category, term, epoch, date = (
        a[order] for a in (subject, seq, category, term, epoch, date)
    )
    cut = design.cut_of(date)
    _insert(
        session,
        Disposition,
        {
            "subject_pk": subject_pk[subject],
            "seq": seq,
            "category": category,
            "term": term,
            "verbatim": term,
            "epoch": epoch,
            "dtc": _iso(date),
            "date": date,
            "first_cut_id": cut,
            "updated_cut_id": cut,
        },
        len(subject),
    )
    counts.add("DS", date)


def _write_exposure(session: Session, plan: _Plan, subject_pk: Array, counts: _Counts) -> None:
    """EX: one row per treated subject, daily dosing to week 12 or an earlier discontinuation
    (no end date while still dosing at the cut-off)."""
    dosed = np.flatnonzero(plan.treated)
    start = plan.first_dose[dosed]
    end = start + (TREATMENT_DAYS - 1)
    end = np.where(plan.discontinued[dosed], np.minimum(end, plan.end_event[dosed]), end)
    end[end > _day(CUTOFF)] = np.datetime64("NaT")
    arm = plan.actual_arm[dosed]
    _insert(
        session,
        Exposure,
        {
            "subject_pk": subject_pk[dosed],
            "treatment": np.where(arm == 0, "PLACEBO", "DEMO COMPOUND").astype(object),
            "dose": np.array([a[2] for a in _ARMS])[arm],
            "unit": "mg",
            "route": "ORAL",
            "start_dtc": _iso(start),
            "start_date": start,
            "end_dtc": _iso(end),
            "end_date": end,
        },
        len(dosed),
    )
    counts.add("EX", start)


def _write_visits(
    session: Session, rng: np.random.Generator, plan: _Plan, subject_pk: Array, counts: _Counts
) -> tuple[Array, Array, Array]:
    """SV: the screening visit of every enrolled subject, then the treated subjects' visits held
    by the cut-off and the end of study. Returns the visits after screening as (subject index,
    visit name, date) arrays, in subject order."""
    enrolled, dosed = np.flatnonzero(plan.is_enrolled), np.flatnonzero(plan.treated)
    subject: list[Array] = [enrolled]
    number: list[Array] = [np.ones(len(enrolled))]
    name: list[Array] = [np.full(len(enrolled), "SCREENING", dtype=object)]
    planned: list[Array] = [np.full(len(enrolled), None, dtype=object)]
    date: list[Array] = [plan.screening[enrolled]]
    for visit_number, (visit, day, jitter) in enumerate(_VISITS, start=2):
        when = plan.first_dose[dosed] + (day - 1) + rng.integers(-jitter, jitter + 1, len(dosed))
        held = when <= plan.observed_to[dosed]
        k = int(held.sum())
        subject.append(dosed[held])
        number.append(np.full(k, float(visit_number)))
        name.append(np.full(k, visit, dtype=object))
        planned.append(np.full(k, day, dtype=object))
        date.append(when[held])
    all_subjects = np.concatenate(subject)
    order = np.argsort(all_subjects, kind="stable")
    dates = np.concatenate(date)[order]
    _insert(
        session,
        Visit,
        {
            "subject_pk": subject_pk[all_subjects[order]],
            "visit_num": np.concatenate(number)[order],
            "visit": np.concatenate(name)[order],
            "planned_day": np.concatenate(planned)[order],
            "dtc": _iso(dates),
            "date": dates,
        },
        len(order),
    )
    counts.add("SV", dates)
    subjects, names = all_subjects[order], np.concatenate(name)[order]
    after_screening = names != "SCREENING"
    return subjects[after_screening], names[after_screening], dates[after_screening]


def _write_findings(
    session: Session, rng: np.random.Generator, plan: _Plan, subject_pk: Array, counts: _Counts
) -> Array:
    """20 screening values per screened subject (VS, LB, QS, MK, SC), baseline for the enrolled.
    Returns the values (subjects x ``_TESTS``)."""
    values = _screening_values(rng, failed=plan.failed, sex=plan.sex, enrolled=plan.is_enrolled)
    n, n_tests = plan.n, len(_TESTS)
    subject = np.repeat(np.arange(n), n_tests)
    value_num = values.ravel()

    def per_test(field: int) -> Array:
        return np.tile(np.array([t[field] for t in _TESTS], dtype=object), n)

    domain = per_test(0)
    code = per_test(1)
    low, high = _lab_limits(code, plan.sex[subject] == "F")
    _insert(
        session,
        Finding,
        {
            "subject_pk": subject_pk[subject],
            "domain": domain,
            "test_code": code,
            "test": per_test(2),
            "location": per_test(3),
            "value_num": value_num,
            "value_text": [f"{v:g}" for v in value_num.tolist()],
            "unit": per_test(4),
            **_range_columns(value_num, low, high),
            "visit": "SCREENING",
            "visit_number": 1.0,
            "dtc": _iso(plan.screening)[subject],
            "date": plan.screening[subject],
            "study_day": _study_days(plan.screening[subject], plan.first_dose[subject]),
            "is_baseline": plan.is_enrolled[subject],
        },
        len(subject),
    )
    for name in dict.fromkeys(t[0] for t in _TESTS):
        counts.add(name, plan.screening[subject[domain == name]])
    return values


def _write_lab_visits(
    session: Session,
    rng: np.random.Generator,
    plan: _Plan,
    subject_pk: Array,
    visits: tuple[Array, Array, Array],
    screening_values: Array,
    counts: _Counts,
) -> None:
    """LB at every visit a treated subject attended after screening: the 8 laboratory tests, each
    the subject's screening value varied by about 8% (no drift the safety pages would read as a
    signal), and total bilirubin around a level of the subject's own. Never baseline: the
    baseline is the screening value. Every value with its normal range and indicator, VISITNUM
    and study day. ``HYS_LAW_CASES`` subjects get ALT, AST and bilirubin of a potential Hy's law
    case at their last visit (drawn after the rest: every other value stays as it was)."""
    subject, visit, dates = visits
    lab = [i for i, test in enumerate(_TESTS) if test[0] == "LB"]
    n_visits, n_tests = len(subject), len(lab)
    rows = np.repeat(np.arange(n_visits), n_tests)  # visit-major: one visit's tests together
    test = np.tile(np.array(lab), n_visits)
    decimals = np.array([t[5] for t in _TESTS])[test]
    scale = 10.0**decimals
    drawn = screening_values[subject[rows], test] * rng.normal(1.0, 0.08, len(rows))
    value_num = np.maximum(np.round(drawn * scale) / scale, 0.0)

    def per_test(field: int) -> Array:
        values: Array = np.array([t[field] for t in _TESTS], dtype=object)[test]
        return values

    code, name, unit = per_test(1), per_test(2), per_test(4)
    # Bilirubin: a level per subject, varied by about 8% at each visit, below the cap.
    bili_uln = _LAB_RANGES["BILI"][0][1]
    level = np.minimum(rng.lognormal(np.log(0.55), 0.3, plan.n), 0.9 * _BILI_CAP_ULN * bili_uln)
    bili = level[subject] * rng.normal(1.0, 0.08, n_visits)
    bili = np.clip(bili, 0.1, _BILI_CAP_ULN * bili_uln).round(_BILIRUBIN[5])
    rows = np.concatenate([rows, np.arange(n_visits)])
    order = np.argsort(rows, kind="stable")  # bilirubin after the visit's other tests
    rows = rows[order]
    value_num = np.concatenate([value_num, bili])[order]
    code = np.concatenate([code, np.full(n_visits, _BILIRUBIN[1], dtype=object)])[order]
    name = np.concatenate([name, np.full(n_visits, _BILIRUBIN[2], dtype=object)])[order]
    unit = np.concatenate([unit, np.full(n_visits, _BILIRUBIN[4], dtype=object)])[order]
    female = plan.sex[subject[rows]] == "F"
    low, high = _lab_limits(code, female)
    _plant_hys_law(rng, subject, rows, code, value_num, high)
    visit_number = {name: float(number) for number, (name, _, _) in enumerate(_VISITS, start=2)}
    _insert(
        session,
        Finding,
        {
            "subject_pk": subject_pk[subject[rows]],
            "domain": "LB",
            "test_code": code,
            "test": name,
            "location": None,
            "value_num": value_num,
            "value_text": [f"{v:g}" for v in value_num.tolist()],
            "unit": unit,
            **_range_columns(value_num, low, high),
            "visit": visit[rows],
            "visit_number": np.array([visit_number[v] for v in visit.tolist()])[rows],
            "dtc": _iso(dates)[rows],
            "date": dates[rows],
            "study_day": _study_days(dates[rows], plan.first_dose[subject[rows]]),
            "is_baseline": False,
        },
        len(rows),
    )
    counts.add("LB", dates[rows])


def _plant_hys_law(
    rng: np.random.Generator,
    subject: Array,
    rows: Array,
    code: Array,
    value_num: Array,
    high: Array,
) -> None:
    """Set (in place) ALT 3.5-8, AST 3-6 and bilirubin 2.2-4 times the ULN at the last visit of
    ``HYS_LAW_CASES`` subjects drawn among those with two visits or more (``subject``: the
    visits' subjects, sorted; ``rows``: each value's visit)."""
    first = np.searchsorted(subject, subject, side="left")
    last = np.searchsorted(subject, subject, side="right") - 1
    eligible = np.flatnonzero((last - first >= 1) & (np.arange(len(subject)) == last))
    k = min(HYS_LAW_CASES, len(eligible))
    picked = rng.choice(eligible, size=k, replace=False)
    factors = {"ALT": (3.5, 8.0), "AST": (3.0, 6.0), "BILI": (2.2, 4.0)}
    at_visit = np.isin(rows, picked)
    for test, (least, most) in factors.items():
        where = np.flatnonzero(at_visit & (code == test))
        decimals = 2 if test == "BILI" else 0
        value_num[where] = np.round(high[where] * rng.uniform(least, most, len(where)), decimals)


def _write_adverse_events(
    session: Session,
    rng: np.random.Generator,
    kri_rng: np.random.Generator,
    design: _Design,
    plan: _Plan,
    subject_pk: Array,
    usubjid: list[str],
    counts: _Counts,
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """About AE_PER_SCREENED events per screened subject, over the treated, but at the planted
    under-reporting site (``kri_rng`` draws which it reports); returns the CutChange rows of AEs
    added or changed by the current cut."""
    ae = _adverse_events(
        rng,
        n_screened=plan.n,
        dosed=np.flatnonzero(plan.treated),
        first_dose=plan.first_dose,
        observed_to=plan.observed_to,
        actual_arm=plan.actual_arm,
        withdrawn=np.flatnonzero(
            plan.ended & plan.discontinued & (plan.end_term == "ADVERSE EVENT")
        ),
        end_event=plan.end_event,
    )
    under_reporting = _site_index(design, PLANTED_KRI_SITES["ae_under_reporting"])
    if under_reporting is not None:
        ae = _under_reported(kri_rng, ae, plan.site[ae["subject"]] == under_reporting)
    subject, start, end = ae["subject"], ae["start"], ae["end"]
    interim = _day(INTERIM_CUTOFF)
    first_cut = design.cut_of(start)
    # An AE open at the interim cut-off that ended later: the current cut added its end.
    changed = (start <= interim) & ~np.isnat(end) & (end > interim)
    end_dtc = _iso(end)
    _insert(
        session,
        AdverseEvent,
        {
            "subject_pk": subject_pk[subject],
            "seq": ae["seq"],
            "term": np.char.upper(ae["pt"].astype(str)).astype(object),
            "decoded_term": ae["pt"],
            "body_system": ae["soc"],
            "severity": ae["severity"],
            "grade": ae["grade"],
            "serious": ae["serious"],
            "serious_death": "N",
            "serious_hospitalisation": ae["hospitalisation"],
            "serious_life_threatening": ae["life_threatening"],
            "serious_disability": "N",
            "serious_congenital": "N",
            "serious_other": ae["other"],
            "relationship": ae["relationship"],
            "outcome": ae["outcome"],
            "action": ae["action"],
            "start_dtc": _iso(start),
            "start_date": start,
            "end_dtc": end_dtc,
            "end_date": end,
            "start_day": (start - plan.first_dose[subject]).astype(np.int64) + 1,
            "first_cut_id": first_cut,
            "updated_cut_id": np.where(changed, design.current_id, first_cut),
        },
        len(subject),
    )
    counts.add("AE", start)

    def key(i: int) -> str:
        return f"{usubjid[int(subject[i])]}/{int(ae['seq'][i])}"

    changes: list[tuple[str, str, str, dict[str, Any]]] = [
        ("ae", key(i), "added", {}) for i in np.flatnonzero(first_cut == design.current_id).tolist()
    ]
    changes += [
        (
            "ae",
            key(i),
            "changed",
            {"end_dtc": [None, end_dtc[i]], "outcome": [_NOT_RESOLVED, ae["outcome"][i]]},
        )
        for i in np.flatnonzero(changed).tolist()
    ]
    return changes


def _under_reported(
    rng: np.random.Generator, ae: dict[str, Array], at_site: Array
) -> dict[str, Array]:
    """The AEs as the under-reporting site reports them: AE_REPORTED_SHARE of its events, every
    serious one and every one that led to a drug withdrawal (its DS record names it); AESEQ
    numbered again."""
    kept = (
        ~at_site
        | (ae["serious"] == "Y")
        | (ae["action"] == "DRUG WITHDRAWN")
        | (rng.random(len(at_site)) < AE_REPORTED_SHARE)
    )
    reported = {name: values[kept] for name, values in ae.items()}
    reported["seq"] = _within_group_rank(reported["subject"])
    return reported


def _write_protocol_deviations(
    session: Session,
    rng: np.random.Generator,
    design: _Design,
    plan: _Plan,
    subject_pk: Array,
    counts: _Counts,
) -> None:
    """DV: Poisson many deviations per enrolled subject at DV_RATE per day on study (DV_FACTOR
    times that at the planted deviations site), each on a day from enrollment to the day the
    subject left (the end-of-study event) or the cut-off; DVCAT MAJOR marks the important ones."""
    enrolled = np.flatnonzero(plan.is_enrolled)
    first = plan.enrollment[enrolled]
    days = (plan.observed_to[enrolled] - first).astype(np.int64) + 1
    rate = np.full(len(enrolled), DV_RATE)
    planted = _site_index(design, PLANTED_KRI_SITES["deviations"])
    if planted is not None:
        rate[plan.site[enrolled] == planted] *= DV_FACTOR
    per_subject = rng.poisson(rate * days)
    subject = np.repeat(enrolled, per_subject)
    date = np.repeat(first, per_subject) + np.floor(
        rng.random(len(subject)) * np.repeat(days, per_subject)
    ).astype(np.int64)
    weights = np.array([w for _, _, w in DEVIATION_TERMS], dtype=float)
    kind = rng.choice(len(DEVIATION_TERMS), size=len(subject), p=weights / weights.sum())
    order = np.lexsort((kind, date, subject))
    subject, date, kind = subject[order], date[order], kind[order]
    terms = np.array([t for t, _, _ in DEVIATION_TERMS], dtype=object)[kind]
    category = np.array([c for _, c, _ in DEVIATION_TERMS], dtype=object)[kind]
    _insert(
        session,
        ProtocolDeviation,
        {
            "subject_pk": subject_pk[subject],
            "seq": _within_group_rank(subject),
            "term": terms,
            "decoded_term": terms,
            "category": category,
            "important": category == "MAJOR",
            "start_dtc": _iso(date),
            "start_date": date,
        },
        len(subject),
    )
    counts.add("DV", date)


def _insert_cut_changes(
    session: Session, cut_id: int, changes: list[tuple[str, str, str, dict[str, Any]]]
) -> None:
    _insert(
        session,
        CutChange,
        {
            "cut_id": cut_id,
            "entity": [c[0] for c in changes],
            "natural_key": [c[1] for c in changes],
            "change": [c[2] for c in changes],
            "fields": [c[3] for c in changes],
        },
        len(changes),
    )


def _screening_values(
    rng: np.random.Generator, *, failed: Array, sex: Array, enrolled: Array
) -> Array:
    """The screening values (subjects x ``_TESTS``), each rounded to its test's decimals: every
    criterion a subject failed is broken by its value, every other rule is met, except a planted
    few enrolled subjects whose BMI or pain VAS breaks a rule (protocol deviations to find)."""
    n = len(sex)

    def fail(code: str) -> Array:
        return np.asarray(failed[:, _CODES.index(code)])

    def between(mean: float, sd: float, low: float, high: float) -> Array:
        """Normal values kept within [low, high] by drawing the strays again uniformly."""
        values = rng.normal(mean, sd, n)
        stray = (values < low) | (values > high)
        values[stray] = rng.uniform(low, high, int(stray.sum()))
        return values

    female = sex == "F"
    height = np.where(female, rng.normal(162, 6.5, n), rng.normal(176, 7, n)).round(0)
    bmi = between(29.0, 3.8, 18.5, 35.0).round(1)
    bmi_fail = fail("INCL04")
    k = int(bmi_fail.sum())
    bmi[bmi_fail] = np.where(
        rng.random(k) < 0.8, rng.uniform(35.1, 43.0, k), rng.uniform(15.5, 18.4, k)
    ).round(1)
    weight = (bmi * (height / 100) ** 2).round(1)
    sysbp = between(134, 13, 95, 159).round(0)
    k = int(fail("EXCL06").sum())
    sysbp[fail("EXCL06")] = rng.uniform(160, 188, k).round(0)
    diabp = np.minimum(between(80, 8, 55, 105), sysbp - 25).round(0)
    pulse = between(72, 9, 48, 110).round(0)
    temp = between(36.7, 0.25, 36.0, 37.5).round(1)
    hgb = np.where(female, between(13.2, 1.0, 10.0, 16.5), between(14.6, 1.1, 10.0, 18.0)).round(1)
    k = int(fail("EXCL03").sum())
    hgb[fail("EXCL03")] = rng.uniform(8.2, 9.9, k).round(1)
    alt = np.minimum(rng.lognormal(np.log(22), 0.35, n), 120).round(0)
    k = int(fail("EXCL05").sum())
    alt[fail("EXCL05")] = rng.uniform(121, 260, k).round(0)
    ast = np.minimum(rng.lognormal(np.log(24), 0.3, n), 200).round(0)
    creat = np.where(
        female, rng.lognormal(np.log(0.78), 0.18, n), rng.lognormal(np.log(0.95), 0.18, n)
    ).round(2)
    egfr = between(82, 15, 45, 125).round(0)
    k = int(fail("EXCL04").sum())
    egfr[fail("EXCL04")] = rng.uniform(20, 44.4, k).round(0)
    gluc = between(98, 14, 65, 199).round(0)
    wbc = between(6.8, 1.5, 3.5, 12.0).round(1)
    plat = between(250, 55, 120, 450).round(0)
    vas = rng.integers(40, 91, n).astype(float)
    k = int(fail("INCL03").sum())
    vas[fail("INCL03")] = rng.integers(12, 40, k)
    womac = np.clip(np.round(vas * 0.55 + rng.normal(8, 8, n)), 0, 96)
    # K-L grade: both knees 2-3 unless INCL02 failed, then one knee is grade 4 (or 1).
    left = rng.integers(2, 4, n).astype(float)
    right = rng.integers(2, 4, n).astype(float)
    kl_fail = fail("INCL02")
    k = int(kl_fail.sum())
    bad_grade = np.where(rng.random(k) < 0.75, 4.0, 1.0)
    other = rng.integers(1, 5, k).astype(float)
    left_is_bad = rng.random(k) < 0.5
    left[kl_fail] = np.where(left_is_bad, bad_grade, other)
    right[kl_fail] = np.where(left_is_bad, other, bad_grade)
    pain_months = rng.choice(np.array([6, 8, 12, 18, 24, 36, 60, 120], dtype=float), size=n)
    k = int(fail("INCL05").sum())
    pain_months[fail("INCL05")] = rng.integers(2, 6, k)

    # Planted protocol deviations: an enrolled subject's BMI or VAS just outside the rule.
    deviating = np.flatnonzero(enrolled & (rng.random(n) < DEVIATION_SHARE))
    bmi_side = rng.random(len(deviating)) < 0.5
    bmi[deviating[bmi_side]] = rng.uniform(35.1, 36.4, int(bmi_side.sum())).round(1)
    weight = (bmi * (height / 100) ** 2).round(1)
    vas[deviating[~bmi_side]] = rng.integers(35, 40, int((~bmi_side).sum()))

    columns = {
        "HEIGHT": height,
        "WEIGHT": weight,
        "BMI": bmi,
        "SYSBP": sysbp,
        "DIABP": diabp,
        "PULSE": pulse,
        "TEMP": temp,
        "HGB": hgb,
        "ALT": alt,
        "AST": ast,
        "CREAT": creat,
        "EGFR": egfr,
        "GLUC": gluc,
        "WBC": wbc,
        "PLAT": plat,
        "VASPAIN": vas,
        "WOMACTOT": womac,
        "KLGRADE LEFT KNEE": left,
        "KLGRADE RIGHT KNEE": right,
        "PAINDUR": pain_months,
    }
    keys = [f"{code} {location}" if location else code for _, code, _, location, _, _ in _TESTS]
    return np.column_stack([columns[key] for key in keys])


def _pt_catalogue(rng: np.random.Generator) -> tuple[Array, Array, Array]:
    """The PTs (most frequent first), their SOCs and their relative frequencies."""
    soc_names = [name for name, _ in _SOCS]
    soc_weights = np.array([w for _, w in _SOCS], dtype=float)
    n_synthetic = N_PTS - len(_COMMON_PTS)
    # Every SOC gets at least one synthetic PT; the rest follow the SOC weights.
    soc_index = np.concatenate(
        [
            np.arange(len(soc_names)),
            rng.choice(
                len(soc_names), size=n_synthetic - len(soc_names), p=soc_weights / soc_weights.sum()
            ),
        ]
    )
    rng.shuffle(soc_index)
    numbers = rng.permutation(np.arange(len(_COMMON_PTS) + 1, N_PTS + 1))[:n_synthetic]
    pts = np.array(
        [pt for pt, _ in _COMMON_PTS] + [f"PT {k:04d} (synthetic)" for k in numbers.tolist()],
        dtype=object,
    )
    socs = np.array(
        [soc for _, soc in _COMMON_PTS] + [soc_names[i] for i in soc_index.tolist()], dtype=object
    )
    frequency = 1.0 / (np.arange(N_PTS) + 3.0) ** _PT_ZIPF_EXPONENT
    return pts, socs, frequency / frequency.sum()


def _adverse_events(
    rng: np.random.Generator,
    *,
    n_screened: int,
    dosed: Array,
    first_dose: Array,
    observed_to: Array,
    actual_arm: Array,
    withdrawn: Array,
    end_event: Array,
) -> dict[str, Array]:
    """Adverse events of the treated subjects, sorted by subject and onset, with AESEQ.

    Each treated subject's count is Poisson with a gamma frailty (some subjects have many), in
    proportion to the time observed and higher in the high-dose arm; onsets lean early. Each subject
    discontinued for an ADVERSE EVENT gets the event that led to it (AEACN DRUG WITHDRAWN).
    """
    cutoff = _day(CUTOFF)
    span = (observed_to[dosed] - first_dose[dosed]).astype(np.int64) + 1
    exposure = span / COMPLETION_DAY * np.array([0.8, 1.0, 1.25])[actual_arm[dosed]]
    rate = AE_PER_SCREENED * n_screened / max(float(exposure.sum()), 1e-9)
    per_subject = rng.poisson(rate * exposure * rng.gamma(1.3, 1 / 1.3, len(dosed)))
    subject = np.repeat(dosed, per_subject)
    onset = np.floor(rng.random(len(subject)) ** 1.6 * np.repeat(span, per_subject)).astype(
        np.int64
    )
    start = first_dose[subject] + onset
    # The AE behind each discontinuation for an adverse event: shortly before the discontinuation.
    withdrawn_start = np.maximum(
        first_dose[withdrawn], end_event[withdrawn] - rng.integers(0, 8, len(withdrawn))
    )
    subject = np.concatenate([subject, withdrawn])
    start = np.concatenate([start, withdrawn_start])
    drug_withdrawn = np.concatenate(
        [np.zeros(len(start) - len(withdrawn), bool), np.ones(len(withdrawn), bool)]
    )
    m = len(subject)

    pts, socs, frequency = _pt_catalogue(rng)
    pt = rng.choice(N_PTS, size=m, p=frequency)
    order = np.lexsort((pt, start, subject))
    subject, start, pt, drug_withdrawn = (
        subject[order],
        start[order],
        pt[order],
        drug_withdrawn[order],
    )

    serious = (rng.random(m) < SERIOUS_SHARE) & ~drug_withdrawn
    severity = np.where(
        serious,
        _SEVERITIES[rng.choice(3, size=m, p=[0.0, 0.3, 0.7])],
        _SEVERITIES[rng.choice(3, size=m, p=[0.64, 0.30, 0.06])],
    )
    severity[drug_withdrawn] = _SEVERITIES[rng.choice([1, 2], size=int(drug_withdrawn.sum()))]
    grade = np.where(severity == "MILD", "1", np.where(severity == "MODERATE", "2", "3")).astype(
        object
    )
    life_threatening = serious & (severity == "SEVERE") & (rng.random(m) < 0.2)
    grade[life_threatening] = "4"
    hospitalisation = serious & ~life_threatening & (rng.random(m) < 0.85)
    other = serious & ~life_threatening & ~hospitalisation

    duration = 1 + rng.geometric(0.12, m)
    end = start + duration
    persistent = rng.random(m) < 0.04
    end[persistent | (end > cutoff)] = np.datetime64("NaT")
    ongoing = np.isnat(end)
    outcome = np.where(
        ongoing,
        np.where(rng.random(m) < 0.3, "RECOVERING/RESOLVING", _NOT_RESOLVED),
        np.where(rng.random(m) < 0.04, "RECOVERED/RESOLVED WITH SEQUELAE", "RECOVERED/RESOLVED"),
    ).astype(object)
    day = (start - first_dose[subject]).astype(np.int64) + 1
    action = np.where(
        day <= TREATMENT_DAYS,
        _choice(
            rng, (("DOSE NOT CHANGED", 0.95), ("DRUG INTERRUPTED", 0.03), ("DOSE REDUCED", 0.02)), m
        ),
        "NOT APPLICABLE",
    ).astype(object)
    action[drug_withdrawn] = "DRUG WITHDRAWN"

    def yes_no(flags: Array) -> Array:
        return np.where(flags, "Y", "N").astype(object)

    return {
        "subject": subject,
        "seq": _within_group_rank(subject),
        "start": start,
        "end": end,
        "pt": pts[pt],
        "soc": socs[pt],
        "severity": severity,
        "grade": grade,
        "serious": yes_no(serious),
        "hospitalisation": yes_no(hospitalisation),
        "life_threatening": yes_no(life_threatening),
        "other": yes_no(other),
        "relationship": _choice(rng, _RELATIONSHIPS, m),
        "outcome": outcome,
        "action": action,
    }
