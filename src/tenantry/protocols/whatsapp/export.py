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
name, whose name becomes ``chat_name``), and text. An ``<This message was edited>`` suffix sets
``edited`` and is removed from the text.

Speed, measured for ``parse_text`` on one core of the development machine (CPython 3.11.7), best of three
over a synthetic 200,000-line export with multi-line, media, attachment and system messages: about
150,000 lines/s (≈ 107,000 messages/s) for the Android shape, 140,000 lines/s (≈ 100,000 messages/s) for
the iOS shape. Every expression is linear in the line length (no backtracking search over user text).
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Literal, NamedTuple

from tenantry.protocols.whatsapp.locales import LOCALES, casefold_set, system_pattern

__all__ = [
    "BACKWARD_SLACK",
    "MAX_DIP",
    "DateOrder",
    "DateOrderSource",
    "ExportIssue",
    "ExportMessage",
    "IssueReason",
    "MessageKind",
    "ParsedExport",
    "Platform",
    "parse_text",
    "read_export",
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
    return ExportMessage(line, ts, author, text, kind, attachment_name, None, edited, last_line), system_name


# --- the file ----------------------------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _is_blank(line: str) -> bool:
    return not line.strip()


def _decide_order(cands: list[tuple[int, tuple[str | None, ...]]], shape: _Shape
                  ) -> tuple[DateOrder, DateOrderSource]:
    if shape.year_first:
        return "YMD", "data"
    dmy = mdy = 0
    for _, g in cands:
        a, b = int(g[_A] or 0), int(g[_B] or 0)
        if a > 12 >= b:
            dmy += 1
        elif b > 12 >= a:
            mdy += 1
    if dmy != mdy:
        return ("DMY" if dmy > mdy else "MDY"), "data"
    # No vote (or a tie): the locale. Only the US renders d/m order month-first, with upper-case AM/PM.
    ampm = next((g[_AMPMG] for _, g in cands if g[_AMPMG]), None)
    if shape.sep == "/" and ampm is not None and ampm[:1].isupper():
        return "MDY", "locale"
    return "DMY", "locale"


def _accept_in_time(stamps: list[datetime]) -> list[bool]:
    """Which candidates are headers under rule 3 of the module docstring."""
    n = len(stamps)
    keep = [True] * n
    anchor: datetime | None = None
    i = 0
    while i < n:
        t = stamps[i]
        if anchor is None or t >= anchor - BACKWARD_SLACK:
            anchor = t if anchor is None or t > anchor else anchor
            i += 1
            continue
        floor = anchor - BACKWARD_SLACK
        j = i
        while j < n and j - i <= MAX_DIP and stamps[j] < floor:
            j += 1
        if j < n and j - i <= MAX_DIP:
            for k in range(i, j):
                keep[k] = False
            i = j
        else:  # the clock really went back: start again from here
            anchor = t
            i += 1
    return keep


def _parse(text: str, order_arg: str | None, chat_name: str | None) -> ParsedExport:
    if order_arg is not None and order_arg not in ("DMY", "MDY", "YMD"):
        raise ValueError(f"date_order must be 'DMY', 'MDY', 'YMD' or None, not {order_arg!r}")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    issues: list[ExportIssue] = []
    if _SURROGATES.search(text):
        for i, line in enumerate(lines):
            if _SURROGATES.search(line):
                lines[i] = line = _SURROGATES.sub("\ufffd", line)
                issues.append(ExportIssue(i + 1, line, IssueReason.UNDECODABLE_BYTES))

    # Pass 1: every line that looks like a header, and the file's shape.
    match = _HEADER.match
    found: list[tuple[int, tuple[str | None, ...], tuple[object, ...]]] = []
    raw_counts: dict[tuple[object, ...], int] = {}
    for i, line in enumerate(lines):
        m = match(line)
        if m is not None:
            g = m.groups()
            # Cheap stand-in for the shape (the raw AM/PM word, the day's width): mapped to shapes below.
            raw: tuple[object, ...] = (g[_BR], g[_SEP], g[_DSP], g[_DOT], g[_JOIN], g[_PRE], g[_TSEP],
                                       g[_S] is None, g[_AMPMG], g[_TERM], len(g[_A] or ""), len(g[_C] or ""))
            raw_counts[raw] = raw_counts.get(raw, 0) + 1
            found.append((i, g, raw))
    if not found:
        for i, line in enumerate(lines):
            if not _is_blank(line):
                issues.append(ExportIssue(i + 1, line, IssueReason.UNPARSED_LINE))
        issues.sort(key=lambda x: x.line)
        return ParsedExport([], issues, "android", _valid_order(order_arg), chat_name,
                            "caller" if order_arg else "locale")
    shape_of: dict[tuple[object, ...], _Shape] = {}
    counts: dict[_Shape, int] = {}
    first_seen: dict[_Shape, int] = {}
    for pos, (_, g, raw_key) in enumerate(found):
        if raw_key not in shape_of:
            shape_of[raw_key] = s = _shape(g)
            counts[s] = counts.get(s, 0) + raw_counts[raw_key]
            first_seen.setdefault(s, pos)
    first_text = next((i for i, line in enumerate(lines) if not _is_blank(line)), -1)
    majority = max(counts, key=lambda s: (counts[s], -first_seen[s]))
    # An export's first line is written by WhatsApp, never by a user: its shape is the file's.
    shape = shape_of[found[0][2]] if found[0][0] == first_text else majority
    if counts[majority] > counts[shape]:
        # Not silent: more lines look like headers of another pattern than of the file's own.
        i = next(i for i, _, raw_key in found if shape_of[raw_key] == majority)
        issues.append(ExportIssue(i + 1, lines[i], IssueReason.OTHER_HEADER_PATTERN))
    own = _shape_regex(shape).match
    cands: list[tuple[int, tuple[str | None, ...]]] = []
    for i, g, raw_key in found:
        if shape_of[raw_key] == shape:
            cands.append((i, g))
        else:
            m = own(lines[i])
            if m is not None:
                cands.append((i, m.groups()))

    # Pass 2: day/month order over the whole file, then timestamps and the timeline.
    if order_arg is not None:
        order: DateOrder = _valid_order(order_arg)
        source: DateOrderSource = "caller"
    else:
        order, source = _decide_order(cands, shape)
    valid: list[tuple[int, datetime, str]] = []
    impossible: list[int] = []
    for i, g in cands:
        ts = _timestamp(g, order)
        if ts is None:
            impossible.append(i)
        else:
            valid.append((i, ts, g[_REST] or ""))
    keep = _accept_in_time([ts for _, ts, _ in valid])
    headers = [h for h, ok in zip(valid, keep, strict=True) if ok]
    dipped = [h[0] for h, ok in zip(valid, keep, strict=True) if not ok]

    # Pass 3: messages, each a header and the lines up to the next one.
    messages: list[ExportMessage] = []
    system_names: list[tuple[int, str]] = []
    first_header = headers[0][0] if headers else len(lines)
    for i in range(first_header):
        if not _is_blank(lines[i]):
            issues.append(ExportIssue(i + 1, lines[i], IssueReason.UNPARSED_LINE))
    for k, (i, ts, rest) in enumerate(headers):
        end = headers[k + 1][0] if k + 1 < len(headers) else len(lines)
        while end > i + 1 and _is_blank(lines[end - 1]):
            end -= 1
        msg, sys_name = _message(i + 1, end, ts, rest, lines[i + 1 : end])
        messages.append(msg)
        if sys_name is not None:
            system_names.append((i + 1, sys_name))
    issues.extend(ExportIssue(i + 1, lines[i], IssueReason.HEADER_OUT_OF_ORDER) for i in dipped)
    issues.extend(ExportIssue(i + 1, lines[i], IssueReason.IMPOSSIBLE_DATE) for i in impossible if i > first_header)

    if chat_name is None and system_names:
        chat_name = Counter(n for _, n in system_names).most_common(1)[0][0]
    for line_no, name in system_names:
        if name != chat_name:
            issues.append(ExportIssue(line_no, name, IssueReason.SYSTEM_NAME_MISMATCH))
    issues.sort(key=lambda x: x.line)
    platform: Platform = "ios" if shape.bracket or (shape.term != " - " and shape.seconds) else "android"
    return ParsedExport(messages, issues, platform, order, chat_name, source)


def _valid_order(order: str | None) -> DateOrder:
    if order == "MDY":
        return "MDY"
    if order == "YMD":
        return "YMD"
    return "DMY"


def parse_text(text: str, *, date_order: str | None = None) -> ParsedExport:
    """Parse the text of an export. ``date_order`` ("DMY", "MDY", "YMD") overrides the file's own evidence.

    Never raises on any text; raises ``ValueError`` only for a ``date_order`` outside those three.
    """
    return _parse(text, date_order, None)


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


def _decode(data: bytes) -> str:
    """Text with undecodable bytes kept as lone surrogates, which ``_parse`` reports line by line."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", _BAD_BYTES)
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", _BAD_BYTES)
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", _BAD_BYTES)
    sample = data[:4096]
    if b"\x00" in sample:
        # UTF-8 text has no NUL bytes; UTF-16 without a BOM has them on one side of each code unit.
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd >= 4 * max(even, 1):
            return data.decode("utf-16-le", _BAD_BYTES)
        if even >= 4 * max(odd, 1):
            return data.decode("utf-16-be", _BAD_BYTES)
    return data.decode("utf-8", _BAD_BYTES)


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


def _with_media(parsed: ParsedExport, zf: zipfile.ZipFile | None, chat: zipfile.ZipInfo | None) -> ParsedExport:
    members: dict[str, zipfile.ZipInfo] = {}
    if zf is not None:
        for info in zf.infolist():
            if info is chat or info.is_dir() or info.filename.startswith(_JUNK_MEMBERS[0]):
                continue
            if PurePosixPath(info.filename).name == _JUNK_MEMBERS[1]:
                continue
            members.setdefault(_media_key(info.filename), info)
    issues = list(parsed.issues)
    used: set[str] = set()
    cache: dict[str, bytes | None] = {}
    messages: list[ExportMessage] = []
    for msg in parsed.messages:
        if msg.kind is not MessageKind.ATTACHMENT or msg.attachment_name is None:
            messages.append(msg)
            continue
        key = _media_key(msg.attachment_name)
        member = members.get(key)
        if zf is None or member is None:
            issues.append(ExportIssue(msg.line, msg.attachment_name, IssueReason.MISSING_MEDIA))
            messages.append(msg)
            continue
        used.add(key)
        if key not in cache:
            try:
                cache[key] = zf.read(member)
            except Exception:  # noqa: BLE001 - a corrupt, encrypted or odd member is reported, not raised
                cache[key] = None
        data = cache[key]
        if data is None:
            issues.append(ExportIssue(msg.line, msg.attachment_name, IssueReason.UNREADABLE_MEDIA))
            messages.append(msg)
        else:
            messages.append(replace(msg, attachment_data=data))
    for key, info in members.items():
        if key not in used:
            issues.append(ExportIssue(0, info.filename, IssueReason.UNREFERENCED_MEDIA))
    issues.sort(key=lambda x: x.line)
    return replace(parsed, messages=messages, issues=issues)


def _nothing(issue: ExportIssue, chat_name: str | None) -> ParsedExport:
    return ParsedExport([], [issue], "android", "DMY", chat_name, "locale")


def read_export(data: bytes, filename: str | None = None) -> ParsedExport:
    """Parse an export as uploaded: the ``.txt`` (UTF-8 with or without BOM, or UTF-16) or the ``.zip``.

    With a zip, each attachment carries its file's bytes; an attachment whose file is missing (always so
    for a bare ``.txt``) is returned without bytes and reported. Never raises.
    """
    name = filename or ""
    is_zip_magic = data[:4] in _ZIP_MAGIC
    if is_zip_magic or name.lower().endswith(".zip"):
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            infos = zf.infolist()
        except Exception as exc:  # noqa: BLE001 - zipfile raises many types on hostile input
            if is_zip_magic:
                return _nothing(ExportIssue(0, f"{name}: {exc.__class__.__name__}: {exc}",
                                            IssueReason.UNREADABLE_ZIP), _chat_name_from(name))
        else:
            return _read_zip(zf, infos, name)
    parsed = _parse(_decode(data), None, _chat_name_from(name))
    return _with_media(parsed, None, None)


def _read_zip(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], name: str) -> ParsedExport:
    chat = _pick_chat([i for i in infos if not i.is_dir()])
    if chat is None:
        listing = ", ".join(i.filename for i in infos) or "(empty)"
        return _nothing(ExportIssue(0, f"{name}: {listing}", IssueReason.NO_CHAT_FILE), _chat_name_from(name))
    try:
        raw = zf.read(chat)
    except Exception as exc:  # noqa: BLE001 - see read_export
        return _nothing(ExportIssue(0, f"{chat.filename}: {exc.__class__.__name__}: {exc}",
                                    IssueReason.UNREADABLE_ZIP), _chat_name_from(name))
    chat_name = _chat_name_from(chat.filename) or _chat_name_from(name)
    parsed = _parse(_decode(raw), None, chat_name)
    try:
        return _with_media(parsed, zf, chat)
    except Exception as exc:  # noqa: BLE001 - the member list itself is unreadable
        issue = ExportIssue(0, f"{name}: {exc.__class__.__name__}: {exc}", IssueReason.UNREADABLE_ZIP)
        return replace(parsed, issues=[*parsed.issues, issue])
