"""The SCIM 2.0 HTTP endpoints (RFC 7644 §3): a thin router over ``ScimStore`` and ``protocols.scim``.

Mounted at ``/scim/v2`` for the default tenant and at ``/tenants/{tenant_id}/scim/v2`` for any tenant. Each
handler reads the request (``protocols.scim.search`` for query parameters, ``bulk`` for a BulkRequest),
calls the store and renders the answer. Every error leaves as an RFC 7644 §3.12 Error body with
``application/scim+json``. ``ScimLogMiddleware`` records each write (and its answer) in the tenant's SCIM
request log (``directory.scim_log``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar, cast

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from scim2_models import (
    Bulk as BulkConfig,
)
from scim2_models import (
    ChangePassword,
    Context,
    ETag,
    Filter,
    InvalidSyntaxException,
    NotFoundException,
    Patch,
    PayloadTooLargeException,
    SCIMException,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
)
from starlette.convertors import Convertor, register_url_convertor

from tenantry.core.errors import Forbidden, Unauthorized
from tenantry.core.settings import Settings
from tenantry.core.streaming import read_bounded
from tenantry.directory.scim_log import ScimLog, ScimLogEntry, ScimRequestRecord
from tenantry.directory.scim_store import ScimBatch, ScimStore
from tenantry.directory.service import DirectoryService
from tenantry.protocols.scim.bulk import BulkRequest, BulkResult, Method, read_bulk_request, run_bulk
from tenantry.protocols.scim.conditions import check_if_none_match
from tenantry.protocols.scim.errors import MethodNotAllowed, NotModified, error_body
from tenantry.protocols.scim.limits import check_json
from tenantry.protocols.scim.resources import ENDPOINTS, resource_type_documents, schema_documents
from tenantry.protocols.scim.search import (
    Projection,
    SearchSpec,
    list_response,
    project,
    read_projection,
    read_search,
)
from tenantry.protocols.scim.summary import join_bounded, patch_outline, resource_outline

log = logging.getLogger("tenantry.scim")
_T = TypeVar("_T")

SCIM_JSON = "application/scim+json"
_MAX_BODY = 10 * 1024 * 1024
# Where ScimLogMiddleware leaves a request's record in the ASGI scope, for the router to fill.
RECORD_KEY = "tenantry.scim_record"


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=SCIM_JSON, headers=headers)


def scim_error_response(exc: SCIMException) -> Response:
    if isinstance(exc, NotModified):
        return Response(status_code=304)
    headers = {"WWW-Authenticate": 'Bearer realm="tenantry"'} if exc.status == 401 else None
    return scim_response(error_body(exc), exc.status, headers)


class ScimContext:
    """What one request needs: the tenant it is for, the base URL its locations start with, and its record in
    the SCIM request log (a detached one, never stored, where no ScimLogMiddleware runs)."""

    def __init__(self, tenant: str, base_url: str, record: ScimRequestRecord | None = None) -> None:
        self.tenant = tenant
        self.base_url = base_url
        self.record = record or ScimRequestRecord.start("")

    def locate(self, doc: dict[str, Any]) -> dict[str, Any]:
        meta = doc.get("meta")
        if isinstance(meta, dict):
            meta["location"] = f"{self.base_url}/{meta['resourceType']}s/{doc['id']}"
        for member in doc.get("members", ()):
            member["$ref"] = f"{self.base_url}/{member.get('type', 'User')}s/{member['value']}"
        for group in doc.get("groups", ()):
            group["$ref"] = f"{self.base_url}/Groups/{group['value']}"
        return doc

    def endpoint(self, endpoint: str, resource_id: str | None = None, *, write: bool) -> str:
        """The resource type served at ``/<endpoint>``, else 404; the log record names it first, so that a
        request to a wrong endpoint is recorded too."""
        self.record.target(ENDPOINTS.get(endpoint, endpoint), resource_id, write=write)
        try:
            return ENDPOINTS[endpoint]
        except KeyError:
            raise NotFoundException(detail=f"no endpoint /{endpoint}") from None

    def resource(self, endpoint: str, resource_id: str, *, write: bool) -> tuple[str, str]:
        """(resource type, id) of ``/<endpoint>/<id>``. Our ids are UUIDs: one holding NUL (which PostgreSQL
        text cannot even compare) names nothing here."""
        resource_type = self.endpoint(endpoint, resource_id, write=write)
        if "\x00" in resource_id:
            raise NotFoundException(detail="no resource with this id")
        return resource_type, resource_id

    def sent(self, payload: Any, outline: str | None) -> None:
        """The log record keeps the names a body gives and an outline of what it asks."""
        self.record.entry.describe(payload)
        self.record.entry.operation = outline

    def respond(self, resource_type: str, doc: dict[str, Any], projection: Projection,
                status: int = 200) -> Response:
        """A resource with its ETag (RFC 7644 §3.14), and its Location when it was created (§3.3)."""
        self.locate(doc)
        headers = {"ETag": doc["meta"]["version"]}
        if status == 201:
            headers["Location"] = doc["meta"]["location"]
        return scim_response(project(resource_type, doc, projection), status, headers)

    def query(self, store: ScimStore, resource_type: str, spec: SearchSpec) -> dict[str, Any]:
        """One resource type's page of a query, as a ListResponse."""
        page = store.search(self.tenant, resource_type, filter_text=spec.filter, sort_by=spec.sort_by,
                            sort_order=spec.sort_order, start_index=spec.start_index, count=spec.count,
                            with_members=spec.projection.with_members)
        resources = [project(resource_type, self.locate(d), spec.projection) for d in page.resources]
        return list_response(resources, page.total, page.start_index)

    def filtered(self, filter_text: Any) -> None:
        """A read's log record (``TENANTRY_SCIM_LOG_READS``) says what it looked for: its filter."""
        if isinstance(filter_text, str) and filter_text:
            self.record.entry.operation = join_bounded([f"filter {filter_text}"])


