"""WhatsApp export files through a connector: every message in the owner's and mapped users' mailboxes,
every line not imported in the report."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenantry.archive.service import WHATSAPP_FOLDER
from tenantry.connectors.results import ExportAdded
from tenantry.core.errors import Invalid, NotFound
from tests.conftest import SAMPLES, admin_secret, as_admin, user_payload
from tests.connectors.conftest import People
from tests.factories.connectors import make_connector, make_run, upload_mapping

WA = SAMPLES / "whatsapp"


@pytest.fixture()
def export_connector(backend, tenant, people: People) -> str:
    return make_connector(backend, tenant, people.admin, source={"timezone": "Europe/Berlin"})


def upload(backend, tenant: str, cid: str, name: str, owner: str, **kw) -> ExportAdded:  # noqa: ANN001, ANN003
    return backend.connectors.add_export(tenant, cid, (WA / name).read_bytes(), name, owner, **kw)


def messages(backend, tenant: str, user: str) -> list[email.message.EmailMessage]:  # noqa: ANN001
    return [email.message_from_bytes(backend.archive.read(tenant, i.id), policy=email.policy.default)
            for i in backend.archive.items(tenant, user, WHATSAPP_FOLDER)]


def test_zip_export_with_media_lands_in_owner_and_mapped_mailboxes(backend, tenant, people, export_connector) -> None:
    upload_mapping(backend, tenant, export_connector, {"Alice": "alice@contoso.com"})
    report = make_run(backend, tenant, export_connector, ("zip-android-media.zip", WA / "zip-android-media.zip"))
    assert report.status == "succeeded", report.error
    assert report.imported == 7 and report.skipped_by_reason == {"unreferenced_media": 1}
    assert report.seen == report.imported + sum(report.skipped_by_reason.values())
    assert report.imported_by_kind == {"system": 1, "chat": 2, "attachment": 4}
    notes = {(i.reason, i.location) for i in report.issues}
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
    report = make_run(backend, tenant, export_connector, ("garbage.txt", WA / "garbage.txt"))
    assert report.imported == 2 and report.skipped_by_reason == {"unparseable": 4}
    lines = sorted(i.location or "" for i in report.issues if i.reason == "unparseable")
    assert lines == [f"garbage.txt line {n}" for n in (1, 3, 4, 5)]
    assert any(i.reason == "notice" and "undecodable" in i.detail for i in report.issues)


def test_kinds_deleted_system_and_omitted_media_are_kept(backend, tenant, people, export_connector) -> None:
    report = make_run(backend, tenant, export_connector, ("android-en-24h-dmy.txt", WA / "android-en-24h-dmy.txt"),
                      chat_name="Book club")
    assert report.imported == 12 and not report.skipped_by_reason
    assert report.imported_by_kind == {"system": 5, "chat": 4, "attachment": 1, "deleted": 2}
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
    assert first.new and not again.new
    backend.connectors.run(tenant, export_connector)
    longer = text.rstrip("\n") + "\n14/01/2024, 08:00 - Bob: one more thing\n"
    backend.connectors.add_export(tenant, export_connector, longer.encode(), "chat-later.txt", "bob@contoso.com",
                                  chat_name="Book club")
    report = backend.connectors.run(tenant, export_connector)
    assert report.imported == 13 and report.copies == 1 and report.duplicates == 12
    assert backend.archive.count(tenant, people.bob, WHATSAPP_FOLDER) == 13


def test_upload_needs_an_owner_who_is_a_user_and_a_non_empty_file(backend, tenant, people, export_connector) -> None:
    with pytest.raises(Invalid, match="not a directory user"):
        upload(backend, tenant, export_connector, "garbage.txt", "nobody@contoso.com")
    with pytest.raises(Invalid, match="empty"):
        backend.connectors.add_export(tenant, export_connector, b"", "x.txt", "bob@contoso.com")
    assert backend.connectors.describe(tenant, export_connector).pending_files == 0


def test_an_android_notice_under_the_group_name_invents_no_participant(backend, tenant, people,
                                                                       export_connector) -> None:
    # Issue #10, item 4: the group's name before the encryption notice was an outsider in every To:.
    text = ("12/01/2024, 09:00 - Book club: Messages and calls are end-to-end encrypted. No one outside of this "
            "chat, not even WhatsApp, can read or listen to them. Tap to learn more.\n"
            "12/01/2024, 09:01 - Bob: hello\n12/01/2024, 09:02 - +44 7700 900123: hi\n")
    report = make_run(backend, tenant, export_connector, ("chat.txt", text.encode()))
    assert report.imported_by_kind == {"system": 1, "chat": 2}
    got = messages(backend, tenant, people.bob)
    assert len(got) == 3
    for m in got:
        assert "book" not in (m["To"] + m["From"]).casefold(), (m["From"], m["To"])
    notice = next(m for m in got if m["X-Tenantry-Kind"] == "system")
    assert notice["X-Tenantry-Chat-Name"] == "Book club"


def test_every_unmapped_participant_is_reported_with_messages_and_the_rule_that_failed(
        backend, tenant, people, export_connector) -> None:
    # Issue #10, item 2: a participant mapping to nobody was silently absent from the report.
    backend.connectors.upload_mapping(tenant, export_connector, "mobile,email,name\n,alice@contoso.com,Alice\n"
                                      "+44 7700 900999,gone@contoso.com,\n")
    text = ("12/01/2024, 09:00 - Alice: hi\n12/01/2024, 09:01 - Dora: hello\n12/01/2024, 09:02 - Dora: again\n"
            "12/01/2024, 09:03 - +44 7700 900123: me too\n12/01/2024, 09:04 - +44 7700 900999: and me\n"
            "12/01/2024, 09:05 - +49 170 2222222: bob's phone\n")
    backend.connectors.add_export(tenant, export_connector, text.encode(), "chat.txt", "bob@contoso.com")
    ran = backend.connectors.run(tenant, export_connector)
    for report in (ran, backend.connectors.report(tenant, ran.id)):  # as run, and as read back from storage
        unmapped = {u.participant: (u.messages, u.rule) for u in report.unmapped_participants}
        assert unmapped == {
            "Dora": (2, "no CSV row; no e-mail; no mobile number (a saved contact's name)"),
            "+44 7700 900123": (1, "no CSV row; no e-mail; no directory user has the mobile +447700900123"),
            "+44 7700 900999": (1, "the CSV row's gone@contoso.com is no directory user; no e-mail; "
                                   "no directory user has the mobile +447700900999"),
        }
        assert report.unmapped_not_listed == 0


def test_a_connector_without_csv_or_directory_mobiles_says_so_for_an_unmapped_participant(
        backend, tenant, people) -> None:
    cid = make_connector(backend, tenant, people.admin, name="Plain", use_directory_mobiles=False)
    report = make_run(backend, tenant, cid, ("c.txt", b"12/01/2024, 09:00 - Eve: x\n"))
    assert [(u.participant, u.messages, u.rule) for u in report.unmapped_participants] == [
        ("Eve", 1, "no mapping CSV; no e-mail; directory mobiles are off for this connector")]


def test_the_run_report_api_lists_unmapped_participants(app_client, backend, tenant, people,
                                                        export_connector) -> None:
    h = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'a')}"}
    backend.connectors.add_export(tenant, export_connector, b"12/01/2024, 09:00 - Dora\x1b[2J: x\n", "c.txt",
                                  "bob@contoso.com")
    run_id = app_client.post(f"/api/v1/tenants/{tenant}/connectors/{export_connector}/runs", headers=h).json()["id"]
    doc = app_client.get(f"/api/v1/tenants/{tenant}/runs/{run_id}", headers=h).json()
    assert [(u["participant"], u["name"], u["messages"]) for u in doc["unmapped_participants"]] == [
        ("Dora\\x1b[2J", "Dora\\x1b[2J", 1)]
    assert doc["unmapped_participants"][0]["rule"].startswith("no mapping CSV; no e-mail;")


def test_unmapped_participants_past_the_list_limit_are_counted_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantry.connectors import items
    monkeypatch.setattr(items, "MAX_UNMAPPED", 2)
    counts = items.RunCounts()
    for name, sent in [("A", True), ("B", False), ("C", True), ("A", True), ("D", False), ("C", True)]:
        counts.note_unmapped(items.Participant(name=name), sent, lambda: "no CSV row")
    assert {p.name: u.messages for p, u in counts.unmapped.items()} == {"A": 2, "B": 0}
    assert counts.unmapped_not_listed == 2  # C's two messages


def test_export_connector_needs_admin_consent_before_it_runs_or_is_enabled(backend, tenant, people) -> None:
    """Seed 000: the import needs the organisation's admin consent — an export connector as much as a feed."""
    cid = make_connector(backend, tenant, people.admin, name="NoConsent", source={"timezone": "Europe/Berlin"},
                         consent=False)
    upload(backend, tenant, cid, "android-en-24h-dmy.txt", "bob@contoso.com")
    with pytest.raises(Invalid, match="tenantry connector consent"):
        backend.connectors.run(tenant, cid)
    with pytest.raises(Invalid, match="tenantry connector consent"):
        backend.connectors.enable(tenant, cid)
    assert copies(backend, tenant, people.bob) == 0
    assert backend.connectors.runs(tenant, cid) == []
    backend.connectors.consent(tenant, cid, as_admin(backend, tenant, people.admin))
    assert backend.connectors.run(tenant, cid).status == "succeeded"
    assert backend.connectors.enable(tenant, cid).status == "enabled"
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
