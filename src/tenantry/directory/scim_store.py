"""The SCIM resource store: users and groups as RFC 7643 resources over the directory tables.

Writes validate with scim2-models (creation, replacement and PATCH contexts, under the tolerance policy of
``protocols.scim.resources.POLICY``), then store the resource as sent plus its indexed values, in one
transaction: a request that fails changes nothing. Reads return plain dicts, ready to be rendered.
Group members are rows, never a JSON list, so a member PATCH on a huge group is a few indexed statements.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    PreconditionFailedException,
    SCIMException,
    UniquenessException,
)
from scim2_models.path import AttrPath
from sqlalchemy import DateTime, delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database
from tenantry.directory.models import Group, GroupMember, User, UserValue
from tenantry.directory.phones import phone_key
from tenantry.directory.scim_filter import MULTI_COMPLEX, FilterCompiler, attr_key, fold, with_user_name_keys
from tenantry.protocols.scim.errors import validation_error_to_scim
from tenantry.protocols.scim.limits import GROUP_COLUMNS, USER_COLUMNS, check_filter, check_member, check_resource
from tenantry.protocols.scim.normalize import normalize_patch, normalize_resource
from tenantry.protocols.scim.resources import POLICY, RESOURCE_MODELS, scim_filter, scim_path
from tenantry.protocols.scim.resources import patch_op as patch_op_class

# Attributes never stored in ``resource``: the server's own (id, meta), computed (groups, members),
# or write-only (password: Tenantry authenticates nobody with it, so it is not kept).
_NOT_STORED = ("id", "meta", "groups", "members", "password")
# Longer values are indexed by their first characters (eq on them can still never be wrong: lengths differ).
_MAX_INDEXED = 1000
# Held in columns of ``users`` (and filtered there), so not repeated in ``user_values``.
_COLUMNS = ("username", "active", "externalid")
# Concurrent writes: replace, patch and delete read the row they change with ``lock=True`` and keep it locked
# until they commit (a group's member rows change under its lock too). A row lock, not a compare-and-set on
# ``version``: a PATCH is applied to the stored resource, so two writers without If-Match must both be
# applied, one after the other, to the latest state (20 concurrent "add e-mail" PATCHes all land); with a
# compare-and-set every loser would retry the whole validate-and-apply. Under the lock the If-Match check
# (RFC 7644 §3.14) sees the version the write replaces, so of N writers holding the same ETag one gets 200 and
# the others 412. PostgreSQL: SELECT … FOR NO KEY UPDATE (the waiter reads the row its holder committed; NO KEY,
# so rows that merely reference this one, e.g. licence assignments, are not blocked). SQLite has no FOR
# clause: there the write transaction holds the database's write lock from its first statement (BEGIN
# IMMEDIATE under ``Database.writing``), against this process's other threads and other processes.


T = TypeVar("T")


@dataclass
class Page:
    total: int
    start_index: int
    resources: list[dict[str, Any]]


def etag(version: int) -> str:
    return f'W/"{version}"'


def _check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7644 §3.14: a write with If-Match on a stale version fails with 412 and changes nothing."""
    if if_match is None:
        return
    candidates = [c.strip() for c in if_match.split(",")]
    if "*" in candidates or etag(version) in candidates or f'"{version}"' in candidates:
        return
    raise PreconditionFailedException(detail=f"resource is at version {etag(version)}, not {if_match}")


def _iso(when: datetime) -> str:
    return as_utc(when).isoformat().replace("+00:00", "Z")


def _meta(resource_type: str, created: datetime, modified: datetime, version: int) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": _iso(created),
        "lastModified": _iso(modified),
        "version": etag(version),
    }


