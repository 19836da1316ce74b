"""Archive tables: mailboxes (one per user), folders, and items (metadata of one stored message)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


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


class Blob(Base):
    """Content-addressed message bytes: the key is the SHA-256 of ``data``.

    Kept in the database, in the same transaction as the item rows that point to it: a crash leaves both or
    neither, and identical copies (one per participant's mailbox) are stored once.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
