"""The resource types Tenantry serves: User (+enterprise, +GroupTalk) and Group (+GroupTalk).

The GroupTalk extensions are the vendor attributes of seed 003 (``label1``..``label5`` on users,
``description`` on groups).
"""

from __future__ import annotations

from typing import Any, cast

from scim2_models import (
    URN,
    Email,
    EnterpriseUser,
    Extension,
    Group,
    PatchOp,
    Path,
    ResourceType,
    Schema,
    ScimFilter,
    ScimPolicy,
    User,
)

GROUPTALK_USER = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User"
GROUPTALK_GROUP = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class GroupTalkUser(Extension):
    """Vendor user extension of seed 003: five free labels."""

    __schema__ = URN(GROUPTALK_USER)

    label1: str | None = None
    label2: str | None = None
    label3: str | None = None
    label4: str | None = None
    label5: str | None = None


class GroupTalkGroup(Extension):
    """Vendor group extension of seed 003: a description."""

    __schema__ = URN(GROUPTALK_GROUP)

    description: str | None = None


class LaxEmail(Email):
    """An e-mail value as the IdP sent it.

    scim2-models checks ``emails.value`` with email-validator, which refuses special-use domains such as
    ``.local`` — common in on-premises Active Directory, and in Okta's own documented create request. RFC 7643
    §4.1.2 only says the value SHOULD be canonicalised; refusing the user would lose it, so any string goes.
    """

    value: str | None = None


class TenantryUserModel(User[EnterpriseUser | GroupTalkUser]):
    emails: list[LaxEmail] | None = None  # type: ignore[assignment]


TenantryUser = TenantryUserModel
TenantryGroup = Group[GroupTalkGroup]  # type: ignore[type-arg]

RESOURCE_MODELS: dict[str, Any] = {"User": TenantryUser, "Group": TenantryGroup}
ENDPOINTS = {"Users": "User", "Groups": "Group"}

# What we tolerate from identity providers (see docs/scim.md "Compatibility"):
# - Entra sends ``Remove`` on ``members`` with a value array that selects what to remove;
# - Entra expects a replace on ``emails[type eq "work"].value`` to create the entry when none exists;
# - unknown attributes are refused (RFC 7644 §3.12 invalidSyntax) so nothing an IdP sends is dropped silently.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.forbid,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

KNOWN_SCHEMAS = {CORE_USER, CORE_GROUP, ENTERPRISE_USER, GROUPTALK_USER, GROUPTALK_GROUP}


def scim_path(resource_type: str, text: str) -> Any:
    """An attribute path bound to a resource type (scim2-models ``Path[Model]``)."""
    return cast(Any, Path)[RESOURCE_MODELS[resource_type]](text)


def scim_filter(resource_type: str, text: str) -> Any:
    """A filter bound to a resource type (scim2-models ``ScimFilter[Model]``)."""
    return cast(Any, ScimFilter)[RESOURCE_MODELS[resource_type]](text)


def patch_op(resource_type: str) -> Any:
    """The PatchOp message class of a resource type (scim2-models ``PatchOp[Model]``)."""
    return cast(Any, PatchOp)[RESOURCE_MODELS[resource_type]]


def schema_documents() -> list[Schema]:
    """Every schema served at ``/Schemas`` (RFC 7643 §7)."""
    docs: list[Schema] = []
    for model in (TenantryUser, TenantryGroup):
        docs.append(model.to_schema())
        for ext in model.get_extension_models().values():
            docs.append(ext.to_schema())
    return docs


def resource_type_documents() -> list[ResourceType]:
    return [ResourceType.from_resource(TenantryUser), ResourceType.from_resource(TenantryGroup)]
