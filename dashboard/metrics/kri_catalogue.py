"""The key risk indicators this dashboard computes: what each counts, over what, and how it is
scored. The table the code reads (queries.site_risk counts them, views.site_risk scores them) and
the README documents.

Ids, thresholds and minimums are gsm's defaults (gsm.core 1.1.3 ``reportingMetrics``) where gsm has
the KRI; the two that gsm lacks (overdue visits, eligibility violations) carry ids of their own,
with thresholds like gsm's for a proportion. Quality tolerance limits (study level) follow gsm.qtl.
"""

from dataclasses import dataclass

from dashboard.metrics.kri import Scoring

AE = "kri0001"
SAE = "kri0002"
DEVIATIONS = "kri0003"
IMPORTANT_DEVIATIONS = "kri0004"
LAB_GRADE_3 = "kri0005"
STUDY_DISCONTINUATION = "kri0006"
TREATMENT_DISCONTINUATION = "kri0007"
SCREEN_FAILURE = "kri0012"
OVERDUE_VISITS = "kri0101"
ELIGIBILITY = "kri0102"


@dataclass(frozen=True)
class KriDefinition:
    id: str
    abbreviation: str
    name: str
    numerator: str  # what is counted, as the table's header says it
    denominator: str
    scoring: Scoring
    source: str  # where the counts come from; named when absent ("no DV domain ...")

    @property
    def per(self) -> str:
        """How the metric reads: "per 1,000 days" for a rate, "%" for a proportion."""
        return "per 1,000 days on study" if self.scoring.kind == "rate" else "%"

    @property
    def scale(self) -> float:
        """The metric's display multiplier (events per 1,000 days; per cent)."""
        return 1000.0 if self.scoring.kind == "rate" else 100.0


def _rate(*thresholds: float) -> Scoring:
    # gsm: rates have a lower side (under-reporting is the signal) and need 30 days of exposure.
    return Scoring("rate", thresholds, min_denominator=30)


KRIS: tuple[KriDefinition, ...] = (
    KriDefinition(
        AE,
        "AE",
        "Adverse event rate",
        "Adverse events",
        "Days on study",
        _rate(-2, -1, 2, 3),
        "AE records of enrolled subjects; days on study from enrollment to leaving or the cut-off",
    ),
    KriDefinition(
        SAE,
        "SAE",
        "Serious adverse event rate",
        "Serious adverse events",
        "Days on study",
        _rate(-2, -1, 2, 3),
        "AE records with AESER Y (or a seriousness criterion) of enrolled subjects",
    ),
    KriDefinition(
        DEVIATIONS,
        "PD",
        "Non-important protocol deviation rate",
        "Non-important deviations",
        "Days on study",
        _rate(-3, -2, 2, 3),
        "DV records not classed important by DVCAT / DVSCAT",
    ),
    KriDefinition(
        IMPORTANT_DEVIATIONS,
        "IPD",
        "Important protocol deviation rate",
        "Important deviations",
        "Days on study",
        _rate(-3, -2, 2, 3),
        "DV records classed important (MAJOR, IMPORTANT, CRITICAL) by DVCAT / DVSCAT",
    ),
    KriDefinition(
        LAB_GRADE_3,
        "LB",
        "Grade 3+ lab abnormality rate",
        "Grade 3+ lab results",
        "Graded lab results",
        Scoring("binary", (2, 3), min_numerator=10),
        "LB results with a toxicity grade (LBTOXGR)",
    ),
    KriDefinition(
        STUDY_DISCONTINUATION,
        "SDSC",
        "Study discontinuation rate",
        "Subjects discontinued from the study",
        "Enrolled subjects",
        Scoring("binary", (2, 3), min_numerator=3),
        "the subjects' status (DS disposition events)",
    ),
    KriDefinition(
        TREATMENT_DISCONTINUATION,
        "TDSC",
        "Treatment discontinuation rate",
        "Subjects discontinued from treatment",
        "Enrolled subjects",
        Scoring("binary", (2, 3), min_numerator=3),
        "DS disposition events in the TREATMENT epoch other than COMPLETED",
    ),
    KriDefinition(
        SCREEN_FAILURE,
        "SF",
        "Screen failure rate",
        "Screen failures",
        "Screened subjects",
        Scoring("binary", (-3, -2, 2, 3), min_denominator=3),
        "the subjects screened (DM) and their screen failures",
    ),
    KriDefinition(
        OVERDUE_VISITS,
        "OVIS",
        "Overdue visit rate",
        "Overdue visits",
        "Visits held or overdue",
        Scoring("binary", (2, 3), min_denominator=10),
        "the planned visit schedule (TV) against the visits held (SV) on the cut-off",
    ),
    KriDefinition(
        ELIGIBILITY,
        "ELIG",
        "Eligibility violation rate",
        "Enrolled subjects breaking a criterion",
        "Enrolled subjects",
        Scoring("binary", (2, 3), min_denominator=3),
        "the machine-checkable eligibility rules against screening values",
    ),
)
BY_ID = {kri.id: kri for kri in KRIS}


@dataclass(frozen=True)
class QtlDefinition:
    id: str
    name: str
    kri: str  # the KRI whose study-wide proportion it watches
    p0: float  # gsm.qtl's default expected proportion
    z: float


QTLS: tuple[QtlDefinition, ...] = (
    QtlDefinition("qtl_eligibility", "Eligibility violations", ELIGIBILITY, 0.03, 3.0),
    QtlDefinition("qtl_discontinuation", "Study discontinuation", STUDY_DISCONTINUATION, 0.07, 3.0),
)
QTL_BY_ID = {qtl.id: qtl for qtl in QTLS}
