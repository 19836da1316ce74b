"""Chat item → RFC 5322 message: round-trips through the stdlib parser, wire-format limits, determinism.

The interop tests at the end APPEND the same messages to a private Dovecot and read them back decoded by
Dovecot's own MIME and RFC 2047 code (FETCH BINARY, SEARCH CHARSET UTF-8); they skip where it cannot run.
"""

from __future__ import annotations

import imaplib
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import policy, utils
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.protocols.mime import Address, ChatMail, Part, message_id_for, render

PARSER = BytesParser(policy=policy.default)
WHEN = datetime(2024, 1, 12, 9, 17, 3, tzinfo=UTC)
KIM = Address("Kim Lee", "kim@contoso.com")
ZOE = Address('Zoë, "the boss"', "zoe@contoso.com")
MINJI = Address("김민지", "+4917012345@whatsapp.example")
ENCODED_WORD = re.compile(r"=\?utf-8\?[bq]\?[^?]*\?=")
HYPOTHESIS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def chat(**changes: Any) -> ChatMail:
    fields: dict[str, Any] = {
        "message_id": message_id_for("wa", "chat-1", "7"),
        "date": WHEN,
        "sender": MINJI,
        "to": (KIM, ZOE),
        "subject": "WhatsApp: Family",
        "body": "See you at 7",
        "thread_id": message_id_for("wa", "chat-1"),
        "headers": (("X-Tenantry-Kind", "chat"), ("X-Tenantry-Source", "whatsapp-export")),
    }
    fields.update(changes)
    return ChatMail(**fields)


def parse(mail: ChatMail) -> EmailMessage:
    message = PARSER.parsebytes(render(mail))
    assert isinstance(message, EmailMessage)
    return message


def names_and_addresses(message: EmailMessage, field: str) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in message[field].addresses]


def text_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def raw_field(raw: bytes, field: str) -> str:
    """The unfolded value of ``field`` as it stands on the wire."""
    match = re.search(rb"^" + field.encode() + rb": ?(.*?)\r\n(?![ \t])", header_block(raw), re.M | re.S)
    assert match is not None
    return match.group(1).replace(b"\r\n", b"").decode("ascii")


def rfc2047_decode(text: str) -> str:
    """Encoded-words decoded as RFC 2047 §6.2 says, white space between adjacent words ignored."""
    return str(policy.default.header_factory("X-Decode", text))


def phrase_of(name: str | None) -> str:
    """The display name as a phrase: a space, tab, CR or LF and any white space after it are one space."""
    return re.sub(r"[ \t\r\n]\s*", " ", name or "")


# --- round trips ----------------------------------------------------------------------------------------


def test_typical_chat_message_round_trips_every_field() -> None:
    mail = chat(cc=(Address(None, "audit@contoso.com"),))
    message = parse(mail)
    assert names_and_addresses(message, "From") == [("김민지", "+4917012345@whatsapp.example")]
    assert names_and_addresses(message, "To") == [
        ("Kim Lee", "kim@contoso.com"),
        ('Zoë, "the boss"', "zoe@contoso.com"),
    ]
    assert names_and_addresses(message, "Cc") == [("", "audit@contoso.com")]
    assert message["Subject"] == "WhatsApp: Family"
    assert message["Date"].datetime == WHEN
    assert message["Message-ID"] == f"<{mail.message_id}>"
    assert message["In-Reply-To"] == message["References"] == f"<{mail.thread_id}>"
    assert message["X-Tenantry-Kind"] == "chat"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert text_body(message) == "See you at 7"
    assert message.defects == []


@pytest.mark.parametrize(
    "name",
    ["김민지", 'Zoë, "the boss"', "O'Brien, Pat", "Kim Lee", "محمد علي", "\u200fשלום\u200f", "Sofia 🌸",
     "a\\b", "=?utf-8?q?not_a_word?=", " leading", "trailing ", "<kim@contoso.com>", "(comment)", "x", ".",
     "Dr. med. Jürgen Groß-Schmidt", "\u00a0nbsp", "\x00nul", "ȷ́"],
)
def test_display_name_round_trips_exactly(name: str) -> None:
    message = parse(chat(sender=Address(name, "kim@contoso.com")))
    assert names_and_addresses(message, "From") == [(name, "kim@contoso.com")]


