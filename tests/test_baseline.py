"""Table 1: statistics against the known CDISC pilot figures and against tableone itself; the query
behind it against pandas; the page through AppTest for the three studies."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from tableone import TableOne  # type: ignore[import-untyped]

from dashboard.db import make_engine
from dashboard.metrics.eligibility import rule_variables
from dashboard.metrics.table_one import (
    CHARACTERISTIC,
    DENOMINATOR_ROW,
    MISSING_ROW,
    P_VALUE,
    STATISTIC,
    TEST,
    Variable,
    column_order,
    counts_from_values,
    default_keys,
    describe_categorical,
    describe_continuous,
    format_p,
    histogram,
    p_value_categorical,
    p_value_continuous,
    smd_categorical,
    smd_continuous,
    table_one,
)
from dashboard.queries.baseline import baseline_catalogue, baseline_values, table_one_counts
from dashboard.queries.screen_failures import criteria_with_rules
from dashboard.results.baseline import SCREEN_FAILURE_COLUMN
from tests.conftest import PROJECT_ROOT

APP = str(PROJECT_ROOT / "dashboard" / "app.py")
ARMS = ("Placebo", "Xanomeline High Dose", "Xanomeline Low Dose")


@pytest.fixture(scope="module")
def pilot_values(pilot_db_url: str) -> pd.DataFrame:
    with Session(make_engine(pilot_db_url)) as session:
        return baseline_values(
            session,
            study_id="CDISCPILOT01",
            scope=None,
            population="enrolled",
            by="arm",
            keys=("AGE", "SEX", "RACE", "VS.WEIGHT", SUPINE_SYSBP, SUPINE_DIABP),
        )


# The pilot measures blood pressure at baseline three times (VSPOS, VSTPT): each is a variable.
SUPINE = "SUPINE, AFTER LYING DOWN FOR 5 MINUTES"
SUPINE_SYSBP, SUPINE_DIABP = f"VS.SYSBP.{SUPINE}", f"VS.DIABP.{SUPINE}"


def test_vital_signs_baseline_by_position_and_time_point(
    pilot_values: pd.DataFrame, shared_data: Path, pilot_db_url: str
) -> None:
    # shared/data/README.md: supine diastolic BP at baseline, mean (SD) by arm, Placebo 75.7 (11.1),
    # High 77.2 (9.8), Low 76.3 (9.8).
    expected = {ARMS[0]: (75.7, 11.1), ARMS[1]: (77.2, 9.8), ARMS[2]: (76.3, 9.8)}
    # Independently, from the file: VSBLFL = Y, VSPOS SUPINE, by DM's planned arm.
    vs = pyreadstat.read_xport(str(shared_data / "sdtm/cdiscpilot01/vs.xpt"))[0]
    dm = pyreadstat.read_xport(str(shared_data / "sdtm/cdiscpilot01/dm.xpt"))[0]
    supine = vs[(vs.VSTESTCD == "DIABP") & (vs.VSBLFL == "Y") & (vs.VSPOS == "SUPINE")]
    assert supine.groupby("USUBJID").size().max() == 1  # one supine record a subject
    by_arm = supine.merge(dm[["USUBJID", "ARM"]], on="USUBJID").groupby("ARM")["VSSTRESN"]
    for arm in ARMS:
        group = pd.to_numeric(pilot_values.loc[pilot_values["column"] == arm, SUPINE_DIABP])
        mine = describe_continuous(histogram(group), subjects=len(group))
        assert mine.mean is not None and mine.sd is not None
        assert (round(mine.mean, 1), round(mine.sd, 1)) == expected[arm]
        assert mine.mean == pytest.approx(by_arm.mean()[arm])
        assert mine.sd == pytest.approx(by_arm.std()[arm])
    # The three measurements stay apart, each labelled; Table 1 opens with them, not with labs.
    with Session(make_engine(pilot_db_url)) as session:
        catalogue = baseline_catalogue(session, study_id="CDISCPILOT01")
    diabp = catalogue[catalogue["key"].str.startswith("VS.DIABP.")]
    assert sorted(diabp["label"]) == [
        "Diastolic Blood Pressure, standing, after standing for 1 minute",
        "Diastolic Blood Pressure, standing, after standing for 3 minutes",
        "Diastolic Blood Pressure, supine, after lying down for 5 minutes",
    ]
    defaults = default_keys(catalogue)
    assert SUPINE_DIABP in defaults
    assert not [k for k in defaults if k.startswith("LB.")]


def test_cdisc_pilot_known_figures(pilot_values: pd.DataFrame) -> None:
    # shared/data/README.md: age mean (SD) by arm Placebo 75.21 (8.59), High 74.38 (7.89),
    # Low 75.67 (8.29); sex F/M 53/33, 40/44, 50/34.
    expected_age = {ARMS[0]: (75.21, 8.59), ARMS[1]: (74.38, 7.89), ARMS[2]: (75.67, 8.29)}
    expected_sex = {ARMS[0]: (53, 33), ARMS[1]: (40, 44), ARMS[2]: (50, 34)}
    for arm in ARMS:
        group = pilot_values[pilot_values["column"] == arm]
        age = describe_continuous(histogram(pd.to_numeric(group["AGE"])), subjects=len(group))
        assert age.mean is not None and age.sd is not None
        assert (round(age.mean, 2), round(age.sd, 2)) == expected_age[arm]
        counts, denominator, missing = describe_categorical(
            histogram(group["SEX"]), ["F", "M"], subjects=len(group)
        )
        assert (counts["F"], counts["M"]) == expected_sex[arm]
        assert denominator == sum(expected_sex[arm]) and missing == 0
    variables = [Variable("AGE", "Age", "years", False), Variable("SEX", "Sex", None, True)]
    table = table_one(counts_from_values(pilot_values, variables), variables, columns=list(ARMS))
    assert list(table.columns[2:6]) == [
        "Placebo (n=86)",
        "Xanomeline High Dose (n=84)",
        "Xanomeline Low Dose (n=84)",
        "Overall (n=254)",
    ]
    first = table.iloc[0]
    assert first["Placebo (n=86)"] == "75.2 (8.6)"
    assert list(table.columns[:2]) == ["Characteristic", "Statistic"]
    female = table[table[STATISTIC] == "F, n (%)"].iloc[0]
    assert female["Placebo (n=86)"] == "53 (61.6%)"


def _tableone(
    values: pd.DataFrame,
    columns: list[str],
    categorical: list[str],
    nonnormal: list[str] | None = None,
) -> pd.DataFrame:
    result: pd.DataFrame = TableOne(
        values.rename(columns={"column": "group"}),
        columns=columns,
        categorical=categorical,
        groupby="group",
        pval=True,
        smd=True,
        htest_name=True,
        nonnormal=nonnormal or [],
    ).tableone
    result.columns = [c[1] for c in result.columns]
    return result


def test_smd_and_p_values_match_tableone(pilot_values: pd.DataFrame) -> None:
    values = pilot_values.assign(
        **{k: pd.to_numeric(pilot_values[k]) for k in ("AGE", "VS.WEIGHT", SUPINE_SYSBP)}
    )
    reference = _tableone(values, ["AGE", "VS.WEIGHT", "SEX", "RACE"], ["SEX", "RACE"])
    groups = {
        arm: {k: histogram(values.loc[values["column"] == arm, k]) for k in values.columns}
        for arm in ARMS
    }
    frames = {arm: values[values["column"] == arm] for arm in ARMS}
    for variable, categorical in (
        ("AGE", False),
        ("VS.WEIGHT", False),
        ("SEX", True),
        ("RACE", True),
    ):
        row = reference[[i[0].startswith(variable) for i in reference.index]].iloc[0]
        levels = sorted(values[variable].dropna().astype(str).unique())
        for a, b in [(ARMS[0], ARMS[1]), (ARMS[0], ARMS[2]), (ARMS[1], ARMS[2])]:
            mine = (
                smd_categorical(groups[a][variable], groups[b][variable], levels)
                if categorical
                else smd_continuous(groups[a][variable], groups[b][variable])
            )
            assert mine is not None
            both = pd.concat([frames[a][variable], frames[b][variable]]).astype(str)
            if categorical and set(levels) - set(both):
                # A level neither column has (RACE: one AMERICAN INDIAN subject, in the third
                # arm) makes the covariance singular; tableone inverts it anyway, from rounded
                # percentages, and gets 0.073 for Placebo vs Low. The SMD over the levels present
                # is the binary one, computed here by hand.
                p1 = (frames[a][variable] == "WHITE").mean()
                p2 = (frames[b][variable] == "WHITE").mean()
                binary = abs(p1 - p2) / np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
                assert mine == pytest.approx(binary), (variable, a, b)
                continue
            assert f"{mine:.3f}" == row[f"SMD ({a},{b})"].strip(), (variable, a, b)
        p, test = (
            p_value_categorical([g[variable] for g in groups.values()], levels)
            if categorical
            else p_value_continuous([g[variable] for g in groups.values()], nonnormal=False)
        )
        assert p is not None
        assert f"{p:.3f}" == row["P-Value"].strip().lstrip("<"), variable
        assert test.split(" ")[0] in row["Test"], (test, row["Test"])


def test_kruskal_wallis_and_two_groups_match_tableone(pilot_values: pd.DataFrame) -> None:
    values = pilot_values.assign(AGE=pd.to_numeric(pilot_values["AGE"]))
    reference = _tableone(values, ["AGE"], [], nonnormal=["AGE"])
    samples = [values.loc[values["column"] == arm, "AGE"] for arm in ARMS]
    p, test = p_value_continuous([histogram(v) for v in samples], nonnormal=True)
    assert test == "Kruskal-Wallis" and "Kruskal" in reference.iloc[1]["Test"]
    assert f"{p:.3f}" == reference.iloc[1]["P-Value"].strip()
    # Two columns: Welch's t-test, and Fisher's exact for a 2 x 2 table with small counts.
    rng = np.random.default_rng(3)
    two = pd.DataFrame(
        {
            "AGE": rng.normal(70, 8, 30),
            "SEX": rng.choice(["F", "M"], 30, p=[0.9, 0.1]),
            "column": rng.choice(["L", "P"], 30),
        }
    )
    reference = _tableone(two, ["AGE", "SEX"], ["SEX"])
    groups = [two[two["column"] == c] for c in ("L", "P")]
    p, test = p_value_continuous([histogram(g["AGE"]) for g in groups], nonnormal=False)
    assert test == "Welch's t-test" and "Welch" in reference.iloc[1]["Test"]
    assert f"{p:.3f}" == reference.iloc[1]["P-Value"].strip()
    p, test = p_value_categorical([histogram(g["SEX"]) for g in groups], ["F", "M"])
    assert test == "Fisher's exact" and reference.iloc[2]["Test"] == "Fisher's exact"
    assert f"{p:.3f}" == reference.iloc[2]["P-Value"].strip()


# Our test names and tableone's for the same test.
TABLEONE_TESTS = {
    "Welch's t-test": "Welch’s T-test",
    "One-way ANOVA": "One-way ANOVA",
    "Kruskal-Wallis": "Kruskal-Wallis",
    "Chi-squared": "Chi-squared",
    "Fisher's exact": "Fisher's exact",
    "Chi-squared (expected count < 5)": "Chi-squared (warning: expected count < 5)",
}


def _tableone_rows(reference: pd.DataFrame, key: str) -> pd.DataFrame:
    """tableone's rows of one variable (its index: "<key>, mean (SD)", "<key>, n (%)", ...)."""
    return reference[[str(i[0]).rsplit(", ", 1)[0] == key for i in reference.index]]


