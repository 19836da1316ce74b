"""What every command shares (cli_kit): services built once and only when asked for, errors as messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tenantry.app import Services
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.cli import app
from tenantry.cli_kit import Cli, sub_app
from tenantry.core.errors import NotFound
from tests.archive.test_compliance import NOW


@pytest.fixture()
def no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(data))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    return data


@pytest.mark.parametrize("args", [["--help"], ["directory", "--help"], ["provisioning", "run", "--help"],
                                  ["case", "verify-export", "missing-folder"]])
def test_help_and_commands_without_a_database_create_and_migrate_nothing(no_database: Path, args: list[str]) -> None:
    CliRunner().invoke(app, args)
    assert not no_database.exists()


def test_a_command_runs_over_the_services_handed_in(backend: Services, tenant: str) -> None:
    cli = Cli(backend)
    result = CliRunner().invoke(app, ["tenant", "list", "--json"], obj=cli)
    assert result.exit_code == 0 and tenant in result.output
    assert cli.services is backend


def test_an_unknown_tenant_is_a_message_not_a_constraint_error(backend: Services) -> None:
    result = CliRunner().invoke(app, ["directory", "domains", "--tenant", "nowhere"], obj=Cli(backend))
    assert result.exit_code == 1
    assert "no tenant 'nowhere'" in result.output and "tenantry tenant create nowhere" in result.output


def test_a_domain_error_from_a_part_run_on_its_own_is_a_message_and_exit_1() -> None:
    part = sub_app("A part.")

    @part.command("find")
    def find(name: str) -> None:
        raise NotFound(f"no thing {name!r} [here]")

    @part.command("other")
    def other() -> None:  # a second command keeps `find` a sub-command
        raise typer.Exit(0)

    result = CliRunner().invoke(part, ["find", "x"])
    assert result.exit_code == 1
    assert "error: no thing 'x' [here]" in result.output   # brackets are the message's, not rich markup


def test_reindex_full_indexes_every_item_again(backend: Services, tenant: str) -> None:
    raws = [f"Message-ID: <r{i}@t>\r\nSubject: reindex {i}\r\n\r\nbody\r\n".encode() for i in range(3)]
    backend.archive.deliver(tenant, [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, raw, f"r{i}@t", "chat",
                                              "test", NOW) for i, raw in enumerate(raws)])
    backend.indexer.flush()
    result = CliRunner().invoke(app, ["archive", "reindex", "--full", "--tenant", tenant], obj=Cli(backend))
    assert result.exit_code == 0, result.output
    assert "3 items indexed" in result.output
    result = CliRunner().invoke(app, ["archive", "reindex", "--tenant", tenant], obj=Cli(backend))
    assert "0 items indexed" in result.output
