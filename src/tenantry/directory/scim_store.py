"""The SCIM resource store: users and groups as RFC 7643 resources over the directory tables.

Writes validate with scim2-models (creation, replacement and PATCH contexts, under the tolerance policy of
``protocols.scim.resources.POLICY``), then store the resource as sent plus its indexed values, in one
transaction: a request that fails changes nothing. Reads return plain dicts, ready to be rendered. The SQL of
each resource type is its repository's (``scim_repositories``); the SCIM rules are ``protocols.scim``'s.
Group members are rows, never a JSON list, so a member PATCH on a huge group is a few indexed statements.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidSyntaxException,
    InvalidValueException,
    MutabilityException,
    SCIMException,
)
from scim2_models.path import AttrPath
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenantry.core.clock import utcnow
from tenantry.core.db import Database
from tenantry.directory.scim_filter import FilterCompiler, attr_key, fold, names_one, with_user_name_keys
from tenantry.directory.scim_repositories import (
    INLINE_WRITE_MAX_BYTES,
    GroupRepository,
    Page,
    Repository,
    UserRepository,
    dump,
    flush_and,
)
from tenantry.protocols.scim.bulk import BulkCall, Method
from tenantry.protocols.scim.conditions import check_if_match
from tenantry.protocols.scim.errors import validation_error_to_scim
from tenantry.protocols.scim.limits import check_filter
from tenantry.protocols.scim.normalize import normalize_patch, normalize_resource
from tenantry.protocols.scim.resources import POLICY, RESOURCE_MODELS, patch_op, scim_filter, scim_path
from tenantry.protocols.scim.search import sort_resources
from tenantry.protocols.scim.simple_create import read_simple_resource
from tenantry.protocols.scim.simple_patch import read_simple_patch

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


class ScimStore:
    """Create, read, replace, patch, delete and search users and groups of one database."""

    def __init__(self, db: Database, *, default_phone_region: str | None = None, max_results: int = 1000):
        self.db = db
        self.region = default_phone_region
        self.max_results = max_results
        self.users = UserRepository(default_phone_region)
        self.groups = GroupRepository(default_phone_region)
        self._repositories: dict[str, Repository[Any]] = {"User": self.users, "Group": self.groups}

    def _repo(self, resource_type: str) -> Repository[Any]:
        return self._repositories[resource_type]

    # -- what the HTTP layer asks before it reads -----------------------------------------------

    def reads_inline(self, resource_type: str, filter_text: str | None = None, sort_by: str | None = None,
                     *, query: bool = False) -> bool:
        """Whether a read costs less than handing it to a worker thread: one user by id, or a query the
        user look-up answers (``userName eq "…"`` unsorted). A group may have 50,000 members. SQLite only:
        on PostgreSQL even one row is a round trip to another process, and the event loop would wait it out
        (bench/scim_bench.py --database-url, issue #16: the filtered GET at 8 connections was 0.44x
        scim2-server's, every request queued behind one connection's round trip)."""
        repo = self._repo(resource_type)
        if not repo.reads_inline or not self.db.is_sqlite:
            return False
        return not query or (not sort_by and repo.quick(filter_text) is not None)

    def writes_inline(self, resource_type: str, body_bytes: int) -> bool:
        """Whether a write is cheaper tried on the event loop than handed to a worker thread: one user, a body of
        at most ``INLINE_WRITE_MAX_BYTES``, on SQLite. The route then runs it under ``Database.at_once``, so it
        never waits there for the write lock: when the lock is taken it goes to a thread after all, and so does a
        PUT, PATCH or DELETE that reads a stored user bigger than that (it would validate and re-index it all,
        whatever the body's size: ``scim_repositories._gives_way_if_big``). Each hop to a thread and back cost more
        CPU than the write's SQL (issue #16: PATCH 1.5 → 0.8 ms a request at 8 connections, with the request-log
        row written the same way)."""
        repo = self._repo(resource_type)
        return repo.writes_inline and self.db.is_sqlite and body_bytes <= INLINE_WRITE_MAX_BYTES

    def creates_simply(self, resource_type: str) -> bool:
        """Whether a create of this type is stored by prebuilt statements alone, never through the ORM."""
        return self._repo(resource_type).creates_simply

    def has_members(self, resource_type: str) -> bool:
        return self._repo(resource_type).has_members

    # -- validation --------------------------------------------------------------------------------

    @staticmethod
    def _validate(resource_type: str, payload: Any, ctx: Context) -> Any:
        if not isinstance(payload, dict):
            raise InvalidSyntaxException(detail="the request body must be a JSON object")
        model = RESOURCE_MODELS[resource_type]
        try:
            return model.model_validate(normalize_resource(payload), scim_ctx=ctx, scim_policy=POLICY)
        except ValidationError as exc:
            raise validation_error_to_scim(exc) from exc

    @staticmethod
    def _patch_op(resource_type: str, payload: dict[str, Any]) -> Any:
        """The PatchOp scim2-models applies, or None when no operation is left for it."""
        if not payload["Operations"]:
            return None
        try:
            return patch_op(resource_type).model_validate(
                payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST, scim_policy=POLICY
            )
        except ValidationError as exc:
            raise validation_error_to_scim(exc) from exc

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

    # -- the operations ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Session]:
        """``session`` when the caller runs the write in its transaction; else a write transaction of its own."""
        if session is not None:
            yield session
            return
        with self.db.writing(), self.db.session() as own:
            yield own

    def create(self, tenant: str, resource_type: str, payload: Any, *, hidden: bool = False,
               session: Session | None = None) -> dict[str, Any]:
        """A new resource; a user made ``hidden`` from address lists is so from its first commit (an
        application account never shows in a listing, not even for a moment). Each write (this, ``replace``,
        ``patch``, ``delete``) is its own transaction, or runs in ``session``'s (``ScimBatch``: a Bulk request's)."""
        repo = self._repo(resource_type)
        if hidden and repo.listed is None:
            raise ValueError(f"a {resource_type} cannot be hidden from address lists")
        if repo.creates_simply:
            # The common new user is read without scim2-models (protocols.scim.simple_create); any other is
            # validated by it. Either way stored in prebuilt statements, without the ORM.
            doc = read_simple_resource(resource_type, normalize_resource(payload)) if isinstance(payload, dict) \
                else None
            if doc is None:
                doc = dump(self._validate(resource_type, payload, Context.RESOURCE_CREATION_REQUEST))
            with self._transaction(session) as tx:
                return repo.create_simple(tx.connection(), tenant, str(uuid.uuid4()), doc, utcnow(), hidden=hidden)
        model = self._validate(resource_type, payload, Context.RESOURCE_CREATION_REQUEST)
        members = repo.members_in(payload)
        with self._transaction(session) as session:
            row = repo.new(tenant, str(uuid.uuid4()), utcnow())
            if hidden:
                row.hidden_from_address_lists = True
            repo.write(session, tenant, row, model)
            repo.set_members(session, tenant, row.id, members, replace=False)
            return flush_and(session, lambda: repo.created(session, row))

    def get(
        self, tenant: str, resource_type: str, resource_id: str, *, with_members: bool = True
    ) -> dict[str, Any]:
        repo = self._repo(resource_type)
        with self.db.session() as session:
            return repo.doc(session, repo.row(session, tenant, resource_id), with_members=with_members)

    def replace(
        self, tenant: str, resource_type: str, resource_id: str, payload: Any, if_match: str | None = None,
        *, session: Session | None = None,
    ) -> dict[str, Any]:
        repo = self._repo(resource_type)
        model = self._validate(resource_type, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        if isinstance(payload, dict) and payload.get("id") not in (None, resource_id):
            raise MutabilityException(detail="id is immutable and does not match the resource")
        members = repo.members_in(payload)
        with self._transaction(session) as session:
            row = repo.row(session, tenant, resource_id, lock=True)
            check_if_match(if_match, row.version)
            try:
                model.replace(RESOURCE_MODELS[resource_type].model_validate(repo.stored(row)))
            except ValidationError as exc:
                raise validation_error_to_scim(exc) from exc
            repo.bump(row)   # before the write: the row's UPDATE carries the new version too (one statement)
            repo.write(session, tenant, row, model)
            # PUT replaces the whole resource, members included (RFC 7644 §3.5.1).
            repo.set_members(session, tenant, resource_id, members, replace=True)
            return flush_and(session, lambda: repo.doc(session, row))

    def patch(
        self, tenant: str, resource_type: str, resource_id: str, payload: Any, if_match: str | None = None,
        *, with_members: bool = True, session: Session | None = None,
    ) -> dict[str, Any]:
        repo = self._repo(resource_type)
        payload, member_changes = repo.split_patch(normalize_patch(payload))
        # The common PATCH (single-valued attributes the resource holds) goes straight to the stored document;
        # the rest through scim2-models, validated before the transaction (protocols.scim.simple_patch).
        simple = read_simple_patch(resource_type, payload) if not member_changes else None
        operations = None if simple is not None else self._patch_op(resource_type, payload)
        with self._transaction(session) as session:
            if simple is not None:
                done = repo.patch_simple(session, tenant, resource_id, simple, if_match)
                if done is not None:
                    return done
                # An attribute the resource lacks: the general way after all, in the same transaction.
                operations = self._patch_op(resource_type, payload)
            row = repo.row(session, tenant, resource_id, lock=True)
            check_if_match(if_match, row.version)
            changed = False
            if operations is not None:
                current = RESOURCE_MODELS[resource_type].model_validate(repo.stored(row))
                try:
                    changed = operations.patch(current, POLICY)
                except ValidationError as exc:
                    raise validation_error_to_scim(exc) from exc
                if changed:
                    repo.bump(row)
                    repo.write(session, tenant, row, current)
            if repo.change_members(session, tenant, resource_id, member_changes) and not changed:
                repo.bump(row)
            return flush_and(session, lambda: repo.doc(session, row, with_members=with_members))

    def delete(self, tenant: str, resource_type: str, resource_id: str, if_match: str | None = None, *,
               session: Session | None = None) -> dict[str, str | None]:
        """Delete the resource; its names (``userName``, ``displayName``, ``externalId``), for the request log."""
        repo = self._repo(resource_type)
        with self._transaction(session) as session:
            row = repo.row(session, tenant, resource_id, lock=True)
            check_if_match(if_match, row.version)
            return repo.delete(session, tenant, row)

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
        include_hidden: bool = False,
    ) -> Page:
        """One page of the resources the filter selects. Users hidden from address lists are listed only when
        ``include_hidden`` or when the filter names one (``id``/``userName``/``externalId`` ``eq``): a listing
        leaves them out, a look-up finds them (``totalResults`` counts what is listed)."""
        repo = self._repo(resource_type)
        start_index = max(1, start_index)
        count = self.max_results if count is None else max(0, min(count, self.max_results))
        if filter_text:
            check_filter(filter_text)  # bounded before parsing: length, terms, NUL (limits.py)
        simple = repo.quick(filter_text) if filter_text and not sort_by and count else None
        if simple is not None:
            return repo.quick_search(self.db, tenant, simple, start_index, count)
        return self._search(tenant, repo, filter_text, sort_by, (sort_order or "ascending").lower() == "descending",
                            start_index, count, with_members, include_hidden)

    def _search(self, tenant: str, repo: Repository[Any], filter_text: str | None, sort_by: str | None,
                descending: bool, start_index: int, count: int, with_members: bool, include_hidden: bool) -> Page:
        """The general path: the filter compiled to SQL, sorted on a column where one sorts alike."""
        table = repo.table
        where = [table.tenant_id == tenant]
        parsed = None
        exact = True
        if filter_text:
            parsed = self.parse_filter(repo.resource_type, filter_text)
            compiled = FilterCompiler(repo.resource_type, self.region).compile(parsed.ast)
            where.append(compiled.condition)
            exact = compiled.exact
        if repo.listed is not None and not include_hidden and (parsed is None or not names_one(parsed.ast)):
            where.append(repo.listed)
        sort_column = self._sort_column(repo, sort_by) if sort_by else table.id
        with self.db.session() as session:
            if exact and sort_column is not None:
                total = session.scalar(select(func.count()).select_from(table).where(*where)) or 0
                if count == 0:
                    return Page(total, start_index, [])
                order = [sort_column.desc() if descending else sort_column.asc(), table.id]
                rows = session.scalars(
                    select(table).where(*where).order_by(*order).offset(start_index - 1).limit(count)
                ).all()
                return Page(total, start_index, repo.docs(session, tenant, rows, with_members=with_members))
            # The slow, exact path: candidates from SQL, verified (and sorted) by scim2-models' evaluator.
            rows = session.scalars(select(table).where(*where).order_by(table.id)).all()
            docs = repo.docs(session, tenant, rows, with_members=True)
        if parsed is not None and not exact:
            docs = self._verified(parsed, RESOURCE_MODELS[repo.resource_type], docs)
        if sort_by:
            docs = sort_resources(docs, sort_by, descending)
        if not with_members:
            for d in docs:
                d.pop("members", None)
        return Page(len(docs), start_index, docs[start_index - 1 : start_index - 1 + count])

    @staticmethod
    def _verified(parsed: Any, model_cls: Any, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The candidates scim2-models' evaluator accepts, userName compared on its key as the SQL does."""
        keyed = type(parsed)(with_user_name_keys(parsed.ast))

        def as_keyed(doc: dict[str, Any]) -> dict[str, Any]:
            user_name = doc.get("userName")
            return {**doc, "userName": fold("username", user_name)} if isinstance(user_name, str) else doc

        return [d for d in docs if keyed.match(model_cls.model_validate(as_keyed(d)))]

    @staticmethod
    def _sort_column(repo: Repository[Any], sort_by: str) -> Any:
        """The column that sorts like ``sortBy`` does, or None when only Python can sort on it."""
        try:
            node = scim_path(repo.resource_type, sort_by).ast
            key = attr_key(node) if isinstance(node, AttrPath) else sort_by.lower()
        except (SCIMException, ValueError, ValidationError):
            raise InvalidValueException(detail=f"sortBy {sort_by!r} is not an attribute") from None
        return repo.sort_columns.get(key)

    # -- helpers for other domains -------------------------------------------------------------------

    def member_count(self, tenant: str, group_id: str) -> int:
        with self.db.session() as session:
            self.groups.row(session, tenant, group_id)
            return self.groups.member_count(session, group_id)

    def counts(self, tenant: str) -> dict[str, int]:
        with self.db.session() as session:
            return {name: session.scalar(select(func.count()).select_from(repo.table)
                                         .where(repo.table.tenant_id == tenant)) or 0
                    for name, repo in (("users", self.users), ("groups", self.groups))}


