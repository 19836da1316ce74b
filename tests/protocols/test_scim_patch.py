"""PATCH rules of protocols.scim.patch: group member operations on RFC 7644 §3.5.2's own requests, and the
patch-ops diff a SCIM client sends (moved here from the provisioning engine, which uses it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scim2_models import Context, InvalidValueException, PatchOp

from tenantry.protocols.scim.limits import MAX_MEMBER_ID
from tenantry.protocols.scim.normalize import PATCH_OP, normalize_patch
from tenantry.protocols.scim.patch import (
    MemberChange,
    MemberRef,
    member_ids_from_path,
    member_refs,
    patch_ops,
    split_member_operations,
)
from tenantry.protocols.scim.resources import TenantryGroup
from tests.conftest import SAMPLES

RFC = SAMPLES / "rfc7644"
BABS = MemberRef("2819c223-7f76-453a-919d-413861904646", None, "Babs Jensen")
JAMES = MemberRef("08e1d05d-121c-4561-8b96-473d93df9210", None, "James Smith")


def split(payload: dict[str, Any]) -> tuple[list[dict[str, Any]], list[MemberChange]]:
    kept, changes = split_member_operations(normalize_patch(payload))
    return kept["Operations"], changes


@pytest.mark.parametrize(("name", "changes"), [
    ("3.5.2.1-patch-add-members.json", [MemberChange("add", members=(BABS,))]),
    ("3.5.2.2-patch-remove-one-member.json", [MemberChange("remove", ids=(BABS.id,))]),
    ("3.5.2.2-patch-remove-all-members.json", [MemberChange("remove", ids=None)]),
    # As printed in the RFC: no space between "eq" and the value.
    ("3.5.2.2-patch-remove-and-add-one-member.json",
     [MemberChange("remove", ids=(BABS.id,)), MemberChange("add", members=(JAMES,))]),
    ("3.5.2.2-patch-remove-all-and-add.json",
     [MemberChange("remove", ids=None), MemberChange("add", members=(BABS, JAMES))]),
    ("3.5.2.3-patch-replace-all-members.json", [MemberChange("replace", members=(BABS, JAMES))]),
])
def test_rfc_member_patches_become_member_changes_and_leave_nothing_else(name: str, changes: list[MemberChange]
                                                                         ) -> None:
    payload = json.loads((RFC / name).read_text())
    PatchOp[TenantryGroup].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)  # the sample is valid
    assert split(payload) == ([], changes)


def test_path_less_operations_give_up_their_members_and_keep_the_rest() -> None:
    # Okta and Entra replace a group's name and members in one path-less operation.
    kept, changes = split({"schemas": [PATCH_OP], "Operations": [
        {"op": "Replace", "value": {"displayName": "Ops", "Members": [{"value": "u1", "type": "User"}]}},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": {"value": "u2"}},
        {"op": "replace", "path": "displayName", "value": "Ops 2"},
        {"op": "Remove", "path": "members", "value": [{"value": "u1"}, "u3"]},
    ]})
    assert kept == [{"op": "Replace", "value": {"displayName": "Ops"}},
                    {"op": "replace", "path": "displayName", "value": "Ops 2"}]
    assert changes == [MemberChange("replace", members=(MemberRef("u1", "User"),)),
                       MemberChange("add", members=(MemberRef("u2"),)),
                       MemberChange("remove", ids=("u1", "u3"))]


@pytest.mark.parametrize(("operation", "detail"), [
    ({"op": "replace", "path": 'members[value eq "a"]', "value": []}, "only 'remove' may select"),
    ({"op": "remove", "path": 'members[display eq "a"]'}, "by 'value eq"),
    ({"op": "remove", "path": 'members[value eq "a" and value eq "b"]'}, "by 'value eq"),
    ({"op": "merge", "path": "members", "value": []}, "is not a PATCH operation"),
    ({"op": "add", "path": "members", "value": "u1"}, "a list of"),
    ({"op": "add", "path": "members"}, "a list of"),
    ({"op": "remove", "path": "members", "value": 5}, "a list of"),
    ({"op": "add", "path": "members", "value": [{"display": "no id"}]}, "needs a 'value'"),
    ({"op": "add", "path": "members", "value": [{"value": "x" * (MAX_MEMBER_ID + 1)}]}, "members.value"),
])
def test_member_operations_that_cannot_be_applied_are_refused_before_any_row_is_read(
        operation: dict[str, Any], detail: str) -> None:
    with pytest.raises(InvalidValueException) as exc:
        split({"schemas": [PATCH_OP], "Operations": [operation]})
    assert detail in (exc.value.detail or "")


def test_member_ids_may_be_or_ed_in_one_filter() -> None:
    assert member_ids_from_path('members[value eq "a" or value eq "b"]') == ["a", "b"]


def test_member_refs_keep_the_first_position_and_the_last_type_and_display_sent() -> None:
    refs = member_refs(["a", {"value": "b", "type": "Group"}, {"value": "a", "type": "User", "display": "A"},
                        {"value": "c", "type": "Printer", "display": 7}, "b"])
    assert refs == [MemberRef("a", "User", "A"), MemberRef("b", "Group"), MemberRef("c")]


@pytest.mark.parametrize(("old", "new", "ops"), [
    ({"userName": "a", "active": True}, {"userName": "b", "active": True},
     [{"op": "replace", "path": "userName", "value": "b"}]),
    ({"title": "x"}, {}, [{"op": "remove", "path": "title"}]),
    ({}, {'emails[type eq "work"].value': "a@b.c"},
     [{"op": "add", "path": "emails", "value": [{"type": "work", "primary": True, "value": "a@b.c"}]}]),
    ({'emails[type eq "work"].value': "a@b.c"}, {'emails[type eq "work"].value': "x@b.c"},
     [{"op": "replace", "path": 'emails[type eq "work"].value', "value": "x@b.c"}]),
    ({"active": True}, {"active": "True"}, [{"op": "replace", "path": "active", "value": "True"}]),
    ({"costCenter": 42}, {"costCenter": "42"}, []),
    # The primary role (SingleAppRoleAssignment): the whole roles attribute is replaced, so the app cannot be
    # left with the old primary role beside the new one; and removed when no role is left.
    ({}, {'roles[primary eq "True"].value': "admin"},
     [{"op": "replace", "path": "roles", "value": [{"primary": True, "value": "admin"}]}]),
    ({'roles[primary eq "True"].value': "admin", 'roles[primary eq "True"].display': "Admin"},
     {'roles[primary eq "True"].value': "driver", 'roles[primary eq "True"].display': "Admin"},
     [{"op": "replace", "path": "roles", "value": [{"primary": True, "value": "driver", "display": "Admin"}]}]),
    ({'roles[primary eq "True"].value': "admin"}, {}, [{"op": "remove", "path": "roles"}]),
    # All roles (AppRoleAssignmentsComplex): the list is replaced as a whole.
    ({"roles": [{"value": "a"}]}, {"roles": [{"value": "a"}, {"value": "b"}]},
     [{"op": "replace", "path": "roles", "value": [{"value": "a"}, {"value": "b"}]}]),
])
def test_patch_ops_send_only_what_changed(old, new, ops) -> None:  # noqa: ANN001
    assert patch_ops(old, new, sorted(set(old) | set(new))) == ops
