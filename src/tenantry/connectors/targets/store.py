"""The ``store`` target, the default: Tenantry's own archive (``ArchiveService.deliver``, one transaction a batch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantry.archive.service import ArchiveService, Delivery
from tenantry.connectors.models import BuiltinTarget
from tenantry.connectors.targets import TargetSpec
from tenantry.core.egress import EgressPolicy


class StoreTarget:
    def __init__(self, archive: ArchiveService) -> None:
        self.archive = archive

    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        return self.archive.deliver(tenant, deliveries)

    def history(self, tenant: str) -> TenantChats:
        return TenantChats(self.archive, tenant)

    def close(self) -> None:
        """Waits until everything delivered is committed to the search index, so that a run's status (written
        after this) never says it ended before its items are searchable — from any process: a search flushes only
        its own process's indexer, and a run may have been a Celery worker's. Raises ``SearchIndexUnavailable``
        when the index could not take them (the items are stored; the run says so)."""
        if self.archive.indexer is not None:
            self.archive.indexer.flush()


@dataclass(frozen=True)
class TenantChats:
    """The archive's chats of one tenant, as an export source asks about them (chat_slots.ChatHistory)."""

    archive: ArchiveService
    tenant: str

    def chat_span(self, chat_id: str) -> tuple[datetime, datetime] | None:
        return self.archive.chat_span(self.tenant, chat_id)

    def chat_message_ids(self, chat_id: str, start: datetime, end: datetime, limit: int) -> set[str]:
        return self.archive.chat_message_ids(self.tenant, chat_id, start, end, limit)


class StoreKind:
    name: str = BuiltinTarget.STORE

    def check(self, settings: dict[str, Any], egress: EgressPolicy) -> dict[str, Any]:  # dict: saved as JSON
        return settings   # nothing to configure: the archive is this service's own

    def build(self, spec: TargetSpec) -> StoreTarget:
        return StoreTarget(spec.archive)


KIND = StoreKind()
