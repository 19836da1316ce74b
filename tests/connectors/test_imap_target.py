"""The IMAP delivery target against a real Dovecot on 127.0.0.1: APPEND into "WhatsApp Archiver"."""

from __future__ import annotations

import email
import email.policy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.archive.service import WHATSAPP_FOLDER
from tests.connectors.conftest import NOW, FeedServer, People, feed_item
from tests.factories.connectors import make_connector, make_feed_connector
from tests.interop import dovecot
from tests.interop.conftest import free_port

pytestmark = pytest.mark.interop


@pytest.fixture()
def imap() -> Iterator[dovecot.Dovecot]:
    why = dovecot.available()
    if why:
        pytest.skip(why)
    # Dovecot's own users must reach the files: pytest's tmp_path is private to root.
    root = Path(tempfile.mkdtemp(prefix="tenantry-dovecot-"))
    root.chmod(0o755)
    server, process = dovecot.start(root, free_port(), {
        "alice@contoso.com": "alice-pw", "bob@contoso.com": "bob-pw", "carol@contoso.com": "carol-pw"})
    try:
        yield server
    finally:
        dovecot.stop(process)
        shutil.rmtree(root, ignore_errors=True)


def imap_connector(backend, tenant: str, people: People, feed: FeedServer, server: dovecot.Dovecot,  # noqa: ANN001
                   **target: object) -> str:
    config = {"kind": "imap", "host": "127.0.0.1", "port": server.port, "security": "none", **target}
    secret = {"password": dovecot.MASTER_PASSWORD} if config.get("auth", "master") == "master" else {
        "passwords": {"alice@contoso.com": "alice-pw", "bob@contoso.com": "bob-pw"}}
    config.setdefault("master_user", dovecot.MASTER_USER)
    return make_feed_connector(backend, tenant, people.admin, feed, name="TM to IMAP", target=config,
                               target_secret=secret)


def test_items_are_appended_to_each_participants_whatsapp_archiver_folder(backend, tenant, people,
                                                                          imap) -> None:
    items = [feed_item(1), feed_item(2, "call", call={"direction": "incoming", "duration": 61, "missed": False,
                                                      "video": True}, text="")]
    with FeedServer(items, {}) as feed:
        cid = imap_connector(backend, tenant, people, feed, imap)
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded", report.error
    assert report.imported == 2 and report.copies == 4
    for user in ("alice@contoso.com", "bob@contoso.com"):
        messages = [email.message_from_bytes(m, policy=email.policy.default)
                    for m in imap.messages(user, WHATSAPP_FOLDER)]
        assert sorted(m["X-Tenantry-Kind"] for m in messages) == ["call", "chat"]
    # Nothing went to the built-in store: the target is the IMAP server.
    assert backend.archive.mailboxes(tenant) == []


def test_rerun_over_imap_appends_nothing_twice(backend, tenant, people, imap) -> None:
    from sqlalchemy import update

    from tenantry.connectors.models import Connector

    with FeedServer([feed_item(1), feed_item(2)], {}) as feed:
        cid = imap_connector(backend, tenant, people, feed, imap)
        backend.connectors.run(tenant, cid, now=NOW)
        with backend.db.session() as session:
            session.execute(update(Connector).where(Connector.id == cid).values(checkpoint=None))
        again = backend.connectors.run(tenant, cid, now=NOW)
    assert again.copies == 0 and again.duplicates == 4
    assert len(imap.messages("alice@contoso.com", WHATSAPP_FOLDER)) == 2


def test_per_user_credentials_deliver_too(backend, tenant, people, imap) -> None:
    with FeedServer([feed_item(1)], {}) as feed:
        cid = imap_connector(backend, tenant, people, feed, imap, auth="per-user")
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "succeeded", report.error
    assert len(imap.messages("bob@contoso.com", WHATSAPP_FOLDER)) == 1


def test_a_refused_imap_login_fails_the_run_with_the_reason(backend, tenant, people, imap) -> None:
    with FeedServer([feed_item(1)], {}) as feed:
        cid = imap_connector(backend, tenant, people, feed, imap, master_user="nobody")
        report = backend.connectors.run(tenant, cid, now=NOW)
    assert report.status == "failed" and "IMAP login" in (report.error or "")
    assert backend.connectors.describe(tenant, cid).checkpoint is None


def test_a_second_members_export_without_the_media_appends_nothing_over_imap(backend, tenant, people, imap) -> None:
    """Issue #10 item 5 over IMAP: the version without the file is found by its alias (one SEARCH with OR)."""
    from tests.connectors.test_message_identity import CSV, WITH_MEDIA, WITHOUT_MEDIA

    cid = make_connector(
        backend, tenant, people.admin, name="Exports to IMAP", source={"timezone": "Europe/Berlin"},
        target={"kind": "imap", "host": "127.0.0.1", "port": imap.port, "security": "none",
                "master_user": dovecot.MASTER_USER}, target_secret={"password": dovecot.MASTER_PASSWORD})
    backend.connectors.upload_mapping(tenant, cid, CSV)
    backend.connectors.add_export(tenant, cid, WITH_MEDIA, "WhatsApp Chat with Book club.zip", "alice@contoso.com")
    assert backend.connectors.run(tenant, cid).copies == 6
    backend.connectors.add_export(tenant, cid, WITHOUT_MEDIA.encode(), "chat.txt", "bob@contoso.com",
                                  chat_name="Book club")
    second = backend.connectors.run(tenant, cid)
    assert second.status == "succeeded", second.error
    assert second.already_archived == 3 and second.copies == 0
    for user in ("alice@contoso.com", "bob@contoso.com"):
        got = [email.message_from_bytes(m, policy=email.policy.default) for m in imap.messages(user, WHATSAPP_FOLDER)]
        assert len(got) == 3
        assert [p.get_content() for m in got for p in m.iter_attachments()] == [b"JPEG:lake"]
