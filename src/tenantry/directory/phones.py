"""Phone numbers to E.164, because Part C maps WhatsApp participants to users by mobile number.

The value as sent stays in the SCIM resource (RFC 7643 asks us to keep values as given); the E.164 form is
kept beside it for look-ups, so "+49 170 1234567", "0049-170-1234567" and "+491701234567" find one user.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=65536)
def to_e164(raw: str, default_region: str | None = None) -> str | None:
    """The E.164 form of ``raw``, or None when it is not a possible phone number.

    Cached: an import asks about the same few participants' numbers hundreds of thousands of times, and
    parsing one costs ~50 µs.
    """
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";", 1)[0]
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