@pytest.mark.parametrize("name", [None, ""])
def test_missing_display_name_renders_a_bare_address(name: str | None) -> None:
    raw = render(chat(sender=Address(name, "kim@contoso.com")))
    assert b"\r\nFrom: kim@contoso.com\r\n" in raw
    assert names_and_addresses(PARSER.parsebytes(raw), "From") == [("", "kim@contoso.com")]


def test_display_name_whitespace_runs_and_line_breaks_become_one_space() -> None:
    message = parse(chat(sender=Address("Kim \t Lee\r\nSales\nZoë  Ü \u3000x\u3000y", "kim@contoso.com")))
    assert names_and_addresses(message, "From") == [("Kim Lee Sales Zoë Ü x\u3000y", "kim@contoso.com")]


def test_long_display_name_is_split_into_encoded_words_decoding_per_rfc2047() -> None:
    name = "김민지 (Marketing, Seoul office) — 휴가 중 🌴 " * 3
    raw = render(chat(sender=Address(name, "kim@contoso.com")))
    phrase = raw_field(raw, "From").removesuffix(" <kim@contoso.com>")
    words = phrase.split(" ")
    assert len(words) > 1
    assert all(ENCODED_WORD.fullmatch(w) and len(w) <= 75 for w in words)
    assert rfc2047_decode(phrase) == name
    assert PARSER.parsebytes(raw)["From"].addresses[0].addr_spec == "kim@contoso.com"


@pytest.mark.parametrize(
    "subject",
    ["Chat mit Zoë", "가족 단톡방", "Family 👪 — trip ✈️", "a  b\tc", "  leading and trailing  ", "=?utf-8?q?x?=",
     "line\nbreak", "cr\rlf\r\n", "\x00\x07\x1b", " \x0c", "a \u3000b", "x" * 2000, "word " * 300, "ü" * 500,
     "\u200eimage omitted", "10:32\u202fPM", "Re: [ticket #42] (urgent)"],
)
def test_subject_round_trips_exactly(subject: str) -> None:
    assert parse(chat(subject=subject))["Subject"] == subject


def test_empty_subject_is_omitted() -> None:
    assert parse(chat(subject=""))["Subject"] is None


@pytest.mark.parametrize(
    "value",
    ["chat", "Familie Groß 👪", "가족", "x" * 1500, "a " * 500, "", " spaced ", "tab\there", "two\nlines"],
)
def test_extra_header_values_round_trip_including_non_ascii(value: str) -> None:
    message = parse(chat(headers=(("X-Tenantry-Chat", value), ("X-Tenantry-Kind", "chat"))))
    assert message["X-Tenantry-Chat"] == value
    assert message["X-Tenantry-Kind"] == "chat"


def test_repeated_extra_headers_are_all_kept_in_order() -> None:
    headers = (("X-Tenantry-Participant", "Kim"), ("X-Tenantry-Participant", "김민지"))
    assert parse(chat(headers=headers)).get_all("X-Tenantry-Participant") == ["Kim", "김민지"]


def test_many_recipients_are_folded_and_all_round_trip() -> None:
    people = tuple(Address(f"Teilnehmer Nr. {i} Groß" if i % 2 else f"Person {i}", f"+49170{i:07d}@whatsapp.example")
                   for i in range(250))
    raw = render(chat(to=people, cc=people[:40]))
    message = PARSER.parsebytes(raw)
    assert names_and_addresses(message, "To") == [(a.name, a.addr) for a in people]
    assert len(names_and_addresses(message, "Cc")) == 40
    assert max(len(line) for line in header_block(raw).split(b"\r\n")) <= 76


BODIES = [
    "",
    "ok",
    "See you at 7\n",
    "two\nlines",
    "crlf\r\nlines\r\n",
    "bare\rcr",
    "mixed\r\n\n\r\r\n\rend",
    "\n\n\n",
    "\r\n",
    "x" * 5000,
    ("y" * 999 + "\n") * 3,
    ".",
    "first\n.\nlast",
    ".\r\n",
    "From here on\nFrom: a",
    "\nFrom ",
    "nul\x00byte",
    "trailing spaces   \ntabs\t\t\r\n",
    "= =0A =3D ==",
    "emoji 😂😂 🙏🏽 👨‍👩‍👧",
    "\u200f\u05e9\u05dc\u05d5\u05dd \u202bRTL\u202c",
    "\u200e<attached: 00000012-PHOTO-2024-01-12-09-17-00.jpg>",
    "This message was deleted",
    "Missed voice call",
    "Hallo Jürgen,\nwie geht's? Grüße\n",
    "我十分钟后到，抱歉！" * 30,
    "--=_boundary lookalike\n--\n",
    "\x0b\x0c\x1c\x85\u2028\u2029",
    " leading space",
]


