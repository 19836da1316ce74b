"""The operator's commands for console administrators (``tenantry admin …``), on both backends."""

from __future__ import annotations

from typer.testing import CliRunner

from tenantry.cli import app as cli_app
from tenantry.cli_kit import Cli
from tests.auth.conftest import ADMIN, PASSWORD, Console, sign_in


def run(console: Console, *args: str, input: str | None = None, ok: bool = True) -> str:
    result = CliRunner().invoke(cli_app, list(args), obj=Cli(console.services), input=input)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_password_set_from_stdin_then_the_user_signs_in(console: Console) -> None:
    out = run(console, "admin", "password", "set", ADMIN, "--tenant", console.tenant, "--password-stdin",
              input=PASSWORD + "\n")
    assert console.admin in out
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303


def test_password_set_prompts_twice_and_names_the_user_by_email_or_id(console: Console) -> None:
    run(console, "admin", "password", "set", "ada@contoso.com", "--tenant", console.tenant,
        input=f"{PASSWORD}\n{PASSWORD}\n")
    run(console, "admin", "password", "set", console.admin, "--tenant", console.tenant,
        input=f"{PASSWORD}\n{PASSWORD}\n")
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303


def test_a_short_password_or_an_unknown_user_is_an_error(console: Console) -> None:
    assert "at least 12" in run(console, "admin", "password", "set", ADMIN, "--tenant", console.tenant,
                                "--password-stdin", input="short\n", ok=False)
    assert "no user" in run(console, "admin", "password", "set", "nobody@contoso.com", "--tenant", console.tenant,
                            "--password-stdin", input=PASSWORD + "\n", ok=False)


def test_unlock_lets_a_locked_user_sign_in(console: Console) -> None:
    console.signin.set_password(console.tenant, ADMIN, PASSWORD)
    for _ in range(5):
        sign_in(console.client, console.tenant, ADMIN, "wrong password, again")
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 401
    run(console, "admin", "unlock", ADMIN, "--tenant", console.tenant)
    assert sign_in(console.client, console.tenant, ADMIN, PASSWORD).status_code == 303


def test_sessions_are_listed_and_revoked_by_the_start_of_their_id(console: Console) -> None:
    console.signin.set_password(console.tenant, ADMIN, PASSWORD)
    sign_in(console.client, console.tenant, ADMIN, PASSWORD)
    session_id = console.client.get("/auth/session").json()["session_id"]
    listed = run(console, "admin", "sessions", "--tenant", console.tenant, "--json")
    assert session_id in listed and '"method": "password"' in listed
    assert "no single session" in run(console, "admin", "sessions", "--revoke", "abc", ok=False)
    run(console, "admin", "sessions", "--revoke", session_id[:12])
    assert console.client.get("/auth/session").status_code == 401
    assert session_id not in run(console, "admin", "sessions", "--tenant", console.tenant, "--json")
    assert session_id in run(console, "admin", "sessions", "--tenant", console.tenant, "--ended", "--json")
