"""Console sign-in fixtures: a SignIn over the session's database with a clock the test moves and cookies for
plain http (``TENANTRY_COOKIE_SECURE=false``, as on 127.0.0.1), the app around it, a directory user, and the
helpers that read the sign-in form as a browser would.

The end-to-end tests' peer, the certified OpenID provider ``oidc-provider`` (npm), runs on Debian's Node from the
folder ``scripts/test`` installs it to (``TENANTRY_NPM_DIR``, default ``~/.cache/tenantry-npm``); they skip,
saying why, where Node or the package is missing.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tenantry.app import Services, create_app
from tenantry.auth.service import SignIn, SignInSettings
from tenantry.core.clock import utcnow
from tenantry.core.egress import EgressPolicy
from tests.conftest import user_payload

ADMIN = "admin@contoso.com"
PASSWORD = "correct horse battery staple"
NPM_DIR = Path(os.environ.get("TENANTRY_NPM_DIR", str(Path.home() / ".cache" / "tenantry-npm")))
PROVIDER_MODULE = NPM_DIR / "node_modules" / "oidc-provider" / "lib" / "index.js"
PROVIDER_SCRIPT = Path(__file__).parent / "oidc_provider.mjs"


class Clock:
    """The SignIn's "now", moved by the test."""

    def __init__(self) -> None:
        self.moment = utcnow()

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def make_signin(services: Services, clock: Clock, **settings: Any) -> SignIn:
    chosen = SignInSettings(**{"cookie_secure": False, "default_tenant": services.settings.default_tenant,
                               **settings})
    return SignIn(services.db, services.directory, services.scim, services.secrets,
                  egress=EgressPolicy(allow_loopback=True), settings=chosen, now=clock)


@dataclasses.dataclass
class Console:
    services: Services
    signin: SignIn
    clock: Clock
    client: TestClient
    tenant: str
    admin: str        # the directory user id of ADMIN

    def user(self, user_name: str, **extra: Any) -> str:
        return str(self.services.scim.create(self.tenant, "User", user_payload(user_name, **extra))["id"])


@pytest.fixture()
def console(backend: Services, tenant: str) -> Iterator[Console]:
    clock = Clock()
    signin = make_signin(backend, clock)
    services = dataclasses.replace(backend, signin=signin)
    admin = str(backend.scim.create(tenant, "User", user_payload(
        ADMIN, emails=[{"type": "work", "value": "ada@contoso.com", "primary": True}]))["id"])
    with TestClient(create_app(backend.settings, services)) as client:
        yield Console(services, signin, clock, client, tenant, admin)


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The first form of an HTML page: its action and its hidden fields."""
    form = re.search(r"<form\b[^>]*\baction=\"([^\"]*)\"[^>]*>(.*?)</form>", page, re.S)
    assert form is not None, page[:2000]
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", form.group(2)):
        name = re.search(r"\bname=\"([^\"]*)\"", tag)
        value = re.search(r"\bvalue=\"([^\"]*)\"", tag)
        if name and 'type="hidden"' in tag:
            fields[html.unescape(name.group(1))] = html.unescape(value.group(1)) if value else ""
    return html.unescape(form.group(1)), fields


def sign_in(client: Any, tenant: str, user_name: str, password: str, *, next_path: str = "") -> Any:
    """Open the sign-in form as a browser does, then post it (not following the answer's redirect)."""
    page = client.get("/auth/login", params={"tenant": tenant, "next": next_path})
    assert page.status_code == 200, page.text
    _action, fields = form_of(page.text)
    return client.post("/auth/login", data={**fields, "tenant": tenant, "username": user_name,
                                            "password": password}, follow_redirects=False)


def set_cookie_headers(response: Any, name: str) -> list[str]:
    return [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}=")]


# -- the OpenID provider and our server, for the end-to-end tests ----------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]
    log: list[str]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def provider_missing() -> str | None:
    """Why the end-to-end tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "Node is not installed (apt-get install nodejs; scripts/test does)"
    if not PROVIDER_MODULE.exists():
        return (f"the npm package oidc-provider is not in {NPM_DIR} (scripts/test installs it: npm install --prefix "
                f"{NPM_DIR} oidc-provider@9.13.3)")
    return None


def start_provider(clients: list[dict[str, Any]]) -> Provider:
    """oidc-provider on 127.0.0.1, with ``clients`` (client_id, client_secret, redirect_uris)."""
    port = free_port()
    env = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENTS": json.dumps(clients),
           "OIDC_PROVIDER_MODULE": PROVIDER_MODULE.as_uri()}
    process = subprocess.Popen(["node", str(PROVIDER_SCRIPT)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    log: list[str] = []
    issuer = f"http://127.0.0.1:{port}"

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            log.append(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("oidc-provider stopped: " + "".join(log))
        try:
            if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return Provider(issuer, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("oidc-provider did not answer within 30 s: " + "".join(log))


class AppServer:
    """Our application under uvicorn on 127.0.0.1, in a thread: the provider's redirects must reach it."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