class ScimBatch:
    """Writes that share transactions: a Bulk request's operations (RFC 7644 §3.7), each atomic on its own.

    Each operation runs in a savepoint of the open transaction: one that fails is rolled back to it, leaving the
    others. The transaction is committed when ``due`` (it has been open ``max_seconds`` or holds ``max_operations``)
    and at the end, so that SQLite's write lock is never held long and other writers get their turn between
    commits. One commit for many operations instead of one each: a commit, with its WAL checkpoints, cost more than
    the rest of a created user (issue #16). Until its commit an operation has not happened: ``protocols.scim.bulk``
    reports none before, and if the commit fails none of them is stored (``commit`` raises, having rolled back).
    One thread at a time: the Bulk request's.
    """

    def __init__(self, store: ScimStore, tenant: str, *, max_seconds: float = 0.05, max_operations: int = 200):
        self.store, self.tenant = store, tenant
        self.max_seconds, self.max_operations = max_seconds, max_operations
        self._open: tuple[ExitStack, Session] | None = None
        self._began = 0.0
        self._count = 0

    def perform(self, call: BulkCall) -> dict[str, Any]:
        """One operation in a savepoint; a SCIMException leaves the transaction as it was before it. Any other
        exception rolls the whole transaction back (nothing since the last commit happened) and is raised."""
        stack, session = self._open or self._begin()
        try:
            if self._on_driver(call):
                out = self._in_driver_savepoint(session, call)
            else:
                with session.begin_nested():
                    out = self._run(session, call)
        except SCIMException:
            raise
        except BaseException:
            self._end(commit=False)
            raise
        self._count += 1
        return out

    def _on_driver(self, call: BulkCall) -> bool:
        """Whether the operation writes through the driver alone (a create of a type that ``creates_simply``, on
        SQLite), so that its savepoint can be the driver's too: SQLAlchemy compiled each SAVEPOINT and RELEASE
        anew, ~100 µs of a created user's ~600 (issue #16). The ORM's paths keep ``begin_nested``, which also
        expires what a rolled-back savepoint undid."""
        return call.method is Method.post and self.store.db.is_sqlite and self.store.creates_simply(call.resource_type)

    def _in_driver_savepoint(self, session: Session, call: BulkCall) -> dict[str, Any]:
        driver: Any = session.connection().connection.driver_connection   # the transaction begun (BEGIN IMMEDIATE)
        driver.execute("SAVEPOINT bulk_operation")
        try:
            out = self._run(session, call)
        except BaseException:
            driver.execute("ROLLBACK TO bulk_operation")
            driver.execute("RELEASE bulk_operation")
            raise
        driver.execute("RELEASE bulk_operation")
        return out

    def due(self) -> bool:
        return self._open is not None and (self._count >= self.max_operations
                                           or time.monotonic() - self._began >= self.max_seconds)

    def commit(self) -> None:
        """Make what was performed since the last commit durable; raise (with all of it rolled back) if it cannot."""
        if self._open is not None:
            self._end(commit=True)

    def close(self) -> None:
        """Roll back what was not committed (a request that stopped midway)."""
        if self._open is not None:
            self._end(commit=False)

    def _begin(self) -> tuple[ExitStack, Session]:
        stack = ExitStack()
        try:
            stack.enter_context(self.store.db.writing())
            session = stack.enter_context(self.store.db.sessions())
            session.begin()
        except BaseException:
            stack.close()
            raise
        self._open, self._began, self._count = (stack, session), time.monotonic(), 0
        return stack, session

    def _end(self, *, commit: bool) -> None:
        assert self._open is not None
        stack, session = self._open
        self._open = None
        with stack:   # the session closed and the write lock released, whatever happens
            if commit:
                try:
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
            else:
                session.rollback()

    def _run(self, session: Session, call: BulkCall) -> dict[str, Any]:
        store, tenant = self.store, self.tenant
        if call.method is Method.post:
            return store.create(tenant, call.resource_type, call.data, session=session)
        assert call.resource_id is not None  # bulk.run_bulk reads no other operation without an id
        if call.method is Method.put:
            return store.replace(tenant, call.resource_type, call.resource_id, call.data, call.version,
                                 session=session)
        if call.method is Method.patch:
            return store.patch(tenant, call.resource_type, call.resource_id, call.data, call.version, session=session)
        return store.delete(tenant, call.resource_type, call.resource_id, call.version, session=session)


__all__ = ["Page", "ScimBatch", "ScimStore"]
