"""What trust hands across its boundary (its API and CLI): the certificate roles as a StrEnum and its typed
results (``core.results``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class CertificateRole(StrEnum):
    """A signing certificate's place in rotation (``trust_auth_certificates.role``)."""

    CURRENT = "current"      # signs now; what partners must hold
    NEXT = "next"            # published ahead of its effective date, so partners can add it first
    PREVIOUS = "previous"    # signed until the last switch; still accepted until retired


KEY_USAGE = "Verify"
KEY_TYPE = "AsymmetricX509Cert"


@dataclass(frozen=True, slots=True)
class PartnerApp:
    id: str
    name: str
    application_id: str
    realm: str
    enabled: bool
    linked_account: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    role: CertificateRole
    thumbprint: str
    thumbprint_sha256: str
    subject: str
    not_before: datetime
    not_after: datetime
    effective_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuthConfigInfo:
    """``Get-AuthConfig``."""

    service_name: str
    realm: str
    current_certificate_thumbprint: str
    next_certificate_thumbprint: str | None
    next_certificate_effective_date: datetime | None
    previous_certificate_thumbprint: str | None
    certificates: list[CertificateInfo]


@dataclass(frozen=True, slots=True)
class SpKey:
    """One key of a service principal (Graph's keyCredential)."""

    key_id: str
    usage: str
    type: str
    thumbprint: str
    thumbprint_sha256: str
    start_date: datetime
    end_date: datetime
    added_at: datetime
    value: str
    # "ours" (one of our certificates: the partner verifies us with it) or "partner" (the partner's own signing
    # certificate: we verify its tokens with it); docs/trust.md, "Whose key verifies what".
    holder: str


@dataclass(frozen=True, slots=True)
class ServicePrincipal:
    partner: str
    application_id: str
    keys: list[SpKey]


@dataclass(frozen=True, slots=True)
class PartnerCheck:
    """The seed's step 6 for one partner: does its service principal hold our current certificate, dates equal?"""

    partner: str
    application_id: str
    enabled: bool
    key_found: bool
    dates_match: bool
    key_id: str | None
    ok: bool
    what_to_do: str | None


@dataclass(frozen=True, slots=True)
class TrustCheck:
    ok: bool
    current_certificate_thumbprint: str
    not_before: datetime
    not_after: datetime
    partners: list[PartnerCheck]
