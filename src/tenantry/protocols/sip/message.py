"""SIP requests read, and responses built, for a redirect server (RFC 3261 subset), on top of ``sipmessage``.

Bounded before any work: a message over ``Limits.max_message`` bytes or with more than ``Limits.max_headers``
header lines is refused before it is parsed. Responses copy what RFC 3261 §8.2.6.2 says they MUST: "the From
field of the response MUST equal the From header field of the request. The Call-ID … MUST equal … The CSeq …
MUST equal … The Via header field values in the response MUST equal the Via header field values in the request
and MUST maintain the same ordering", and the To, with a tag added when the request's To has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import sipmessage
from sipmessage import URI, Address, CSeq, Via

from tenantry.protocols.sip.errors import MalformedMessage, MessageTooLarge

__all__ = [
    "MAGIC_COOKIE",
    "ack_transaction_key",
    "Limits",
    "SipRequest",
    "StreamFramer",
    "parse_request",
    "response",
]

# RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin
# with the characters 'z9hG4bK'."
MAGIC_COOKIE = "z9hG4bK"

# §8.1.1 / §20: the headers every request carries; without them no response can be built (§8.2.6.2).
_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
_COMPACT = {short: full.lower() for short, full in sipmessage.message.COMPACT_FORMS.items()}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied before parsing. 16 KiB holds any INVITE with SDP a gateway sends (RFC 3261 §18.1.1 asks
    for TCP above ~1,300 bytes); 100 header lines is far beyond the ~15 a real INVITE has."""

    max_message: int = 16384
    max_headers: int = 100


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class SipRequest:
    """A request read as far as a stateless redirect server needs it."""

    method: str
    uri: URI
    headers: Mapping[str, tuple[str, ...]]     # lower-case full names ("via", "call-id"), values in order
    call_id: str
    cseq: CSeq
    top_via: Via
    from_address: Address
    to_address: Address

    @property
    def branch(self) -> str | None:
        return self.top_via.parameters.get("branch")

    @property
    def to_tag(self) -> str | None:
        return self.to_address.parameters.get("tag")

    @property
    def from_tag(self) -> str | None:
        return self.from_address.parameters.get("tag")

    def transaction_key(self) -> tuple[str, ...]:
        """The server transaction this request belongs to (RFC 3261 §17.2.3): the top Via's branch and sent-by,
        and the method — with ACK matching the INVITE it acknowledges ("except for ACK, where the method of the
        request that created the transaction is INVITE"). Branches without the magic cookie (RFC 2543 peers) are
        matched on Call-ID, CSeq number, From tag and the top Via, as §17.2.3's fallback does."""
        method = "INVITE" if self.method == "ACK" else self.method
        via = self.top_via
        sent_by = f"{via.host}:{via.port or ''}"
        branch = self.branch
        if branch and branch.startswith(MAGIC_COOKIE):
            return (branch, sent_by, method)
        return (self.call_id, str(self.cseq.sequence), self.from_tag or "", sent_by, method)


def parse_request(data: bytes, limits: Limits = DEFAULT_LIMITS, *, strict: bool = True) -> SipRequest:
    """Read one request from ``data`` (a datagram, or one message cut from a stream by ``StreamFramer``).

    Raises ``MessageTooLarge`` or ``MalformedMessage``; any failure inside ``sipmessage`` is turned into
    ``MalformedMessage`` too, so the caller has one thing to catch. ``strict=False`` skips the consistency checks
    (CSeq method, Content-Length) that do not stop a response being built: it reads a malformed request far
    enough to answer it 400.

    The header block is split here (bounded, folding per §7.3.1, compact forms per §7.3.3) and each header a
    redirect server uses is read with sipmessage's grammar (``URI``, ``Address``, ``Via``, ``CSeq``): splitting
    in sipmessage's ``Message.parse`` costs O(headers²) lower-casings, a third of the time of a call here.
    """
    if len(data) > limits.max_message:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds {limits.max_message}")
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        raise MalformedMessage("no end of headers")
    if data.count(b"\r\n", 0, head_end) > limits.max_headers:
        raise MalformedMessage(f"more than {limits.max_headers} header lines")
    try:
        lines = data[:head_end].decode("utf-8").split("\r\n")
    except UnicodeDecodeError as exc:
        raise MalformedMessage("not UTF-8") from exc
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[0].isalpha() or not parts[0].isupper():
        raise MalformedMessage("not a SIP/2.0 request line")
    method, target = parts[0], parts[1]
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if last is None:
                raise MalformedMessage("continuation line before any header")
            last[-1] = f"{last[-1]} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MalformedMessage("header line without a colon")
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        last = headers.setdefault(key, [])
        last.append(value.strip())
    missing = [name for name in _MANDATORY if name.lower() not in headers]
    if missing:
        raise MalformedMessage(f"missing {', '.join(missing)}")
    try:
        uri = _uri(target)
        cseq = CSeq.parse(headers["cseq"][0])
        top_via = Via.parse_many(headers["via"][0])[0]
        from_address = Address.parse(headers["from"][0])
        to_address = _address(headers["to"][0])
    except Exception as exc:  # sipmessage raises ValueError (and IndexError on some garbage)
        raise MalformedMessage(f"bad header: {exc}") from exc
    if strict:
        if cseq.method != method:
            # §8.1.1.5: "The method MUST match that of the request." Transactions assume it.
            raise MalformedMessage("CSeq method differs from the request method")
        declared = headers.get("content-length")
        if declared is not None:
            text = declared[0]
            if not text.isdigit() or len(text) > 9 or int(text) > len(data) - head_end - 4:
                # §18.3: a datagram whose Content-Length exceeds its body is discarded.
                raise MalformedMessage("Content-Length does not match the body")
    return SipRequest(
        method=method,
        uri=uri,
        headers={name: tuple(values) for name, values in headers.items()},
        call_id=headers["call-id"][0],
        cseq=cseq,
        top_via=top_via,
        from_address=from_address,
        to_address=to_address,
    )


