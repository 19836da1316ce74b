"""The SCIM 2.0 HTTP endpoints (RFC 7644 §3): a thin router over ``ScimStore``.

Mounted at ``/scim/v2`` for the default tenant and at ``/tenants/{tenant_id}/scim/v2`` for any tenant.
Every error leaves as an RFC 7644 §3.12 Error body with ``application/scim+json``. ``ScimLogMiddleware``
records each write (and its answer) in the tenant's SCIM request log (``directory.scim_log``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError
from scim2_models import (
    Bulk as BulkConfig,
)
from scim2_models import (
    ChangePassword,
    Context,
    ETag,
    Filter,
    InvalidSyntaxException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    Patch,
    PayloadTooLargeException,
    ResponseParameters,
    SCIMException,
    ServiceProviderConfig,
    Sort,
)

from tenantry.core.errors import Forbidden, Unauthorized
from tenantry.core.settings import Settings
from tenantry.core.streaming import read_bounded
from tenantry.directory.scim_log import ScimLog, ScimLogEntry, ScimRequestRecord
from tenantry.directory.scim_store import ScimStore, simple_equality
from tenantry.directory.service import DirectoryService
from tenantry.protocols.scim.errors import MethodNotAllowed, NotModified, error_body, validation_error_to_scim
from tenantry.protocols.scim.limits import check_filter, check_json, check_start_index
from tenantry.protocols.scim.resources import (
    ENDPOINTS,
    RESOURCE_MODELS,
    resource_type_documents,
    schema_documents,
)
from tenantry.protocols.scim.summary import join_bounded, patch_outline, resource_outline

log = logging.getLogger("tenantry.scim")

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_MAX_BODY = 10 * 1024 * 1024
_ASCII_INT = re.compile(r"[+-]?[0-9]+")


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=SCIM_JSON, headers=headers)


def scim_error_response(exc: SCIMException) -> Response:
    if isinstance(exc, NotModified):
        return Response(status_code=304)
    headers = {"WWW-Authenticate": 'Bearer realm="tenantry"'} if exc.status == 401 else None
    return scim_response(error_body(exc), exc.status, headers)


# Where ScimLogMiddleware leaves a request's record in the ASGI scope, for the router to fill.
RECORD_KEY = "tenantry.scim_record"


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


def _split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _int_param(name: str, value: Any) -> int | None:
    """An integer from a query string ("10") or a SearchRequest (10); None when absent; else 400 invalidValue."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # JSON numbers past 64 bits arrive as floats
        return int(value)
    # ASCII digits with at most one sign: str.isdigit() also takes "²" and "--1", which int() refuses (a 500).
    if isinstance(value, str) and len(value) <= 40 and _ASCII_INT.fullmatch(value.strip()):
        return int(value)
    raise InvalidValueException(detail=f"{name} must be an integer")


def _str_list_param(name: str, value: Any) -> list[str] | None:
    """``attributes``/``excludedAttributes``: a comma-separated string (query) or a list of strings (body)."""
    if value is None or isinstance(value, str):
        return _split_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()] or None
    raise InvalidValueException(detail=f"{name} must be a string or a list of strings")


def project(resource_type: str, doc: dict[str, Any], attributes: list[str] | None,
            excluded: list[str] | None) -> dict[str, Any]:
    """Apply ``attributes``/``excludedAttributes`` (RFC 7644 §3.4.2.5) with the schema's ``returned`` rules."""
    if not attributes and not excluded:
        return doc
    model = RESOURCE_MODELS[resource_type]
    try:
        instance = model.model_validate(doc)
        params: Any = ResponseParameters(attributes=attributes, excluded_attributes=excluded)
        out: dict[str, Any] = instance.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params
        )
    except ValidationError as exc:
        raise validation_error_to_scim(exc) from exc
    return out


