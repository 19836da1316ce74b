"""WhatsApp export files through a connector: every message in the owner's and mapped users' mailboxes,
every line not imported in the report."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.core.errors import Invalid, NotFound
from tests.conftest import SAMPLES, user_payload
from tests.connectors.conftest import People

WA = SAMPLES / "whatsapp"


@pytest.fixture()
def export_connector(backend, tenant, people: People) -> str:
    info = backend.connectors.create(tenant, name="Exports", kind="whatsapp-export", created_by=people.admin,
                                     accept_terms=True, source={"timezone": "Europe/Berlin"})
    backend.connectors.consent(tenant, info["id"], people.admin)
    return str(info["id"])


def upload(backend, tenant: str, cid: str, name: str, owner: str, **kw) -> dict:  # noqa: ANN001, ANN003
    return backend.connectors.add_export(tenant, cid, (WA / name).read_bytes(), name, owner, **kw)


def messages(backend, tenant: str, user: str) -> list[email.message.EmailMessage]:  # noqa: ANN001
    return [email.message_from_bytes(backend.archive.read(tenant, i.id), policy=email.policy.default)
            for i in backend.archive.items(tenant, user, WHATSAPP_FOLDER)]


def test_zip_export_with_media_lands_in_owner_and_mapped_mailboxes(backend, tenant, people, export_connector) -> None:
    backend.connectors.upload_mapping(tenant, export_connector, "name,email\nAlice,alice@contoso.com\n")
    upload(backend, tenant, export_connector, "zip-android-media.zip", "bob@contoso.com")
    report = backend.connectors.run(tenant, export_connector)
    assert report.status == "succeeded", report.error
    c = report.counts
    assert c.imported == 7 and c.skipped == {"unreferenced_media": 1}
    assert c.seen == c.imported + sum(c.skipped.values())
    assert c.by_kind == {"system": 1, "chat": 2, "attachment": 4}
    notes = {(i["reason"], i["location"]) for i in report.issues}
    assert ("media_missing", "zip-android-media.zip line 7") in notes
    bob = messages(backend, tenant, people.bob)      # the owner: every message
    alice = messages(backend, tenant, people.alice)  # mapped by name through the CSV
    assert len(bob) == 7 and len(alice) == 7
    photo = next(m for m in bob if "The lake at sunrise" in m.get_body(("plain",)).get_content())
    (part,) = list(photo.iter_attachments())
    assert part.get_filename() == "IMG-20240112-WA0003.jpg" and part.get_content() == b"JPEG:lake"
    assert photo["X-Tenantry-Location"] == "zip-android-media.zip line 3"
    # Local phone time (Europe/Berlin, winter) → UTC.
    assert photo["Date"].datetime == datetime(2024, 1, 12, 8, 11, tzinfo=UTC)
    missing = next(m for m in bob if "VID-20240112-WA0005.mp4" in m.get_body(("plain",)).get_content())
    assert "not included in the source" in missing.get_body(("plain",)).get_content()


def test_every_line_of_a_text_export_is_imported_or_reported(backend, tenant, people, export_connector) -> None:
    upload(backend, tenant, export_connector, "garbage.txt", "bob@contoso.com")
    report = backend.connectors.run(tenant, export_connector)
    c = report.counts
    assert c.imported == 2 and c.skipped == {"unparseable": 4}
    lines = sorted(i["location"] for i in report.issues if i["reason"] == "unparseable")
    assert lines == [f"garbage.txt line {n}" for n in (1, 3, 4, 5)]
    assert any(i["reason"] == "notice" and "undecodable" in i["detail"] for i in report.issues)


def test_kinds_deleted_system_and_omitted_media_are_kept(backend, tenant, people, export_connector) -> None:
    upload(backend, tenant, export_connector, "android-en-24h-dmy.txt", "bob@contoso.com", chat_name="Book club")
    report = backend.connectors.run(tenant, export_connector)
    assert report.counts.imported == 12 and not report.counts.skipped
    assert report.counts.by_kind == {"system": 5, "chat": 4, "attachment": 1, "deleted": 2}
    kinds = sorted(m["X-Tenantry-Kind"] for m in messages(backend, tenant, people.bob))
    assert kinds.count("deleted") == 2 and kinds.count("system") == 5
    assert {m["X-Tenantry-Chat-Name"] for m in messages(backend, tenant, people.bob)} == {"Book club"}


def test_unsaved_contact_number_maps_through_the_directory_mobile(backend, tenant, people, export_connector) -> None:
    # The export writes the number with bidi marks and spaces; the directory holds it another way.
    guest = backend.scim.create(tenant, "User", user_payload(
        "guest@contoso.com", emails=[{"type": "work", "value": "guest@contoso.com"}],
        phoneNumbers=[{"type": "mobile", "value": "0044-7700-900123"}]))
    upload(backend, tenant, export_connector, "android-en-24h-dmy.txt", "bob@contoso.com")
    backend.connectors.run(tenant, export_connector)
    got = messages(backend, tenant, guest["id"])
    assert len(got) == 12  # a participant of the chat: every message, including the others'


def test_the_same_file_twice_is_one_upload_and_a_longer_export_adds_only_new_messages(
        backend, tenant, people, export_connector, tmp_path: Path) -> None:
    text = (WA / "android-en-24h-dmy.txt").read_text(encoding="utf-8")
    first = backend.connectors.add_export(tenant, export_connector, text.encode(), "chat.txt", "bob@contoso.com",
                                          chat_name="Book club")
    again = backend.connectors.add_export(tenant, export_connector, text.encode(), "chat.txt", "bob@contoso.com",
                                          chat_name="Book club")
    assert first["new"] and not again["new"]
    backend.connectors.run(tenant, export_connector)
    longer = text.rstrip("\n") + "\n14/01/2024, 08:00 - Bob: one more thing\n"
    backend.connectors.add_export(tenant, export_connector, longer.encode(), "chat-later.txt", "bob@contoso.com",
                                  chat_name="Book club")
    report = backend.connectors.run(tenant, export_connector)
    assert report.counts.imported == 13 and report.counts.copies == 1 and report.counts.duplicates == 12
    assert backend.archive.count(tenant, people.bob, WHATSAPP_FOLDER) == 13


def test_upload_needs_an_owner_who_is_a_user_and_a_non_empty_file(backend, tenant, people, export_connector) -> None:
    with pytest.raises(Invalid, match="not a directory user"):
        upload(backend, tenant, export_connector, "garbage.txt", "nobody@contoso.com")
    with pytest.raises(Invalid, match="empty"):
        backend.connectors.add_export(tenant, export_connector, b"", "x.txt", "bob@contoso.com")
    assert backend.connectors.describe(tenant, export_connector)["pending_files"] == 0


def test_export_connector_needs_admin_consent_before_it_runs_or_is_enabled(backend, tenant, people) -> None:
    """Seed 000: the import needs the organisation's admin consent — an export connector as much as a feed."""
    cid = backend.connectors.create(tenant, name="NoConsent", kind="whatsapp-export", created_by=people.admin,
                                    accept_terms=True, source={"timezone": "Europe/Berlin"})["id"]
    upload(backend, tenant, cid, "android-en-24h-dmy.txt", "bob@contoso.com")
    with pytest.raises(Invalid, match="tenantry connector consent"):
        backend.connectors.run(tenant, cid)
    with pytest.raises(Invalid, match="tenantry connector consent"):
        backend.connectors.enable(tenant, cid)
    assert copies(backend, tenant, people.bob) == 0
    assert backend.connectors.runs(tenant, cid) == []
    backend.connectors.consent(tenant, cid, people.admin)
    assert backend.connectors.run(tenant, cid).status == "succeeded"
    assert backend.connectors.enable(tenant, cid)["status"] == "enabled"
    assert copies(backend, tenant, people.bob) == 12


