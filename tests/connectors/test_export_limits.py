"""Export uploads and runs under the safety limits (issue #9, defect 4), on both backends: what is refused
is refused on upload with a clear 4xx and nothing kept, or named in the run report with its reason."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tenantry.connectors.models import ExportFile
from tenantry.core.errors import Invalid, PayloadTooLarge
from tests.conftest import admin_secret
from tests.connectors.conftest import People
from tests.factories.connectors import make_connector, make_run
from tests.zipbombs import deflate_zip

MIB = 1024 * 1024
CHAT = b"12/01/2024, 09:15 - Bob: IMG-20240112-WA0001.jpg (file attached)\n12/01/2024, 09:16 - Bob: fine\n"


@pytest.fixture()
def export_connector(backend, tenant, people: People) -> str:  # noqa: ANN001
    return make_connector(backend, tenant, people.admin)


def _stored(backend, connector_id: str) -> int:  # noqa: ANN001
    with backend.db.session() as session:
        return len(session.query(ExportFile).filter(ExportFile.connector_id == connector_id).all())


def _files(folder: Path) -> set[Path]:
    return set(folder.iterdir()) if folder.exists() else set()


def test_zip_bomb_is_refused_on_upload_and_nothing_is_kept(backend, tenant, people, export_connector) -> None:  # noqa: ANN001
    before = _files(backend.connectors.upload_dir)
    bomb = deflate_zip([("_chat.txt", b"12/01/2024, 09:15 - Bob: again\n" * 30_000, 300)])
    with pytest.raises(Invalid, match="ratio"):
        backend.connectors.add_export(tenant, export_connector, bomb, "bomb.zip", "bob@contoso.com")
    assert _stored(backend, export_connector) == 0
    assert _files(backend.connectors.upload_dir) == before


def test_zip_with_too_many_members_is_refused_on_upload(backend, tenant, people, export_connector,  # noqa: ANN001
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    monkeypatch.setattr(backend.connectors, "export_limits", replace(backend.connectors.export_limits,
                                                                     max_members=5))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("_chat.txt", CHAT)
        for i in range(10):
            zf.writestr(f"x{i}.jpg", b"x")
    with pytest.raises(Invalid, match="more than 5 members"):
        backend.connectors.add_export(tenant, export_connector, buf.getvalue(), "many.zip", "bob@contoso.com")
    assert _stored(backend, export_connector) == 0


def test_upload_over_the_size_limit_is_refused_and_nothing_is_kept(backend, tenant, people,  # noqa: ANN001
                                                                   export_connector,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend.connectors, "upload_max_bytes", 1000)
    before = _files(backend.connectors.upload_dir)
    with pytest.raises(PayloadTooLarge):
        backend.connectors.add_export(tenant, export_connector, io.BytesIO(CHAT * 20), "chat.txt", "bob@contoso.com")
    assert _stored(backend, export_connector) == 0
    assert _files(backend.connectors.upload_dir) == before


def test_media_over_the_item_limit_is_skipped_unread_and_named_in_the_report(backend, tenant, people,  # noqa: ANN001
                                                                            export_connector) -> None:
    data = deflate_zip([("_chat.txt", CHAT, 1), ("IMG-20240112-WA0001.jpg", bytes(MIB), 11)])
    report = make_run(backend, tenant, export_connector, ("media.zip", data))
    assert report.status == "succeeded", report.error
    assert report.imported == 1 and report.skipped_by_reason == {"too_large": 1}
    issues = {(i.reason, i.location): i.detail for i in report.issues}
    assert ("too_large", "media.zip line 1") in issues
    assert f"IMG-20240112-WA0001.jpg: {11 * MIB} bytes" in issues[("notice", "media.zip line 1")]


def test_media_compressed_like_a_bomb_is_refused_with_its_reason(backend, tenant, people,  # noqa: ANN001
                                                                export_connector) -> None:
    data = deflate_zip([("_chat.txt", CHAT, 1), ("IMG-20240112-WA0001.jpg", bytes(MIB), 9)])
    report = make_run(backend, tenant, export_connector, ("media.zip", data))
    assert report.skipped_by_reason == {"refused": 1}
    [refused] = [i for i in report.issues if i.reason == "refused"]
    assert "ratio" in refused.detail and refused.location == "media.zip line 1"


def test_api_upload_over_the_limit_answers_413_with_an_error_body(app_client: TestClient, backend, tenant,  # noqa: ANN001
                                                                  people, export_connector,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend.connectors, "upload_max_bytes", 1000)
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    before = _files(backend.connectors.upload_dir)
    url = f"/api/v1/tenants/{tenant}/connectors/{export_connector}/exports"
    params = {"owner": "bob@contoso.com", "filename": "chat.txt"}
    r = app_client.post(url, headers=h, params=params, content=CHAT * 20)
    assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
    r = app_client.post(url, headers=h, params=params, content=iter([CHAT] * 20))  # chunked: no length
    assert r.status_code == 413 and "TENANTRY_UPLOAD_MAX_BYTES" in r.json()["message"], r.text
    assert _stored(backend, export_connector) == 0 and _files(backend.connectors.upload_dir) == before
    r = app_client.post(url, headers=h, params=params, content=CHAT)
    assert r.status_code == 201, r.text


def test_api_mapping_csv_over_the_body_limit_answers_413(app_client: TestClient, backend, tenant,  # noqa: ANN001
                                                         people, export_connector) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    body = b"name,email\n" + b"Alice,alice@contoso.com\n" * (backend.settings.admin_body_max_bytes // 24 + 1)
    r = app_client.put(f"/api/v1/tenants/{tenant}/connectors/{export_connector}/mapping", headers=h, content=body)
    assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
    assert backend.connectors.describe(tenant, export_connector).mapping_entries == 0


def test_admin_json_body_over_the_limit_answers_413_and_creates_nothing(backend, tenant, people) -> None:  # noqa: ANN001
    from tenantry.app import create_app

    settings = backend.settings.model_copy(update={"admin_body_max_bytes": 2000})
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}",
         "Content-Type": "application/json"}
    body = b'{"name": "Big", "kind": "whatsapp-export", "accept_terms": true, ' \
           b'"source": {"pad": "%s"}}' % (b"x" * 5000)
    with TestClient(create_app(settings, backend)) as client:
        url = f"/api/v1/tenants/{tenant}/connectors"
        r = client.post(url, headers=h, content=body)
        assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
        r = client.post(url, headers=h, content=iter([body[:1000], body[1000:]]))  # chunked: no length
        assert r.status_code == 413 and "TENANTRY_ADMIN_BODY_MAX_BYTES" in r.json()["message"], r.text
        assert backend.connectors.list_connectors(tenant) == []


# --- not an export at all (issue #10, item 6) ------------------------------------------------------------

NOT_AN_EXPORT = "not a WhatsApp export (no line has a date and an author)"
PROSE = (b"It was a bright cold day in April, and the clocks were striking thirteen.\n"
         b"Meeting notes: 12/05/2020 - nothing decided.\n") * 50


def _random_bytes(n: int) -> bytes:
    import random
    return random.Random(10).randbytes(n)


@pytest.mark.parametrize(("data", "name"), [(_random_bytes(20_000), "random.txt"), (PROSE, "notes.txt"),
                                            (deflate_zip([("_chat.txt", PROSE, 1)]), "notes.zip")])
def test_a_file_in_which_no_line_parses_is_refused_on_upload_and_nothing_is_kept(  # noqa: ANN001
        backend, tenant, people, export_connector, data: bytes, name: str) -> None:
    before = _files(backend.connectors.upload_dir)
    with pytest.raises(Invalid, match=re.escape(NOT_AN_EXPORT)):
        backend.connectors.add_export(tenant, export_connector, data, name, "bob@contoso.com")
    assert _stored(backend, export_connector) == 0
    assert _files(backend.connectors.upload_dir) == before


def test_api_upload_of_a_file_that_is_no_export_answers_400_with_the_reason(app_client: TestClient, backend,  # noqa: ANN001
                                                                          tenant, people, export_connector) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    url = f"/api/v1/tenants/{tenant}/connectors/{export_connector}/exports"
    r = app_client.post(url, headers=h, params={"owner": "bob@contoso.com", "filename": "x\x1b[2J.txt"},
                        content=_random_bytes(20_000))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid" and NOT_AN_EXPORT in r.json()["message"]
    assert "\x1b" not in r.json()["message"] and "x\\x1b[2J.txt" in r.json()["message"]
    assert _stored(backend, export_connector) == 0


def test_control_bytes_of_a_source_are_escaped_in_the_run_report(backend, tenant, people,  # noqa: ANN001
                                                               export_connector) -> None:
    data = b"\x1b]0;owned\x07\x1b[2J junk \x9b\xe2\x80\xae\n12/01/2024, 09:15 - Bob: fine\n"
    report = make_run(backend, tenant, export_connector, ("chat\x1b[31m.txt", data))
    [line] = [i for i in report.issues if i.reason == "unparseable"]
    assert line.detail.endswith("\\x1b]0;owned\\x07\\x1b[2J junk \ufffd\\u202e")
    assert line.location == "chat\\x1b[31m.txt line 1"
    for issue in report.issues:
        for value in (issue.detail, issue.location or "", issue.source_id or ""):
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E for c in value)
