"""A message's identity does not depend on who exported it (issue #10, item 5).

Two members of one chat export it on their own phones: each phone names the people its own way (saved contact
names, the exporter's own profile name), writes its own time precision (Android minutes, iOS seconds) and may
leave the media out. The second export adds only what the first lacked, in every mailbox.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import zipfile
from collections import Counter
from datetime import UTC, datetime

from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.connectors.results import RunReport
from tenantry.protocols.mime import message_id_for
from tests.conftest import user_payload
from tests.connectors.conftest import People
from tests.factories.connectors import make_connector, make_run

# The CSV names every spelling the phones use: Alice's phone calls Bob "Bobby", Bob's calls Alice "Ally", and
# each phone writes its owner under a profile name of its own. Carol is reached by the CSV only.
CSV = ("name,email\nAlice Martin,alice@contoso.com\nAlly,alice@contoso.com\nBobby,bob@contoso.com\n"
       "Bob B.,bob@contoso.com\nCaz,carol@contoso.com\nCarol Smith,carol@contoso.com\n")

ALICE_GROUP = """\
12/01/2024, 09:00 - Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, \
can read or listen to them. Tap to learn more.
12/01/2024, 09:02 - Alice Martin: Welcome everyone!
First book: "Middlemarch".
12/01/2024, 09:03 - Bobby: Thanks!
12/01/2024, 09:03 - Bobby: ok
12/01/2024, 09:03 - Bobby: ok
12/01/2024, 09:04 - Caz: ok
12/01/2024, 09:05 - \u202a+44 7700 900123\u202c: Hi all
12/01/2024, 09:06 - Bobby: <Media omitted>
12/01/2024, 09:07 - Alice Martin: You deleted this message
"""

# Bob's phone: iOS, seconds, its own names; it starts later (he cleared older messages) and goes further.
BOB_GROUP = """\
[12/01/2024, 09:03:10] Bob B.: Thanks!
[12/01/2024, 09:03:40] Bob B.: ok
[12/01/2024, 09:03:55] Bob B.: ok
[12/01/2024, 09:04:30] Carol Smith: ok
[12/01/2024, 09:05:05] \u202a+44 7700 900123\u202c: Hi all
\u200e[12/01/2024, 09:06:30] Bob B.: \u200eimage omitted
\u200e[12/01/2024, 09:07:20] Ally: \u200eThis message was deleted.
[12/01/2024, 09:10:00] Ally: One more thing
[12/01/2024, 09:11:00] Bob B.: ok
"""


def export_connector(backend, tenant: str, people: People, name: str = "Exports",  # noqa: ANN001
                     timezone: str = "Europe/Berlin") -> str:
    cid = make_connector(backend, tenant, people.admin, name=name, source={"timezone": timezone})
    backend.connectors.upload_mapping(tenant, cid, CSV)
    return cid


def messages(backend, tenant: str, user: str) -> list[email.message.EmailMessage]:  # noqa: ANN001
    return [email.message_from_bytes(backend.archive.read(tenant, i.id), policy=email.policy.default)
            for i in backend.archive.items(tenant, user, WHATSAPP_FOLDER)]


def bodies(backend, tenant: str, user: str) -> Counter[tuple[str, str]]:  # noqa: ANN001
    """(kind, first body line) of every message in the user's WhatsApp folder, counted."""
    return Counter((m["X-Tenantry-Kind"], m.get_body(("plain",)).get_content().strip().partition("\n")[0])
                   for m in messages(backend, tenant, user))


def run_with(backend, tenant: str, cid: str, text: str | bytes, filename: str, owner: str,  # noqa: ANN001
             **kw: str) -> RunReport:
    data = text.encode() if isinstance(text, str) else text
    report = make_run(backend, tenant, cid, (filename, data), owner=owner, **kw)
    assert report.status == "succeeded", report.error
    return report


