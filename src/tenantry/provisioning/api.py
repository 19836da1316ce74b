"""Admin REST routes for outbound provisioning (``/api/v1/tenants/{tenant}/provisioning/…``): thin over the
service. ``{app}`` is the app's id or its name."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from tenantry.core.access import APPLICATIONS, ORGANIZATION, needs, principal_in
from tenantry.core.bounds import Count
from tenantry.core.errors import Conflict
from tenantry.core.principals import PrincipalKind
from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.results import (
    AppInfo,
    AppStatus,
    ConnectionResult,
    CreatedApp,
    CycleReport,
    CycleStarted,
    CycleTrigger,
    LogEntry,
    RoleInfo,
    ScopeMode,
    ScopeSummary,
)
from tenantry.provisioning.service import ProvisioningService


class AppIn(BaseModel):
    name: str
    tenant_url: str
    token: str
    notification_email: str | None = None
    scope: str = ScopeMode.ASSIGNED
    skip_default_access: bool = True


class AppPatch(BaseModel):
    tenant_url: str | None = Field(default=None, description=(
        "A URL on another origin (scheme, host, port) needs the token with it: a stored token is only ever "
        "sent to the host it was given for."))
    token: str | None = Field(default=None, description="Write-only: stored sealed, never shown.")
    notification_email: str | None = None
    scope: str | None = None
    skip_default_access: bool | None = None


class AssignmentIn(BaseModel):
    principal_type: str = "User"
    principal_id: str
    role: str = "User"


class RoleIn(BaseModel):
    """An app role (Entra's appRoles, in this API's snake_case)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str
    value: str | None = Field(default=None, description="What the app receives; none: the display name is sent.")
    description: str | None = None
    allowed_member_types: list[str] = Field(default_factory=lambda: ["User", "Group"], max_length=4)
    enabled: bool = True


class RolePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = None
    value: str | None = Field(default=None, description="An empty string clears it.")
    description: str | None = Field(default=None, description="An empty string clears it.")
    allowed_member_types: list[str] | None = Field(default=None, max_length=4)
    enabled: bool | None = None


class RunIn(BaseModel):
    allow_deletions: bool = False


class OnDemandIn(BaseModel):
    user_id: str