@pytest.mark.parametrize("body", BODIES)
def test_body_round_trips_exactly(body: str) -> None:
    assert text_body(parse(chat(body=body))) == body


@pytest.mark.parametrize("body", BODIES)
def test_body_round_trips_exactly_next_to_attachments(body: str) -> None:
    message = parse(chat(body=body, parts=(Part("a.bin", "application/octet-stream", b"\x00\xff"),)))
    assert text_body(message) == body


@pytest.mark.parametrize(
    ("body", "encoding"),
    [("", "7bit"), ("crlf\r\nlines\r\n", "7bit"), ("ok", "quoted-printable"),
     ("Hallo Jürgen,\nwie geht es dir? Viele Grüße", "quoted-printable"),
     ("two\nlines", "quoted-printable"), ("x" * 5000, "quoted-printable"), ("From here\r\n", "quoted-printable"),
     (".\r\n", "quoted-printable"), ("가족 단톡방입니다", "base64"), ("😂😂😂", "base64"),
     ("Буду через десять минут", "base64")],
)
def test_body_encoding_is_7bit_only_when_safe_else_the_shorter_of_qp_and_base64(body: str, encoding: str) -> None:
    assert parse(chat(body=body))["Content-Transfer-Encoding"] == encoding


@pytest.mark.parametrize("body", BODIES)
def test_encoded_body_lines_are_short_and_never_from_or_a_lone_dot(body: str) -> None:
    raw = render(chat(body=body))
    lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert not any(line.startswith(b"From ") or line == b"." for line in lines)
    assert not any(line.endswith((b" ", b"\t")) for line in lines)


@pytest.mark.parametrize("body", BODIES)
def test_message_is_7bit_ascii_with_crlf_line_ends_only(body: str) -> None:
    raw = render(chat(body=body, subject="Zoë 👪", parts=(Part("中文.jpg", "image/jpeg", bytes(range(256))),)))
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert raw.endswith(b"\r\n")


# --- attachments ----------------------------------------------------------------------------------------