def ack_transaction_key(data: bytes) -> tuple[str, ...] | None:
    """The transaction key of an ACK with an RFC 3261 branch, read from its top Via alone; None for anything else
    (the caller then parses the message in full).

    An ACK for a non-2xx final response only has to be matched to its INVITE transaction (§17.2.1) and is never
    answered, so reading its request line and top Via is enough — half the work of a call is spared.
    """
    if not data.startswith(b"ACK "):
        return None
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0 or head_end > DEFAULT_LIMITS.max_message:
        return None
    for line in data[:head_end].split(b"\r\n")[1:DEFAULT_LIMITS.max_headers]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"via", b"v"):
            try:
                via = Via.parse_many(value.strip().decode("utf-8"))[0]
            except Exception:
                return None
            branch = via.parameters.get("branch")
            if not branch or not branch.startswith(MAGIC_COOKIE):
                return None
            return (branch, f"{via.host}:{via.port or ''}", "INVITE")
    return None


# Request-URIs and To headers repeat (a gateway dials the same numbers; a To carries no tag in a new INVITE):
# their parses are cached, bounded. The parsed values are frozen dataclasses, safe to share.
@lru_cache(maxsize=16384)
def _uri(text: str) -> URI:
    return URI.parse(text)


@lru_cache(maxsize=16384)
def _address(text: str) -> Address:
    return Address.parse(text)


def response(
    request: SipRequest,
    status: int,
    phrase: str,
    *,
    to_tag: str | None = None,
    contacts: Sequence[str] = (),
    source: tuple[str, int] | None = None,
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The bytes of a response to ``request`` (§8.2.6.2), Contacts in the order given (302, §21.3.3).

    ``to_tag`` is added to To when the request's To has no tag ("the UAS MUST add a tag to the To header field in
    the response (with the exception of the 100 (Trying) response)"); ``source`` is where the request came from:
    when it differs from the top Via's sent-by, ``received`` is added (§18.2.1), and an empty ``rport`` is filled
    (RFC 3581 §4).
    """
    headers = request.headers
    out = sipmessage.Response(status, phrase)
    vias = list(headers["via"])
    if source is not None:
        vias[0] = _received(request.top_via, vias[0], source)
    out.headers.setlist("Via", vias)
    out.headers.add("From", headers["from"][0])
    to = headers["to"][0]
    if to_tag is not None and request.to_tag is None and status != 100:
        to = f"{to};tag={to_tag}"
    out.headers.add("To", to)
    out.headers.add("Call-ID", headers["call-id"][0])
    out.headers.add("CSeq", headers["cseq"][0])
    if contacts:
        out.headers.setlist("Contact", [f"<{uri}>" for uri in contacts])
    for name, value in extra:
        out.headers.add(name, value)
    out.headers.add("Content-Length", "0")
    return bytes(out)


def _received(top: Via, raw: str, source: tuple[str, int]) -> str:
    host, port = source
    params = top.parameters
    changes: dict[str, str | None] = {}
    if top.host != host:
        changes["received"] = host
    if "rport" in params and not params["rport"]:
        changes["rport"] = str(port)
        changes.setdefault("received", host)
    if not changes:
        return raw
    first = Via(transport=top.transport, host=top.host, port=top.port, parameters=params.replace(**changes))
    rest = raw.split(",", 1)[1] if "," in raw else None     # other Vias folded into the same header line
    return f"{first},{rest}" if rest is not None else str(first)


class StreamFramer:
    """Cuts SIP messages out of a TCP byte stream (RFC 3261 §18.3: "In the case of stream-oriented transports
    such as TCP, the Content-Length header field indicates the size of the body"; it MUST be present there).

    Keep-alive CRLFs between messages (RFC 5626 §3.5.1) are skipped. A framing error raises; the connection
    cannot be resynchronised and is closed by the caller.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                if len(self._buffer) > self._limits.max_message:
                    raise MessageTooLarge("headers longer than the message limit")
                return messages
            length = _content_length(bytes(self._buffer[:head_end]))
            total = head_end + 4 + length
            if total > self._limits.max_message:
                raise MessageTooLarge(f"message of {total} bytes exceeds {self._limits.max_message}")
            if len(self._buffer) < total:
                return messages
            messages.append(bytes(self._buffer[:total]))
            del self._buffer[:total]


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit() or len(text) > 9:
                raise MalformedMessage("bad Content-Length")
            return int(text)
    raise MalformedMessage("no Content-Length on a stream transport")
