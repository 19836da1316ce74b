"""Bulk rules without HTTP or SQL (protocols.scim.bulk), on RFC 7644 §3.7's own requests and responses.

The operations are performed by a dictionary standing in for the store, so what is tested is the protocol:
bulkId references, failOnErrors, the order of results and each result's fields.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from scim2_models import (
    BulkRequest,
    BulkResponse,
    Context,
    InvalidSyntaxException,
    InvalidValueException,
    NotFoundException,
    PayloadTooLargeException,
    PreconditionFailedException,
)

from tenantry.protocols.scim.bulk import BulkCall, BulkResult, fail_on_errors, read_bulk_request, run_bulk
from tenantry.protocols.scim.resources import TenantryGroup, TenantryUser
from tests.conftest import SAMPLES

RFC = SAMPLES / "rfc7644"
BASE = "https://example.com/v2"
AnyResource = TenantryUser | TenantryGroup


def sample(name: str) -> dict[str, Any]:
    return json.loads((RFC / name).read_text())


class FakeStore:
    """Resources by id; every write raises the version. ``refuse`` maps an id to the error its write raises."""

    def __init__(self, existing: tuple[str, ...] = (), refuse: dict[str, Exception] | None = None) -> None:
        self.docs: dict[str, dict[str, Any]] = {rid: {"id": rid, "meta": {"version": 'W/"1"'}} for rid in existing}
        self.refuse = refuse or {}
        self.calls: list[BulkCall] = []
        self.next = 0

    def perform(self, call: BulkCall) -> dict[str, Any]:
        self.calls.append(call)
        if call.resource_id in self.refuse:
            raise self.refuse[call.resource_id]
        if call.method == "POST":
            self.next += 1
            rid = f"{call.resource_type.lower()}-{self.next}"
        else:
            rid = call.resource_id or ""
            if rid not in self.docs:
                raise NotFoundException(detail=f"{call.resource_type} {rid} not found")
        if call.method == "DELETE":
            del self.docs[rid]
            return {"userName": "gone"}
        version = int(self.docs.get(rid, {"meta": {"version": 'W/"0"'}})["meta"]["version"][3:-1]) + 1
        self.docs[rid] = {"id": rid, **(call.data or {}), "meta": {"version": f'W/"{version}"'}}
        return self.docs[rid]


def test_rfc_bulk_id_example_creates_the_group_with_the_user_it_references() -> None:
    # RFC 7644 §3.7.2: the group's member "bulkId:qwerty" is the user the first operation created.
    store = FakeStore()
    answer = run_bulk(read_bulk_request(sample("3.7.2-bulk-request-bulkid.json"), 1000), store.perform, BASE)
    assert store.calls[1].data["members"] == [{"type": "User", "value": "user-1"}]
    expected = sample("3.7.2-bulk-response-bulkid.json")
    # The RFC's ids and versions are its own; the shape, the order and every other field are the same.
    for got, want, rid in zip(answer["Operations"], expected["Operations"], ("user-1", "group-2"), strict=True):
        endpoint = "Users" if rid.startswith("user") else "Groups"
        assert got == {**want, "location": f"{BASE}/{endpoint}/{rid}", "version": 'W/"1"'}
    assert answer["schemas"] == expected["schemas"]
    BulkResponse[AnyResource].model_validate(answer, scim_ctx=Context.BULK_RESPONSE)


def test_rfc_multiple_operations_example_runs_every_operation_in_order() -> None:
    request = sample("3.7.3-bulk-request.json")
    BulkRequest[AnyResource].model_validate(request, scim_ctx=Context.BULK_REQUEST)   # the sample is well formed
    existing = ("b7c14771-226c-4d05-8860-134711653041", "5d8d29d3-342c-4b5f-8683-a3cb6763ffcc",
                "e9025315-6bea-44e1-899c-1e07454e468b")
    store = FakeStore(existing)
    answer = run_bulk(read_bulk_request(request, 1000), store.perform, BASE)
    expected = sample("3.7.3-bulk-response.json")
    assert [(o["method"], o["status"], o["location"]) for o in answer["Operations"]] == [
        (o["method"], o["status"], o["location"].replace("92b725cd-9465-4e7d-8c16-01f8e146b87a", "user-1"))
        for o in expected["Operations"]
    ]
    # Each operation's "version" is its If-Match (RFC 7644 §3.7), handed to the store with the call.
    assert [c.version for c in store.calls] == [None, 'W/"3694e05e9dff591"', 'W/"edac3253e2c0ef2"',
                                                'W/"0ee8add0a938e1a"']
    assert "version" not in answer["Operations"][3]      # a DELETE has no version left
    BulkResponse[AnyResource].model_validate(answer, scim_ctx=Context.BULK_RESPONSE)


def test_rfc_fail_on_errors_example_stops_after_the_first_error() -> None:
    # RFC 7644 §3.7.3: with failOnErrors 1, the PUT's 412 ends the request; PATCH and DELETE never run.
    put_id = "b7c14771-226c-4d05-8860-134711653041"
    refused = PreconditionFailedException(detail="Failed to update.  Resource changed on the server.")
    store = FakeStore((put_id,), refuse={put_id: refused})
    answer = run_bulk(read_bulk_request(sample("3.7.3-bulk-request.json"), 1000), store.perform, BASE)
    expected = sample("3.7.3-bulk-response-fail-on-errors.json")["Operations"]
    assert [c.method for c in store.calls] == ["POST", "PUT"]
    assert len(answer["Operations"]) == 2
    failed = answer["Operations"][1]
    assert failed["location"] == expected[1]["location"]    # "REQUIRED in a response, except … a POST failure"
    assert {k: failed["response"][k] for k in ("schemas", "detail", "status")} == expected[1]["response"]
    assert failed["status"] == "412" and "version" not in failed
    BulkResponse[AnyResource].model_validate(answer, scim_ctx=Context.BULK_RESPONSE)


def test_without_fail_on_errors_every_operation_runs_and_each_reports_its_outcome() -> None:
    request = {"Operations": [
        {"method": "PATCH", "path": "/Users/missing", "data": {"Operations": []}},
        {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id"}},
        {"method": "GET", "path": "/Users/x"},
        {"method": "POST", "path": "/Printers", "bulkId": "p", "data": {}},
        "not an object",
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "u"}},
    ]}
    answer = run_bulk(read_bulk_request(request, 1000), FakeStore().perform, BASE)
    assert [o["status"] for o in answer["Operations"]] == ["404", "400", "400", "400", "400", "201"]
    assert [o["response"].get("scimType") for o in answer["Operations"][1:5]] == [
        "invalidValue", "invalidValue", "invalidValue", "invalidSyntax"]
    assert answer["Operations"][0]["location"] == f"{BASE}/Users/missing"
    assert answer["Operations"][4] == {"method": "", "status": "400", "response": answer["Operations"][4]["response"]}


def test_a_bulk_id_no_earlier_operation_defined_fails_that_operation_only() -> None:
    request = {"Operations": [
        {"method": "PATCH", "path": "/Groups/bulkId:later", "data": {}},
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"members": [{"value": "bulkId:nobody"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "later", "data": {"userName": "u"}},
        {"method": "PATCH", "path": "/Users/bulkId:later", "data": {"Operations": []}},
    ]}
    store = FakeStore()
    answer = run_bulk(read_bulk_request(request, 1000), store.perform, BASE)
    assert [o["status"] for o in answer["Operations"]] == ["400", "400", "201", "200"]
    assert "'later' is not defined" in answer["Operations"][0]["response"]["detail"]
    assert store.calls[-1].resource_id == "user-1"   # the path's reference resolved to the id created


def test_each_result_reaches_the_listener_in_order_with_what_a_log_keeps() -> None:
    seen: list[BulkResult] = []
    request = {"Operations": [{"method": "post", "path": "/Users", "bulkId": "a", "data": {"userName": "u"}},
                              {"method": "DELETE", "path": "/Groups/nope"},
                              {"method": "PUT", "path": "/Users//x"}]}
    run_bulk(read_bulk_request(request, 1000), FakeStore().perform, BASE, seen.append)
    assert [(r.index, r.method, r.status) for r in seen] == [(1, "POST", 201), (2, "DELETE", 404), (3, "PUT", 400)]
    assert seen[0].output is not None and seen[0].output["id"] == "user-1" and seen[0].data == {"userName": "u"}
    assert (seen[1].resource_type, seen[1].resource_id) == ("Group", "nope") and seen[1].error is not None
    assert seen[2].bad_path and seen[2].resource_type is None and seen[2].path == "/Users//x"
    assert all(r.started is not None and r.seconds >= 0 for r in seen)


@pytest.mark.parametrize(("payload", "error"), [
    (None, InvalidSyntaxException), ([], InvalidSyntaxException), ({"Operations": "no"}, InvalidSyntaxException),
    ({"Operations": [{}] * 3}, PayloadTooLargeException),
    ({"Operations": [], "failOnErrors": 0}, InvalidValueException),
    ({"Operations": [], "failOnErrors": "1"}, InvalidValueException),
])
def test_a_request_refused_as_a_whole_runs_nothing(payload: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_bulk_request(payload, 2)


@pytest.mark.parametrize(("value", "limit"), [(None, None), (False, None), (True, 1), (1, 1), (5, 5)])
def test_fail_on_errors_values(value: Any, limit: int | None) -> None:
    assert fail_on_errors(value) == limit


class Commits:
    """Shared transactions for ``run_bulk``: due every ``every`` operations; ``fail`` makes those commits (1-based)
    raise. Records how many operations each commit held."""

    def __init__(self, store: FakeStore, every: int, fail: tuple[int, ...] = ()) -> None:
        self.store, self.every, self.fail = store, every, fail
        self.held: list[int] = []
        self._since = 0

    def perform(self, call: BulkCall) -> dict[str, Any]:
        self._since += 1
        return self.store.perform(call)

    def due(self) -> bool:
        return self._since >= self.every

    def commit(self) -> None:
        self.held.append(self._since)
        self._since = 0
        if len(self.held) in self.fail:
            raise OSError("disk I/O error")


def _posts(n: int) -> dict[str, Any]:
    return {"Operations": [{"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {"userName": f"u{i}"}}
                           for i in range(n)]}


def test_shared_transactions_are_committed_when_due_and_at_the_end_and_results_follow_each_commit() -> None:
    seen: list[int] = []
    commits = Commits(FakeStore(), every=2)
    answer = run_bulk(read_bulk_request(_posts(5), 1000), commits.perform, BASE,
                      lambda r: seen.append(len(commits.held)), commits=commits)
    assert commits.held == [2, 2, 1]
    assert seen == [1, 1, 2, 2, 3]   # each result reported only once the commit that held it returned
    assert [o["status"] for o in answer["Operations"]] == ["201"] * 5


def test_operations_of_a_commit_that_failed_are_reported_failed_and_their_bulk_ids_forgotten() -> None:
    request = _posts(4)
    request["Operations"].append({"method": "PATCH", "path": "/Users/bulkId:u2", "data": {"Operations": []}})
    request["Operations"].append({"method": "PATCH", "path": "/Users/bulkId:u0", "data": {"Operations": []}})
    seen: list[BulkResult] = []
    commits = Commits(FakeStore(), every=2, fail=(2,))
    answer = run_bulk(read_bulk_request(request, 1000), commits.perform, BASE, seen.append, commits=commits)
    ops = answer["Operations"]
    assert [o["status"] for o in ops] == ["201", "201", "500", "500", "400", "200"]
    for failed in ops[2:4]:   # a POST that failed has no location (RFC 7644 §3.7) and no version
        assert "location" not in failed and "version" not in failed
        detail = failed["response"]["detail"]
        assert "could not be committed" in detail and "disk I/O error" in detail
    assert "'u2' is not defined" in ops[4]["response"]["detail"]   # what the failed commit held never existed
    assert ops[5]["location"] == f"{BASE}/Users/user-1"           # what an earlier commit made still does
    assert [r.status for r in seen] == [201, 201, 500, 500, 400, 200] and seen[2].output is None


def test_a_failed_commit_counts_towards_fail_on_errors() -> None:
    request = {**_posts(6), "failOnErrors": 2}
    commits = Commits(FakeStore(), every=2, fail=(1,))
    answer = run_bulk(read_bulk_request(request, 1000), commits.perform, BASE, commits=commits)
    assert [o["status"] for o in answer["Operations"]] == ["500", "500"]   # two errors: nothing more is run


def test_an_unexpected_error_stops_the_request_with_only_committed_results_reported() -> None:
    store = FakeStore(refuse={"user-9": RuntimeError("bug")})
    request = _posts(3)
    request["Operations"].append({"method": "PATCH", "path": "/Users/user-9", "data": {"Operations": []}})
    seen: list[BulkResult] = []
    commits = Commits(store, every=2)
    with pytest.raises(RuntimeError):
        run_bulk(read_bulk_request(request, 1000), commits.perform, BASE, seen.append, commits=commits)
    assert [r.index for r in seen] == [1, 2]   # the third was performed but never committed: not reported
