"""Who is asking: the principal every credential resolves to (issue #12), and the actor the audit trail names.

- an **administrator**: a directory user of one tenant, with the roles its role groups give (a bearer token
  issued to them with ``tenantry token create --scope admin --for``, or a console session);
- the **operator**: the installation's owner (the operator token over HTTP, the ``tenantry`` command on the
  machine), across tenants;
- a **partner application** (part E, server-to-server trust) acting in one tenant;
- the **system**: the scheduler and jobs acting on what a principal set up.

Nothing here trusts a name a client typed: a principal is built by whoever checked the credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class PrincipalKind(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    PARTNER = "partner"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: str                   # the directory user's id, the partner application's id, or a fixed name
    name: str                 # userName, the application's name, the operator's OS account, "scheduler"
    tenant: str | None        # the tenant an administrator or partner belongs to; None across tenants
    roles: frozenset[str]     # an administrator's management roles (directory.catalogue.ROLES)
    credential: str           # what was presented: "token <id>", "session <id>", "cli"

    @property
    def unrestricted(self) -> bool:
        """The operator and the system are not limited by roles (the operator owns the machine)."""
        return self.kind in (PrincipalKind.OPERATOR, PrincipalKind.SYSTEM)

    def holds_any(self, roles: Iterable[str]) -> bool:
        return self.unrestricted or not self.roles.isdisjoint(roles)

    @property
    def actor(self) -> str:
        """How the ledger names this principal: readable, and exact (id and credential) for evidence."""
        if self.kind is PrincipalKind.ADMIN:
            return f"{self.name} (admin {self.id}; {self.credential})"
        return f"{self.name} ({self.kind.value} {self.id}; {self.credential})"


def operator(name: str, credential: str = "cli") -> Principal:
    """The installation's operator: the ``tenantry`` command on the machine, or the operator token."""
    return Principal(PrincipalKind.OPERATOR, "operator", name, None, frozenset(), credential)


SYSTEM = Principal(PrincipalKind.SYSTEM, "scheduler", "scheduler", None, frozenset(), "scheduler")
