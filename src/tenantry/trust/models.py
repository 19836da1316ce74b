"""Trust tables: partner applications, the tenant's authorisation configuration and its signing certificates,
and the keys each partner's service principal holds (seed 002)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class PartnerApplication(Base):
    """``New-PartnerApplication``: a server (chat, voice) that may act in users' mailboxes once trusted."""

    __tablename__ = "trust_partner_apps"
    __table_args__ = (UniqueConstraint("tenant_id", "name"), UniqueConstraint("tenant_id", "application_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    application_id: Mapped[str] = mapped_column(String(36))       # ApplicationIdentifier, a GUID (lower case)
    realm: Mapped[str] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean)
    # The application account (-LinkedAccount); item 1 of issue #13 makes it; until then it may be unset.
    linked_account: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthConfig(Base):
    """``Get-AuthConfig``: who we are to partners (our service name and realm); made on first use."""

    __tablename__ = "trust_auth_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    service_name: Mapped[str] = mapped_column(String(36))
    # The partner endpoints (/trust/{realm}/…) find the tenant by its realm: one tenant per realm.
    realm: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthCertificate(Base):
    """One of the tenant's signing certificates, in its role (results.CertificateRole): one row per role."""

    __tablename__ = "trust_auth_certificates"
    __table_args__ = (UniqueConstraint("tenant_id", "role"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))                  # results.CertificateRole
    certificate_pem: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)                 # PKCS#8 PEM, sealed (core.secrets)
    thumbprint: Mapped[str] = mapped_column(String(40))            # SHA-1, upper-case hex
    thumbprint_sha256: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    effective_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # next's date
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServicePrincipalKey(Base):
    """``Add-MgServicePrincipalKey -Type asymmetric -Usage Verify``: a certificate a partner trusts, with dates."""

    __tablename__ = "trust_sp_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the key id
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("trust_partner_apps.id", ondelete="CASCADE"), index=True)
    usage: Mapped[str] = mapped_column(String(16))                 # "Verify"
    type: Mapped[str] = mapped_column(String(32))                  # "AsymmetricX509Cert"
    value: Mapped[str] = mapped_column(Text)                       # base64 DER
    thumbprint: Mapped[str] = mapped_column(String(40))
    thumbprint_sha256: Mapped[str] = mapped_column(String(64))
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsedAssertion(Base):
    """A client assertion's ``jti``, remembered until the assertion expires (RFC 7523 §3 7.): a second use of
    the same assertion at the token endpoint is refused."""

    __tablename__ = "trust_used_assertions"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class VoicemailGreeting(Base):
    """A user's voicemail greeting, as a partner (a voice server holding UserApplication) set it: one per user."""

    __tablename__ = "trust_voicemail_greetings"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(128))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(512))    # the partner's ledger actor
