"""Voice tables (seed 001, hybrid voice): PSTN sites, mediation servers with their online accounts, gateways and
their trunks, the tenant's hybrid and federation configuration, and users' voice settings.

Trunks are rows of their own (gateway → target, priority) rather than derived from the site's mediation servers:
an import or an API call can make a wrong one (to a pool FQDN, to another site's server, at another priority),
and ``voice check`` has to be able to see it to say so.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class PstnSite(Base):
    """A Cloud Connector PSTN site: its edge's access proxy external FQDN (the seed's <External Access Edge FQDN>)."""

    __tablename__ = "voice_sites"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    edge_fqdn: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MediationServer(Base):
    """A mediation server of a site (FQDN, IP) and its online hybrid mediation server account
    (Set-CsHybridMediationServer -Fqdn -AccessProxyExternalFqdn), a hidden directory user."""

    __tablename__ = "voice_mediation_servers"
    __table_args__ = (UniqueConstraint("tenant_id", "fqdn"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(ForeignKey("voice_sites.id", ondelete="CASCADE"), index=True)
    fqdn: Mapped[str] = mapped_column(String(253))
    ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    hybrid_fqdn: Mapped[str | None] = mapped_column(String(253), nullable=True)          # -Fqdn
    access_proxy_fqdn: Mapped[str | None] = mapped_column(String(253), nullable=True)    # -AccessProxyExternalFqdn
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Gateway(Base):
    """A PSTN gateway (or SBC) of a site, named by its FQDN or IP."""

    __tablename__ = "voice_gateways"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(ForeignKey("voice_sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253))
    transport: Mapped[str] = mapped_column(String(8))       # snapshot.Transport
    port: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The certificate the gateway presents (PEM, with any intermediates after it), as issued by the tenant root CA
    # or recorded by an administrator; what `voice check --tls` checks when it does not fetch the live one.
    certificate_pem: Mapped[str | None] = mapped_column(Text, nullable=True)


class Trunk(Base):
    """A gateway's trunk to one mediation server, named by the server's FQDN or IP (never a pool FQDN)."""

    __tablename__ = "voice_trunks"
    __table_args__ = (UniqueConstraint("gateway_id", "target"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    gateway_id: Mapped[str] = mapped_column(ForeignKey("voice_gateways.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(253))
    priority: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoiceTenantConfig(Base):
    """Set-CsTenantHybridConfiguration (-PeerDestination, -UseOnPremDialPlan) and
    Set-CsTenantFederationConfiguration -SharedSipAddressSpace; a tenant without a row has the defaults."""

    __tablename__ = "voice_tenant_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    peer_destination: Mapped[str | None] = mapped_column(String(253), nullable=True)
    use_on_prem_dial_plan: Mapped[bool] = mapped_column(Boolean)
    shared_sip_address_space: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoiceUserSettings(Base):
    """A user's voice settings (Set-CsUser, Grant-CsVoiceRoutingPolicy, Set-CsUserPstnSettings); a user without a
    row has the defaults (enterprise voice off, InternationalCallsAllowed, no site)."""

    __tablename__ = "voice_users"
    # The line URI is one user's number in the tenant: a call to it must reach one person.
    __table_args__ = (UniqueConstraint("tenant_id", "line_uri"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    enterprise_voice: Mapped[bool] = mapped_column(Boolean)
    hosted_voicemail: Mapped[bool] = mapped_column(Boolean)
    line_uri: Mapped[str | None] = mapped_column(String(40), nullable=True)   # "tel:+14255550100"
    voice_policy: Mapped[str | None] = mapped_column(String(64), nullable=True)
    routing_policy: Mapped[str] = mapped_column(String(64))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("voice_sites.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VoiceRootCA(Base):
    """The tenant root CA gateways trust and their certificates chain to (seed 001, steps 3–4): generated here (its
    key sealed by ``core.secrets``, so it can issue gateway certificates) or imported (certificate only, or with
    its key)."""

    __tablename__ = "voice_root_cas"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str | None] = mapped_column(Text, nullable=True)   # PKCS#8 PEM, sealed; None: imported
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
