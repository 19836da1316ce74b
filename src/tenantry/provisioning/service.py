"""Provisioning apps: create (token sealed), Test Connection as Entra sends it, assignments and who is in scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import delete, select

from tenantry.core.clock import utcnow
from tenantry.core.db import Database
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.core.secrets import SecretBox
from tenantry.directory.service import DirectoryService
from tenantry.provisioning.models import Assignment, ProvisioningApp

DEFAULT_ACCESS = "Default Access"


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    message: str
    status: int | None = None


@dataclass(frozen=True)
class ScopeDecision:
    in_scope: list[str]                   # user ids
    skipped: dict[str, str]               # user id → why not (logged, never silent)


class ProvisioningService:
    def __init__(self, db: Database, secrets: SecretBox, directory: DirectoryService, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.db = db
        self.secrets = secrets
        self.directory = directory
        self.transport = transport

    def create_app(self, tenant: str, *, name: str, tenant_url: str, token: str, notification_email: str | None = None,
                   scope: str = "assigned", skip_default_access: bool = True) -> dict[str, Any]:
        if scope not in ("assigned", "all"):
            raise Invalid("scope is 'assigned' (assigned users and groups) or 'all'")
        if not tenant_url.startswith(("https://", "http://")):
            raise Invalid("the tenant URL must be an http(s) URL")
        if not token:
            raise Invalid("a secret token is required")
        app = ProvisioningApp(id=str(uuid.uuid4()), tenant_id=tenant, name=name, tenant_url=tenant_url.rstrip("/"),
                              token_secret=self.secrets.seal(token), notification_email=notification_email,
                              enabled=False, scope=scope, skip_default_access=skip_default_access,
                              created_at=utcnow())
        with self.db.session() as session:
            if session.scalar(select(ProvisioningApp.id).where(ProvisioningApp.tenant_id == tenant,
                                                               ProvisioningApp.name == name)):
                raise Conflict(f"a provisioning app named {name!r} exists")
            session.add(app)
            return _app_dict(app)

    def _app(self, tenant: str, app_id: str) -> ProvisioningApp:
        with self.db.session() as session:
            app = session.get(ProvisioningApp, app_id)
            if app is None or app.tenant_id != tenant:
                raise NotFound(f"no provisioning app {app_id}")
            session.expunge(app)
            return app

    def test_connection(self, tenant: str, app_id: str) -> ConnectionResult:
        """Entra's Test Connection: a filter on the matching attribute with a random value → 200, empty list."""
        app = self._app(tenant, app_id)
        probe = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {self.secrets.open(app.token_secret)}",
                   "Accept": "application/scim+json"}
        try:
            with httpx.Client(transport=self.transport, timeout=15) as client:
                r = client.get(f"{app.tenant_url}/Users", params={"filter": f'userName eq "{probe}"'},
                               headers=headers)
        except httpx.HTTPError as exc:
            kind = "TLS" if "SSL" in str(exc) or "certificate" in str(exc).lower() else "connection"
            return ConnectionResult(False, f"{kind} error reaching {app.tenant_url}: {exc}")
        if r.status_code in (401, 403):
            return ConnectionResult(False, f"the app refused the secret token (HTTP {r.status_code})", r.status_code)
        if r.status_code == 404:
            return ConnectionResult(False, f"no SCIM endpoint at {app.tenant_url}/Users (HTTP 404): check the URL",
                                    404)
        if r.status_code != 200:
            return ConnectionResult(False, f"the app answered HTTP {r.status_code}: {r.text[:200]}", r.status_code)
        try:
            body = r.json()
        except ValueError:
            return ConnectionResult(False, "the app's answer is not JSON", 200)
        if body.get("totalResults") != 0:
            return ConnectionResult(False, "the app found a user for a random userName: its filtering is broken "
                                           "(Tenantry would update the wrong user)", 200)
        return ConnectionResult(True, "connected: the app answered the test query as expected", 200)

    def assign(self, tenant: str, app_id: str, principal_type: str, principal_id: str, role: str = "User") -> None:
        if principal_type not in ("User", "Group"):
            raise Invalid("assign a User or a Group")
        self._app(tenant, app_id)
        with self.db.session() as session:
            session.execute(delete(Assignment).where(Assignment.app_id == app_id,
                                                     Assignment.principal_type == principal_type,
                                                     Assignment.principal_id == principal_id))
            session.add(Assignment(app_id=app_id, principal_type=principal_type, principal_id=principal_id,
                                   role=role))

    def scope(self, tenant: str, app_id: str) -> ScopeDecision:
        """The users this app provisions: all users, or those assigned directly or through a group they are
        a *direct* member of. Users whose only role is Default Access are skipped (the seed's rule; Entra
        configurations made after April 2020 no longer skip them: ``skip_default_access=False``)."""
        app = self._app(tenant, app_id)
        if app.scope == "all":
            return ScopeDecision(self.directory.user_ids(tenant), {})
        with self.db.session() as session:
            assignments = list(session.scalars(select(Assignment).where(Assignment.app_id == app_id)))
        roles: dict[str, set[str]] = {}
        for a in assignments:
            members = [a.principal_id] if a.principal_type == "User" else self.directory.direct_user_members(
                tenant, a.principal_id)
            for member in members:
                roles.setdefault(member, set()).add(a.role)
        existing = {u.id for u in self.directory.users_by_id(tenant, list(roles))}
        skipped: dict[str, str] = {}
        included: list[str] = []
        for user_id, user_roles in sorted(roles.items()):
            if user_id not in existing:
                skipped[user_id] = "assigned, but no such user in the directory"
            elif app.skip_default_access and user_roles == {DEFAULT_ACCESS}:
                skipped[user_id] = "not effectively entitled: the only role is Default Access"
            else:
                included.append(user_id)
        return ScopeDecision(included, skipped)


def _app_dict(app: ProvisioningApp) -> dict[str, Any]:
    return {"id": app.id, "name": app.name, "tenant_url": app.tenant_url, "enabled": app.enabled,
            "scope": app.scope, "notification_email": app.notification_email,
            "skip_default_access": app.skip_default_access}
