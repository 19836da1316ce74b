"""Bulk requests, RFC 7644 §3.7: reading the operations, ``bulkId`` references, ``failOnErrors``, the results.

``run_bulk`` reads a BulkRequest and runs its operations in order through a callable that performs one
(``perform``: the store's create, replace, patch or delete), each on its own: an operation that fails is
reported in its result and the next one runs, until ``failOnErrors`` errors have been counted. Operations may
share transactions (``Commits``): then each is reported once the commit that holds it has succeeded. A ``bulkId``
defined by an earlier POST may be used in a later operation's path or data (``"bulkId:qwerty"``); one that
no earlier operation defined fails that operation. Pure: no SQL, no HTTP.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from scim2_models import (
    BulkOperation,
    BulkResponse,
    InvalidSyntaxException,
    InvalidValueException,
    PayloadTooLargeException,
    SCIMException,
)

from tenantry.protocols.scim.errors import NotCommitted, error_body
from tenantry.protocols.scim.resources import ENDPOINTS

BULK_RESPONSE = str(BulkResponse.__schema__)
Method = BulkOperation.Method

_PATH = re.compile(rf"^/({'|'.join(ENDPOINTS)})(?:/([^/]+))?$")
_REFERENCE = re.compile(r"bulkId:([^/]+)")
_PREFIX = "bulkId:"
_SUCCESS = {Method.post: 201, Method.put: 200, Method.patch: 200, Method.delete: 204}


@dataclass(frozen=True)
class BulkRequest:
    """A BulkRequest's envelope, checked: its operations as sent and the number of errors that stops it."""

    operations: list[Any]
    fail_on_errors: int | None      # None: run every operation


@dataclass(frozen=True)
class BulkCall:
    """One operation read and resolved (its ``bulkId`` references replaced by ids): what ``perform`` runs."""

    method: BulkOperation.Method
    endpoint: str                  # "Users"
    resource_type: str             # "User"
    resource_id: str | None        # None for a POST
    data: Any
    version: str | None            # the operation's If-Match (§3.7: "version")
    bulk_id: str | None


@dataclass
class BulkResult:
    """One operation's outcome: its entry in the BulkResponse (``wire``) and what a log keeps of it.

    ``resource_type``/``resource_id`` are known once the path was read, ``data`` once its references were
    resolved, ``call`` once the whole operation was; ``output`` is what ``perform`` returned.
    """

    index: int                         # 1-based
    method: str                        # as sent, upper case; "" when there was none
    bulk_id: Any = None
    path: Any = None                   # as sent
    bad_path: bool = False
    resource_type: str | None = None
    resource_id: str | None = None
    data: Any = None
    call: BulkCall | None = None
    output: dict[str, Any] | None = None
    status: int = 0
    location: str | None = None
    version: str | None = None
    error: SCIMException | None = None
    started: datetime | None = None
    seconds: float = 0.0

    def wire(self) -> dict[str, Any]:
        """The operation's entry in the BulkResponse (RFC 7644 §3.7.3): status as a string, an error's body."""
        out: dict[str, Any] = {"method": self.method}
        if self.bulk_id:
            out["bulkId"] = self.bulk_id
        if self.location is not None:
            out["location"] = self.location
        if self.version is not None:
            out["version"] = self.version
        out["status"] = str(self.status)
        if self.error is not None:
            out["response"] = error_body(self.error)
        return out


# What performs one operation: the stored resource after a POST, PUT or PATCH (with ``id`` and
# ``meta.version``); after a DELETE, what the caller wants to keep of the deleted resource (its names).
Perform = Callable[[BulkCall], dict[str, Any]]