def test_finished_table_one_matches_tableone(pilot_db_url: str) -> None:
    """The pilot's Table 1 as the page builds it (the load-time counts, the default
    characteristics, tests on): every SMD, p-value and test cell equals tableone's on the same
    subjects' values."""
    with Session(make_engine(pilot_db_url)) as session:
        catalogue = baseline_catalogue(session, study_id="CDISCPILOT01")
        keys = tuple(default_keys(catalogue))
        options = {"study_id": "CDISCPILOT01", "scope": None, "population": "enrolled"}
        counts = table_one_counts(session, **options, by="arm", keys=keys)  # type: ignore[arg-type]
        values = baseline_values(session, **options, by="arm", keys=keys)  # type: ignore[arg-type]
    variables = [
        Variable(
            r["key"],
            r["label"],
            r["unit"] if isinstance(r["unit"], str) else None,
            r["categorical"],
        )
        for r in catalogue.set_index("key").loc[list(keys)].reset_index().to_dict("records")
    ]
    categorical = [v.key for v in variables if v.categorical]
    continuous = [v.key for v in variables if not v.categorical]
    assert len(categorical) >= 2 and len(continuous) >= 4, keys
    nonnormal = continuous[1:2]  # one variable tested with Kruskal-Wallis
    for key in continuous:
        values[key] = pd.to_numeric(values[key])
    table = table_one(counts, variables, columns=list(ARMS), nonnormal=nonnormal)
    pairs = [(ARMS[0], ARMS[1]), (ARMS[0], ARMS[2]), (ARMS[1], ARMS[2])]
    assert list(table.columns[6:]) == [*(f"SMD ({a}, {b})" for a, b in pairs), P_VALUE, TEST]
    reference = TableOne(
        values.rename(columns={"column": "group"}),
        columns=list(keys),
        categorical=categorical,
        nonnormal=nonnormal,
        groupby="group",
        pval=True,
        smd=True,
        htest_name=True,
        include_null=False,
    ).tableone
    reference.columns = [c[1] for c in reference.columns]
    starts = table.index[table[CHARACTERISTIC] != ""].tolist()
    assert len(starts) == len(variables)
    ends = [*starts[1:], len(table)]
    for variable, start, end in zip(variables, starts, ends, strict=True):
        mine = table.loc[start]
        theirs = _tableone_rows(reference, variable.key).iloc[0]
        assert mine[CHARACTERISTIC].startswith(variable.label)
        for a, b in pairs:
            cell = mine[f"SMD ({a}, {b})"]
            pair = values[values["column"].isin([a, b])]
            if variable.categorical and set(values[variable.key]) - set(pair[variable.key]):
                # The race caveat (test_smd_and_p_values_match_tableone): a level neither column
                # of the pair has makes tableone's covariance singular. tableone on the pair's
                # subjects alone (the levels they have) is the reference then.
                alone = _tableone(pair, [variable.key], [variable.key])
                expected = alone[f"SMD ({a},{b})"].iloc[1].strip()
            else:
                expected = str(theirs[f"SMD ({a},{b})"]).strip()
            assert cell == expected, (variable.key, a, b)
        assert mine[P_VALUE] == str(theirs["P-Value"]).strip(), variable.key
        assert TABLEONE_TESTS[str(mine[TEST])] == str(theirs["Test"]).strip(), variable.key
        # Only a variable's first row carries its tests.
        rest = table.iloc[start + 1 : end]
        assert len(rest) and (rest[[P_VALUE, TEST]] == "").all().all(), variable.key
    assert table.loc[starts[keys.index(nonnormal[0])], TEST] == "Kruskal-Wallis"


