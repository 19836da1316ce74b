"""A real Tenantry server process on 127.0.0.1 for the conformance suites and peers (one per backend)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _pg_database


@dataclass
class RunningServer:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, database_url: str | None = None) -> RunningServer:
    port = free_port()
    token = "tnt_test_" + secrets.token_urlsafe(24)
    env = {**os.environ, "TENANTRY_DATA_DIR": str(data_dir), "TENANTRY_BOOTSTRAP_SCIM_TOKEN": token}
    if database_url:
        env["TENANTRY_DATABASE_URL"] = database_url
    else:
        env.pop("TENANTRY_DATABASE_URL", None)
    log = data_dir / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data_dir,
    )
    base = f"http://127.0.0.1:{port}/scim/v2"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/ServiceProviderConfig", timeout=1).status_code == 200:
                return RunningServer(base, token, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not answer in 60 s:\n{log.read_text()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    if request.param == "sqlite":
        running = start_server(data_dir)
        yield running
        stop_server(running)
        return
    gen = _pg_database()
    url = next(gen)
    running = start_server(data_dir, url)
    try:
        yield running
    finally:
        stop_server(running)
        for _ in gen:
            pass
