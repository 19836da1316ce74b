"""The admin API of console sign-in (``/api/v1``): a tenant's OpenID Connect provider for single sign-on.

``GET``/``PUT``/``DELETE /tenants/{tenant_id}/sign-in/oidc``, with the tenant's admin token. The client secret
is written, never read back: answers say only whether one is set. ``redirect_uri`` is what to register at the
provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from tenantry.auth.oidc import DEFAULT_SCOPES
from tenantry.auth.service import SignIn
from tenantry.core.access import ORGANIZATION, needs
from tenantry.core.errors import NotFound


class OidcConfigIn(BaseModel):
    issuer: str = Field(min_length=1, max_length=512, description="The provider's issuer, exactly as its discovery "
                                                                  "document says it (https).")
    client_id: str = Field(min_length=1, max_length=256)
    client_secret: str | None = Field(default=None, min_length=1, max_length=2048,
                                      description="Required the first time; left out, the stored one is kept.")
    claim: str = Field(default="preferred_username", min_length=1, max_length=64,
                       description="The ID token's claim that names the user: preferred_username, upn, email …")
    match: Literal["userName", "emails"] = Field(default="userName",
                                                 description="The directory attribute the claim is compared with.")
    scopes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=20)] = Field(
        default_factory=lambda: list(DEFAULT_SCOPES))
    display_name: str | None = Field(default=None, min_length=1, max_length=64,
                                     description='Shown as "Sign in with <display_name>".')


def build_router(signin: SignIn, tenant_of: Callable[[str, Request], str]) -> APIRouter:
    router = APIRouter()

    def shown(request: Request, tenant: str, config: Any) -> dict[str, Any]:
        return {**config.as_dict(), "redirect_uri": signin.redirect_uri(request, tenant)}

    @router.get("/tenants/{tenant_id}/sign-in/oidc", openapi_extra=needs(ORGANIZATION))
    def oidc_config(tenant_id: str, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        config = signin.oidc.config(tenant)
        if config is None:
            raise NotFound(f"tenant {tenant!r} has no single sign-on configured")
        return shown(request, tenant, config)

    @router.put("/tenants/{tenant_id}/sign-in/oidc", openapi_extra=needs(ORGANIZATION))
    def oidc_configure(tenant_id: str, body: OidcConfigIn, request: Request) -> dict[str, Any]:
        tenant = tenant_of(tenant_id, request)
        config = signin.oidc.configure(tenant, issuer=body.issuer, client_id=body.client_id,
                                       client_secret=body.client_secret, claim=body.claim, match=body.match,
                                       scopes=body.scopes, display_name=body.display_name)
        return shown(request, tenant, config)

    @router.delete("/tenants/{tenant_id}/sign-in/oidc", status_code=204, openapi_extra=needs(ORGANIZATION))
    def oidc_remove(tenant_id: str, request: Request) -> Response:
        tenant = tenant_of(tenant_id, request)
        if not signin.remove_oidc(tenant):
            raise NotFound(f"tenant {tenant!r} has no single sign-on configured")
        return Response(status_code=204)

    return router
