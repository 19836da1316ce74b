"""The admin REST API of the directory (``/api/v1``): tenants, users, groups, domains, licences, role groups.

Users and groups are the same records the SCIM endpoints serve (one store); this API adds what SCIM has no
word for. Authentication: an admin token (``tenantry token create --scope admin``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tenantry.core.bounds import Count, StartIndex
from tenantry.core.errors import Unauthorized
from tenantry.directory.catalogue import LICENCES, ROLES
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService


class TenantIn(BaseModel):
    id: str
    name: str | None = None


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


def admin_guard(directory: DirectoryService) -> tuple[Callable[[Request], str], Callable[[str, Request], str]]:
    """The admin-token checks every admin router uses: (any tenant's admin, this tenant's admin)."""

    def admin(request: Request) -> str:
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("an admin bearer token is required")
        return directory.authenticate(secret.strip(), "admin", None)

    def tenant_of(tenant_id: str, request: Request) -> str:
        own = admin(request)
        if own != tenant_id:
            raise Unauthorized(f"this admin token is not for tenant {tenant_id!r}")
        return tenant_id

    return admin, tenant_of


def build_router(store: ScimStore, directory: DirectoryService) -> APIRouter:
    router = APIRouter()
    admin, tenant_of = admin_guard(directory)

    @router.get("/catalogue")
    def catalogue(_: str = Depends(admin)) -> dict[str, Any]:  # noqa: B008
        return {"licences": LICENCES, "roles": ROLES}

    @router.get("/tenants")
    def tenants(_: str = Depends(admin)) -> list[dict[str, Any]]:  # noqa: B008
        return directory.list_tenants()

    @router.post("/tenants", status_code=201)
    def create_tenant(body: TenantIn, _: str = Depends(admin)) -> dict[str, Any]:  # noqa: B008
        return directory.create_tenant(body.id, body.name or body.id)

    @router.get("/tenants/{tenant_id}/users")
    def users(tenant_id: str, request: Request, filter: str | None = None, start: StartIndex = 1,
              count: Count = 100) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        page = store.search(tenant, "User", filter_text=filter, start_index=start, count=count)
        return {"total": page.total, "start": page.start_index, "users": page.resources}

    @router.get("/tenants/{tenant_id}/users/{user_id}")
    def user(tenant_id: str, user_id: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        doc = store.get(tenant, "User", user_id)
        doc["licences"] = directory.licences_of(tenant, user_id)
        doc["roles"] = sorted(directory.roles_of(tenant, user_id))
        return doc

    @router.get("/tenants/{tenant_id}/groups")
    def groups(tenant_id: str, request: Request, filter: str | None = None, start: StartIndex = 1,
               count: Count = 100) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        page = store.search(tenant, "Group", filter_text=filter, start_index=start, count=count,
                            with_members=False)
        return {"total": page.total, "start": page.start_index, "groups": page.resources}

    @router.get("/tenants/{tenant_id}/domains")
    def domains(tenant_id: str, request: Request) -> list[dict[str, Any]]:
        return directory.list_domains(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/domains", status_code=201)
    def add_domain(tenant_id: str, body: DomainIn, request: Request) -> dict[str, Any]:
        return directory.add_domain(tenant_of(tenant_id, request), body.name, verified=body.verified)

    @router.get("/tenants/{tenant_id}/users/{user_id}/licences")
    def licences(tenant_id: str, user_id: str, request: Request) -> list[str]:
        return directory.licences_of(tenant_of(tenant_id, request), user_id)

    @router.post("/tenants/{tenant_id}/users/{user_id}/licences", status_code=201)
    def assign(tenant_id: str, user_id: str, body: LicenceIn, request: Request) -> list[str]:
        tenant = tenant_of(tenant_id, request)
        directory.assign_licence(tenant, user_id, body.sku)
        return directory.licences_of(tenant, user_id)

    @router.get("/tenants/{tenant_id}/role-groups")
    def role_groups(tenant_id: str, request: Request) -> list[dict[str, Any]]:
        return directory.list_role_groups(tenant_of(tenant_id, request))

    @router.post("/tenants/{tenant_id}/role-groups", status_code=201)
    def create_role_group(tenant_id: str, body: RoleGroupIn, request: Request) -> dict[str, Any]:
        return directory.create_role_group(tenant_of(tenant_id, request), body.name, body.roles, body.description)

    @router.post("/tenants/{tenant_id}/role-groups/{name}/members", status_code=204)
    def add_member(tenant_id: str, name: str, body: MemberIn, request: Request) -> None:
        directory.add_role_group_member(tenant_of(tenant_id, request), name, body.user_id)

    return router