async def read_body(request: Request, limit: int = _MAX_BODY) -> Any:
    """The JSON body: bounded while it streams (``request.body()`` would hold hundreds of MB before its size
    could be checked, issue #9), of a JSON content type, checked for depth and NUL (``limits.check_json``)."""
    return (await read_sized_body(request, limit))[0]


async def read_sized_body(request: Request, limit: int = _MAX_BODY) -> tuple[Any, int]:
    """``read_body``, and the body's size in bytes."""
    raw = await read_bounded(request, limit, lambda message: PayloadTooLargeException(detail=message))
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype not in (SCIM_JSON, "application/json"):
        raise InvalidSyntaxException(detail=f"Content-Type must be {SCIM_JSON}, not {ctype}")
    try:
        payload = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntaxException(detail=f"the body is not valid JSON: {exc}") from exc
    check_json(payload)
    return payload, len(raw)


async def read_search_request(request: Request) -> dict[str, Any]:
    """A SearchRequest's body (RFC 7644 §3.4.3): a JSON object (or nothing)."""
    params = await read_body(request) or {}
    if not isinstance(params, dict):
        raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")
    return params


class Access:
    """The request's tenant and base URL (``context``), and its SCIM token checked (``authed``).

    Every route calls one of them first thing, rather than declaring it a FastAPI dependency, and reads its path
    parameters from the request (``_path``): FastAPI's dependency and parameter solving cost a third of a
    filtered GET's CPU in-process (bench/scim_write_profile.py --mode get: 620 → 410 µs, issue #16), and these
    take nothing but the request."""

    def __init__(self, directory: DirectoryService, settings: Settings) -> None:
        self.directory, self.settings = directory, settings

    async def context(self, request: Request) -> ScimContext:
        settings = self.settings
        tenant = request.path_params.get("tenant_id", settings.default_tenant)
        url = str(request.url)
        base = settings.public_url.rstrip("/") if settings.public_url else url[: url.index("/scim/v2") + 8]
        if settings.public_url:
            path = request.url.path
            base = base + path[: path.index("/scim/v2") + 8]
        return ScimContext(tenant, base, request.scope.get(RECORD_KEY))

    async def authed(self, request: Request) -> ScimContext:
        ctx = await self.context(request)
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            secret = ""
        try:
            credential = self.directory.authenticate_token(secret.strip(), "scim", ctx.tenant)
        # Every refusal is 401 here (RFC 7644 §3.12: the authorization is not valid for this endpoint): an
        # identity provider holds one token, and the endpoint does not tell which other kinds of secret exist.
        except (Unauthorized, Forbidden) as exc:
            # Not in the tenant's request log: a caller without the tenant's credential must not be able to write
            # rows into its storage. The server log says it, for the administrator of the installation.
            client = request.client.host if request.client else "?"
            log.warning("SCIM %s %s for tenant %s from %s refused (401): %s", request.method,
                        request.url.path[:200], ctx.tenant, client, exc.message)
            if isinstance(exc, Forbidden):
                raise UnauthorizedException(detail="the bearer token is not valid for this SCIM endpoint") from exc
            raise UnauthorizedException(detail=exc.message) from exc
        ctx.record.credential(ctx.tenant, credential.id, credential.name)
        return ctx