def index_rows(doc: dict[str, Any], region: str | None) -> list[dict[str, Any]]:
    """Every string and boolean leaf of a user resource, as ``user_values`` rows (without ids)."""
    rows: list[dict[str, Any]] = []

    def leaf(attr: str, value: Any, type_key: str | None = None, entry: int | None = None) -> None:
        if isinstance(value, bool):
            key = "true" if value else "false"
        elif isinstance(value, str):
            key = fold(attr, value)[:_MAX_INDEXED]
        else:
            return
        e164 = phone_key(value, region) if attr == "phonenumbers.value" and isinstance(value, str) else None
        rows.append({"attr": attr, "type_key": type_key, "entry": entry, "value_key": key, "e164": e164})

    def walk(prefix: str, obj: dict[str, Any]) -> None:
        for name, value in obj.items():
            lname = name.lower()
            if lname in ("schemas",) or (not prefix and (lname in _NOT_STORED or lname in _COLUMNS)):
                continue
            if lname.startswith("urn:") and isinstance(value, dict):
                walk(lname + ":", value)
                continue
            attr = prefix + lname
            if isinstance(value, dict):
                for sub, sub_value in value.items():
                    leaf(f"{attr}.{sub.lower()}", sub_value)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        type_value = item.get("type")
                        type_key = fold("type", type_value) if isinstance(type_value, str) else None
                        for sub, sub_value in item.items():
                            leaf(f"{attr}.{sub.lower()}", sub_value, type_key, i)
                    else:
                        leaf(attr, item, None, i)
            else:
                leaf(attr, value)

    walk("", doc)
    return rows


