"""Connector fixtures: a directory with users and roles, and a real archiver feed on 127.0.0.1."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from tenantry.connectors.feed_server import create_feed_app
from tests.conftest import grant_import_role, user_payload
from tests.interop.conftest import free_port

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@dataclass
class People:
    admin: str          # holds Organization Management and, through "Importers", Mailbox Import Export
    alice: str
    bob: str
    carol: str          # no mobile number in the directory; mapped by CSV only


@pytest.fixture()
def people(backend, tenant: str) -> People:
    scim = backend.scim

    def user(name: str, mobile: str | None) -> str:
        extra: dict[str, Any] = {"emails": [{"type": "work", "value": f"{name}@contoso.com", "primary": True}],
                                 "displayName": name.capitalize()}
        if mobile:
            extra["phoneNumbers"] = [{"type": "mobile", "value": mobile}]
        return scim.create(tenant, "User", user_payload(f"{name}@contoso.com", **extra))["id"]

    admin = user("admin", None)
    backend.directory.add_role_group_member(tenant, "Organization Management", admin)
    grant_import_role(backend, tenant, admin)
    return People(admin, user("alice", "+49 170 1111111"), user("bob", "+49 170 2222222"), user("carol", None))


class FeedServer:
    def __init__(self, items: list[dict[str, Any]], attachments: dict[str, bytes], page_delay: float = 0.0) -> None:
        self.items = items
        self.attachments = attachments
        self.username = "archiver"
        self.password = "feed-pass-123"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_feed_app(items, self.username, self.password, attachments, page_delay),
                                host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FeedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/items", params={"until": NOW.isoformat()})
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("feed server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def feed_item(n: int, kind: str = "chat", *, sender: dict[str, Any] | None = None,
              participants: list[dict[str, Any]] | None = None, when: datetime | None = None,
              **extra: Any) -> dict[str, Any]:
    return {
        "id": f"tm-{n}", "type": kind, "chat": {"id": "chat-ops", "name": "Ops team"},
        "timestamp": (when or NOW - timedelta(hours=1, minutes=n)).isoformat().replace("+00:00", "Z"),
        "from": sender or {"phone": "+491701111111", "name": "Alice"},
        "participants": participants or [{"phone": "+491701111111", "name": "Alice"},
                                         {"phone": "+491702222222", "name": "Bob"}],
        "text": f"message {n}", **extra,
    }


@pytest.fixture()
def standard_feed() -> Iterator[FeedServer]:
    """One of each kind, plus the items that must be reported rather than imported."""
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    items = [
        feed_item(1),
        feed_item(2, "call", call={"direction": "outgoing", "duration": 192, "missed": False, "video": False},
                  text=""),
        feed_item(3, "attachment", attachments=[
            {"filename": "site-photo.png", "content_type": "image/png", "data_base64": base64.b64encode(png).decode()},
            {"filename": "report.pdf", "content_type": "application/pdf", "url": "/attachments/report.pdf"}]),
        feed_item(4, "deleted", deleted={"original_text": "wire the money today"}, text=""),
        feed_item(5, sender={"phone": "+15550000001", "name": "Stranger"},
                  participants=[{"phone": "+15550000001"}, {"phone": "+15550000002"}]),           # no user
        feed_item(6, "attachment", attachments=[{"filename": "huge.bin", "content_type": "application/octet-stream",
                                                 "url": "/attachments/huge.bin"}]),                # too large
        {"id": "tm-7", "type": "hologram", "chat": {"id": "x"}, "timestamp": "2026-11-25T00:00:00Z"},  # unparseable
        feed_item(8, sender={"phone": "+4917099999", "name": "Carol", "email": "carol@contoso.com"},
                  participants=[{"phone": "+4917099999", "email": "carol@contoso.com"}]),            # by e-mail
        feed_item(9, "chat", when=NOW - timedelta(days=40)),                                        # before backfill
    ]
    attachments = {"report.pdf": b"%PDF-1.4 report", "huge.bin": b"\0" * (10 * 1024 * 1024 + 1)}
    with FeedServer(items, attachments) as server:
        yield server
