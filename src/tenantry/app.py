"""The composition root: ``create_app(settings)`` builds every service once and wires the routers.

This is the one place where implementations are chosen (STYLE habit 3): nothing else reads settings or
creates engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from scim2_models import InvalidValueException, NotFoundException, SCIMException
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import __version__, jobs_api
from tenantry.archive.compliance import ComplianceService
from tenantry.archive.ediscovery import EDiscoveryService
from tenantry.archive.indexing import Indexer
from tenantry.archive.ledger import Ledger
from tenantry.archive.search import SearchIndex
from tenantry.archive.search_tantivy import TantivySearchIndex
from tenantry.archive.service import ArchiveService
from tenantry.audit import AuditMiddleware
from tenantry.auth.service import SignIn, SignInSettings, session_principal
from tenantry.connectors.service import ConnectorService
from tenantry.core.db import Database
from tenantry.core.egress import EgressPolicy
from tenantry.core.errors import TenantryError
from tenantry.core.private import secure_data_dir
from tenantry.core.registry import RouteContext
from tenantry.core.secrets import SecretBox
from tenantry.core.settings import Settings
from tenantry.directory import api as directory_api
from tenantry.directory import scim_api
from tenantry.directory.admins import ensure_first_admin
from tenantry.directory.scim_log import ScimLog
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService
from tenantry.domains import registry
from tenantry.jobstore import JobStore
from tenantry.protocols.query.ast import Node
from tenantry.protocols.scim.errors import MethodNotAllowed
from tenantry.protocols.whatsapp import ExportLimits
from tenantry.provisioning.notify import Mailer
from tenantry.provisioning.service import ProvisioningService
from tenantry.services import Services as Services  # re-exported: callers name it from here
from tenantry.trust.gate import PartnerGate
from tenantry.trust.service import TrustService
from tenantry.trust.unlocks import PartnerActions
from tenantry.voice.certificates import VoiceCertificates
from tenantry.voice.service import VoiceService


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    # Owner-only data folder (core/private.py): before the database is created in it, and again at the end for
    # what SQLite and tantivy just created under a looser umask (an embedding application's).
    secure_data_dir(settings.data_dir)
    db = Database(settings.resolved_database_url)
    if migrate:
        db.migrate()
    store = ScimStore(db, default_phone_region=settings.default_phone_region,
                      max_results=settings.scim_max_results)
    directory = DirectoryService(db, store)
    secrets = SecretBox.from_settings(settings.secret_key, settings.data_dir)
    index = _search_index(settings, db)
    # On PostgreSQL full-text the index rows are written before deliver() returns, so every machine sees
    # them at once; tantivy's commits go to a background thread (searches in this process flush first).
    indexer = Indexer(db, index, background=settings.search_backend != "postgres")
    archive = ArchiveService(db, indexer)
    egress = EgressPolicy.from_settings(settings)   # every connection to a target a tenant admin names
    connectors = ConnectorService(
        db, directory, archive, secrets, default_region=settings.default_phone_region, egress=egress,
        upload_dir=settings.data_dir / "uploads", upload_max_bytes=settings.upload_max_bytes,
        export_limits=ExportLimits(max_members=settings.zip_max_members,
                                   max_total_bytes=settings.zip_max_total_bytes, max_ratio=settings.zip_max_ratio))
    compliance = ComplianceService(db, index, parse_query, indexer, directory)
    jobstore = JobStore(db)
    ediscovery = EDiscoveryService(db, archive, compliance, index, parse_query, indexer.flush,
                                   exports_dir=settings.data_dir / "exports", jobs=jobstore)
    provisioning = ProvisioningService(db, secrets, directory, mailer=Mailer(settings),
                                       log_days=settings.provisioning_log_days, egress=egress)
    signin = SignIn(db, directory, store, secrets, egress=egress, settings=SignInSettings.from_settings(settings))
    secure_data_dir(settings.data_dir)
    ledger = Ledger(db)
    return Services(settings, db, directory, store, secrets, archive, connectors, ledger, compliance, index,
                    indexer, ediscovery, provisioning, jobstore, ScimLog(db, keep_days=settings.scim_log_days), signin,
                    TrustService(db, secrets, directory),
                    PartnerGate(db, secrets, directory, public_url=settings.public_url),
                    PartnerActions(db, directory, archive, ledger),
                    VoiceService(db, directory, default_region=settings.default_phone_region),
                    VoiceCertificates(db, secrets))


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
    settings, directory = services.settings, services.directory
    tenant = settings.default_tenant
    created = directory.ensure_tenant(tenant, "Default tenant")
    issued: dict[str, str] = {}
    if created:
        if not settings.bootstrap_scim_token:
            issued["scim"] = directory.issue_token(tenant, "scim", "initial").secret
        if not settings.bootstrap_admin_token:
            # The first admin token belongs to the tenant's first administrator (directory.admins).
            first = ensure_first_admin(services.scim, directory, tenant)
            issued["admin"] = directory.issue_token(tenant, "admin", "initial", user_id=first).secret
        if not settings.bootstrap_operator_token:
            # Installation-wide (lists and creates tenants); its row names the default tenant only because
            # every token row names one.
            issued["operator"] = directory.issue_token(tenant, "operator", "initial").secret
    if settings.bootstrap_scim_token:
        directory.ensure_token(tenant, "scim", settings.bootstrap_scim_token)
    if settings.bootstrap_admin_token:
        secret = settings.bootstrap_admin_token
        owner = None if directory.token_known(secret) else ensure_first_admin(services.scim, directory, tenant)
        directory.ensure_token(tenant, "admin", secret, user_id=owner)
    if settings.bootstrap_operator_token:
        directory.ensure_token(tenant, "operator", settings.bootstrap_operator_token)
    if not settings.broker_url:
        # In-process jobs of this host whose process stopped can never finish: say so in their rows.
        services.jobstore.fail_orphans()
    for each in directory.list_tenants():
        # Built-in role groups added by a newer version; admin tokens from before administrators had identities
        # given to the tenant's first administrator (issue #12).
        directory.ensure_builtin_role_groups(each.id)
        if directory.has_unowned_admin_tokens(each.id):
            ensure_first_admin(services.scim, directory, each.id)
        # Items a crash left out of the search index (delivered, not yet indexed) are indexed now.
        services.indexer.catch_up(each.id)
    return issued


def _is_scim(request: Request) -> bool:
    return "/scim/v2" in request.url.path


class _AdminBodyLimit:
    """Bounds every admin API body (``/api/v1``) by ``TENANTRY_ADMIN_BODY_MAX_BYTES``: JSON bodies are read
    whole by the framework, so an unbounded one would be held in memory (issue #9). Export uploads, which
    stream to disk under their own limit, are left to their route. 413 by Content-Length before reading,
    or as soon as a chunked body passes the limit."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        # The sign-in pages' and the console's forms (/auth/…, /console/…) are read whole by the framework too.
        if (not path.startswith(("/api/v1/", "/auth/", "/console/"))
                or (scope.get("method") == "POST" and path.endswith("/exports"))):
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse({"error": "too_large", "message": f"the body ({int(declared)} bytes) is over "
                                     f"the {limit}-byte limit (TENANTRY_ADMIN_BODY_MAX_BYTES)"}, 413)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, f"the body is over the {limit}-byte limit "
                                                      "(TENANTRY_ADMIN_BODY_MAX_BYTES)")
            return message

        await self.app(scope, counted, send)


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

    # No ReDoc and no Swagger OAuth2 redirect page: what answers without a token is the list in docs/security.md.
    app = FastAPI(title="Tenantry", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None, swagger_ui_oauth2_redirect_url=None, lifespan=lifespan)
    app.state.services = services
    app.add_middleware(_AdminBodyLimit, limit=settings.admin_body_max_bytes)
    # Every change through /api/v1, with who made it, in the tenant's ledger before the answer leaves (issue #12).
    app.add_middleware(AuditMiddleware, ledger=services.ledger, default_tenant=settings.default_tenant)
    # Each SCIM write, with its answer, in the tenant's SCIM request log (after the answer is sent).
    app.add_middleware(scim_api.ScimLogMiddleware, scim_log=services.scim_log, reads=settings.scim_log_reads)

    scim_router = scim_api.build_router(services.scim, services.directory, settings)
    # /api/openapi.json describes the admin API. SCIM is described by RFC 7644 and by its own discovery
    # endpoints (/Schemas, /ResourceTypes); listed here, its generic handlers (bodies read as raw JSON,
    # {endpoint} for any resource type) and its second mount (whose {tenant_id} they do not declare) made
    # the document invalid. The fuzz tests describe SCIM in their own document (tests/security/).
    app.include_router(scim_router, prefix="/scim/v2", include_in_schema=False)
    app.include_router(scim_router, prefix="/tenants/{tenant_id}/scim/v2", include_in_schema=False)
    # Every /api/v1 router is included with this guard: the credential is checked before the body is read or
    # validated, and a route that forgets its own check is still closed (tests/security/test_scopes.py).
    # A console session (cookie, CSRF on writes) or a bearer token: either names the principal the guard checks.
    api_guard = [Depends(session_principal(services.signin, services.directory)),
                 Depends(directory_api.api_guard(services.directory))]
    _, tenant_of = directory_api.admin_guard(services.directory)

    jobs_holder: dict[str, Any] = {}

    def engine() -> Any:
        if "jobs" not in jobs_holder:
            from tenantry.jobs import make_jobs

            jobs_holder["jobs"] = make_jobs(services)
        return jobs_holder["jobs"]

    def submit(name: str, **kwargs: Any) -> str:
        return str(engine().submit(name, **kwargs))

    def enqueue(job_id: str) -> None:
        """Hand a job of the ``jobs`` table to the engine (a thread here, or a Celery worker)."""
        engine().enqueue(job_id)

    # Each part's routes, as the part registers them (tenantry.domains), then the jobs' own.
    context = RouteContext(services, tenant_of, submit, enqueue)
    for build in registry().routers:
        app.include_router(build(context), prefix="/api/v1", dependencies=api_guard)
    app.include_router(jobs_api.build_router(services.jobstore, tenant_of), prefix="/api/v1", dependencies=api_guard)
    for build in registry().pages:   # their own credential: the session cookie (sign-in, console), a partner token
        app.include_router(build(context))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error a route can raise, answered in the API's shape (SCIM's on SCIM routes): nothing is a bare 500."""
    @app.exception_handler(SCIMException)
    async def scim_error(request: Request, exc: SCIMException) -> Response:
        if not _is_scim(request):
            # The admin API's own codes where SCIM has no scimType (a 404 reads like every other not_found).
            code = exc.scim_type or {404: "not_found", 409: "conflict"}.get(exc.status, "error")
            return JSONResponse({"error": code, "message": exc.detail}, exc.status)
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
