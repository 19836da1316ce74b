"""The composition root: ``create_app(settings)`` builds every service once and wires the routers.

This is the one place where implementations are chosen (STYLE habit 3): nothing else reads settings or
creates engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from scim2_models import InvalidValueException, NotFoundException, SCIMException
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import __version__
from tenantry.archive import api as archive_api
from tenantry.archive.compliance import ComplianceService
from tenantry.archive.ediscovery import EDiscoveryService
from tenantry.archive.indexing import Indexer
from tenantry.archive.ledger import Ledger
from tenantry.archive.search import SearchIndex
from tenantry.archive.search_tantivy import TantivySearchIndex
from tenantry.archive.service import ArchiveService
from tenantry.connectors import api as connectors_api
from tenantry.connectors.service import ConnectorService
from tenantry.core.db import Database
from tenantry.core.errors import TenantryError
from tenantry.core.secrets import SecretBox
from tenantry.core.settings import Settings
from tenantry.directory import api as directory_api
from tenantry.directory import scim_api
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService
from tenantry.protocols.query.ast import Node
from tenantry.protocols.scim.errors import MethodNotAllowed
from tenantry.provisioning import api as provisioning_api
from tenantry.provisioning.notify import Mailer
from tenantry.provisioning.service import ProvisioningService


@dataclass
class Services:
    settings: Settings
    db: Database
    directory: DirectoryService
    scim: ScimStore
    secrets: SecretBox
    archive: ArchiveService
    connectors: ConnectorService
    ledger: Ledger
    compliance: ComplianceService
    index: SearchIndex
    indexer: Indexer
    ediscovery: EDiscoveryService
    provisioning: ProvisioningService


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        db.migrate()
    directory = DirectoryService(db)
    store = ScimStore(db, default_phone_region=settings.default_phone_region,
                      max_results=settings.scim_max_results)
    secrets = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    index = _search_index(settings, db)
    # On PostgreSQL full-text the index rows are written before deliver() returns, so every machine sees
    # them at once; tantivy's commits go to a background thread (searches in this process flush first).
    indexer = Indexer(db, index, background=settings.search_backend != "postgres")
    archive = ArchiveService(db, indexer)
    connectors = ConnectorService(db, directory, archive, secrets, default_region=settings.default_phone_region)
    compliance = ComplianceService(db, index, parse_query, indexer)
    ediscovery = EDiscoveryService(db, archive, compliance, index, parse_query, indexer.flush)
    provisioning = ProvisioningService(db, secrets, directory, mailer=Mailer(settings),
                                       log_days=settings.provisioning_log_days)
    return Services(settings, db, directory, store, secrets, archive, connectors, Ledger(db), compliance, index,
                    indexer, ediscovery, provisioning)


def _search_index(settings: Settings, db: Database) -> SearchIndex:
    if settings.search_backend == "postgres":
        if db.is_sqlite:
            raise ValueError("TENANTRY_SEARCH_BACKEND=postgres needs TENANTRY_DATABASE_URL to be PostgreSQL")
        from tenantry.archive.search_postgres import PostgresSearchIndex

        return PostgresSearchIndex(db.engine)
    if settings.search_backend != "tantivy":
        raise ValueError(f"TENANTRY_SEARCH_BACKEND must be tantivy or postgres, not {settings.search_backend!r}")
    return TantivySearchIndex(settings.data_dir / "index")


def parse_query(text: str) -> Node:
    from tenantry.protocols.query.parser import parse

    return parse(text)


def bootstrap(services: Services) -> dict[str, str]:
    """Create the default tenant on first run, and the tokens the environment asks for.

    Returns the secrets it generated (to be printed once); an existing installation gets none.
    """
    settings = services.settings
    created = services.directory.ensure_tenant(settings.default_tenant, "Default tenant")
    issued: dict[str, str] = {}
    if created:
        if not settings.bootstrap_scim_token:
            issued["scim"] = services.directory.issue_token(settings.default_tenant, "scim", "initial").secret
        if not settings.bootstrap_admin_token:
            issued["admin"] = services.directory.issue_token(settings.default_tenant, "admin", "initial").secret
    if settings.bootstrap_scim_token:
        services.directory.ensure_token(settings.default_tenant, "scim", settings.bootstrap_scim_token)
    if settings.bootstrap_admin_token:
        services.directory.ensure_token(settings.default_tenant, "admin", settings.bootstrap_admin_token)
    for tenant in services.directory.list_tenants():
        # Items a crash left out of the search index (delivered, not yet indexed) are indexed now.
        services.indexer.catch_up(tenant["id"])
    return issued


def _is_scim(request: Request) -> bool:
    return "/scim/v2" in request.url.path


# SQLite's words for a statement too big to run: a bounded filter never gets there (protocols.scim.limits),
# but what gets there is still the client's input, not a server fault.
_SQLITE_TOO_BIG = ("too many sql variables", "expression tree is too large", "parser stack overflow",
                   "string or blob too big")


def _bad_input(request: Request, message: str) -> Response:
    """400 for input the database refused: SCIM invalidValue on SCIM routes, {"error","message"} elsewhere."""
    if _is_scim(request):
        return scim_api.scim_error_response(InvalidValueException(detail=message))
    return JSONResponse({"error": "invalid", "message": message}, 400)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    owned = services is None
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:  # services handed in belong to the caller, who closes them
            services.db.dispose()

    app = FastAPI(title="Tenantry", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.services = services

    scim_router = scim_api.build_router(services.scim, services.directory, settings)
    # /api/openapi.json describes the admin API. SCIM is described by RFC 7644 and by its own discovery
    # endpoints (/Schemas, /ResourceTypes); listed here, its generic handlers (bodies read as raw JSON,
    # {endpoint} for any resource type) and its second mount (whose {tenant_id} they do not declare) made
    # the document invalid. The fuzz tests describe SCIM in their own document (tests/security/).
    app.include_router(scim_router, prefix="/scim/v2", include_in_schema=False)
    app.include_router(scim_router, prefix="/tenants/{tenant_id}/scim/v2", include_in_schema=False)
    app.include_router(directory_api.build_router(services.scim, services.directory), prefix="/api/v1")
    _, tenant_of = directory_api.admin_guard(services.directory)
    app.include_router(connectors_api.build_router(services.connectors, services.archive, tenant_of), prefix="/api/v1")
    app.include_router(archive_api.build_router(services.compliance, services.ediscovery, services.ledger, tenant_of),
                       prefix="/api/v1")

    jobs_holder: dict[str, Any] = {}

    def submit(name: str, **kwargs: Any) -> str:
        if "jobs" not in jobs_holder:
            from tenantry.jobs import make_jobs

            jobs_holder["jobs"] = make_jobs(services)
        return str(jobs_holder["jobs"].submit(name, **kwargs))

    app.include_router(provisioning_api.build_router(services.provisioning, tenant_of, submit), prefix="/api/v1")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.exception_handler(SCIMException)
    async def scim_error(request: Request, exc: SCIMException) -> Response:
        if not _is_scim(request):
            return JSONResponse({"error": exc.scim_type or "error", "message": exc.detail}, exc.status)
        return scim_api.scim_error_response(exc)

    @app.exception_handler(TenantryError)
    async def domain_error(request: Request, exc: TenantryError) -> Response:
        if _is_scim(request):
            err = SCIMException(detail=exc.message)
            err.status = exc.status_code
            return scim_api.scim_error_response(err)
        return JSONResponse({"error": exc.code, "message": exc.message}, exc.status_code)

    # The safety net under the bounds every route declares (Query/Path ge/le, protocols.scim.limits): a value
    # the database refuses — out of an integer column's range, longer than a varchar, NUL in PostgreSQL text,
    # an int past 64 bits on SQLite, a statement too big for SQLite — is the client's bad input, a 400.
    @app.exception_handler(DataError)
    @app.exception_handler(psycopg.DataError)
    async def data_error(request: Request, exc: Exception) -> Response:
        return _bad_input(request, "a value is out of range or too long for storage")

    @app.exception_handler(OverflowError)
    async def overflow_error(request: Request, exc: OverflowError) -> Response:
        return _bad_input(request, "a number is out of range")

    @app.exception_handler(OperationalError)
    async def operational_error(request: Request, exc: OperationalError) -> Response:
        if any(words in str(exc.orig).lower() for words in _SQLITE_TOO_BIG):
            return _bad_input(request, "the request is too large or complex to run")
        raise exc

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own 422 body is {"detail": [...]}; ours says the same in the API's error shape, without
        # echoing the input (which may be megabytes).
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        message = "; ".join(problems[:10]) or "invalid request"
        if _is_scim(request):
            err = InvalidValueException(detail=message)
            return scim_api.scim_error_response(err)
        return JSONResponse({"error": "invalid", "message": message}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_scim(request):
            if exc.status_code == 405:
                return scim_api.scim_error_response(MethodNotAllowed())
            if exc.status_code == 404:
                return scim_api.scim_error_response(NotFoundException(detail=f"no endpoint {request.url.path}"))
            err = SCIMException(detail=str(exc.detail))
            err.status = exc.status_code
            return scim_api.scim_error_response(err)
        return JSONResponse({"error": "http", "message": exc.detail}, exc.status_code)

    return app