def test_p_values_below_a_thousandth_read_like_tableone() -> None:
    assert format_p(None) == ""
    assert format_p(0.5) == "0.500"
    assert format_p(0.001) == "0.001"
    assert format_p(0.000999) == "<0.001"
    assert format_p(1e-12) == "<0.001"
    rng = np.random.default_rng(5)
    values = pd.DataFrame(
        {
            "column": ["A"] * 40 + ["B"] * 40,
            "X": np.r_[rng.normal(10, 1, 40), rng.normal(20, 1, 40)],
            "SEX": ["F"] * 35 + ["M"] * 5 + ["F"] * 5 + ["M"] * 35,
        }
    )
    variables = [Variable("X", "X", None, False), Variable("SEX", "Sex", None, True)]
    table = table_one(counts_from_values(values, variables), variables, columns=["A", "B"])
    reference = _tableone(values, ["X", "SEX"], ["SEX"])
    firsts = table[table[CHARACTERISTIC] != ""]
    assert firsts[P_VALUE].tolist() == ["<0.001", "<0.001"]
    assert firsts[P_VALUE].tolist() == [
        str(_tableone_rows(reference, k).iloc[0]["P-Value"]).strip() for k in ("X", "SEX")
    ]
    assert "0.000" not in table.to_string()


def test_categorical_denominator_is_stated_as_a_number() -> None:
    rng = np.random.default_rng(8)
    sex = rng.choice(np.array(["F", "M", None], dtype=object), 50, p=[0.5, 0.3, 0.2])
    values = pd.DataFrame({"column": rng.choice(["A", "B"], 50), "SEX": sex, "RACE": "WHITE"})
    variables = [Variable("SEX", "Sex", None, True), Variable("RACE", "Race", None, True)]
    table = table_one(
        counts_from_values(values, variables), variables, columns=["A", "B"], with_tests=False
    )
    size = values["column"].value_counts()
    known = values.dropna(subset=["SEX"])["column"].value_counts()
    females = values[values["SEX"] == "F"]["column"].value_counts()
    sex_rows = table.iloc[: table.index[table[CHARACTERISTIC] == "Race"][0]]
    assert sex_rows[STATISTIC].tolist() == [DENOMINATOR_ROW, "F, n (%)", "M, n (%)", MISSING_ROW]
    assert sex_rows.iloc[0][CHARACTERISTIC] == "Sex"
    by_statistic = sex_rows.set_index(STATISTIC)
    for column in ("A", "B"):
        header = f"{column} (n={size[column]})"
        assert by_statistic.loc[DENOMINATOR_ROW, header] == str(known[column])
        assert by_statistic.loc["F, n (%)", header] == (
            f"{females[column]} ({100 * females[column] / known[column]:.1f}%)"
        )
        assert by_statistic.loc[MISSING_ROW, header] == str(size[column] - known[column])
    overall = f"Overall (n={len(values)})"
    assert by_statistic.loc[DENOMINATOR_ROW, overall] == str(values["SEX"].notna().sum())
    # No value missing: the header's n is the denominator, no extra row.
    assert table[table[CHARACTERISTIC] == "Race"][STATISTIC].tolist() == ["WHITE, n (%)"]


