"""The SQL of SCIM users and groups: one repository per resource type, so the store never asks which it has.

A repository reads and writes one table's rows (``users`` with their indexed ``user_values``, ``groups`` with
their ``group_members``) and turns a row into the resource document the store returns. It holds no SCIM rule:
validation, PATCH, conditions and queries are the store's and ``protocols.scim``'s. Every statement carries
the tenant: another tenant's rows are never read, even where they name this tenant's ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import orjson
from scim2_models import InvalidValueException, NotFoundException, UniquenessException
from sqlalchemy import Connection, DateTime, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database, give_way, parse_when, run_prebuilt
from tenantry.directory.models import Group, GroupMember, User, UserValue
from tenantry.directory.scim_filter import fold
from tenantry.protocols.phones import phone_key
from tenantry.protocols.scim.conditions import check_if_match, etag
from tenantry.protocols.scim.limits import GROUP_COLUMNS, USER_COLUMNS, check_resource
from tenantry.protocols.scim.patch import MemberChange, MemberRef, member_refs, split_member_operations
from tenantry.protocols.scim.resources import POLICY
from tenantry.protocols.scim.search import simple_equality
from tenantry.protocols.scim.simple_patch import SimpleSet, apply_simple_patch

# Attributes never stored in ``resource``: the server's own (id, meta), computed (groups, members),
# or write-only (password: Tenantry authenticates nobody with it, so it is not kept).
NOT_STORED = ("id", "meta", "groups", "members", "password")
# The largest body, and stored resource, a write is tried with on the event loop (``ScimStore.writes_inline``): an
# identity provider's user is 1–3 KB; a bigger one is validated and stored on a worker thread, so the loop is never
# held for long. The stored one is known once the write has read it: it then gives way (``core.db.give_way``).
INLINE_WRITE_MAX_BYTES = 16_384
# Longer values are indexed by their first characters (eq on them can still never be wrong: lengths differ).
_MAX_INDEXED = 1000
# Held in columns of ``users`` (and filtered there), so not repeated in ``user_values``.
_COLUMNS = ("username", "active", "externalid")

T = TypeVar("T")
RowT = TypeVar("RowT", User, Group)


@dataclass
class Page:
    """One page of a query's answer: the total found, where the page starts (1-based), its resources."""

    total: int
    start_index: int
    resources: list[dict[str, Any]]


def _iso(when: datetime) -> str:
    return as_utc(when).isoformat().replace("+00:00", "Z")


def meta(resource_type: str, created: datetime, modified: datetime, version: int) -> dict[str, Any]:
    return {"resourceType": resource_type, "created": _iso(created), "lastModified": _iso(modified),
            "version": etag(version)}


def flush_and(session: Session, then: Callable[[], T]) -> T:
    """Flush, then ``then()``; a unique constraint that fires is the 409 it stands for."""
    try:
        session.flush()
    except IntegrityError as exc:
        # Two writers raced past the uniqueness check: the constraint has the last word.
        raise UniquenessException(detail="a resource with the same unique attribute exists") from exc
    return then()


def dump(model: Any) -> dict[str, Any]:
    """A validated resource as it is stored: as sent, without what the server computes or never keeps."""
    doc: dict[str, Any] = model.model_dump(scim_policy=POLICY)
    for name in NOT_STORED:
        doc.pop(name, None)
    return doc


