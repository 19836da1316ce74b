"""Reading and building SCIM resources by the attribute paths mappings use."""

from __future__ import annotations

import pytest

from tenantry.core.errors import Invalid
from tenantry.protocols.scim.resources import ENTERPRISE_USER, GROUPTALK_USER, TenantryUser
from tenantry.provisioning.mappings import DEFAULT_USER_MAPPINGS, map_object
from tenantry.provisioning.paths import build_resource, read_path

SOURCE = {
    "id": "u-1", "userName": "kim@contoso.com", "active": True, "name": {"givenName": "Minji", "familyName": "Kim"},
    "emails": [{"type": "home", "value": "kim@home.example"}, {"type": "work", "value": "kim@contoso.com"}],
    "phoneNumbers": [{"type": "mobile", "value": "+82 10-1234-5678"}],
    ENTERPRISE_USER: {"costCenter": "CC-1", "organization": "Contoso"},
    GROUPTALK_USER: {"label1": "dispatch"},
}


@pytest.mark.parametrize(("path", "value"), [
    ("userName", "kim@contoso.com"),
    ("USERNAME", "kim@contoso.com"),
    ("name.givenName", "Minji"),
    ('emails[type eq "work"].value', "kim@contoso.com"),
    ('phoneNumbers[type eq "mobile"].value', "+82 10-1234-5678"),
    ('phoneNumbers[type eq "work"].value', None),
    (f"{ENTERPRISE_USER}:costCenter", "CC-1"),
    (f"{GROUPTALK_USER}:label1", "dispatch"),
    (f"{GROUPTALK_USER}:label2", None),
    ("urn:ietf:params:scim:schemas:core:2.0:User:userName", "kim@contoso.com"),
])
def test_read_path(path: str, value: object) -> None:
    assert read_path(SOURCE, path) == value


def test_unsupported_paths_are_refused() -> None:
    with pytest.raises(Invalid):
        read_path(SOURCE, 'emails[value co "x"].value')


def test_default_mappings_build_a_valid_grouptalk_user() -> None:
    values = map_object(DEFAULT_USER_MAPPINGS, lambda p: read_path(SOURCE, p), creating=True)
    resource = build_resource(values)
    assert resource["emails"] == [{"type": "work", "primary": True, "value": "kim@contoso.com"}]
    assert resource["externalId"] == "u-1" and resource[GROUPTALK_USER] == {"label1": "dispatch"}
    assert set(resource["schemas"]) == {"urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER,
                                        GROUPTALK_USER}
    # What we would send is a valid SCIM user by scim2-models' reading of RFC 7643.
    TenantryUser.model_validate(resource)


def test_the_primary_role_path_reads_and_builds_the_primary_entry() -> None:
    """``roles[primary eq "True"].value`` is the target Entra's SingleAppRoleAssignment mappings use."""
    source = {"roles": [{"value": "driver", "primary": False}, {"value": "admin", "primary": True}]}
    assert read_path(source, 'roles[primary eq "True"].value') == "admin"
    assert read_path({"roles": [{"value": "x", "primary": "True"}]}, 'roles[primary eq "True"].value') == "x"
    assert read_path({"roles": [{"value": "x"}]}, 'roles[primary eq "True"].value') is None
    built = build_resource({'roles[primary eq "True"].value': "admin", 'roles[primary eq "True"].display': "A"})
    assert built["roles"] == [{"primary": True, "value": "admin", "display": "A"}]
    TenantryUser.model_validate(built)
