"""Factories of the archive's common objects — delivered items, holds, retention policies, cases — made through
its services, with defaults a test overrides only where its point is."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tenantry.app import Services
from tenantry.archive.results import CaseInfo, HoldInfo, PolicyInfo
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def deliver_item(services: Services, tenant: str, user: str = "u1", n: int = 1, *, sent_at: datetime = NOW,
                 kind: str = "chat", folder: str = WHATSAPP_FOLDER, subject: str | None = None,
                 body: str | None = None) -> int:
    """Message ``n`` delivered to ``user``'s mailbox (Message-ID ``<user-n@t>``, address user@contoso.com);
    its item id there."""
    message_id = f"{user}-{n}@t"
    raw = (f"Message-ID: <{message_id}>\r\nSubject: {n if subject is None else subject}\r\n\r\n"
           f"{f'body {n}' if body is None else body}\r\n").encode()
    services.archive.deliver(tenant, [Delivery(user, f"{user}@contoso.com", folder, raw, message_id, kind, "test",
                                               sent_at)])
    return next(i.id for i in services.archive.items(tenant, user) if i.message_id == message_id)


def deliver_items(services: Services, tenant: str, user: str = "u1", count: int = 1, *,
                  words: str = "merger talk", when: datetime = NOW) -> None:
    """``count`` messages about ``words`` to ``user``'s mailbox in one batch (``<user-0@t>`` …), sent a minute
    apart, the first at ``when``."""
    services.archive.deliver(tenant, [
        Delivery(user, f"{user}@contoso.com", WHATSAPP_FOLDER,
                 f"Message-ID: <{user}-{n}@t>\r\nSubject: {words} {n}\r\n\r\n{words} number {n}\r\n".encode(),
                 f"{user}-{n}@t", "chat", "test", when - timedelta(minutes=n))
        for n in range(count)])


def make_hold(services: Services, tenant: str, *, name: str = "Litigation", actor: str = "admin",
              **overrides: Any) -> HoldInfo:
    """A hold on u1's mailbox, unless ``overrides`` name another user or a case."""
    if "user_id" not in overrides and "case_id" not in overrides:
        overrides["user_id"] = "u1"
    return services.compliance.place_hold(tenant, name=name, actor=actor, **overrides)


def make_policy(services: Services, tenant: str, *, name: str = "Delete after 30 days", actor: str = "admin",
                **overrides: Any) -> PolicyInfo:
    """A retention policy over everything, deleting after 30 days unless ``overrides`` say what it does."""
    if "retain_days" not in overrides and "delete_after_days" not in overrides:
        overrides["delete_after_days"] = 30
    return services.compliance.create_policy(tenant, name=name, actor=actor, **overrides)


def make_case(services: Services, tenant: str, name: str = "Matter", *, actor: str = "counsel",
              custodians: Sequence[str] = ()) -> CaseInfo:
    """An open eDiscovery case, with ``custodians`` added."""
    case = services.ediscovery.create_case(tenant, name, actor)
    if custodians:
        services.ediscovery.add_custodians(tenant, case.id, list(custodians), actor)
    return case
