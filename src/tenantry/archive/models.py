"""Archive tables: mailboxes (one per user), folders, and items (metadata of one stored message)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class CaseStatus(StrEnum):
    """An eDiscovery case's ``status``: closing a case releases its holds."""

    OPEN = "open"
    CLOSED = "closed"


class LedgerAction(StrEnum):
    """What a ledger entry records (its ``action``, part of its hash): the archive's audit vocabulary."""

    DELIVER = "deliver"                         # items added (ids and SHA-256): what must exist grows
    PURGE = "purge"                             # items deleted for good: what must exist shrinks
    DELETE_TO_PURGES = "delete.to_purges"       # deleted while protected: kept in Recoverable Items/Purges
    MAILBOX_REMOVE = "mailbox.remove"
    MAILBOX_EXPORT = "mailbox.export"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    RETENTION_CREATE = "retention.create"
    RETENTION_DISABLE = "retention.disable"
    RETENTION_APPLY = "retention.apply"
    CASE_CREATE = "case.create"
    CASE_CUSTODIANS_ADD = "case.custodians.add"
    CASE_CLOSE = "case.close"
    CASE_SEARCH_SAVE = "case.search.save"
    SEARCH = "search"
    EXPORT = "export"
    EXPORT_DELETE = "export.delete"
    EXPORT_DOWNLOAD = "export.download"
    ADMIN_CHANGE = "admin.change"               # a change made through the admin API or the CLI (issue #12)
    PARTNER_CALL = "partner.call"               # a partner application's call, done or refused (issue #13)


class DeletionReason(StrEnum):
    """Why items were deleted (the ``reason`` of ``purge`` and ``delete.to_purges`` entries): the path taken."""

    DELETE = "delete"                   # a user's or an admin's delete
    MAILBOX_REMOVE = "mailbox.remove"   # the mailbox was removed
    RETENTION = "retention"             # a retention policy's deletion period ended
    PURGES_EXPIRE = "purges.expire"     # kept in Purges, and nothing protects it any more


class ExportFormat(StrEnum):
    """How a mailbox (or folder) is written out: one mboxrd file, or a folder of .eml files."""

    MBOX = "mbox"
    EML = "eml"


class Mailbox(Base):
    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # The directory user the mailbox belongs to. Not a foreign key: a mailbox outlives its user
    # (a deprovisioned employee's archive must stay, held or retained).
    user_id: Mapped[str] = mapped_column(String(36))
    address: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A removed mailbox whose items are held or retained stays, inactive, until nothing protects them.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Folder(Base):
    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("mailbox_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Item(Base):
    """One message in one folder. The bytes live in the blob store under ``sha256``."""

    __tablename__ = "items"
    __table_args__ = (
        # RFC 5322 Message-ID is unique per mailbox: delivering the same item twice stores it once.
        UniqueConstraint("mailbox_id", "message_id"),
        Index("ix_items_folder_sent", "folder_id", "sent_at"),
        Index("ix_items_tenant_sent", "tenant_id", "sent_at"),
        Index("ix_items_sha256", "sha256"),
        # Which of several groups of one subject an export belongs to is read by chat and time (connectors).
        Index("ix_items_chat_sent", "tenant_id", "chat_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    mailbox_id: Mapped[str] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    folder_id: Mapped[str] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    subject: Mapped[str] = mapped_column(Text, default="")
    sender: Mapped[str] = mapped_column(String(512), default="")
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Deleted while protected (held or retained): kept in the mailbox's Purges folder, searchable by eDiscovery.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    original_folder_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Blob(Base):
    """Content-addressed message bytes: the key is the SHA-256 of ``data``.

    Kept in the database, in the same transaction as the item rows that point to it: a crash leaves both or
    neither, and identical copies (one per participant's mailbox) are stored once.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Hold(Base):
    """A litigation hold: on a whole mailbox, or (in a case) on what a query finds in its custodians' mailboxes."""

    __tablename__ = "holds"
    __table_args__ = (Index("ix_holds_tenant_active", "tenant_id", "released_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)   # mailbox hold
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)   # case hold
    query: Mapped[str | None] = mapped_column(Text, nullable=True)           # None: everything in scope
    duration_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: indefinite
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(256), nullable=True)


class RetentionPolicy(Base):
    __tablename__ = "retention_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    retain_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delete_after_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Scope, as JSON lists; an empty list means all (implicit scope).
    users: Mapped[str] = mapped_column(Text, default="[]")
    folders: Mapped[str] = mapped_column(Text, default="[]")
    kinds: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Case(Base):
    __tablename__ = "ediscovery_cases"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN)   # a CaseStatus
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseCustodian(Base):
    __tablename__ = "ediscovery_custodians"

    case_id: Mapped[str] = mapped_column(ForeignKey("ediscovery_cases.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class CaseSearch(Base):
    __tablename__ = "ediscovery_searches"
    __table_args__ = (UniqueConstraint("case_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("ediscovery_cases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    query: Mapped[str] = mapped_column(Text)
    include_purges: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_count: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LedgerEntry(Base):
    """The append-only, hash-chained record of everything done to the archive (and the audit trail).

    ``hash = sha256(prev_hash || number || at || actor || action || target || detail)``: changing, removing or
    reordering any entry breaks the chain from there on, and ``verify`` says where.
    """

    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_tenant_seq", "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)   # 1, 2, 3 … within the tenant: part of the hash
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))   # a LedgerAction, as written (read back as text)
    target: Mapped[str] = mapped_column(String(512), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerHead(Base):
    """The newest entry of a tenant's chain; locked while appending so two writers cannot fork the chain."""

    __tablename__ = "ledger_heads"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
