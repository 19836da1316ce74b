"""The directory as other parts read it in bulk: ids, changes since a moment, stored resources, direct members.

Read-only and in chunks (a 100,000-user directory is never loaded as ORM objects); results are plain values
and frozen dataclasses, so a reader (the provisioning cycle) imports no directory table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import select

from tenantry.core.batches import chunks
from tenantry.core.db import Database
from tenantry.directory.models import Group, GroupMember, User

ObjectType = Literal["User", "Group"]


@dataclass(frozen=True)
class StoredResource:
    """A user or group as the identity provider sent it, with ``id`` set (no computed ``groups``/``members``),
    and its version (the number in its SCIM ETag)."""

    id: str
    resource: dict[str, Any]
    version: int


class DirectoryReads:
    def __init__(self, db: Database) -> None:
        self.db = db

    def changed_versions(self, tenant: str, object_type: ObjectType, since: datetime) -> dict[str, int]:
        """Objects modified since ``since``, with their version."""
        model: Any = User if object_type == "User" else Group
        with self.db.session() as session:
            rows = session.execute(select(model.id, model.version).where(
                model.tenant_id == tenant, model.last_modified >= since)).all()
        return {row_id: version for row_id, version in rows}

    def existing_ids(self, tenant: str, object_type: ObjectType, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are users (groups) of the tenant."""
        model: Any = User if object_type == "User" else Group
        found: set[str] = set()
        with self.db.session() as session:
            for batch in chunks(ids):
                found.update(session.scalars(select(model.id).where(model.tenant_id == tenant,
                                                                    model.id.in_(batch))))
        return found

    def group_ids(self, tenant: str) -> list[str]:
        with self.db.session() as session:
            return sorted(session.scalars(select(Group.id).where(Group.tenant_id == tenant)))

    def resources(self, tenant: str, object_type: ObjectType, ids: Iterable[str]) -> Iterator[StoredResource]:
        """The stored resources of ``ids`` (those that exist), read a chunk at a time as they are consumed. A
        user whose identity provider never sent ``active`` is active (the directory's own flag), as Entra's
        IsSoftDeleted mapping would say."""
        with self.db.session() as session:
            if object_type == "Group":
                for batch in chunks(ids):
                    for row_id, text, version in session.execute(select(Group.id, Group.resource, Group.version)
                                                                 .where(Group.tenant_id == tenant,
                                                                        Group.id.in_(batch))):
                        yield StoredResource(row_id, _with_id(text, row_id), version)
                return
            for batch in chunks(ids):
                for row_id, text, active, version in session.execute(
                        select(User.id, User.resource, User.active, User.version).where(
                            User.tenant_id == tenant, User.id.in_(batch))):
                    resource = _with_id(text, row_id)
                    resource.setdefault("active", bool(active))
                    yield StoredResource(row_id, resource, version)

    def user_members_of(self, tenant: str, group_ids: Iterable[str]) -> dict[str, set[str]]:
        """Group id → the users who are members of it themselves (not through a nested group); groups without
        such members are absent."""
        members: dict[str, set[str]] = {}
        with self.db.session() as session:
            for batch in chunks(group_ids):
                for group_id, user_id in session.execute(select(GroupMember.group_id, GroupMember.member_id).where(
                        GroupMember.tenant_id == tenant, GroupMember.group_id.in_(batch),
                        GroupMember.member_type == "User")):
                    members.setdefault(group_id, set()).add(user_id)
        return members


def _with_id(text: str, row_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = orjson.loads(text)
    resource["id"] = row_id
    return resource
