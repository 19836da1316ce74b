"""A private authoritative DNS server (Debian's ``nsd``) on 127.0.0.1 for the voice DNS checks.

The checks are tested against a real server, not a mocked resolver: the zone files are generated per test run,
nsd serves them on a free port over UDP and TCP, and dnspython asks it exactly as ``voice check --dns-server``
would. nsd runs in the foreground (``-d``) as the current user with no chroot, no database and no control socket,
so it needs neither root nor systemd.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

NSD_CONF = """\
server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{root}"
    database: ""
    zonelistfile: "{root}/zone.list"
    xfrdfile: "{root}/xfrd.state"
    pidfile: "{root}/nsd.pid"
    logfile: "{root}/nsd.log"
    verbosity: 1
    hide-version: yes
remote-control:
    control-enable: no
"""

ZONE_ENTRY = """\
zone:
    name: "{name}"
    zonefile: "{root}/{name}.zone"
"""


def zone_text(origin: str, records: str) -> str:
    """A zone file for ``origin`` with its SOA and NS, then ``records`` (zone-file lines, relative or absolute)."""
    return (f"$ORIGIN {origin}.\n$TTL 3600\n"
            f"@ IN SOA ns1.{origin}. hostmaster.{origin}. 1 3600 600 86400 300\n"
            f"@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n{records}\n")


@dataclass
class Nsd:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.root / "nsd.log"
        return path.read_text() if path.exists() else ""


def available() -> str | None:
    """None when nsd can run here, else why not."""
    if shutil.which("nsd") is None:
        return "nsd is not installed (Debian package nsd; scripts/test installs it)"
    return None


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP (nsd listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def start(root: Path, zones: Mapping[str, str]) -> Nsd:
    """Write ``zones`` (origin → zone text) and a config under ``root``, start nsd and wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = NSD_CONF.format(root=root, port=port)
    for origin, text in zones.items():
        (root / f"{origin}.zone").write_text(text)
        config += ZONE_ENTRY.format(root=root, name=origin)
    conf = root / "nsd.conf"
    conf.write_text(config)
    check = subprocess.run(["nsd-checkconf", str(conf)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nsd-checkconf refused the generated config: {check.stdout}{check.stderr}")
    process = subprocess.Popen(["nsd", "-d", "-c", str(conf)], stdout=(root / "nsd.out").open("wb"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Nsd(root, port, process)
    probe_zone = next(iter(zones))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(port, probe_zone):
            return server
        time.sleep(0.05)
    stop(server)
    out = (root / "nsd.out").read_text() if (root / "nsd.out").exists() else ""
    raise RuntimeError(f"nsd did not answer on 127.0.0.1:{port}:\n{out}\n{server.log()}")


def _answers(port: int, origin: str) -> bool:
    """nsd is up when it answers a SOA query for a zone it serves, over UDP and over TCP."""
    query = dns.message.make_query(f"{origin}.", "SOA")
    try:
        udp = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        tcp = dns.query.tcp(query, "127.0.0.1", port=port, timeout=0.5)
    except (OSError, dns.exception.DNSException):
        return False
    return udp.rcode() == dns.rcode.NOERROR and tcp.rcode() == dns.rcode.NOERROR and bool(udp.answer)


def stop(server: Nsd) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(5)
