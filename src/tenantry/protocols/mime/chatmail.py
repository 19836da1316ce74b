"""Render one archived chat item as an RFC 5322 / MIME message, deterministically and fast.

The bytes are assembled directly from small, cached pieces instead of going through
``email.message.EmailMessage`` with ``policy.SMTP`` (about 1.3 ms a message here, most of it header
parsing); ``bench/mime_bench.py`` compares both. Every rule below cites the section it comes from.

Wire format
-----------
* 7-bit US-ASCII with CRLF line ends only; folded lines are at most 76 characters (RFC 5322 §2.1.1:
  "MUST be no more than 998 characters, and SHOULD be no more than 78"; RFC 2047 §2: a line carrying an
  encoded-word "is limited to 76 characters"), and no line is ever over 998.
* Non-ASCII display names, subjects and extra header values become RFC 2047 encoded-words in UTF-8,
  each at most 75 characters (RFC 2047 §2), Q or B, whichever is shorter (as the stdlib chooses).
  Unstructured values (Subject, X-*) round-trip exactly, whitespace and control characters included.
* Display names are RFC 5322 phrases, and are normalised in one way: a space, tab, CR or LF and any
  white space after it become one space. Python's parser refuses CR/LF in a name and folds such runs
  inside the encoded-words of a phrase into one space, so no encoding could keep them. A name that
  needs more than one encoded-word (over about 40 UTF-8 bytes) is split as RFC 2047 requires; Python
  3.11's parser then shows a space at each split (CPython gh-128110, fixed upstream: RFC 2047 §6.2 "any
  'linear-white-space' that separates a pair of adjacent 'encoded-word's is ignored" was not applied
  to phrases). Shorter names round-trip exactly.
* Date is RFC 5322 §3.3 in +0000, seconds precision. Message-ID, and for a reply within a chat thread
  In-Reply-To and References naming the thread root (§3.6.4), which threading clients (JWZ-style
  threading) group a conversation on. No Thread-Topic: it is a Microsoft header that Outlook
  only uses together with a binary Thread-Index; callers may still add it through ``headers``.

Body encoding (text/plain; charset=utf-8)
-----------------------------------------
The archive must give back the exact text (SEC 17a-4(f): the original can be recreated), so the body's
line breaks are kept as they are: ``get_content()`` of the parsed message returns the same string. A
CRLF in the text is a hard line break on the wire; a bare LF is sent as ``=0A`` and a bare CR as
``=0D`` (Python's parser and Dovecot both return a hard break as CRLF). RFC 2046 §4.1.1 wants text in
canonical CRLF form; a bare LF or CR is the source's own content and is kept rather than rewritten.

* 7bit only when the text is already safe on the wire as it stands: empty, or printable ASCII lines of
  at most 76 characters, each ended by CRLF, without trailing white space, none starting with "From "
  (mbox writers would rewrite it) or being a lone "." (SMTP).
* Otherwise quoted-printable or base64, whichever is shorter, judged from the count of bytes QP must
  escape (line breaks not counted: QP keeps each source line on its own, readable wire line).
  Measured with ``bench/mime_bench.py --encodings`` on chat sentences: QP is 1.04x the UTF-8 size for
  English, 1.18-1.32x for German, French, Spanish (and stays readable and grep-able in the raw
  message), base64 1.40x; for Russian, Greek, Arabic, Hebrew, Chinese, Japanese, Korean and emoji QP
  is 2.8-3.2x and base64 1.37-1.41x. Cost per body: a short plain ASCII line takes a fast path
  (0.2 us); otherwise QP 2-6 us, base64 0.6 us for ~100 bytes, well inside the budget of a message.
  QP lines never start with "From " or consist of ".", and are at most 76 characters (RFC 2045 §6.7).
* QP always ends with a line break (a soft ``=`` break if the text has none), so SMTP, mbox or IMAP
  servers that add a final CRLF do not change the content.

Attachments: multipart/mixed, text part first, each attachment base64 (RFC 2045 §6.8, 76-character
lines) with ``Content-Disposition: attachment`` (RFC 2183) and the filename as a quoted-string, or RFC
2231 ``filename*`` (with continuations) when it is non-ASCII, long or holds quotes, backslashes or
controls. The boundary is ``=_`` plus a SHA-256 of the content: "=_" cannot occur in QP or base64 text
(RFC 2046 §5.1.1: the boundary "MUST NOT appear inside any of the encapsulated parts"), the same item
always gets the same boundary, and a message attached to another gets a different one.

Caching: display names, addresses and header values repeat across a chat, so their encoded forms are
memoised (bounded ``lru_cache`` of pure functions; the output never depends on the cache state).

Errors: ``ValueError`` for input that cannot be rendered correctly (a naive date, an invalid address
or Message-ID, a header that would duplicate one this module writes, a multipart/* or message/*
attachment type, which RFC 2045 §6.4 forbids to base64-encode).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote

__all__ = ["Address", "ChatMail", "Part", "message_id_for", "render"]


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: optional display name and an RFC 5321 address (``+4917012345@whatsapp.example``)."""

    name: str | None
    addr: str


