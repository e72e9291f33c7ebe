"""Machine-checkable eligibility rules and the check of enrolled subjects against them.

A rule is stored as text on ``Criterion.rule`` and parsed here by a small grammar, never by
``eval``::

    <VARIABLE> between <low> and <high> [anything after: unit, comment]
    <VARIABLE> <op> <number>            [anything after]      with <op> one of < <= > >= = !=

``VARIABLE`` is a findings test code (``BMI``, ``HGB``, ``KLGRADE``, ``PAINDUR``...) or ``AGE``
(the subject's age in DM). ``between`` includes both bounds: a BMI of exactly 21.5 or 29.5 meets
"BMI between 21.5 and 29.5".

An inclusion criterion is violated by an enrolled subject whose value breaks the rule; an exclusion
criterion is violated when the value meets it (the rule describes who is excluded). Each value is
checked on its own, so a rule on a per-knee finding is checked for each knee.
"""

import math
import re
from collections.abc import Iterable

import pandas as pd

from dashboard.results.eligibility import AGE, CheckedCriterion, Rule

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BETWEEN = re.compile(
    rf"^\s*(?P<variable>[A-Za-z][A-Za-z0-9_]*)\s+between\s+(?P<low>{_NUMBER})\s+and\s+"
    rf"(?P<high>{_NUMBER})(?:\s+.*)?$",
    re.IGNORECASE,
)
_COMPARE = re.compile(
    rf"^\s*(?P<variable>[A-Za-z][A-Za-z0-9_]*)\s*(?P<op><=|>=|!=|<|>|=)\s*(?P<value>{_NUMBER})"
    r"(?:\s+.*)?$"
)


class RuleError(ValueError):
    """Rule text the grammar does not read."""


def parse_rule(text: str) -> Rule:
    """Read one rule; RuleError names what could not be read."""
    between = _BETWEEN.match(text)
    if between:
        low, high = float(between["low"]), float(between["high"])
        if low > high:
            raise RuleError(f"{text!r}: the lower bound is above the upper bound")
        return Rule(between["variable"].upper(), "between", low, high, text)
    compare = _COMPARE.match(text)
    if compare:
        return Rule(compare["variable"].upper(), compare["op"], float(compare["value"]), None, text)
    raise RuleError(
        f"{text!r} is not a rule this app reads ('VAR between A and B' or 'VAR <op> N')"
    )


def rule_variables(rules: Iterable[str]) -> set[str]:
    """The variables (test codes, AGE) the readable rules among ``rules`` check."""
    found = set()
    for text in rules:
        try:
            found.add(parse_rule(text).variable)
        except RuleError:
            continue  # a rule the grammar does not read checks nothing (the page says so)
    return found


def age_rule(min_age: float | None, max_age: float | None) -> Rule | None:
    """The registry's (or TS's) age limits as a rule, where either is known."""
    if min_age is not None and max_age is not None:
        return Rule(AGE, "between", min_age, max_age, f"AGE between {min_age:g} and {max_age:g}")
    if min_age is not None:
        return Rule(AGE, ">=", min_age, None, f"AGE >= {min_age:g}")
    if max_age is not None:
        return Rule(AGE, "<=", max_age, None, f"AGE <= {max_age:g}")
    return None


def is_violation(category: str, rule: Rule, value: float) -> bool:
    """Inclusion: the value breaks the rule. Exclusion: the value meets it."""
    holds = rule.holds(value)
    return holds if category.upper() == "EXCLUSION" else not holds


def check_enrolled(criteria: Iterable[CheckedCriterion], values: pd.DataFrame) -> pd.DataFrame:
    """Possible protocol deviations: enrolled subjects' screening values that break a rule.

    ``values``: one row per value with columns usubjid, variable (test code or AGE), location,
    value_num. Returns columns usubjid, code, category, criterion, rule, variable, location, value;
    one row per violating value, ordered by subject and criterion.
    """
    columns = ["usubjid", "code", "category", "criterion", "rule", "variable", "location", "value"]
    found = []
    for criterion in criteria:
        rows = values[values["variable"].str.upper() == criterion.rule.variable]
        for row in rows.to_dict("records"):
            value = row["value_num"]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if is_violation(criterion.category, criterion.rule, float(value)):
                found.append(
                    {
                        "usubjid": row["usubjid"],
                        "code": criterion.code,
                        "category": criterion.category,
                        "criterion": criterion.text,
                        "rule": criterion.rule.text,
                        "variable": criterion.rule.variable,
                        "location": row["location"],
                        "value": float(value),
                    }
                )
    return (
        pd.DataFrame(found, columns=columns)
        .sort_values(["usubjid", "code", "location"], na_position="first")
        .reset_index(drop=True)
    )


def checked_criteria(
    rules: pd.DataFrame, *, min_age: float | None, max_age: float | None
) -> tuple[list[CheckedCriterion], list[str]]:
    """The criteria to check (each rule parsed) plus the registry's age limits, and the rules that
    could not be read (named, so the page can say which are not checked).

    ``rules``: ``queries.screen_failures.criteria_with_rules`` (code, protocol_version, category,
    text, rule).
    """
    checked: list[CheckedCriterion] = []
    unreadable: list[str] = []
    for row in rules.to_dict("records"):
        code = str(row["code"]) + (
            f" ({row['protocol_version']})" if row["protocol_version"] else ""
        )
        try:
            checked.append(
                CheckedCriterion(
                    code, str(row["category"]), str(row["text"]), parse_rule(str(row["rule"]))
                )
            )
        except RuleError as error:
            unreadable.append(f"{code}: {error}")
    ages = age_rule(min_age, max_age)
    # The age range is an eligibility condition even where it is not a numbered criterion; a
    # numbered age criterion with its own rule is checked as written instead.
    if ages is not None and not any(c.rule.variable == AGE for c in checked):
        checked.append(CheckedCriterion("AGE", "INCLUSION", "Age limits of the registry", ages))
    return checked, unreadable
