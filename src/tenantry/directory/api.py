"""The admin REST API of the directory (``/api/v1``): tenants, users, groups, domains, licences, role groups.

Users and groups are the same records the SCIM endpoints serve (one store); this API adds what SCIM has no
word for. Authentication: a tenant's admin token (``tenantry token create --scope admin``) for everything under
``/tenants/{tenant_id}``; the operator token (``tenantry token create --scope operator``) to list and create
tenants. No or an unknown token: 401; a valid token of another scope or tenant: 403 (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from tenantry.core import access
from tenantry.core.access import ADMIN_ROLES, APPLICATIONS, ORGANIZATION, needs, route_roles
from tenantry.core.bounds import Count, Offset, StartIndex
from tenantry.core.errors import Forbidden, Unauthorized
from tenantry.core.principals import Principal, PrincipalKind
from tenantry.directory.admins import ensure_first_admin
from tenantry.directory.catalogue import LICENCES, ROLES
from tenantry.directory.results import (
    Catalogue,
    CreatedTenant,
    DomainInfo,
    GroupPage,
    MailUserInfo,
    RoleAssignmentInfo,
    RoleGroupInfo,
    ScimLogRow,
    TenantInfo,
    UserPage,
)
from tenantry.directory.scim_log import ScimLog
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService


class TenantIn(BaseModel):
    id: str = Field(max_length=63)
    name: str | None = Field(default=None, max_length=256)


class DomainIn(BaseModel):
    name: str
    verified: bool = False


class LicenceIn(BaseModel):
    sku: str


class RoleGroupIn(BaseModel):
    name: str
    roles: list[str] = Field(default_factory=list)
    description: str = ""


class MemberIn(BaseModel):
    user_id: str


class MailUserIn(BaseModel):
    """``New-MailUser``: hidden from address lists unless ``hidden`` is false (an application account is)."""

    name: str = Field(max_length=256)
    address: str = Field(max_length=320)
    hidden: bool = True


class HiddenIn(BaseModel):
    hidden: bool


class RoleAssignmentIn(BaseModel):
    user_id: str = Field(max_length=64)
    role: str = Field(max_length=128)


def _bearer(request: Request) -> str:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    return secret.strip()


def principal_of(directory: DirectoryService, request: Request) -> Principal:
    """Who is asking (issue #12): the administrator an admin token was issued to, or the operator; resolved once
    a request (``request.state.principal``). 401 without a valid credential, 403 for a SCIM token."""
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):
        return known
    found = directory.principal(directory.credential(_bearer(request)))
    request.state.principal = found
    return found


def admin_guard(directory: DirectoryService) -> tuple[Callable[[Request], str], Callable[[str, Request], str]]:
    """The admin-token checks every admin router uses: (any tenant's admin, this tenant's admin).

    No or an unknown token → 401; a token of another scope (SCIM, operator) or of another tenant → 403.
    """

    def admin(request: Request) -> str:
        found = principal_of(directory, request)
        if found.kind is not PrincipalKind.ADMIN or found.tenant is None:
            raise Forbidden("this is an operator token; this endpoint needs an admin token")
        return found.tenant

    def tenant_of(tenant_id: str, request: Request) -> str:
        own = admin(request)
        if own != tenant_id:
            raise Forbidden(f"this admin token is not for tenant {tenant_id!r}")
        return tenant_id

    return admin, tenant_of


def caller(directory: DirectoryService, request: Request) -> tuple[str, str]:
    """(scope, tenant) of an admin or operator token; 401 without a valid token, 403 for a SCIM token."""
    found = principal_of(directory, request)
    if found.kind is PrincipalKind.OPERATOR:
        return "operator", ""
    return "admin", found.tenant or ""


def api_guard(directory: DirectoryService) -> Callable[[Request], None]:
    """The check every ``/api/v1`` route passes first: under ``/tenants/{tenant_id}`` an administrator of that
    tenant holding one of the roles the route names (``core.access.needs``; a route naming none is closed);
    elsewhere an admin or the operator token (the route narrows it further)."""
    _, tenant_of = admin_guard(directory)

    def guard(request: Request) -> None:
        tenant_id = request.path_params.get("tenant_id")
        if tenant_id is None:
            caller(directory, request)
            return
        tenant_of(str(tenant_id), request)
        route = request.scope.get("route")
        roles = route_roles(getattr(route, "openapi_extra", None))
        what = f"{request.method} /api/v1{getattr(route, 'path', request.url.path)}"
        if roles is None:
            raise Forbidden(f"{what} names no role that may call it, so nobody may (closed by default)")
        access.require(principal_of(directory, request), roles, what)

    return guard


Text = Annotated[str | None, Query(max_length=512)]


# Long by design (issue #11): a router factory is its routes, each a few lines over the service; splitting it
# would only scatter one part's URL table.
def build_router(store: ScimStore, directory: DirectoryService, scim_log: ScimLog) -> APIRouter:
    router = APIRouter()
    _, tenant_of = admin_guard(directory)

    @router.get("/catalogue")
    def catalogue(request: Request) -> Catalogue:
        caller(directory, request)  # the same for every tenant: any admin, or the operator
        return Catalogue(LICENCES, ROLES)

    @router.get("/tenants")
    def tenants(request: Request) -> list[TenantInfo]:
        """The operator sees every tenant; a tenant admin sees its own tenant only."""
        scope, own = caller(directory, request)
        listed = directory.list_tenants()
        return listed if scope == "operator" else [t for t in listed if t.id == own]

    def operator(request: Request) -> None:
        # A dependency, so it is checked before the body is validated: a tenant admin learns nothing from 422s.
        scope, _ = caller(directory, request)
        if scope != "operator":
            raise Forbidden("creating tenants needs the operator token (tenantry token create --scope operator); "
                            "a tenant admin token administers its own tenant only")

    @router.post("/tenants", status_code=201, dependencies=[Depends(operator)])
    def create_tenant(body: TenantIn) -> CreatedTenant:
        """The new tenant with its first admin and SCIM tokens, shown this once (as the first run prints the
        default tenant's): without them nobody could administer the tenant or provision into it over HTTP. The
        admin token is issued to the tenant's first administrator (directory.admins)."""
        info = directory.create_tenant(body.id, body.name or body.id)
        first = ensure_first_admin(store, directory, body.id)
        tokens = {"admin": directory.issue_token(body.id, "admin", "initial", user_id=first).secret,
                  "scim": directory.issue_token(body.id, "scim", "initial").secret}
        return CreatedTenant(info.id, info.name, info.created_at, tokens)

    @router.get("/tenants/{tenant_id}/users", openapi_extra=needs(*ADMIN_ROLES))
    def users(tenant_id: str, request: Request, filter: str | None = None, start: StartIndex = 1,
              count: Count = 100, include_hidden: bool = False) -> UserPage:
        """Users hidden from address lists (application accounts) are listed with ``include_hidden``, or when the
        filter names one (``id``, ``userName`` or ``externalId`` ``eq``)."""
        tenant = tenant_of(tenant_id, request)
        page = store.search(tenant, "User", filter_text=filter, start_index=start, count=count,
                            include_hidden=include_hidden)
        return UserPage(page.total, page.start_index, page.resources)

    @router.get("/tenants/{tenant_id}/users/{user_id}", openapi_extra=needs(*ADMIN_ROLES))
    def user(tenant_id: str, user_id: str, request: Request) -> dict[str, Any]:  # dict: a SCIM resource
        tenant = tenant_of(tenant_id, request)
        doc = store.get(tenant, "User", user_id)
        doc["licences"] = directory.licences_of(tenant, user_id)
        doc["roles"] = sorted(directory.roles_of(tenant, user_id))
        doc["direct_roles"] = sorted(directory.direct_roles(tenant, user_id))
        doc["hidden_from_address_lists"] = any(u.hidden for u in directory.users_by_id(tenant, [user_id]))
        return doc

    @router.post("/tenants/{tenant_id}/mail-users", status_code=201, openapi_extra=needs(ORGANIZATION))
    def create_mail_user(tenant_id: str, body: MailUserIn, request: Request) -> MailUserInfo:
        """``New-MailUser`` (and ``Set-MailUser -HiddenFromAddressListsEnabled``): an application account on a
        verified domain of the tenant."""
        return directory.create_mail_user(tenant_of(tenant_id, request), body.name, body.address,
                                          hidden=body.hidden)

    @router.patch("/tenants/{tenant_id}/users/{user_id}/hidden", openapi_extra=needs(ORGANIZATION))
    def set_hidden(tenant_id: str, user_id: str, body: HiddenIn, request: Request) -> MailUserInfo:
        """``Set-MailUser -HiddenFromAddressListsEnabled``."""
        return directory.set_hidden(tenant_of(tenant_id, request), user_id, body.hidden)

    @router.get("/tenants/{tenant_id}/role-assignments", openapi_extra=needs(ORGANIZATION))
    def role_assignments(tenant_id: str, request: Request,
                         user_id: Annotated[str | None, Query(max_length=64)] = None) -> list[RoleAssignmentInfo]:
        """Management roles held directly (UserApplication, ArchiveApplication), of one user with ``user_id``."""
        return directory.role_assignments(tenant_of(tenant_id, request), user_id)

    @router.post("/tenants/{tenant_id}/role-assignments", status_code=201, openapi_extra=needs(ORGANIZATION))
    def assign_role(tenant_id: str, body: RoleAssignmentIn, request: Request) -> RoleAssignmentInfo:
        """``New-ManagementRoleAssignment``: 400 for an administrator role (those come from role groups)."""
        return directory.assign_role(tenant_of(tenant_id, request), body.user_id, body.role)

    @router.delete("/tenants/{tenant_id}/role-assignments/{assignment_id}", status_code=204,
                   openapi_extra=needs(ORGANIZATION))
    def remove_role_assignment(tenant_id: str, assignment_id: str, request: Request) -> None:
        directory.remove_role_assignment_by_id(tenant_of(tenant_id, request), assignment_id)

    @router.get("/tenants/{tenant_id}/groups", openapi_extra=needs(*ADMIN_ROLES))
    def groups(tenant_id: str, request: Request, filter: str | None = None, start: StartIndex = 1,
               count: Count = 100) -> GroupPage:
        tenant = tenant_of(tenant_id, request)
        page = store.search(tenant, "Group", filter_text=filter, start_index=start, count=count,
                            with_members=False)
        return GroupPage(page.total, page.start_index, page.resources)

    @router.get("/tenants/{tenant_id}/domains", openapi_extra=needs(*ADMIN_ROLES))
    def domains(tenant_id: str, request: Request) -> list[DomainInfo]:
        return directory.list_domains(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/domains", status_code=201, openapi_extra=needs(ORGANIZATION))
    def add_domain(tenant_id: str, body: DomainIn, request: Request) -> DomainInfo:
        return directory.add_domain(tenant_of(tenant_id, request), body.name, verified=body.verified)

    @router.get("/tenants/{tenant_id}/users/{user_id}/licences", openapi_extra=needs(*ADMIN_ROLES))
    def licences(tenant_id: str, user_id: str, request: Request) -> list[str]:
        return directory.licences_of(tenant_of(tenant_id, request), user_id)

    @router.post("/tenants/{tenant_id}/users/{user_id}/licences", status_code=201,
                 openapi_extra=needs(ORGANIZATION))
    def assign(tenant_id: str, user_id: str, body: LicenceIn, request: Request) -> list[str]:
        tenant = tenant_of(tenant_id, request)
        directory.assign_licence(tenant, user_id, body.sku)
        return directory.licences_of(tenant, user_id)

    @router.get("/tenants/{tenant_id}/role-groups", openapi_extra=needs(*ADMIN_ROLES))
    def role_groups(tenant_id: str, request: Request) -> list[RoleGroupInfo]:
        return directory.list_role_groups(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/role-groups", status_code=201, openapi_extra=needs(ORGANIZATION))
    def create_role_group(tenant_id: str, body: RoleGroupIn, request: Request) -> RoleGroupInfo:
        return directory.create_role_group(tenant_of(tenant_id, request), body.name, body.roles, body.description)

    @router.post("/tenants/{tenant_id}/role-groups/{name}/members", status_code=204,
                 openapi_extra=needs(ORGANIZATION))
    def add_member(tenant_id: str, name: str, body: MemberIn, request: Request) -> None:
        directory.add_role_group_member(tenant_of(tenant_id, request), name, body.user_id)

    @router.get("/tenants/{tenant_id}/scim-log", openapi_extra=needs(ORGANIZATION, APPLICATIONS))
    def scim_request_log(tenant_id: str, request: Request, since: datetime | None = None,
                         until: datetime | None = None, method: Annotated[str | None, Query(max_length=16)] = None,
                         resource_type: Annotated[str | None, Query(max_length=64)] = None,
                         resource_id: Annotated[str | None, Query(max_length=64)] = None,
                         outcome: Annotated[str | None, Query(max_length=16)] = None,
                         status: Annotated[int | None, Query(ge=100, le=599)] = None,
                         token: Annotated[str | None, Query(max_length=128)] = None, name: Text = None,
                         offset: Offset = 0, limit: Count = 100) -> list[ScimLogRow]:
        """The tenant's SCIM request log (every inbound SCIM write, failures included), newest first; at most
        1,000 entries a page. ``outcome``: success or failure; ``token``: a SCIM token's id or name; ``name``:
        a userName, displayName or externalId; ``since`` inclusive, ``until`` exclusive (ISO 8601, UTC if no
        zone). Kept ``TENANTRY_SCIM_LOG_DAYS`` days (docs/scim.md, "Request log")."""
        return scim_log.entries(tenant_of(tenant_id, request), since=since, until=until, method=method,
                                resource_type=resource_type, resource_id=resource_id, outcome=outcome,
                                status=status, token=token, name=name, offset=offset, limit=limit)

    return router
