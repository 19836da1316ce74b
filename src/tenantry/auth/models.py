"""Console sign-in tables: password accounts, browser sessions, each tenant's OpenID provider, pending OIDC
sign-ins.

No secret is stored that would sign anyone in: a session row's id is the SHA-256 of the cookie's secret, a
password is an argon2id hash, the client secret of a provider is sealed (``core.secrets.SecretBox``), and a
pending sign-in is found by the SHA-256 of its ``state``. Rows of a deleted user or tenant go with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class ConsolePassword(Base):
    """A directory user's console password (argon2id, PHC string) and its lockout state."""

    __tablename__ = "console_passwords"
    __table_args__ = (Index("ix_console_passwords_tenant_id", "tenant_id"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    password_hash: Mapped[str] = mapped_column(String(256))
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A signed-in browser: ``id`` is the SHA-256 (hex) of the random secret in its cookie."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_tenant_user", "tenant_id", "user_id"),
        Index("ix_console_sessions_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))          # "password" or "oidc"
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))   # the absolute end
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OidcProvider(Base):
    """A tenant's OpenID provider for console single sign-on (one per tenant)."""

    __tablename__ = "oidc_providers"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(256))
    client_secret: Mapped[str] = mapped_column(Text)              # sealed (SecretBox)
    claim: Mapped[str] = mapped_column(String(64))                # the ID token's claim: preferred_username …
    match_attribute: Mapped[str] = mapped_column(String(16))      # the directory's attribute: userName or emails
    scopes: Mapped[str] = mapped_column(String(512))              # space-separated, openid first
    display_name: Mapped[str] = mapped_column(String(64))         # "Sign in with <display_name>"
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OidcLogin(Base):
    """A sign-in sent to the provider and not back yet: single use, ten minutes at most."""

    __tablename__ = "oidc_logins"
    __table_args__ = (Index("ix_oidc_logins_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)   # SHA-256 (hex) of the state
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(256))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    redirect_uri: Mapped[str] = mapped_column(String(1024))
    next_path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
