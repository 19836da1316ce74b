"""What leaves the machine (issue #9, defect 6): a stored secret only ever goes to the host it was given for,
the operator's egress policy decides which addresses targets may reach, failures to connect all look the same,
and credentials in URLs are refused and never shown back.

Listeners here are real sockets on 127.0.0.1; the test settings allow loopback (tests/conftest.py), and the
tests of the default policy build a policy without it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tenantry.app import Services
from tenantry.connectors.targets import TargetError
from tenantry.connectors.targets.imap import ImapSettings, ImapTarget
from tenantry.core.egress import EgressPolicy, EgressRefused, parse_networks, redact_url
from tenantry.core.errors import Invalid
from tenantry.core.results import plain
from tenantry.core.settings import Settings
from tenantry.provisioning.client import ScimTarget
from tenantry.provisioning.client import TargetError as ScimTargetError
from tenantry.provisioning.models import ProvisioningApp
from tests.conftest import admin_secret
from tests.interop.conftest import free_port

SCIM_EMPTY_LIST = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                              "totalResults": 0, "Resources": []}).encode()
HTTP_EMPTY_LIST = (b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nConnection: close\r\n"
                   b"Content-Length: " + str(len(SCIM_EMPTY_LIST)).encode() + b"\r\n\r\n" + SCIM_EMPTY_LIST)
NOT_HTTP = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"    # what an open port of another protocol says first
OLD_TOKEN = "old-token-for-the-real-app-0123456789"
NEW_TOKEN = "new-token-for-the-new-host-9876543210"


class Listener:
    """A TCP listener on 127.0.0.1 that keeps every byte it is sent and answers each connection with
    ``reply``: an HTTP response, or (``greet``) a banner of another protocol sent before reading anything."""

    def __init__(self, reply: bytes = HTTP_EMPTY_LIST, *, greet: bool = False) -> None:
        self.reply = reply
        self.greet = greet
        self.received: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                if self.greet:
                    conn.sendall(self.reply)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                self.received.append(data)
                if not self.greet:
                    with contextlib.suppress(OSError):
                        conn.sendall(self.reply)

    def header_lines(self, name: str) -> list[str]:
        prefix = name.lower() + ":"
        return [line for data in self.received for line in data.decode("latin-1").split("\r\n")
                if line.lower().startswith(prefix)]

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture()
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def listen(made: list[Listener], reply: bytes = HTTP_EMPTY_LIST, *, greet: bool = False) -> Listener:
    listener = Listener(reply, greet=greet)
    made.append(listener)
    return listener


@pytest.fixture()
def admin(app_client: TestClient, backend: Services, tenant: str) -> tuple[TestClient, dict[str, str], str]:
    token = admin_secret(backend, tenant, "egress")
    return app_client, {"Authorization": f"Bearer {token}"}, f"/api/v1/tenants/{tenant}/provisioning/apps"


@pytest.fixture()
def default_policy(backend: Services, monkeypatch: pytest.MonkeyPatch) -> EgressPolicy:
    """The services as an operator runs them: the default policy (no loopback), for this test only."""
    policy = EgressPolicy()
    monkeypatch.setattr(backend.provisioning, "egress", policy, raising=False)
    monkeypatch.setattr(backend.connectors, "egress", policy, raising=False)
    return policy


# -- a stored secret goes only to the host it was given for ----------------------------------------------------


def test_a_changed_url_without_the_token_is_refused_and_the_new_host_never_gets_the_token(
        admin, backend: Services, tenant: str, listeners: list[Listener]) -> None:
    client, headers, base = admin
    real, other = listen(listeners), listen(listeners)
    r = client.post(base, headers=headers, json={"name": "Talk", "tenant_url": real.url + "/scim/v2",
                                                 "token": OLD_TOKEN})
    assert r.status_code == 201 and r.json()["test_connection"]["ok"], r.text
    app_id = r.json()["id"]

    r = client.patch(f"{base}/{app_id}", headers=headers, json={"tenant_url": other.url + "/scim/v2"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid" and "changing the URL needs the token again" in r.json()["message"]
    assert client.get(f"{base}/{app_id}", headers=headers).json()["tenant_url"] == real.url + "/scim/v2"

    r = client.post(f"{base}/{app_id}/test-connection", headers=headers)
    assert r.status_code == 200 and r.json()["ok"], r.text
    assert other.received == []                      # not one byte, let alone the Authorization header
    assert real.header_lines("Authorization") == [f"Authorization: Bearer {OLD_TOKEN}"] * 2

    # With the token, the move is made, and the new host gets the new token only.
    r = client.patch(f"{base}/{app_id}", headers=headers, json={"tenant_url": other.url + "/scim/v2",
                                                                "token": NEW_TOKEN})
    assert r.status_code == 200, r.text
    assert client.post(f"{base}/{app_id}/test-connection", headers=headers).json()["ok"]
    assert other.header_lines("Authorization") == [f"Authorization: Bearer {NEW_TOKEN}"]
    assert not any(OLD_TOKEN.encode() in data for data in other.received)


@pytest.mark.parametrize("move", ["http://127.0.0.2:{port}/scim/v2", "https://127.0.0.1:{port}/scim/v2",
                                  "http://127.0.0.1:{other}/scim/v2", "http://localhost:{port}/scim/v2"])
def test_every_other_origin_counts_as_a_new_host(backend: Services, tenant: str, listeners: list[Listener],
                                                  move: str) -> None:
    real = listen(listeners)
    app = backend.provisioning.create_app(tenant, name="A", tenant_url=real.url + "/scim/v2", token=OLD_TOKEN)
    with pytest.raises(Invalid, match="needs the token again"):
        backend.provisioning.update_app(tenant, app.id, tenant_url=move.format(port=real.port,
                                                                                other=free_port()))
    assert backend.provisioning.status(tenant, app.id).tenant_url == real.url + "/scim/v2"


def test_a_new_path_on_the_same_origin_keeps_the_token(backend: Services, tenant: str,
                                                       listeners: list[Listener]) -> None:
    real = listen(listeners)
    app = backend.provisioning.create_app(tenant, name="A", tenant_url=real.url + "/scim/v2", token=OLD_TOKEN)
    info = backend.provisioning.update_app(tenant, app.id, tenant_url=real.url + "/scim")
    assert info.tenant_url.endswith("/scim")
    assert backend.provisioning.test_connection(tenant, app.id).ok
    assert real.header_lines("Authorization") == [f"Authorization: Bearer {OLD_TOKEN}"]


# -- the operator's egress policy ----------------------------------------------------------------------------


REFUSED_BY_DEFAULT = [
    "127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "2002:7f00:1::1",         # loopback, also embedded
    "169.254.1.1", "fe80::1", "fe80::1%lo",                                           # link-local
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "64:ff9b::a9fe:a9fe",     # cloud metadata
    "192.0.0.192", "::127.0.0.1", "::169.254.169.254",                                # Oracle; IPv4-compatible
    "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "255.255.255.255", "ff02::1",           # unspecified, multicast
]


@pytest.mark.parametrize("address", REFUSED_BY_DEFAULT)
def test_the_default_policy_refuses_loopback_link_local_metadata_and_unspecified(address: str) -> None:
    policy = EgressPolicy()
    assert policy.refusal(ipaddress.ip_address(address)) is not None
    with pytest.raises(EgressRefused, match="does not allow"):
        policy.addresses(address, 443)


@pytest.mark.parametrize("address", ["10.1.2.3", "172.16.0.9", "192.168.1.10", "fd12:3456::1", "100.64.0.1",
                                     "203.0.113.7", "2001:db8::7"])
def test_the_default_policy_allows_private_lan_and_public_addresses(address: str) -> None:
    assert EgressPolicy().refusal(ipaddress.ip_address(address)) is None


def static_resolver(answers: dict[str, Sequence[str]]):  # noqa: ANN201
    """A stand-in for DNS (no DNS server here answers names we choose): name → addresses."""
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]
    return resolve


@pytest.mark.parametrize(("name", "answer"), [
    ("app.internal.test", ["169.254.169.254"]),
    ("v6only.test", ["fe80::1"]),
    ("mapped.test", ["::ffff:127.0.0.1"]),
    ("mixed.test", ["10.0.0.5", "127.0.0.1"]),      # one bad address among good ones refuses the name
    ("ec2.test", ["fd00:ec2::254"]),
])
def test_names_are_judged_by_every_address_they_resolve_to(name: str, answer: list[str]) -> None:
    policy = EgressPolicy(resolver=static_resolver({name: answer}))
    with pytest.raises(EgressRefused, match=f"does not allow {name}: it resolves to"):
        policy.addresses(name, 443)


@pytest.mark.parametrize("host", ["localhost", "localhost.", "LOCALHOST", "2130706433", "0x7f000001", "127.1",
                                  "metadata.google.internal", "METADATA.google.internal.", "metadata"])
def test_real_names_and_odd_spellings_of_loopback_and_metadata_are_refused(host: str) -> None:
    with pytest.raises(EgressRefused):
        EgressPolicy().addresses(host, 80)


def test_the_operators_networks_deny_and_allow_but_never_open_metadata() -> None:
    denied = EgressPolicy(denied_networks=parse_networks(["10.0.0.0/8", "fd00::/8"]))
    assert denied.refusal(ipaddress.ip_address("10.9.9.9")) is not None
    assert denied.refusal(ipaddress.ip_address("fd00::5")) is not None
    assert denied.refusal(ipaddress.ip_address("192.168.1.1")) is None
    only = EgressPolicy(allowed_networks=parse_networks(["192.168.10.0/24", "169.254.0.0/16"]), allow_loopback=True)
    assert only.refusal(ipaddress.ip_address("192.168.10.4")) is None
    assert only.refusal(ipaddress.ip_address("192.168.11.4")) is not None
    assert only.refusal(ipaddress.ip_address("8.8.8.8")) is not None
    assert only.refusal(ipaddress.ip_address("169.254.7.7")) is None           # link-local, allowed explicitly
    assert only.refusal(ipaddress.ip_address("169.254.169.254")) is not None   # metadata: never
    assert only.refusal(ipaddress.ip_address("127.0.0.1")) is None            # loopback has its own switch
    both = EgressPolicy(allow_loopback=True, denied_networks=parse_networks(["127.0.0.0/8"]))
    assert both.refusal(ipaddress.ip_address("127.0.0.1")) is not None        # denied wins


def test_the_settings_default_to_no_loopback_and_read_cidr_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTRY_OUTBOUND_ALLOW_LOOPBACK")
    monkeypatch.setenv("TENANTRY_OUTBOUND_DENIED_NETWORKS", "10.0.0.0/8, 192.168.0.0/16 fd00::/8")
    settings = Settings()
    policy = EgressPolicy.from_settings(settings)
    assert settings.outbound_allow_loopback is False and policy.allow_loopback is False
    assert [str(n) for n in policy.denied_networks] == ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
    monkeypatch.setenv("TENANTRY_OUTBOUND_ALLOWED_NETWORKS", "10.0.0.0/33")
    with pytest.raises(ValueError, match="not an IP network"):
        Settings()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/scim", "http://[::1]:8080/scim", "http://localhost/scim",
                                 "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/scim",
                                 "http://metadata.google.internal/computeMetadata/v1", "http://0.0.0.0:8080/",
                                 "http://[::ffff:127.0.0.1]/scim", "http://2130706433/scim"])
def test_saving_a_url_the_policy_refuses_is_a_400_and_stores_nothing(admin, backend: Services, tenant: str,
                                                                     default_policy: EgressPolicy, url: str) -> None:
    client, headers, base = admin
    r = client.post(base, headers=headers, json={"name": "Probe", "tenant_url": url, "token": "t" * 20})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "egress_refused" and "the outbound policy does not allow" in r.json()["message"]
    assert client.get(base, headers=headers).json() == []


def test_a_saved_target_the_policy_now_refuses_is_not_contacted_and_the_refusal_is_logged(
        backend: Services, tenant: str, listeners: list[Listener], monkeypatch: pytest.MonkeyPatch) -> None:
    listener = listen(listeners)
    app = backend.provisioning.create_app(tenant, name="A", tenant_url=listener.url + "/scim/v2", token=OLD_TOKEN)
    backend.provisioning.assign(tenant, app.id, "User", backend.scim.create(tenant, "User", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"ann.{tenant}@contoso.com"})["id"])
    monkeypatch.setattr(backend.provisioning, "egress", EgressPolicy(), raising=False)   # loopback turned off
    result = backend.provisioning.test_connection(tenant, app.id)
    assert not result.ok and "the outbound policy does not allow 127.0.0.1" in result.message
    report = backend.provisioning.run_cycle(tenant, app.id)
    failures = backend.provisioning.logs(tenant, app.id, result="failure")
    assert report.stats.get("users_failed") == 1
    assert failures and "the outbound policy does not allow 127.0.0.1" in failures[0].reason
    assert listener.received == []


def test_the_connection_goes_to_the_address_that_was_checked(listeners: list[Listener]) -> None:
    """A name is resolved once, by the policy, and the socket opened to that address: the listener is reached
    under a name no system resolver knows, and sees the name (Host) the URL gave."""
    listener = listen(listeners)
    policy = EgressPolicy(allow_loopback=True, resolver=static_resolver({"scim.app.test": ["127.0.0.1"]}))
    target = ScimTarget(f"http://scim.app.test:{listener.port}/scim/v2", OLD_TOKEN, retries=0, egress=policy)
    try:
        assert target.find("Users", "userName", "x") == []
    finally:
        target.close()
    assert listener.header_lines("Host") == [f"Host: scim.app.test:{listener.port}"]


def test_a_name_that_turns_to_loopback_after_it_was_saved_is_refused_at_connect(listeners: list[Listener]) -> None:
    """DNS rebinding: the check at save time saw a LAN address; the connection re-resolves, checks, refuses."""
    listener = listen(listeners)
    answers: dict[str, Sequence[str]] = {"rebind.test": ["10.20.30.40"]}
    policy = EgressPolicy(resolver=static_resolver(answers))
    policy.check_host("rebind.test", listener.port)                         # saved: fine
    answers["rebind.test"] = ["127.0.0.1"]
    target = ScimTarget(f"http://rebind.test:{listener.port}/scim/v2", OLD_TOKEN, retries=0, egress=policy)
    try:
        with pytest.raises(ScimTargetError, match="does not allow rebind.test: it resolves to a loopback"):
            target.find("Users", "userName", "x")
    finally:
        target.close()
    assert listener.received == []


# -- failures to connect all look the same -------------------------------------------------------------------


def _same(message: str, port: int) -> str:
    return message.replace(str(port), "PORT")


def test_test_connection_says_the_same_for_a_closed_port_and_an_open_port_of_another_protocol(
        backend: Services, tenant: str, listeners: list[Listener]) -> None:
    closed = free_port()
    ssh_like = listen(listeners, NOT_HTTP, greet=True)
    junk = listen(listeners, b"\x00\x01garbage that is not HTTP\r\n\r\n")
    messages = set()
    for name, port in (("closed", closed), ("ssh", ssh_like.port), ("junk", junk.port)):
        app = backend.provisioning.create_app(tenant, name=name, tenant_url=f"http://127.0.0.1:{port}/scim/v2",
                                              token=OLD_TOKEN)
        result = backend.provisioning.test_connection(tenant, app.id)
        assert not result.ok and result.status is None
        messages.add(_same(result.message, port))
    assert len(messages) == 1, messages
    assert "could not reach the target" in messages.pop()


def test_a_cycles_scim_client_says_the_same_for_closed_and_non_http_ports(listeners: list[Listener]) -> None:
    closed = free_port()
    ssh_like = listen(listeners, NOT_HTTP, greet=True)
    policy = EgressPolicy(allow_loopback=True)
    messages = set()
    for port in (closed, ssh_like.port):
        target = ScimTarget(f"http://127.0.0.1:{port}/scim/v2", OLD_TOKEN, retries=0, egress=policy)
        try:
            with pytest.raises(ScimTargetError) as caught:
                target.find("Users", "userName", "x")
        finally:
            target.close()
        messages.add(_same(caught.value.message, port))
    assert len(messages) == 1 and "could not reach the target" in next(iter(messages)), messages


def test_the_imap_target_says_the_same_for_closed_and_non_imap_ports(listeners: list[Listener]) -> None:
    closed = free_port()
    http_like = listen(listeners, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", greet=True)
    ssh_like = listen(listeners, NOT_HTTP, greet=True)
    messages = set()
    for port in (closed, http_like.port, ssh_like.port):
        target = ImapTarget(ImapSettings(host="127.0.0.1", port=port, security="none", master_user="m",
                                         password="imap-master-secret"), EgressPolicy(allow_loopback=True))
        with pytest.raises(TargetError) as caught:
            target._connect("ann@contoso.com")
        messages.add(_same(str(caught.value), port))
    assert len(messages) == 1 and "could not reach the target" in next(iter(messages)), messages
    assert not any(b"imap-master-secret" in data for data in http_like.received + ssh_like.received)


def test_the_imap_target_connects_only_where_the_policy_allows(listeners: list[Listener]) -> None:
    greeter = listen(listeners, b"* OK IMAP4rev1 ready\r\n", greet=True)
    target = ImapTarget(ImapSettings(host="localhost", port=greeter.port, security="none", master_user="m",
                                     password="imap-master-secret"), EgressPolicy())
    with pytest.raises(TargetError, match="does not allow localhost"):
        target._connect("ann@contoso.com")
    assert greeter.received == []


# -- credentials are never echoed ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://admin:pw-in-url-1234@127.0.0.1:8080/scim/v2",
                                 "http://pw-in-url-1234@127.0.0.1/scim", "https://u:pw-in-url-1234@app.example/scim"])
def test_a_url_with_a_user_or_password_is_refused_and_not_repeated(admin, backend: Services, tenant: str,
                                                                   listeners: list[Listener], url: str) -> None:
    client, headers, base = admin
    r = client.post(base, headers=headers, json={"name": "U", "tenant_url": url, "token": "t" * 20})
    assert r.status_code == 400 and "put the token in its own field" in r.json()["message"], r.text
    assert "pw-in-url-1234" not in r.text
    real = listen(listeners)
    app_id = client.post(base, headers=headers, json={"name": "V", "tenant_url": real.url + "/scim/v2",
                                                      "token": "t" * 20}).json()["id"]
    r = client.patch(f"{base}/{app_id}", headers=headers, json={"tenant_url": url, "token": "t" * 20})
    assert r.status_code == 400 and "pw-in-url-1234" not in r.text
    r = client.post(base, headers=headers, json={"name": "Q", "tenant_url": real.url + "/scim?token=pw-in-url-1234",
                                                 "token": "t" * 20})
    assert r.status_code == 400 and "pw-in-url-1234" not in r.text


def test_urls_stored_before_the_rule_are_shown_redacted_everywhere(
        admin, backend: Services, tenant: str, listeners: list[Listener], caplog: pytest.LogCaptureFixture) -> None:
    """Rows written before URLs were checked may hold credentials: API, logs and messages never show them."""
    client, headers, base = admin
    app_id = client.post(base, headers=headers, json={"name": "Old", "tenant_url": "http://127.0.0.1:9/scim",
                                                      "token": "t" * 20}).json()["id"]
    legacy = f"http://olduser:legacy-pw-5678@127.0.0.1:{free_port()}/scim?access_token=legacy-pw-5678"
    with backend.db.session() as session:
        session.get(ProvisioningApp, app_id).tenant_url = legacy
    shown = [client.get(f"{base}/{app_id}", headers=headers).text, client.get(base, headers=headers).text,
             client.post(f"{base}/{app_id}/test-connection", headers=headers).text]
    backend.provisioning.update_app(tenant, app_id, scope="all")
    shown.append(json.dumps(plain(backend.provisioning.logs(tenant, app_id))))
    shown.append(caplog.text)
    assert all("legacy-pw-5678" not in text and "olduser" not in text for text in shown), shown
    assert "access_token=REDACTED" in shown[0]


def test_the_token_is_write_only(admin, backend: Services, tenant: str, listeners: list[Listener]) -> None:
    client, headers, base = admin
    real = listen(listeners)
    created = client.post(base, headers=headers, json={"name": "W", "tenant_url": real.url, "token": OLD_TOKEN})
    app_id = created.json()["id"]
    patched = client.patch(f"{base}/{app_id}", headers=headers, json={"token": NEW_TOKEN})
    with backend.db.session() as session:
        sealed = session.get(ProvisioningApp, app_id).token_secret
    for r in (created, patched, client.get(f"{base}/{app_id}", headers=headers), client.get(base, headers=headers),
              client.get(f"{base}/{app_id}/logs", headers=headers)):
        assert OLD_TOKEN not in r.text and NEW_TOKEN not in r.text and sealed not in r.text
        assert '"token"' not in r.text


def test_redact_url_drops_userinfo_query_values_and_fragment() -> None:
    assert redact_url("https://u:p@h.example:8443/scim?token=abc&x=1#frag") == \
        "https://h.example:8443/scim?token=REDACTED&x=REDACTED"
    assert redact_url("http://[::1]:80/a") == "http://[::1]:80/a"


def test_the_cli_refuses_a_move_without_the_token_and_lists_urls_redacted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listeners: list[Listener]) -> None:
    from typer.testing import CliRunner

    from tenantry.app import build_services
    from tenantry.cli import app as cli

    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    real, other = listen(listeners), listen(listeners)
    runner = CliRunner()
    assert runner.invoke(cli, ["tenant", "create", "default"]).exit_code == 0
    added = runner.invoke(cli, ["provisioning", "app-add", "Talk", real.url + "/scim/v2", "--token-stdin"],
                          input=OLD_TOKEN + "\n")
    assert added.exit_code == 0 and "connected" in added.output, added.output
    moved = runner.invoke(cli, ["provisioning", "app-update", "Talk", "--tenant-url", other.url + "/scim/v2"])
    assert moved.exit_code == 1 and "changing the URL needs the token again" in moved.output
    services = build_services(Settings())
    with services.db.session() as session:
        session.execute(update(ProvisioningApp).values(tenant_url="http://u:cli-pw-4321@127.0.0.1:9/scim"))
    services.db.dispose()
    listed = runner.invoke(cli, ["provisioning", "apps", "--json"])
    assert listed.exit_code == 0 and "cli-pw-4321" not in listed.output and "127.0.0.1:9/scim" in listed.output
    assert other.received == []


def _tls_files(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for ``name`` it signed: (CA file, certificate, key)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Egress test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class TlsListener(Listener):
    """The listener behind TLS with a certificate for one name; keeps the SNI each client sent."""

    def __init__(self, cert: Path, key: Path) -> None:
        import ssl

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.sni: list[str | None] = []

        def keep_sni(_sock: object, name: str | None, _context: object) -> None:
            self.sni.append(name)

        self.context.sni_callback = keep_sni
        super().__init__()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except OSError:
                raw.close()
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                self.received.append(data)
                with contextlib.suppress(OSError):
                    conn.sendall(self.reply)


def test_tls_is_verified_for_the_name_in_the_url_though_the_socket_goes_to_the_checked_address(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, cert, key = _tls_files(tmp_path, "scim.app.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))       # the operator's private CA, as httpx reads it
    listener = TlsListener(cert, key)
    policy = EgressPolicy(allow_loopback=True, resolver=static_resolver({
        "scim.app.test": ["127.0.0.1"], "other.app.test": ["127.0.0.1"]}))
    try:
        good = ScimTarget(f"https://scim.app.test:{listener.port}/scim/v2", OLD_TOKEN, retries=0, egress=policy)
        bad = ScimTarget(f"https://other.app.test:{listener.port}/scim/v2", OLD_TOKEN, retries=0, egress=policy)
        try:
            assert good.find("Users", "userName", "x") == []
            with pytest.raises(ScimTargetError, match="could not reach the target"):
                bad.find("Users", "userName", "x")    # the certificate is not for other.app.test
        finally:
            good.close()
            bad.close()
    finally:
        listener.close()
    assert listener.sni == ["scim.app.test", "other.app.test"]
    assert listener.header_lines("Authorization") == [f"Authorization: Bearer {OLD_TOKEN}"]   # the good one only
