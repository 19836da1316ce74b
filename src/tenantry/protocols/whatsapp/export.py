"""WhatsApp "Export chat" files (the ``.txt``, or the ``.zip`` with media) parsed into messages and issues.

Nothing is dropped in silence: every non-blank line of the export ends up either inside exactly one
:class:`ExportMessage` (the span ``line`` … ``last_line``) or in an :class:`ExportIssue` whose reason is
``unparsed_line``; every other oddity (a missing media file, undecodable bytes, a header-like line kept as
text) is reported as an issue too, beside the message that holds it.

Formats (see ``locales.py`` for the words): Android ``12/01/2024, 09:15 - Name: text``; iOS
``[12/01/2024, 09:15:22] Name: text``; 12- and 24-hour clocks with AM/PM after the time (``AM``, ``a.m.``,
``p. m.``, with a space, U+00A0 or U+202F) or before it (Korean ``오전``/``오후``); dates day-first,
month-first or year-first (``[2018/06/13, 21:25:15]``, ``2024. 1. 12.``) with ``/``, ``.`` or ``-``, with or
without spaces and a final dot (Croatian ``13. 6. 2018.``); a date-time joiner of ``,``, a space, ``à``
(French) or ``klo`` (Finnish, ``13.6.2018 klo 21.25.15``); a time separator of ``:`` or ``.``; and a
header end of ``]``, `` - ``, ``: `` (``13.06.18 21.25.15: a: m``) or a bare space
(``13. 6. 2018. 21:25:15 a: m``). Bidi marks (U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) before a
header, around a name or before a body are formatting, not content, and are removed there.

The header / continuation rule
-------------------------------
A line is a message header only if all three hold; otherwise it is a continuation of the message above
(or, before the first header, an ``unparsed_line`` issue):

1. *Same pattern as the file.* Every line is matched against one generic header expression and given a
   shape (bracket, date separator and spacing, joiner, clock style, seconds, time separator, header end,
   year position and width). One export is rendered by one phone in one locale, so the file has one
   shape: that of its first line when the first non-blank line is a header (WhatsApp writes it, a user
   cannot), otherwise the most frequent one (ties: the earliest); when the first line overrules a larger
   shape, the first line of that shape is reported as ``other_header_pattern``. A line of any other shape —
   ``12/05/2020 - meet``, an Android line pasted into an iOS chat — is text. Lines are re-matched
   against the file shape's own expression, so an author called "Pm" cannot make a 24-hour line look
   like a 12-hour one.
2. *A real date.* Day/month order is decided once for the whole file: a first field > 12 is a vote for
   DMY, a second field > 12 a vote for MDY, the majority wins; with no vote, the locale decides
   (``/`` with upper-case ``AM``/``PM`` is US month-first; everything else day-first; a four-digit
   first field is year-first). ``ParsedExport.date_order`` and ``date_order_source`` expose the
   decision. Under that order a line must give a valid date and time (no 31/02, no 13 o'clock PM);
   otherwise it is text, reported as ``impossible_date``.
3. *Not a dip in time.* Headers run forwards: WhatsApp writes messages in the order they arrived, and
   the only backward steps are small (a DST change, a message delivered a little late). A candidate
   more than ``BACKWARD_SLACK`` (1 hour) older than the newest accepted header starts a *dip*; the dip
   is the run of consecutive candidates that stay below that mark. If the timeline comes back
   (a later candidate is again within the slack) and the dip is at most ``MAX_DIP`` (50) candidates
   long, the dip is text pasted into a message — a copied conversation — and every line of it is kept
   as a continuation and reported as ``header_out_of_order``. A dip that never comes back, or is
   longer, is a real clock change and is accepted. A pasted line dated in the *future* is not caught
   (the one header after it would look like the dip); a pasted line dated within the slack is
   indistinguishable from a real one. Demoting a real header keeps its text and flags it for review,
   while promoting a pasted line would forge a message, which is why the rule leans towards demoting.

Message kinds: deleted, missed voice/video calls, media omitted (Android ``<Media omitted>``, iOS
``image omitted`` …), attachments (``<attached: …>``, ``… (file attached)``, older iOS ``… <attached>``;
the caption is the lines after it), system lines (no author; on iOS a U+200E-led body under the chat's
name, whose name becomes ``chat_name``; on Android a one-line WhatsApp notice such as the encryption notice
under the group's name, see ``Locale.notice``), and text. An ``<This message was edited>`` suffix sets
``edited`` and is removed from the text.

Speed, measured for ``parse_text`` on one core of the development machine (CPython 3.11.7), best of three
over a synthetic 200,000-line export with multi-line, media, attachment and system messages: about
150,000 lines/s (≈ 107,000 messages/s) for the Android shape, 140,000 lines/s (≈ 100,000 messages/s) for
the iOS shape. Every expression is linear in the line length (no backtracking search over user text).
Since issue #9 the text is read as a stream in four to five passes (shape, day/month order, names and
authors, then messages with the timeline on a second reader) so that memory is bounded by one message
whatever the file's size; that costs about 2.5 times the single-pass time above (measured on a loaded
machine, 50,000 Android lines: 3.8 s against 1.5 s for the earlier single pass).
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import IO, Any, Literal, NamedTuple

from tenantry.protocols.whatsapp.locales import LOCALES, casefold_set, notice_pattern, system_pattern

__all__ = [
    "BACKWARD_SLACK",
    "MAX_DIP",
    "DateOrder",
    "DateOrderSource",
    "ExportIssue",
    "ExportLimits",
    "ExportStream",
    "ExportMessage",
    "IssueReason",
    "MessageKind",
    "LimitExceeded",
    "ParsedExport",
    "Platform",
    "NOT_AN_EXPORT",
    "count_zip_members",
    "export_refusal",
    "open_export",
    "parse_text",
    "read_export",
    "zip_refusal",
]

Platform = Literal["android", "ios"]
DateOrder = Literal["DMY", "MDY", "YMD"]
DateOrderSource = Literal["data", "locale", "caller"]

BACKWARD_SLACK = timedelta(hours=1)
MAX_DIP = 50
_MAX_AUTHOR = 100


class MessageKind(StrEnum):
    TEXT = "text"
    MEDIA_OMITTED = "media_omitted"
    ATTACHMENT = "attachment"
    DELETED = "deleted"
    MISSED_VOICE_CALL = "missed_voice_call"
    MISSED_VIDEO_CALL = "missed_video_call"
    SYSTEM = "system"


class IssueReason(StrEnum):
    """Why an issue was raised. Only ``UNPARSED_LINE`` means the line is in no message."""

    UNPARSED_LINE = "unparsed_line"  # text before the first header: in no message
    HEADER_OUT_OF_ORDER = "header_out_of_order"  # header-like line in a dip of time, kept as text
    IMPOSSIBLE_DATE = "impossible_date"  # header-like line whose date/time cannot exist, kept as text
    UNDECODABLE_BYTES = "undecodable_bytes"  # bytes that were not valid text, replaced by U+FFFD
    MISSING_MEDIA = "missing_media"  # an attachment whose file is not in the export
    UNREADABLE_MEDIA = "unreadable_media"  # the file is in the zip but cannot be read
    UNREFERENCED_MEDIA = "unreferenced_media"  # a file in the zip that no message names
    UNREADABLE_ZIP = "unreadable_zip"
    NO_CHAT_FILE = "no_chat_file"  # a zip without a chat text file
    SYSTEM_NAME_MISMATCH = "system_name_mismatch"  # an iOS system line under a name other than the chat's
    OTHER_HEADER_PATTERN = "other_header_pattern"  # more lines have another header pattern than the first line's
    # Safety limits (ExportLimits): what was not read, and why. Nothing over a limit is read into memory.
    MEDIA_TOO_LARGE = "media_too_large"  # the zip header gives a size over max_media_bytes: not read
    MEDIA_REFUSED = "media_refused"  # over the compression-ratio or total limit (a zip bomb), or inflating past them
    MESSAGE_TOO_LONG = "message_too_long"  # a message's text over max_text_chars: kept cut, flagged ``oversize``
    ZIP_REFUSED = "zip_refused"  # the whole zip is over a limit (members, total size, the chat text's ratio)


@dataclass(frozen=True, slots=True)
class ExportMessage:
    """One message. ``timestamp`` is naive: the phone's local time as written in the export.

    ``line`` is the 1-based line of the header, ``last_line`` the last non-blank line that belongs to it.
    """

    line: int
    timestamp: datetime
    author: str | None
    text: str
    kind: MessageKind
    attachment_name: str | None
    attachment_data: bytes | None
    edited: bool
    last_line: int
    attachment_size: int | None = None  # the file's size (from the zip header), also when it was not read
    oversize: int = 0  # > 0: the text was longer than the limit and is cut; its full length in characters


@dataclass(frozen=True, slots=True)
class ExportIssue:
    """Something the parser could not fit; ``line`` 0 is about the export as a whole."""

    line: int
    text: str
    reason: IssueReason


@dataclass(frozen=True, slots=True)
class ParsedExport:
    """Messages and issues in line order, and what the parser decided about the file.

    ``date_order_source`` says whether the order came from the file's dates ("data"), the locale's
    habit ("locale") or the caller ("caller"). With no header at all, ``platform`` and ``date_order``
    are the defaults "android" and "DMY". ``chat_name`` comes from the export's file name, else from
    the name iOS system lines are written under.
    """

    messages: list[ExportMessage]
    issues: list[ExportIssue]
    platform: Platform
    date_order: DateOrder
    chat_name: str | None
    date_order_source: DateOrderSource = "locale"


# --- the header line ---------------------------------------------------------------------------------

_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_MARKS_TABLE = {ord(c): None for c in _MARKS}
_MARK_CLASS = r"[\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
_MARKS_RE = _MARK_CLASS + "*"
_AMPM = r"[AaPp]\.?[ \u00a0\u202f]?[Mm]\.?"
_PRE_AMPM = r"오전|오후|午前|午後"
_PM_WORDS = frozenset({"오후", "午後"})

# Group order is shared with the per-shape expressions built by _shape_regex: keep the indexes below.
_HEADER = re.compile(
    _MARKS_RE
    + r"(?P<br>\[)?"
    r"(?P<a>\d{1,4})(?P<sep>[./-])(?P<dsp> ?)(?P<b>\d{1,2})(?P=sep)(?P=dsp)(?P<c>\d{1,4})(?P<dot>\.?)"
    r"(?P<join>, ?| (?:à|klo|um|kl\.) | )"
    r"(?:(?P<pre>" + _PRE_AMPM + r") )?"
    r"(?P<H>\d{1,2})(?P<tsep>[:.])(?P<M>\d{2})(?:(?P=tsep)(?P<S>\d{2}))?"
    r"(?:[ \u00a0\u202f](?P<ampm>" + _AMPM + r"))?"
    r"(?(br)(?P<bterm>\] ?)|(?P<term> - | -$|: | ))"
    r"(?P<rest>.*)"
)
_BR, _A, _SEP, _DSP, _B, _C, _DOT, _JOIN, _PRE, _H, _TSEP, _M, _S, _AMPMG, _BTERM, _TERM, _REST = range(17)


class _Shape(NamedTuple):
    bracket: bool
    sep: str
    dsp: str
    dot: str
    join: str
    pre_ampm: bool
    tsep: str
    seconds: bool
    ampm: str | None  # the AM/PM style with letters and spaces normalised: "xm", "x.m.", "x. m."
    term: str | None  # None with a bracket
    year_first: bool
    year_len: int  # digits of the year when it comes last; 0 when year-first


def _shape(g: tuple[str | None, ...]) -> _Shape:
    ampm = g[_AMPMG]
    style = None
    if ampm is not None:
        style = ampm.lower().replace("\u00a0", " ").replace("\u202f", " ").replace("a", "x").replace("p", "x")
    term = g[_TERM]
    if term == " -":
        term = " - "
    a = g[_A] or ""
    year_first = len(a) == 4
    return _Shape(g[_BR] is not None, g[_SEP] or "", g[_DSP] or "", g[_DOT] or "", g[_JOIN] or "",
                  g[_PRE] is not None, g[_TSEP] or "", g[_S] is not None, style, term, year_first,
                  0 if year_first else len(g[_C] or ""))


def _absent(name: str) -> str:
    return f"(?:(?P<{name}>(?!)))?"


def _shape_regex(s: _Shape) -> re.Pattern[str]:
    """The header expression of exactly one shape, with the same groups as the generic one."""
    term = {" - ": r"(?P<term> - | -$)", ": ": r"(?P<term>: )", " ": r"(?P<term> )"}.get(s.term or "", "(?!)")
    parts = [
        _MARKS_RE,
        r"(?P<br>\[)" if s.bracket else _absent("br"),
        r"(?P<a>\d{4})" if s.year_first else r"(?P<a>\d{1,2})",
        f"(?P<sep>{re.escape(s.sep)})(?P<dsp>{re.escape(s.dsp)})",
        r"(?P<b>\d{1,2})(?P=sep)(?P=dsp)",
        r"(?P<c>\d{1,2})" if s.year_first else rf"(?P<c>\d{{{s.year_len}}})",
        f"(?P<dot>{re.escape(s.dot)})(?P<join>{re.escape(s.join)})",
        f"(?P<pre>{_PRE_AMPM}) " if s.pre_ampm else _absent("pre"),
        rf"(?P<H>\d{{1,2}})(?P<tsep>{re.escape(s.tsep)})(?P<M>\d{{2}})",
        r"(?P=tsep)(?P<S>\d{2})" if s.seconds else _absent("S"),
        (r"[ \u00a0\u202f](?P<ampm>" + _AMPM + ")") if s.ampm else _absent("ampm"),
        (r"(?P<bterm>\] ?)" + _absent("term")) if s.bracket else (_absent("bterm") + term),
        r"(?P<rest>.*)",
    ]
    return re.compile("".join(parts))


def _timestamp(g: tuple[str | None, ...], order: str) -> datetime | None:
    a, b, c = int(g[_A] or 0), int(g[_B] or 0), int(g[_C] or 0)
    if order == "DMY":
        day, month, year = a, b, c
    elif order == "MDY":
        month, day, year = a, b, c
    else:
        year, month, day = a, b, c
    if year < 100:
        year += 2000
    hour, minute, second = int(g[_H] or 0), int(g[_M] or 0), int(g[_S] or 0)
    pre, ampm = g[_PRE], g[_AMPMG]
    if pre is not None or ampm is not None:
        if hour > 12:
            return None
        pm = pre in _PM_WORDS if pre is not None else (ampm or "a")[0] in "Pp"
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


# --- the message body --------------------------------------------------------------------------------

_ATTACHED = casefold_set("attached")
_FILE_ATTACHED = casefold_set("file_attached")
_EDITED = casefold_set("edited")
_SYSTEM = system_pattern(strict=False)
_SYSTEM_STRICT = system_pattern(strict=True)
_NOTICE = notice_pattern()
_MARKS_AND_SPACE = _MARKS + " \t\u00a0\u202f"
_HAS_MARK = re.compile(_MARK_CLASS)
# Android system lines that contain ": " quote user text (a new group subject); names rarely carry quotes.
_QUOTES = re.compile("[\"“”«»„']")
_MARKER_MAX = 160  # no marker line (deleted, omitted, call) is longer; longer first lines skip the regex


def _alts(attr: str) -> str:
    phrases = sorted({p for loc in LOCALES for p in getattr(loc, attr)}, key=len, reverse=True)
    return "|".join(re.escape(p) for p in phrases)


# One pass over the first line of a body decides among the short, fixed markers.
_MARKER = re.compile(
    _MARKS_RE + r"\s*(?:"
    r"(?P<voice>" + _alts("missed_voice") + r")(?:[,.·\s].*)?"
    r"|(?P<video>" + _alts("missed_video") + r")(?:[,.·\s].*)?"
    r"|(?P<deleted>" + _alts("deleted") + r")[.\s]*"
    r"|(?P<media>" + _alts("media_omitted") + r")\s*"
    r"|(?:.*\u200e)?\s*(?P<omitted>" + _alts("omitted") + r")\s*"
    r")",
    re.IGNORECASE,
)
_EDITED_MAX = 64  # "<" + the longest edited label + ">", with room to spare
_SYSTEM_MAX = 1000  # system lines are short; the keyword search is linear but has a large constant
_ATTACH_TAG = re.compile(r"(?P<pre>.*?)<(?P<label>[^<>:]{1,40}?) ?: ?(?P<name>[^<>]+?)>")
_ATTACH_PAREN = re.compile(r"(?P<name>[^\s()][^()]*?\.[A-Za-z0-9]{1,8}) \((?P<label>[^()]{1,40})\)")
_ATTACH_OLD = re.compile(r"(?P<name>[^\s<>][^<>]*?\.[A-Za-z0-9]{1,8}) <(?P<label>[^<>:]{1,30})>")
_IOS_MEDIA_NAME = re.compile(r"\d{8}-")
_ANDROID_MEDIA_NAME = re.compile(r"(?:IMG|VID|AUD|PTT|STK|DOC)-\d{8}-WA\d+", re.IGNORECASE)
_OLD_IOS_MEDIA_NAME = re.compile(r"\d{4}-\d{2}-\d{2}-[A-Z]+-\d+")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _key(s: str) -> str:
    return s.translate(_MARKS_TABLE).strip().casefold()


def _attachment(first: str) -> tuple[str, str] | None:
    """(file name, text written before the tag) when the first line of a body names an attachment."""
    line = first.translate(_MARKS_TABLE).strip()
    if line.endswith(">"):
        m = _ATTACH_TAG.fullmatch(line)
        if m and (_key(m["label"]) in _ATTACHED or _IOS_MEDIA_NAME.match(m["name"].strip())):
            return m["name"].strip(), m["pre"].strip()
        m = _ATTACH_OLD.fullmatch(line)
        if m and (_key(m["label"]) in _ATTACHED or _OLD_IOS_MEDIA_NAME.match(m["name"])):
            return m["name"], ""
    elif line.endswith(")"):
        m = _ATTACH_PAREN.fullmatch(line)
        if m and (_key(m["label"]) in _FILE_ATTACHED or _ANDROID_MEDIA_NAME.match(m["name"])):
            return m["name"], ""
    return None


def _without_edited_marker(text: str) -> tuple[str, bool]:
    """The text without a final "<This message was edited>" (any locale) and the spaces/LRM before it."""
    # A scan, not a regex search: "[\s]*<…>$" searched over a long run of spaces is quadratic.
    lt = text.rfind("<")
    if lt < 0 or len(text) - lt > _EDITED_MAX or "\n" in text[lt:]:
        return text, False
    if _key(text[lt + 1 : -1]).rstrip(". ") not in _EDITED:
        return text, False
    while lt > 0 and (text[lt - 1].isspace() or text[lt - 1] == "\u200e"):
        lt -= 1
    return text[:lt], True


def _author(rest: str) -> tuple[str | None, str]:
    """(author, body): no author when the line has no "name: " or the "name" is a system sentence."""
    colon = rest.find(": ")
    if colon <= 0:
        return None, rest
    name = rest[:colon].strip(_MARKS_AND_SPACE)
    if _HAS_MARK.search(name):
        name = name.translate(_MARKS_TABLE).strip()
    if not name or len(name) > _MAX_AUTHOR:
        return None, rest
    if (len(name) > 40 or _QUOTES.search(name)) and _SYSTEM_STRICT.search(name):
        return None, rest
    return name, rest[colon + 2 :]


def _message(line: int, last_line: int, ts: datetime, rest: str, cont: list[str]
             ) -> tuple[ExportMessage, str | None]:
    """The message of one header and its continuation lines, and the name an iOS system line came under."""
    author, body = _author(rest)
    lrm_led = body.startswith("\u200e")
    if lrm_led:
        body = body.lstrip("\u200e")
    text = body if not cont else body + "\n" + "\n".join(cont)
    edited = False
    if text.endswith(">"):
        text, edited = _without_edited_marker(text)
    first = text if not cont else text.partition("\n")[0]
    kind = MessageKind.TEXT
    attachment_name: str | None = None
    system_name: str | None = None
    marker = _MARKER.fullmatch(first) if len(first) <= _MARKER_MAX else None
    if marker is not None and marker.lastgroup == "voice":
        kind = MessageKind.MISSED_VOICE_CALL
    elif marker is not None and marker.lastgroup == "video":
        kind = MessageKind.MISSED_VIDEO_CALL
    elif author is None:
        kind = MessageKind.SYSTEM
    elif marker is not None:
        kind = MessageKind.DELETED if marker.lastgroup == "deleted" else MessageKind.MEDIA_OMITTED
    elif first.endswith((">", ")")) and (att := _attachment(first)) is not None:
        kind = MessageKind.ATTACHMENT
        attachment_name, before = att
        tail = text.partition("\n")[2]
        text = "\n".join(p for p in (before, tail) if p)
    elif lrm_led and len(first) <= _SYSTEM_MAX and _SYSTEM.search(first):
        kind, system_name, author = MessageKind.SYSTEM, author, None
    elif not cont and len(first) <= _SYSTEM_MAX and _NOTICE.match(first.lstrip(_MARKS_AND_SPACE)):
        # Some Android versions write the encryption notice under the group's name, without the LRM iOS
        # puts there: WhatsApp's own sentence, alone on its line, is a system event and that name no author.
        kind, system_name, author = MessageKind.SYSTEM, author, None
    return ExportMessage(line, ts, author, text, kind, attachment_name, None, edited, last_line), system_name


# --- limits ------------------------------------------------------------------------------------------

_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """What reading an export may cost; every limit is judged from the zip headers before reading and
    enforced again while inflating (headers can lie). The caller (the connector) passes its settings in.

    ``max_members``: entries in the zip's central directory, counted before the member list is built.
    ``max_total_bytes``: the members' uncompressed sizes together, as declared and as inflated.
    ``max_ratio``: uncompressed / compressed size of one member, for members over ``ratio_floor`` bytes
    (small files compress far better than real media or text do, and cost nothing).
    ``max_media_bytes``: a media file larger than this is not read (the connector's item rule, seed 000).
    ``max_text_chars``: a message's text is kept up to this many characters; longer ones are cut and flagged.
    """

    max_members: int = 20_000
    max_total_bytes: int = 4096 * _MIB
    max_ratio: int = 100
    ratio_floor: int = _MIB
    max_media_bytes: int | None = None
    max_text_chars: int | None = None


class LimitExceeded(Exception):
    """Reading stopped at a limit; the message says which."""


class _Capped(io.RawIOBase):
    """A member's bytes, counted as they are inflated: past ``cap`` reading stops with LimitExceeded."""

    def __init__(self, inner: IO[bytes], cap: int, what: str) -> None:
        self._inner, self._cap, self._what, self.count = inner, cap, what, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        self.count += len(data)
        if self.count > self._cap:
            raise LimitExceeded(f"{self._what} inflates past {self._cap} bytes")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


def _member_cap(info: zipfile.ZipInfo, limits: ExportLimits) -> int:
    """The most bytes a member may inflate to: its declared size, and what the ratio allows."""
    by_ratio = max(limits.ratio_floor, info.compress_size * limits.max_ratio)
    return min(info.file_size, by_ratio, limits.max_total_bytes)


def _ratio_refusal(info: zipfile.ZipInfo, limits: ExportLimits) -> str | None:
    if info.file_size > limits.ratio_floor and info.file_size > max(info.compress_size, 1) * limits.max_ratio:
        ratio = info.file_size // max(info.compress_size, 1)
        return (f"{info.filename}: {info.file_size} bytes from {info.compress_size} compressed (ratio {ratio}), "
                f"over the ratio limit {limits.max_ratio}")
    return None


_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_CENTRAL = b"PK\x01\x02"


def count_zip_members(fp: IO[bytes], limit: int) -> int:
    """Entries of the central directory, walked without building the member list (a small zip can declare
    millions of entries, and ``zipfile`` keeps an object for each); stops counting past ``limit``.

    Raises ``zipfile.BadZipFile`` when there is no central directory to walk.
    """
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    tail_len = min(size, 22 + 65535)
    fp.seek(size - tail_len)
    tail = fp.read(tail_len)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("File is not a zip file")  # zipfile's own words for this
    eocd_pos = size - tail_len + at
    cd_size = int.from_bytes(tail[at + 12 : at + 16], "little")
    record_pos = eocd_pos
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR and eocd_pos >= 76:
        # Like zipfile: the zip64 end record sits just before its locator.
        fp.seek(eocd_pos - 76)
        z64 = fp.read(56)
        if len(z64) == 56 and z64[:4] == b"PK\x06\x06":
            cd_size, record_pos = int.from_bytes(z64[40:48], "little"), eocd_pos - 76
    # Like zipfile: the directory ends where the end record starts (data may be prepended to a zip).
    start = record_pos - cd_size
    if start < 0:
        raise zipfile.BadZipFile("Bad offset for central directory")  # zipfile's own words for this
    fp.seek(start)
    count, left = 0, cd_size
    while left >= 46 and count <= limit:
        head = fp.read(46)
        if len(head) < 46 or head[:4] != _CENTRAL:
            break
        skip = sum(int.from_bytes(head[k : k + 2], "little") for k in (28, 30, 32))
        fp.seek(skip, io.SEEK_CUR)
        left -= 46 + skip
        count += 1
    return count


def zip_refusal(fp: IO[bytes], limits: ExportLimits) -> str | None:
    """Why a zip export is refused as a whole, from its headers alone, or None. For an upload check."""
    try:
        members = count_zip_members(fp, limits.max_members)
        if members > limits.max_members:
            return f"the zip has more than {limits.max_members} members"
        fp.seek(0)
        with zipfile.ZipFile(fp) as zf:
            return _zip_headers_refusal(zf.infolist(), limits)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None  # not a readable zip: read_export reports it (or reads it as text)


NOT_AN_EXPORT = "not a WhatsApp export (no line has a date and an author)"
PROBE_BYTES = _MIB  # how much of a file (of a zip: of its chat text) is read to judge that it is an export


def _looks_like_a_message(line: str) -> bool:
    """A header of any shape with a date that exists and an author (or a system sentence, which has none)."""
    m = _HEADER.match(line)
    if m is None:
        return False
    g = m.groups()
    orders = ("YMD",) if len(g[_A] or "") == 4 else ("DMY", "MDY")
    if all(_timestamp(g, order) is None for order in orders):
        return False
    author, body = _author(g[_REST] or "")
    if author is not None:
        return True
    body = body[:_SYSTEM_MAX]
    return bool(_SYSTEM.search(body) or _NOTICE.match(body.lstrip(_MARKS_AND_SPACE)))


def _prefix_has_a_message(head: bytes) -> bool:
    # A line cut at the probe's end still has its header at its start, which is all that is judged.
    codec, skip = _encoding(head)
    return any(_looks_like_a_message(line) for line in head[skip:].decode(codec, "replace").splitlines())


def export_refusal(open_bytes: Callable[[], IO[bytes]], filename: str | None = None,
                   limits: ExportLimits | None = None, probe_bytes: int = PROBE_BYTES) -> str | None:
    """:data:`NOT_AN_EXPORT` when the first ``probe_bytes`` of a file's chat text (of a zip: of its chat
    member) hold no line with a date and an author, else None. For an upload check (issue #10, item 6).

    WhatsApp writes the first line of every export itself, so a real export has a message in its first
    lines; random bytes or prose have none. Only the prefix is read (a zip member through the same caps as a
    run), never the whole file. A zip that cannot be read, or is over a limit, is left to ``zip_refusal``
    and the run's report (None here).
    """
    limits = limits or ExportLimits()
    with open_bytes() as fp:
        head = fp.read(probe_bytes)
        if head[:4] in _ZIP_MAGIC or (filename or "").lower().endswith(".zip"):
            try:
                fp.seek(0)
                with zipfile.ZipFile(fp) as zf:
                    chat = _pick_chat([i for i in zf.infolist() if not i.is_dir()])
                    if chat is None:
                        return "not a WhatsApp export (the zip has no chat text)"
                    capped = _Capped(zf.open(chat), _member_cap(chat, limits), chat.filename)
                    with io.BufferedReader(capped) as member:
                        head = member.read(probe_bytes)
            except (zipfile.BadZipFile, LimitExceeded, OSError, ValueError, EOFError, NotImplementedError,
                    RuntimeError):
                if head[:4] in _ZIP_MAGIC:
                    return None
                # Named .zip but no zip: read as text, as open_export does.
    return None if _prefix_has_a_message(head) else NOT_AN_EXPORT


def _zip_headers_refusal(infos: list[zipfile.ZipInfo], limits: ExportLimits) -> str | None:
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        return f"the members add up to {total} bytes uncompressed, over the limit {limits.max_total_bytes}"
    chat = _pick_chat([i for i in infos if not i.is_dir()])
    if chat is not None:
        refusal = _ratio_refusal(chat, limits)
        if refusal is not None:
            return "the chat text " + refusal
    return None


# --- the file: read line by line, in passes ----------------------------------------------------------
#
# Memory stays bounded by one message (at most ``max_text_chars``) and a window of ``MAX_DIP`` headers, never
# the whole text: the decisions that need the whole file (the file's shape, the day/month order, the chat
# name and the authors) are made by earlier passes that keep only counts, and the timeline rule (rule 3)
# runs on a second reader of the same text a little ahead of the one that builds the messages.

Line = tuple[str, int]  # a line without its end, and how many characters past the line limit were dropped
Lines = Callable[[], Iterator[Line]]


def _is_blank(line: str) -> bool:
    return not line.strip()


def _text_lines(text: str, max_line: int | None) -> Lines:
    def lines() -> Iterator[Line]:
        return _read_lines(io.StringIO(text, newline=None), max_line, strip_bom=True)
    return lines


def _read_lines(stream: IO[str], max_line: int | None, *, strip_bom: bool) -> Iterator[Line]:
    """Universal newlines (``\\r\\n``, ``\\r``, ``\\n``) like ``str.splitlines`` on those three; a line past
    ``max_line`` characters is cut there and the rest counted (the message holding it is over the limit)."""
    first = strip_bom
    with stream:
        while True:
            line = stream.readline(max_line) if max_line is not None else stream.readline()
            if not line:
                return
            dropped = 0
            if max_line is not None and not line.endswith("\n"):
                while True:  # the rest of an overlong line: counted, not kept
                    more = stream.readline(max_line)
                    if not more:
                        break
                    if more.endswith("\n"):
                        dropped += len(more) - 1
                        break
                    dropped += len(more)
            if line.endswith("\n"):
                line = line[:-1]
            if first:
                line = line.removeprefix("\ufeff")
                first = False
            yield line, dropped


def _decide_order(votes: tuple[int, int], first_ampm: str | None, shape: _Shape
                  ) -> tuple[DateOrder, DateOrderSource]:
    if shape.year_first:
        return "YMD", "data"
    dmy, mdy = votes
    if dmy != mdy:
        return ("DMY" if dmy > mdy else "MDY"), "data"
    # No vote (or a tie): the locale. Only the US renders d/m order month-first, with upper-case AM/PM.
    if shape.sep == "/" and first_ampm is not None and first_ampm[:1].isupper():
        return "MDY", "locale"
    return "DMY", "locale"


def _timeline(cands: Iterator[tuple[int, datetime, str, int]]
              ) -> Iterator[tuple[int, datetime, str, int, bool]]:
    """Rule 3 of the module docstring over a stream of (line, time, rest, dropped): each with True when it
    is a header. Looks ahead at most ``MAX_DIP`` + 1 candidates."""
    buf: deque[tuple[int, datetime, str, int]] = deque()

    def fill(k: int) -> bool:
        while len(buf) < k:
            nxt = next(cands, None)
            if nxt is None:
                return False
            buf.append(nxt)
        return True

    anchor: datetime | None = None
    while fill(1):
        t = buf[0][1]
        if anchor is None or t >= anchor - BACKWARD_SLACK:
            anchor = t if anchor is None or t > anchor else anchor
            yield (*buf.popleft(), True)
            continue
        floor = anchor - BACKWARD_SLACK
        j = 0
        while j <= MAX_DIP and fill(j + 1) and buf[j][1] < floor:
            j += 1
        if len(buf) > j and j <= MAX_DIP:
            for _ in range(j):
                yield (*buf.popleft(), False)
        else:  # the clock really went back: start again from here
            anchor = t
            yield (*buf.popleft(), True)


@dataclass
class _Plan:
    """What the first passes decided about the file."""

    shape: _Shape | None = None
    own: Callable[[str], re.Match[str] | None] | None = None
    raw_shapes: dict[tuple[object, ...], _Shape] = field(default_factory=dict)
    order: DateOrder = "DMY"
    order_source: DateOrderSource = "locale"
    other_line: int = -1  # 0-based line of the other_header_pattern issue
    chat_name: str | None = None
    authors: dict[str, None] = field(default_factory=dict)


def _raw_key(g: tuple[str | None, ...]) -> tuple[object, ...]:
    # Cheap stand-in for the shape (the raw AM/PM word, the day's width): mapped to shapes once per key.
    return (g[_BR], g[_SEP], g[_DSP], g[_DOT], g[_JOIN], g[_PRE], g[_TSEP], g[_S] is None, g[_AMPMG], g[_TERM],
            len(g[_A] or ""), len(g[_C] or ""))


def _plan_shape(lines: Lines, plan: _Plan) -> None:
    """Pass 1: the file's shape (rule 1)."""
    match = _HEADER.match
    raw_counts: dict[tuple[object, ...], int] = {}
    raw_first: dict[tuple[object, ...], tuple[int, int, tuple[str | None, ...]]] = {}  # (pos, line, groups)
    first_found: tuple[object, ...] | None = None
    first_found_line = first_text = -1
    pos = 0
    for i, (line, _) in enumerate(lines()):
        if first_text < 0 and not _is_blank(line):
            first_text = i
        m = match(line)
        if m is None:
            continue
        raw = _raw_key(m.groups())
        if raw not in raw_counts:
            raw_counts[raw] = 0
            raw_first[raw] = (pos, i, m.groups())
        raw_counts[raw] += 1
        if first_found is None:
            first_found, first_found_line = raw, i
        pos += 1
    if first_found is None:
        return
    counts: dict[_Shape, int] = {}
    first_seen: dict[_Shape, tuple[int, int]] = {}  # (pos, line) of the shape's first header-like line
    for raw, (p, i, g) in raw_first.items():
        plan.raw_shapes[raw] = s = _shape(g)
        counts[s] = counts.get(s, 0) + raw_counts[raw]
        first_seen[s] = min(first_seen.get(s, (p, i)), (p, i))
    majority = max(counts, key=lambda s: (counts[s], -first_seen[s][0]))
    # An export's first line is written by WhatsApp, never by a user: its shape is the file's.
    shape = plan.raw_shapes[first_found] if first_found_line == first_text else majority
    if counts[majority] > counts[shape]:
        # Not silent: more lines look like headers of another pattern than of the file's own.
        plan.other_line = first_seen[majority][1]
    plan.shape = shape
    plan.own = _shape_regex(shape).match


def _candidate(line: str, plan: _Plan) -> tuple[str | None, ...] | None:
    """The header groups of a line of the file's shape (rule 1), else None."""
    m = _HEADER.match(line)
    if m is None:
        return None
    g = m.groups()
    if plan.raw_shapes.get(_raw_key(g)) == plan.shape:
        return g
    assert plan.own is not None
    m = plan.own(line)
    return m.groups() if m is not None else None


def _plan_order(lines: Lines, plan: _Plan, order_arg: str | None) -> None:
    """Pass 2: day/month order over the whole file (rule 2)."""
    assert plan.shape is not None
    if order_arg is not None:
        plan.order, plan.order_source = _valid_order(order_arg), "caller"
        return
    if plan.shape.year_first:
        plan.order, plan.order_source = "YMD", "data"
        return
    dmy = mdy = 0
    first_ampm: str | None = None
    for line, _ in lines():
        g = _candidate(line, plan)
        if g is None:
            continue
        a, b = int(g[_A] or 0), int(g[_B] or 0)
        if a > 12 >= b:
            dmy += 1
        elif b > 12 >= a:
            mdy += 1
        if first_ampm is None and g[_AMPMG]:
            first_ampm = g[_AMPMG]
    plan.order, plan.order_source = _decide_order((dmy, mdy), first_ampm, plan.shape)


_MAX_NAMES = 10_000  # distinct system names / authors counted; a real chat has a handful


def _plan_names(lines: Lines, plan: _Plan, max_text: int | None) -> None:
    """Pass 3: the authors and the name iOS system lines are written under (the chat's name)."""
    names: Counter[str] = Counter()
    for entry in _build(lines, plan, max_text, keep_text=False):
        if isinstance(entry, tuple):
            msg, sys_name = entry
            if sys_name is not None and (sys_name in names or len(names) < _MAX_NAMES):
                names[sys_name] += 1
            if msg.author is not None and len(plan.authors) < _MAX_NAMES:
                plan.authors.setdefault(msg.author)
    if plan.chat_name is None and names:
        plan.chat_name = names.most_common(1)[0][0]


# Long by design (issue #11): one loop over the lines whose branches share the message being built; split, the
# state would travel through every call of the parser's hottest path.
def _build(lines: Lines, plan: _Plan, max_text: int | None, *, keep_text: bool = True
           ) -> Iterator[tuple[ExportMessage, str | None] | ExportIssue]:
    """Pass 4 (and 3): messages (with the name an iOS system line came under) and issues, in line order."""
    if plan.shape is None:  # no header at all: every non-blank line is unparsed
        for i, (line, _) in enumerate(lines()):
            fixed = _fix_surrogates(line, i)
            if isinstance(fixed, tuple):
                line = fixed[0]
                yield fixed[1]
            if not _is_blank(line):
                yield ExportIssue(i + 1, line, IssueReason.UNPARSED_LINE)
        return
    order = plan.order

    def candidates() -> Iterator[tuple[int, datetime, str, int]]:
        for i, (line, dropped) in enumerate(lines()):
            g = _candidate(line, plan)
            if g is not None:
                ts = _timestamp(g, order)
                if ts is not None:
                    yield i, ts, g[_REST] or "", dropped

    decisions = _timeline(candidates())
    # The message being built: header line, time, rest, continuation lines, blank lines held back, size.
    head: tuple[int, datetime, str] | None = None
    cont: list[str] = []
    blanks: list[str] = []
    blank_chars = 0
    last = 0
    size = 0
    seen_header = False

    def finish() -> tuple[ExportMessage, str | None]:
        assert head is not None
        i, ts, rest = head
        msg, sys_name = _message(i + 1, last, ts, rest, cont if keep_text else ([""] if last > i + 1 else []))
        if max_text is not None and size > max_text:
            msg = replace(msg, oversize=size)
        return msg, sys_name

    for i, (line, dropped) in enumerate(lines()):
        fixed = _fix_surrogates(line, i)
        if isinstance(fixed, tuple):
            line = fixed[0]
            yield fixed[1]
        if i == plan.other_line:
            yield ExportIssue(i + 1, line, IssueReason.OTHER_HEADER_PATTERN)
        g = _candidate(line, plan)
        if g is not None:
            ts = _timestamp(g, order)
            if ts is None:
                if seen_header:
                    yield ExportIssue(i + 1, line, IssueReason.IMPOSSIBLE_DATE)
            else:
                at, _, _, _, is_header = next(decisions)
                assert at == i, "the timeline reader went out of step"
                if is_header:
                    if head is not None:
                        yield finish()
                    rest = g[_REST] or ""
                    head, cont, blanks, blank_chars = (i, ts, rest), [], [], 0
                    last, size = i + 1, len(rest) + dropped
                    if max_text is not None and len(rest) > max_text:
                        head = (i, ts, rest[:max_text])
                    seen_header = True
                    continue
                yield ExportIssue(i + 1, line, IssueReason.HEADER_OUT_OF_ORDER)
        # A continuation line (or, before the first header, an unparsed one).
        if head is None:
            if not _is_blank(line):
                yield ExportIssue(i + 1, line, IssueReason.UNPARSED_LINE)
            continue
        if _is_blank(line):
            # Held back: blank lines at the end of a message are not part of it, blank lines inside are.
            blank_chars += len(line) + 1 + dropped
            if keep_text and (max_text is None or size + blank_chars <= max_text):
                blanks.append(line)
            continue
        size += blank_chars + len(line) + 1 + dropped
        if keep_text and (max_text is None or size <= max_text):
            cont.extend(blanks)
            cont.append(line)
        blanks, blank_chars = [], 0
        last = i + 1
    if head is not None:
        yield finish()


def _fix_surrogates(line: str, i: int) -> str | tuple[str, ExportIssue]:
    if _SURROGATES.search(line):
        line = _SURROGATES.sub("\ufffd", line)
        return line, ExportIssue(i + 1, line, IssueReason.UNDECODABLE_BYTES)
    return line


def _valid_order(order: str | None) -> DateOrder:
    if order == "MDY":
        return "MDY"
    if order == "YMD":
        return "YMD"
    return "DMY"


@dataclass(frozen=True)
class ExportStream:
    """An export read as a stream: the file-wide decisions up front, then ``entries()`` in line order.

    ``entries()`` can be iterated more than once; each time it reads the text again. Memory is bounded by
    one message and the limits, whatever the size of the file. ``authors`` are the distinct message authors
    in order of appearance (at most 10,000).
    """

    platform: Platform
    date_order: DateOrder
    chat_name: str | None
    date_order_source: DateOrderSource
    authors: tuple[str, ...]
    _entries: Callable[[], Iterator[ExportMessage | ExportIssue]]
    _close: Callable[[], None] = lambda: None

    def entries(self) -> Iterator[ExportMessage | ExportIssue]:
        return self._entries()

    def close(self) -> None:
        """Release the file the stream reads (a zip keeps one open between passes)."""
        self._close()


def _stream(lines: Lines, order_arg: str | None, chat_name: str | None, max_text: int | None,
            media: _Media | None, *, missing_media: bool = True) -> ExportStream:
    """``media`` None: a bare text, whose attachments are reported missing (unless not ``missing_media``:
    ``parse_text`` has no files to look in)."""
    if order_arg is not None and order_arg not in ("DMY", "MDY", "YMD"):
        raise ValueError(f"date_order must be 'DMY', 'MDY', 'YMD' or None, not {order_arg!r}")
    plan = _Plan(chat_name=chat_name)
    _plan_shape(lines, plan)
    if plan.shape is None:
        plan.order, plan.order_source = _valid_order(order_arg), "caller" if order_arg else "locale"
    else:
        _plan_order(lines, plan, order_arg)
    _plan_names(lines, plan, max_text)
    shape = plan.shape
    platform: Platform = "ios" if shape is not None and (shape.bracket or (shape.term != " - " and shape.seconds)) \
        else "android"
    final_name = plan.chat_name

    def entries() -> Iterator[ExportMessage | ExportIssue]:
        used: set[str] = set()
        for entry in _build(lines, plan, max_text):
            if isinstance(entry, ExportIssue):
                yield entry
                continue
            msg, sys_name = entry
            if sys_name is not None and sys_name != final_name:
                yield ExportIssue(msg.line, sys_name, IssueReason.SYSTEM_NAME_MISMATCH)
            if msg.oversize and max_text is not None:
                yield ExportIssue(msg.line, f"{msg.oversize} characters, over the limit {max_text}",
                                  IssueReason.MESSAGE_TOO_LONG)
            if msg.kind is MessageKind.ATTACHMENT and msg.attachment_name is not None:
                if media is not None:
                    msg, issue = media.attach(msg, used)
                    if issue is not None:
                        yield issue
                elif missing_media:
                    yield ExportIssue(msg.line, msg.attachment_name or "", IssueReason.MISSING_MEDIA)
            yield msg
        if media is not None:
            yield from media.unreferenced(used)

    return ExportStream(platform, plan.order, final_name, plan.order_source, tuple(plan.authors), entries)


_ISSUE_RANK = {r: k for k, r in enumerate([
    IssueReason.ZIP_REFUSED, IssueReason.UNREADABLE_ZIP, IssueReason.NO_CHAT_FILE, IssueReason.UNDECODABLE_BYTES,
    IssueReason.OTHER_HEADER_PATTERN, IssueReason.UNPARSED_LINE, IssueReason.HEADER_OUT_OF_ORDER,
    IssueReason.IMPOSSIBLE_DATE, IssueReason.SYSTEM_NAME_MISMATCH, IssueReason.MESSAGE_TOO_LONG,
    IssueReason.MISSING_MEDIA, IssueReason.UNREADABLE_MEDIA, IssueReason.MEDIA_TOO_LARGE,
    IssueReason.MEDIA_REFUSED, IssueReason.UNREFERENCED_MEDIA])}


def _collect(stream: ExportStream) -> ParsedExport:
    messages: list[ExportMessage] = []
    issues: list[ExportIssue] = []
    for entry in stream.entries():
        (messages if isinstance(entry, ExportMessage) else issues).append(entry)  # type: ignore[arg-type]
    issues.sort(key=lambda x: (x.line, _ISSUE_RANK[x.reason]))
    return ParsedExport(messages, issues, stream.platform, stream.date_order, stream.chat_name,
                        stream.date_order_source)


def parse_text(text: str, *, date_order: str | None = None) -> ParsedExport:
    """Parse the text of an export. ``date_order`` ("DMY", "MDY", "YMD") overrides the file's own evidence.

    Never raises on any text; raises ``ValueError`` only for a ``date_order`` outside those three.
    """
    return _collect(_stream(_text_lines(text, None), date_order, None, None, None, missing_media=False))


# --- bytes and zips ----------------------------------------------------------------------------------

_CHAT_FILE_NAME = re.compile(
    r"(?:WhatsApp[ -]Chat (?:with|mit|met|con|com|avec|s|-)|Discussion WhatsApp avec|Chat de WhatsApp con"
    r"|Conversa do WhatsApp com|WhatsApp-keskustelu(?: ryhmässä)?:?|WhatsApp razgovor s) (?P<name>.+)",
    re.IGNORECASE,
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_JUNK_MEMBERS = ("__MACOSX/", ".DS_Store")


def _chat_name_from(filename: str) -> str | None:
    stem = PurePosixPath(filename.replace("\\", "/")).name
    if stem.lower().endswith((".txt", ".zip")):
        stem = stem[:-4]
    m = _CHAT_FILE_NAME.fullmatch(stem.strip())
    return m["name"].strip() if m else None


def _mark_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    # Like "surrogateescape", but for any codec and any byte value (UTF-16 errors include bytes < 0x80).
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


# A codec error handler can only be passed by name, so it is registered once; it is a pure function.
_BAD_BYTES = "tenantry.whatsapp.mark-bad-bytes"
codecs.register_error(_BAD_BYTES, _mark_bad_bytes)


def _encoding(head: bytes) -> tuple[str, int]:
    """The codec of an export from its first bytes, and how many bytes of BOM to skip."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le", 2
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be", 2
    sample = head[:4096]
    if b"\x00" in sample:
        # UTF-8 text has no NUL bytes; UTF-16 without a BOM has them on one side of each code unit.
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd >= 4 * max(even, 1):
            return "utf-16-le", 0
        if even >= 4 * max(odd, 1):
            return "utf-16-be", 0
    return "utf-8", 0


def _decode(data: bytes) -> str:
    """Text with undecodable bytes kept as lone surrogates, which the parser reports line by line."""
    codec, skip = _encoding(data[:4096])
    return data[skip:].decode(codec, _BAD_BYTES)


def _byte_lines(open_bytes: Callable[[], IO[bytes]], max_line: int | None) -> Lines:
    """Lines of an export's bytes, decoded as they are read: ``open_bytes`` gives a fresh stream per pass."""
    with open_bytes() as probe:
        codec, skip = _encoding(probe.read(4096))

    def lines() -> Iterator[Line]:
        raw = open_bytes()
        if skip:
            raw.read(skip)
        text = io.TextIOWrapper(raw, codec, errors=_BAD_BYTES, newline=None)
        return _read_lines(text, max_line, strip_bom=True)
    return lines


def _chat_rank(info: zipfile.ZipInfo) -> int:
    """Lower is likelier the chat text: iOS's _chat.txt, then Android's "WhatsApp Chat with X.txt"."""
    base = PurePosixPath(info.filename).name
    if base == "_chat.txt":
        return 0
    if base.lower().startswith(("whatsapp", "discussion whatsapp", "chat de whatsapp", "conversa do whatsapp")):
        return 1
    return 2 if "/" not in info.filename else 3


def _pick_chat(infos: list[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    texts = [i for i in infos if i.filename.lower().endswith(".txt") and not i.filename.startswith("__MACOSX/")]
    return min(texts, key=_chat_rank) if texts else None


def _media_key(name: str) -> str:
    return unicodedata.normalize("NFC", PurePosixPath(name.replace("\\", "/")).name).casefold()


class _Media:
    """The zip's media files, read one at a time when a message names them (never all at once)."""

    def __init__(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], chat: zipfile.ZipInfo,
                 limits: ExportLimits) -> None:
        self.zf, self.limits, self.inflated = zf, limits, 0
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info is chat or info.is_dir() or info.filename.startswith(_JUNK_MEMBERS[0]):
                continue
            if PurePosixPath(info.filename).name == _JUNK_MEMBERS[1]:
                continue
            self.members.setdefault(_media_key(info.filename), info)

    def attach(self, msg: ExportMessage, used: set[str]) -> tuple[ExportMessage, ExportIssue | None]:
        name = msg.attachment_name or ""
        key = _media_key(name)
        member = self.members.get(key)
        if member is None:
            return msg, ExportIssue(msg.line, name, IssueReason.MISSING_MEDIA)
        used.add(key)
        lim = self.limits
        msg = replace(msg, attachment_size=member.file_size)
        if lim.max_media_bytes is not None and member.file_size > lim.max_media_bytes:
            return msg, ExportIssue(msg.line, f"{member.filename}: {member.file_size} bytes, over the "
                                    f"{lim.max_media_bytes}-byte item limit; not read", IssueReason.MEDIA_TOO_LARGE)
        refusal = _ratio_refusal(member, lim)
        if refusal is None and self.inflated + member.file_size > lim.max_total_bytes:
            refusal = f"{member.filename}: the export's media pass the {lim.max_total_bytes}-byte total limit"
        if refusal is not None:
            return msg, ExportIssue(msg.line, refusal + "; not read", IssueReason.MEDIA_REFUSED)
        capped: _Capped | None = None
        try:
            capped = _Capped(self.zf.open(member), _member_cap(member, lim), member.filename)
            with capped:
                data = capped.read()
        except LimitExceeded as exc:
            self.inflated += capped.count if capped is not None else 0
            return msg, ExportIssue(msg.line, f"{exc}; not kept", IssueReason.MEDIA_REFUSED)
        except Exception:  # noqa: BLE001 - a corrupt, encrypted or odd member is reported, not raised
            return msg, ExportIssue(msg.line, name, IssueReason.UNREADABLE_MEDIA)
        self.inflated += len(data)
        return replace(msg, attachment_data=data, attachment_size=len(data)), None

    def unreferenced(self, used: set[str]) -> Iterator[ExportIssue]:
        for key, info in self.members.items():
            if key not in used:
                yield ExportIssue(0, info.filename, IssueReason.UNREFERENCED_MEDIA)


def _nothing(issue: ExportIssue, chat_name: str | None) -> ExportStream:
    def entries() -> Iterator[ExportMessage | ExportIssue]:
        yield issue
    return ExportStream("android", "DMY", chat_name, "locale", (), entries)


def open_export(open_bytes: Callable[[], IO[bytes]], filename: str | None = None,
                limits: ExportLimits | None = None) -> ExportStream:
    """Read an export as uploaded (the ``.txt`` — UTF-8 with or without BOM, or UTF-16 — or the ``.zip``) as a
    stream: ``open_bytes`` gives a fresh seekable binary stream of the file each time it is called (the text
    is read in several passes). Memory stays bounded by ``limits`` whatever the file holds; what a limit
    refuses is an issue (``zip_refused``, ``media_too_large``, ``media_refused``, ``message_too_long``).

    Never raises on any content (``OSError`` from ``open_bytes`` itself is the caller's).
    """
    limits = limits or ExportLimits()
    name = filename or ""
    with open_bytes() as probe:
        is_zip_magic = probe.read(4) in _ZIP_MAGIC
    if is_zip_magic or name.lower().endswith(".zip"):
        stream = _open_zip(open_bytes, name, limits, is_zip_magic)
        if stream is not None:
            return stream
    return _stream(_byte_lines(open_bytes, limits.max_text_chars), None, _chat_name_from(name),
                   limits.max_text_chars, None)


def _open_zip(open_bytes: Callable[[], IO[bytes]], name: str, limits: ExportLimits,
              is_zip_magic: bool) -> ExportStream | None:
    def unreadable(exc: Exception, what: str) -> ExportStream:
        return _nothing(ExportIssue(0, f"{what}: {exc.__class__.__name__}: {exc}", IssueReason.UNREADABLE_ZIP),
                        _chat_name_from(name))

    try:
        with open_bytes() as fp:
            members = count_zip_members(fp, limits.max_members)
            fp.seek(0)
            infos = zipfile.ZipFile(fp).infolist() if members <= limits.max_members else []
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types on hostile input
        return unreadable(exc, name) if is_zip_magic else None
    if members > limits.max_members:
        return _nothing(ExportIssue(0, f"{name}: more than {limits.max_members} members",
                                    IssueReason.ZIP_REFUSED), _chat_name_from(name))
    refusal = _zip_headers_refusal(infos, limits)
    if refusal is not None:
        return _nothing(ExportIssue(0, f"{name}: {refusal}", IssueReason.ZIP_REFUSED), _chat_name_from(name))
    chat = _pick_chat([i for i in infos if not i.is_dir()])
    if chat is None:
        listing = ", ".join(i.filename for i in infos) or "(empty)"
        return _nothing(ExportIssue(0, f"{name}: {listing}", IssueReason.NO_CHAT_FILE), _chat_name_from(name))
    fp = open_bytes()
    try:
        zf = zipfile.ZipFile(fp)
    except Exception as exc:  # noqa: BLE001 - it opened a moment ago; a file changed under us is reported
        fp.close()
        return unreadable(exc, name)
    chat_info = zf.getinfo(chat.filename) if chat.filename in zf.NameToInfo else chat

    def member() -> IO[bytes]:
        return io.BufferedReader(_Capped(zf.open(chat_info), _member_cap(chat_info, limits), chat_info.filename))

    chat_name = _chat_name_from(chat.filename) or _chat_name_from(name)
    try:
        stream = _stream(_byte_lines(member, limits.max_text_chars), None, chat_name, limits.max_text_chars,
                         _Media(zf, zf.infolist(), chat_info, limits))
    except LimitExceeded as exc:
        zf.close()
        fp.close()
        return _nothing(ExportIssue(0, f"{name}: {exc}", IssueReason.ZIP_REFUSED), chat_name)
    except Exception as exc:  # noqa: BLE001 - see read_export
        zf.close()
        fp.close()
        return unreadable(exc, chat.filename)
    inner = stream.entries

    def entries() -> Iterator[ExportMessage | ExportIssue]:
        try:
            yield from inner()
        except Exception as exc:  # noqa: BLE001 - a read that worked in the first passes fails now
            yield ExportIssue(0, f"{name}: {exc.__class__.__name__}: {exc}", IssueReason.UNREADABLE_ZIP)

    def close() -> None:
        zf.close()
        fp.close()

    return replace(stream, _entries=entries, _close=close)


def read_export(data: bytes, filename: str | None = None, limits: ExportLimits | None = None) -> ParsedExport:
    """Parse an export held in memory (see :func:`open_export`, which reads a file as a stream).

    With a zip, each attachment carries its file's bytes; an attachment whose file is missing (always so
    for a bare ``.txt``) is returned without bytes and reported. Never raises.
    """
    stream = open_export(lambda: io.BytesIO(data), filename, limits)
    try:
        return _collect(stream)
    finally:
        stream.close()
