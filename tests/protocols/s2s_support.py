"""Shared material for the server-to-server token tests: a fixed clock, the seed's identifiers, and signing
certificates made once per test session (an RSA-2048 key takes tens of milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from tenantry.protocols.s2s.actor import Recipient
from tenantry.protocols.s2s.certificates import SigningCertificate, generate_signing_certificate

NOW = 1_800_000_000
NOW_DT = datetime.fromtimestamp(NOW, UTC)
DAY = 86_400
PARTNER_APP_ID = "00000004-0000-0ff1-ce00-000000000000"  # the seed's partner (Skype for Business Online)
OUR_APP_ID = "00000002-0000-0ff1-ce00-000000000000"  # Exchange's well-known id
REALM = "5a8e3c1d-2b4f-4e6a-9c0d-7f1e2a3b4c5d"
HOST = "mail.contoso.com"
US = Recipient(app_id=OUR_APP_ID, host=HOST, realm=REALM)


@cache
def certificate(name: str, start_days: int = -30, end_days: int = 365) -> SigningCertificate:
    """A self-signed certificate valid from ``start_days`` to ``end_days`` around ``NOW`` (cached by arguments)."""
    return generate_signing_certificate(f"{name}.contoso.com", NOW_DT + timedelta(days=start_days),
                                        NOW_DT + timedelta(days=end_days))


@cache
def certificate_now(name: str) -> SigningCertificate:
    """A certificate valid around the real clock (for third-party clients that stamp tokens with time.time())."""
    now = datetime.now(UTC)
    return generate_signing_certificate(f"{name}.contoso.com", now - timedelta(days=1), now + timedelta(days=30))
