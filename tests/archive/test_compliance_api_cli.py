"""Compliance through the admin API and the CLI: holds, verify (exit code), audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.cli import app
from tests.archive.test_compliance import NOW
from tests.conftest import admin_secret


def test_hold_search_and_audit_over_the_api(app_client, backend, tenant) -> None:  # noqa: ANN001
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    base = f"/api/v1/tenants/{tenant}"
    backend.archive.deliver(tenant, [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER,
                                              b"Message-ID: <a@t>\r\nSubject: merger talk\r\n\r\nsecret merger\r\n",
                                              "a@t", "chat", "test", NOW)])
    r = app_client.post(f"{base}/holds", headers=h, json={"name": "h", "user_id": "u1"})
    assert r.status_code == 201
    case = app_client.post(f"{base}/cases", headers=h, json={"name": "M"}).json()
    app_client.post(f"{base}/cases/M/custodians", headers=h, json={"users": ["u1"]})
    r = app_client.post(f"{base}/cases/{case['id']}/search", headers=h, json={"query": "merger"})
    assert r.status_code == 200 and r.json()["count"] == 1
    r = app_client.post(f"{base}/cases/M/search", headers=h, json={"query": "frm:x"})
    assert r.status_code == 400 and "frm" in r.json()["message"]
    item_id = backend.archive.items(tenant, "u1")[0].id
    r = app_client.post(f"{base}/items/delete", headers=h, json={"item_ids": [item_id]})
    assert r.json() == {"moved_to_purges": 1, "deleted": 0}
    actions = [e["action"] for e in app_client.get(f"{base}/audit", headers=h).json()]
    assert {"hold.place", "search", "delete.to_purges", "deliver"} <= set(actions)
    assert app_client.get(f"{base}/verify", headers=h).json()["ok"] is True


@pytest.fixture()
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TENANTRY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    return CliRunner()


def test_archive_verify_exits_1_naming_a_tampered_item(cli: CliRunner) -> None:
    from sqlalchemy import update

    from tenantry.app import build_services
    from tenantry.archive.models import Blob
    from tenantry.core.settings import Settings

    services = build_services(Settings())
    services.directory.create_tenant("default", "D")
    raw = b"Message-ID: <b@t>\r\n\r\noriginal\r\n"
    services.archive.deliver("default", [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER, raw, "b@t", "chat",
                                                  "test", NOW)])
    ok = cli.invoke(app, ["archive", "verify"])
    assert ok.exit_code == 0 and "unchanged" in ok.output
    item = services.archive.items("default", "u1")[0]
    with services.db.session() as session:
        session.execute(update(Blob).where(Blob.sha256 == item.sha256).values(data=b"Message-ID: <b@t>\r\n\r\nforged"))
    services.indexer.flush()
    services.db.dispose()
    bad = cli.invoke(app, ["archive", "verify"])
    assert bad.exit_code == 1 and f"item {item.id}" in bad.output and "bytes were changed" in bad.output


def test_archive_verify_names_a_ledger_value_of_the_wrong_shape_and_exits_1_without_a_traceback(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from tenantry.app import build_services
    from tenantry.core.settings import Settings

    services = build_services(Settings())
    services.directory.create_tenant("default", "D")
    services.archive.deliver("default", [Delivery("u1", "u1@contoso.com", WHATSAPP_FOLDER,
                                                  b"Message-ID: <c@t>\r\n\r\nx\r\n", "c@t", "chat", "test", NOW)])
    with services.db.engine.begin() as conn:
        # Not JSON, and rich markup that would crash the printing if it were read as markup.
        conn.execute(text("UPDATE ledger SET detail = '[/red] not json' WHERE number = 1"))
    services.indexer.flush()
    services.db.dispose()
    monkeypatch.setenv("COLUMNS", "300")  # one problem per line
    bad = cli.invoke(app, ["archive", "verify"])
    assert bad.exit_code == 1, bad.output
    assert isinstance(bad.exception, SystemExit), bad.exception  # typer.Exit(1), not a crash
    assert "ledger entry 1 (deliver): its detail is not JSON: '[/red] not json'" in bad.output, bad.output