class ScimStore:
    """Create, read, replace, patch, delete and search users and groups of one database."""

    def __init__(self, db: Database, *, default_phone_region: str | None = None, max_results: int = 1000):
        self.db = db
        self.region = default_phone_region
        self.max_results = max_results

    # -- validation ----------------------------------------------------------

    @staticmethod
    def _validate(resource_type: str, payload: Any, ctx: Context) -> Any:
        if not isinstance(payload, dict):
            from scim2_models import InvalidSyntaxException

            raise InvalidSyntaxException(detail="the request body must be a JSON object")
        model = RESOURCE_MODELS[resource_type]
        try:
            return model.model_validate(normalize_resource(payload), scim_ctx=ctx, scim_policy=POLICY)
        except ValidationError as exc:
            raise validation_error_to_scim(exc) from exc

    @staticmethod
    def _dump(model: Any) -> dict[str, Any]:
        doc: dict[str, Any] = model.model_dump(scim_policy=POLICY)
        for name in _NOT_STORED:
            doc.pop(name, None)
        return doc

    def parse_filter(self, resource_type: str, text: str) -> Any:
        try:
            parsed = scim_filter(resource_type, text)
            # An attribute no schema defines would match nothing, and an IdP that looks a user up before
            # creating it would then create a duplicate: say so instead (400 invalidFilter).
            parsed._validate_semantics(strict=True)
        except SCIMException as exc:
            raise InvalidFilterException(detail=f"{exc.detail} (filter: {text})") from exc
        except (ValueError, ValidationError) as exc:
            raise InvalidFilterException(detail=f"{exc} (filter: {text})") from exc
        return parsed

    # -- users -----------------------------------------------------------------

    def _user_doc(self, session: Session, row: User, groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": row.id}
        doc.update(orjson.loads(row.resource))
        if groups is None:
            groups = self._groups_of(session, row.tenant_id, [row.id]).get(row.id, [])
        if groups:
            doc["groups"] = groups
        doc["meta"] = _meta("User", row.created, row.last_modified, row.version)
        return doc

    @staticmethod
    def _groups_of(session: Session, tenant: str, user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The groups of ``tenant`` each user is a direct member of.

        Another tenant's group may hold this user's id as a member (its IdP sent it; it is kept as sent), but
        that row is the other tenant's: it never shows here.
        """
        if not user_ids:
            return {}
        result: dict[str, list[dict[str, Any]]] = {}
        stmt = (
            select(GroupMember.member_id, Group.id, Group.display_name)
            .join(Group, (Group.id == GroupMember.group_id) & (Group.tenant_id == tenant))
            .where(GroupMember.tenant_id == tenant, GroupMember.member_id.in_(user_ids))
        )
        for member_id, group_id, display in session.execute(stmt):
            result.setdefault(member_id, []).append({"value": group_id, "display": display, "type": "direct"})
        return result

    def _write_user(self, session: Session, tenant: str, row: User, model: Any) -> None:
        doc = self._dump(model)
        check_resource("User", doc)  # lengths and NUL, before PostgreSQL refuses them (limits.py)
        user_name = doc.get("userName")
        key = fold("username", user_name) if isinstance(user_name, str) else ""
        if not isinstance(user_name, str) or not key:
            raise InvalidValueException(detail="userName is required and must be a non-empty string")
        if len(key) > USER_COLUMNS["userName"]:  # lower case can be longer ("İ" → "i̇")
            raise InvalidValueException(detail=f"userName is longer than {USER_COLUMNS['userName']} characters")
        # Stored and returned as sent but for white space at either end (docs/scim.md "userName").
        user_name = doc["userName"] = user_name.strip()
        clash = session.scalar(
            select(User.id).where(User.tenant_id == tenant, User.user_name_key == key, User.id != row.id)
        )
        if clash:
            raise UniquenessException(detail=f"userName {user_name!r} is already taken (userNames are compared "
                                             "after NFKC, case folding, trimming and removing invisible characters)")
        name = doc.get("name") or {}
        row.user_name = user_name
        row.user_name_key = key
        row.external_id = doc.get("externalId")
        row.display_name = doc.get("displayName")
        row.given_name = name.get("givenName")
        row.family_name = name.get("familyName")
        row.active = doc.get("active") is not False
        row.resource = orjson.dumps(doc).decode()
        session.add(row)
        self._flush_and(session, lambda: None)
        session.execute(delete(UserValue).where(UserValue.user_id == row.id))
        rows = index_rows(doc, self.region)
        if rows:
            session.execute(
                insert(UserValue), [{**r, "user_id": row.id, "tenant_id": tenant} for r in rows]
            )

    def _get_user_row(self, session: Session, tenant: str, user_id: str, *, lock: bool = False) -> User:
        row = session.get(User, user_id, with_for_update=FOR_WRITE if lock else None)
        if row is None or row.tenant_id != tenant:
            raise NotFoundException(detail=f"User {user_id} not found")
        return row

    # -- groups ----------------------------------------------------------------

    def _group_doc(self, session: Session, row: Group, with_members: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": row.id}
        doc.update(orjson.loads(row.resource))
        if with_members:
            members = self._members_of(session, row.tenant_id, row.id)
            if members:
                doc["members"] = members
        doc["meta"] = _meta("Group", row.created, row.last_modified, row.version)
        return doc

    @staticmethod
    def _members_of(session: Session, tenant: str, group_id: str) -> list[dict[str, Any]]:
        """Members with ``display`` as the IdP sent it, else the member's current name.

        Names come only from the group's own tenant: a member id that is another tenant's user or group
        (kept as sent) shows as the bare id, never with the other tenant's name.
        """
        rows = session.execute(
            select(GroupMember.member_id, GroupMember.member_type, GroupMember.display,
                   User.display_name, User.user_name, Group.display_name)
            .outerjoin(User, (User.id == GroupMember.member_id) & (User.tenant_id == tenant))
            .outerjoin(Group, (Group.id == GroupMember.member_id) & (Group.tenant_id == tenant))
            .where(GroupMember.tenant_id == tenant, GroupMember.group_id == group_id)
            .order_by(GroupMember.member_id)
        ).all()
        members = []
        for member_id, mtype, display, user_display, user_name, group_display in rows:
            member: dict[str, Any] = {"value": member_id, "type": mtype}
            shown = display or user_display or user_name or group_display
            if shown:
                member["display"] = shown
            members.append(member)
        return members

    def _write_group(self, session: Session, tenant: str, row: Group, model: Any) -> None:
        doc = self._dump(model)
        check_resource("Group", doc)  # lengths and NUL, before PostgreSQL refuses them (limits.py)
        display = doc.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise InvalidValueException(detail="displayName is required and must be a non-empty string")
        key = fold("displayname", display)
        if len(key) > GROUP_COLUMNS["displayName"]:  # lower case can be longer ("İ" → "i̇")
            raise InvalidValueException(
                detail=f"displayName is longer than {GROUP_COLUMNS['displayName']} characters")
        clash = session.scalar(
            select(Group.id).where(Group.tenant_id == tenant, Group.display_name_key == key, Group.id != row.id)
        )
        if clash:
            raise UniquenessException(detail=f"a group named {display!r} already exists")
        row.display_name = display
        row.display_name_key = key
        row.external_id = doc.get("externalId")
        row.resource = orjson.dumps(doc).decode()
        session.add(row)
        self._flush_and(session, lambda: None)

    def _get_group_row(self, session: Session, tenant: str, group_id: str, *, lock: bool = False) -> Group:
        row = session.get(Group, group_id, with_for_update=FOR_WRITE if lock else None)
        if row is None or row.tenant_id != tenant:
            raise NotFoundException(detail=f"Group {group_id} not found")
        return row

    def _resolve_members(
        self, session: Session, tenant: str, values: Iterable[Any]
    ) -> dict[str, tuple[str, str | None]]:
        """member id → (type, display as sent).

        An id that is no user or group (yet) is kept, typed as the request says or "User": identity
        providers do not promise to send a member before the group that names it, and a membership dropped
        here would be lost without a word.
        """
        ids: list[str] = []
        given: dict[str, tuple[str | None, str | None]] = {}
        for item in values:
            value = item.get("value") if isinstance(item, dict) else item
            if not isinstance(value, str) or not value:
                raise InvalidValueException(detail=f"a member needs a 'value' holding an id, got {item!r}")
            check_member(value, item.get("display") if isinstance(item, dict) else None)
            ids.append(value)
            if isinstance(item, dict):
                mtype = item.get("type") if item.get("type") in ("User", "Group") else None
                display = item.get("display") if isinstance(item.get("display"), str) else None
                given[value] = (mtype, display)
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for (uid,) in session.execute(select(User.id).where(User.tenant_id == tenant, User.id.in_(chunk))):
                found[uid] = "User"
            for (gid,) in session.execute(select(Group.id).where(Group.tenant_id == tenant, Group.id.in_(chunk))):
                found[gid] = "Group"
        out: dict[str, tuple[str, str | None]] = {}
        for member_id in ids:
            mtype, display = given.get(member_id, (None, None))
            out[member_id] = (found.get(member_id) or mtype or "User", display)
        return out

    def _add_members(
        self, session: Session, tenant: str, group_id: str, members: dict[str, tuple[str, str | None]]
    ) -> None:
        if not members:
            return
        present: set[str] = set()
        ids = list(members)
        for start in range(0, len(ids), 500):
            present.update(
                session.scalars(
                    select(GroupMember.member_id).where(
                        GroupMember.group_id == group_id, GroupMember.member_id.in_(ids[start : start + 500])
                    )
                )
            )
        new = [
            {"group_id": group_id, "member_id": m, "member_type": t, "display": d, "tenant_id": tenant}
            for m, (t, d) in members.items()
            if m not in present and m != group_id
        ]
        if new:
            session.execute(insert(GroupMember), new)

    @staticmethod
    def _remove_members(session: Session, group_id: str, ids: Sequence[str] | None) -> None:
        stmt = delete(GroupMember).where(GroupMember.group_id == group_id)
        if ids is None:
            session.execute(stmt)
            return
        for start in range(0, len(ids), 500):
            session.execute(stmt.where(GroupMember.member_id.in_(ids[start : start + 500])))

    # -- the operations ----------------------------------------------------------

    def create(self, tenant: str, resource_type: str, payload: Any) -> dict[str, Any]:
        model = self._validate(resource_type, payload, Context.RESOURCE_CREATION_REQUEST)
        now = utcnow()
        with self.db.writing(), self.db.session() as session:
            new_id = str(uuid.uuid4())
            if resource_type == "User":
                user = User(id=new_id, tenant_id=tenant, created=now, last_modified=now, version=1)
                self._write_user(session, tenant, user, model)
                return self._flush_and(session, lambda: self._user_doc(session, user, []))
            group = Group(id=new_id, tenant_id=tenant, created=now, last_modified=now, version=1)
            self._write_group(session, tenant, group, model)
            members = payload.get("members") or []
            if members:
                self._add_members(session, tenant, new_id, self._resolve_members(session, tenant, members))
            return self._group_doc(session, group)

    @staticmethod
    def _flush_and(session: Session, then: Callable[[], T]) -> T:
        try:
            session.flush()
        except IntegrityError as exc:
            # Two writers raced past the uniqueness check: the constraint has the last word.
            raise UniquenessException(detail="a resource with the same unique attribute exists") from exc
        return then()

    def get(
        self, tenant: str, resource_type: str, resource_id: str, *, with_members: bool = True
    ) -> dict[str, Any]:
        with self.db.session() as session:
            if resource_type == "User":
                return self._user_doc(session, self._get_user_row(session, tenant, resource_id))
            return self._group_doc(session, self._get_group_row(session, tenant, resource_id), with_members)

    def replace(
        self, tenant: str, resource_type: str, resource_id: str, payload: Any, if_match: str | None = None
    ) -> dict[str, Any]:
        model = self._validate(resource_type, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        if isinstance(payload, dict) and payload.get("id") not in (None, resource_id):
            raise MutabilityException(detail="id is immutable and does not match the resource")
        with self.db.writing(), self.db.session() as session:
            if resource_type == "User":
                user = self._get_user_row(session, tenant, resource_id, lock=True)
                _check_if_match(if_match, user.version)
                current = RESOURCE_MODELS["User"].model_validate(self._user_doc(session, user, []))
                self._replace_checks(model, current)
                self._write_user(session, tenant, user, model)
                self._bump(user)
                return self._flush_and(session, lambda: self._user_doc(session, user))
            group = self._get_group_row(session, tenant, resource_id, lock=True)
            _check_if_match(if_match, group.version)
            current = RESOURCE_MODELS["Group"].model_validate(self._group_doc(session, group, False))
            self._replace_checks(model, current)
            self._write_group(session, tenant, group, model)
            # PUT replaces the whole resource, members included (RFC 7644 §3.5.1).
            self._remove_members(session, resource_id, None)
            members = payload.get("members") or []
            self._add_members(session, tenant, resource_id, self._resolve_members(session, tenant, members))
            self._bump(group)
            return self._flush_and(session, lambda: self._group_doc(session, group))

    @staticmethod
    def _replace_checks(model: Any, current: Any) -> None:
        try:
            model.replace(current)
        except SCIMException:
            raise
        except ValidationError as exc:
            raise validation_error_to_scim(exc) from exc

    @staticmethod
    def _bump(row: User | Group) -> None:
        row.version += 1
        row.last_modified = max(utcnow(), as_utc(row.last_modified))

    def patch(
        self, tenant: str, resource_type: str, resource_id: str, payload: Any, if_match: str | None = None,
        *, with_members: bool = True,
    ) -> dict[str, Any]:
        payload = normalize_patch(payload)
        member_ops: list[dict[str, Any]] = []
        if resource_type == "Group":
            payload, member_ops = _split_member_operations(payload)
        model_cls = RESOURCE_MODELS[resource_type]
        patch_op = None
        if payload["Operations"]:
            try:
                patch_op = patch_op_class(resource_type).model_validate(
                    payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
                )
            except ValidationError as exc:
                raise validation_error_to_scim(exc) from exc
        with self.db.writing(), self.db.session() as session:
            row: User | Group
            if resource_type == "User":
                row = self._get_user_row(session, tenant, resource_id, lock=True)
                _check_if_match(if_match, row.version)
                current = model_cls.model_validate(self._user_doc(session, row, []))
            else:
                row = self._get_group_row(session, tenant, resource_id, lock=True)
                _check_if_match(if_match, row.version)
                current = model_cls.model_validate(self._group_doc(session, row, False))
            changed = False
            if patch_op is not None:
                try:
                    changed = patch_op.patch(current, POLICY)
                except ValidationError as exc:
                    raise validation_error_to_scim(exc) from exc
            if changed:
                if isinstance(row, User):
                    self._write_user(session, tenant, row, current)
                else:
                    self._write_group(session, tenant, row, current)
            for op in member_ops:
                changed = self._apply_member_op(session, tenant, resource_id, op) or changed
            if changed:
                self._bump(row)
            if isinstance(row, User):
                user = row
                return self._flush_and(session, lambda: self._user_doc(session, user))
            group = row
            return self._flush_and(session, lambda: self._group_doc(session, group, with_members))

    def _apply_member_op(self, session: Session, tenant: str, group_id: str, op: dict[str, Any]) -> bool:
        kind = op["op"]
        values = op.get("value")
        if isinstance(values, dict):
            values = [values]
        if kind == "remove":
            ids = op.get("ids")
            if ids is None and values is not None:
                ids = [v.get("value") if isinstance(v, dict) else v for v in values]
            self._remove_members(session, group_id, ids)
            return True
        if not isinstance(values, list):
            raise InvalidValueException(detail="members must be given as a list of {\"value\": id}")
        members = self._resolve_members(session, tenant, values)
        if kind == "replace":
            self._remove_members(session, group_id, None)
        self._add_members(session, tenant, group_id, members)
        return True

    def delete(self, tenant: str, resource_type: str, resource_id: str,
               if_match: str | None = None) -> dict[str, str | None]:
        """Delete the resource; its names (``userName``, ``displayName``, ``externalId``), for the request log."""
        with self.db.writing(), self.db.session() as session:
            if resource_type == "User":
                user = self._get_user_row(session, tenant, resource_id, lock=True)
                _check_if_match(if_match, user.version)
                # Only this tenant's memberships: another tenant's group may name the same id (kept as sent).
                session.execute(delete(GroupMember).where(GroupMember.tenant_id == tenant,
                                                          GroupMember.member_id == resource_id))
                session.delete(user)
                return {"userName": user.user_name, "displayName": user.display_name, "externalId": user.external_id}
            group = self._get_group_row(session, tenant, resource_id, lock=True)
            _check_if_match(if_match, group.version)
            session.execute(delete(GroupMember).where(GroupMember.tenant_id == tenant,
                                                      GroupMember.member_id == resource_id))
            session.delete(group)
            return {"displayName": group.display_name, "externalId": group.external_id}

    def _search_simple(self, tenant: str, key: str, value: str, start_index: int, count: int) -> Page:
        """``userName eq "…"`` and kin — what every IdP sends before it creates a user — as one prepared
        statement on one index, groups joined in, without the ORM and without a COUNT unless paging needs it."""
        literal = fold("username", value) if key == "username" else value
        params = {"tenant": tenant, "value": literal, "limit": count + 1, "offset": start_index - 1}
        with self.db.engine.connect() as conn:
            rows = conn.execute(_SIMPLE_QUERIES[key], params).all()
            ids: list[str] = list(dict.fromkeys(r[0] for r in rows))
            more = len(ids) > count
            ids = ids[:count]
            if not more and (start_index == 1 or ids):
                total = start_index - 1 + len(ids)
            else:
                total = conn.execute(_SIMPLE_COUNTS[key], params).scalar() or 0
        docs: dict[str, dict[str, Any]] = {}
        for user_id, resource, created, modified, version, group_id, group_name in rows:
            if user_id not in docs:
                if len(docs) == len(ids):
                    break
                doc: dict[str, Any] = {"id": user_id}
                doc.update(orjson.loads(resource))
                doc["meta"] = _meta("User", created, modified, version)
                docs[user_id] = doc
            if group_id is not None:
                docs[user_id].setdefault("groups", []).append(
                    {"value": group_id, "display": group_name, "type": "direct"})
        for doc in docs.values():  # meta goes last, as on every other path
            doc["meta"] = doc.pop("meta")
        return Page(total, start_index, list(docs.values()))

    def search(
        self,
        tenant: str,
        resource_type: str,
        *,
        filter_text: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        start_index: int = 1,
        count: int | None = None,
        with_members: bool = True,
    ) -> Page:
        table: Any = User if resource_type == "User" else Group
        start_index = max(1, start_index)
        count = self.max_results if count is None else max(0, min(count, self.max_results))
        if filter_text:
            check_filter(filter_text)  # bounded before parsing: length, terms, NUL (limits.py)
        if filter_text and resource_type == "User" and not sort_by and count:
            simple = simple_equality(filter_text)
            if simple is not None:
                return self._search_simple(tenant, simple[0], simple[1], start_index, count)
        where = [table.tenant_id == tenant]
        parsed = None
        exact = True
        if filter_text:
            parsed = self.parse_filter(resource_type, filter_text)
            compiled = FilterCompiler(resource_type, self.region).compile(parsed.ast)
            where.append(compiled.condition)
            exact = compiled.exact
        sort_column = self._sort_column(resource_type, sort_by) if sort_by else table.id
        descending = (sort_order or "ascending").lower() == "descending"
        with self.db.session() as session:
            if exact and sort_column is not None:
                total = session.scalar(select(func.count()).select_from(table).where(*where)) or 0
                if count == 0:
                    return Page(total, start_index, [])
                order = [sort_column.desc() if descending else sort_column.asc(), table.id]
                rows = session.scalars(
                    select(table).where(*where).order_by(*order).offset(start_index - 1).limit(count)
                ).all()
                return Page(total, start_index, self._docs(session, tenant, resource_type, rows, with_members))
            # The slow, exact path: candidates from SQL, verified (and sorted) by scim2-models' evaluator.
            rows = session.scalars(select(table).where(*where).order_by(table.id)).all()
            docs = self._docs(session, tenant, resource_type, rows, True)
            model_cls = RESOURCE_MODELS[resource_type]
            if parsed is not None and not exact:
                docs = self._verified(parsed, model_cls, docs)
            if sort_by:
                docs = _python_sort(docs, sort_by, descending)
            if not with_members:
                for d in docs:
                    d.pop("members", None)
            total = len(docs)
            return Page(total, start_index, docs[start_index - 1 : start_index - 1 + count])

    @staticmethod
    def _verified(parsed: Any, model_cls: Any, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The candidates scim2-models' evaluator accepts, userName compared on its key as the SQL does."""
        keyed = type(parsed)(with_user_name_keys(parsed.ast))

        def as_keyed(doc: dict[str, Any]) -> dict[str, Any]:
            user_name = doc.get("userName")
            return {**doc, "userName": fold("username", user_name)} if isinstance(user_name, str) else doc

        return [d for d in docs if keyed.match(model_cls.model_validate(as_keyed(d)))]

    def _docs(
        self, session: Session, tenant: str, resource_type: str, rows: Sequence[Any], with_members: bool
    ) -> list[dict[str, Any]]:
        if resource_type == "User":
            groups = self._groups_of(session, tenant, [r.id for r in rows])
            return [self._user_doc(session, r, groups.get(r.id, [])) for r in rows]
        return [self._group_doc(session, r, with_members) for r in rows]

    @staticmethod
    def _sort_column(resource_type: str, sort_by: str) -> Any:
        """The column that sorts like ``sortBy`` does, or None when only Python can sort on it."""
        try:
            node = scim_path(resource_type, sort_by).ast
            key = attr_key(node) if isinstance(node, AttrPath) else sort_by.lower()
        except (SCIMException, ValueError, ValidationError):
            raise InvalidValueException(detail=f"sortBy {sort_by!r} is not an attribute") from None
        if resource_type == "User":
            return {
                "id": User.id,
                "username": User.user_name_key,
                "externalid": User.external_id,
                "meta.created": User.created,
                "meta.lastmodified": User.last_modified,
                "displayname": func.lower(User.display_name),
                "name.givenname": func.lower(User.given_name),
                "name.familyname": func.lower(User.family_name),
            }.get(key)
        return {
            "id": Group.id,
            "displayname": Group.display_name_key,
            "externalid": Group.external_id,
            "meta.created": Group.created,
            "meta.lastmodified": Group.last_modified,
        }.get(key)

    # -- helpers for other domains ---------------------------------------------------

    def member_count(self, tenant: str, group_id: str) -> int:
        with self.db.session() as session:
            self._get_group_row(session, tenant, group_id)
            return session.scalar(
                select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group_id)) or 0

    def counts(self, tenant: str) -> dict[str, int]:
        with self.db.session() as session:
            users = session.scalar(select(func.count()).select_from(User).where(User.tenant_id == tenant)) or 0
            groups = session.scalar(select(func.count()).select_from(Group).where(Group.tenant_id == tenant)) or 0
        return {"users": users, "groups": groups}



_SIMPLE_EQ = re.compile(
    r'^\s*(?:urn:ietf:params:scim:schemas:core:2\.0:user:)?(username|externalid|id)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$',
    re.IGNORECASE,
)


def simple_equality(text: str) -> tuple[str, str] | None:
    """(attribute, value) when the filter is exactly ``userName|externalId|id eq "<string>"``, else None.

    The common IdP look-up skips the general parser; anything else — and any doubt — takes the full path.
    compValue strings are JSON strings (RFC 7644 §3.4.2.2), so the value is read as JSON.
    """
    match = _SIMPLE_EQ.match(text)
    if match is None:
        return None
    try:
        value = orjson.loads(f'"{match.group(2)}"')
    except orjson.JSONDecodeError:
        return None
    return (match.group(1).lower(), value) if isinstance(value, str) else None


def _simple_query(column: str) -> Any:
    # Built once: the user rows (limit counts users, groups joined in after the page is cut).
    return text(
        "SELECT u.id, u.resource, u.created, u.last_modified, u.version, g.id, g.display_name "
        "FROM (SELECT id, resource, created, last_modified, version FROM users "
        f"WHERE tenant_id = :tenant AND {column} = :value ORDER BY id LIMIT :limit OFFSET :offset) AS u "
        # Memberships and groups of the same tenant only: another tenant's group may name this user's id.
        "LEFT JOIN group_members gm ON gm.member_id = u.id AND gm.tenant_id = :tenant "
        "LEFT JOIN groups g ON g.id = gm.group_id AND g.tenant_id = :tenant "
        "ORDER BY u.id"
    ).columns(created=DateTime(timezone=True), last_modified=DateTime(timezone=True))


_SIMPLE_QUERIES = {"username": _simple_query("user_name_key"), "externalid": _simple_query("external_id"),
                   "id": _simple_query("id")}
_SIMPLE_COUNTS = {
    key: text(f"SELECT count(*) FROM users WHERE tenant_id = :tenant AND {column} = :value")
    for key, column in (("username", "user_name_key"), ("externalid", "external_id"), ("id", "id"))
}


def _python_sort(docs: list[dict[str, Any]], sort_by: str, descending: bool) -> list[dict[str, Any]]:
    parts = sort_by.split(".")

    def value(doc: dict[str, Any]) -> Any:
        current: Any = doc
        for part in parts:
            if isinstance(current, list):
                primary = [c for c in current if isinstance(c, dict) and c.get("primary")]
                current = (primary or current or [None])[0]
            if not isinstance(current, dict):
                return None
            current = next((v for k, v in current.items() if k.lower() == part.lower()), None)
        if isinstance(current, list):
            current = current[0] if current else None
        if isinstance(current, dict):
            current = current.get("value")
        return current.lower() if isinstance(current, str) else current

    present = [d for d in docs if value(d) is not None]
    absent = [d for d in docs if value(d) is None]
    # RFC 7644 §3.4.2.3: missing values sort last ascending, first descending.
    present.sort(key=value, reverse=descending)
    return absent + present if descending else present + absent


def _split_member_operations(payload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Take the operations on ``members`` out of a group PATCH; they are applied as row changes."""
    kept: list[dict[str, Any]] = []
    member_ops: list[dict[str, Any]] = []
    for op in payload["Operations"]:
        kind = str(op.get("op", "")).lower()
        path = op.get("path")
        if isinstance(path, str) and path.strip():
            lpath = path.strip().lower()
            for prefix in ("urn:ietf:params:scim:schemas:core:2.0:group:",):
                lpath = lpath.removeprefix(prefix)
            if lpath == "members":
                member_ops.append({"op": kind, "value": op.get("value")})
                continue
            if lpath.startswith("members["):
                if kind != "remove":
                    raise InvalidValueException(
                        detail="only 'remove' may select members with a filter; use add/replace with values"
                    )
                member_ops.append({"op": "remove", "ids": _member_ids_from_path(path)})
                continue
            kept.append(op)
            continue
        value = op.get("value")
        if kind in ("add", "replace") and isinstance(value, dict):
            rest = {k: v for k, v in value.items() if k.lower() != "members"}
            members = [v for k, v in value.items() if k.lower() == "members"]
            if members:
                member_ops.append({"op": kind, "value": members[0]})
            if rest:
                kept.append({**op, "value": rest})
            continue
        kept.append(op)
    return {**payload, "Operations": kept}, member_ops


def _member_ids_from_path(path: str) -> list[str]:
    """``members[value eq "a" or value eq "b"]`` → ["a", "b"]; any other selector is refused."""
    from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator, ValuePath

    try:
        node = scim_path("Group", path).ast
    except (SCIMException, ValueError, ValidationError) as exc:
        raise InvalidValueException(detail=f"invalid path {path!r}") from exc
    if not isinstance(node, ValuePath):
        raise InvalidValueException(detail=f"invalid members path {path!r}")
    inner = node.val_filter
    terms = inner.terms if isinstance(inner, LogicalExpr) and inner.op is LogicalOperator.or_ else (inner,)
    ids: list[str] = []
    for term in terms:
        if (
            isinstance(term, Comparison)
            and term.op is CompareOperator.eq
            and term.attr_path.attr.lower() == "value"
            and isinstance(term.value, str)
        ):
            ids.append(term.value)
        else:
            raise InvalidValueException(detail=f"members may be selected by 'value eq \"id\"' only, not {term}")
    return ids


__all__ = ["MULTI_COMPLEX", "Page", "ScimStore", "etag", "index_rows"]
