"""Scoping filters: every operator, the null rule, AND within a filter and OR between filters."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.core.errors import Invalid
from tenantry.provisioning.scoping import Clause, Operator, ScopingFilter, clause_holds, in_scope

Op = Operator


@pytest.mark.parametrize(("op", "expected", "value", "holds"), [
    (Op.EQUALS, "Sales", "Sales", True),
    (Op.EQUALS, "Sales", "sales", False),            # case-sensitive, as Entra's
    (Op.NOT_EQUALS, "Sales", "Marketing", True),
    (Op.NOT_EQUALS, "Sales", "Sales", False),
    (Op.IS_TRUE, None, True, True),
    (Op.IS_TRUE, None, "True", True),                 # Entra's boolean strings
    (Op.IS_TRUE, None, False, False),
    (Op.IS_FALSE, None, "False", True),
    (Op.IS_FALSE, None, True, False),
    (Op.IS_NULL, None, None, True),
    (Op.IS_NULL, None, "", True),
    (Op.IS_NULL, None, "x", False),
    (Op.IS_NOT_NULL, None, "x", True),
    (Op.IS_NOT_NULL, None, None, False),
    (Op.REGEX_MATCH, r"^\+49", "+491701234567", True),
    (Op.REGEX_MATCH, r"^\+49", "+331234", False),
    (Op.NOT_REGEX_MATCH, r"^\+49", "+331234", True),
    (Op.GREATER_THAN, "100", "101", True),
    (Op.GREATER_THAN, "100", "100", False),
    (Op.GREATER_THAN, "100", "abc", False),           # not a number: cannot hold
    (Op.GREATER_THAN_OR_EQUALS, "100", "100", True),
    (Op.INCLUDES, "ops", "devops-team", True),
    (Op.INCLUDES, "OPS", "devops-team", False),
    (Op.ENDS_WITH, "@contoso.com", "kim@contoso.com", True),
    (Op.ENDS_WITH, "@contoso.com", "kim@fabrikam.com", False),
])
def test_each_operator(op: Operator, expected: str | None, value: Any, holds: bool) -> None:
    assert clause_holds(Clause("a", op, expected), value) is holds


@pytest.mark.parametrize("op", [o for o in Operator if o is not Operator.IS_NULL])
def test_a_null_value_evaluates_false_for_every_operator_but_is_null(op: Operator) -> None:
    value = "0" if op in (Op.GREATER_THAN, Op.GREATER_THAN_OR_EQUALS) else "x"
    assert clause_holds(Clause("a", op, value), None) is False


def test_clauses_are_anded_and_filters_ored() -> None:
    sales_de = ScopingFilter((Clause("department", Op.EQUALS, "Sales"), Clause("country", Op.EQUALS, "DE")))
    admins = ScopingFilter((Clause("title", Op.INCLUDES, "Admin"),))
    user = {"department": "Sales", "country": "FR", "title": "IT Admin"}
    assert in_scope([sales_de, admins], user.get) is True      # the second filter holds
    assert in_scope([sales_de], user.get) is False              # one clause fails
    assert in_scope([], user.get) is True                       # no filter: everything


def test_multi_valued_attributes_hold_when_one_value_does() -> None:
    assert clause_holds(Clause("emails", Op.ENDS_WITH, "@contoso.com"), ["a@x.com", "b@contoso.com"])
    assert not clause_holds(Clause("emails", Op.NOT_EQUALS, "b@contoso.com"), ["a@x.com", "b@contoso.com"])


def test_operator_names_are_read_as_entra_spells_them() -> None:
    assert Operator.parse("not equals") is Op.NOT_EQUALS
    assert Operator.parse("GREATER_THAN_OR_EQUALS") is Op.GREATER_THAN_OR_EQUALS
    assert Operator.parse("ends with") is Op.ENDS_WITH
    with pytest.raises(Invalid, match="unknown scoping operator"):
        Operator.parse("LIKE")


def test_bad_clauses_are_refused_when_saved() -> None:
    with pytest.raises(Invalid, match="needs a value"):
        Clause("a", Op.EQUALS)
    with pytest.raises(Invalid, match="regular expression"):
        Clause("a", Op.REGEX_MATCH, "(")
    with pytest.raises(Invalid, match="whole numbers"):
        Clause("a", Op.GREATER_THAN, "ten")
