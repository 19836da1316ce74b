"""Where converted items go: Tenantry's own archive (``store``, the default) or an existing IMAP server (``imap``).

Every target is idempotent per Message-ID (and a delivery's aliases, the other Message-IDs of the same message),
so a run repeated after a crash adds nothing twice. A target kind is one module of this package with a ``KIND``
(a ``TargetKind``); ``connectors.registry`` lists the built-in kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenantry.archive.service import ArchiveService, Delivery
from tenantry.connectors.sources.chat_slots import ChatHistory
from tenantry.core.egress import EgressPolicy


class TargetError(Exception):
    """The target refused or failed: the run fails (and is retried); nothing is counted as imported."""


class Target(Protocol):
    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        """Store a batch; per delivery, whether it was new (False: the mailbox already had the message)."""
        ...

    def history(self, tenant: str) -> ChatHistory | None:
        """What the target holds of a tenant's chats, for a source to ask; None where it cannot be asked."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TargetSpec:
    """What a target is built from: the connector's saved settings and opened secret, the operator's egress
    policy, and the archive (the built-in store)."""

    settings: dict[str, Any]
    secret: dict[str, Any] | None
    egress: EgressPolicy
    archive: ArchiveService


class TargetKind(Protocol):
    """One kind of target, as the wizard and the runner see it."""

    name: str     # the ``kind`` in the connector's target settings

    def check(self, settings: dict[str, Any], egress: EgressPolicy) -> dict[str, Any]:  # dict: the kind's settings
        """The settings to save, checked when a connector is created; raises ``Invalid`` with what is wrong."""
        ...

    def build(self, spec: TargetSpec) -> Target:
        """The target for a run."""
        ...
