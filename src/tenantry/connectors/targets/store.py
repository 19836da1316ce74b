"""The ``store`` target, the default: Tenantry's own archive (``ArchiveService.deliver``, one transaction a batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenantry.archive.service import ArchiveService, Delivery
from tenantry.connectors.targets import TargetSpec
from tenantry.core.egress import EgressPolicy


class StoreTarget:
    def __init__(self, archive: ArchiveService) -> None:
        self.archive = archive

    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        return self.archive.deliver(tenant, deliveries)

    def close(self) -> None:
        return None


class StoreKind:
    name = "store"

    def check(self, settings: dict[str, Any], egress: EgressPolicy) -> dict[str, Any]:
        return settings   # nothing to configure: the archive is this service's own

    def build(self, spec: TargetSpec) -> StoreTarget:
        return StoreTarget(spec.archive)


KIND = StoreKind()