def read_bulk_request(payload: Any, max_operations: int) -> BulkRequest:
    """Check a BulkRequest as a whole before any operation runs: a JSON object with ``Operations``, a list
    (400 invalidSyntax), of at most ``max_operations`` (413, RFC 7644 §3.7.4: maxOperations), and a valid
    ``failOnErrors``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        raise InvalidSyntaxException(detail="a BulkRequest needs 'Operations', a list")
    operations = payload["Operations"]
    if len(operations) > max_operations:
        raise PayloadTooLargeException(detail=f"at most {max_operations} operations per BulkRequest")
    return BulkRequest(operations, fail_on_errors(payload.get("failOnErrors")))


def fail_on_errors(value: Any) -> int | None:
    """RFC 7644 §3.7.3 ``failOnErrors``: the number of errors after which the rest is not run.

    An integer of 1 or more; ``true`` is read as 1 and ``false`` (like absence) as "run every operation".
    Anything else is refused (400 invalidValue) before any operation runs.
    """
    if value is None or value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, int) and value >= 1:
        return value
    raise InvalidValueException(detail="failOnErrors must be an integer of 1 or more")


class Commits(Protocol):
    """How operations that share transactions are made durable (``run_bulk``'s ``commits``)."""

    def due(self) -> bool:
        """Whether what was performed should be committed before the next operation runs."""
        ...

    def commit(self) -> None:
        """Make the operations performed since the last commit durable; raise if it cannot (then none of them is)."""
        ...


def run_bulk(request: BulkRequest, perform: Perform, base_url: str,
             on_result: Callable[[BulkResult], None] | None = None, *,
             commits: Commits | None = None) -> dict[str, Any]:
    """Run the operations in order; the BulkResponse. ``on_result`` sees each result once it is settled.

    "The service provider MUST continue performing as many changes as possible and disregard partial
    failures" until ``failOnErrors`` is reached (§3.7.3). An exception that is no SCIMException is not an
    outcome: it stops the request (the server answers 500), with the results settled so far reported.

    Without ``commits`` each ``perform`` is durable when it returns. With it, operations share transactions:
    their results are settled when ``commits.commit()`` returns (when ``due``, and at the end). If a commit fails,
    none of the operations it held happened: each that had succeeded is reported failed (500, the reason), a
    POST's ``bulkId`` is forgotten (a later reference to it fails as undefined), and the next operations run.
    """
    ids: dict[Any, str] = {}
    results: list[dict[str, Any]] = []
    pending: list[BulkResult] = []
    errors = 0

    def settle() -> None:
        nonlocal errors
        if commits is not None and pending:
            try:
                commits.commit()
            except Exception as exc:   # noqa: BLE001 - an outcome of each operation it held, reported as such
                for result in pending:
                    if result.error is None:
                        _not_committed(result, exc, ids)
                        errors += 1
        for result in pending:
            if on_result is not None:
                on_result(result)
            results.append(result.wire())
        pending.clear()

    for index, op in enumerate(request.operations, 1):
        if request.fail_on_errors is not None and errors >= request.fail_on_errors:
            break
        result = _run_one(index, op, ids, perform, base_url)
        errors += result.error is not None
        pending.append(result)
        if commits is None or commits.due():
            settle()
    settle()
    return {"schemas": [BULK_RESPONSE], "Operations": results}


def _not_committed(result: BulkResult, exc: Exception, ids: dict[Any, str]) -> None:
    """An operation that succeeded in a transaction whose commit failed: it did not happen."""
    if result.call is not None and result.call.method is Method.post:
        ids.pop(result.call.bulk_id, None)
        result.location = None   # "REQUIRED … except in the event of a POST failure" (§3.7)
    result.version = None
    result.status = 500
    result.error = NotCommitted(detail=f"the operation could not be committed, so it did not happen: {exc}"[:500])
    result.output = None


def _run_one(index: int, op: Any, ids: dict[Any, str], perform: Perform, base_url: str) -> BulkResult:
    result = BulkResult(index, str(op.get("method", "")).upper() if isinstance(op, dict) else "",
                        op.get("bulkId") if isinstance(op, dict) else None,
                        op.get("path") if isinstance(op, dict) else None, started=datetime.now(UTC))
    started = time.perf_counter()
    try:
        call = result.call = _read(op, result, ids, base_url)
        output = result.output = perform(call)
        if call.method is Method.post:
            result.location = f"{base_url}/{call.endpoint}/{output['id']}"
            ids[call.bulk_id] = output["id"]
        if call.method is not Method.delete:
            result.version = output["meta"]["version"]
        result.status = _SUCCESS[call.method]
    except SCIMException as exc:
        result.status, result.error = exc.status, exc
    result.seconds = time.perf_counter() - started
    return result


def _read(op: Any, result: BulkResult, ids: Mapping[Any, str], base_url: str) -> BulkCall:
    """The operation as a call, filling ``result`` as far as it got; a SCIMException where it cannot.

    ``location`` is "REQUIRED in a response, except in the event of a POST failure" (§3.7): an operation on a
    resource is located as soon as its path is read, so that its result carries it whatever the outcome.
    """
    if not isinstance(op, dict):
        raise InvalidSyntaxException(detail="each bulk operation must be an object")
    path = _REFERENCE.sub(lambda m: resolve(m.group(0), ids), str(op.get("path", "")))
    match = _PATH.match(path)
    if not match:
        result.bad_path = True
        raise InvalidValueException(detail=f"bulk path {op.get('path')!r} is not /Users or /Groups[/id]")
    endpoint, rid = match.group(1), match.group(2)
    result.resource_type, result.resource_id = ENDPOINTS[endpoint], rid
    if rid is not None:
        result.location = f"{base_url}/{endpoint}/{rid}"
    data = result.data = resolve(op.get("data"), ids)
    method, bulk_id = result.method, result.bulk_id
    if method == Method.post and rid is None:
        if not bulk_id:
            raise InvalidValueException(detail="a bulk POST needs a bulkId")  # §3.7: bulkId "REQUIRED" for POST
    elif method not in (Method.put, Method.patch, Method.delete) or not rid:
        raise InvalidValueException(detail=f"bulk {method} {op.get('path')} is not an operation")
    return BulkCall(Method(method), endpoint, ENDPOINTS[endpoint], rid, data, op.get("version"), bulk_id)


def resolve(value: Any, ids: Mapping[Any, str]) -> Any:
    """``value`` with every ``"bulkId:<id>"`` string replaced by the id the POST of that bulkId created
    (RFC 7644 §3.7.2); one no earlier operation defined is refused (400 invalidValue)."""
    if isinstance(value, str) and value.startswith(_PREFIX):
        ref = value[len(_PREFIX):]
        if ref not in ids:
            raise InvalidValueException(detail=f"bulkId {ref!r} is not defined by an earlier operation")
        return ids[ref]
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


__all__ = ["BULK_RESPONSE", "BulkCall", "BulkRequest", "BulkResult", "Commits", "Perform", "fail_on_errors",
           "read_bulk_request", "resolve", "run_bulk"]