def test_attachments_round_trip_with_non_ascii_filenames_and_binary_data() -> None:
    parts = (
        Part("IMG-20240112-WA0003.jpg", "image/jpeg", bytes(range(256)) * 40),
        Part("Grüße aus München.pdf", "application/pdf", b"%PDF-1.7\n\x00\xff" * 1000),
        Part("家族の写真 🎉.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        Part("", "application/octet-stream", b""),
        Part('quote " and back\\slash.txt', "text/plain; charset=utf-8", "Grüße".encode()),
        Part("a" * 200 + "é.txt", "text/plain", b"hello"),
    )
    message = parse(chat(body="Photos 👇", parts=parts))
    assert message.get_content_type() == "multipart/mixed"
    assert text_body(message) == "Photos 👇"
    attachments = list(message.iter_attachments())
    assert len(attachments) == len(parts)
    for got, sent in zip(attachments, parts, strict=True):
        assert got.get_filename() == sent.filename
        assert got.get_content_disposition() == "attachment"
        assert got.get_content_type() == sent.content_type.split(";")[0]
        assert got["Content-Transfer-Encoding"] == "base64"
        assert got.get_payload(decode=True) == sent.data
    assert attachments[4].get_content_charset() == "utf-8"


def test_long_non_ascii_filename_uses_rfc2231_continuations_within_76_chars() -> None:
    name = "Protokoll der Elternversammlung — Kita Sonnenblume — März 2024 (endgültig).pdf"
    raw = render(chat(parts=(Part(name, "application/pdf", b"%PDF"),)))
    assert b" filename*0*=utf-8''" in raw and b" filename*1*=" in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 76


def test_boundary_is_derived_from_the_content_and_absent_from_it() -> None:
    first = render(chat(parts=(Part("a.bin", "application/octet-stream", b"one"),)))
    second = render(chat(parts=(Part("a.bin", "application/octet-stream", b"two"),)))
    boundaries = [re.search(rb'boundary="([^"]+)"', raw).group(1) for raw in (first, second)]  # type: ignore[union-attr]
    assert boundaries[0] != boundaries[1]
    for raw, boundary in zip((first, second), boundaries, strict=True):
        assert boundary.startswith(b"=_") and len(boundary) <= 70  # RFC 2046 §5.1.1
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert body.count(b"--" + boundary) == 3  # two delimiters and the close delimiter, nothing else


def test_message_attached_as_a_file_does_not_clash_with_the_outer_boundary() -> None:
    inner = render(chat(parts=(Part("a.bin", "application/octet-stream", b"x"),)))
    message = parse(chat(parts=(Part("inner.eml", "application/octet-stream", inner),)))
    assert next(message.iter_attachments()).get_payload(decode=True) == inner


@pytest.mark.parametrize("content_type", ["image", "image/", "image/jpeg;", "image/jpeg; name=x", "a b/c",
                                          "message/rfc822", "multipart/mixed", "text/plain\r\nX-Evil: 1"])
def test_invalid_or_unencodable_attachment_type_is_rejected(content_type: str) -> None:
    with pytest.raises(ValueError):
        render(chat(parts=(Part("a", content_type, b"x"),)))


# --- header format ---------------------------------------------------------------------------------------


def test_date_is_rfc5322_in_utc() -> None:
    berlin = datetime(2024, 7, 1, 0, 30, 59, 999999, tzinfo=timezone(timedelta(hours=2)))
    raw = render(chat(date=berlin))
    assert b"\r\nDate: Sun, 30 Jun 2024 22:30:59 +0000\r\n" in b"\r\n" + raw
    assert PARSER.parsebytes(raw)["Date"].datetime == berlin.replace(microsecond=0)


def test_naive_date_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render(chat(date=datetime(2024, 1, 12, 9, 17)))


def test_thread_root_has_no_in_reply_to_and_replies_point_at_the_root() -> None:
    root = message_id_for("wa", "chat-1")
    assert parse(chat(message_id=root, thread_id=root))["In-Reply-To"] is None
    assert parse(chat(thread_id=None))["References"] is None
    reply = parse(chat(thread_id=root))
    assert reply["In-Reply-To"] == reply["References"] == f"<{root}>"


def test_typical_message_header_lines_are_at_most_78_chars() -> None:
    mail = chat(to=(KIM, ZOE, Address("Adele Vance", "adele@contoso.com")),
                headers=tuple((f"X-Tenantry-H{i}", f"value number {i} 👍") for i in range(5)))
    assert max(len(line) for line in header_block(render(mail)).split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "mail",
    [chat(subject="x" * 5000), chat(subject="ü" * 5000), chat(headers=(("X-" + "H" * 70, "v" * 3000),)),
     chat(headers=(("X-Token", "a" * 990 + " b"),)), chat(sender=Address("n" * 3000, "kim@contoso.com")),
     chat(sender=Address("김" * 1000, "kim@contoso.com"))],
)
def test_header_lines_never_exceed_998_chars(mail: ChatMail) -> None:
    raw = render(mail)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert PARSER.parsebytes(raw).defects == []


def test_lines_with_encoded_words_are_at_most_76_chars() -> None:
    raw = render(chat(subject="가족 " * 200, sender=Address("Zoë " * 40, "zoe@contoso.com"),
                      headers=(("X-Tenantry-Chat", "Familie Groß 👪 " * 30),)))
    for line in header_block(raw).split(b"\r\n"):
        if b"=?utf-8?" in line:
            assert len(line) <= 76, line


@pytest.mark.parametrize(
    "mail",
    [chat(message_id="<id@x>"), chat(message_id="no-at-sign"), chat(message_id="a b@x"),
     chat(thread_id="bad id@x"), chat(sender=Address("Kim", "kim")), chat(sender=Address("Kim", "kim@@x")),
     chat(to=(Address("Kim", "kim@contoso.com\r\nBcc: x@y"),)), chat(sender=Address("Kim", "jürgen@contoso.com")),
     chat(headers=(("X-Bad Name", "v"),)), chat(headers=(("X-Bad:Name", "v"),)), chat(headers=(("", "v"),)),
     chat(headers=(("Content-Type", "text/html"),)), chat(headers=(("subject", "again"),)),
     chat(headers=(("Bcc", "x@y"),)), chat(headers=(("Resent-From", "x@y"),))],
)
def test_invalid_input_is_rejected_not_rendered(mail: ChatMail) -> None:
    with pytest.raises(ValueError):
        render(mail)


def test_header_injection_through_values_is_encoded_not_emitted() -> None:
    mail = chat(subject="hi\r\nBcc: victim@example.com", sender=Address("Kim\r\nBcc: v@x", "kim@contoso.com"),
                headers=(("X-Tenantry-Chat", "x\r\nBcc: victim@example.com"),))
    message = parse(mail)
    assert message["Bcc"] is None
    assert message["Subject"] == "hi\r\nBcc: victim@example.com"


# --- determinism and ids -----------------------------------------------------------------------------


def test_same_item_renders_to_identical_bytes() -> None:
    parts = (Part("家族.jpg", "image/jpeg", bytes(range(256))),)
    first = render(chat(parts=parts, subject="Zoë 👪", body="a\nb"))
    again = render(chat(parts=(Part("家族.jpg", "image/jpeg", bytes(range(256))),), subject="Zoë 👪", body="a\nb"))
    assert first == again


def test_equal_instants_in_different_zones_render_identically() -> None:
    tokyo = WHEN.astimezone(timezone(timedelta(hours=9)))
    assert render(chat(date=tokyo)) == render(chat(date=WHEN))


def test_message_id_for_is_stable_and_sha256_based() -> None:
    assert message_id_for("wa", "chat-1", "7") == message_id_for("wa", "chat-1", "7")
    # sha256(b"2:wa,6:chat-1,1:7,") truncated to 160 bits
    assert message_id_for("wa", "chat-1", "7") == "f479ad9a91199b0ab9c965dde03f5be3111f33c5@archive.tenantry"
    assert message_id_for("x", domain="wa.example").endswith("@wa.example")


def test_message_id_for_separates_key_parts_unambiguously() -> None:
    assert message_id_for("ab", "c") != message_id_for("a", "bc")
    assert message_id_for("a,b") != message_id_for("a", "b")
    assert message_id_for("") != message_id_for("", "")


@pytest.mark.parametrize("domain", ["", "a b", "x@y", ".x"])
def test_message_id_for_rejects_a_bad_domain(domain: str) -> None:
    with pytest.raises(ValueError):
        message_id_for("x", domain=domain)


def test_message_id_for_needs_a_key_part() -> None:
    with pytest.raises(ValueError):
        message_id_for()


def test_message_id_for_output_is_a_valid_message_id_header() -> None:
    mail = chat(message_id=message_id_for("김민지", "📷"))
    assert parse(mail)["Message-ID"] == f"<{mail.message_id}>"


# --- properties ----------------------------------------------------------------------------------------

SAFE_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789+-_.", min_size=1, max_size=20).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s
)
SAFE_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}.example", SAFE_LOCAL,
                         st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=15))


