"""The tenantry command: a thin layer over the services; errors are a message and a non-zero exit."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tests.interop.conftest import free_port


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(cli: CliRunner, *args: str, ok: bool = True) -> str:
    result = cli.invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code != 0, result.output
    return result.output


def test_tenant_token_and_user_commands(cli: CliRunner) -> None:
    run(cli, "tenant", "create", "acme", "--name", "Acme Corp")
    assert "acme" in run(cli, "tenant", "list")
    out = run(cli, "token", "create", "--tenant", "acme", "--scope", "scim", "--name", "entra")
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("tnt_scim_")
    listed = run(cli, "token", "list", "--tenant", "acme", "--json")
    token_id = re.search(r'"id": "([0-9a-f-]{36})"', listed).group(1)  # type: ignore[union-attr]
    rotated = run(cli, "token", "rotate", token_id).strip().splitlines()[-1]
    assert rotated.startswith("tnt_scim_") and rotated != secret
    run(cli, "directory", "user-add", "lee@acme.example", "--tenant", "acme", "--mobile", "+82 10 5555 0000")
    assert "lee@acme.example" in run(cli, "directory", "users", "--tenant", "acme", "-f", 'userName sw "lee"')


def test_cli_errors_are_messages_with_non_zero_exit(cli: CliRunner) -> None:
    run(cli, "tenant", "create", "acme")
    assert "already exists" in run(cli, "tenant", "create", "acme", ok=False)
    assert "invalidFilter" in run(cli, "directory", "users", "--tenant", "acme", "-f", "userName eq", ok=False)
    run(cli, "directory", "user-add", "a@acme.example", "--tenant", "acme")
    assert "uniqueness" in run(cli, "directory", "user-add", "A@acme.example", "--tenant", "acme", ok=False)
    assert "no active token" in run(cli, "token", "rotate", "nope", ok=False)
    assert "unknown role" in run(cli, "directory", "role-group-add", "x", "-r", "Root", "--tenant", "acme",
                                 ok=False)


def test_serve_on_fresh_data_dir_prints_tokens_once_and_answers_scim(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TENANTRY_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}

    def start() -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tenantry", "serve", "--port", str(port)], env=env,
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig").status_code == 200:
                    return proc, port
            except httpx.HTTPError:
                time.sleep(0.2)
        proc.kill()
        raise AssertionError(proc.communicate()[0])

    proc, port = start()
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig")
        assert r.json()["patch"]["supported"] is True
    finally:
        proc.terminate()
        first = proc.communicate(timeout=10)[0]
    secret = re.search(r"scim token: (\S+)", first)
    assert secret, first
    assert (tmp_path / "data" / "tenantry.db").exists()

    proc, port = start()
    try:
        h = {"Authorization": f"Bearer {secret.group(1)}"}
        assert httpx.get(f"http://127.0.0.1:{port}/scim/v2/Users", headers=h).status_code == 200
    finally:
        proc.terminate()
        second = proc.communicate(timeout=10)[0]
    assert "token" not in second.split("Tenantry on")[0]  # shown once, on the first run only
