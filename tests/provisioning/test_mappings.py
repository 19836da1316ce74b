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


# -- app roles (issue #10 item 13): Entra's SingleAppRoleAssignment and AppRoleAssignmentsComplex ------------

SINGLE = "SingleAppRoleAssignment([appRoleAssignments])"
COMPLEX = "AppRoleAssignmentsComplex([appRoleAssignments])"


def _grant(value: str | None, display: str, direct: bool = False) -> dict[str, object]:
    return {"id": f"id-{display}", "displayName": display, "value": value, "direct": direct}


def _roles(*grants: dict[str, object]) -> dict[str, object]:
    return {"appRoleAssignments": list(grants)}


def test_single_app_role_assignment_sends_the_one_roles_value_and_its_display_where_asked() -> None:
    user = _roles(_grant("admin", "Administrator", direct=True))
    mappings = [AttributeMapping('roles[primary eq "True"].value', MappingType.EXPRESSION, SINGLE),
                AttributeMapping('roles[primary eq "True"].display', MappingType.EXPRESSION, SINGLE),
                AttributeMapping('roles[primary eq "True"].type', MappingType.EXPRESSION, SINGLE)]
    assert map_object(mappings, user.get, creating=True) == {
        'roles[primary eq "True"].value': "admin", 'roles[primary eq "True"].display': "Administrator",
        'roles[primary eq "True"].type': "WindowsAzureActiveDirectoryRole"}


def test_single_app_role_assignment_picks_the_direct_role_then_the_lowest_value() -> None:
    """Entra picks one of several roles unpredictably; ours is a rule: the role assigned to the user directly,
    else the lowest value (case-insensitive) among the roles reached through groups."""
    pick = compile_expression(SINGLE)
    through_groups = [_grant("Zulu", "Z"), _grant("alpha", "A"), _grant("Bravo", "B")]
    assert pick(_roles(*through_groups).get) == "alpha"
    assert pick(_roles(*through_groups, _grant("zulu-direct", "ZD", direct=True)).get) == "zulu-direct"
    assert pick(_roles().get) is None                                   # no role: nothing sent


def test_a_role_without_a_value_is_sent_by_its_display_name() -> None:
    """Entra's built-in User role has no value; sending nothing would make the mapping useless."""
    assert compile_expression(SINGLE)(_roles(_grant(None, "User", direct=True)).get) == "User"


def test_app_role_assignments_complex_sends_every_role_in_entras_shape() -> None:
    user = _roles(_grant("driver", "Driver"), _grant("admin", "Administrator", direct=True))
    assert compile_expression(COMPLEX)(user.get) == [
        {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": "Administrator", "value": "admin"},
        {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "display": "Driver", "value": "driver"}]
    assert compile_expression(COMPLEX)(_roles().get) is None


def test_role_functions_nest_in_other_expressions() -> None:
    user = _roles(_grant("admin", "Administrator", direct=True))
    assert compile_expression(f'Switch({SINGLE}, "member", "admin", "owner")')(user.get) == "owner"
    assert compile_expression(f"ToUpper({SINGLE})")(user.get) == "ADMIN"


@pytest.mark.parametrize(("expression", "message"), [
    ("SingleAppRoleAssignment([userName])", r"takes \[appRoleAssignments\]"),
    ('AppRoleAssignmentsComplex("admin")', r"takes \[appRoleAssignments\]"),
    ("SingleAppRoleAssignment()", "takes 1 arguments"),
])
def test_role_functions_take_the_app_role_assignments_only(expression: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        AttributeMapping("roles", MappingType.EXPRESSION, expression)


def test_app_role_assignments_are_not_mapped_directly() -> None:
    from tenantry.provisioning.config import AppConfig, MappingIn, merge_config

    mappings = [MappingIn.of(m) for m in DEFAULT_USER_MAPPINGS]
    with pytest.raises(Invalid, match=r"through an expression: SingleAppRoleAssignment\(.*AppRoleAssignmentsComplex\("):
        merge_config(AppConfig(), {"user_mappings": [*[m.model_dump() for m in mappings],
                                                     {"target": "roles", "source": "appRoleAssignments"}]})
    with pytest.raises(Invalid, match="same target attribute"):     # roles and roles[…] both write roles
        merge_config(AppConfig(), {"user_mappings": [
            *[m.model_dump() for m in mappings],
            {"target": "roles", "type": "expression", "source": COMPLEX},
            {"target": 'roles[primary eq "True"].value', "type": "expression", "source": SINGLE}]})
