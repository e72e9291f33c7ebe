"""A machine-checkable eligibility rule (parsed by ``metrics.eligibility.parse_rule``) and a
criterion to check with it: what the loaders pass to ``queries.screen_failures`` and the metrics
check."""

import operator
from collections.abc import Callable
from dataclasses import dataclass

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
AGE = "AGE"  # the variable of a rule on the subject's age in DM


@dataclass(frozen=True)
class Rule:
    variable: str  # upper case
    op: str  # "between" or one of _OPERATORS
    low: float
    high: float | None = None  # for "between"
    text: str = ""

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the rule (both bounds of "between" included)."""
        if self.op == "between":
            assert self.high is not None
            return self.low <= value <= self.high
        return _OPERATORS[self.op](value, self.low)


@dataclass(frozen=True)
class CheckedCriterion:
    """A criterion with a rule to check: code, category (INCLUSION/EXCLUSION), wording, rule."""

    code: str
    category: str
    text: str
    rule: Rule
