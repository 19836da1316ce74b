"""The simple PATCH (protocols.scim.simple_patch) gives what scim2-models' PatchOp gives, or steps aside.

Each single-valued string or boolean attribute of the User schemas is set both ways on the same stored resource,
and the documents (and whether anything changed) must be equal; every shape the simple path does not handle
must be left to the general one (None).
"""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context

from tenantry.directory.scim_repositories import dump
from tenantry.protocols.scim.normalize import PATCH_OP, normalize_patch
from tenantry.protocols.scim.resources import ENTERPRISE_USER, GROUPTALK_USER, POLICY, TenantryUser, patch_op
from tenantry.protocols.scim.simple_patch import _targets, apply_simple_patch, read_simple_patch

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
STORED = dump(TenantryUser.model_validate({
    "schemas": [CORE, ENTERPRISE_USER, GROUPTALK_USER],
    "userName": "kim.minji@contoso.com", "externalId": "e-1001", "displayName": "Minji Kim", "nickName": "mj",
    "title": "Engineer", "userType": "Employee", "preferredLanguage": "ko-KR", "locale": "ko-KR",
    "timezone": "Asia/Seoul", "active": True,
    "name": {"givenName": "Minji", "familyName": "Kim", "formatted": "Minji Kim", "middleName": "M",
             "honorificPrefix": "Ms", "honorificSuffix": "III"},
    "emails": [{"type": "work", "value": "kim.minji@contoso.com", "primary": True}],
    "phoneNumbers": [{"type": "mobile", "value": "+82 10-1234-5678"}],
    ENTERPRISE_USER: {"employeeNumber": "7", "costCenter": "CC-42", "organization": "Contoso", "division": "D",
                      "department": "Sales"},
    GROUPTALK_USER: {f"label{i}": f"value {i}" for i in range(1, 6)},
}, scim_ctx=Context.RESOURCE_CREATION_REQUEST, scim_policy=POLICY))


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return normalize_patch({"schemas": [PATCH_OP], "Operations": list(ops)})


def general(doc: dict[str, Any], payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """What the store's general path makes of a PATCH: scim2-models' PatchOp on the validated resource."""
    model = TenantryUser.model_validate(doc)
    ops = patch_op("User").model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY)
    changed = ops.patch(model, POLICY)
    return dump(model), changed


def simple(doc: dict[str, Any], payload: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    ops = read_simple_patch("User", payload)
    assert ops is not None, payload
    return apply_simple_patch(doc, ops)


def new_value(current: Any) -> Any:
    return (not current) if isinstance(current, bool) else f"{current}-changed"


@pytest.mark.parametrize("path", sorted(_targets("User")))
def test_every_simple_attribute_set_gives_the_document_scim2_models_gives(path: str) -> None:
    parent, key, _kind, _schema = _targets("User")[path]
    holder: Any = STORED
    for step in parent:
        holder = holder[step]
    if key not in holder:
        pytest.skip(f"{key} is not in the sample resource")
    for verb in ("replace", "Add"):
        payload = body({"op": verb, "path": path.upper() if "urn:" not in path else path,
                        "value": new_value(holder[key])})
        assert simple(STORED, payload) == general(STORED, payload)


def test_setting_the_value_a_resource_holds_changes_nothing_either_way() -> None:
    payload = body({"op": "replace", "path": "name.givenName", "value": "Minji"},
                   {"op": "replace", "path": "active", "value": True})
    assert simple(STORED, payload) == general(STORED, payload) == (STORED, False)


def test_several_operations_apply_in_order_as_scim2_models_applies_them() -> None:
    payload = body({"op": "replace", "path": "title", "value": "Lead"},
                   {"op": "replace", "path": f"{ENTERPRISE_USER}:costCenter", "value": "CC-1"},
                   {"op": "replace", "path": "title", "value": "Director"},
                   {"op": "add", "path": "active", "value": False},
                   {"op": "replace", "path": f"{CORE}:name.familyName", "value": "Lee"})
    result = simple(STORED, payload)
    assert result == general(STORED, payload)
    assert result is not None and result[0]["title"] == "Director"


def test_the_stored_document_is_not_changed_in_place() -> None:
    before = {**STORED, "name": dict(STORED["name"])}
    simple(STORED, body({"op": "replace", "path": "name.givenName", "value": "Other"}))
    assert before == STORED


@pytest.mark.parametrize("op", [
    {"op": "remove", "path": "title"},
    {"op": "replace", "path": "active", "value": "False"},                     # Entra's string boolean
    {"op": "replace", "path": "title", "value": None},
    {"op": "replace", "path": "title", "value": 3},
    {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@b.c"},
    {"op": "replace", "path": "emails", "value": [{"value": "a@b.c"}]},
    {"op": "replace", "path": "name", "value": {"givenName": "X"}},
    {"op": "replace", "value": {"title": "X"}},                                  # path-less
    {"op": "replace", "path": "id", "value": "other"},                           # read-only: the 400 is general's
    {"op": "replace", "path": "password", "value": "secret"},                    # write-only, never stored
    {"op": "replace", "path": "groups", "value": "x"},
    {"op": "replace", "path": "noSuchAttribute", "value": "x"},
    {"op": "replace", "path": f"{ENTERPRISE_USER}:manager", "value": {"value": "m-2"}},
    {"op": "replace", "path": "title", "value": "x", "extra": 1},
])
def test_what_the_simple_path_does_not_handle_goes_the_general_way(op: dict[str, Any]) -> None:
    assert read_simple_patch("User", {"schemas": [PATCH_OP], "Operations": [op]}) is None


def test_groups_always_go_the_general_way() -> None:
    assert read_simple_patch("Group", body({"op": "replace", "path": "displayName", "value": "X"})) is None


def test_an_attribute_the_resource_lacks_goes_the_general_way() -> None:
    lacking = {k: v for k, v in STORED.items() if k != "title"}
    assert apply_simple_patch(lacking, read_simple_patch("User", body(
        {"op": "replace", "path": "title", "value": "X"})) or []) is None
    no_name = {k: v for k, v in STORED.items() if k != "name"}
    assert apply_simple_patch(no_name, read_simple_patch("User", body(
        {"op": "replace", "path": "name.givenName", "value": "X"})) or []) is None
    no_extension = {**STORED, "schemas": [CORE]}
    assert apply_simple_patch(no_extension, read_simple_patch("User", body(
        {"op": "replace", "path": f"{GROUPTALK_USER}:label1", "value": "X"})) or []) is None