def test_missing_values_get_a_row_and_single_column_has_no_tests() -> None:
    values = pd.DataFrame(
        {
            "usubjid": list("abcd"),
            "column": ["A"] * 4,
            "BMI": [22.0, None, 25.0, 27.0],
            "SEX": ["F", "F", None, "M"],
        }
    )
    variables = [Variable("BMI", "BMI", "kg/m2", False), Variable("SEX", "Sex", None, True)]
    table = table_one(
        counts_from_values(values, variables), variables, columns=["A"], show_range=True
    )
    assert P_VALUE not in table.columns and not any(c.startswith("SMD") for c in table.columns)
    rows = dict(zip(table[STATISTIC], table["A (n=4)"], strict=False))
    assert rows["Min, max"] == "22.0, 27.0"
    missing = table[table[STATISTIC] == MISSING_ROW]["A (n=4)"].tolist()
    assert missing == ["1", "1"]
    # Percentages are over the subjects with a value (F 2 of 3), the denominator stated.
    assert table[table[STATISTIC] == "F, n (%)"]["A (n=4)"].iloc[0] == "2 (66.7%)"
    assert rows[DENOMINATOR_ROW] == "3"


def test_values_query_matches_pandas(session: Session, demo_engine: Engine) -> None:
    screened = baseline_values(
        session,
        study_id="NCT06466850",
        scope=None,
        population="screened",
        by="arm",
        keys=("AGE", "VS.BMI"),
    )
    subjects = pd.read_sql_query(
        "SELECT usubjid, population, age FROM subject WHERE study_id = 'NCT06466850'", demo_engine
    )
    assert len(screened) == len(subjects) == 36
    assert (screened["column"] == SCREEN_FAILURE_COLUMN).sum() == 16
    assert (screened["column"] == "Exosome").sum() == 20
    merged = screened.merge(subjects, on="usubjid")
    assert (merged["AGE"].astype(float) == merged["age"]).all()
    by_site = baseline_values(
        session,
        study_id="DEMO-MULTI",
        scope=("101", "102"),
        population="treated",
        by="site",
        keys=("SEX",),
    )
    treated = pd.read_sql_query(
        "SELECT site.site_id FROM subject s JOIN site ON site.id = s.site_pk WHERE "
        "s.study_id = 'DEMO-MULTI' AND s.population = 'ENROLLED' AND s.first_dose_date IS NOT NULL "
        "AND site.site_id IN ('101', '102')",
        demo_engine,
    )
    assert by_site["column"].value_counts().to_dict() == treated["site_id"].value_counts().to_dict()
    with pytest.raises(ValueError, match="population"):
        baseline_values(
            session,
            study_id="NCT06466850",
            scope=None,
            population="everyone",
            by="arm",
            keys=("AGE",),
        )