def copies(backend, tenant: str, user: str) -> int:  # noqa: ANN001
    """How many archived items a user has (0 when no mailbox was ever made for them)."""
    try:
        return len(backend.archive.items(tenant, user, WHATSAPP_FOLDER))
    except NotFound:
        return 0


def test_hasattachment_finds_attached_files_and_hasmissingmedia_omitted_media(backend, tenant, people,
                                                                               export_connector) -> None:
    """Issue #10 item 7: ``<Media omitted>`` and a file missing from the export are not attachments; they are
    ``hasmissingmedia:true`` — on the delivery path and when re-indexed from the stored bytes."""
    from tenantry.archive.indexing import fields_from_raw
    from tenantry.protocols.query.parser import parse

    upload(backend, tenant, export_connector, "zip-android-media.zip", "bob@contoso.com")
    upload(backend, tenant, export_connector, "android-en-24h-dmy.txt", "bob@contoso.com")
    assert backend.connectors.run(tenant, export_connector).status == "succeeded"
    backend.indexer.flush()
    stored = {i.id: backend.archive.read(tenant, i.id) for i in backend.archive.items(tenant, people.bob,
                                                                                      WHATSAPP_FOLDER)}
    with_file = {i for i, raw in stored.items()
                 if list(email.message_from_bytes(raw, policy=email.policy.default).iter_attachments())}
    not_included = {i for i, raw in stored.items() if b"not included in the source" in raw}
    # The zip has files and one video it lacks; the text export has a "<Media omitted>".
    assert len(with_file) == 3 and len(not_included) == 2 and not with_file & not_included

    def found(query: str) -> set[int]:
        return backend.index.item_ids(tenant, parse(query), [people.bob])

    assert found("hasattachment:true") == with_file
    assert found("hasmissingmedia:true") == not_included
    assert found("hasattachment:false") == set(stored) - with_file
    for item_id, raw in stored.items():   # the re-indexing path reads the same from the bytes
        fields = fields_from_raw(raw)
        assert (fields.has_attachment, fields.has_missing_media) == (item_id in with_file, item_id in not_included)
