"""Key risk indicators: gsm's reference output reproduced, the flag bands, the methods beyond gsm
on simulated sites with a planted outlier, `study-monitor kri score`, and every KRI's counts on
the CDISC pilot against an independent pandas count."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from dashboard.cli import app
from dashboard.db import make_engine
from dashboard.metrics import kri_catalogue as k
from dashboard.metrics.kri import Scoring, flag_scores, funnel_bounds, score_groups
from dashboard.views.context import ViewContext
from dashboard.views.site_risk import build_site_risk
from tests.conftest import reference_absent
from tests.reference import SHARED_DATA

GSM = SHARED_DATA / "kri" / "gsm"
PILOT = SHARED_DATA / "sdtm" / "cdiscpilot01"
AE_RATE = Scoring("rate", (-2, -1, 2, 3), min_denominator=30)


def _gsm(name: str) -> pd.DataFrame:
    path = GSM / name
    if not path.is_file():
        reference_absent(f"gsm reference file {path} is absent")
    return pd.read_csv(path, dtype={"GroupID": str})


def _as_counts(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(
        columns={"GroupID": "group", "Numerator": "numerator", "Denominator": "denominator"}
    )[["group", "numerator", "denominator"]]


@pytest.mark.parametrize("level", ["", "_country"])
def test_gsm_reference_output_is_reproduced(level: str) -> None:
    expected = _gsm(f"analyticsSummary{level}.csv").set_index("GroupID")
    scored = score_groups(_as_counts(_gsm(f"analyticsInput{level}.csv")), AE_RATE)
    scored = scored.set_index("group").loc[expected.index]
    assert len(scored) == len(expected)
    assert (scored["numerator"] == expected["Numerator"]).all()
    assert (scored["denominator"] == expected["Denominator"]).all()
    assert np.allclose(scored["metric"], expected["Metric"], rtol=0, atol=1e-9)
    # The unscored sites are the same ones, and every score and flag agrees.
    assert (scored["score"].isna() == expected["Score"].isna()).all()
    has = expected["Score"].notna()
    assert np.abs(scored.loc[has, "score"] - expected.loc[has, "Score"]).max() < 1e-9
    assert (scored["flag"].isna() == expected["Flag"].isna()).all()
    assert (scored.loc[has, "flag"].astype(int) == expected.loc[has, "Flag"].astype(int)).all()


def test_gsm_reference_figures_of_its_readme() -> None:
    scored = score_groups(_as_counts(_gsm("analyticsInput.csv")), AE_RATE)
    assert len(scored) == 145
    assert scored["score"].isna().sum() == 20
    assert scored["flag"].value_counts().to_dict() == {0: 101, -1: 21, 1: 3}
    unscored = scored[scored["score"].isna()]
    assert unscored["denominator"].between(10, 29).all()


def test_flag_bands_as_gsm_with_four_and_two_thresholds() -> None:
    scores = pd.Series([-3.5, -2.0, -1.5, -1.0, 0.0, 1.99, 2.0, 2.5, 3.0, 7.0, np.nan])
    four = flag_scores(scores, (-2, -1, 2, 3)).tolist()
    assert four == [-2, -1, -1, 0, 0, 0, 1, 1, 2, 2, pd.NA]
    two = flag_scores(scores, (2, 3)).tolist()
    assert two == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, pd.NA]


def test_binary_variance_and_minimum_numerator() -> None:
    counts = pd.DataFrame(
        {"group": list("ABCD"), "numerator": [2, 10, 12, 30], "denominator": [40, 100, 120, 100]}
    )
    scored = score_groups(counts, Scoring("binary", (2, 3), min_numerator=3)).set_index("group")
    mu = 54 / 360
    m = counts["numerator"] / counts["denominator"]
    z0 = (m - mu) / np.sqrt(mu * (1 - mu) / counts["denominator"])
    phi = float((z0**2).mean())
    expected = (z0 / np.sqrt(phi)).to_numpy()
    assert scored["score"].isna().tolist() == [True, False, False, False]  # A: under 3 events
    assert np.allclose(scored["score"].to_numpy()[1:], expected[1:], atol=1e-12)


def test_one_site_is_not_scored() -> None:
    counts = pd.DataFrame({"group": ["01"], "numerator": [5], "denominator": [300]})
    scored = score_groups(counts, AE_RATE)
    assert scored["score"].isna().all() and scored["flag"].isna().all()


def test_funnel_bounds_are_where_a_site_would_score_the_threshold() -> None:
    counts = _as_counts(_gsm("analyticsInput.csv"))
    bounds = funnel_bounds(counts, AE_RATE, [100.0, 400.0])
    summed = counts.groupby("group").sum()
    mu = summed["numerator"].sum() / summed["denominator"].sum()
    phi = 1.2215632
    upper = bounds[(bounds["threshold"] == 3) & (bounds["denominator"] == 400.0)]["metric"]
    assert upper.iloc[0] == pytest.approx(mu + 3 * np.sqrt(phi * mu / 400), rel=1e-6)


# -- beyond gsm: a planted outlier -------------------------------------------------------------


def _sites_with_outlier(
    rng: np.random.Generator, *, sites: int, days: float, ratio: float
) -> pd.DataFrame:
    """``sites`` sites with ``days`` of exposure each, AEs Poisson at 0.05 a day, the first one
    at ``ratio`` times that rate."""
    rate = np.full(sites, 0.05)
    rate[0] *= ratio
    return pd.DataFrame(
        {
            "group": [f"S{i:03}" for i in range(sites)],
            "numerator": rng.poisson(rate * days).astype(float),
            "denominator": np.full(sites, days),
        }
    )


def _found(counts: pd.DataFrame, method: str) -> tuple[bool, int]:
    """(the planted site has a red high flag, how many other sites do)."""
    scoring = Scoring("rate", (-3, -2, 2, 3), method=method)  # type: ignore[arg-type]
    flags = score_groups(counts, scoring).set_index("group")["flag"].fillna(0)
    return bool(flags.iloc[0] == 2), int((flags.iloc[1:].abs() == 2).sum())


def test_one_extreme_site_hides_itself_from_gsm_but_not_from_robust_or_exact() -> None:
    # With N sites and only one off, gsm's phi = mean(z0^2) grows with the outlier's own z0, and
    # its adjusted score can never pass sqrt(N): with 6 sites, never red. Spiegelhalter's
    # winsorised phi does not let it.
    rng = np.random.default_rng(16)
    counts = _sites_with_outlier(rng, sites=6, days=2000, ratio=3.0)
    assert _found(counts, "gsm")[0] is False
    assert _found(counts, "robust")[0] is True
    assert _found(counts, "exact")[0] is True
    gsm_score = score_groups(counts, Scoring("rate", (-3, -2, 2, 3))).iloc[0]["score"]
    assert gsm_score < np.sqrt(6)


def test_which_method_finds_a_doubled_rate_at_what_site_size() -> None:
    # 30 sites, one at twice the AE rate (0.05 a day), 60 simulated studies per site size: how
    # often each method flags it red, and how often a site that is not different. Seen on 100
    # studies per size: red on the planted site at 60 days gsm 9%, robust 13%, exact 6%; at 200
    # days 38 / 44 / 33%; at 600 days 90 / 94 / 93%; at 2,000 days 100% for all three.
    rng = np.random.default_rng(2005)
    reps, sizes = 60, (60, 600, 2000)
    found: dict[tuple[str, int], float] = {}
    false: dict[str, int] = {"gsm": 0, "robust": 0, "exact": 0}
    for days in sizes:
        hits = {"gsm": 0, "robust": 0, "exact": 0}
        for _ in range(reps):
            counts = _sites_with_outlier(rng, sites=30, days=days, ratio=2.0)
            for method in hits:
                hit, others = _found(counts, method)
                hits[method] += hit
                false[method] += others
        for method, n in hits.items():
            found[(method, days)] = n / reps
    for method in ("gsm", "robust", "exact"):
        # Bigger sites are found more often by every method: a small one (6 expected events
        # against 3) rarely, a big one (100 expected against 200) always.
        assert found[(method, 60)] < found[(method, 600)] < found[(method, 2000)]
        assert found[(method, 60)] < 0.3
        assert found[(method, 2000)] > 0.95
    # The robust phi is not inflated by the planted site: it finds it at least as often as gsm.
    for days in sizes:
        assert found[("robust", days)] >= found[("gsm", days)]
    # Red flags on sites that are not different stay rare (of 3 x 60 x 29 sites checked).
    assert all(n / (len(sizes) * reps * 29) < 0.01 for n in false.values())


# -- study-monitor kri score ---------------------------------------------------------------------


def _kri_score(*args: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "kri", "score", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_kri_score_prints_gsm_reference_as_the_contract_says() -> None:
    path = GSM / "analyticsInput.csv"
    _gsm("analyticsInput.csv")
    done = _kri_score(
        str(path),
        "--type",
        "rate",
        "--thresholds",
        "-2,-1,2,3",
        "--min-denominator",
        "30",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    expected = _gsm("analyticsSummary.csv").set_index("GroupID")
    assert len(found) == len(expected)
    for row in found:
        assert set(row) == {"group", "numerator", "denominator", "metric", "score", "flag"}
        want = expected.loc[row["group"]]
        assert row["numerator"] == want["Numerator"] and row["denominator"] == want["Denominator"]
        if pd.isna(want["Score"]):
            assert row["score"] is None and row["flag"] is None
        else:
            assert abs(row["score"] - want["Score"]) < 1e-9
            assert row["flag"] == int(want["Flag"])


def test_kri_score_sums_rows_per_group_and_scores_a_proportion(tmp_path: Path) -> None:
    path = tmp_path / "sf.csv"
    pd.DataFrame(
        {
            "GroupID": ["A", "A", "B", "C", "D"],
            "Numerator": [1, 1, 5, 9, 3],
            "Denominator": [5, 5, 20, 12, 15],
        }
    ).to_csv(path, index=False)
    done = _kri_score(str(path), "--type", "binary", "--thresholds", "2,3", "--json")
    assert done.returncode == 0, done.stderr
    found = {row["group"]: row for row in json.loads(done.stdout)}
    assert found["A"]["numerator"] == 2 and found["A"]["denominator"] == 10
    expected = score_groups(
        pd.DataFrame(
            {"group": list("ABCD"), "numerator": [2, 5, 9, 3], "denominator": [10, 20, 12, 15]}
        ),
        Scoring("binary", (2, 3)),
    ).set_index("group")
    for group, row in found.items():
        assert abs(row["score"] - expected.loc[group, "score"]) < 1e-12
        assert row["flag"] == int(expected.loc[group, "flag"])


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, ("--type", "rate"), "no such file"),
        ("GroupID,Numerator\nA,1\n", ("--type", "rate"), "column Denominator is missing"),
        ("GroupID,Numerator,Denominator\nA,1,10\nB,x,10\n", ("--type", "rate"), "line 3"),
        ("GroupID,Numerator,Denominator\nA,-1,10\n", ("--type", "rate"), "zero or more"),
        ("GroupID,Numerator,Denominator\n", ("--type", "rate"), "no rows"),
        (
            "GroupID,Numerator,Denominator\nA,1,10\n",
            ("--type", "rate", "--thresholds", "3,2"),
            "ascending",
        ),
        (
            "GroupID,Numerator,Denominator\nA,1,10\n",
            ("--type", "rate", "--thresholds", "a,b"),
            "numbers",
        ),
        ("GroupID,Numerator,Denominator\nA,1,10\n", ("--type", "count"), "count"),
    ],
)
def test_kri_score_bad_input_exits_2_with_a_message(
    tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "input.csv"
    if content is not None:
        path.write_text(content)
    done = CliRunner().invoke(app, ["kri", "score", str(path), *args, "--json"])
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)


# -- the CDISC pilot: every KRI's counts against pandas ----------------------------------------


def _xpt(name: str) -> pd.DataFrame:
    frame, _ = pyreadstat.read_xport(str(PILOT / f"{name}.xpt"))
    return frame


def test_pilot_kri_counts_equal_an_independent_pandas_count(pilot_db_url: str) -> None:
    engine = make_engine(pilot_db_url)
    with Session(engine) as session:
        view = build_site_risk(session, ViewContext("CDISCPILOT01"))
    engine.dispose()
    got = view.scores.set_index(["site_id", "kri"])
    dm, ae, ds = _xpt("dm"), _xpt("ae"), _xpt("ds")
    dm["site"] = dm["SITEID"].astype(str)
    enrolled = dm[dm["ARMCD"] != "Scrnfail"]
    sites = sorted(dm["site"].unique())

    def check(kri: str, numerator: pd.Series, denominator: pd.Series) -> None:
        for site in sites:
            row = got.loc[(site, kri)]
            assert row["numerator"] == numerator.get(site, 0), (kri, site)
            assert row["denominator"] == denominator.get(site, 0), (kri, site)

    # Screen failures of screened.
    check(
        k.SCREEN_FAILURE,
        dm[dm["ARMCD"] == "Scrnfail"].groupby("site").size(),
        dm.groupby("site").size(),
    )
    # Disposition events after screening: the latest decides completion.
    events = ds[(ds["DSCAT"] == "DISPOSITION EVENT") & (ds["EPOCH"] != "SCREENING")].copy()
    events = events.merge(enrolled[["USUBJID", "site", "RFSTDTC"]], on="USUBJID")
    events["date"] = pd.to_datetime(events["DSSTDTC"].str[:10])
    last = events.sort_values("date").groupby("USUBJID").tail(1)
    discontinued = last[last["DSDECOD"] != "COMPLETED"]
    n_enrolled = enrolled.groupby("site").size()
    check(k.STUDY_DISCONTINUATION, discontinued.groupby("site").size(), n_enrolled)
    in_treatment = events[(events["EPOCH"] == "TREATMENT") & (events["DSDECOD"] != "COMPLETED")]
    check(
        k.TREATMENT_DISCONTINUATION,
        in_treatment.groupby("site")["USUBJID"].nunique(),
        n_enrolled,
    )
    # Days on study: RFSTDTC to the day the subject left (every pilot subject has), both counted,
    # capped at the cut-off (TS DCUTDTC 2015-03-31).
    left = last.set_index("USUBJID")["date"]
    start = pd.to_datetime(enrolled.set_index("USUBJID")["RFSTDTC"].str[:10])
    end = left.reindex(start.index).fillna(pd.Timestamp("2015-03-31"))
    end = end.where(end <= pd.Timestamp("2015-03-31"), pd.Timestamp("2015-03-31"))
    days = ((end - start).dt.days + 1).groupby(enrolled.set_index("USUBJID")["site"]).sum()
    ae_enrolled = ae.merge(enrolled[["USUBJID", "site"]], on="USUBJID")
    check(k.AE, ae_enrolled.groupby("site").size(), days)
    check(k.SAE, ae_enrolled[ae_enrolled["AESER"] == "Y"].groupby("site").size(), days)
    # Overdue visits: by the 2015-03-31 cut-off every pilot subject had left, so none is overdue
    # and the denominator is the planned visits held: SV rows of enrolled subjects at a TV visit
    # with a planned day that is not conditional ("If ..." / "When ..." in TVSTRL).
    tv, sv = _xpt("tv"), _xpt("sv")
    planned = tv[tv["VISITDY"].notna() & ~tv["TVSTRL"].str.match(r"(?i)\s*(if|when)\b")]
    held = sv.merge(planned[["VISITNUM"]].drop_duplicates(), on="VISITNUM")
    held = held.merge(enrolled[["USUBJID", "site"]], on="USUBJID")
    held = held.drop_duplicates(["USUBJID", "VISITNUM"])
    check(k.OVERDUE_VISITS, pd.Series(dtype=float), held.groupby("site").size())
    # Eligibility: the registry's age limit (TS AGEMIN P50Y) is the one checkable rule here.
    check(k.ELIGIBILITY, enrolled[enrolled["AGE"] < 50].groupby("site").size(), n_enrolled)
    assert ae_enrolled.shape[0] == 961 and int(days.sum()) == int(
        got.xs(k.AE, level="kri")["denominator"].sum()
    )
    # No DV and no LBTOXGR in the pilot: those KRIs say so, and are not zeros.
    absent = {s.definition.id: s.absent for s in view.kris}
    assert "DV" in str(absent[k.DEVIATIONS])
    assert "LBTOXGR" in str(absent[k.LAB_GRADE_3])
    assert k.DEVIATIONS not in set(view.scores["kri"])


def test_pilot_discontinuation_crosses_the_qtl(pilot_db_url: str) -> None:
    engine = make_engine(pilot_db_url)
    with Session(engine) as session:
        view = build_site_risk(session, ViewContext("CDISCPILOT01"))
    engine.dispose()
    qtl = {q.definition.id: q for q in view.qtls}["qtl_discontinuation"]
    latest = qtl.latest
    assert latest is not None
    # 144 of the 254 randomized did not complete; limit 0.07 + 3 sqrt(0.07 x 0.93 / 254).
    assert (latest["numerator"], latest["denominator"]) == (144, 254)
    assert latest["limit"] == pytest.approx(0.07 + 3 * np.sqrt(0.07 * 0.93 / 254))
    assert qtl.over
    # The load opened its excursion record.
    assert (view.excursions["parameter"] == "qtl_discontinuation").sum() == 1


def test_site_risk_score_as_gsm_weighs_flags() -> None:
    from dashboard.metrics.kri import site_risk_scores

    flags = pd.DataFrame(
        {"AE": [2, -1, 0, None], "SF": [1, None, 0, None], "PD": [-2, 0, 0, None]},
        index=["A", "B", "C", "D"],
    )
    scores = site_risk_scores(flags)
    # A: (2 + 1 + 2) of 3 KRIs x 2; B: 1 of 2 x 2; C: nothing flagged; D: no KRI scored.
    assert scores["A"] == pytest.approx(100 * 5 / 6)
    assert scores["B"] == pytest.approx(25.0)
    assert scores["C"] == 0.0 and pd.isna(scores["D"])


def test_qtl_by_cut_judges_each_cut_against_its_own_limit() -> None:
    from dashboard.metrics.kri import qtl_by_cut

    totals = pd.DataFrame(
        {"cut_id": [1, 2, 3], "numerator": [3.0, 10.0, 0.0], "denominator": [100.0, 100.0, 0.0]}
    )
    judged = qtl_by_cut(totals, 0.07, 3.0)
    # By hand: limit = .07 + 3 sqrt(.07 x .93 / 100) = .07 + 3 x .025515 = .146544; cut 3 has no
    # units and is left out.
    assert judged["cut_id"].tolist() == [1, 2]
    assert judged["proportion"].tolist() == [0.03, 0.10]
    assert judged["limit"].round(6).tolist() == [0.146544, 0.146544]
    assert judged["over"].tolist() == [False, False]
    assert qtl_by_cut(totals, 0.03, 1.0)["over"].tolist() == [False, True]