@HYPOTHESIS
@given(body=st.text())
def test_any_body_round_trips_exactly(body: str) -> None:
    assert text_body(parse(chat(body=body))) == body


@HYPOTHESIS
@given(body=st.text(), data=st.binary())
def test_any_body_round_trips_exactly_with_an_attachment(body: str, data: bytes) -> None:
    message = parse(chat(body=body, parts=(Part("f.bin", "application/octet-stream", data),)))
    assert text_body(message) == body
    assert next(message.iter_attachments()).get_payload(decode=True) == data


@HYPOTHESIS
@given(subject=st.text(), value=st.text())
def test_any_subject_and_header_value_round_trip_exactly(subject: str, value: str) -> None:
    raw = render(chat(subject=subject, headers=(("X-Tenantry-Chat", value),)))
    message = PARSER.parsebytes(raw)
    assert (message["Subject"] or "") == subject
    assert message["X-Tenantry-Chat"] == value
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


@HYPOTHESIS
@given(
    name=st.one_of(st.none(), st.text(), st.text(min_size=20, max_size=150)),
    addr=SAFE_ADDRESS,
    other=st.text(max_size=30),
    other_addr=SAFE_ADDRESS,
)
def test_any_display_name_round_trips_as_a_phrase(name: str | None, addr: str, other: str, other_addr: str) -> None:
    raw = render(chat(sender=Address(name, addr), to=(Address(other, other_addr), KIM)))
    message = PARSER.parsebytes(raw)
    (sender,) = message["From"].addresses
    assert sender.addr_spec == addr
    assert [a.addr_spec for a in message["To"].addresses] == [other_addr, KIM.addr]
    phrase = raw_field(raw, "From").removesuffix(addr).removesuffix(f" <{addr}>")
    if len(ENCODED_WORD.findall(phrase)) <= 1:
        assert sender.display_name == phrase_of(name)
    else:  # Python < 3.14 keeps the space between a phrase's encoded-words (CPython gh-128110)
        assert rfc2047_decode(phrase) == phrase_of(name)
    assert max(len(line) for line in header_block(raw).split(b"\r\n")) <= 998


