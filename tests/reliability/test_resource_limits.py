"""Zip bombs and oversized uploads against the real server process (issue #9, defect 4).

The server runs as ``python -m tenantry serve`` on a free 127.0.0.1 port with a small upload limit; the
bombs are built here (a deflate stream of one repeated block, so a 1 GiB member costs a second to make),
uploaded over HTTP and imported. The budget: the server's peak resident memory (VmHWM of its process) stays
under its idle size + 300 MB, and every refusal is named — in the upload's 4xx answer or the run report.
"""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _pg_database, admin_secret, as_admin, importing_admin
from tests.interop.conftest import free_port
from tests.zipbombs import deflate_zip

MIB = 1024 * 1024
BUDGET = 300 * MIB
UPLOAD_LIMIT = 256 * MIB


@dataclass
class Server:
    base: str
    headers: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def kib(self, field: str) -> int:
        """VmHWM (peak) or VmRSS (now) of the server process, in bytes (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")


def _prepare(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """Tenant, users, the import role and two export connectors, written before the server starts."""
    from tenantry.app import build_services
    from tenantry.core.settings import Settings

    services = build_services(Settings(data_dir=data_dir, database_url=database_url))
    try:
        services.directory.ensure_tenant("default", "Default")
        admin_id = importing_admin(services)
        ids = {}
        for name in ("Bombs", "Big"):
            ids[name] = services.connectors.create("default", name=name, kind="whatsapp-export",
                                                   by=as_admin(services, "default", admin_id), accept_terms=True).id
            services.connectors.consent("default", ids[name], as_admin(services, "default", admin_id))
        ids["token"] = admin_secret(services, "default", "resource tests")
        ids["scim"] = services.directory.issue_token("default", "scim", "resource tests").secret
        return ids
    finally:
        services.db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp(f"resource-server-{request.param}")
    databases = _pg_database() if request.param == "postgresql" else None
    database_url = next(databases) if databases is not None else None
    try:
        yield from _serve(data_dir, database_url)
    finally:
        for _ in databases or ():
            pass


def _serve(data_dir: Path, database_url: str | None) -> Iterator[tuple[Server, dict[str, str]]]:
    ids = _prepare(data_dir, database_url)
    port = free_port()
    env = {**os.environ, "TENANTRY_DATA_DIR": str(data_dir), "TENANTRY_UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT),
           "TENANTRY_BOOTSTRAP_SCIM_TOKEN": "tnt_test_" + secrets.token_urlsafe(24)}
    env.pop("TENANTRY_DATABASE_URL", None)
    if database_url is not None:
        env["TENANTRY_DATABASE_URL"] = database_url
    log = data_dir / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data_dir)
    base = f"http://127.0.0.1:{port}/api/v1/tenants/default"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer in 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(base, {"Authorization": f"Bearer {ids['token']}"}, process, log), ids
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


# --- bombs, made cheaply (tests/zipbombs.py) -----------------------------------------------------------


CHAT_LINE = b"12/01/2024, 09:15 - Bob: the same line again and again, a chat text that compresses very well\n"


def chat_bomb() -> bytes:
    """About 1 MB of zip holding a 1 GiB chat text."""
    block = CHAT_LINE * (MIB // len(CHAT_LINE))
    return deflate_zip([("WhatsApp Chat with Bombs.txt", block, 1024 * MIB // len(block))])


def media_bomb() -> bytes:
    """About 2 MB of zip: a short chat naming four media files of 512 MiB each."""
    chat = b"".join(b"12/01/2024, 09:1%d - Bob: IMG-20240112-WA000%d.jpg (file attached)\n" % (i, i)
                    for i in range(4))
    media = [(f"IMG-20240112-WA000{i}.jpg", bytes(MIB), 512) for i in range(4)]
    return deflate_zip([("WhatsApp Chat with Media.txt", chat, 1), *media])


def _issues(report: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    return [i for i in report["issues"] if i["reason"] == reason]


# --- the tests -------------------------------------------------------------------------------------------


def _idle(srv: Server) -> int:
    # Warm up first (imports, the database pool), so the baseline is the server as it idles in service.
    httpx.get(f"{srv.base}/connectors", headers=srv.headers, timeout=30).raise_for_status()
    return srv.kib("VmRSS")


def test_zip_bombs_are_refused_within_the_memory_budget_and_named(server: tuple[Server, dict[str, str]]) -> None:
    srv, ids = server
    idle = _idle(srv)
    params = {"owner": "bob@contoso.com"}
    url = f"{srv.base}/connectors/{ids['Bombs']}/exports"
    with httpx.Client(timeout=300) as client:
        # The 1 GiB chat text: refused on upload, from the zip headers, before any run.
        r = client.post(url, headers=srv.headers, content=chat_bomb(), params={**params, "filename": "chat.zip"})
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid" and "ratio" in r.json()["message"]
        assert srv.kib("VmHWM") < idle + BUDGET, "the chat bomb took the server over budget"
        # 4 × 512 MiB media: accepted (the chat is fine), each file refused by the item rule, unread.
        r = client.post(url, headers=srv.headers, content=media_bomb(), params={**params, "filename": "media.zip"})
        assert r.status_code == 201, r.text
        r = client.post(f"{srv.base}/connectors/{ids['Bombs']}/runs", headers=srv.headers)
        assert r.status_code == 201, r.text
        report = r.json()
    assert srv.kib("VmHWM") < idle + BUDGET, "the media bomb took the server over budget"
    assert report["status"] == "succeeded"
    assert report["skipped_by_reason"].get("too_large") == 4
    named = " ".join(i["detail"] for i in _issues(report, "notice"))
    for i in range(4):
        assert f"IMG-20240112-WA000{i}.jpg: {512 * MIB} bytes" in named
    assert {i["location"] for i in _issues(report, "too_large")} == {
        f"media.zip line {n}" for n in range(1, 5)}


def _zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(MIB)
    sent = 0
    while sent < total:
        yield chunk[: min(MIB, total - sent)]
        sent += MIB


def test_uploads_stream_to_disk_and_are_refused_past_the_limit(server: tuple[Server, dict[str, str]]) -> None:
    srv, ids = server
    idle = _idle(srv)
    url = f"{srv.base}/connectors/{ids['Big']}/exports"
    params = {"owner": "bob@contoso.com", "filename": "big.bin"}
    uploads = srv.log.parent / "uploads"
    uploads.mkdir(exist_ok=True)
    before = set(uploads.iterdir())
    with httpx.Client(timeout=300) as client:
        # Over the limit without a length (chunked): read until the limit, then 413, nothing kept.
        r = client.post(url, headers=srv.headers, params=params, content=_zeros(300 * MIB + 1))
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "too_large" and "TENANTRY_UPLOAD_MAX_BYTES" in r.json()["message"]
        # Over the limit by its Content-Length: refused before reading.
        r = client.post(url, headers={**srv.headers, "Content-Length": str(300 * MIB)}, params=params,
                        content=_zeros(300 * MIB))
        assert r.status_code == 413, r.text
        assert set(uploads.iterdir()) == before, "a refused upload left a file"
        # Under the limit: accepted, and on disk rather than in memory.
        # (It starts like an export: a file in which no line parses is refused, issue #10 item 6.)
        head = b"12/01/2024, 09:15 - Bob: the rest is padding\n"
        r = client.post(url, headers=srv.headers, params=params,
                        content=itertools.chain([head], _zeros(UPLOAD_LIMIT - MIB - len(head))))
        assert r.status_code == 201, r.text
    assert srv.kib("VmHWM") < idle + BUDGET, "an upload was held in memory"
    assert [p.stat().st_size for p in set(uploads.iterdir()) - before] == [UPLOAD_LIMIT - MIB]


def test_scim_bodies_past_the_limit_are_refused_without_being_held(server: tuple[Server, dict[str, str]]) -> None:
    """A SCIM body is bounded at 10 MiB (docs/security.md): it must be refused as it streams, not read whole
    first. The probe of issue #9 saw 400 MB of body take the server to 890 MB."""
    srv, ids = server
    idle = _idle(srv)
    scim = srv.base.replace("/api/v1/tenants/default", "/scim/v2")
    headers = {"Authorization": f"Bearer {ids['scim']}", "Content-Type": "application/scim+json"}
    with httpx.Client(timeout=300) as client:
        for path in ("/Users", "/Bulk", "/Users/.search"):
            r = client.post(scim + path, headers=headers, content=_zeros(400 * MIB))   # chunked, no length
            assert r.status_code == 413, r.text
            assert r.json()["status"] == "413"
        r = client.post(scim + "/Users", headers={**headers, "Content-Length": str(400 * MIB)},
                        content=_zeros(400 * MIB))
        assert r.status_code == 413, r.text
    assert srv.kib("VmHWM") < idle + BUDGET, "a SCIM body was held in memory before its limit was checked"
