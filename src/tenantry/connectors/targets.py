"""Where converted items go: Tenantry's own archive (default) or an existing IMAP server.

Both are idempotent per Message-ID, so a run repeated after a crash adds nothing twice.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tenantry.archive.service import ArchiveService, Delivery


class TargetError(Exception):
    """The target refused or failed: the run fails (and is retried); nothing is counted as imported."""


class Target(Protocol):
    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]: ...
    def close(self) -> None: ...


class StoreTarget:
    def __init__(self, archive: ArchiveService) -> None:
        self.archive = archive

    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        return self.archive.deliver(tenant, deliveries)

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int = 993
    security: str = "tls"              # tls | starttls | none (loopback tests only)
    auth: str = "master"               # master | per-user
    master_user: str | None = None     # Dovecot master user: logs in as "<user>*<master>"
    master_separator: str = "*"
    password: str = ""                 # the master user's password
    passwords: dict[str, str] | None = None  # per-user: address → password
    login_with: str = "address"        # address | local-part (what the server calls its users)


class ImapTarget:
    """APPEND into each user's folder; the folder is created on first use."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._connections: dict[str, imaplib.IMAP4] = {}
        self._folders_ready: set[tuple[str, str]] = set()

    def _login_name(self, address: str) -> str:
        return address.split("@", 1)[0] if self.settings.login_with == "local-part" else address

    def _connect(self, address: str) -> imaplib.IMAP4:
        if address in self._connections:
            return self._connections[address]
        s = self.settings
        try:
            conn: imaplib.IMAP4
            if s.security == "tls":
                conn = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=ssl.create_default_context())
            else:
                conn = imaplib.IMAP4(s.host, s.port)
                if s.security == "starttls":
                    conn.starttls(ssl.create_default_context())
            user = self._login_name(address)
            if s.auth == "master":
                if not s.master_user:
                    raise TargetError("IMAP master-user login needs master_user")
                conn.login(f"{user}{s.master_separator}{s.master_user}", s.password)
            else:
                secret = (s.passwords or {}).get(address)
                if secret is None:
                    raise TargetError(f"no IMAP password configured for {address}")
                conn.login(user, secret)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise TargetError(f"IMAP login for {address} at {s.host}:{s.port} failed: {exc}") from exc
        self._connections[address] = conn
        return conn

    @staticmethod
    def _quote(name: str) -> str:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _ensure_folder(self, conn: imaplib.IMAP4, address: str, folder: str) -> None:
        if (address, folder) in self._folders_ready:
            return
        status, _ = conn.select(self._quote(folder))
        if status != "OK":
            status, data = conn.create(self._quote(folder))
            if status != "OK":
                raise TargetError(f"cannot create folder {folder!r} for {address}: {data!r}")
            conn.subscribe(self._quote(folder))
            conn.select(self._quote(folder))
        self._folders_ready.add((address, folder))

    def _has(self, conn: imaplib.IMAP4, message_id: str) -> bool:
        status, data = conn.search(None, "HEADER", "Message-ID", self._quote(f"<{message_id}>"))
        return status == "OK" and bool(data and data[0] and data[0].split())

    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        results: list[bool] = []
        for d in deliveries:
            conn = self._connect(d.address)
            try:
                self._ensure_folder(conn, d.address, d.folder)
                conn.select(self._quote(d.folder))
                if self._has(conn, d.message_id):
                    results.append(False)
                    continue
                status, data = conn.append(self._quote(d.folder), None,
                                           imaplib.Time2Internaldate(d.sent_at), d.raw)
                if status != "OK":
                    raise TargetError(f"APPEND for {d.address} refused: {data!r}")
            except (OSError, imaplib.IMAP4.error) as exc:
                self._connections.pop(d.address, None)
                raise TargetError(f"IMAP delivery to {d.address} failed: {exc}") from exc
            results.append(True)
        return results

    def close(self) -> None:
        for conn in self._connections.values():
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
        self._connections.clear()


def imap_settings(config: dict[str, Any], secret: dict[str, Any] | None) -> ImapSettings:
    if not config.get("host"):
        raise TargetError("an IMAP target needs a host")
    secret = secret or {}
    return ImapSettings(
        host=str(config["host"]), port=int(config.get("port", 993)), security=str(config.get("security", "tls")),
        auth=str(config.get("auth", "master")), master_user=config.get("master_user"),
        master_separator=str(config.get("master_separator", "*")), password=str(secret.get("password", "")),
        passwords=secret.get("passwords"), login_with=str(config.get("login_with", "address")),
    )

