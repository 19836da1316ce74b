"""Provisioning tables: the downstream SCIM apps and who is assigned to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class ProvisioningApp(Base):
    __tablename__ = "provisioning_apps"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    tenant_url: Mapped[str] = mapped_column(String(2048))
    token_secret: Mapped[str] = mapped_column(Text)            # sealed (core.secrets)
    notification_email: Mapped[str | None] = mapped_column(String(512), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[str] = mapped_column(String(16), default="assigned")   # assigned | all
    skip_default_access: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    __tablename__ = "provisioning_assignments"

    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"), primary_key=True)
    principal_type: Mapped[str] = mapped_column(String(8), primary_key=True)   # User | Group
    principal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    role: Mapped[str] = mapped_column(String(128), default="User")