@dataclass(frozen=True, slots=True)
class Part:
    """An attachment: its filename, its ``type/subtype`` (parameters allowed) and its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ChatMail:
    """One chat item as an e-mail message; ``render`` turns it into bytes."""

    message_id: str
    date: datetime
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    subject: str = ""
    body: str = ""
    thread_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    parts: tuple[Part, ...] = ()


# Lines we fold ourselves stay within 76 characters: RFC 2047 §2 for lines with encoded-words, and
# inside RFC 5322's 78 for everything else. 998 is the hard limit of RFC 5322 §2.1.1.
_WIDTH = 76
_HARD_LIMIT = 998
_EW_MAX = 75  # RFC 2047 §2: "An 'encoded-word' may not be more than 75 characters long"
# Display-name words are cached apart from the field they land in; 70 keeps "From: " + a word within 76.
_PHRASE_WORD_MAX = _WIDTH - len("From: ")

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_DOT_ATOM_RE = re.compile(_DOT_ATOM)
# RFC 5322 §3.6.4 msg-id without the angle brackets: id-left "@" id-right.
_MSG_ID_RE = re.compile(rf"{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[\x21-\x5a\x5e-\x7e]*\])")
# RFC 5321 §4.1.2 Mailbox: Local-part (Dot-string / Quoted-string) "@" (Domain / address-literal).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDR_RE = re.compile(
    rf'(?:{_DOT_ATOM}|"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*")'
    rf"@(?:{_LABEL}(?:\.{_LABEL})*|\[[\x21-\x5a\x5e-\x7e]+\])"
)
_FIELD_NAME_RE = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 §3.6.8 ftext
_TOKEN = r"[!#$%&'*+.^_`{|}~0-9A-Za-z-]+"  # RFC 2045 §5.1 token
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_CONTENT_TYPE_RE = re.compile(rf"({_TOKEN}/{_TOKEN})((?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*)[ \t]*")
_PARAM_RE = re.compile(rf"({_TOKEN})=({_TOKEN}|{_QUOTED})")

# Fields this module writes; an extra header with one of these names would duplicate or contradict it.
# Extra headers are RFC 5322 §3.6.8 optional fields with unstructured values.
_RESERVED = frozenset(
    {"from", "sender", "reply-to", "to", "cc", "bcc", "date", "message-id", "in-reply-to", "references",
     "subject", "keywords", "mime-version", "return-path", "received"}
)
_RESERVED_PREFIXES = ("content-", "resent-")

# A display name sent as plain atoms ("Kim Lee"); "=?" is excluded because the text would read as an
# encoded-word (RFC 2047 §6.1), also inside quotes for Python's parser.
_PLAIN_PHRASE_RE = re.compile(rf"{_ATEXT}{{1,60}}(?: {_ATEXT}{{1,60}})*")
_QUOTABLE_RE = re.compile(r"[\x20-\x7e]{1,60}")
# A run that starts with SPACE, TAB, CR or LF, with any white space after it (Python's parser folds a
# phrase's space plus following Unicode white space into one space).
_NAME_WS_RE = re.compile(r"[ \t\r\n]\s*")
# Unstructured text sent as is: printable ASCII and WSP, no leading/trailing WSP (parsers strip it).
_RAW_TEXT_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?")
_RAW_PIECE_RE = re.compile(r"[ \t]*[^ \t]+")

# RFC 2047 §5 (3): in a phrase, Q may leave only letters, digits and "!*+-/" unencoded. We use that
# set everywhere, which is also valid in unstructured text.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_TABLE = {i: "_" if i == 0x20 else (chr(i) if i in _Q_SAFE else f"={i:02X}") for i in range(256)}
_Q_ESCAPED_BYTES = bytes(i for i in range(256) if i not in _Q_SAFE and i != 0x20)

# RFC 2045 §6.7: QP leaves printable ASCII except "=" (and SPACE/TAB not at a line end) as it is.
_QP_SAFE = frozenset(range(0x21, 0x7F)) - {0x3D} | {0x20, 0x09}
_QP_TABLE = {i: f"={i:02X}" for i in range(256) if i not in _QP_SAFE}
_QP_ESCAPED_BYTES = bytes(i for i in range(256) if i not in _QP_SAFE)
# Body text that is safe as 7bit as it stands (see the module docstring).
_SEVEN_BIT_RE = re.compile(
    r"(?:(?!From |\.\r\n)(?:[\x21-\x7e](?:[\x20-\x7e\t]{0,74}[\x21-\x7e])?)?\r\n)*"
)

# RFC 2231 §7 attribute-char: CHAR except SPACE, CTLs, "*", "'", "%" and tspecials.
_ATTR_SAFE = "!#$&+-.^_`|~"
_FILENAME_QUOTED_RE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{0,50}")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def message_id_for(*key_parts: str, domain: str = "archive.tenantry") -> str:
    """A stable Message-ID (without angle brackets) for an item identified by ``key_parts``.

    The same parts always give the same id, so re-importing an item is idempotent. The parts are
    length-prefixed before hashing, so ("ab", "c") and ("a", "bc") differ. 160 bits of SHA-256 in hex
    keep ``In-Reply-To: <id>`` within 76 characters for the default domain.
    """
    if not key_parts:
        raise ValueError("message_id_for needs at least one key part")
    if not _DOT_ATOM_RE.fullmatch(domain):
        raise ValueError(f"domain {domain!r} is not an RFC 5322 dot-atom")
    digest = hashlib.sha256()
    for part in key_parts:
        data = part.encode("utf-8")
        digest.update(b"%d:" % len(data))
        digest.update(data)
        digest.update(b",")
    return f"{digest.hexdigest()[:40]}@{domain}"


def render(mail: ChatMail) -> bytes:
    """The message as RFC 5322 bytes: CRLF line ends, 7-bit, identical for identical input."""
    message_id = _check_msg_id(mail.message_id, "message_id")
    lines = [_date_line(mail.date), _address_line("From", (mail.sender,))]
    if mail.to:
        lines.append(_address_line("To", mail.to))
    if mail.cc:
        lines.append(_address_line("Cc", mail.cc))
    if mail.subject:
        lines.append(_unstructured_line("Subject", mail.subject))
    lines.append(f"Message-ID: <{message_id}>\r\n")
    thread_id = mail.thread_id
    if thread_id is not None and thread_id != message_id:
        root = _check_msg_id(thread_id, "thread_id")
        lines.append(f"In-Reply-To: <{root}>\r\nReferences: <{root}>\r\n")
    for name, value in mail.headers:
        lines.append(_extra_line(name, value))
    lines.append("MIME-Version: 1.0\r\n")
    cte, body = _encode_body(mail.body)
    if not mail.parts:
        lines.append(f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
        lines.append(body)
        return "".join(lines).encode("ascii")

    boundary = _boundary(mail)
    if cte == "7bit" and boundary in body:  # only 7bit text could contain "=_"; keep the MUST anyway
        cte, body = "quoted-printable", _qp(mail.body.encode("utf-8"))
    delimiter = f"\r\n--{boundary}\r\n"
    lines.append(f'Content-Type: multipart/mixed;\r\n boundary="{boundary}"\r\n\r\n--{boundary}\r\n')
    lines.append(f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n")
    lines.append(body)
    chunks = ["".join(lines).encode("ascii")]
    for part in mail.parts:
        chunks.append(delimiter.encode("ascii"))
        chunks.append(_part_head(part))
        chunks.append(_base64_lines(part.data))
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


# --- header fields -------------------------------------------------------------------------------


def _check_msg_id(value: str, what: str) -> str:
    if len(value) > 900 or not _MSG_ID_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not an RFC 5322 msg-id (id-left@id-right, no brackets)")
    return value


def _date_line(date: datetime) -> str:
    if date.utcoffset() is None:
        raise ValueError("ChatMail.date must be timezone-aware")
    u = date.astimezone(UTC)
    return (
        f"Date: {_DAYS[u.weekday()]}, {u.day:02d} {_MONTHS[u.month]} {u.year:04d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d} +0000\r\n"
    )


def _address_line(field: str, addresses: Iterable[Address]) -> str:
    mailboxes = [_mailbox(a.name, a.addr) for a in addresses]
    text = ", ".join(m[0] for m in mailboxes)
    if len(field) + 2 + len(text) <= _WIDTH:
        return f"{field}: {text}\r\n"
    tokens: list[str] = []
    last = len(mailboxes) - 1
    for i, (_, words) in enumerate(mailboxes):
        tokens.extend(words)
        if i < last:
            tokens[-1] += ","
    return _fold(field + ":", tokens)


@lru_cache(maxsize=65536)
def _mailbox(name: str | None, addr: str) -> tuple[str, tuple[str, ...]]:
    """(one-line text, foldable words) of ``name <addr>`` (RFC 5322 §3.4 name-addr / addr-spec)."""
    if len(addr) > 254 or not _ADDR_RE.fullmatch(addr):
        raise ValueError(f"{addr!r} is not an RFC 5321 mailbox (local-part@domain, ASCII)")
    if not name:
        return addr, (addr,)
    words = _phrase_words(_NAME_WS_RE.sub(" ", name))
    words.append(f"<{addr}>")
    return " ".join(words), tuple(words)


def _phrase_words(name: str) -> list[str]:
    if "=?" not in name:
        if _PLAIN_PHRASE_RE.fullmatch(name):
            return name.split(" ")
        if _QUOTABLE_RE.fullmatch(name):
            return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(name, _PHRASE_WORD_MAX, _PHRASE_WORD_MAX)


def _encoded_words(text: str, first: int, rest: int = _EW_MAX) -> list[str]:
    """RFC 2047 encoded-words for ``text``: UTF-8, Q or B (the shorter), whole characters per word.

    The first word is at most ``first`` characters, the others at most ``rest``.
    """
    data = text.encode("utf-8")
    size = len(data)
    escaped = size - len(data.translate(None, _Q_ESCAPED_BYTES))
    if size + 2 * escaped <= (size + 2) // 3 * 4:
        encoded = data.decode("latin-1").translate(_Q_TABLE)
        words: list[str] = []
        start, budget = 0, first - 12  # len("=?utf-8?q?") + len("?=")
        while len(encoded) - start > budget:
            cut = _cut(encoded, start + budget, "=")
            words.append(f"=?utf-8?q?{encoded[start:cut]}?=")
            start, budget = cut, rest - 12
        words.append(f"=?utf-8?q?{encoded[start:]}?=")
        return words
    words = []
    start, budget = 0, (first - 12) // 4 * 3
    while size - start > budget:
        cut = start + budget
        while data[cut] & 0xC0 == 0x80:  # never split a UTF-8 sequence (RFC 2047 §5)
            cut -= 1
        words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:cut], newline=False).decode('ascii')}?=")
        start, budget = cut, (rest - 12) // 4 * 3
    words.append(f"=?utf-8?b?{binascii.b2a_base64(data[start:], newline=False).decode('ascii')}?=")
    return words


def _cut(encoded: str, at: int, escape: str) -> int:
    """The largest cut <= ``at`` in %XX/=XX-escaped UTF-8 that splits neither an escape nor a character."""
    if encoded[at - 1] == escape:
        at -= 1
    elif encoded[at - 2] == escape:
        at -= 2
    while encoded[at] == escape and encoded[at + 1] in "89AB":  # a UTF-8 continuation byte
        at -= 3
    return at


@lru_cache(maxsize=16384)
def _unstructured_line(field: str, value: str) -> str:
    """``field: value`` for unstructured text (RFC 5322 §3.2.5), folded, encoded-words if needed."""
    if not value:
        return f"{field}:\r\n"
    prefix = field + ":"
    if "=?" not in value and _RAW_TEXT_RE.fullmatch(value):
        if len(prefix) + 1 + len(value) <= _WIDTH:
            return f"{prefix} {value}\r\n"
        # Fold before white space (RFC 5322 §2.2.3); unfolding removes only the CRLF.
        head = f"{prefix} "
        lines: list[str] = []
        line = head
        for piece in _RAW_PIECE_RE.findall(value):
            if len(line) + len(piece) > _WIDTH and line != head:
                lines.append(line)
                line = piece
            else:
                line += piece
        lines.append(line)
        if max(map(len, lines)) <= _HARD_LIMIT:
            return "\r\n".join(lines) + "\r\n"
    # The first word shares its line with the field name: folding right after the colon would add a
    # leading space to the value for Python's parser.
    return _fold(prefix, _encoded_words(value, max(_WIDTH - len(prefix) - 1, 24)))


@lru_cache(maxsize=16384)
def _extra_line(name: str, value: str) -> str:
    if not _FIELD_NAME_RE.fullmatch(name) or len(name) > 76:
        raise ValueError(f"{name!r} is not an RFC 5322 field name")
    lowered = name.lower()
    if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIXES):
        raise ValueError(f"header {name!r} is written by render(); it cannot be an extra header")
    return _unstructured_line(name, value)


def _fold(prefix: str, tokens: list[str]) -> str:
    """Join ``tokens`` with spaces after ``prefix``, folding (CRLF SP) where a line would pass 76."""
    lines: list[str] = []
    line = prefix
    for token in tokens:
        if len(line) + 1 + len(token) > _WIDTH and line != prefix:
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


# --- body --------------------------------------------------------------------------------------------


def _encode_body(body: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, encoded body ending in CRLF or empty); see the module docstring."""
    if body.isascii():
        # The common chat line: short printable ASCII, nothing to escape.
        if len(body) <= 75 and body.isprintable() and "=" not in body and not body.startswith("From "):
            if not body:
                return "7bit", ""
            return "quoted-printable", body + "=\r\n"
        if _SEVEN_BIT_RE.fullmatch(body):
            return "7bit", body
    data = body.encode("utf-8")
    size = len(data)
    # Line breaks are left out of the count: QP keeps each source line readable on its own wire line.
    escaped = size - len(data.translate(None, _QP_ESCAPED_BYTES)) - data.count(b"\n") - data.count(b"\r")
    if size + 2 * escaped <= (size + 2) // 3 * 4:
        return "quoted-printable", _qp(data)
    return "base64", _base64_lines(data).decode("ascii")