def build_router(store: ScimStore, directory: DirectoryService, settings: Settings) -> APIRouter:
    # The dependencies and the cheap reads are async and call the store directly: the look-ups take a
    # fraction of a millisecond, less than handing them to a worker thread. So does a write of one user on
    # SQLite when the write lock is free (``_write``); writes that can be long (a Bulk request, a group, a big
    # body) or would wait for the lock go to the thread pool, so they never hold up the event loop.
    router = APIRouter()
    access = Access(directory, settings)
    # The resource routes first: a request is matched against the routes in order, twice (FastAPI's included
    # router), and nearly every request an IdP sends is to /Users or /Groups. Their ``{endpoint}`` never
    # takes a name the fixed routes below hold (``_ResourceEndpoint``), so the order changes no answer.
    _query_routes(router, access, store, settings)
    _write_routes(router, access, store, settings)
    _discovery_routes(router, access, settings)
    _bulk_route(router, access, store, settings)
    return router


def _path(request: Request) -> tuple[str, str]:
    """``/<endpoint>/<id>``'s two segments. Routes read their path parameters from the request rather than
    declaring them: FastAPI's parameter solving costs more than the rest of a filtered GET's routing (issue #16)."""
    params = request.path_params
    return params["endpoint"], params["resource_id"]


class _ResourceEndpoint(Convertor[str]):
    """A resource endpoint's path segment (``Users``, ``Groups``, or an unknown one, answered 404 by the route):
    any segment but the fixed endpoints' names, which keep their own routes (discovery, ``/Bulk``, ``/.search``)."""

    regex = r"(?!(?:ServiceProviderConfig|Schemas|ResourceTypes|Bulk|\.search)(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("scim_endpoint", _ResourceEndpoint())


# -- discovery (RFC 7644 §4), readable without a token ------------------------------------------


