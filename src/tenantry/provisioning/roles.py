"""An app's roles (Entra's appRoles): the two every app has, the rules for those an administrator adds, and the
roles each assigned user holds (directly or through a group) in the shape the mapping functions read.

Entra: an assignment names one of the app's roles; "Default Access" is the role of an app that defines none
(appRoleId 00000000-…), and apps made from Entra's templates carry a "User" role (18d14569-…). Both are built
in here: they cannot be changed or deleted. Roles an administrator adds have a display name, an optional value
(what the app receives; a role without one is sent by its display name), a description, the member types it
may be assigned to (users, groups) and an enabled flag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tenantry.core.errors import Conflict, Invalid
from tenantry.provisioning.results import RoleInfo

DEFAULT_ACCESS_ID = "00000000-0000-0000-0000-000000000000"    # Entra's default role id
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"         # the "User" role of Entra's app templates
DEFAULT_ACCESS = "Default Access"
NOT_ENTITLED = "not effectively entitled: the only role is Default Access"
MEMBER_TYPES = ("User", "Group")
MAX_ROLES = 250            # roles an administrator may add to one app (bounds every listing of them)
NAME_MAX = 128
VALUE_MAX = 128
DESCRIPTION_MAX = 1024
_SPACE = re.compile(r"\s")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Role:
    id: str
    display_name: str
    value: str | None = None
    description: str | None = None
    allowed_member_types: tuple[str, ...] = MEMBER_TYPES
    enabled: bool = True
    built_in: bool = False

    def names(self) -> set[str]:
        """What refers to this role, case-folded: its display name and its value."""
        return {n.casefold() for n in (self.display_name, self.value) if n}

    def info(self, assignments: int) -> RoleInfo:
        return RoleInfo(self.id, self.display_name, self.value, self.description, list(self.allowed_member_types),
                        self.enabled, self.built_in, assignments)


BUILT_IN: tuple[Role, ...] = (
    Role(DEFAULT_ACCESS_ID, DEFAULT_ACCESS, None, "Access without a role; not effectively entitled while the app "
                                                  "skips Default Access (skip_default_access)", built_in=True),
    Role(USER_ROLE_ID, "User", None, "User", built_in=True),
)


def resolve(roles: Sequence[Role], ref: str) -> Role | None:
    """The role ``ref`` names: its id, else its display name, else its value (names case-insensitively)."""
    for role in roles:
        if role.id == ref:
            return role
    folded = ref.strip().casefold()
    for role in roles:
        if role.display_name.casefold() == folded:
            return role
    for role in roles:
        if role.value and role.value.casefold() == folded:
            return role
    return None


def unknown(roles: Sequence[Role], ref: str) -> Invalid:
    shown = ", ".join(repr(r.display_name) for r in roles[:20]) + (", …" if len(roles) > 20 else "")
    return Invalid(f"the app has no role {ref!r}; its roles: {shown} (tenantry provisioning roles APP)")


def member_types(value: Iterable[str]) -> tuple[str, ...]:
    """``["User", "Group"]`` (also "users", "groups"; order and case free) → the canonical tuple."""
    wanted = set()
    for item in value:
        name = {"user": "User", "users": "User", "group": "Group", "groups": "Group"}.get(str(item).strip().lower())
        if name is None:
            raise Invalid(f"allowed member types are User and Group, not {item!r}")
        wanted.add(name)
    if not wanted:
        raise Invalid("allowed member types: at least one of User and Group")
    return tuple(t for t in MEMBER_TYPES if t in wanted)


def checked(display_name: str, value: str | None, description: str | None) -> tuple[str, str | None, str | None]:
    """The role's fields, trimmed, or a clear refusal."""
    name = (display_name or "").strip()
    if not name:
        raise Invalid("a role needs a display name")
    for label, given in (("display name", name), ("value", value or ""), ("description", description or "")):
        if _CONTROL.search(given.replace("\n", "").replace("\t", "") if label == "description" else given):
            raise Invalid(f"a role's {label} has no control characters")
    if len(name) > NAME_MAX:
        raise Invalid(f"a role's display name has at most {NAME_MAX} characters")
    val = (value or "").strip() or None
    if val is not None:
        if len(val) > VALUE_MAX:
            raise Invalid(f"a role's value has at most {VALUE_MAX} characters")
        if _SPACE.search(val):
            raise Invalid(f"a role's value has no spaces (Entra's rule): {val!r}")
    text = (description or "").strip() or None
    if text is not None and len(text) > DESCRIPTION_MAX:
        raise Invalid(f"a role's description has at most {DESCRIPTION_MAX} characters")
    return name, val, text


def check_unique(roles: Sequence[Role], candidate: Role) -> None:
    """A display name or value names one role only (assignments refer to roles by either)."""
    for role in roles:
        if role.id == candidate.id:
            continue
        clash = role.names() & candidate.names()
        if clash and role.built_in:
            raise Invalid(f"{role.display_name!r} is built in: choose another name or value")
        if clash:
            raise Conflict(f"role {role.display_name!r} already has the name or value {sorted(clash)[0]!r}")


def grants(roles: Mapping[str, Role], held: Mapping[str, bool]) -> list[dict[str, Any]]:  # dict: [appRoleAssignments]
    """One user's roles (role id → assigned directly?) as the mapping functions read them: Default Access left
    out (it is no role to send), the direct role first, then by value."""
    out = []
    for role_id, direct in held.items():
        if role_id == DEFAULT_ACCESS_ID:
            continue
        role = roles.get(role_id) or Role(role_id, role_id)      # a role gone meanwhile is still named
        out.append({"id": role.id, "displayName": role.display_name, "value": role.value, "direct": direct})
    sent = [(not g["direct"], str(g["value"] or g["displayName"]).casefold(), g["id"]) for g in out]
    return [g for _, g in sorted(zip(sent, out, strict=True), key=lambda pair: pair[0])]


def fingerprint(user_grants: Sequence[dict[str, Any]]) -> str:
    """What a user's roles were when last sent: a different fingerprint makes the next cycle look at it."""
    return json.dumps(list(user_grants), sort_keys=True, separators=(",", ":"))
