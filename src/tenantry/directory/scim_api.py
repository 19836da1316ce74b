"""The SCIM 2.0 HTTP endpoints (RFC 7644 §3): a thin router over ``ScimStore``.

Mounted at ``/scim/v2`` for the default tenant and at ``/tenants/{tenant_id}/scim/v2`` for any tenant.
Every error leaves as an RFC 7644 §3.12 Error body with ``application/scim+json``.
"""

from __future__ import annotations

import re
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
from tenantry.directory.scim_store import ScimStore, simple_equality
from tenantry.directory.service import DirectoryService
from tenantry.protocols.scim.errors import MethodNotAllowed, NotModified, error_body, validation_error_to_scim
from tenantry.protocols.scim.resources import (
    ENDPOINTS,
    RESOURCE_MODELS,
    resource_type_documents,
    schema_documents,
)

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
_MAX_BODY = 10 * 1024 * 1024


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=SCIM_JSON, headers=headers)


def scim_error_response(exc: SCIMException) -> Response:
    if isinstance(exc, NotModified):
        return Response(status_code=304)
    headers = {"WWW-Authenticate": 'Bearer realm="tenantry"'} if exc.status == 401 else None
    return scim_response(error_body(exc), exc.status, headers)


class ScimContext:
    """What one request needs: the tenant it is for and the base URL its locations start with."""

    def __init__(self, tenant: str, base_url: str) -> None:
        self.tenant = tenant
        self.base_url = base_url

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
        return ScimContext(tenant, base)

    async def authed(request: Request) -> ScimContext:
        ctx = await context(request)
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            secret = ""
        try:
            directory.authenticate(secret.strip(), "scim", ctx.tenant)
        # Every refusal is 401 here (RFC 7644 §3.12: the authorization is not valid for this endpoint): an
        # identity provider holds one token, and the endpoint does not tell which other kinds of secret exist.
        except Unauthorized as exc:
            from scim2_models import UnauthorizedException

            raise UnauthorizedException(detail=exc.message) from exc
        except Forbidden as exc:
            from scim2_models import UnauthorizedException

            raise UnauthorizedException(detail="the bearer token is not valid for this SCIM endpoint") from exc
        return ctx

    async def body(request: Request, limit: int = _MAX_BODY) -> Any:
        raw = await request.body()
        if len(raw) > limit:
            raise PayloadTooLargeException(detail=f"request body over {limit} bytes")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype not in (SCIM_JSON, "application/json"):
            raise InvalidSyntaxException(detail=f"Content-Type must be {SCIM_JSON}, not {ctype}")
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise InvalidSyntaxException(detail=f"the body is not valid JSON: {exc}") from exc

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
        payload = await body(request, settings.bulk_max_payload_bytes)
        return scim_response(await run_in_threadpool(run_bulk, store, ctx, payload, settings.bulk_max_operations))

    # -- resources ------------------------------------------------------------------------

    def _resource_type(endpoint: str) -> str:
        try:
            return ENDPOINTS[endpoint]
        except KeyError:
            raise NotFoundException(detail=f"no endpoint /{endpoint}") from None

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

    def _search(ctx: ScimContext, rtype: str, params: dict[str, Any]) -> dict[str, Any]:
        attributes = params.get("attributes")
        excluded = params.get("excludedAttributes")
        if isinstance(attributes, str):
            attributes = _split_list(attributes)
        if isinstance(excluded, str):
            excluded = _split_list(excluded)
        try:
            start = int(params.get("startIndex") or 1)
            count_raw = params.get("count")
            count = None if count_raw in (None, "") else int(count_raw)
        except (TypeError, ValueError):
            raise InvalidValueException(detail="startIndex and count must be integers") from None
        if count is None:
            count = settings.scim_default_count
        sort_order = params.get("sortOrder")
        if sort_order and str(sort_order).lower() not in ("ascending", "descending"):
            raise InvalidValueException(detail="sortOrder must be 'ascending' or 'descending'")
        with_members = not (excluded and any(e.lower().endswith("members") for e in excluded))
        page = store.search(
            ctx.tenant, rtype, filter_text=params.get("filter") or None, sort_by=params.get("sortBy") or None,
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
        rtype = _resource_type(endpoint)
        params = dict(request.query_params)
        if rtype == "User" and simple_equality(params.get("filter") or "") and not params.get("sortBy"):
            return scim_response(_search(ctx, rtype, params))  # one indexed row: cheaper than a thread hop
        return scim_response(await run_in_threadpool(_search, ctx, rtype, params))

    @router.post("/{endpoint}/.search")
    async def search_resources(endpoint: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        rtype = _resource_type(endpoint)
        params = await body(request) or {}
        if not isinstance(params, dict):
            raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")
        return scim_response(await run_in_threadpool(_search, ctx, rtype, params))

    @router.post("/.search")
    async def search_all(request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        params = await body(request) or {}
        if not isinstance(params, dict):
            raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")
        # Root search (RFC 7644 §3.4.3): every resource type, in order, paged over the concatenation.
        start = int(params.get("startIndex") or 1)
        count = int(params.get("count") or settings.scim_default_count)
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
        rtype = _resource_type(endpoint)
        payload = await body(request)
        doc = await run_in_threadpool(store.create, ctx.tenant, rtype, payload)
        return _respond_resource(ctx, rtype, doc, request, 201)

    @router.get("/{endpoint}/{resource_id}")
    async def get(endpoint: str, resource_id: str, request: Request, ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        rtype = _resource_type(endpoint)
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
        rtype = _resource_type(endpoint)
        payload = await body(request)
        doc = await run_in_threadpool(store.replace, ctx.tenant, rtype, resource_id, payload,
                                      request.headers.get("if-match"))
        return _respond_resource(ctx, rtype, doc, request)

    @router.patch("/{endpoint}/{resource_id}")
    async def patch(endpoint: str, resource_id: str, request: Request,
                    ctx: ScimContext = Depends(authed)) -> Response:  # noqa: B008
        rtype = _resource_type(endpoint)
        payload = await body(request)
        # 200 with the whole resource (RFC 7644 §3.5.2): Okta, scim-sanity and scim2-tester expect it.
        # A group with more members than scim_patch_members_limit answers 204 instead (the RFC's other
        # choice): Entra advises against echoing big member lists, and building one is most of the cost.
        def apply() -> dict[str, Any] | None:
            doc = store.patch(ctx.tenant, rtype, resource_id, payload, request.headers.get("if-match"),
                              with_members=False)
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
        await run_in_threadpool(store.delete, ctx.tenant, _resource_type(endpoint), resource_id,
                                request.headers.get("if-match"))
        return Response(status_code=204)

    return router


_BULK_PATH = re.compile(r"^/(Users|Groups)(?:/([^/]+))?$")


def run_bulk(store: ScimStore, ctx: ScimContext, payload: Any, max_operations: int) -> dict[str, Any]:
    """Run a BulkRequest; each operation is its own transaction, and every outcome is reported."""
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        raise InvalidSyntaxException(detail="a BulkRequest needs 'Operations', a list")
    operations = payload["Operations"]
    if len(operations) > max_operations:
        raise PayloadTooLargeException(detail=f"at most {max_operations} operations per BulkRequest")
    fail_on_errors = payload.get("failOnErrors")
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

    for op in operations:
        if fail_on_errors is not None and errors >= int(fail_on_errors):
            break
        method = str(op.get("method", "")).upper() if isinstance(op, dict) else ""
        bulk_id = op.get("bulkId") if isinstance(op, dict) else None
        result: dict[str, Any] = {"method": method}
        if bulk_id:
            result["bulkId"] = bulk_id
        try:
            if not isinstance(op, dict):
                raise InvalidSyntaxException(detail="each bulk operation must be an object")
            path = re.sub(r"bulkId:([^/]+)", lambda m: resolve(m.group(0)), str(op.get("path", "")))
            match = _BULK_PATH.match(path)
            if not match:
                raise InvalidValueException(detail=f"bulk path {op.get('path')!r} is not /Users or /Groups[/id]")
            rtype = ENDPOINTS[match.group(1)]
            rid = match.group(2)
            data = resolve(op.get("data"))
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
                store.delete(ctx.tenant, rtype, rid, version)
                doc = None
                status = 204
                result["location"] = f"{ctx.base_url}/{match.group(1)}/{rid}"
            else:
                raise InvalidValueException(detail=f"bulk {method} {op.get('path')} is not an operation")
            if doc is not None:
                ctx.locate(doc)
                result["location"] = doc["meta"]["location"]
                result["version"] = doc["meta"]["version"]
            result["status"] = str(status)
        except SCIMException as exc:
            errors += 1
            result["status"] = str(exc.status)
            result["response"] = error_body(exc)
        results.append(result)
    return {"schemas": [BULK_RESPONSE], "Operations": results}


__all__ = ["ListResponse", "build_router", "run_bulk", "scim_error_response", "scim_response"]
