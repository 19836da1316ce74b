"""Real SCIM targets for provisioning tests: another Tenantry process and scim2-server (a second
implementation), a local SMTP sink (aiosmtpd), and helpers that make uniquely named users per test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenantry.app import Services
from tests.conftest import group_payload, user_payload
from tests.factories.provisioning import make_app
from tests.interop.conftest import RunningServer, free_port, start_server, stop_server

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Peer:
    """Reads the target app over SCIM, as an administrator of the app would check it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def _one(self, resource: str, attr: str, value: str) -> dict[str, Any] | None:
        r = self.http.get(f"/{resource}", params={"filter": f'{attr} eq "{value}"'})
        assert r.status_code == 200, r.text
        found = r.json().get("Resources", [])
        assert len(found) <= 1, found
        if not found:
            return None
        full = self.http.get(f"/{resource}/{found[0]['id']}")
        assert full.status_code == 200, full.text
        return dict(full.json())

    def user(self, user_name: str) -> dict[str, Any] | None:
        return self._one("Users", "userName", user_name)

    def group(self, display_name: str) -> dict[str, Any] | None:
        return self._one("Groups", "displayName", display_name)

    def member_ids(self, display_name: str) -> set[str]:
        group = self.group(display_name)
        assert group is not None
        return {m["value"] for m in group.get("members", [])}

    def create_user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        r = self.http.post("/Users", json=user_payload(user_name, **extra),
                           headers={"Content-Type": "application/scim+json"})
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Another Tenantry, as the downstream SCIM app (SQLite), in its own process."""
    server = start_server(tmp_path_factory.mktemp("target"))
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def peer(target: RunningServer) -> Peer:
    return Peer(target.base_url, target.token)


@dataclass
class Scim2Server:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def scim2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scim2Server]:
    """scim2-server from PyPI (in memory, root at /v2): a second SCIM implementation."""
    port = free_port()
    token = "s2-" + uuid.uuid4().hex
    log = tmp_path_factory.mktemp("scim2") / "server.log"
    exe = Path(sys.executable).with_name("scim2-server")
    process = subprocess.Popen([str(exe), "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", token],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env={**os.environ})
    base = f"http://127.0.0.1:{port}/v2"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/ServiceProviderConfig", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"scim2-server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    yield Scim2Server(base, token, process)
    process.terminate()
    process.wait(10)


@dataclass
class Source:
    """Our directory side of a test: users and groups with names unique to the test."""

    services: Services
    tenant: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def name(self, who: str) -> str:
        return f"{who}.{self.tag}@contoso.com"

    def user(self, who: str, **extra: Any) -> str:
        payload = user_payload(self.name(who), name={"givenName": who.title(), "familyName": "Tester"},
                               emails=[{"type": "work", "value": self.name(who), "primary": True}])
        payload.update(extra)
        return str(self.services.scim.create(self.tenant, "User", payload)["id"])

    def group_name(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def group(self, name: str, members: list[str]) -> str:
        return str(self.services.scim.create(self.tenant, "Group", group_payload(
            self.group_name(name), members=[{"value": m} for m in members]))["id"])

    def patch_user(self, user_id: str, *operations: dict[str, Any]) -> None:
        self.services.scim.patch(self.tenant, "User", user_id, {"schemas": [PATCH_OP],
                                                                 "Operations": list(operations)})

    def patch_group(self, group_id: str, *operations: dict[str, Any]) -> None:
        self.services.scim.patch(self.tenant, "Group", group_id, {"schemas": [PATCH_OP],
                                                                   "Operations": list(operations)})

    def app(self, base_url: str, token: str, **config: Any) -> str:
        return make_app(self.services, self.tenant, base_url, token, name=f"app-{self.tag}",
                        notification_email=f"admin.{self.tag}@contoso.com", **config).id

    def run(self, app_id: str, **kwargs: Any) -> Any:
        return self.services.provisioning.run_cycle(self.tenant, app_id, **kwargs)


@pytest.fixture()
def src(backend: Services, tenant: str) -> Source:
    return Source(backend, tenant)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture()
def smtp(backend: Services) -> Iterator[SmtpSink]:
    """The sink, wired into the services' mailer for the test."""
    sink = SmtpSink()
    sink.controller.start()
    settings = backend.provisioning.mailer.settings if backend.provisioning.mailer else None
    assert settings is not None
    saved = settings.smtp_host, settings.smtp_port
    settings.smtp_host, settings.smtp_port = "127.0.0.1", sink.port
    try:
        yield sink
    finally:
        settings.smtp_host, settings.smtp_port = saved
        sink.controller.stop()