def build_router(store: ScimStore, directory: DirectoryService, settings: Settings) -> APIRouter:
    router = APIRouter()

    # The dependencies and the read handlers are async and call the store directly: the look-ups take a
    # fraction of a millisecond, less than handing them to a worker thread. Writes, which can be long (a
    # Bulk request, a big group), go to the thread pool so they never hold up the event loop.
    async def context(request: Request) -> ScimContext:
        tenant = request.path_params.get("tenant_id", settings.default_tenant)
        url = str(request.url)
        base = settings.public_url.rstrip("/") if settings.public_url else url[: url.index("/scim/v2") + 8]
        if settings.public_url:
            path = request.url.path
            base = base + path[: path.index("/scim/v2") + 8]
        return ScimContext(tenant, base, request.scope.get(RECORD_KEY))

    async def authed(request: Request) -> ScimContext:
        ctx = await context(request)
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            secret = ""
        try:
            credential = directory.authenticate_token(secret.strip(), "scim", ctx.tenant)
        # Every refusal is 401 here (RFC 7644 §3.12: the authorization is not valid for this endpoint): an
        # identity provider holds one token, and the endpoint does not tell which other kinds of secret exist.
        except (Unauthorized, Forbidden) as exc:
            from scim2_models import UnauthorizedException

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

    async def body(request: Request, limit: int = _MAX_BODY) -> Any:
        # Bounded while it streams: request.body() would hold the whole body (hundreds of MB) before its size
        # could be checked (issue #9, bounded input).
        raw = await read_bounded(request, limit, lambda message: PayloadTooLargeException(detail=message))
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype not in (SCIM_JSON, "application/json"):
            raise InvalidSyntaxException(detail=f"Content-Type must be {SCIM_JSON}, not {ctype}")
        try:
            payload = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise InvalidSyntaxException(detail=f"the body is not valid JSON: {exc}") from exc
        check_json(payload)  # depth and NUL: see protocols.scim.limits
        return payload

    # -- discovery (RFC 7644 §4), readable without a token ------------------------------

    @router.get("/ServiceProviderConfig")
    def service_provider_config(ctx: ScimContext = Depends(context)) -> Response:  # noqa: B008
        config = ServiceProviderConfig(
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
        doc = config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        doc["meta"] = {"resourceType": "ServiceProviderConfig", "location": f"{ctx.base_url}/ServiceProviderConfig"}
        return scim_response(doc)

    def _schemas(ctx: ScimContext) -> list[dict[str, Any]]:
        docs = []
        for schema in schema_documents():
            doc = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            doc["meta"] = {"resourceType": "Schema", "location": f"{ctx.base_url}/Schemas/{doc['id']}"}
            docs.append(doc)
        return docs

    def _resource_types(ctx: ScimContext) -> list[dict[str, Any]]:
        docs = []
        for rt in resource_type_documents():
            doc = rt.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            doc["meta"] = {"resourceType": "ResourceType", "location": f"{ctx.base_url}/ResourceTypes/{doc['id']}"}
            docs.append(doc)
        return docs

    def _list(docs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"schemas": [LIST_RESPONSE], "totalResults": len(docs), "itemsPerPage": len(docs),
                "startIndex": 1, "Resources": docs}

    @router.get("/Schemas")
    def schemas(ctx: ScimContext = Depends(context)) -> Response:  # noqa: B008
        return scim_response(_list(_schemas(ctx)))

    @router.get("/Schemas/{schema_id:path}")
    def schema(schema_id: str, ctx: ScimContext = Depends(context)) -> Response:  # noqa: B008
        for doc in _schemas(ctx):
            if doc["id"] == schema_id:
                return scim_response(doc)
        raise NotFoundException(detail=f"no schema {schema_id}")

    @router.get("/ResourceTypes")
    def resource_types(ctx: ScimContext = Depends(context)) -> Response:  # noqa: B008
        return scim_response(_list(_resource_types(ctx)))

    @router.get("/ResourceTypes/{type_id}")
    def resource_type(type_id: str, ctx: ScimContext = Depends(context)) -> Response:  # noqa: B008
        for doc in _resource_types(ctx):
            if doc["id"] == type_id:
                return scim_response(doc)
        raise NotFoundException(detail=f"no resource type {type_id}")

    @router.api_route("/ServiceProviderConfig", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/Schemas", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/Schemas/{_id:path}", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/ResourceTypes", methods=["POST", "PUT", "PATCH", "DELETE"])
    @router.api_route("/ResourceTypes/{_id}", methods=["POST", "PUT", "PATCH", "DELETE"])
    def read_only() -> Response:
        # Discovery documents are the server's own: RFC 7644 §4 allows only GET.
        raise MethodNotAllowed(detail="discovery endpoints are read-only (GET)")

    # -- bulk (RFC 7644 §3.7) ---------------------------------------------------------------

    @router.post("/Bulk")
    async def bulk(request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        ctx.record.target("Bulk", write=True)
        ctx.record.bulk = True
        payload = await body(request, settings.bulk_max_payload_bytes)
        return scim_response(await run_in_threadpool(run_bulk, store, ctx, payload, settings.bulk_max_operations))

    # -- resources ------------------------------------------------------------------------

    def _resource_type(endpoint: str) -> str:
        try:
            return ENDPOINTS[endpoint]
        except KeyError:
            raise NotFoundException(detail=f"no endpoint /{endpoint}") from None

    def _target(ctx: ScimContext, endpoint: str, resource_id: str | None = None, *, write: bool) -> None:
        """Name the request's resource in its log record before anything can fail (a wrong endpoint too)."""
        ctx.record.target(ENDPOINTS.get(endpoint, endpoint), resource_id, write=write)

    def _resource_id(resource_id: str) -> str:
        # Our ids are UUIDs; one holding NUL (which PostgreSQL text cannot even compare) names nothing here.
        if "\x00" in resource_id:
            raise NotFoundException(detail="no resource with this id")
        return resource_id

    def _respond_resource(ctx: ScimContext, rtype: str, doc: dict[str, Any], request: Request,
                          status: int = 200) -> Response:
        ctx.locate(doc)
        version = doc["meta"]["version"]
        headers = {"ETag": version}
        if status == 201:
            headers["Location"] = doc["meta"]["location"]
        doc = project(rtype, doc, _split_list(request.query_params.get("attributes")),
                      _split_list(request.query_params.get("excludedAttributes")))
        return scim_response(doc, status, headers)

    def _paging(params: dict[str, Any]) -> tuple[int, int]:
        """startIndex and count (RFC 7644 §3.4.2.4): integers, or 400 invalidValue. Below 1 and below 0 are
        read as 1 and 0, as the RFC says; a startIndex past MAX_START_INDEX is refused (it can address
        nothing, and past 64 bits it breaks the SQL OFFSET)."""
        start = _int_param("startIndex", params.get("startIndex"))
        count = _int_param("count", params.get("count"))
        start = 1 if start is None else max(1, start)
        check_start_index(start)
        count = settings.scim_default_count if count is None else max(0, min(count, settings.scim_max_results))
        return start, count

    def _search(ctx: ScimContext, rtype: str, params: dict[str, Any]) -> dict[str, Any]:
        attributes = _str_list_param("attributes", params.get("attributes"))
        excluded = _str_list_param("excludedAttributes", params.get("excludedAttributes"))
        start, count = _paging(params)
        filter_text = params.get("filter")
        if filter_text is not None and not isinstance(filter_text, str):
            from scim2_models import InvalidFilterException

            raise InvalidFilterException(detail="filter must be a string")
        if filter_text:
            check_filter(filter_text)
        sort_by = params.get("sortBy")
        if sort_by is not None and not isinstance(sort_by, str):
            raise InvalidValueException(detail="sortBy must be a string")
        sort_order = params.get("sortOrder")
        if sort_order is not None and not isinstance(sort_order, str):
            raise InvalidValueException(detail="sortOrder must be a string")
        if sort_order and sort_order.lower() not in ("ascending", "descending"):
            raise InvalidValueException(detail="sortOrder must be 'ascending' or 'descending'")
        with_members = not (excluded and any(e.lower().endswith("members") for e in excluded))
        page = store.search(
            ctx.tenant, rtype, filter_text=filter_text or None, sort_by=sort_by or None,
            sort_order=sort_order, start_index=start, count=count, with_members=with_members,
        )
        resources = [project(rtype, ctx.locate(d), attributes, excluded) for d in page.resources]
        out: dict[str, Any] = {
            "schemas": [LIST_RESPONSE], "totalResults": page.total, "itemsPerPage": len(resources),
            "startIndex": page.start_index, "Resources": resources,
        }
        return out

    @router.get("/{endpoint}")
    async def list_resources(endpoint: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, write=False)
        rtype = _resource_type(endpoint)
        params = dict(request.query_params)
        _filter_outline(ctx, params.get("filter"))
        if rtype == "User" and simple_equality(params.get("filter") or "") and not params.get("sortBy"):
            return scim_response(_search(ctx, rtype, params))  # one indexed row: cheaper than a thread hop
        return scim_response(await run_in_threadpool(_search, ctx, rtype, params))

    @router.post("/{endpoint}/.search")
    async def search_resources(endpoint: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, write=False)
        rtype = _resource_type(endpoint)
        params = await body(request) or {}
        if not isinstance(params, dict):
            raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")
        _filter_outline(ctx, params.get("filter"))
        return scim_response(await run_in_threadpool(_search, ctx, rtype, params))

    @router.post("/.search")
    async def search_all(request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        ctx.record.target(None, write=False)
        params = await body(request) or {}
        if not isinstance(params, dict):
            raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")
        _filter_outline(ctx, params.get("filter"))
        # Root search (RFC 7644 §3.4.3): every resource type, in order, paged over the concatenation.
        start, count = _paging(params)
        combined: list[dict[str, Any]] = []
        total = 0
        for rtype in ("User", "Group"):
            page = await run_in_threadpool(
                _search, ctx, rtype, {**params, "startIndex": 1, "count": settings.scim_max_results})
            total += page["totalResults"]
            combined.extend(page["Resources"])
        window = combined[start - 1 : start - 1 + count]
        return scim_response({"schemas": [LIST_RESPONSE], "totalResults": total, "itemsPerPage": len(window),
                              "startIndex": start, "Resources": window})

    @router.post("/{endpoint}")
    async def create(endpoint: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, write=True)
        rtype = _resource_type(endpoint)
        payload = await body(request)
        ctx.record.entry.describe(payload)
        ctx.record.entry.operation = resource_outline(payload)
        doc = await run_in_threadpool(store.create, ctx.tenant, rtype, payload)
        ctx.record.entry.describe(doc, with_id=True)
        return _respond_resource(ctx, rtype, doc, request, 201)

    @router.get("/{endpoint}/{resource_id}")
    async def get(endpoint: str, resource_id: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, resource_id, write=False)
        rtype = _resource_type(endpoint)
        resource_id = _resource_id(resource_id)
        excluded = _split_list(request.query_params.get("excludedAttributes")) or []
        with_members = not any(e.lower().endswith("members") for e in excluded)
        if rtype == "User":
            doc = store.get(ctx.tenant, rtype, resource_id)
        else:  # a group may have 50,000 members: not on the event loop
            doc = await run_in_threadpool(store.get, ctx.tenant, rtype, resource_id, with_members=with_members)
        if request.headers.get("if-none-match") == doc["meta"]["version"]:
            raise NotModified()
        return _respond_resource(ctx, rtype, doc, request)

    @router.put("/{endpoint}/{resource_id}")
    async def replace(endpoint: str, resource_id: str, request: Request,
                      ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, resource_id, write=True)
        rtype = _resource_type(endpoint)
        resource_id = _resource_id(resource_id)
        payload = await body(request)
        ctx.record.entry.describe(payload)
        ctx.record.entry.operation = resource_outline(payload)
        doc = await run_in_threadpool(store.replace, ctx.tenant, rtype, resource_id, payload,
                                      request.headers.get("if-match"))
        ctx.record.entry.describe(doc)
        return _respond_resource(ctx, rtype, doc, request)

    @router.patch("/{endpoint}/{resource_id}")
    async def patch(endpoint: str, resource_id: str, request: Request,
                    ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, resource_id, write=True)
        rtype = _resource_type(endpoint)
        resource_id = _resource_id(resource_id)
        payload = await body(request)
        ctx.record.entry.operation = patch_outline(payload)
        # 200 with the whole resource (RFC 7644 §3.5.2): Okta, scim-sanity and scim2-tester expect it.
        # A group with more members than scim_patch_members_limit answers 204 instead (the RFC's other
        # choice): Entra advises against echoing big member lists, and building one is most of the cost.
        def apply() -> dict[str, Any] | None:
            doc = store.patch(ctx.tenant, rtype, resource_id, payload, request.headers.get("if-match"),
                              with_members=False)
            ctx.record.entry.describe(doc)
            if rtype == "Group":
                excluded = _split_list(request.query_params.get("excludedAttributes")) or []
                if not any(e.lower().endswith("members") for e in excluded):
                    if store.member_count(ctx.tenant, resource_id) > settings.scim_patch_members_limit:
                        return {"_etag_only": doc["meta"]["version"]}
                    doc = store.get(ctx.tenant, rtype, resource_id)
            return doc

        result = await run_in_threadpool(apply)
        assert result is not None
        if "_etag_only" in result:
            return Response(status_code=204, headers={"ETag": result["_etag_only"]})
        return _respond_resource(ctx, rtype, result, request)

    @router.delete("/{endpoint}/{resource_id}")
    async def delete(endpoint: str, resource_id: str, request: Request,
                     ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        _target(ctx, endpoint, resource_id, write=True)
        gone = await run_in_threadpool(store.delete, ctx.tenant, _resource_type(endpoint), _resource_id(resource_id),
                                       request.headers.get("if-match"))
        ctx.record.entry.describe(gone)
        return Response(status_code=204)

    return router


def _filter_outline(ctx: ScimContext, filter_text: Any) -> None:
    """A read's log record (``TENANTRY_SCIM_LOG_READS``) says what it looked for: its filter."""
    if isinstance(filter_text, str) and filter_text:
        ctx.record.entry.operation = join_bounded([f"filter {filter_text}"])


class ScimLogMiddleware:
    """Records SCIM requests in the tenant's SCIM request log once they are answered (``directory.scim_log``).

    The router fills the request's record (the credential, the resource, a PATCH's outline); this layer adds
    what only the answer knows — the status as sent, an error's ``scimType`` and ``detail`` read from its
    body, the duration — and stores the rows after the last byte of the answer has been sent, on a worker
    thread. ``ScimLog.record`` never raises, so the log can neither fail nor delay the write it describes. A
    request is recorded when a SCIM token of the tenant made it and it was a write (or ``reads``).
    """

    def __init__(self, app: Any, scim_log: ScimLog, *, reads: bool = False) -> None:
        self.app, self.scim_log, self.reads = app, scim_log, reads

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
            await run_in_threadpool(self.scim_log.record, entries)
        except Exception:  # noqa: BLE001 - the answer has gone; a fault here must not turn into a second one
            log.exception("SCIM request log: the record of %s could not be stored", record.entry.brief())


def _fail_on_errors(value: Any) -> int | None:
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


_BULK_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")


def run_bulk(store: ScimStore, ctx: ScimContext, payload: Any, max_operations: int) -> dict[str, Any]:
    """Run a BulkRequest; each operation is its own transaction, and every outcome is reported."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        raise InvalidSyntaxException(detail="a BulkRequest needs 'Operations', a list")
    operations = payload["Operations"]
    if len(operations) > max_operations:
        raise PayloadTooLargeException(detail=f"at most {max_operations} operations per BulkRequest")
    fail_on_errors = _fail_on_errors(payload.get("failOnErrors"))
    ids: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    errors = 0

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("bulkId:"):
            ref = value[7:]
            if ref not in ids:
                raise InvalidValueException(detail=f"bulkId {ref!r} is not defined by an earlier operation")
            return ids[ref]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    for index, op in enumerate(operations, 1):
        if fail_on_errors is not None and errors >= fail_on_errors:
            break
        method = str(op.get("method", "")).upper() if isinstance(op, dict) else ""
        bulk_id = op.get("bulkId") if isinstance(op, dict) else None
        result: dict[str, Any] = {"method": method}
        if bulk_id:
            result["bulkId"] = bulk_id
        # Each operation is a row of the SCIM request log, with its own outcome and duration.
        entry = ctx.record.operation(index, method or "?")
        started = time.perf_counter()
        try:
            if not isinstance(op, dict):
                raise InvalidSyntaxException(detail="each bulk operation must be an object")
            path = re.sub(r"bulkId:([^/]+)", lambda m: resolve(m.group(0)), str(op.get("path", "")))
            match = _BULK_PATH.match(path)
            if not match:
                entry.operation = join_bounded([f"path {str(op.get('path'))[:96]}"])
                raise InvalidValueException(detail=f"bulk path {op.get('path')!r} is not /Users or /Groups[/id]")
            rtype = ENDPOINTS[match.group(1)]
            rid = match.group(2)
            entry.resource_type, entry.resource_id = rtype, rid
            data = resolve(op.get("data"))
            entry.describe(data)
            entry.operation = patch_outline(data) if method == "PATCH" else resource_outline(data)
            version = op.get("version")
            if method == "POST" and rid is None:
                if not bulk_id:
                    raise InvalidValueException(detail="a bulk POST needs a bulkId")
                doc = store.create(ctx.tenant, rtype, data)
                ids[bulk_id] = doc["id"]
                status = 201
            elif method == "PUT" and rid:
                doc = store.replace(ctx.tenant, rtype, rid, data, version)
                status = 200
            elif method == "PATCH" and rid:
                doc = store.patch(ctx.tenant, rtype, rid, data, version)
                status = 200
            elif method == "DELETE" and rid:
                entry.describe(store.delete(ctx.tenant, rtype, rid, version))
                doc = None
                status = 204
                result["location"] = f"{ctx.base_url}/{match.group(1)}/{rid}"
            else:
                raise InvalidValueException(detail=f"bulk {method} {op.get('path')} is not an operation")
            if doc is not None:
                entry.describe(doc, with_id=True)
                ctx.locate(doc)
                result["location"] = doc["meta"]["location"]
                result["version"] = doc["meta"]["version"]
            result["status"] = str(status)
            entry.status = status
        except SCIMException as exc:
            errors += 1
            result["status"] = str(exc.status)
            result["response"] = error_body(exc)
            entry.fail(exc.status, exc.scim_type, exc.detail)
        entry.duration_ms = int((time.perf_counter() - started) * 1000)
        results.append(result)
    return {"schemas": [BULK_RESPONSE], "Operations": results}


__all__ = ["ListResponse", "ScimLogMiddleware", "build_router", "run_bulk", "scim_error_response", "scim_response"]
