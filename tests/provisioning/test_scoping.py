"""Scoping filters: every operator, the null rule, AND within a filter and OR between filters."""

from __future__ import annotations

import json
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


GROUPTALK_GROUP = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group"
GROUP = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", GROUPTALK_GROUP], "id": "g1",
         "displayName": "Sales-DE", "externalId": "4711", GROUPTALK_GROUP: {"description": "Field sales"}}


@pytest.mark.parametrize(("attribute", "op", "value", "holds"), [
    ("displayName", Op.EQUALS, "Sales-DE", True),
    ("displayName", Op.NOT_EQUALS, "Sales-DE", False),
    ("displayName", Op.REGEX_MATCH, r"^Sales-", True),
    ("displayName", Op.NOT_REGEX_MATCH, r"^Sales-", False),
    ("displayName", Op.ENDS_WITH, "-DE", True),
    ("displayName", Op.INCLUDES, "les", True),
    ("externalId", Op.GREATER_THAN, "4000", True),
    ("externalId", Op.GREATER_THAN_OR_EQUALS, "4712", False),
    (f"{GROUPTALK_GROUP}:description", Op.EQUALS, "Field sales", True),
    (f"{GROUPTALK_GROUP}:description", Op.IS_NOT_NULL, None, True),
    ("externalId", Op.IS_NULL, None, False),
    ("displayName", Op.IS_TRUE, None, False),
])
def test_group_scoping_filters_read_group_attributes(attribute: str, op: Operator, value: str | None,
                                                     holds: bool) -> None:
    from tenantry.provisioning.config import load_config
    from tenantry.provisioning.paths import read_path

    config = load_config(json.dumps({"group_scoping_filters": [
        [{"attribute": attribute, "operator": op.value, "value": value}]]}))
    assert in_scope(config.group_filters(), lambda p: read_path(GROUP, p)) is holds
    assert in_scope(config.filters(), lambda p: read_path(GROUP, p)) is True   # user filters: none set


def test_a_group_without_the_attribute_is_out_of_a_filter_on_it() -> None:
    from tenantry.provisioning.config import load_config
    from tenantry.provisioning.paths import read_path

    config = load_config(json.dumps({"group_scoping_filters": [
        [{"attribute": f"{GROUPTALK_GROUP}:description", "operator": "INCLUDES", "value": "sales"}]]}))
    bare = {"id": "g2", "displayName": "Bare"}
    assert in_scope(config.group_filters(), lambda p: read_path(bare, p)) is False     # null: false


def test_bad_group_scoping_filters_are_refused_when_saved() -> None:
    from tenantry.provisioning.config import AppConfig, merge_config

    for bad, why in (([[]], "at least one clause"),
                     ([[{"attribute": "displayName", "operator": "LIKE", "value": "x"}]], "unknown scoping operator"),
                     ([[{"attribute": "displayName", "operator": "REGEX MATCH", "value": "("}]], "regular expression")):
        with pytest.raises(Invalid, match=why):
            merge_config(AppConfig(), {"group_scoping_filters": bad})
