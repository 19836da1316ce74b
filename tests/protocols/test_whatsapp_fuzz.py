"""WhatsApp export parser under Hypothesis: any text, any bytes, any zip — it never raises, and every
non-blank line ends up in exactly one message or one ``unparsed_line`` issue."""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.protocols.whatsapp import IssueReason, MessageKind, parse_text, read_export
from tenantry.protocols.whatsapp.export import _decode
from tenantry.protocols.whatsapp.locales import LOCALES
from tests.protocols.test_whatsapp_export import assert_lines_accounted_for

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MARKS = ["", "", "", "\u200e", "\u200f", "\u202a", "\u202c", "\u2066", "\u2069", "\ufeff"]
MARKERS = sorted(
    {p for loc in LOCALES for p in (*loc.deleted, *loc.media_omitted, *loc.omitted, *loc.missed_voice,
                                    *loc.missed_video)}
    | {f"<{p}>" for loc in LOCALES for p in loc.edited}
    | {f"IMG-20240112-WA0003.jpg ({p})" for loc in LOCALES for p in loc.file_attached}
    | {f"\u200e<{p}: 00000012-PHOTO-2024-01-12-09-17-00.jpg>" for loc in LOCALES for p in loc.attached}
    | {"2015-08-04-PHOTO-00004762.jpg <attached>", "Ann added Bo", "Bo left", "\u200eAnn created group \u201cX\u201d",
       'Ann changed the subject from "A" to "B: C"', "Messages and calls are end-to-end encrypted."}
)
SHORT_TEXT = st.text(max_size=30)


@st.composite
def header_like(draw: st.DrawFn) -> str:
    """A line built from the pieces of real headers, often valid, often slightly off."""
    bracket = draw(st.booleans())
    sep = draw(st.sampled_from(["/", ".", "-", "/", ":"]))
    dsp = draw(st.sampled_from(["", "", " "]))
    a, b, c = (draw(st.integers(0, 2100)) for _ in range(3))
    dot = draw(st.sampled_from(["", "", "."]))
    join = draw(st.sampled_from([", ", " ", ",", " à ", " klo ", ""]))
    pre = draw(st.sampled_from(["", "", "", "오전 ", "오후 "]))
    hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    tsep = draw(st.sampled_from([":", ":", "."]))
    seconds = draw(st.sampled_from(["", f"{tsep}{second:02d}"]))
    ampm = draw(st.sampled_from(["", "", " AM", " PM", "\u202fPM", " a. m.", " p.\u00a0m.", " p.m.", " pm"]))
    term = "] " if bracket else draw(st.sampled_from([" - ", ": ", " ", " -", "] "]))
    author = draw(st.sampled_from(["Ann", "\u202a+49 170 1\u202c", "a", "Pm", "", "Bo: x", "~\u202fCy"]))
    body = draw(st.one_of(st.sampled_from(MARKERS), SHORT_TEXT))
    rest = f"{author}: {body}" if author or draw(st.booleans()) else body
    return (f"{draw(st.sampled_from(MARKS))}{'[' if bracket else ''}{a}{sep}{dsp}{b}{sep}{dsp}{c}{dot}{join}"
            f"{pre}{hour}{tsep}{minute:02d}{seconds}{ampm}{term}{rest}")


@st.composite
def valid_android(draw: st.DrawFn) -> str:
    day, month, hour, minute = draw(st.integers(1, 28)), draw(st.integers(1, 12)), draw(st.integers(0, 23)), \
        draw(st.integers(0, 59))
    return f"{day:02d}/{month:02d}/2024, {hour:02d}:{minute:02d} - {draw(st.sampled_from(['Ann', 'Bo']))}: " \
           f"{draw(st.one_of(st.sampled_from(MARKERS), SHORT_TEXT))}"


LINE = st.one_of(header_like(), valid_android(), SHORT_TEXT, st.sampled_from(["", " ", "\u200e", *MARKERS]))
NEAR_VALID = st.builds(
    lambda lines, eol, tail: eol.join(lines) + tail,
    st.lists(LINE, max_size=40),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["", "\n", "\r\n", "\n\n"]),
)
ORDERS = st.sampled_from([None, "DMY", "MDY", "YMD"])


@FUZZ
@given(st.text(), ORDERS)
def test_arbitrary_text_never_raises_and_loses_no_line(text: str, order: str | None) -> None:
    assert_lines_accounted_for(text, parse_text(text, date_order=order))


@FUZZ
@given(NEAR_VALID, ORDERS)
def test_near_valid_exports_never_raise_and_lose_no_line(text: str, order: str | None) -> None:
    parsed = parse_text(text, date_order=order)
    assert_lines_accounted_for(text, parsed)
    for m in parsed.messages:
        assert isinstance(m.kind, MessageKind)
        assert (m.attachment_name is not None) == (m.kind is MessageKind.ATTACHMENT)
        assert m.author is None or (m.author and m.author == m.author.strip())
        assert "\n" not in (m.author or "")


@FUZZ
@given(NEAR_VALID)
def test_parsing_is_deterministic(text: str) -> None:
    assert parse_text(text) == parse_text(text)


@FUZZ
@given(st.binary())
def test_arbitrary_bytes_never_raise_and_lose_no_line(data: bytes) -> None:
    parsed = read_export(data)
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return  # a zip, checked below
    assert_lines_accounted_for(_decode(data), parsed)


@FUZZ
@given(NEAR_VALID, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"]))
def test_near_valid_exports_in_any_encoding_lose_no_line(text: str, encoding: str) -> None:
    data = text.encode(encoding, "surrogatepass")
    assert_lines_accounted_for(_decode(data), read_export(data))


MEMBER_NAMES = st.sampled_from(["_chat.txt", "WhatsApp Chat with Ann.txt", "notes.txt", "dir/_chat.txt",
                                "IMG-20240112-WA0003.jpg", "00000012-PHOTO-2024-01-12-09-17-00.jpg",
                                "__MACOSX/._x", "a/", "Café.pdf"])


@st.composite
def zips(draw: st.DrawFn) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as zf:
        for name in draw(st.lists(MEMBER_NAMES, max_size=5, unique=True)):
            if name.endswith(".txt"):
                content = draw(NEAR_VALID).encode("utf-8", "surrogatepass")
            else:
                content = draw(st.binary(max_size=20))
            zf.writestr(name, content)
    data = buf.getvalue()
    # Sometimes damage it: a flipped byte anywhere, or a cut.
    damage = draw(st.sampled_from(["none", "none", "flip", "cut"]))
    if damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    return data


@FUZZ
@given(zips())
def test_any_zip_never_raises_and_every_attachment_has_bytes_or_an_issue(data: bytes) -> None:
    parsed = read_export(data, filename="export.zip")
    reported = {(i.line, i.text) for i in parsed.issues
                if i.reason in (IssueReason.MISSING_MEDIA, IssueReason.UNREADABLE_MEDIA)}
    for m in parsed.messages:
        if m.kind is MessageKind.ATTACHMENT:
            assert (m.attachment_data is not None) != ((m.line, m.attachment_name) in reported)
        else:
            assert m.attachment_data is None