# Long by design (issue #11): a router factory is its routes, each a few lines over the service; splitting it
# would only scatter one part's URL table.
def build_router(provisioning: ProvisioningService, tenant_of: Any, submit: Any) -> APIRouter:
    """``submit(name, **kwargs)`` hands a job to the job engine (in-process or Celery)."""
    router = APIRouter()
    base = "/tenants/{tenant_id}/provisioning/apps"

    def resolve(tenant_id: str, app: str, request: Request) -> tuple[str, str]:
        tenant = tenant_of(tenant_id, request)
        return tenant, provisioning.find_app(tenant, app)

    @router.get(base)
    def list_apps(tenant_id: str, request: Request) -> list[AppInfo]:
        return provisioning.list_apps(tenant_of(tenant_id, request))

    @router.post(base, status_code=201)
    def create_app(tenant_id: str, body: AppIn, request: Request) -> CreatedApp:
        tenant = tenant_of(tenant_id, request)
        info = provisioning.create_app(tenant, **body.model_dump(), actor=admin_id(request))
        return CreatedApp.of(info, provisioning.test_connection(tenant, info.id))

    @router.get(base + "/{app}")
    def status(tenant_id: str, app: str, request: Request) -> AppStatus:
        return provisioning.status(*resolve(tenant_id, app, request))

    @router.patch(base + "/{app}")
    def update_app(tenant_id: str, app: str, body: AppPatch, request: Request) -> AppInfo:
        return provisioning.update_app(*resolve(tenant_id, app, request), **body.model_dump(), actor=admin_id(request))

    @router.post(base + "/{app}/test-connection")
    def test_connection(tenant_id: str, app: str, request: Request) -> ConnectionResult:
        return provisioning.test_connection(*resolve(tenant_id, app, request))

    @router.get(base + "/{app}/config")
    def get_config(tenant_id: str, app: str, request: Request) -> AppConfig:
        return provisioning.config(*resolve(tenant_id, app, request))

    @router.patch(base + "/{app}/config")
    def patch_config(tenant_id: str, app: str, body: dict[str, Any], request: Request) -> AppConfig:
        """``body``: the settings to change (any of the configuration's keys; ``actions`` merged key by key)."""
        return provisioning.configure(*resolve(tenant_id, app, request), body, actor=admin_id(request))

    @router.post(base + "/{app}/assignments", status_code=204)
    def assign(tenant_id: str, app: str, body: AssignmentIn, request: Request) -> None:
        provisioning.assign(*resolve(tenant_id, app, request), body.principal_type, body.principal_id, body.role,
                            actor=admin_id(request))

    @router.delete(base + "/{app}/assignments/{principal_type}/{principal_id}", status_code=204)
    def unassign(tenant_id: str, app: str, principal_type: str, principal_id: str, request: Request) -> None:
        provisioning.unassign(*resolve(tenant_id, app, request), principal_type, principal_id, actor=admin_id(request))

    @router.get(base + "/{app}/roles")
    def list_roles(tenant_id: str, app: str, request: Request) -> list[RoleInfo]:
        return provisioning.list_roles(*resolve(tenant_id, app, request))

    @router.post(base + "/{app}/roles", status_code=201)
    def add_role(tenant_id: str, app: str, body: RoleIn, request: Request) -> RoleInfo:
        return provisioning.add_role(*resolve(tenant_id, app, request), **body.model_dump(), actor=admin_id(request))

    @router.patch(base + "/{app}/roles/{role}")
    def update_role(tenant_id: str, app: str, role: str, body: RolePatch, request: Request) -> RoleInfo:
        """``{role}`` is the role's id, display name or value."""
        return provisioning.update_role(*resolve(tenant_id, app, request), role, **body.model_dump(),
                                        actor=admin_id(request))

    @router.delete(base + "/{app}/roles/{role}", status_code=204)
    def delete_role(tenant_id: str, app: str, role: str, request: Request) -> None:
        provisioning.delete_role(*resolve(tenant_id, app, request), role, actor=admin_id(request))

    @router.get(base + "/{app}/scope")
    def scope(tenant_id: str, app: str, request: Request) -> ScopeSummary:
        return provisioning.scope(*resolve(tenant_id, app, request)).summary()

    @router.post(base + "/{app}/start")
    def start(tenant_id: str, app: str, request: Request) -> AppInfo:
        return provisioning.set_enabled(*resolve(tenant_id, app, request), True, actor=admin_id(request))

    @router.post(base + "/{app}/stop")
    def stop(tenant_id: str, app: str, request: Request) -> AppInfo:
        return provisioning.set_enabled(*resolve(tenant_id, app, request), False, actor=admin_id(request))

    @router.post(base + "/{app}/restart", status_code=204)
    def restart(tenant_id: str, app: str, request: Request) -> None:
        provisioning.restart(*resolve(tenant_id, app, request), actor=admin_id(request))

    @router.post(base + "/{app}/run", status_code=202)
    def run(tenant_id: str, app: str, body: RunIn, request: Request) -> CycleStarted:
        """Start a cycle now; it runs in the background (follow it with GET …/{app})."""
        tenant, app_id = resolve(tenant_id, app, request)
        if provisioning.status(tenant, app_id, cycles=0).running:
            raise Conflict("a cycle of this app is running")
        if body.allow_deletions:   # an admin's one-time approval: run here, in a thread, not via a queue
            threading.Thread(target=provisioning.run_cycle, args=(tenant, app_id),
                             kwargs={"allow_deletions": True}, daemon=True).start()
        else:
            threading.Thread(target=submit, args=("provisioning.run",),
                             kwargs={"tenant": tenant, "app_id": app_id, "trigger": CycleTrigger.MANUAL.value},
                             daemon=True).start()
        return CycleStarted("started", app_id)

    @router.post(base + "/{app}/provision-on-demand")
    def on_demand(tenant_id: str, app: str, body: OnDemandIn, request: Request) -> CycleReport:
        return provisioning.provision_on_demand(*resolve(tenant_id, app, request), body.user_id)

    @router.get(base + "/{app}/logs")
    def logs(tenant_id: str, app: str, request: Request, user: str | None = None, result: str | None = None,
             cycle: str | None = None, action: str | None = None, limit: Count = 100) -> list[LogEntry]:
        return provisioning.logs(*resolve(tenant_id, app, request), source_id=user, result=result,
                                 cycle_id=cycle, action=action, limit=limit)

    # Every provisioning route: Application Administrator or Organization Management (Entra's Application
    # Administrator and Global Administrator configure provisioning; docs/security.md, "Roles").
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.openapi_extra = needs(APPLICATIONS, ORGANIZATION)
    return router


def admin_id(request: Request) -> str | None:
    """The acting administrator's user id for the app's change log; None for the operator."""
    found = principal_in(request)
    return found.id if found.kind is PrincipalKind.ADMIN else None
