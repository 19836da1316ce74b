"""Attribute mappings: direct, constant, expression; on-create-only; default if null; matching precedence."""

from __future__ import annotations

import pytest

from tenantry.core.errors import Invalid
from tenantry.provisioning.mappings import (
    DEFAULT_USER_MAPPINGS,
    ApplyWhen,
    AttributeMapping,
    MappingType,
    compile_expression,
    map_object,
    matching_order,
)

USER = {"userName": "kim@contoso.com", "name.givenName": "Minji", "name.familyName": "Kim", "department": None,
        "active": True, "country": "KR", "id": "u-1"}


@pytest.mark.parametrize(("expression", "expected"), [
    ('Append([name.givenName], "!")', "Minji!"),
    ('Join(" ", [name.givenName], [name.familyName])', "Minji Kim"),
    ('Join(" ", [name.givenName], [department])', "Minji"),          # missing values are left out
    ("ToLower([userName])", "kim@contoso.com"),
    ("ToUpper([country])", "KR"),
    ('Coalesce([department], "Unassigned")', "Unassigned"),
    ('Switch([country], "Other", "KR", "Korea", "DE", "Germany")', "Korea"),
    ('Switch([active], "no", "True", "yes")', "yes"),
    ('Replace([userName], "@contoso.com", "@grouptalk.example")', "kim@grouptalk.example"),
    ('"a constant"', "a constant"),
    ('Append([department], "x")', None),                               # null in, null out
])
def test_expressions(expression: str, expected: object) -> None:
    assert compile_expression(expression)(USER.get) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("Append([a]", "invalid mapping expression"),
    ("Frobnicate([a])", "unknown function"),
    ("ToLower([a], [b])", "takes 1 arguments"),
])
def test_bad_expressions_are_refused_when_saved(expression: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        AttributeMapping("x", MappingType.EXPRESSION, expression)


def test_on_create_only_and_default_if_null() -> None:
    mappings = [
        AttributeMapping("userName", MappingType.DIRECT, "userName", matching_precedence=1),
        AttributeMapping("title", MappingType.DIRECT, "department", default_if_null="Staff"),
        AttributeMapping("locale", MappingType.CONSTANT, "ko-KR", apply=ApplyWhen.ON_CREATE),
    ]
    assert map_object(mappings, USER.get, creating=True) == {"userName": "kim@contoso.com", "title": "Staff",
                                                            "locale": "ko-KR"}
    # On update: the create-only constant is not sent, and default-if-null applies only on create.
    assert map_object(mappings, USER.get, creating=False) == {"userName": "kim@contoso.com"}


def test_matching_attributes_are_tried_by_precedence() -> None:
    mappings = [AttributeMapping("externalId", MappingType.DIRECT, "id", matching_precedence=2),
                AttributeMapping("userName", MappingType.DIRECT, "userName", matching_precedence=1),
                AttributeMapping("title", MappingType.DIRECT, "department")]
    assert [m.target for m in matching_order(mappings)] == ["userName", "externalId"]
    with pytest.raises(Invalid, match="matching attribute"):
        matching_order(mappings[2:])


def test_default_mappings_produce_the_seed_grouptalk_table() -> None:
    targets = {m.target for m in DEFAULT_USER_MAPPINGS}
    assert {"userName", 'phoneNumbers[type eq "mobile"].value', 'emails[type eq "work"].value', "active",
            "name.givenName", "name.familyName", "externalId",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization"} <= targets
    assert {f"urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label{i}" for i in range(1, 6)} <= targets
    assert [m.target for m in matching_order(DEFAULT_USER_MAPPINGS)] == ["userName"]
