"""A Bulk request's operations share transactions (ScimBatch), each still atomic on its own, on both databases.

What is checked: an operation that fails leaves the others of its transaction; nothing is visible (or reported)
before its commit; a commit that fails for real stores none of what it held; an unexpected error rolls back only
what was not committed yet; a long Bulk request commits as it goes, so other writers get their turn.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from scim2_models import InvalidValueException, SCIMException
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.app import Services
from tenantry.directory.scim_store import ScimBatch
from tenantry.protocols.scim.bulk import BulkCall, Method
from tests.conftest import ScimClient, user_payload


def post(user_name: str) -> BulkCall:
    return BulkCall(Method.post, "Users", "User", None, user_payload(user_name), None, user_name)


def stored(services: Services, tenant: str, user_name: str) -> int:
    """How many users named ``user_name`` another connection sees."""
    return services.scim.search(tenant, "User", filter_text=f'userName eq "{user_name}"').total


def doom(session: Session) -> None:
    """Make the open transaction's commit fail, for real: a foreign key checked only at commit, broken."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        session.execute(text("INSERT INTO user_values (user_id, tenant_id, attr, value_key) "
                             "VALUES ('no-such-user', 't', 'title', 'x')"))
    else:
        session.execute(text("CREATE TEMP TABLE doomed_parent (id int PRIMARY KEY) ON COMMIT DROP"))
        session.execute(text("CREATE TEMP TABLE doomed (parent int REFERENCES doomed_parent (id) "
                             "DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP"))
        session.execute(text("INSERT INTO doomed VALUES (1)"))