class Repository(Generic[RowT]):
    """What the store needs of one resource type's rows; the shared parts, for one table."""

    resource_type: ClassVar[str]
    table: type[RowT]
    # Cheap enough to read on the event loop (one indexed row), rather than on a worker thread.
    reads_inline: ClassVar[bool] = False
    # Cheap enough to write on the event loop when the write lock is free (one resource, no member rows).
    writes_inline: ClassVar[bool] = False
    # Whether the type has member rows (``group_members``), which a PATCH changes apart from the resource.
    has_members: ClassVar[bool] = False
    # ``sortBy`` attribute key → the column that sorts like it (the rest is sorted in Python).
    sort_columns: ClassVar[dict[str, Any]]
    # What a listing shows (None: every row): users hidden from address lists are left out of listings.
    listed: ClassVar[Any] = None

    def __init__(self, region: str | None) -> None:
        self.region = region

    def row(self, session: Session, tenant: str, resource_id: str, *, lock: bool = False) -> RowT:
        """The row, locked until commit with ``lock`` (see ``scim_store``, "Concurrent writes"); else 404. With
        ``lock`` (a write), a stored resource over ``INLINE_WRITE_MAX_BYTES`` gives way to a thread when the write
        runs on the event loop (``_gives_way_if_big``)."""
        row = session.get(self.table, resource_id, with_for_update=FOR_WRITE if lock else None)
        if row is None or row.tenant_id != tenant:
            raise NotFoundException(detail=f"{self.resource_type} {resource_id} not found")
        if lock:
            _gives_way_if_big(row.resource)
        return row

    def new(self, tenant: str, resource_id: str, now: datetime) -> RowT:
        return self.table(id=resource_id, tenant_id=tenant, created=now, last_modified=now, version=1)

    def stored(self, row: RowT, computed: dict[str, Any] | None = None) -> dict[str, Any]:
        """The resource as stored, with ``id`` and ``meta``, and the ``computed`` attributes given (none)."""
        doc: dict[str, Any] = {"id": row.id}
        doc.update(orjson.loads(row.resource))
        if computed:
            doc.update(computed)
        doc["meta"] = meta(self.resource_type, row.created, row.last_modified, row.version)
        return doc

    def doc(self, session: Session, row: RowT, *, with_members: bool = True) -> dict[str, Any]:
        """The resource as returned: stored, plus its computed attributes (a user's groups, a group's members)."""
        raise NotImplementedError

    def docs(self, session: Session, tenant: str, rows: Sequence[RowT], *, with_members: bool) -> list[dict[str, Any]]:
        raise NotImplementedError

    def created(self, session: Session, row: RowT) -> dict[str, Any]:
        """The document of a row created in this transaction."""
        return self.doc(session, row)

    def write(self, session: Session, tenant: str, row: RowT, model: Any) -> None:
        """Store a validated resource in ``row``: columns, uniqueness, and what is indexed beside it."""
        self.write_doc(session, tenant, row, dump(model))

    def write_doc(self, session: Session, tenant: str, row: RowT, doc: dict[str, Any]) -> None:
        """As ``write``, the resource given as it is stored (``dump``'s form): a validated model's, or the stored
        document with a simple PATCH applied (``protocols.scim.simple_patch``)."""
        raise NotImplementedError

    def names(self, row: RowT) -> dict[str, str | None]:
        """What the request log keeps of a deleted resource."""
        raise NotImplementedError

    def delete(self, session: Session, tenant: str, row: RowT) -> dict[str, str | None]:
        # Only this tenant's memberships: another tenant's group may name the same id (kept as sent).
        session.execute(delete(GroupMember).where(GroupMember.tenant_id == tenant, GroupMember.member_id == row.id))
        session.delete(row)
        return self.names(row)

    def patch_simple(self, session: Session, tenant: str, resource_id: str, ops: list[SimpleSet],
                     if_match: str | None) -> dict[str, Any] | None:
        """A simple PATCH, applied and answered without the general path; None where the type has none."""
        return None

    # Whether ``create_simple`` stores a new resource of this type (else the ORM: ``new``, ``write``, ``created``).
    creates_simply: ClassVar[bool] = False

    def create_simple(self, conn: Connection, tenant: str, row_id: str, doc: dict[str, Any], now: datetime, *,
                      hidden: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    def split_patch(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[MemberChange]]:
        """The PatchOp for scim2-models and the member changes applied as rows (none but for groups)."""
        return payload, []

    def members_in(self, payload: Any) -> list[MemberRef] | None:
        """The members a POST or PUT body names, read before the transaction; None where there are none."""
        return None

    def set_members(self, session: Session, tenant: str, row_id: str, members: list[MemberRef] | None,
                    *, replace: bool) -> None:
        """A create's or replace's members as rows (PUT replaces them all, RFC 7644 §3.5.1)."""

    def change_members(self, session: Session, tenant: str, row_id: str, changes: Sequence[MemberChange]) -> bool:
        """Apply a PATCH's member changes; whether there were any."""
        return False

    def quick(self, filter_text: str | None) -> tuple[str, str] | None:
        """The (attribute, value) of a filter ``quick_search`` answers, or None: the general path then."""
        return None

    def quick_search(self, db: Database, tenant: str, simple: tuple[str, str], start_index: int,
                     count: int) -> Page:
        raise NotImplementedError

    @staticmethod
    def bump(row: RowT) -> None:
        row.version += 1
        row.last_modified = max(utcnow(), as_utc(row.last_modified))

    def _unique(self, session: Session, key_column: Any, key: str, row: RowT) -> bool:
        """Whether no other row of the tenant holds ``key`` in ``key_column``."""
        stmt = _UNIQUE.get(key_column.key)
        if stmt is None:
            stmt = _UNIQUE[key_column.key] = select(self.table.id).where(
                self.table.tenant_id == bindparam("tenant"), key_column == bindparam("key"),
                self.table.id != bindparam("id"))
        return session.scalar(stmt, {"tenant": row.tenant_id, "key": key, "id": row.id}) is None

    @staticmethod
    def _save(session: Session, row: RowT, doc: dict[str, Any]) -> None:
        row.resource = orjson.dumps(doc).decode()
        session.add(row)
        flush_and(session, lambda: None)


def _gives_way_if_big(stored: str) -> None:
    """A write on the event loop that has read a stored resource bigger than ``INLINE_WRITE_MAX_BYTES`` hands itself
    to a thread (validating and re-indexing it would hold the loop), having written nothing; elsewhere, nothing."""
    if len(stored) > INLINE_WRITE_MAX_BYTES:
        give_way("the stored resource is too big to be written on the event loop")


def _sort_columns(table: type[User | Group], **more: Any) -> dict[str, Any]:
    """``sortBy`` keys → columns: those every resource has, and the type's own (strings on their folded key, or
    lower-cased, so that they sort without case as RFC 7644 §3.4.2.3 asks)."""
    return {"id": table.id, "externalid": table.external_id, "meta.created": table.created,
            "meta.lastmodified": table.last_modified, **more}


class UserRepository(Repository[User]):
    resource_type = "User"
    table = User
    reads_inline = True
    writes_inline = True
    creates_simply = True
    listed = User.hidden_from_address_lists.is_(False)
    sort_columns = _sort_columns(User, username=User.user_name_key, displayname=func.lower(User.display_name),
                                 **{"name.givenname": func.lower(User.given_name),
                                    "name.familyname": func.lower(User.family_name)})

    def doc(self, session: Session, row: User, *, with_members: bool = True,
            groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        if groups is None:
            groups = groups_of(session, row.tenant_id, [row.id]).get(row.id, [])
        return self.stored(row, {"groups": groups} if groups else None)

    def docs(self, session: Session, tenant: str, rows: Sequence[User], *, with_members: bool) -> list[dict[str, Any]]:
        groups = groups_of(session, tenant, [r.id for r in rows])
        return [self.doc(session, r, groups=groups.get(r.id, [])) for r in rows]

    def created(self, session: Session, row: User) -> dict[str, Any]:
        return self.stored(row)   # a new id: no group can name it yet

    def names(self, row: User) -> dict[str, str | None]:
        return {"userName": row.user_name, "displayName": row.display_name, "externalId": row.external_id}

    def write_doc(self, session: Session, tenant: str, row: User, doc: dict[str, Any]) -> None:
        columns = self._columns(session, tenant, row.id, row.user_name_key, doc)
        for name, value in columns.items():
            setattr(row, name, value)
        before = row.resource   # None for a new row
        self._save(session, row, doc)
        self._reindex(session, tenant, row.id, before, doc)

    def _columns(self, session: Session | Connection, tenant: str, row_id: str, current_key: str | None,
                 doc: dict[str, Any]) -> dict[str, Any]:
        """The ``users`` columns of a resource (its userName trimmed in ``doc``), checked: lengths, NUL, a
        userName no other user of the tenant holds."""
        check_resource("User", doc)  # lengths and NUL, before PostgreSQL refuses them (limits.py)
        user_name = doc.get("userName")
        key = fold("username", user_name) if isinstance(user_name, str) else ""
        if not isinstance(user_name, str) or not key:
            raise InvalidValueException(detail="userName is required and must be a non-empty string")
        if len(key) > USER_COLUMNS["userName"]:  # lower case can be longer ("İ" → "i̇")
            raise InvalidValueException(detail=f"userName is longer than {USER_COLUMNS['userName']} characters")
        # Stored and returned as sent but for white space at either end (docs/scim.md "userName").
        user_name = doc["userName"] = user_name.strip()
        # The key a row already holds is its own: only a new key needs the look-up (the constraint stays).
        params = {"tenant": tenant, "key": key, "id": row_id}
        if key != current_key and (run_prebuilt(session, _UNIQUE_USER_NAME, params) if isinstance(session, Connection)
                                   else session.scalar(_UNIQUE_USER_NAME, params) is not None):
            raise UniquenessException(detail=f"userName {user_name!r} is already taken (userNames are compared "
                                             "after NFKC, case folding, trimming and removing invisible characters)")
        name = doc.get("name") or {}
        return {"user_name": user_name, "user_name_key": key, "external_id": doc.get("externalId"),
                "display_name": doc.get("displayName"), "given_name": name.get("givenName"),
                "family_name": name.get("familyName"), "active": doc.get("active") is not False}

    def _reindex(self, session: Session | Connection, tenant: str, row_id: str, before: str | None,
                 doc: dict[str, Any]) -> None:
        """The user's ``user_values`` rows for ``doc``; ``before``: the resource stored until now (None: new)."""
        conn = session.connection() if isinstance(session, Session) else session   # Core: no ORM bulk path
        rows = index_rows(doc, self.region)
        if before is not None:
            # Only the attributes whose values changed are re-indexed (a PATCH of givenName is one row, not 15).
            stale, rows = changed_index_rows(index_rows(orjson.loads(before), self.region), rows)
            if stale:
                run_prebuilt(conn, _DELETE_VALUES, [{"user_id": row_id, "attr": attr} for attr in stale])
        if rows:
            run_prebuilt(conn, _INSERT_VALUES, [{**r, "user_id": row_id, "tenant_id": tenant} for r in rows])

    def _reindex_set(self, conn: Connection, tenant: str, row_id: str, ops: list[SimpleSet],
                     doc: dict[str, Any]) -> None:
        """The ``user_values`` rows of the attributes a simple PATCH set, from ``doc`` (the PATCH applied): each is a
        single-valued leaf, so ``index_rows`` of just those leaves gives their rows, without walking the whole
        resource twice (tests/directory/test_scim_simple_patch_index.py holds it to a full re-index)."""
        fragment: dict[str, Any] = {}
        for op in ops:
            source, target = doc, fragment
            for step in op.parent:
                source, target = source[step], target.setdefault(step, {})
            target[op.key] = source[op.key]
        rows = index_rows(fragment, self.region)   # userName, active, externalId give none: they are columns
        if rows:
            run_prebuilt(conn, _DELETE_VALUES, [{"user_id": row_id, "attr": attr}
                                                for attr in dict.fromkeys(r["attr"] for r in rows)])
            run_prebuilt(conn, _INSERT_VALUES, [{**r, "user_id": row_id, "tenant_id": tenant} for r in rows])

    def patch_simple(self, session: Session, tenant: str, resource_id: str, ops: list[SimpleSet],
                     if_match: str | None) -> dict[str, Any] | None:
        """A simple PATCH (``protocols.scim.simple_patch``) in prebuilt statements, without the ORM: the row read
        (locked, as ``row(lock=True)``), its If-Match checked, the new document written with only its changed
        values re-indexed, and the resource returned. None, having changed nothing, when the PATCH needs the
        general path after all (an attribute the resource does not hold yet)."""
        # Core on the session's transaction, no unit of work for one row; on SQLite on the driver (run_prebuilt).
        conn = session.connection()
        found = run_prebuilt(conn, _USER_FOR_WRITE, {"id": resource_id})
        if not found or found[0][0] != tenant:
            raise NotFoundException(detail=f"User {resource_id} not found")
        _, resource, version, created, modified, user_name_key = found[0]
        _gives_way_if_big(resource)
        check_if_match(if_match, version)
        applied = apply_simple_patch(orjson.loads(resource), ops)
        if applied is None:
            return None
        doc, changed = applied
        modified = parse_when(modified)
        if changed:
            version, modified = version + 1, max(utcnow(), as_utc(modified))
            columns = self._columns(conn, tenant, resource_id, user_name_key, doc)
            try:
                run_prebuilt(conn, _UPDATE_USER, {**columns, "resource": orjson.dumps(doc).decode(),
                                                  "version": version, "last_modified": modified,
                                                  "row_id": resource_id})
            except IntegrityError as exc:   # a concurrent writer took the userName: the constraint decides
                raise UniquenessException(detail="a resource with the same unique attribute exists") from exc
            self._reindex_set(conn, tenant, resource_id, ops, doc)
        out: dict[str, Any] = {"id": resource_id, **doc}
        groups = groups_of(conn, tenant, [resource_id]).get(resource_id)
        if groups:
            out["groups"] = groups
        out["meta"] = meta("User", parse_when(created), modified, version)
        return out

    def create_simple(self, conn: Connection, tenant: str, row_id: str, doc: dict[str, Any], now: datetime, *,
                      hidden: bool = False) -> dict[str, Any]:
        """A new user from the document it is stored as (``protocols.scim.simple_create``'s, or a validated model's
        dump), in prebuilt statements without the ORM: the columns checked (userName free), the row, its indexed
        values; the resource returned (a new id: no group names it yet)."""
        columns = self._columns(conn, tenant, row_id, None, doc)
        try:
            run_prebuilt(conn, _INSERT_USER, {**columns, "id": row_id, "tenant_id": tenant, "created": now,
                                              "last_modified": now, "version": 1,
                                              "resource": orjson.dumps(doc).decode(),
                                              "hidden_from_address_lists": hidden})
        except IntegrityError as exc:   # a concurrent writer took the userName: the constraint decides
            raise UniquenessException(detail="a resource with the same unique attribute exists") from exc
        self._reindex(conn, tenant, row_id, None, doc)
        return {"id": row_id, **doc, "meta": meta("User", now, now, 1)}

    def quick(self, filter_text: str | None) -> tuple[str, str] | None:
        return simple_equality(filter_text) if filter_text else None

    def quick_search(self, db: Database, tenant: str, simple: tuple[str, str], start_index: int,
                     count: int) -> Page:
        """``userName eq "…"`` and kin — what every IdP sends before it creates a user — as one prepared
        statement on one index, groups joined in, without the ORM (on SQLite without SQLAlchemy at all:
        ``Database.read_rows``) and without a COUNT unless paging needs it."""
        key, value = simple
        literal = fold("username", value) if key == "username" else value
        params = {"tenant": tenant, "value": literal, "limit": count + 1, "offset": start_index - 1}
        rows = db.read_rows(_SIMPLE_QUERIES[key], params)
        ids: list[str] = list(dict.fromkeys(r[0] for r in rows))
        more = len(ids) > count
        ids = ids[:count]
        if not more and (start_index == 1 or ids):
            total = start_index - 1 + len(ids)
        else:
            total = db.read_rows(_SIMPLE_COUNTS[key], params)[0][0] or 0
        docs: dict[str, dict[str, Any]] = {}
        for user_id, resource, created, modified, version, group_id, group_name in rows:
            if user_id not in docs:
                if len(docs) == len(ids):
                    break
                doc: dict[str, Any] = {"id": user_id}
                doc.update(orjson.loads(resource))
                doc["meta"] = meta("User", parse_when(created), parse_when(modified), version)
                docs[user_id] = doc
            if group_id is not None:
                docs[user_id].setdefault("groups", []).append(
                    {"value": group_id, "display": group_name, "type": "direct"})
        for doc in docs.values():  # meta goes last, as on every other path
            doc["meta"] = doc.pop("meta")
        return Page(total, start_index, list(docs.values()))


class GroupRepository(Repository[Group]):
    resource_type = "Group"
    table = Group
    has_members = True
    sort_columns = _sort_columns(Group, displayname=Group.display_name_key)

    def doc(self, session: Session, row: Group, *, with_members: bool = True) -> dict[str, Any]:
        members = members_of(session, row.tenant_id, row.id) if with_members else None
        return self.stored(row, {"members": members} if members else None)

    def docs(self, session: Session, tenant: str, rows: Sequence[Group], *, with_members: bool
             ) -> list[dict[str, Any]]:
        return [self.doc(session, r, with_members=with_members) for r in rows]

    def names(self, row: Group) -> dict[str, str | None]:
        return {"displayName": row.display_name, "externalId": row.external_id}

    def write_doc(self, session: Session, tenant: str, row: Group, doc: dict[str, Any]) -> None:
        check_resource("Group", doc)  # lengths and NUL, before PostgreSQL refuses them (limits.py)
        display = doc.get("displayName")
        if not isinstance(display, str) or not display.strip():
            raise InvalidValueException(detail="displayName is required and must be a non-empty string")
        key = fold("displayname", display)
        if len(key) > GROUP_COLUMNS["displayName"]:  # lower case can be longer ("İ" → "i̇")
            raise InvalidValueException(
                detail=f"displayName is longer than {GROUP_COLUMNS['displayName']} characters")
        if key != row.display_name_key and not self._unique(session, Group.display_name_key, key, row):
            raise UniquenessException(detail=f"a group named {display!r} already exists")
        row.display_name = display
        row.display_name_key = key
        row.external_id = doc.get("externalId")
        self._save(session, row, doc)

    def split_patch(self, payload: dict[str, Any]) -> tuple[dict[str, Any], list[MemberChange]]:
        return split_member_operations(payload)

    def members_in(self, payload: Any) -> list[MemberRef] | None:
        return member_refs(payload.get("members") or []) if isinstance(payload, dict) else None

    def set_members(self, session: Session, tenant: str, row_id: str, members: list[MemberRef] | None,
                    *, replace: bool) -> None:
        if replace:
            _remove_members(session, row_id, None)
        _add_members(session, tenant, row_id, members or [])

    def change_members(self, session: Session, tenant: str, row_id: str, changes: Sequence[MemberChange]) -> bool:
        for change in changes:
            if change.op == "remove":
                _remove_members(session, row_id, change.ids)
            else:
                self.set_members(session, tenant, row_id, list(change.members), replace=change.op == "replace")
        return bool(changes)

    @staticmethod
    def member_count(session: Session, group_id: str) -> int:
        count = select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group_id)
        return session.scalar(count) or 0


# -- computed attributes ---------------------------------------------------------------------------------


def groups_of(session: Session | Connection, tenant: str, user_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The groups of ``tenant`` each user is a direct member of.

    Another tenant's group may hold this user's id as a member (its IdP sent it; it is kept as sent), but
    that row is the other tenant's: it never shows here.
    """
    if not user_ids:
        return {}
    result: dict[str, list[dict[str, Any]]] = {}
    found: Iterable[Sequence[Any]]
    if len(user_ids) > 1:
        found = session.execute(_GROUPS_OF, {"tenant": tenant, "ids": list(user_ids)})
    elif isinstance(session, Connection):   # a simple PATCH's answer: on the driver on SQLite
        found = run_prebuilt(session, _GROUPS_OF_ONE, {"tenant": tenant, "id": user_ids[0]})
    else:
        found = session.execute(_GROUPS_OF_ONE, {"tenant": tenant, "id": user_ids[0]})
    for member_id, group_id, display in found:
        result.setdefault(member_id, []).append({"value": group_id, "display": display, "type": "direct"})
    return result


def members_of(session: Session, tenant: str, group_id: str) -> list[dict[str, Any]]:
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


# -- member rows ------------------------------------------------------------------------------------------


def _add_members(session: Session, tenant: str, group_id: str, refs: Iterable[MemberRef]) -> None:
    """Insert the members not there yet, typed by what they are in this tenant.

    An id that is no user or group (yet) is kept, typed as the request says or "User": identity providers do
    not promise to send a member before the group that names it, and a membership dropped here would be lost
    without a word. A group is never its own member.
    """
    given = {ref.id: ref for ref in refs}
    if not given:
        return
    found: dict[str, str] = {}
    present: set[str] = set()
    for chunk in chunks(given):
        for (uid,) in session.execute(select(User.id).where(User.tenant_id == tenant, User.id.in_(chunk))):
            found[uid] = "User"
        for (gid,) in session.execute(select(Group.id).where(Group.tenant_id == tenant, Group.id.in_(chunk))):
            found[gid] = "Group"
        present.update(session.scalars(select(GroupMember.member_id).where(
            GroupMember.group_id == group_id, GroupMember.member_id.in_(chunk))))
    new = [
        {"group_id": group_id, "member_id": ref.id, "member_type": found.get(ref.id) or ref.type or "User",
         "display": ref.display, "tenant_id": tenant}
        for ref in given.values()
        if ref.id not in present and ref.id != group_id
    ]
    if new:
        session.execute(insert(GroupMember), new)


def _remove_members(session: Session, group_id: str, ids: Sequence[Any] | None) -> None:
    """Delete the member rows of ``ids``, or all of them (None)."""
    stmt = delete(GroupMember).where(GroupMember.group_id == group_id)
    if ids is None:
        session.execute(stmt)
        return
    for chunk in chunks(ids):
        session.execute(stmt.where(GroupMember.member_id.in_(chunk)))


# -- users' indexed values ----------------------------------------------------------------------------------


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
            if lname in ("schemas",) or (not prefix and (lname in NOT_STORED or lname in _COLUMNS)):
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


def changed_index_rows(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The attributes whose index rows differ between two versions of a resource, and the new rows of those: a
    write deletes the rows of these attributes and inserts these rows, leaving every other attribute's alone."""
    def by_attr(rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            grouped.setdefault(r["attr"], []).append((r["type_key"], r["entry"], r["value_key"], r["e164"]))
        return grouped

    before, after = by_attr(old), by_attr(new)
    stale = [attr for attr in before.keys() | after.keys() if before.get(attr) != after.get(attr)]
    if not stale:
        return [], []
    wanted = set(stale)
    return sorted(stale), [r for r in new if r["attr"] in wanted]


# Statements built once: building one (and its cache key) cost more than running it, on every write.
_UNIQUE: dict[str, Any] = {}
_UNIQUE_USER_NAME = select(User.id).where(User.tenant_id == bindparam("tenant"),
                                          User.user_name_key == bindparam("key"), User.id != bindparam("id"))
_USER_FOR_WRITE = select(User.tenant_id, User.resource, User.version, User.created, User.last_modified,
                         User.user_name_key).where(User.id == bindparam("id")).with_for_update(**FOR_WRITE)
_UPDATE_USER = update(User).where(User.id == bindparam("row_id"))
_INSERT_USER = insert(User)
_DELETE_VALUES = delete(UserValue).where(UserValue.user_id == bindparam("user_id"), UserValue.attr == bindparam("attr"))
_INSERT_VALUES = insert(UserValue)
_GROUPS_OF = (
    select(GroupMember.member_id, Group.id, Group.display_name)
    .join(Group, (Group.id == GroupMember.group_id) & (Group.tenant_id == bindparam("tenant")))
    .where(GroupMember.tenant_id == bindparam("tenant"), GroupMember.member_id.in_(bindparam("ids", expanding=True)))
)
_GROUPS_OF_ONE = (   # one user's: no IN list to expand on every call
    select(GroupMember.member_id, Group.id, Group.display_name)
    .join(Group, (Group.id == GroupMember.group_id) & (Group.tenant_id == bindparam("tenant")))
    .where(GroupMember.tenant_id == bindparam("tenant"), GroupMember.member_id == bindparam("id"))
)


# -- the userName look-up -----------------------------------------------------------------------------------


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


__all__ = ["GroupRepository", "Page", "Repository", "UserRepository", "changed_index_rows", "dump", "flush_and",
           "index_rows", "meta"]
