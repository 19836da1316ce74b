"""What the directory's services hand to their API, their CLI and other parts (core.results): typed, not dicts.

Users and groups are not here: they are SCIM resources (``dict``), extensible by schema (RFC 7643 §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TenantInfo:
    id: str
    name: str
    created_at: str


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    """A tenant created over the API, with its first admin and SCIM tokens (shown this once)."""

    id: str
    name: str
    created_at: str
    tokens: dict[str, str]   # scope → secret


@dataclass(frozen=True, slots=True)
class DomainInfo:
    name: str
    verified: bool
    default: bool
    verification_txt: str


@dataclass(frozen=True, slots=True)
class RoleGroupInfo:
    id: str
    name: str
    description: str
    roles: list[str]
    members: list[str]


@dataclass(frozen=True, slots=True)
class RoleAssignmentInfo:
    """A management role a user holds directly (``New-ManagementRoleAssignment -Role … -User …``)."""

    id: str
    user_id: str
    user_name: str
    role: str
    created_at: str


@dataclass(frozen=True, slots=True)
class MailUserInfo:
    """A mail user (``New-MailUser``): a directory user whose address is on a verified domain of the tenant."""

    id: str
    name: str                 # displayName
    address: str              # userName and primary e-mail
    hidden_from_address_lists: bool


@dataclass(frozen=True, slots=True)
class Catalogue:
    licences: dict[str, str]   # SKU → what it gives
    roles: dict[str, str]      # role → what it allows


@dataclass(frozen=True, slots=True)
class UserPage:
    total: int
    start: int
    users: list[dict[str, Any]]    # SCIM resources


@dataclass(frozen=True, slots=True)
class GroupPage:
    total: int
    start: int
    groups: list[dict[str, Any]]   # SCIM resources, without members


@dataclass(frozen=True, slots=True)
class ScimLogRow:
    """One inbound SCIM request in the tenant's log (directory/scim_log.py)."""

    id: int
    at: str
    request_id: str
    bulk_index: int | None
    token_id: str | None
    token_name: str | None
    client_ip: str | None
    user_agent: str | None
    method: str
    resource_type: str | None
    resource_id: str | None
    external_id: str | None
    user_name: str | None
    display_name: str | None
    operation: str | None
    status: int
    outcome: str
    scim_type: str | None
    detail: str | None
    duration_ms: int