def test_catalogue_and_default_selection(session: Session) -> None:
    catalogue = baseline_catalogue(session, study_id="NCT06466850")
    # Exactly the list for this study: age, sex, BMI, K-L grade (each knee), knee-pain
    # duration, pain VAS, WOMAC, haemoglobin. Height and weight are recorded but BMI summarises
    # them: they stay in the picker, out of the default. Race and ethnicity are not recorded.
    # Haemoglobin the only laboratory test: EXCL07 ("HGB < 10 g/dL") reads it. The seed's liver
    # and kidney tests have flagged baselines too, and stay in the picker (they have the Labs page).
    rules = criteria_with_rules(session, study_id="NCT06466850")["rule"]
    tests = rule_variables(rules)
    assert "HGB" in tests and {"LB.ALT", "LB.CREAT"} <= set(catalogue["key"])
    assert "LB.HGB" not in default_keys(catalogue)  # no rule given: no lab test
    assert sorted(default_keys(catalogue, tests)) == sorted(
        [
            "AGE",
            "SEX",
            "VS.BMI",
            "MK.KLGRADE.LEFT KNEE",
            "MK.KLGRADE.RIGHT KNEE",
            "SC.PAINDUR",
            "QS.VASPAIN",
            "QS.WOMACTOT",
            "LB.HGB",
        ]
    )
    assert default_keys(catalogue, tests)[:2] == ["AGE", "SEX"]
    assert {"VS.HEIGHT", "VS.WEIGHT"} <= set(catalogue["key"])
    # Without a BMI, height and weight are defaults like any finding.
    no_bmi = catalogue[catalogue["key"] != "VS.BMI"]
    assert {"VS.HEIGHT", "VS.WEIGHT"} <= set(default_keys(no_bmi))
    assert column_order(["B", "Screen failure", "A"], last=("Screen failure",)) == [
        "A",
        "B",
        "Screen failure",
    ]


