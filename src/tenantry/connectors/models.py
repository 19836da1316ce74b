"""Connector tables: the connector (its wizard state and settings), its user-mapping CSV, runs and run reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class ConnectorStatus(StrEnum):
    DRAFT = "draft"         # made by the wizard, not yet enabled: runs only by hand
    ENABLED = "enabled"     # runs daily at run_at
    DISABLED = "disabled"


class RunStatus(StrEnum):
    RUNNING = "running"     # also what a crash leaves: marked failed at the next start
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"   # handed out by the scheduler (connectors.register)
    MANUAL = "manual"       # the API, the CLI, an upload with --run


class BuiltinSource(StrEnum):
    """The source kinds Tenantry ships (``Connector.kind``). The set is open: a registry may add its own kinds
    (``connectors.registry.Kinds``), so the column and the registry take any name."""

    WHATSAPP_EXPORT = "whatsapp-export"
    ARCHIVER_FEED = "archiver-feed"


class BuiltinTarget(StrEnum):
    """The target kinds Tenantry ships (``kind`` in ``Connector.target_config``); open like the sources."""

    STORE = "store"         # the default, also for settings saved without a kind
    IMAP = "imap"


class Connector(Base):
    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))             # a source kind's name (BuiltinSource, or registered)
    status: Mapped[str] = mapped_column(String(16))           # ConnectorStatus
    created_by: Mapped[str] = mapped_column(String(36))       # the admin user who ran the wizard
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    terms_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consent_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Source settings as JSON (URL, user name, export time zone); the password is sealed (core.secrets).
    source_config: Mapped[str] = mapped_column(Text, default="{}")
    source_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    target_config: Mapped[str] = mapped_column(Text, default='{"kind": "store"}')
    target_secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    use_directory_mobiles: Mapped[bool] = mapped_column(Boolean, default=True)
    outsider_domain: Mapped[str] = mapped_column(String(253), default="whatsapp.invalid")
    max_item_bytes: Mapped[int] = mapped_column(Integer, default=10 * 1024 * 1024)
    run_at: Mapped[str] = mapped_column(String(5), default="02:00")   # daily, UTC, HH:MM
    # Archiver feeds: each run reads from this many hours before the checkpoint (late arrivals; issue #10).
    overlap_hours: Mapped[int] = mapped_column(Integer, default=48)
    backfill_days: Mapped[int] = mapped_column(Integer, default=30)
    # Everything before the checkpoint has been imported or reported.
    checkpoint: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failures_in_a_row: Mapped[int] = mapped_column(Integer, default=0)


class MappingEntry(Base):
    """One line of the connector's custom user-mapping CSV: a mobile number (E.164) and/or name → user e-mail."""

    __tablename__ = "connector_mappings"
    __table_args__ = (Index("ix_connector_mappings_e164", "connector_id", "e164"),
                      Index("ix_connector_mappings_name", "connector_id", "name_key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    e164: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name_key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    email: Mapped[str] = mapped_column(String(512))
    line: Mapped[int] = mapped_column(Integer)


class Run(Base):
    __tablename__ = "connector_runs"
    __table_args__ = (Index("ix_connector_runs_connector", "connector_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))          # RunTrigger
    status: Mapped[str] = mapped_column(String(16))           # RunStatus
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Written every ``runner.HEARTBEAT`` while the run's process works on it: a run whose heartbeat is older than
    # ``runner.HEARTBEAT_LEASE`` has no process left and is recovered (failed, its connector due again).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    window_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    copies: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[str] = mapped_column(Text, default="{}")   # per kind imported, per reason skipped
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunIssue(Base):
    """One item not imported (or imported with a problem), with the reason: the run report's body."""

    __tablename__ = "connector_run_issues"
    __table_args__ = (Index("ix_connector_run_issues_run", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("connector_runs.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))           # items.SkipReason
    detail: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    location: Mapped[str | None] = mapped_column(String(512), nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)   # items.ItemKind
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ExportFile(Base):
    """A WhatsApp export file handed to a connector; its SHA-256 makes a second upload a no-op."""

    __tablename__ = "connector_export_files"
    __table_args__ = (UniqueConstraint("connector_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(512))
    chat_name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    owner_user_id: Mapped[str] = mapped_column(String(36))    # whose phone exported it ("You" in the file)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    imported_by_run: Mapped[str | None] = mapped_column(String(36), nullable=True)
