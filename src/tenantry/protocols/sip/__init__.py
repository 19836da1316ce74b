"""SIP (RFC 3261) as much as a redirect server needs: bounded request parsing and §8.2.6 responses over
``sipmessage``, and TCP framing. No sockets here: the asyncio service is ``tenantry.voice.sip_server``."""

from tenantry.protocols.sip.errors import MalformedMessage, MessageTooLarge, SipError
from tenantry.protocols.sip.message import (
    DEFAULT_LIMITS,
    MAGIC_COOKIE,
    Limits,
    SipRequest,
    StreamFramer,
    ack_transaction_key,
    parse_request,
    response,
)

__all__ = [
    "DEFAULT_LIMITS",
    "MAGIC_COOKIE",
    "Limits",
    "MalformedMessage",
    "MessageTooLarge",
    "SipError",
    "SipRequest",
    "StreamFramer",
    "ack_transaction_key",
    "parse_request",
    "response",
]
