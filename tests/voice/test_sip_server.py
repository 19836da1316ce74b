"""The redirect service over real UDP and TCP sockets on 127.0.0.1: answers, transactions, timers, robustness."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.voice.sip_server import RedirectCore, Timers, serve
from tenantry.voice.snapshot import RoutingSnapshot
from tests.voice.sip_support import ServerThread, snapshot


def invite(caller: str = "alice@contoso.com", dialled: str = "2065550123", *, method: str = "INVITE",
           branch: str | None = None, call_id: str | None = None, to_tag: str = "", uri_params: str = "",
           port: int = 5060) -> bytes:
    branch = branch or f"z9hG4bK{uuid.uuid4().hex}"
    call_id = call_id or uuid.uuid4().hex
    return (
        f"{method} sip:{dialled}@127.0.0.1;user=phone{uri_params} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n"
        f"From: <sip:{caller}>;tag=f1\r\n"
        f"To: <sip:{dialled}@127.0.0.1;user=phone>{to_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: 1 {method}\r\n"
        "Max-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Udp:
    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2)
        self.port = port

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def recv(self, timeout: float = 2) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536).decode()
        except TimeoutError:
            return None

    def ask(self, data: bytes) -> str:
        self.send(data)
        answer = self.recv()
        assert answer is not None, "no answer"
        return answer


class CountingSource:
    def __init__(self, value: RoutingSnapshot) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> RoutingSnapshot:
        self.calls += 1
        return self.value


@pytest.fixture()
def source() -> CountingSource:
    return CountingSource(snapshot())


@pytest.fixture()
def server(source: CountingSource) -> Iterator[ServerThread]:
    with ServerThread(source, timers=Timers(t1=0.05, t2=0.4, t4=0.2)) as running:
        yield running


@pytest.fixture()
def udp(server: ServerThread) -> Udp:
    return Udp(server.port)


def status(answer: str) -> int:
    return int(answer.split(" ", 2)[1])


def test_invite_gets_302_with_the_sites_gateways(udp: Udp) -> None:
    answer = udp.ask(invite())
    assert status(answer) == 302
    contacts = [line for line in answer.split("\r\n") if line.startswith("Contact:")]
    assert len(contacts) == 3
    assert all("sip:+12065550123@" in c and "user=phone" in c for c in contacts)


@pytest.mark.parametrize(
    ("caller", "dialled", "expected"),
    [
        ("dave@contoso.com", "2065550123", 403),       # voice disabled
        ("bob@contoso.com", "+442079460958", 403),     # international disallowed
        ("zed@contoso.com", "2065550123", 404),        # unknown caller
        ("alice@contoso.com", "123", 484),             # invalid number
        ("gus@contoso.com", "2065550123", 480),        # site without gateways
    ],
)
def test_refusals_map_to_their_status(udp: Udp, caller: str, dialled: str, expected: int) -> None:
    answer = udp.ask(invite(caller, dialled))
    assert status(answer) == expected
    assert "Contact:" not in answer
    assert ";tag=" in answer.split("To:", 1)[1].split("\r\n", 1)[0]


def test_conference_parameter_redirects_to_the_mediation_servers(udp: Udp) -> None:
    answer = udp.ask(invite(uri_params=";conference"))
    assert "Contact: <sip:+12065550123@ms1.contoso.com;user=phone>\r\nContact: <sip:+12065550123@ms2" in answer


def test_retransmitted_invite_gets_the_same_response_and_is_not_routed_again(
    udp: Udp, source: CountingSource
) -> None:
    request = invite()
    first = udp.ask(request)
    again = udp.ask(request)
    assert again == first                       # same To tag, same Contact order
    assert source.calls == 1


def test_302_is_retransmitted_without_ack_and_stops_at_timer_h(server: ServerThread, udp: Udp) -> None:
    udp.ask(invite())
    copies = 0
    deadline = time.monotonic() + 64 * 0.05 + 1.0
    while time.monotonic() < deadline:
        if udp.recv(timeout=0.5) is not None:
            copies += 1
    # Timer G at 0.05, 0.15, 0.35, 0.75, 1.15, … until Timer H (3.2 s): 8 or 9 copies, then nothing.
    assert 6 <= copies <= 10
    assert server.call(lambda: len(server.service.core.transactions)) == 0   # type: ignore[union-attr]


def test_ack_with_the_invites_branch_stops_retransmission(server: ServerThread, udp: Udp) -> None:
    branch = f"z9hG4bK{uuid.uuid4().hex}"
    call_id = uuid.uuid4().hex
    answer = udp.ask(invite(branch=branch, call_id=call_id))
    to_tag = answer.split("To:", 1)[1].split("\r\n", 1)[0].split(";tag=")[1]
    udp.send(invite(method="ACK", branch=branch, call_id=call_id, to_tag=f";tag={to_tag}"))
    assert udp.recv(timeout=0.6) is None


def test_options_is_answered_200_with_allow(udp: Udp) -> None:
    answer = udp.ask(invite(method="OPTIONS"))
    assert status(answer) == 200
    assert "Allow: INVITE, ACK, CANCEL, OPTIONS" in answer


def test_cancel_of_an_answered_invite_gets_200_and_an_unknown_one_481(udp: Udp) -> None:
    branch = f"z9hG4bK{uuid.uuid4().hex}"
    call_id = uuid.uuid4().hex
    assert status(udp.ask(invite(branch=branch, call_id=call_id))) == 302
    assert status(udp.ask(invite(method="CANCEL", branch=branch, call_id=call_id))) == 200
    assert status(udp.ask(invite(method="CANCEL"))) == 481


def test_other_methods_get_405_and_in_dialog_invite_481(udp: Udp) -> None:
    assert status(udp.ask(invite(method="REGISTER"))) == 405
    assert status(udp.ask(invite(to_tag=";tag=abc"))) == 481


def test_malformed_but_answerable_request_gets_400(udp: Udp) -> None:
    bad = invite().replace(b"CSeq: 1 INVITE", b"CSeq: 1 BYE")
    assert status(udp.ask(bad)) == 400


def test_over_size_answerable_request_gets_513(udp: Udp) -> None:
    big = invite().replace(b"Max-Forwards: 70\r\n", b"X-Pad: " + b"a" * 20000 + b"\r\nMax-Forwards: 70\r\n")
    assert status(udp.ask(big)) == 513


def test_garbage_and_unanswerable_ack_get_no_answer_and_service_keeps_answering(udp: Udp) -> None:
    udp.send(b"\x00\x01garbage")
    udp.send(invite(method="ACK").replace(b"CSeq: 1 ACK", b"CSeq: x ACK"))
    assert udp.recv(timeout=0.3) is None
    assert status(udp.ask(invite())) == 302


def test_tcp_reads_messages_split_and_joined_and_answers_on_the_connection(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as conn:
        one, two = invite(), invite("bob@contoso.com", "+442079460958")
        stream = one + two
        conn.sendall(stream[:37])
        time.sleep(0.05)
        conn.sendall(stream[37:])
        data = b""
        while data.count(b"Content-Length: 0\r\n\r\n") < 2:
            chunk = conn.recv(65536)
            assert chunk, "connection closed"
            data += chunk
    text = data.decode()
    assert text.startswith("SIP/2.0 302 ")
    assert "SIP/2.0 403 Forbidden" in text


def test_tcp_stream_that_loses_its_framing_is_closed_and_the_service_goes_on(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as conn:
        conn.sendall(invite().replace(b"Content-Length: 0\r\n", b""))
        assert conn.recv(100) == b""
    assert status(Udp(server.port).ask(invite())) == 302


def test_beyond_the_transaction_bound_new_requests_get_503() -> None:
    async def scenario() -> list[bytes]:
        core = RedirectCore(lambda: snapshot(), max_transactions=2)
        sent: list[bytes] = []
        for _ in range(3):
            core.handle(invite(), ("127.0.0.1", 5060), sent.append, reliable=False)
        core.close()
        return sent

    answers = asyncio.run(scenario())
    assert [a.split(b" ", 2)[1] for a in answers] == [b"302", b"302", b"503"]
    assert b"Retry-After: 5" in answers[2]


def test_snapshot_source_failure_drops_the_message_not_the_service() -> None:
    def broken() -> RoutingSnapshot:
        raise RuntimeError("database away")

    async def scenario() -> tuple[list[bytes], int]:
        core = RedirectCore(broken)
        sent: list[bytes] = []
        core.handle(invite(), ("127.0.0.1", 5060), sent.append, reliable=False)
        core.handle(invite(method="OPTIONS"), ("127.0.0.1", 5060), sent.append, reliable=False)
        core.close()
        return sent, core.stats["dropped"]

    sent, dropped = asyncio.run(scenario())
    assert dropped == 1
    assert [a.split(b" ", 2)[1] for a in sent] == [b"200"]


_LINES = invite().split(b"\r\n")


@st.composite
def mutated_invites(draw: st.DrawFn) -> bytes:
    lines = list(_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        choice = draw(st.sampled_from(["drop", "dup", "garble", "truncate"]))
        if choice == "drop":
            del lines[i]
        elif choice == "dup":
            lines.insert(i, lines[i])
        elif choice == "garble":
            lines[i] = draw(st.binary(max_size=60))
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        if not lines:
            break
    return b"\r\n".join(lines)


@pytest.mark.fuzz
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=2000), mutated_invites()))
def test_malformed_datagrams_never_stop_the_service(server: ServerThread, data: bytes) -> None:
    client = Udp(server.port)
    client.send(data)
    client.recv(timeout=0.01)          # whatever it answered, if anything
    assert status(client.ask(invite())) == 302


def test_tls_listener_answers_an_invite_over_tls(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sip.contoso.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("sip.contoso.com")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)

    async def scenario() -> bytes:
        service = await serve("127.0.0.1", 0, lambda: snapshot(), tls_context=server_context, tls_port=0)
        try:
            client_context = ssl.create_default_context(cafile=str(cert_file))
            assert service.tls_port is not None
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", service.tls_port, ssl=client_context, server_hostname="sip.contoso.com"
            )
            writer.write(invite())
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            return answer
        finally:
            await service.close()

    assert asyncio.run(scenario()).startswith(b"SIP/2.0 302 Moved Temporarily\r\n")


def test_run_entry_serves_until_interrupted(tmp_path: Path) -> None:
    """``run`` is what ``tenantry voice serve`` calls: it serves UDP and TCP, and a SIGINT stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "serve.py"
    script.write_text(
        "import sys\n"
        "from tenantry.voice.sip_server import run\n"
        "from tests.voice.sip_support import snapshot\n"
        "value = snapshot()\n"
        f"run('127.0.0.1', {port}, lambda: value, ping_gateways=True)\n"
    )
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    process = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE)
    try:
        client = Udp(port)
        answer = None
        for _ in range(50):
            client.send(invite(method="OPTIONS"))
            answer = client.recv(timeout=0.2)
            if answer:
                break
        assert answer is not None and status(answer) == 200
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            conn.sendall(invite())
            assert conn.recv(65536).startswith(b"SIP/2.0 302 ")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()


def test_idle_tcp_connection_is_closed_after_the_idle_timeout(server: ServerThread) -> None:
    assert server.service is not None
    server.service.idle_timeout = 0.3
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as busy, \
            socket.create_connection(("127.0.0.1", server.port), timeout=3) as idle:
        started = time.monotonic()
        for _ in range(4):                      # the busy one keeps talking past the timeout
            busy.sendall(b"\r\n\r\n")
            time.sleep(0.15)
        assert idle.recv(100) == b""            # closed by the server
        assert 0.25 < time.monotonic() - started < 2
        busy.sendall(invite())
        assert busy.recv(65536).startswith(b"SIP/2.0 302 ")
