"""Interop with sipp (Debian sip-tester 3.6.1) against the redirect service on 127.0.0.1, over UDP and TCP.

Each scenario in tests/voice/sipp/ checks what it receives itself (``ereg check_it``): sipp's exit status is the
verdict (0: every call passed). The no-ACK scenario shows Timer G: the 302 comes again until the ACK.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tenantry.voice.sip_server import Timers
from tests.voice.sip_support import ServerThread
from tests.voice.test_routing import Down

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) is not installed"),
]

SCENARIOS = Path(__file__).parent / "sipp"
TRANSPORTS = {"udp": "u1", "tcp": "t1"}


def sipp(port: int, scenario: str, caller: str, dialled: str, *, transport: str = "udp", calls: int = 3,
         tmp_path: Path, extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    errors = tmp_path / f"{scenario}-{transport}-errors.log"
    command = [
        "sipp", "-sf", str(SCENARIOS / f"{scenario}.xml"), "-t", TRANSPORTS[transport], "-m", str(calls),
        "-key", "caller", caller, "-key", "dialled", dialled, "-p", "0", "-nostdin",
        "-timeout", "20", "-timeout_error", "-trace_err", "-error_file", str(errors),
        *(extra or []), f"127.0.0.1:{port}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    if done.returncode != 0 and errors.exists():
        done.stdout += errors.read_text(errors="replace")
    return done


@pytest.fixture(scope="module")
def server() -> ServerThread:
    # 10.0.0.3 has stopped answering OPTIONS: it is the last Contact of every redirect from the seattle site.
    with ServerThread(health=Down("10.0.0.3")) as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_gets_302_with_the_sites_gateways_in_order_healthy_first(
    server: ServerThread, transport: str, tmp_path: Path
) -> None:
    done = sipp(server.port, "redirect_302", "alice@contoso.com", "2065550123", transport=transport, calls=5,
                tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(
    ("scenario", "caller", "dialled"),
    [
        ("forbidden_403", "dave@contoso.com", "2065550123"),          # not enabled for enterprise voice
        ("forbidden_403", "bob@contoso.com", "+442079460958"),        # InternationalCallsDisallowed
        ("not_found_404", "zed@contoso.com", "2065550123"),           # unknown caller
        ("invalid_484", "alice@contoso.com", "123"),                  # not a valid number
    ],
)
def test_sipp_gets_the_refusal_the_routing_rule_gives(
    server: ServerThread, transport: str, scenario: str, caller: str, dialled: str, tmp_path: Path
) -> None:
    done = sipp(server.port, scenario, caller, dialled, transport=transport, calls=2, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout


def test_302_is_retransmitted_on_timer_g_until_the_ack_and_then_stops(tmp_path: Path) -> None:
    timers = Timers(t1=0.1, t2=0.8, t4=0.5)       # 302 again at 0.1, 0.3, 0.7, 1.5 s (then 2.3 s)
    with ServerThread(timers=timers) as running:
        trace = tmp_path / "messages.log"
        done = sipp(running.port, "no_ack_302", "alice@contoso.com", "2065550123", calls=1, tmp_path=tmp_path,
                    extra=["-trace_msg", "-message_file", str(trace)])
        assert done.returncode == 0, done.stdout
        log = trace.read_text(errors="replace")
        before_ack, _, after_ack = log.partition("ACK sip:")
        # sipp held the ACK for 2 s: the first 302 and its 4 retransmissions on doubling intervals arrived.
        assert before_ack.count("SIP/2.0 302 Moved Temporarily") == 5
        # The ACK reused the INVITE's branch and matched the transaction: nothing more in the 2 s after it.
        assert after_ack and "SIP/2.0 302" not in after_ack
        assert running.call(lambda: running.service.core.stats["retransmitted"]) == 4   # type: ignore[union-attr]
        time.sleep(timers.t4 + 0.3)
        # Timer I fired: the confirmed transaction is gone.
        assert running.call(lambda: len(running.service.core.transactions)) == 0        # type: ignore[union-attr]
