"""Two tenants side by side, each with its own SCIM and admin token, on both backends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tenantry.app import Services
from tests.conftest import ScimClient, admin_secret


@dataclass
class Side:
    """One tenant as its own credentials see it."""

    tenant: str
    scim: ScimClient
    admin_token: str
    scim_token: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def make_side(client: TestClient, backend: Services, prefix: str) -> Side:
    tenant = f"{prefix}-{uuid.uuid4().hex[:10]}"
    backend.directory.create_tenant(tenant, f"Tenant {prefix}")
    scim_token = backend.directory.issue_token(tenant, "scim", "test").secret
    admin_token = admin_secret(backend, tenant, "test")
    return Side(tenant, ScimClient(client, tenant, scim_token), admin_token, scim_token)


@pytest.fixture()
def side_a(app_client: TestClient, backend: Services) -> Side:
    """The victim: its objects must never be seen or changed through tenant B's credentials."""
    return make_side(app_client, backend, "a")


@pytest.fixture()
def side_b(app_client: TestClient, backend: Services) -> Side:
    """The attacker: a tenant admin and an IdP of another tenant on the same installation."""
    return make_side(app_client, backend, "b")
