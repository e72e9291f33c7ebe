"""SQLModel tables: an SDTM-aligned model of one or more studies.

Names follow SDTM so people from the field recognise them; the SDTM variable a column comes from is
named beside it. Coded values are stored as given and original text is kept. Dates are stored twice:
the ISO 8601 text as given (``*_dtc``; partial dates such as ``2013-04`` are legal) and a parsed
``*_date`` for sorting and filtering (the first day of the period for partial dates).

History (DESIGN.md contract): every import is one DataCut and replaces the study's current rows.
Subject, AdverseEvent, EligibilityFinding and Disposition rows carry ``first_cut_id`` (the cut that
first held them) and ``updated_cut_id`` (the cut that last changed them); removed rows are deleted and
kept as CutChange records.
"""

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Connection, Index, UniqueConstraint, event, text
from sqlmodel import Field, SQLModel

from dashboard.results.population import IN_SCREENING


class HistoryColumns(SQLModel):
    """The DataCut bookkeeping shared by the tables whose changes are tracked."""

    first_cut_id: int | None = Field(default=None, foreign_key="datacut.id", index=True)
    updated_cut_id: int | None = Field(default=None, foreign_key="datacut.id", index=True)


# One clinical study: registry facts (ClinicalTrials.gov / TS) and the planned figures.
class Study(SQLModel, table=True):
    study_id: str = Field(primary_key=True)  # STUDYID
    registry_id: str | None = Field(default=None, index=True)  # TS REGID / NCT id
    title: str = ""
    sponsor: str | None = None
    phase: str | None = None
    design: str | None = None  # e.g. "Single group, open label"
    allocation: str | None = None  # RANDOMIZED / NA
    masking: str | None = None  # NONE / DOUBLE ...
    # TS TBLIND or registry masking other than NONE; None: unknown, which counts as blinded
    # (DESIGN.md security model) until TS, the registry or an admin says the study is open.
    is_blinded: bool | None = None
    status: str | None = None  # registry overall status
    condition: str | None = None
    intervention: str | None = None
    planned_enrollment: int | None = None  # TS PLANSUB / enrollmentInfo.count
    enrollment_type: str | None = None  # registry: ESTIMATED (a target) or ACTUAL (the final count)
    min_age: float | None = None  # years
    max_age: float | None = None  # years
    sex: str | None = None  # ALL / FEMALE / MALE
    planned_start: dt.date | None = None
    planned_end: dt.date | None = None
    is_synthetic: bool = False  # demo data: every page says so


