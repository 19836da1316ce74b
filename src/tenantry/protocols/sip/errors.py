"""What the SIP layer refuses, each error carrying the status line it is answered with (RFC 3261 §21).

    SipError
    ├── MessageTooLarge        513 Message Too Large (RFC 3261 §21.5.13) — over ``Limits.max_message``
    └── MalformedMessage       400 Bad Request — not parseable, a bound exceeded, a mandatory header missing

A malformed message is answered only when the headers a response copies (§8.2.6.2: Via, From, To, Call-ID,
CSeq) could be read and it is not an ACK; otherwise it is dropped, as §18.2 / §16.3 allow for garbage.
"""

from __future__ import annotations

from typing import ClassVar


class SipError(ValueError):
    """A message refused; ``status`` and ``phrase`` go on the wire when it can be answered."""

    status: ClassVar[int] = 400
    phrase: ClassVar[str] = "Bad Request"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class MalformedMessage(SipError):
    status = 400
    phrase = "Bad Request"


class MessageTooLarge(SipError):
    status = 513
    phrase = "Message Too Large"
