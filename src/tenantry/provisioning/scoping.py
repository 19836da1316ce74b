"""Scoping filters: which directory objects an app provisions (Entra's "attribute-based scoping filters").

A filter is a set of clauses that must *all* hold; an object is in scope when *any* filter holds (no filter:
everything is in scope). The operators are Entra's, with its rule that a clause on a missing (null) value is
false — except IS NULL, which is exactly the question. String comparisons are case-sensitive, as Entra's are.
This module is pure: the caller says how to read an attribute of an object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from tenantry.core.errors import Invalid


class Operator(StrEnum):
    EQUALS = "EQUALS"
    NOT_EQUALS = "NOT EQUALS"
    IS_TRUE = "IS TRUE"
    IS_FALSE = "IS FALSE"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"
    REGEX_MATCH = "REGEX MATCH"
    NOT_REGEX_MATCH = "NOT REGEX MATCH"
    GREATER_THAN = "Greater_Than"
    GREATER_THAN_OR_EQUALS = "Greater_Than_OR_EQUALS"
    INCLUDES = "Includes"
    ENDS_WITH = "ENDS_WITH"

    @classmethod
    def parse(cls, name: str) -> Operator:
        """Entra spells them several ways ("NOT EQUALS", "Greater_Than"): compare without case and separators."""
        key = re.sub(r"[\s_]+", "", name).lower()
        for op in cls:
            if re.sub(r"[\s_]+", "", op.value).lower() == key:
                return op
        raise Invalid(f"unknown scoping operator {name!r}; known: {', '.join(o.value for o in cls)}")


_NEEDS_VALUE = {Operator.EQUALS, Operator.NOT_EQUALS, Operator.REGEX_MATCH, Operator.NOT_REGEX_MATCH,
                Operator.GREATER_THAN, Operator.GREATER_THAN_OR_EQUALS, Operator.INCLUDES, Operator.ENDS_WITH}


@dataclass(frozen=True)
class Clause:
    attribute: str
    operator: Operator
    value: str | None = None

    def __post_init__(self) -> None:
        if self.operator in _NEEDS_VALUE and self.value is None:
            raise Invalid(f"{self.operator.value} on {self.attribute} needs a value")
        if self.operator in (Operator.REGEX_MATCH, Operator.NOT_REGEX_MATCH):
            _regex(self.value or "")  # a pattern that cannot compile is refused when the filter is saved
        if self.operator in (Operator.GREATER_THAN, Operator.GREATER_THAN_OR_EQUALS):
            try:
                int(self.value or "")
            except ValueError:
                raise Invalid(f"{self.operator.value} compares whole numbers, not {self.value!r}") from None


@dataclass(frozen=True)
class ScopingFilter:
    clauses: tuple[Clause, ...]


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise Invalid(f"invalid regular expression {pattern!r}: {exc}") from exc


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # how Entra writes booleans it compares as strings
    return str(value)


def clause_holds(clause: Clause, value: Any) -> bool:
    op = clause.operator
    if op is Operator.IS_NULL:
        return value is None or value == ""
    if value is None or value == "":
        return False  # a null value evaluates false, whatever the operator
    if op is Operator.IS_NOT_NULL:
        return True
    if op is Operator.IS_TRUE:
        return value is True or _text(value).lower() == "true"
    if op is Operator.IS_FALSE:
        return value is False or _text(value).lower() == "false"
    expected = clause.value or ""
    if isinstance(value, list):
        # A multi-valued attribute holds when one of its values does (NOT forms: when none does).
        results = [clause_holds(Clause(clause.attribute, _positive(op), expected), v) for v in value]
        return not any(results) if op in (Operator.NOT_EQUALS, Operator.NOT_REGEX_MATCH) else any(results)
    text = _text(value)
    if op is Operator.EQUALS:
        return text == expected
    if op is Operator.NOT_EQUALS:
        return text != expected
    if op is Operator.REGEX_MATCH:
        return _regex(expected).search(text) is not None
    if op is Operator.NOT_REGEX_MATCH:
        return _regex(expected).search(text) is None
    if op is Operator.INCLUDES:
        return expected in text
    if op is Operator.ENDS_WITH:
        return text.endswith(expected)
    try:
        number = int(text)
    except ValueError:
        return False  # not a number: the comparison cannot hold
    if op is Operator.GREATER_THAN:
        return number > int(expected)
    return number >= int(expected)


def _positive(op: Operator) -> Operator:
    return {Operator.NOT_EQUALS: Operator.EQUALS, Operator.NOT_REGEX_MATCH: Operator.REGEX_MATCH}.get(op, op)


def in_scope(filters: Sequence[ScopingFilter], read: Callable[[str], Any]) -> bool:
    """Filters are ORed, clauses within one ANDed; no filter at all means in scope."""
    if not filters:
        return True
    return any(all(clause_holds(c, read(c.attribute)) for c in f.clauses) for f in filters)
