"""What a cycle reads of the directory: ids, changes since a watermark, resources, direct memberships.

Read-only, in chunks (a 100,000-user directory is never loaded as ORM objects): the cycle keeps ids and the
mapped values, not the resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.core.batches import chunks
from tenantry.directory.models import Group, GroupMember, User


def changed_versions(session: Session, tenant: str, object_type: str, since: datetime) -> dict[str, int]:
    """Objects modified since ``since``, with their version (the SCIM ETag number)."""
    model = User if object_type == "User" else Group
    rows = session.execute(select(model.id, model.version).where(
        model.tenant_id == tenant, model.last_modified >= since)).all()
    return {row_id: version for row_id, version in rows}


def existing_ids(session: Session, tenant: str, object_type: str, ids: Iterable[str]) -> set[str]:
    model = User if object_type == "User" else Group
    found: set[str] = set()
    for batch in chunks(ids):
        found.update(session.scalars(select(model.id).where(model.tenant_id == tenant, model.id.in_(batch))))
    return found


def group_ids(session: Session, tenant: str) -> list[str]:
    return sorted(session.scalars(select(Group.id).where(Group.tenant_id == tenant)))


def docs(session: Session, tenant: str, object_type: str, ids: Iterable[str],
         ) -> Iterator[tuple[dict[str, Any], int]]:
    """The resources as stored, with ``id`` (no computed ``groups``/``members``: mappings do not read them), and
    their version. A user whose IdP never sent ``active`` is active (the directory's own flag), as Entra's
    IsSoftDeleted mapping would say."""
    if object_type == "Group":
        for batch in chunks(ids):
            for row_id, resource, version in session.execute(select(Group.id, Group.resource, Group.version).where(
                    Group.tenant_id == tenant, Group.id.in_(batch))):
                doc: dict[str, Any] = orjson.loads(resource)
                doc["id"] = row_id
                yield doc, version
        return
    for batch in chunks(ids):
        for row_id, resource, active, version in session.execute(
                select(User.id, User.resource, User.active, User.version).where(
                    User.tenant_id == tenant, User.id.in_(batch))):
            doc = orjson.loads(resource)
            doc["id"] = row_id
            doc.setdefault("active", bool(active))
            yield doc, version


def direct_user_members(session: Session, tenant: str, group_ids: Iterable[str]) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {}
    for batch in chunks(group_ids):
        for group_id, user_id in session.execute(select(GroupMember.group_id, GroupMember.member_id).where(
                GroupMember.tenant_id == tenant, GroupMember.group_id.in_(batch),
                GroupMember.member_type == "User")):
            members.setdefault(group_id, set()).add(user_id)
    return members