def _discovery_routes(router: APIRouter, access: Access, settings: Settings) -> None:
    def documents(ctx: ScimContext, kind: str, models: list[Any]) -> list[dict[str, Any]]:
        docs = []
        for model in models:
            doc = model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            doc["meta"] = {"resourceType": kind, "location": f"{ctx.base_url}/{kind}s/{doc['id']}"}
            docs.append(doc)
        return docs

    def one(docs: list[dict[str, Any]], wanted: str, what: str) -> Response:
        for doc in docs:
            if doc["id"] == wanted:
                return scim_response(doc)
        raise NotFoundException(detail=f"no {what} {wanted}")

    @router.route("/ServiceProviderConfig", methods=["GET"])
    async def service_provider_config(request: Request) -> Response:
        ctx = await access.context(request)
        doc = _service_provider_config(settings).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        doc["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{ctx.base_url}/ServiceProviderConfig"}
        return scim_response(doc)

    @router.route("/Schemas", methods=["GET"])
    async def schemas(request: Request) -> Response:
        ctx = await access.context(request)
        docs = documents(ctx, "Schema", schema_documents())
        return scim_response(list_response(docs, len(docs)))

    @router.route("/Schemas/{schema_id:path}", methods=["GET"])
    async def schema(request: Request) -> Response:
        ctx = await access.context(request)
        return one(documents(ctx, "Schema", schema_documents()), request.path_params["schema_id"], "schema")

    @router.route("/ResourceTypes", methods=["GET"])
    async def resource_types(request: Request) -> Response:
        ctx = await access.context(request)
        docs = documents(ctx, "ResourceType", resource_type_documents())
        return scim_response(list_response(docs, len(docs)))

    @router.route("/ResourceTypes/{type_id}", methods=["GET"])
    async def resource_type(request: Request) -> Response:
        ctx = await access.context(request)
        return one(documents(ctx, "ResourceType", resource_type_documents()), request.path_params["type_id"],
                   "resource type")

    @router.route("/ServiceProviderConfig", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.route("/Schemas", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.route("/Schemas/{_id:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.route("/ResourceTypes", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.route("/ResourceTypes/{_id}", methods=["POST", "PUT", "PATCH", "DELETE"])
    async def read_only(request: Request) -> Response:
        # Discovery documents are the server's own: RFC 7644 §4 allows only GET.
        raise MethodNotAllowed(detail="discovery endpoints are read-only (GET)")


def _service_provider_config(settings: Settings) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=BulkConfig(supported=True, max_operations=settings.bulk_max_operations,
                        max_payload_size=settings.bulk_max_payload_bytes),
        filter=Filter(supported=True, max_results=settings.scim_max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[{
            "type": "oauthbearertoken", "name": "Bearer token",
            "description": "Per-tenant secret token: Authorization: Bearer <token>", "primary": True,
        }],
    )


# -- bulk (RFC 7644 §3.7) ----------------------------------------------------------------------------


def _bulk_route(router: APIRouter, access: Access, store: ScimStore, settings: Settings) -> None:
    @router.route("/Bulk", methods=["POST"])
    async def bulk(request: Request) -> Response:
        ctx = await access.authed(request)
        ctx.record.target("Bulk", write=True)
        ctx.record.bulk = True
        payload = await read_body(request, settings.bulk_max_payload_bytes)
        bulk_request = read_bulk_request(payload, settings.bulk_max_operations)
        answer = await run_in_threadpool(_run_batched, store, ctx.tenant, bulk_request, ctx.base_url,
                                         partial(_log_operation, ctx.record))
        return scim_response(answer)


def _run_batched(store: ScimStore, tenant: str, bulk_request: BulkRequest, base_url: str,
                 on_result: Callable[[BulkResult], None]) -> dict[str, Any]:
    """The operations in shared transactions, each atomic on its own (``ScimBatch``), on one worker thread."""
    batch = ScimBatch(store, tenant)
    try:
        return run_bulk(bulk_request, batch.perform, base_url, on_result, commits=batch)
    finally:
        batch.close()


def _log_operation(record: ScimRequestRecord, result: BulkResult) -> None:
    """Each Bulk operation is a row of the SCIM request log, with its own outcome and duration."""
    entry = record.operation(result.index, result.method or "?")
    entry.at = result.started or entry.at
    if result.bad_path:
        entry.operation = join_bounded([f"path {str(result.path)[:96]}"])
    if result.resource_type is not None:
        entry.resource_type, entry.resource_id = result.resource_type, result.resource_id
        entry.describe(result.data)
        entry.operation = patch_outline(result.data) if result.method == "PATCH" else resource_outline(result.data)
    if result.output is not None:
        entry.describe(result.output, with_id=result.method != Method.delete)
    if result.error is not None:
        entry.fail(result.error.status, result.error.scim_type, result.error.detail)
    else:
        entry.status = result.status
    entry.duration_ms = int(result.seconds * 1000)


# -- queries (RFC 7644 §3.4) ------------------------------------------------------------------------


def _query_routes(router: APIRouter, access: Access, store: ScimStore, settings: Settings) -> None:
    def read(params: dict[str, Any]) -> SearchSpec:
        return read_search(params, default_count=settings.scim_default_count, max_results=settings.scim_max_results)

    @router.route("/{endpoint:scim_endpoint}", methods=["GET"])
    async def list_resources(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype = ctx.endpoint(request.path_params["endpoint"], write=False)
        params = dict(request.query_params)
        ctx.filtered(params.get("filter"))
        spec = read(params)
        if store.reads_inline(rtype, spec.filter, spec.sort_by, query=True):
            return scim_response(ctx.query(store, rtype, spec))  # one indexed row: cheaper than a thread hop
        return scim_response(await run_in_threadpool(ctx.query, store, rtype, spec))

    @router.route("/{endpoint:scim_endpoint}/.search", methods=["POST"])
    async def search_resources(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype = ctx.endpoint(request.path_params["endpoint"], write=False)
        params = await read_search_request(request)
        ctx.filtered(params.get("filter"))
        return scim_response(await run_in_threadpool(ctx.query, store, rtype, read(params)))

    @router.route("/.search", methods=["POST"])
    async def search_all(request: Request) -> Response:
        ctx = await access.authed(request)
        ctx.record.target(None, write=False)
        params = await read_search_request(request)
        ctx.filtered(params.get("filter"))
        # Root search (RFC 7644 §3.4.3): every resource type, in order, paged over the concatenation.
        spec = read(params)
        every = dataclasses.replace(spec, start_index=1, count=settings.scim_max_results)
        pages = [await run_in_threadpool(ctx.query, store, rtype, every) for rtype in ENDPOINTS.values()]
        combined = [doc for page in pages for doc in page["Resources"]]
        window = combined[spec.start_index - 1 : spec.start_index - 1 + spec.count]
        return scim_response(list_response(window, sum(p["totalResults"] for p in pages), spec.start_index))

    @router.route("/{endpoint:scim_endpoint}/{resource_id}", methods=["GET"])
    async def get(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype, rid = ctx.resource(*_path(request), write=False)
        projection = read_projection(request.query_params)
        read_one = partial(store.get, ctx.tenant, rtype, rid, with_members=projection.with_members)
        doc = read_one() if store.reads_inline(rtype) else await run_in_threadpool(read_one)
        check_if_none_match(request.headers.get("if-none-match"), doc["meta"]["version"])
        return ctx.respond(rtype, doc, projection)


# -- writes (RFC 7644 §3.3, §3.5, §3.6) -------------------------------------------------------------


def _write_routes(router: APIRouter, access: Access, store: ScimStore, settings: Settings) -> None:
    @router.route("/{endpoint:scim_endpoint}", methods=["POST"])
    async def create(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype = ctx.endpoint(request.path_params["endpoint"], write=True)
        payload, size = await read_sized_body(request)
        ctx.sent(payload, resource_outline(payload))
        doc = await _write(store, rtype, size, store.create, ctx.tenant, rtype, payload)
        ctx.record.entry.describe(doc, with_id=True)
        return ctx.respond(rtype, doc, read_projection(request.query_params), 201)

    @router.route("/{endpoint:scim_endpoint}/{resource_id}", methods=["PUT"])
    async def replace(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype, rid = ctx.resource(*_path(request), write=True)
        payload, size = await read_sized_body(request)
        ctx.sent(payload, resource_outline(payload))
        doc = await _write(store, rtype, size, store.replace, ctx.tenant, rtype, rid, payload,
                           request.headers.get("if-match"))
        ctx.record.entry.describe(doc)
        return ctx.respond(rtype, doc, read_projection(request.query_params))

    @router.route("/{endpoint:scim_endpoint}/{resource_id}", methods=["PATCH"])
    async def patch(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype, rid = ctx.resource(*_path(request), write=True)
        payload, size = await read_sized_body(request)
        ctx.record.entry.operation = patch_outline(payload)
        projection = read_projection(request.query_params)
        doc, whole = await _write(store, rtype, size, _patch, store, ctx, rtype, rid, payload,
                                  request.headers.get("if-match"), projection.with_members and store.has_members(rtype),
                                  settings.scim_patch_members_limit)
        if not whole:
            return Response(status_code=204, headers={"ETag": doc["meta"]["version"]})
        return ctx.respond(rtype, doc, projection)

    @router.route("/{endpoint:scim_endpoint}/{resource_id}", methods=["DELETE"])
    async def delete(request: Request) -> Response:
        ctx = await access.authed(request)
        rtype, rid = ctx.resource(*_path(request), write=True)
        gone = await _write(store, rtype, 0, store.delete, ctx.tenant, rtype, rid, request.headers.get("if-match"))
        ctx.record.entry.describe(gone)
        return Response(status_code=204)


async def _write(store: ScimStore, rtype: str, size: int, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``, a write of one resource: on the event loop when that is cheaper and the write lock is free
    (``ScimStore.writes_inline``, ``Database.at_once``), else on a worker thread, where it may wait for the lock.
    Given way (WriterBusy: the lock was taken, or the stored user is too big for the loop), nothing of it is
    stored, so the thread runs it from the start."""
    if store.writes_inline(rtype, size):
        done, result = await store.db.run_at_once(fn, *args)
        if done:
            return cast(_T, result)
    return await run_in_threadpool(fn, *args)


def _patch(store: ScimStore, ctx: ScimContext, rtype: str, rid: str, payload: Any, if_match: str | None,
           list_members: bool, members_limit: int) -> tuple[dict[str, Any], bool]:
    """PATCH, and the resource to answer with; False: answer 204 with the ETag only.

    200 with the whole resource (RFC 7644 §3.5.2): Okta, scim-sanity and scim2-tester expect it. A group with
    more members than ``members_limit`` answers 204 instead (the RFC's other choice): Entra advises against
    echoing big member lists, and building one is most of the cost.
    """
    doc = store.patch(ctx.tenant, rtype, rid, payload, if_match, with_members=False)
    ctx.record.entry.describe(doc)
    if list_members:
        if store.member_count(ctx.tenant, rid) > members_limit:
            return doc, False
        doc = store.get(ctx.tenant, rtype, rid)
    return doc, True


class _GroupCommit:
    """Writes log rows in batches: the rows of requests answered while a batch is being written wait, and go
    together in the next one. Under load one transaction carries many requests' rows (on SQLite each
    transaction costs about as much as a dozen rows); a lone request's rows are written at once, so nothing is
    held back to make a batch. On SQLite a small batch is written on the event loop when the write lock is free
    (``ScimLog.record_now``), else on a worker thread. Each ``add`` returns once its rows are stored (or,
    ``ScimLog.record`` never raising, once their loss has been logged)."""

    def __init__(self, scim_log: ScimLog) -> None:
        self.scim_log = scim_log
        self.pending: list[ScimLogEntry] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.writer: asyncio.Task[None] | None = None

    async def add(self, entries: list[ScimLogEntry]) -> None:
        if not entries:
            return   # nothing to store (a Bulk request of no operations): nothing to wait for
        loop = asyncio.get_running_loop()
        if self.writer is not None and self.writer.get_loop() is not loop:
            # A new event loop (a test client's per-request portal): rows the old one left go with this batch;
            # their waiters' loop is gone.
            self.writer, self.waiters = None, []
        stored = loop.create_future()
        self.pending.extend(entries)
        self.waiters.append(stored)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.create_task(self._drain())
        await stored

    async def _drain(self) -> None:
        while self.pending or self.waiters:   # a waiter is always answered, even if its rows went in a batch before
            batch, waiters = self.pending, self.waiters
            self.pending, self.waiters = [], []
            try:
                done = False
                if self.scim_log.can_record_now(batch):
                    done, _ = await self.scim_log.db.run_at_once(self.scim_log.record_now, batch)
                if not done:
                    await run_in_threadpool(self.scim_log.record, batch)
            finally:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)


class ScimLogMiddleware:
    """Records SCIM requests in the tenant's SCIM request log once they are answered (``directory.scim_log``).

    The router fills the request's record (the credential, the resource, a PATCH's outline); this layer adds
    what only the answer knows — the status as sent, an error's ``scimType`` and ``detail`` read from its
    body, the duration — and stores the rows after the last byte of the answer has been sent, batched with the
    rows of other requests answered meanwhile (``_GroupCommit``). ``ScimLog.record``
    never raises, so the log can neither fail nor delay the write it describes. A request is recorded when a
    SCIM token of the tenant made it and it was a write (or ``reads``).
    """

    def __init__(self, app: Any, scim_log: ScimLog, *, reads: bool = False) -> None:
        self.app, self.scim_log, self.reads = app, scim_log, reads
        self.batches = _GroupCommit(scim_log)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/scim/v2" not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        record = ScimRequestRecord.start(scope.get("method", "?"), client[0] if client else None,
                                         headers.get(b"user-agent", b"").decode("latin-1") or None)
        scope[RECORD_KEY] = record
        started = time.perf_counter()
        status = 0
        error_body = bytearray()

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400 and len(error_body) < 16_384:
                error_body.extend(message.get("body", b"")[: 16_384 - len(error_body)])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            # Unhandled: the server's error layer answers 500 (unless the answer had begun).
            if not status:
                record.entry.fail(500, None, f"internal error ({exc.__class__.__name__}); the server log has it")
            await self._store(record, status or 500, bytes(error_body), started)
            raise
        await self._store(record, status, bytes(error_body), started)

    async def _store(self, record: ScimRequestRecord, status: int, error_body: bytes, started: float) -> None:
        if not record.authenticated or not (record.write or self.reads):
            return
        try:
            entries: list[ScimLogEntry] = record.finish(status, error_body, int((time.perf_counter() - started) * 1000))
            await self.batches.add(entries)
        except Exception:  # noqa: BLE001 - the answer has gone; a fault here must not turn into a second one
            log.exception("SCIM request log: the record of %s could not be stored", record.entry.brief())


__all__ = ["ScimLogMiddleware", "build_router", "scim_error_response", "scim_response"]
