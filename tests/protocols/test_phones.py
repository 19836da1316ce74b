"""Phone numbers to E.164 for look-ups (Part C maps WhatsApp participants by mobile number)."""

from __future__ import annotations

import pytest

from tenantry.protocols.phones import to_e164


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+49 170 1234567", None, "+491701234567"),
    ("0049 (170) 123-4567", None, "+491701234567"),
    ("tel:+1-201-555-0123;ext=4", None, "+12015550123"),
    ("+82 10-1234-5678", None, "+821012345678"),
    ("010-1234-5678", "KR", "+821012345678"),
    ("010-1234-5678", None, None),  # no country code and no default region: not guessed
    ("not a number", "DE", None),
    ("", None, None),
])
def test_to_e164(raw: str, region: str | None, expected: str | None) -> None:
    assert to_e164(raw, region) == expected
