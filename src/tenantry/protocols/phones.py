"""Phone numbers to look-up keys, because Part C maps WhatsApp participants to users by mobile number.

The value as sent stays in the SCIM resource (RFC 7643 asks us to keep values as given); its key is kept
beside it for look-ups, so "+49 170 1234567", "0049-170-1234567" and "+491701234567" find one user.

The key is the E.164 form where phonenumbers calls the number possible. Where it does not — a test tenant's
"+1 123 456 789", a number plan phonenumbers does not know yet, a national number with no default region —
the key is the number's digits, with the "+" kept (``digit_key``): the directory accepted the value, the
archiver will write it the same way, and refusing to match it would leave that user's messages unmapped
(issue #10, item 3). Such a match is reported as one "by its digits", never silently taken for a valid number.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=65536)
def to_e164(raw: str, default_region: str | None = None) -> str | None:
    """The E.164 form of ``raw``, or None when it is not a possible phone number.

    Cached: an import asks about the same few participants' numbers hundreds of thousands of times, and
    parsing one costs ~50 µs.
    """
    text = _strip(raw)
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# A value made of digits and the separators people write (spaces, dots, dashes, slashes, brackets), with an
# optional leading "+": a phone number in form, whatever its plan. 5 to 15 digits (E.164 allows 15).
_DIGITS_ONLY = re.compile(r"^\+?[\d\s().\-/\u00a0]+$")
_MIN_DIGITS, _MAX_DIGITS = 5, 15


def _strip(raw: str) -> str:
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";", 1)[0]
    if text.startswith("00"):
        text = "+" + text[2:]
    return text


def digit_key(raw: str) -> str | None:
    """The digits of a number-shaped ``raw`` ("+" kept when it leads), or None when it is not one."""
    text = _strip(raw)
    if not _DIGITS_ONLY.match(text):
        return None
    digits = "".join(c for c in text if c.isdigit())
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return None
    return ("+" if text.startswith("+") else "") + digits


def phone_key(raw: str, default_region: str | None = None) -> str | None:
    """The look-up key of a phone number: its E.164 form, else its digits (``digit_key``), else None."""
    return to_e164(raw, default_region) or digit_key(raw)


def matched_by_digits(raw: str, default_region: str | None = None) -> bool:
    """True when ``raw`` has a key but no E.164 form: a look-up by it matches by digits only."""
    return to_e164(raw, default_region) is None and digit_key(raw) is not None
