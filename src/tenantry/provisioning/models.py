"""Provisioning tables: the downstream SCIM apps, who is assigned to them, what each app holds of ours
(the state that makes incremental cycles possible), the cycles and the per-object logs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
    scope: Mapped[str] = mapped_column(String(16), default="assigned")   # results.ScopeMode
    skip_default_access: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Mappings, scoping filters, actions, thresholds, rate (provisioning.config.AppConfig as JSON).
    config: Mapped[str] = mapped_column(Text, server_default="{}")
    config_version: Mapped[int] = mapped_column(Integer, server_default="1")
    # The config version and the directory time the last completed cycle covered: what "changed" means next.
    synced_config_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    running_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # cycle lease
    health: Mapped[str] = mapped_column(String(24), server_default="healthy")  # results.AppHealth
    health_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    quarantined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    quarantine_level: Mapped[int] = mapped_column(Integer, server_default="0")


class AppRole(Base):
    """A role an administrator added to an app (Entra's appRoles). The built-in Default Access and User roles
    are not rows: every app has them (provisioning.roles.BUILT_IN)."""

    __tablename__ = "provisioning_app_roles"
    __table_args__ = (UniqueConstraint("app_id", "display_name"), UniqueConstraint("app_id", "value"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(128))
    value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    allowed_member_types: Mapped[str] = mapped_column(String(16))     # "User,Group" | "User" | "Group"
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Assignment(Base):
    __tablename__ = "provisioning_assignments"

    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"), primary_key=True)
    principal_type: Mapped[str] = mapped_column(String(8), primary_key=True)   # User | Group
    principal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # One of the app's roles: a built-in one's fixed id or an AppRole's (no foreign key: the built-in roles are
    # not rows). A role is not deleted while an assignment holds it.
    role_id: Mapped[str] = mapped_column(String(36))


class ProvisionedObject(Base):
    """One of our users/groups as the app holds it: its id there and the values we last sent."""

    __tablename__ = "provisioned_objects"

    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(8), primary_key=True)      # User | Group
    source_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    target_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    status: Mapped[str] = mapped_column(String(16))    # results.ObjectStatus
    sent: Mapped[str] = mapped_column(Text, default="{}")                     # target path → value, JSON
    error: Mapped[str | None] = mapped_column(Text, nullable=True)            # last failure: retried next cycle
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # our object's version then
    roles: Mapped[str | None] = mapped_column(Text, nullable=True)   # the user's app roles then (fingerprint)


class ProvisionedMember(Base):
    """A group membership the app holds (both ends are our ids)."""

    __tablename__ = "provisioned_members"

    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class ProvisioningCycle(Base):
    __tablename__ = "provisioning_cycles"
    __table_args__ = (Index("ix_provisioning_cycles_app_started", "app_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))       # results.CycleKind
    trigger: Mapped[str] = mapped_column(String(16))    # results.CycleTrigger
    status: Mapped[str] = mapped_column(String(24))     # results.CycleStatus
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[str] = mapped_column(Text, default="{}")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class ProvisioningLog(Base):
    """What happened to one object in one cycle: its steps (import, scope, match, action) and the outcome."""

    __tablename__ = "provisioning_logs"
    __table_args__ = (
        Index("ix_provisioning_logs_app_at", "app_id", "at"),
        Index("ix_provisioning_logs_app_source", "app_id", "source_id"),
        Index("ix_provisioning_logs_cycle", "cycle_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("provisioning_apps.id", ondelete="CASCADE"))
    cycle_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    object_type: Mapped[str] = mapped_column(String(8))
    source_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    display: Mapped[str | None] = mapped_column(String(512), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    action: Mapped[str] = mapped_column(String(24))     # results.LogAction
    result: Mapped[str] = mapped_column(String(16))     # results.Result
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    steps: Mapped[str] = mapped_column(Text, default="[]")   # results.LogStep.stored(), as a JSON list