class DoomedBatch(ScimBatch):
    """A batch whose ``at``-th operation (1-based) breaks the transaction's commit, or raises ``error``."""

    def __init__(self, *args: Any, at: int, error: Exception | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.error, self.calls = at, error, 0

    def _run(self, session: Session, call: BulkCall) -> dict[str, Any]:
        self.calls += 1
        if self.calls == self.at:
            if self.error is not None:
                raise self.error
            doom(session)
        return super()._run(session, call)


def test_an_operation_that_fails_leaves_the_others_of_its_transaction(scim: ScimClient) -> None:
    taken = f"taken-{uuid.uuid4().hex[:6]}@contoso.com"
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user_payload(name)}
           for i, name in enumerate([taken, "first@contoso.com", taken, "second@contoso.com"])]
    ops.append({"method": "POST", "path": "/Groups", "bulkId": "g",
                "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Both",
                         "members": [{"value": "bulkId:b1"}, {"value": "bulkId:b3"}]}})
    answer = scim.post("/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                      "Operations": ops}).json()
    assert [o["status"] for o in answer["Operations"]] == ["201", "201", "409", "201", "201"]
    for name in (taken, "first@contoso.com", "second@contoso.com"):
        assert scim.get("/Users", params={"filter": f'userName eq "{name}"'}).json()["totalResults"] == 1
    group = scim.get(answer["Operations"][4]["location"].split("/scim/v2")[1]).json()
    assert len(group["members"]) == 2


def test_what_a_batch_performed_is_seen_by_no_one_until_it_commits(backend: Services, tenant: str) -> None:
    batch = ScimBatch(backend.scim, tenant)
    try:
        batch.perform(post("pending@contoso.com"))
        assert stored(backend, tenant, "pending@contoso.com") == 0
        batch.commit()
        assert stored(backend, tenant, "pending@contoso.com") == 1
    finally:
        batch.close()


def test_a_batch_is_due_after_its_operation_limit_and_commits_as_it_goes(backend: Services, tenant: str) -> None:
    batch = ScimBatch(backend.scim, tenant, max_seconds=3600, max_operations=2)
    try:
        batch.perform(post("one@contoso.com"))
        assert not batch.due()
        batch.perform(post("two@contoso.com"))
        assert batch.due()
        batch.commit()
        assert not batch.due()
        # Between commits the write lock is free: a write of its own goes through at once.
        backend.scim.create(tenant, "User", user_payload("between@contoso.com"))
        batch.perform(post("three@contoso.com"))
        batch.commit()
    finally:
        batch.close()
    assert all(stored(backend, tenant, f"{n}@contoso.com") == 1 for n in ("one", "two", "between", "three"))


def test_a_batch_is_due_once_it_has_been_open_its_time_limit(backend: Services, tenant: str) -> None:
    batch = ScimBatch(backend.scim, tenant, max_seconds=0.0, max_operations=1000)
    try:
        assert not batch.due()   # nothing open
        batch.perform(post("timed@contoso.com"))
        assert batch.due()
    finally:
        batch.close()
    assert stored(backend, tenant, "timed@contoso.com") == 0   # closed without a commit: rolled back


def test_a_commit_that_fails_stores_none_of_the_operations_it_held(backend: Services, tenant: str) -> None:
    batch = DoomedBatch(backend.scim, tenant, at=2)
    try:
        batch.perform(post("held-1@contoso.com"))
        batch.perform(post("held-2@contoso.com"))
        with pytest.raises(IntegrityError):
            batch.commit()
        batch.perform(post("after@contoso.com"))   # the next transaction is a new one, and commits
        batch.commit()
    finally:
        batch.close()
    assert stored(backend, tenant, "held-1@contoso.com") == stored(backend, tenant, "held-2@contoso.com") == 0
    assert stored(backend, tenant, "after@contoso.com") == 1


def test_a_bulk_request_whose_commit_fails_reports_those_operations_as_failed(
        backend: Services, tenant: str, monkeypatch: pytest.MonkeyPatch, scim: ScimClient) -> None:
    from tenantry.directory import scim_api

    monkeypatch.setattr(scim_api, "ScimBatch", lambda store, t: DoomedBatch(store, t, at=2, max_operations=2))
    ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user_payload(f"c{i}@contoso.com")}
           for i in range(3)]
    answer = scim.post("/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                                      "Operations": ops})
    assert answer.status_code == 200
    results = answer.json()["Operations"]
    assert [o["status"] for o in results] == ["500", "500", "201"]
    assert "could not be committed" in results[0]["response"]["detail"] and "location" not in results[0]
    assert [stored(backend, tenant, f"c{i}@contoso.com") for i in range(3)] == [0, 0, 1]
    assert sorted(e.status for e in backend.scim_log.entries(tenant) if e.bulk_index) == [201, 500, 500]


def test_an_unexpected_error_rolls_back_only_what_was_not_committed(backend: Services, tenant: str) -> None:
    batch = DoomedBatch(backend.scim, tenant, at=4, error=RuntimeError("bug"), max_seconds=3600, max_operations=2)
    try:
        for n in ("x1", "x2", "x3"):
            batch.perform(post(f"{n}@contoso.com"))
            if batch.due():
                batch.commit()
        with pytest.raises(RuntimeError):
            batch.perform(post("x4@contoso.com"))
    finally:
        batch.close()
    assert [stored(backend, tenant, f"{n}@contoso.com") for n in ("x1", "x2", "x3", "x4")] == [1, 1, 0, 0]


class FailsAfterWriting(ScimBatch):
    """A batch whose ``at``-th operation (1-based) is refused after it has written everything it writes."""

    def __init__(self, *args: Any, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at, self.calls = at, 0

    def _run(self, session: Session, call: BulkCall) -> dict[str, Any]:
        self.calls += 1
        out = super()._run(session, call)
        if self.calls == self.at:
            raise InvalidValueException(detail="refused after its writes")
        return out


def titled(user_name: str, title: str) -> BulkCall:
    return BulkCall(Method.post, "Users", "User", None, user_payload(user_name, title=title), None, user_name)


def with_title(services: Services, tenant: str, title: str) -> int:
    """Users whose indexed ``title`` is ``title`` (a user_values row, not a column)."""
    return services.scim.search(tenant, "User", filter_text=f'title eq "{title}"').total


def test_an_operation_refused_after_its_writes_leaves_none_of_them_and_the_others_stand(
        backend: Services, tenant: str) -> None:
    """The savepoint of each operation (the driver's for a create on SQLite, SQLAlchemy's otherwise) undoes the
    refused one's row and index rows, and nothing of the operations before or after it."""
    batch = FailsAfterWriting(backend.scim, tenant, at=2)
    try:
        kept = batch.perform(titled("kept-1@contoso.com", "Kept one"))
        with pytest.raises(SCIMException):
            batch.perform(titled("undone@contoso.com", "Undone title"))
        batch.perform(titled("kept-2@contoso.com", "Kept two"))
        # An ORM operation (a PATCH that is not a simple one) after the driver's savepoints, in the same transaction.
        patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                 "Operations": [{"op": "add", "path": "emails", "value": [{"value": "k1@contoso.com"}]}]}
        batch.perform(BulkCall(Method.patch, f"/Users/{kept['id']}", "User", kept["id"], patch, None, None))
        batch.commit()
    finally:
        batch.close()
    assert stored(backend, tenant, "undone@contoso.com") == 0 and with_title(backend, tenant, "Undone title") == 0
    assert stored(backend, tenant, "kept-1@contoso.com") == stored(backend, tenant, "kept-2@contoso.com") == 1
    assert with_title(backend, tenant, "Kept one") == with_title(backend, tenant, "Kept two") == 1
    emails = backend.scim.get(tenant, "User", kept["id"])["emails"]
    assert [e["value"] for e in emails] == ["k1@contoso.com"]
