"""Directory tables.

Users and groups keep the SCIM resource as sent (``resource``, JSON text) beside columns for the attributes
that are looked up, sorted or made unique. Every string value of a user is also indexed in ``user_values``
(one row per leaf), so filters on any attribute — ``emails[type eq "work"].value``, a mobile number, an
enterprise ``costCenter`` — are index look-ups, not scans. Group members live in their own table so that a
member change of a 50,000-member group touches one row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.core.db import Base


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A bearer secret, stored as its SHA-256. ``scope`` is ``scim`` (per tenant), ``admin`` (a tenant's
    administrator, ``user_id``) or ``operator`` (the installation)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The administrator an admin token is issued to (issue #12); NULL for SCIM and operator tokens.
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_name_key"),
        Index("ix_users_tenant_external_id", "tenant_id", "external_id"),
        Index("ix_users_tenant_last_modified", "tenant_id", "last_modified"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_name: Mapped[str] = mapped_column(String(512))
    # userName is caseExact=false (RFC 7643 §4.1.1): uniqueness and look-ups use the case-folded key.
    user_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    given_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    family_name: Mapped[str | None] = mapped_column(String(256), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    resource: Mapped[str] = mapped_column(Text)
    # Set-MailUser -HiddenFromAddressListsEnabled (seed 002): left out of listings and searches, found when
    # asked for by id, userName or externalId. Not part of the SCIM resource: an IdP's PUT does not reset it.
    hidden_from_address_lists: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class UserValue(Base):
    """One string/boolean leaf of a user resource, case-folded where the attribute is not caseExact."""

    __tablename__ = "user_values"
    __table_args__ = (
        Index("ix_user_values_lookup", "tenant_id", "attr", "value_key"),
        # Phone numbers only (0022): the other values' NULLs were most of its entries and of a create's pages.
        Index("ix_user_values_e164", "tenant_id", "attr", "e164", sqlite_where=text("e164 IS NOT NULL"),
              postgresql_where=text("e164 IS NOT NULL")),
        Index("ix_user_values_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    # Lower-case attribute path: "emails.value", "name.givenname", "urn:…:enterprise:2.0:user:costcenter".
    attr: Mapped[str] = mapped_column(String(256))
    # For entries of multi-valued complex attributes: the entry's case-folded ``type`` and its position.
    type_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry: Mapped[int | None] = mapped_column(Integer, nullable=True)
    value_key: Mapped[str] = mapped_column(String(1024))
    # phoneNumbers.value's look-up key: E.164, else its digits (protocols.phones.phone_key; the value as sent
    # stays in the resource).
    e164: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("tenant_id", "display_name_key"),
        Index("ix_groups_tenant_external_id", "tenant_id", "external_id"),
        Index("ix_groups_tenant_last_modified", "tenant_id", "last_modified"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    display_name: Mapped[str] = mapped_column(String(512))
    display_name_key: Mapped[str] = mapped_column(String(512))
    external_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    resource: Mapped[str] = mapped_column(Text)


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (Index("ix_group_members_member_id", "member_id"),)

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_type: Mapped[str] = mapped_column(String(8))  # "User" or "Group"
    display: Mapped[str | None] = mapped_column(String(512), nullable=True)
    tenant_id: Mapped[str] = mapped_column(String(64))


class Domain(Base):
    __tablename__ = "domains"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LicenceAssignment(Base):
    """A licence (SKU from the catalogue in ``directory.catalogue``) assigned to a user."""

    __tablename__ = "licence_assignments"
    __table_args__ = (Index("ix_licence_assignments_sku", "tenant_id", "sku"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoleGroup(Base):
    """A named set of management roles; its members (users) hold every role in it."""

    __tablename__ = "role_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoleGroupRole(Base):
    __tablename__ = "role_group_roles"

    role_group_id: Mapped[str] = mapped_column(
        ForeignKey("role_groups.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(128), primary_key=True)


class RoleGroupMember(Base):
    __tablename__ = "role_group_members"
    __table_args__ = (Index("ix_role_group_members_user_id", "user_id"),)

    role_group_id: Mapped[str] = mapped_column(
        ForeignKey("role_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class ManagementRoleAssignment(Base):
    """A management role held by a user directly, not through a role group (``New-ManagementRoleAssignment
    -Role UserApplication -User …``): only the partner roles (an application account's), never an admin role."""

    __tablename__ = "management_role_assignments"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id", "role"),
                      Index("ix_management_role_assignments_user_id", "user_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ScimRequestLog(Base):
    """One inbound SCIM write (or one operation of a Bulk request): who, what, the result, how long it took.

    Written after the answer is known, in a transaction of its own (``directory.scim_log``); kept
    ``TENANTRY_SCIM_LOG_DAYS`` days. Names the token (id and name), never its secret; holds no request body.
    """

    __tablename__ = "scim_request_log"
    __table_args__ = (
        Index("ix_scim_request_log_tenant_at", "tenant_id", "at"),
        Index("ix_scim_request_log_tenant_resource", "tenant_id", "resource_id"),
        Index("ix_scim_request_log_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))          # when the request (operation) began
    request_id: Mapped[str] = mapped_column(String(36))                    # shared by a Bulk request's rows
    bulk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-based operation of a Bulk request
    # The credential: a SCIM token of the tenant, by id and by the name it was given (no foreign key: the row
    # outlives the token's revocation).
    token_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    token_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)
    method: Mapped[str] = mapped_column(String(8))
    resource_type: Mapped[str | None] = mapped_column(String(64), nullable=True)   # User | Group | Bulk | as sent
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    user_name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    display_name: Mapped[str | None] = mapped_column(String(512), nullable=True)
    operation: Mapped[str | None] = mapped_column(String(512), nullable=True)  # a PATCH's outline, members(n), …
    status: Mapped[int] = mapped_column(Integer)
    scim_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