def test_a_second_members_export_of_a_group_adds_only_the_messages_the_first_lacked(
        backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    first = run_with(backend, tenant, cid, ALICE_GROUP, "WhatsApp Chat with Book club.txt", "alice@contoso.com")
    assert first.imported == 9 and first.already_archived == 0
    second = run_with(backend, tenant, cid, BOB_GROUP, "chat.txt", "bob@contoso.com", chat_name="Book club")
    # Bob's nine: seven were archived from Alice's export (the media and the deletion too, written otherwise
    # by his phone); "One more thing" and his second-minute "ok" are new.
    assert second.imported == 9 and not second.skipped_by_reason
    assert second.already_archived == 7
    assert second.copies == 2 * 3 and second.duplicates == 7 * 3  # alice, bob, carol each
    union = Counter({
        ("system", "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, "
                   "can read or listen to them. Tap to learn more."): 1,
        ("chat", "Welcome everyone!"): 1, ("chat", "Thanks!"): 1,
        ("chat", "ok"): 4,   # Bob's two repeats at 09:03, Carol's at 09:04, Bob's at 09:11: each once
        ("chat", "Hi all"): 1, ("attachment", "<Media omitted>"): 1,
        ("deleted", "This message was deleted by its sender."): 1, ("chat", "One more thing"): 1,
    })
    for user in (people.alice, people.bob, people.carol):
        assert bodies(backend, tenant, user) == union
    assert len({m["X-Tenantry-Chat-Id"] for m in messages(backend, tenant, people.carol)}) == 1


def test_the_exporters_of_a_one_to_one_chat_are_its_two_people_whatever_each_phone_calls_them(
        backend, tenant, people: People) -> None:
    # Only the contact names are in the CSV: each phone's own name for its owner is recognised as the owner's,
    # because a chat named after one of its two authors is a 1:1 chat and the other author exported it.
    cid = export_connector(backend, tenant, people)
    backend.connectors.upload_mapping(tenant, cid, "name,email\nBobby,bob@contoso.com\nAlly,alice@contoso.com\n")
    run_with(backend, tenant, cid, "12/01/2024, 10:00 - Alice M.: Lunch?\n12/01/2024, 10:01 - Bobby: Sure\n",
             "WhatsApp Chat with Bobby.txt", "alice@contoso.com")
    second = run_with(backend, tenant, cid, "12/01/2024, 10:00 - Ally: Lunch?\n12/01/2024, 10:01 - Robert: Sure\n"
                      "12/01/2024, 10:02 - Robert: 12:30?\n", "WhatsApp Chat with Ally.txt", "bob@contoso.com")
    assert second.already_archived == 2 and second.copies == 2
    expected = Counter({("chat", "Lunch?"): 1, ("chat", "Sure"): 1, ("chat", "12:30?"): 1})
    assert bodies(backend, tenant, people.alice) == expected
    assert bodies(backend, tenant, people.bob) == expected


def test_one_to_one_chats_of_different_pairs_with_the_same_contact_name_stay_apart(
        backend, tenant, people: People) -> None:
    # Alice's "Mum" and Bob's "Mum" are different people (unmapped names): their chats are not one chat,
    # even when both wrote the same words in the same minute.
    cid = export_connector(backend, tenant, people)
    for owner in ("alice@contoso.com", "bob@contoso.com"):
        run_with(backend, tenant, cid, f"12/01/2024, 10:00 - Mum: Call me\n12/01/2024, 10:01 - {owner[:3]}: ok\n",
                 "WhatsApp Chat with Mum.txt", owner)
    assert bodies(backend, tenant, people.alice) == Counter({("chat", "Call me"): 1, ("chat", "ok"): 1})
    assert bodies(backend, tenant, people.bob) == Counter({("chat", "Call me"): 1, ("chat", "ok"): 1})
    chats = {m["X-Tenantry-Chat-Id"] for u in (people.alice, people.bob) for m in messages(backend, tenant, u)}
    assert len(chats) == 2


def test_the_same_chat_through_connectors_in_each_phones_time_zone_is_stored_once(
        backend, tenant, people: People) -> None:
    berlin = export_connector(backend, tenant, people)
    london = export_connector(backend, tenant, people, "Exports London", "Europe/London")
    run_with(backend, tenant, berlin, ALICE_GROUP, "WhatsApp Chat with Book club.txt", "alice@contoso.com")
    # The same messages as Bob's phone in London wrote them: an hour earlier on the clock.
    london_text = BOB_GROUP.replace("[12/01/2024, 09:", "[12/01/2024, 08:")
    second = run_with(backend, tenant, london, london_text, "WhatsApp Chat - Book club.txt", "bob@contoso.com")
    assert second.already_archived == 7
    assert sum(bodies(backend, tenant, people.bob).values()) == 11


def test_exact_repeats_stay_separate_messages_across_exports(backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    android = "12/01/2024, 09:03 - Bobby: ok\n12/01/2024, 09:03 - Bobby: ok\n12/01/2024, 09:03 - Bobby: ok\n"
    ios = "[12/01/2024, 09:03:01] Bob B.: ok\n[12/01/2024, 09:03:30] Bob B.: ok\n"
    run_with(backend, tenant, cid, ios, "chat.txt", "bob@contoso.com", chat_name="Book club")
    second = run_with(backend, tenant, cid, android, "chat.txt", "alice@contoso.com", chat_name="Book club")
    # iOS wrote two (a third was deleted for Bob only): in Bob's mailbox the Android export's third is the one
    # added; Alice's gets all three.
    assert second.imported == 3 and second.duplicates == 2 and second.copies == 1 + 3
    assert bodies(backend, tenant, people.alice) == Counter({("chat", "ok"): 3})
    assert bodies(backend, tenant, people.bob) == Counter({("chat", "ok"): 3})


def _zip(chat_file: str, text: str, media: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(chat_file, text)
        for name, data in media.items():
            z.writestr(name, data)
    return out.getvalue()


WITH_MEDIA = _zip("WhatsApp Chat with Book club.txt",
                  "12/01/2024, 09:10 - Alice Martin: look\n"
                  "12/01/2024, 09:11 - Bobby: IMG-20240112-WA0003.jpg (file attached)\nThe lake at sunrise\n"
                  "12/01/2024, 09:12 - Bobby: hello\n", {"IMG-20240112-WA0003.jpg": b"JPEG:lake"})
WITHOUT_MEDIA = ("12/01/2024, 09:10 - Ally: look\n"
                 "12/01/2024, 09:11 - Bob B.: <Media omitted>\nThe lake at sunrise\n"
                 "12/01/2024, 09:12 - Bob B.: hello\n")


def _files(backend, tenant: str, user: str) -> list[bytes]:  # noqa: ANN001
    return [p.get_content() for m in messages(backend, tenant, user) for p in m.iter_attachments()]


def test_media_left_out_of_a_second_export_adds_nothing(backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    run_with(backend, tenant, cid, WITH_MEDIA, "WhatsApp Chat with Book club.zip", "alice@contoso.com")
    second = run_with(backend, tenant, cid, WITHOUT_MEDIA, "chat.txt", "bob@contoso.com", chat_name="Book club")
    assert second.already_archived == 3 and second.copies == 0
    assert len(messages(backend, tenant, people.bob)) == 3
    assert _files(backend, tenant, people.bob) == [b"JPEG:lake"]


def test_two_members_exports_handed_in_together_are_merged_within_one_run(backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    backend.connectors.add_export(tenant, cid, WITH_MEDIA, "WhatsApp Chat with Book club.zip", "alice@contoso.com")
    backend.connectors.add_export(tenant, cid, WITHOUT_MEDIA.encode(), "chat.txt", "bob@contoso.com",
                                  chat_name="Book club")
    report = backend.connectors.run(tenant, cid)   # both files in one delivery batch
    assert report.imported == 6 and report.already_archived == 3
    assert report.copies == 6 and report.duplicates == 6
    for user in (people.alice, people.bob):
        assert len(messages(backend, tenant, user)) == 3 and _files(backend, tenant, user) == [b"JPEG:lake"]


def test_the_file_of_a_message_archived_without_it_is_added_and_names_that_message(
        backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    run_with(backend, tenant, cid, WITHOUT_MEDIA, "chat.txt", "bob@contoso.com", chat_name="Book club")
    second = run_with(backend, tenant, cid, WITH_MEDIA, "WhatsApp Chat with Book club.zip", "alice@contoso.com")
    # Nothing lost: the archive never rewrites a stored message, so the version with the file is added beside
    # the one without it, and says which message it completes. "look" and "hello" are not doubled.
    assert second.already_archived == 2 and second.copies == 2  # alice's and bob's
    got = messages(backend, tenant, people.bob)
    assert len(got) == 4 and _files(backend, tenant, people.bob) == [b"JPEG:lake"]
    (with_file,) = [m for m in got if list(m.iter_attachments())]
    (without,) = [m for m in got if m["X-Tenantry-Kind"] == "attachment" and not list(m.iter_attachments())]
    assert with_file["X-Tenantry-Completes"] == without["Message-ID"]


def test_the_same_owners_longer_export_after_the_mapping_grew_adds_only_the_new_messages(
        backend, tenant, people: People) -> None:
    # The run report listed "Dora" as unmapped; the administrator added her; the next export of the chat must not
    # archive her earlier messages a second time under her new identity.
    dora = backend.scim.create(tenant, "User", user_payload(
        "dora@contoso.com", emails=[{"type": "work", "value": "dora@contoso.com", "primary": True}]))["id"]
    cid = export_connector(backend, tenant, people)
    text = "12/01/2024, 09:00 - Dora: hi\n12/01/2024, 09:01 - Bobby: hello\n"
    run_with(backend, tenant, cid, text, "chat.txt", "alice@contoso.com", chat_name="Book club")
    backend.connectors.upload_mapping(tenant, cid, CSV + "Dora,dora@contoso.com\n")
    second = run_with(backend, tenant, cid, text + "12/01/2024, 09:05 - Dora: bye\n", "chat2.txt",
                      "alice@contoso.com", chat_name="Book club")
    # "hi" and "hello" were in Alice's and Bob's mailboxes already; Dora, mapped now, gets all three.
    assert second.duplicates == 4 and second.copies == 2 + 3
    everything = Counter({("chat", "hi"): 1, ("chat", "hello"): 1, ("chat", "bye"): 1})
    for user in (people.alice, people.bob, dora):
        assert bodies(backend, tenant, user) == everything


def _legacy_chat_id(owner: str, chat_name: str) -> str:
    """The chat id an export's messages were stored under before issue #10 item 5: per exporter."""
    return "wa-export-" + hashlib.sha256(f"{owner}\0{chat_name}".encode()).hexdigest()[:24]


def _legacy_message_id(owner: str, chat_name: str, when: datetime, author: str, text: str, n: int) -> str:
    """The Message-ID an export message got before issue #10 item 5: per exporter."""
    chat_id = _legacy_chat_id(owner, chat_name)
    digest = hashlib.sha256(f"{author}\0{text}".encode()).hexdigest()[:16]
    return message_id_for("whatsapp-export", chat_id, f"{when.isoformat()}|{digest}|{n}")


def test_a_file_imported_before_message_identities_changed_adds_nothing_when_handed_in_again(
        backend, tenant, people: People) -> None:
    cid = export_connector(backend, tenant, people)
    backend.connectors.upload_mapping(tenant, cid, "name,email\nNobody,nobody@contoso.com\n")
    text = "12/01/2024, 09:00 - Zed: hi\n12/01/2024, 09:00 - Zed: hi\n12/01/2024, 09:01 - Yan: yo\n"
    # As the earlier code archived it in Alice's mailbox (her export, under her id).
    old = [(datetime(2024, 1, 12, 9, 0), "Zed", "hi", 0), (datetime(2024, 1, 12, 9, 0), "Zed", "hi", 1),
           (datetime(2024, 1, 12, 9, 1), "Yan", "yo", 0)]
    backend.archive.deliver(tenant, [Delivery(
        user_id=people.alice, address="alice@contoso.com", folder=WHATSAPP_FOLDER,
        raw=f"Message-ID: <{n}>\r\nSubject: old\r\n\r\n{body}\r\n".encode(),
        message_id=_legacy_message_id(people.alice, "Book club", when, author, body, n), kind="chat",
        source="whatsapp-export", sent_at=when.replace(tzinfo=UTC),
        chat_id=_legacy_chat_id(people.alice, "Book club")) for when, author, body, n in old])
    again = run_with(backend, tenant, cid, text, "chat.txt", "alice@contoso.com", chat_name="Book club")
    assert again.imported == 3 and again.already_archived == 3 and again.copies == 0
    assert len(messages(backend, tenant, people.alice)) == 3


def test_a_chat_whose_name_is_unknown_is_never_merged_with_another_exporters(
        backend, tenant, people: People) -> None:
    # No chat name from the file, the upload or the export: nothing says two such files are one chat, so each
    # exporter's stays their own (a possible double, never two chats made one).
    cid = export_connector(backend, tenant, people)
    for owner in ("alice@contoso.com", "bob@contoso.com"):
        run_with(backend, tenant, cid, f"12/01/2024, 09:00 - Mum: dinner at 7\n12/01/2024, 09:01 - {owner}: ok\n",
                 "export.txt", owner)
    assert bodies(backend, tenant, people.alice) == Counter({("chat", "dinner at 7"): 1, ("chat", "ok"): 1})
    assert bodies(backend, tenant, people.bob) == Counter({("chat", "dinner at 7"): 1, ("chat", "ok"): 1})
    chats = {m["X-Tenantry-Chat-Id"] for u in (people.alice, people.bob) for m in messages(backend, tenant, u)}
    assert len(chats) == 2


TEAM_A = """\
12/01/2024, 09:00 - Caz: meeting moved to 10
12/01/2024, 09:01 - Bobby: ok
12/01/2024, 09:03 - Alice Martin: room 4?
12/01/2024, 09:05 - Caz: yes
"""
# Another group named "Team" (Bob's, Carol in both): Carol forwarded the same text to both in the same minute.
TEAM_B = """\
12/01/2024, 09:00 - Carol Smith: meeting moved to 10
12/01/2024, 09:02 - Ally: thanks
12/01/2024, 09:04 - Bob B.: who books the room
12/01/2024, 09:06 - Carol Smith: I do
"""


def test_two_groups_with_one_subject_stay_apart_and_a_message_forwarded_to_both_is_kept_in_each(
        backend, tenant, people: People) -> None:
    """Nothing in an export tells two groups of one subject apart, but what they hold does: Team B agrees with
    the stored Team A on one message of seven in the time both cover, so it is another chat, and Carol — in
    both — keeps the forwarded message once per group (issue #10, item 5; chat_slots.py)."""
    cid = export_connector(backend, tenant, people)
    run_with(backend, tenant, cid, TEAM_A, "chat.txt", "alice@contoso.com", chat_name="Team")
    second = run_with(backend, tenant, cid, TEAM_B, "chat.txt", "bob@contoso.com", chat_name="Team")
    assert second.imported == 4 and second.already_archived == 0
    assert bodies(backend, tenant, people.carol)[("chat", "meeting moved to 10")] == 2
    chats = {m["X-Tenantry-Chat-Id"] for m in messages(backend, tenant, people.carol)}
    assert len(chats) == 2
    # A second member's export of Team B joins Team B, not Team A: nothing doubled, nothing lost.
    again = run_with(backend, tenant, cid, TEAM_B.replace("Carol Smith", "Caz").replace("Ally", "Alice Martin")
                     .replace("Bob B.", "Bobby") + "12/01/2024, 09:07 - Bobby: great\n",
                     "chat.txt", "alice@contoso.com", chat_name="Team")
    assert again.imported == 5 and again.already_archived == 4
    assert bodies(backend, tenant, people.carol)[("chat", "meeting moved to 10")] == 2
    assert sum(bodies(backend, tenant, people.bob).values()) == 4 + 4 + 1


def test_a_group_export_with_no_time_in_common_with_a_same_named_group_joins_it(
        backend, tenant, people: People) -> None:
    """Where the stored chat and the export share no stretch of time, nothing can collide: the subject decides."""
    cid = export_connector(backend, tenant, people)
    run_with(backend, tenant, cid, TEAM_A, "chat.txt", "alice@contoso.com", chat_name="Team")
    later = run_with(backend, tenant, cid, TEAM_B.replace("12/01/2024", "20/01/2024"), "chat.txt",
                     "bob@contoso.com", chat_name="Team")
    assert later.imported == 4
    assert len({m["X-Tenantry-Chat-Id"] for m in messages(backend, tenant, people.carol)}) == 1