def _qp(data: bytes) -> str:
    """Quoted-printable (RFC 2045 §6.7) that decodes to exactly ``data``, line breaks included."""
    out: list[str] = []
    segments = data.split(b"\n")
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        hard = False
        if i < last:
            if segment.endswith(b"\r"):
                segment, hard = segment[:-1], True
        elif not segment:
            break
        text = segment.decode("latin-1").translate(_QP_TABLE)
        if text.startswith("From "):
            text = "=46" + text[1:]
        if hard:
            if text.endswith((" ", "\t")):  # rule (3): no white space at the end of an encoded line
                text = text[:-1] + ("=20" if text[-1] == " " else "=09")
            width, tail = _WIDTH, "\r\n"
        else:
            if i < last:
                text += "=0A"
            width, tail = _WIDTH - 1, "=\r\n"
        start = 0
        while len(text) - start > width:
            cut = _qp_cut(text, start + _WIDTH - 1)
            if text.startswith("From ", cut):
                cut = _qp_cut(text, cut - 1)
            out.append(text[start:cut])
            out.append("=\r\n")
            start = cut
        piece = text[start:]
        out.append("=2E" if hard and piece == "." else piece)
        out.append(tail)
    return "".join(out)


def _qp_cut(text: str, at: int) -> int:
    if text[at - 1] == "=":
        return at - 1
    if text[at - 2] == "=":
        return at - 2
    return at