@HYPOTHESIS
@given(filename=st.text(), data=st.binary(max_size=200))
def test_any_filename_round_trips_exactly(filename: str, data: bytes) -> None:
    message = parse(chat(parts=(Part(filename, "application/octet-stream", data),)))
    attachment = next(message.iter_attachments())
    assert attachment["Content-Disposition"].params["filename"] == filename
    # get_filename() unquotes ("<x>" and '"x"' lose their brackets) and strips white space: a stdlib view.
    assert attachment.get_filename() == utils.unquote(filename).strip()
    assert attachment.get_payload(decode=True) == data


@HYPOTHESIS
@given(body=st.text(max_size=50), subject=st.text(max_size=50), name=st.text(max_size=20))
def test_rendering_is_a_pure_function_of_the_item(body: str, subject: str, name: str) -> None:
    def build() -> bytes:
        return render(chat(body=body, subject=subject, sender=Address(name, "kim@contoso.com")))

    assert build() == build()


# --- a real peer: Dovecot parses and decodes what render() wrote ------------------------------------------


@pytest.fixture(scope="module")
def imap() -> Iterator[imaplib.IMAP4]:
    from tests.interop import dovecot  # the shared helper that also serves the IMAP delivery target tests

    why = dovecot.available()
    if why:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="tenantry-mime-dovecot-"))
    root.chmod(0o755)  # Dovecot's own users must reach the files
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server, process = dovecot.start(root, port, {"kim@contoso.com": "kim-pw"})
    try:
        connection = server.login("kim@contoso.com")
        yield connection
        connection.logout()
    finally:
        dovecot.stop(process)
        shutil.rmtree(root, ignore_errors=True)


def _append(imap: imaplib.IMAP4, mail: ChatMail) -> str:
    status, data = imap.append("INBOX", None, None, render(mail))
    assert status == "OK", data
    match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
    assert match is not None
    imap.select("INBOX")
    return match.group(1).decode("ascii")


def _fetch_binary(imap: imaplib.IMAP4, uid: str, section: int) -> bytes:
    status, data = imap.uid("FETCH", uid, f"(BINARY.PEEK[{section}])")
    assert status == "OK", data
    item = data[0]
    assert isinstance(item, tuple)
    return bytes(item[1])


def _search(imap: imaplib.IMAP4, key: str, text: str) -> list[str]:
    imap.literal = text.encode("utf-8")  # type: ignore[assignment]  # imaplib sends bytes literals as they are
    status, data = imap.uid("SEARCH", "CHARSET", "UTF-8", key)
    assert status == "OK", data
    return (data[0] or b"").decode("ascii").split()


@pytest.mark.interop
@pytest.mark.parametrize("body", BODIES)
def test_dovecot_decodes_the_body_to_the_same_bytes(imap: imaplib.IMAP4, body: str) -> None:
    uid = _append(imap, chat(body=body))
    assert _fetch_binary(imap, uid, 1) == body.encode("utf-8")


@pytest.mark.interop
def test_dovecot_decodes_names_subject_and_attachments(imap: imaplib.IMAP4) -> None:
    parts = (Part("家族の写真 🎉.png", "image/png", bytes(range(256)) * 3),
             Part("Protokoll der Elternversammlung — März 2024 (endgültig).pdf", "application/pdf", b"%PDF\x00"))
    mail = chat(subject="Ausflug nach Lübeck 🚆", sender=Address("박서준", "+4917099999@whatsapp.example"),
                to=(Address('Ngọc Anh, "Mẹ"', "anh@contoso.com"),), body="Fotos 👇", parts=parts)
    uid = _append(imap, mail)
    assert _search(imap, "SUBJECT", "Lübeck") == [uid]
    assert _search(imap, "FROM", "박서준") == [uid]
    assert _search(imap, "TO", 'Ngọc Anh, "Mẹ"') == [uid]
    assert _fetch_binary(imap, uid, 1) == "Fotos 👇".encode()
    assert _fetch_binary(imap, uid, 2) == parts[0].data
    assert _fetch_binary(imap, uid, 3) == parts[1].data
    status, data = imap.uid("FETCH", uid, "(BODYSTRUCTURE)")
    assert status == "OK"
    structure = data[0]
    assert isinstance(structure, bytes)
    assert b'("text" "plain" ("charset" "utf-8")' in structure
    assert b'("image" "png"' in structure and b'"mixed" ("boundary" "=_' in structure
    assert structure.count(b'("attachment" (') == 2
