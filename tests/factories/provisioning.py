"""Provisioning objects for tests, made through ``ProvisioningService``: an app pointing at a target, its roles,
its assignments, and mappings as its configuration takes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from tenantry.provisioning.config import AppConfig
from tenantry.provisioning.results import AppInfo, RoleInfo
from tenantry.services import Services

# Nothing answers on the discard port: for tests that change configuration and never send a request.
NOWHERE = "http://127.0.0.1:9/scim/v2"


def make_app(services: Services, tenant: str, url: str = NOWHERE, token: str = "t" * 20, *, name: str | None = None,
             notification_email: str | None = None, scope: str = "assigned", skip_default_access: bool = True,
             users: Iterable[str] = (), groups: Iterable[str] = (), role: str = "User", **config: Any) -> AppInfo:
    """An app (named ``app-<random>`` unless ``name``) with ``config`` applied (``user_mappings=``, ``concurrency=``
    …) and ``users`` and ``groups`` (ids) assigned with ``role``."""
    provisioning = services.provisioning
    app = provisioning.create_app(tenant, name=name or f"app-{uuid.uuid4().hex[:8]}", tenant_url=url, token=token,
                                  notification_email=notification_email, scope=scope,
                                  skip_default_access=skip_default_access)
    if config:
        provisioning.configure(tenant, app.id, config)
    assign(services, tenant, app.id, *users, groups=groups, role=role)
    return app


def make_role(services: Services, tenant: str, app_id: str, display_name: str = "Dispatcher",
              **overrides: Any) -> RoleInfo:
    """A role added to the app (``overrides``: value, description, allowed_member_types, enabled, actor)."""
    return services.provisioning.add_role(tenant, app_id, display_name=display_name, **overrides)


def assign(services: Services, tenant: str, app_id: str, *users: str, groups: Iterable[str] = (),
           role: str = "User") -> None:
    """Assign users and groups (ids) to the app with one role (its id, display name or value)."""
    for kind, ids in (("User", users), ("Group", groups)):
        for principal in ids:
            services.provisioning.assign(tenant, app_id, kind, principal, role)


def mapping(target: str, source: str = "", *, type: str = "direct", **extra: Any) -> dict[str, Any]:
    """One attribute mapping as ``user_mappings``/``group_mappings`` take it (``extra``: apply, default_if_null,
    matching_precedence)."""
    return {"target": target, "type": type, "source": source, **extra}


def user_mappings(*more: dict[str, Any]) -> list[dict[str, Any]]:
    """The default user mappings (seed 003's GroupTalk table), then ``more``."""
    return [*(m.model_dump(mode="json") for m in AppConfig().user_mappings), *more]