# A site (SITEID); planned_enrollment is the site's own target where known. activated_on is the
# date the site actually opened, planned_activation_on the date it is planned to open (both from
# the CTMS: `study-monitor import sites`); a site with neither counts from its first screening.
class Site(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "site_id"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    site_id: str = Field(index=True)  # SITEID
    name: str | None = None
    city: str | None = None
    country: str | None = Field(default=None, index=True)
    activated_on: dt.date | None = None  # actual activation
    planned_activation_on: dt.date | None = None
    planned_enrollment: int | None = None


# A planned arm (TA / DM ARMCD + ARM).
class Arm(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "arm_code"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    arm_code: str  # ARMCD
    arm: str  # ARM
    description: str | None = None
    planned_n: int | None = None


# An eligibility criterion in one protocol version (TI); the key is study + code + version.
class Criterion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "code", "protocol_version"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    code: str = Field(index=True)  # IETESTCD
    protocol_version: str = ""  # TIVERS; "" where the protocol has one version
    category: str = Field(index=True)  # INCLUSION / EXCLUSION (IECAT)
    text: str  # IETEST / TIRL wording
    seq: int = 0  # order in the protocol
    rule: str | None = None  # optional machine-checkable rule, e.g. "BMI between 21.5 and 29.5"


# A screened person. Screen failures are subjects too (SDTM DM holds them).
class Subject(HistoryColumns, table=True):
    __table_args__ = (UniqueConstraint("study_id", "usubjid"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    site_pk: int | None = Field(default=None, foreign_key="site.id", index=True)
    usubjid: str = Field(index=True)  # USUBJID
    subjid: str | None = None  # SUBJID
    screening_dtc: str | None = None  # RFICDTC, else earliest SV / DS date, else DMDTC
    screening_date: dt.date | None = Field(default=None, index=True)
    consent_dtc: str | None = None  # RFICDTC
    enrollment_dtc: str | None = None  # RFSTDTC or randomisation
    enrollment_date: dt.date | None = Field(default=None, index=True)
    first_dose_dtc: str | None = None  # RFXSTDTC
    first_dose_date: dt.date | None = None
    arm_code: str | None = Field(default=None, index=True)  # ARMCD (planned)
    arm: str | None = None  # ARM
    actual_arm_code: str | None = Field(default=None, index=True)  # ACTARMCD
    actual_arm: str | None = None  # ACTARM
    arm_not_assigned_reason: str | None = None  # ARMNRS
    population: str = Field(default=IN_SCREENING, index=True)  # see POPULATIONS
    status: str | None = Field(default=None, index=True)  # ONGOING / COMPLETED / DISCONTINUED
    sex: str | None = Field(default=None, index=True)  # SEX
    age: float | None = None  # AGE
    age_unit: str | None = None  # AGEU
    birth_year: int | None = None  # BRTHDTC cut to the year (no direct identifiers)
    race: str | None = None
    ethnicity: str | None = None
    country: str | None = None


# One criterion a subject did NOT meet (SDTM IE semantics: IE holds only the exceptions).
class EligibilityFinding(HistoryColumns, table=True):
    __table_args__ = (UniqueConstraint("subject_pk", "criterion_pk"),)
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    criterion_pk: int = Field(foreign_key="criterion.id", index=True)
    natural_key: str | None = Field(default=None, index=True)  # USUBJID/IETESTCD/TIVERS
    result: str | None = None  # IEORRES: N for an inclusion not met, Y for an exclusion met
    assessed_dtc: str | None = None  # IEDTC
    assessed_date: dt.date | None = Field(default=None, index=True)


# A disposition record (DS): protocol milestones and disposition events.
class Disposition(HistoryColumns, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    natural_key: str | None = Field(default=None, index=True)  # USUBJID/DSSEQ (DESIGN.md History)
    seq: int | None = None  # DSSEQ
    category: str | None = Field(default=None, index=True)  # DSCAT
    term: str | None = Field(default=None, index=True)  # DSDECOD
    verbatim: str | None = None  # DSTERM
    epoch: str | None = None  # EPOCH
    dtc: str | None = None  # DSSTDTC
    date: dt.date | None = None


# A findings record (VS / LB / QS / SC / FA): baseline characteristics come from here.
class Finding(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    domain: str = Field(index=True)  # VS / LB / QS / SC ...
    test_code: str = Field(index=True)  # --TESTCD
    test: str  # --TEST
    location: str | None = None  # --LOC, e.g. LEFT KNEE
    # What tells two measurements of one test at one visit apart (supine and standing blood
    # pressure, serum and urine glucose), never merged: with the location they name the
    # measurement ("SUPINE, AFTER LYING DOWN FOR 5 MINUTES", queries.baseline.qualifier).
    specimen: str | None = None  # --SPEC
    position: str | None = None  # --POS
    timepoint: str | None = None  # --TPT
    category: str | None = None  # --CAT, e.g. CHEMISTRY
    fasting: str | None = None  # --FAST (Y / N)
    value_num: float | None = None  # --STRESN
    value_text: str | None = None  # --STRESC / --ORRES
    unit: str | None = None  # --STRESU
    # The normal range in standard units and the lab's own reading of the value against it.
    normal_low: float | None = None  # --STNRLO
    normal_high: float | None = None  # --STNRHI
    normal_indicator: str | None = None  # --NRIND: LOW / NORMAL / HIGH / ABNORMAL
    visit: str | None = None  # VISIT
    visit_number: float | None = None  # VISITNUM
    dtc: str | None = None  # --DTC
    date: dt.date | None = None
    study_day: int | None = None  # --DY
    is_baseline: bool = Field(default=False, index=True)  # --BLFL = Y (or last value before dose)
    toxicity_grade: str | None = None  # --TOXGR (LBTOXGR) as given: CTCAE grade 0-5

    __table_args__ = (
        # Covering for the eligibility check (queries.screen_failures.eligibility_violations):
        # one test's values in range order, with what says whether it was a screening value.
        Index(
            "ix_finding_rule_check",
            "test_code",
            "value_num",
            "subject_pk",
            "is_baseline",
            "visit",
            "location",
        ),
    )


# Per-load counts (DESIGN.md performance rules): Table 1's medians and quartiles cannot be fast
# from a million raw findings, so each load counts subjects per baseline value once. The counts are
# kept per site and cohort, so any site scope is an exact sum; the all-sites rows are that sum made
# once, for the unscoped view every sponsor opens. Rebuilt by dashboard.precomputed on every load.
class BaselineVariable(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    key: str  # AGE, SEX ... or DOMAIN.TESTCD[.LOCATION]
    label: str
    unit: str | None = None
    categorical: bool
    subjects: int  # subjects with a value (any population)
    position: int  # catalogue order


class BaselineCount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id")
    all_sites: bool  # True: the sum over every site (site_pk is then None)
    site_pk: int | None = None  # no foreign key: the rows are rebuilt with the study's subjects
    cohort: str  # treated / enrolled (not treated) / screen failure / not allocated
    arm: str | None = None  # planned arm of an enrolled cohort
    key: str  # a BaselineVariable key, or SUBJECTS_KEY for the cohort's subject count
    value_num: float | None = None  # continuous variables
    value_text: str | None = None  # categorical variables
    subjects: int

    __table_args__ = (
        # Covering: Table 1 reads only these columns, filtered on the first three.
        Index(
            "ix_baselinecount_read",
            "study_id",
            "all_sites",
            "key",
            "cohort",
            "site_pk",
            "arm",
            "value_num",
            "value_text",
            "subjects",
        ),
    )


class AdverseEventMeasure(StrEnum):
    """``AdverseEventCount.measure``: the table a row of counts belongs to. Written by
    ``dashboard.precomputed``, read by ``queries.safety_counts``; stored as these strings (the
    column is text)."""

    HEADLINE = "headline"  # key1 "any" or "serious": the headline figures
    CATEGORY = "category"  # key1 a summary category, per arm
    OUTSIDE = "outside"  # key1 "outside", "graded" or "uncoded": the summary's notes
    PT = "pt"  # key1 the SOC, key2 the PT, per arm
    SOC = "soc"  # key1 the SOC, per arm
    SOC_ALL = "soc_all"  # key1 the SOC, every subject in scope (no arm)
    WORST = "worst"  # stored per dimension (``of``): key1 the rank
    VALUE = "value"  # stored per dimension (``of``): key1 the value as given
    CHANGES = "changes"  # key1 the cut compared with, key2 the figure, the count under events
    STUDY = "study"  # study-wide, not per site: key1 a ``StudyFlag``

    def of(self, dimension: str) -> str:
        """The stored measure of a per-dimension table (``WORST.of("severity")``:
        "worst:severity")."""
        return f"{self.value}:{dimension}"


class StudyFlag(StrEnum):
    """key1 of an ``AdverseEventMeasure.STUDY`` row: a fact about the whole study's counts."""

    # Discontinuation is read from DS (AEACN blank throughout); subjects 1 where so.
    DISCONTINUATION_FROM_DS = "discontinuation_from_ds"
    # The load counted the AE changes per cut: a study loaded before that is answered from the
    # raw AEs.
    CHANGES_COUNTED = "changes_counted"


# The safety tables' counts per load (DESIGN.md performance rules): distinct subjects over a
# quarter of a million AEs cost seconds per view, so each load counts them once, per site (a subject
# belongs to one site, so sites add up exactly) and summed over all sites. ``measure`` names the
# table a row belongs to; ``emergent`` says whether only treatment-emergent AEs were counted.
class AdverseEventCount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id")
    all_sites: bool
    site_pk: int | None = None  # no foreign key: the rows are rebuilt with the study's subjects
    emergent: bool
    measure: str  # an AdverseEventMeasure (worst and value with their dimension)
    arm: str | None = None
    key1: str | None = None  # category, SOC, rank or value as given
    key2: str | None = None  # PT
    subjects: int
    events: int | None = None

    __table_args__ = (
        Index(
            "ix_adverseeventcount_read",
            "study_id",
            "all_sites",
            "measure",
            "emergent",
            "site_pk",
            "arm",
            "key1",
            "key2",
            "subjects",
            "events",
        ),
    )


# An adverse event (AE); MedDRA PT in decoded_term, SOC in body_system.
class AdverseEvent(HistoryColumns, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    natural_key: str | None = Field(default=None, index=True)  # USUBJID/AESEQ (DESIGN.md History)
    seq: int | None = None  # AESEQ
    term: str  # AETERM (verbatim)
    decoded_term: str | None = Field(default=None, index=True)  # AEDECOD (MedDRA PT)
    body_system: str | None = Field(default=None, index=True)  # AEBODSYS (MedDRA SOC)
    severity: str | None = Field(default=None, index=True)  # AESEV
    grade: str | None = None  # AETOXGR (CTCAE grade as given)
    serious: str | None = Field(default=None, index=True)  # AESER Y/N
    serious_death: str | None = None  # AESDTH
    serious_hospitalisation: str | None = None  # AESHOSP
    serious_life_threatening: str | None = None  # AESLIFE
    serious_disability: str | None = None  # AESDISAB
    serious_congenital: str | None = None  # AESCONG
    serious_other: str | None = None  # AESMIE
    serious_cancer: str | None = None  # AESCAN (SDTMIG 3.1-3.3)
    serious_overdose: str | None = None  # AESOD (SDTMIG 3.1-3.3)
    relationship: str | None = None  # AEREL as given; classified by metrics.ae_rules
    outcome: str | None = None  # AEOUT
    action: str | None = None  # AEACN
    start_dtc: str | None = None  # AESTDTC
    start_date: dt.date | None = Field(default=None, index=True)
    end_dtc: str | None = None  # AEENDTC (blank while ongoing)
    end_date: dt.date | None = None
    start_day: int | None = None  # AESTDY (no day 0 in SDTM)
    # AETRTEM as given (Y / N): the sponsor's treatment-emergent flag. Where the study's AEs carry
    # it, it is the treatment-emergent rule (metrics.ae_rules); None where not given.
    treatment_emergent: str | None = None


# A protocol deviation (DV). SDTM has no standard "important" flag: ``important`` is read from
# DVCAT / DVSCAT wording by the importer (MAJOR, IMPORTANT, CRITICAL: True; MINOR, NON-IMPORTANT:
# False; None where neither says, counted with the non-important ones and named in a warning).
class ProtocolDeviation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    seq: int | None = None  # DVSEQ
    term: str  # DVTERM
    decoded_term: str | None = None  # DVDECOD
    category: str | None = None  # DVCAT
    subcategory: str | None = None  # DVSCAT
    important: bool | None = Field(default=None, index=True)
    start_dtc: str | None = None  # DVSTDTC
    start_date: dt.date | None = Field(default=None, index=True)


# A dosing record (EX).
class Exposure(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    treatment: str  # EXTRT
    dose: float | None = None  # EXDOSE
    unit: str | None = None  # EXDOSU
    route: str | None = None  # EXROUTE
    start_dtc: str | None = None
    start_date: dt.date | None = None
    end_dtc: str | None = None
    end_date: dt.date | None = None


# A visit that took place (SV), with its planned study day (TV) where known.
class Visit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    subject_pk: int = Field(foreign_key="subject.id", index=True)
    visit_num: float | None = None  # VISITNUM
    visit: str  # VISIT
    planned_day: int | None = None  # TV VISITDY
    dtc: str | None = None  # SVSTDTC
    date: dt.date | None = Field(default=None, index=True)


# One load of a study's data: every import (and every demo build) is one DataCut.
class DataCut(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    loaded_at: dt.datetime  # UTC
    cutoff_date: dt.date | None = (
        None  # TS DCUTDTC, else --cutoff, else the latest date in the data
    )
    label: str | None = None
    source: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    row_counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON))


# What one cut changed relative to the previous one, keyed by the entity's natural key.
class CutChange(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    cut_id: int = Field(foreign_key="datacut.id", index=True)
    entity: str = Field(index=True)  # subject / ae / ie / ds
    natural_key: str
    change: str = Field(index=True)  # added / changed / removed
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


# A visit the protocol plans (TV, or a schedule the study defines): the study day it is due on
# (day 1 = the subject's RFSTDTC, no day 0) and how many days either side of it still count as on
# time. A visit planned only when something happens (early termination, a rash) is conditional:
# it is never due for everyone, so it is left out of due and overdue counts.
class PlannedVisit(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "visit_num", "arm_code"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    visit_num: float  # VISITNUM
    visit: str  # VISIT
    arm_code: str = ""  # TV ARMCD; "" where the visit is planned for every arm
    planned_day: int | None = None  # TV VISITDY
    window_before: int | None = None  # days; None: the window the user sets (default 7)
    window_after: int | None = None
    start_rule: str | None = None  # TVSTRL as given
    is_conditional: bool = False


# The Labs page's figures per load (issue #21; DESIGN.md performance rules): a shift table reads
# every record of a test, and a large study's LB holds millions, so each load decides once per
# subject and measurement what the tables count (``metrics.labs.subject_summaries``), and a view
# sums these rows in SQL. A measurement is the key of ``metrics.labs.MEASUREMENT_KEY``. Rows are
# kept for every subject with a finding; the safety population and the arm are joined when read.
class LabSubjectSummary(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id")
    subject_pk: int  # no foreign key: the rows are rebuilt with the study's subjects
    domain: str  # LB / VS
    test_code: str
    test: str | None = None
    unit: str | None = None
    specimen: str | None = None
    location: str | None = None
    position: str | None = None
    timepoint: str | None = None
    category: str | None = None
    records: int  # the subject's records of the measurement
    with_range: int  # ... of them with a normal range
    # The range shift (None where the subject has no post-baseline value of known class).
    range_baseline: str | None = None  # LOW / NORMAL / HIGH / ABNORMAL / MISSING
    range_worst: str | None = None
    range_baseline_value: float | None = None
    range_worst_value: float | None = None
    range_worst_date: dt.date | None = None
    # Abnormal values: a post-baseline value (or class) at all, and any low / high / graded >= 3.
    post_value: bool = False
    post_low: bool = False
    post_high: bool = False
    post_grade3: bool = False
    post_gradable: bool = False  # a post-baseline record with a CTCAE grade

    __table_args__ = (
        Index("ix_labsubjectsummary_read", "study_id", "domain", "test_code", "subject_pk"),
    )


# The Labs page's counts per measurement, site and arm (of the safety population, by actual arm),
# summed from LabSubjectSummary at load time, and over all sites (``all_sites``, site_pk None):
# the measurement list and the abnormal-values table read a few hundred rows, not half a million.
class LabCount(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    all_sites: bool
    site_pk: int | None = None  # no foreign key: the rows are rebuilt with the study's subjects
    arm: str | None = None
    domain: str
    test_code: str
    test: str | None = None
    unit: str | None = None
    specimen: str | None = None
    location: str | None = None
    position: str | None = None
    timepoint: str | None = None
    category: str | None = None
    records: int
    subjects: int
    with_range: int
    N: int  # subjects with a post-baseline value
    low_n: int
    high_n: int
    grade3_n: int
    gradable_n: int


# The values-by-visit boxes of every measurement for all sites (quartiles do not add up over
# sites, so a site-scoped view counts its own from its values): per arm, and with ``arm`` None for
# all arms pooled (what a blinded viewer sees). ``unscheduled``: the measurement's values at
# unscheduled visits (all arms), left out of the boxes.
class LabBoxStats(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    domain: str
    test_code: str
    unit: str | None = None
    specimen: str | None = None
    location: str | None = None
    position: str | None = None
    timepoint: str | None = None
    arm: str | None = None
    visit: str
    visit_number: float | None = None
    n: int
    lowest: float
    q1: float
    median: float
    q3: float
    highest: float
    unscheduled: int


# The grade shift per subject, measurement and CTCAE term (a test may be graded by two terms:
# hyper- and hypo-): baseline grade ("Grade 0" ... or MISSING) and the worst post-baseline one.
class LabGradeSummary(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id")
    subject_pk: int
    domain: str
    test_code: str
    unit: str | None = None
    specimen: str | None = None
    location: str | None = None
    position: str | None = None
    timepoint: str | None = None
    term: str
    baseline: str
    worst: str
    baseline_value: float | None = None
    worst_value: float | None = None
    worst_date: dt.date | None = None

    __table_args__ = (
        Index("ix_labgradesummary_read", "study_id", "domain", "test_code", "subject_pk"),
    )


# eDISH per subject with an on-treatment ALT, AST or bilirubin record: each peak as a multiple of
# the ULN and its date, and the shortest gap in days from an ALT or AST >= 3 x ULN to a bilirubin
# >= 2 x ULN on or after it (None: no such pair), which answers the time-window variant of Hy's law
# for any window.
class LiverSummary(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    subject_pk: int
    peak_alt_uln: float | None = None
    peak_alt_date: dt.date | None = None
    peak_ast_uln: float | None = None
    peak_ast_date: dt.date | None = None
    peak_bili_uln: float | None = None
    peak_bili_date: dt.date | None = None
    pair_gap_days: int | None = None


# Key risk indicator counts per site, kept for every data cut at load time (dashboard.precomputed):
# the rows are replaced by each load, so a flag's history across cuts (new since cut N, cuts flagged
# in a row, a QTL plotted over cuts) can only be read from what each load counted. ``numerator`` and
# ``denominator`` are None where the KRI's source is absent from that cut (not zero).
class SiteKriCount(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("cut_id", "site_id", "kri"),)
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    cut_id: int = Field(foreign_key="datacut.id", index=True)
    site_id: str  # SITEID
    kri: str  # a metrics.kri definition id (kri0001 ...)
    numerator: float | None = None
    denominator: float | None = None


# A study's quality tolerance limits (ICH E6(R3)): a parameter (metrics.kri QTL id) is over its
# limit when its proportion p > p0 + z sqrt(p0 (1 - p0) / N). A row per change, the latest in force.
class QualityToleranceLimit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    parameter: str = Field(index=True)  # qtl_eligibility / qtl_discontinuation
    p0: float  # the expected proportion
    z: float  # how many standard errors above p0 the limit lies
    set_by: str
    set_at: dt.datetime  # UTC


# An excursion of a QTL: opened when a cut crosses the limit, kept until someone closes it with
# their evaluation and action (who and when kept here and in the audit trail).
class QtlExcursion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: str = Field(foreign_key="study.study_id", index=True)
    parameter: str = Field(index=True)
    cut_id: int = Field(foreign_key="datacut.id", index=True)  # the first cut over the limit
    value: float  # the proportion then
    limit: float  # the limit then
    opened_at: dt.datetime  # UTC
    evaluation: str | None = None  # what was found
    action: str | None = None  # what was done
    evaluated_by: str | None = None
    evaluated_at: dt.datetime | None = None
    closed: bool = Field(default=False, index=True)


# Access (DESIGN.md security model): who may sign in, with which role, which sites of which study,
# and whether by-arm figures of a blinded study may be shown to them.
ROLES = ("admin", "sponsor", "monitor", "investigator")


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    email: str = Field(primary_key=True)  # the signed-in e-mail, lower case
    role: str  # one of ROLES
    unblinded: bool = False
    created_at: dt.datetime  # UTC


# The sites of a study a user may see. No row for a study: every site of it (sponsor, monitor,
# admin); an investigator sees only the studies and sites listed here.
class UserSite(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("email", "study_id", "site_id"),)
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(foreign_key="app_user.email", index=True)
    study_id: str = Field(index=True)  # no foreign key: a grant may precede the study's import
    site_id: str  # SITEID


# The audit trail: append only (nothing in the app updates or deletes it).
# The audit action of every import (a data cut, a registry record, a site table): the app reads
# the latest one to know that a study changed (``queries.studies.latest_import``).
IMPORT_ACTION = "import"


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)  # UTC
    email: str = Field(index=True)  # who; "local" in local mode, "cli" for an unnamed CLI call
    action: str = Field(index=True)  # sign-in / import / export / user-add / user-remove ...
    study_id: str | None = Field(default=None, index=True)
    sites: list[str] | None = Field(default=None, sa_column=Column(JSON))  # the scope in force
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


# Review (issue #20): every review mark and every query message is one row of an append-only log;
# the current state (is this AE reviewed by the medical monitor? is this query answered?) is read
# from the latest rows, never stored apart. Appending only means two reviewers marking the same
# record at once both land, and a record a later cut removes keeps its history (rows are keyed by
# the record's natural key and SITEID, not by a row id the next import replaces).
class ReviewEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_reviewevent_record", "study_id", "entity", "natural_key"),)
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)  # UTC
    email: str = Field(index=True)  # who
    role: str  # the role written as: dashboard.review REVIEW_ROLES, or "site"
    # No foreign keys: the log outlives the rows it names, and goes only with its study (below).
    study_id: str  # indexed first in ix_reviewevent_record
    site_id: str | None = Field(default=None, index=True)  # the record's SITEID when written
    entity: str  # subject / ae / ie / ds
    natural_key: str  # as CutChange.natural_key: USUBJID, USUBJID/AESEQ ...
    kind: str = Field(index=True)  # reviewed / unreviewed / query / answer / close / reopen
    # A mark: the cut the record was last changed in when it was reviewed; a later cut that
    # changes the record makes the mark "changed since review".
    record_cut_id: int | None = None
    thread_id: int | None = Field(default=None, index=True)  # a message: its query's first row
    audience: str | None = None  # a query: site / data-management / medical-monitor
    text: str | None = None
    # Written by a viewer who saw the arms of a blinded study: the text is shown to unblinded
    # viewers only (it may name an arm).
    by_unblinded: bool = False


# A study whose review log is being removed with it (``db.delete_study``): the one case the
# review log's trigger lets rows go. Empty between transactions.
class ReviewPurge(SQLModel, table=True):
    study_id: str = Field(primary_key=True)


# Append-only in the database too, not only by convention: triggers refuse UPDATE and DELETE on
# the audit trail, and UPDATE on the review log, whose rows may be deleted only with their whole
# study (``db.delete_study`` writes the study in ``ReviewPurge`` first). Created with the tables
# by create_all; a migration that creates one of them runs the same statements. (The condition
# reads a table of its own: SQLite checks a trigger's tables when a migration copies a table it
# names, and the study table is copied by migrations that change it.)
def append_only_guards(table: str, dialect: str) -> list[str]:
    """The statements that make ``table`` (auditevent or reviewevent) append-only on ``dialect``."""
    name = "audit trail" if table == "auditevent" else "review log"
    refuse = f"the {name} is append-only"
    # The review log: a row may go only with its study (SQLite: the trigger's WHEN).
    not_purged = "NOT EXISTS (SELECT 1 FROM reviewpurge WHERE reviewpurge.study_id = OLD.study_id)"
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            + (f"WHEN {not_purged} " if table == "reviewevent" and verb == "DELETE" else "")
            + f"BEGIN SELECT RAISE(ABORT, '{refuse}'); END"
            for verb in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        condition = f"TG_OP = 'UPDATE' OR {not_purged}" if table == "reviewevent" else "TRUE"
        return [
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN IF {condition} THEN RAISE EXCEPTION '{refuse}'; END IF; RETURN OLD; END; "
            "$$ LANGUAGE plpgsql",
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
        ]
    return []


def _guard(table: Any, connection: Connection, **_kw: Any) -> None:
    for statement in append_only_guards(table.name, connection.dialect.name):
        connection.execute(text(statement))


for _table in (AuditEvent.__table__, ReviewEvent.__table__):  # type: ignore[attr-defined]
    event.listen(_table, "after_create", _guard)