def _base64_lines(data: bytes) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    if len(encoded) <= _WIDTH:
        return encoded + b"\r\n" if encoded else b""
    return b"\r\n".join([encoded[i : i + _WIDTH] for i in range(0, len(encoded), _WIDTH)]) + b"\r\n"


# --- attachments -------------------------------------------------------------------------------------


def _boundary(mail: ChatMail) -> str:
    digest = hashlib.sha256()
    for text in (mail.message_id, mail.body):
        data = text.encode("utf-8")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    for part in mail.parts:
        for data in (part.filename.encode("utf-8"), part.content_type.encode("utf-8"), part.data):
            digest.update(b"%d:" % len(data))
            digest.update(data)
    return "=_" + digest.hexdigest()[:40]


def _part_head(part: Part) -> bytes:
    match = _CONTENT_TYPE_RE.fullmatch(part.content_type)
    if match is None or len(part.content_type) > 500:
        raise ValueError(f"{part.content_type!r} is not an RFC 2045 type/subtype[; parameters]")
    media_type = match.group(1)
    if media_type.lower().startswith(("multipart/", "message/")):
        raise ValueError(f"{media_type}: RFC 2045 §6.4 forbids base64 for multipart and message bodies")
    params = [f"{k}={v}" for k, v in _PARAM_RE.findall(match.group(2))]
    if any(p.split("=", 1)[0].lower() == "name" for p in params):
        raise ValueError("the content type must not carry a name parameter; it is taken from the filename")
    ctype = [media_type, *params, *_filename_params("name", part.filename)]
    disposition = ["attachment", *_filename_params("filename", part.filename)]
    head = (
        _fold("Content-Type:", [p + ";" for p in ctype[:-1]] + ctype[-1:])
        + _fold("Content-Disposition:", [p + ";" for p in disposition[:-1]] + disposition[-1:])
        + "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode("ascii")


def _filename_params(attribute: str, filename: str) -> list[str]:
    """``attribute="value"``, or RFC 2231 ``attribute*=utf-8''...`` with continuations (§3, §4)."""
    if "=?" not in filename and _FILENAME_QUOTED_RE.fullmatch(filename):
        return [f'{attribute}="{filename}"']
    encoded = quote(filename, safe=_ATTR_SAFE, encoding="utf-8")
    single = f"{attribute}*=utf-8''{encoded}"
    if len(single) < _WIDTH - 1:
        return [single]
    params: list[str] = []
    start = index = 0
    while start < len(encoded):
        head = f"{attribute}*{index}*=" + ("utf-8''" if index == 0 else "")
        budget = _WIDTH - 2 - len(head)  # a continuation line is " " + param + ";"
        cut = len(encoded) if len(encoded) - start <= budget else _cut(encoded, start + budget, "%")
        params.append(head + encoded[start:cut])
        start, index = cut, index + 1
    return params
