"""Routing from the database: ``voice route`` (CLI and API) over the tenant's configuration, and the SIP redirect
service fed by ``LiveSnapshot`` — a change of configuration reaches the calls after the next re-read. Both
backends."""

from __future__ import annotations

import json
import socket
import time
import uuid

from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from tenantry.app import Services
from tenantry.cli import app
from tenantry.cli_kit import Cli
from tenantry.voice.live import LiveSnapshot
from tenantry.voice.results import RoutingPolicy
from tests.conftest import admin_secret, user_payload
from tests.voice.sip_support import ServerThread

ALICE = "alice@contoso.example"
GW = "gw1.sea.contoso.example"


def run(backend: Services, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), obj=Cli(backend))
    assert result.exit_code == code, result.output
    return result


def _configured(backend: Services, tenant: str) -> None:
    """Seattle with one gateway; Alice, a US voice user at Seattle; PeerDestination set."""
    backend.directory.add_domain(tenant, "contoso.example", verified=True)
    made = backend.scim.create(tenant, "User", user_payload(ALICE, emails=[
        {"type": "work", "value": ALICE, "primary": True}]))
    backend.directory.assign_licence(tenant, made["id"], "E5")
    voice = backend.voice
    voice.create_site(tenant, name="Seattle", edge_fqdn="ap.contoso.example")
    voice.create_mediation_server(tenant, fqdn="ms1.sea.contoso.example", site="Seattle", ip="10.0.1.11")
    voice.create_gateway(tenant, name=GW, site="Seattle")
    voice.set_hybrid_config(tenant, peer_destination="ap.contoso.example")
    voice.set_user(tenant, ALICE, enterprise_voice=True, hosted_voicemail=True, line_uri="+14255550100",
                   voice_policy="HybridVoice")
    voice.set_pstn_site(tenant, ALICE, "Seattle")


def test_voice_route_answers_as_the_sip_service_would(backend: Services, tenant: str) -> None:
    _configured(backend, tenant)
    t = ("--tenant", tenant)
    out = json.loads(run(backend, "voice", "route", f"sip:{ALICE}", "(425) 555-0123", "--json", *t).stdout)
    assert out["status"] == 302 and out["number"] == "+14255550123"
    assert out["contacts"] == [f"sip:+14255550123@{GW}:5061;transport=tls;user=phone"]
    assert "302 Moved Temporarily" in run(backend, "voice", "route", "tel:+14255550100", "4255550123", *t).stdout
    run(backend, "voice", "route", "nobody@contoso.example", "4255550123", *t, code=1)
    backend.voice.grant_routing_policy(tenant, ALICE, RoutingPolicy.DISALLOWED)
    refused = json.loads(run(backend, "voice", "route", ALICE, "+44 20 7946 0000", "--json", *t, code=1).stdout)
    assert refused["status"] == 403
    conference = json.loads(run(backend, "voice", "route", ALICE, "4255550123", "--conference", "--json",
                                *t).stdout)
    assert [c.split("@")[1].split(";")[0].split(":")[0] for c in conference["contacts"]] == ["ms1.sea.contoso.example"]


def test_voice_route_over_the_api(app_client: TestClient, backend: Services, tenant: str) -> None:
    _configured(backend, tenant)
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'voice', roles=['Voice Administrator'])}"}
    r = app_client.get(f"/api/v1/tenants/{tenant}/voice/route", params={"caller": ALICE, "number": "4255550123"},
                       headers=h)
    assert r.status_code == 200 and r.json()["status"] == 302 and r.json()["outcome"] == "redirect"
    r = app_client.get(f"/api/v1/tenants/{tenant}/voice/route", params={"caller": ALICE, "number": "x" * 65},
                       headers=h)
    assert r.status_code == 422


def _invite(port: int, caller: str, number: str) -> bytes:
    branch, call_id = f"z9hG4bK{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    return (f"INVITE sip:{number}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:{caller}>;tag=1\r\nTo: <sip:{number}@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 INVITE\r\nContact: <sip:{caller.split('@')[0]}@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
            ).encode()


def _answer(port: int, caller: str, number: str) -> tuple[int, list[str]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(_invite(port, caller, number), ("127.0.0.1", port))
        while True:
            data = sock.recv(65535).decode()
            status = int(data.split(" ", 2)[1])
            if status >= 200:   # past any 100 Trying
                contacts = [line.split(":", 1)[1].strip() for line in data.split("\r\n")
                            if line.lower().startswith(("contact:", "m:"))]
                return status, contacts


def test_the_sip_service_routes_from_the_database_and_sees_changes(backend: Services, tenant: str) -> None:
    _configured(backend, tenant)
    live = LiveSnapshot(backend.voice, tenant, every=0.2).start()
    try:
        with ServerThread(live) as server:
            status, contacts = _answer(server.port, ALICE, "4255550123")
            assert status == 302 and GW in contacts[0]
            # The user leaves the site: the next re-read sends the call to the PeerDestination.
            backend.voice.set_pstn_site(tenant, ALICE, None)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status, contacts = _answer(server.port, ALICE, "4255550123")
                if GW not in contacts[0]:
                    break
                time.sleep(0.1)
            assert status == 302 and "ap.contoso.example" in contacts[0]
            assert _answer(server.port, "mallory@contoso.example", "4255550123")[0] == 404
    finally:
        live.stop()


def test_voice_serve_refuses_half_a_tls_configuration(backend: Services, tenant: str, tmp_path: object) -> None:
    result = run(backend, "voice", "serve", "--tls-cert", "/nonexistent.pem", "--tenant", tenant, code=1)
    assert "needs both --tls-cert and --tls-key" in result.output
