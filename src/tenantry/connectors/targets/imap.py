"""The IMAP target: APPEND into each user's folder on an existing IMAP server (Dovecot's master user, or a
password per user).

Idempotent per Message-ID and a delivery's aliases: a message the folder holds under any of them is not appended
again. Connections go through the operator's egress policy (core/egress.py) to an address it checked; every
failure to connect or to get an IMAP greeting is one message (no port scanning through run reports), with the
cause in the server log.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from tenantry.archive.service import Delivery
from tenantry.connectors.models import BuiltinTarget
from tenantry.connectors.sources.chat_slots import ChatHistory
from tenantry.connectors.targets import TargetError, TargetSpec
from tenantry.core.egress import UNREACHABLE, EgressPolicy, EgressRefused, check_hostname
from tenantry.core.errors import Invalid

log = logging.getLogger(__name__)
_Word = TypeVar("_Word", bound=StrEnum)
IMAP_TIMEOUT = 30.0   # seconds: a port that accepts and never greets must not hold a run forever


class ImapSecurity(StrEnum):
    TLS = "tls"
    STARTTLS = "starttls"
    NONE = "none"                      # loopback tests only


class ImapAuth(StrEnum):
    MASTER = "master"                  # Dovecot master user: logs in as "<user>*<master>"
    PER_USER = "per-user"              # a password per address, in the target secret


class ImapLogin(StrEnum):
    """What the server calls its users."""

    ADDRESS = "address"
    LOCAL_PART = "local-part"


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int = 993
    security: ImapSecurity = ImapSecurity.TLS
    auth: ImapAuth = ImapAuth.MASTER
    master_user: str | None = None     # Dovecot master user: logs in as "<user>*<master>"
    master_separator: str = "*"
    password: str = ""                 # the master user's password
    passwords: dict[str, str] | None = None  # per-user: address → password
    login_with: ImapLogin = ImapLogin.ADDRESS


class _PolicyIMAP4(imaplib.IMAP4):
    """imaplib's client, connected by the egress policy to an address it checked."""

    def __init__(self, host: str, port: int, egress: EgressPolicy, timeout: float) -> None:
        self._egress = egress
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._egress.connect(self.host, self.port, timeout)


class _PolicyIMAP4SSL(imaplib.IMAP4_SSL):
    """The TLS variant: the certificate is checked for (and SNI says) the configured host name."""

    def __init__(self, host: str, port: int, egress: EgressPolicy, timeout: float,
                 ssl_context: ssl.SSLContext) -> None:
        self._egress = egress
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = self._egress.connect(self.host, self.port, timeout)
        context: ssl.SSLContext = self.ssl_context
        return context.wrap_socket(sock, server_hostname=self.host)


class ImapTarget:
    """APPEND into each user's folder; the folder is created on first use."""

    def __init__(self, settings: ImapSettings, egress: EgressPolicy | None = None) -> None:
        self.settings = settings
        self.egress = egress or EgressPolicy()
        self._connections: dict[str, imaplib.IMAP4] = {}
        self._folders_ready: set[tuple[str, str]] = set()

    def _login_name(self, address: str) -> str:
        return address.split("@", 1)[0] if self.settings.login_with == ImapLogin.LOCAL_PART else address

    def _connect(self, address: str) -> imaplib.IMAP4:
        if address in self._connections:
            return self._connections[address]
        s = self.settings
        try:
            conn: imaplib.IMAP4
            if s.security == ImapSecurity.TLS:
                conn = _PolicyIMAP4SSL(s.host, s.port, self.egress, IMAP_TIMEOUT, ssl.create_default_context())
            else:
                conn = _PolicyIMAP4(s.host, s.port, self.egress, IMAP_TIMEOUT)
                if s.security == ImapSecurity.STARTTLS:
                    conn.starttls(ssl.create_default_context())
        except EgressRefused as exc:
            raise TargetError(exc.message) from exc
        except (OSError, imaplib.IMAP4.error) as exc:   # refused, timed out, reset, TLS, not an IMAP server
            log.warning("IMAP server %s:%s not reached: %s: %s", s.host, s.port, type(exc).__name__, exc)
            raise TargetError(f"{UNREACHABLE} at the IMAP server {s.host}:{s.port}: no connection or no IMAP "
                              "greeting (the server log has the cause)") from exc
        try:
            user = self._login_name(address)
            if s.auth == ImapAuth.MASTER:
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

    def _has(self, conn: imaplib.IMAP4, message_ids: Sequence[str]) -> bool:
        """Whether the selected folder holds a message with any of ``message_ids`` (one SEARCH, RFC 3501 OR)."""
        *rest, last = message_ids
        criteria = ["HEADER", "Message-ID", self._quote(f"<{last}>")]
        for message_id in reversed(rest):
            criteria = ["OR", "HEADER", "Message-ID", self._quote(f"<{message_id}>"), *criteria]
        status, data = conn.search(None, *criteria)
        return status == "OK" and bool(data and data[0] and data[0].split())

    def deliver(self, tenant: str, deliveries: Sequence[Delivery]) -> list[bool]:
        results: list[bool] = []
        for d in deliveries:
            conn = self._connect(d.address)
            try:
                self._ensure_folder(conn, d.address, d.folder)
                conn.select(self._quote(d.folder))
                if self._has(conn, (d.message_id, *d.aliases)):
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

    def history(self, tenant: str) -> ChatHistory | None:
        return None   # a mailbox server is not asked about chats: a group's subject alone decides (chat_slots.py)

    def close(self) -> None:
        for conn in self._connections.values():
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()
        self._connections.clear()