@pytest.mark.parametrize(
    ("kind", "study_id"),
    [("demo", "NCT06466850"), ("demo", "DEMO-MULTI"), ("pilot", "CDISCPILOT01")],
)
def test_page_renders_table_one(
    kind: str,
    study_id: str,
    demo_db_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = demo_db_url if kind == "demo" else str(request.getfixturevalue("pilot_db_url"))
    monkeypatch.setenv("DATABASE_URL", url)
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["study"] = study_id
    at.run()
    at.switch_page("../pages/baseline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    enrolled = pd.read_sql_query(
        f"SELECT arm, count(*) AS n FROM subject WHERE study_id = '{study_id}' AND "
        "population = 'ENROLLED' GROUP BY arm",
        make_engine(url),
    )
    for arm, n in zip(enrolled["arm"], enrolled["n"], strict=True):
        assert f"{arm} (n={n})" in table.columns
    # One arm is its own overall: an Overall column only beside two arms or more.
    assert (f"Overall (n={enrolled['n'].sum()})" in table.columns) == (len(enrolled) > 1)
    if len(enrolled) > 1:
        at.checkbox(key="baseline_p").check().run()
        assert not at.exception
        assert P_VALUE in at.dataframe[0].value.columns
    at.selectbox(key="baseline_pop").set_value("screened").run()
    assert not at.exception
    screened = at.dataframe[0].value
    assert any(c.startswith("Overall (n=") for c in screened.columns)
