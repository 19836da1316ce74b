"""Gateway health from OPTIONS pings (voice.health): the 3-minute window, pings over UDP and TCP against sipp
acting as a gateway and against our own service, and routing demoting a gateway that stopped answering."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.voice.health import Health, OptionsPinger, ping
from tenantry.voice.routing import route
from tenantry.voice.snapshot import GatewayRoute, RoutingSnapshot, SiteRoute, Transport
from tests.voice.sip_support import ServerThread, snapshot

SCENARIOS = Path(__file__).parent / "sipp"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_gateway_never_pinged_is_healthy() -> None:
    assert Health().healthy("gw1.contoso.com")


def test_gateway_is_healthy_for_three_minutes_after_an_answer() -> None:
    clock = Clock()
    health = Health(clock=clock)
    health.answered("gw1")
    clock.now += 180
    assert health.healthy("gw1")
    clock.now += 1
    assert not health.healthy("gw1")


def test_gateway_pinged_but_never_answering_is_unhealthy() -> None:
    health = Health()
    health.pinged("gw1")
    assert not health.healthy("gw1")


def test_forget_drops_gateways_no_longer_configured() -> None:
    health = Health()
    health.pinged("old")
    health.forget({"new"})
    assert health.healthy("old")          # unknown again: no evidence


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        yield running


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_ping_gets_200_from_our_own_service(server: ServerThread, transport: Transport) -> None:
    gateway = GatewayRoute("self", "127.0.0.1", server.port, transport, "seattle")
    assert asyncio.run(ping(gateway, timeout=3)) == 200


@pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP])
def test_ping_to_a_silent_port_is_no_answer(transport: Transport) -> None:
    gateway = GatewayRoute("dead", "127.0.0.1", free_udp_port(), transport, "seattle")
    started = time.monotonic()
    assert asyncio.run(ping(gateway, timeout=0.6, t1=0.1)) is None
    assert time.monotonic() - started < 3


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed")
def test_pinger_marks_the_sipp_gateway_healthy_and_the_silent_one_demoted(tmp_path: Path) -> None:
    port = free_udp_port()
    uas = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / "options_uas.xml"), "-p", str(port), "-i", "127.0.0.1", "-m", "1",
         "-nostdin", "-timeout", "20"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )
    try:
        time.sleep(0.5)
        alive = GatewayRoute("sipp-gw", "127.0.0.1", port, Transport.UDP, "seattle")
        silent = GatewayRoute("silent-gw", "127.0.0.1", free_udp_port(), Transport.UDP, "seattle")
        base = snapshot()
        site = SiteRoute("seattle", (silent, alive), ())
        snap = RoutingSnapshot(base.tenant, base.users, {"seattle": site}, base.peer_destination)
        health = Health()
        pinger = OptionsPinger(health, lambda: snap, timeout=1.5)
        results = asyncio.run(pinger.ping_all())
        assert results == {"silent-gw": None, "sipp-gw": 200}
        assert health.healthy("sipp-gw") and not health.healthy("silent-gw")
        for _ in range(20):
            contacts = route(snap, "alice@contoso.com", "2065550123", health=health).contacts
            assert contacts[0].startswith(f"sip:+12065550123@127.0.0.1:{port};")
        assert uas.wait(timeout=20) == 0          # sipp's own verdict: it got the OPTIONS and answered
    finally:
        if uas.poll() is None:
            uas.kill()