def check_imap_config(config: dict[str, Any], egress: EgressPolicy) -> None:
    """When an IMAP target is saved: a bare host (no user or password in it) the policy allows, a port, and
    no password among the settings (it goes in the target secret, stored sealed and never shown)."""
    if not config.get("host") or not isinstance(config["host"], str):
        raise Invalid("an IMAP target needs a host")
    if any(k in config for k in ("password", "passwords")):
        raise Invalid("the IMAP password goes in target_secret (stored sealed), not in the target settings")
    host = check_hostname(config["host"], "IMAP host")
    port = config.get("port", 993)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise Invalid("the IMAP port must be a number from 1 to 65535")
    try:
        _choices(config)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    egress.check_host(host, port)


def _choice(config: dict[str, Any], name: str, words: type[_Word], default: _Word) -> _Word:
    value = config.get(name, default)
    try:
        return words(value)
    except ValueError:
        raise ValueError(f"the IMAP {name} must be {' or '.join(words)}, not {value!r}") from None


def _choices(config: dict[str, Any]) -> tuple[ImapSecurity, ImapAuth, ImapLogin]:
    """The settings that are one of a few words; ``ValueError`` naming the setting and its words otherwise (a
    misspelt ``security`` must not become a connection without TLS)."""
    return (_choice(config, "security", ImapSecurity, ImapSecurity.TLS),
            _choice(config, "auth", ImapAuth, ImapAuth.MASTER),
            _choice(config, "login_with", ImapLogin, ImapLogin.ADDRESS))


def imap_settings(config: dict[str, Any], secret: dict[str, Any] | None) -> ImapSettings:
    if not config.get("host"):
        raise TargetError("an IMAP target needs a host")
    try:
        security, auth, login_with = _choices(config)
    except ValueError as exc:   # settings saved before they were checked
        raise TargetError(str(exc)) from None
    secret = secret or {}
    return ImapSettings(
        host=str(config["host"]), port=int(config.get("port", 993)), security=security, auth=auth,
        master_user=config.get("master_user"), master_separator=str(config.get("master_separator", "*")),
        password=str(secret.get("password", "")), passwords=secret.get("passwords"), login_with=login_with,
    )



class ImapKind:
    """The ``imap`` kind: a host the egress policy allows; the passwords in the target secret, sealed."""

    name: str = BuiltinTarget.IMAP

    def check(self, settings: dict[str, Any], egress: EgressPolicy) -> dict[str, Any]:  # dict: saved as JSON
        check_imap_config(settings, egress)
        return settings

    def build(self, spec: TargetSpec) -> ImapTarget:
        return ImapTarget(imap_settings(spec.settings, spec.secret), spec.egress)


KIND = ImapKind()
