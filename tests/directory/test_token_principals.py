"""Admin tokens belong to administrators (issue #12): migration 0014, and what happens to the tokens from before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tenantry.app import Services, bootstrap
from tenantry.core.errors import Invalid, Unauthorized
from tenantry.core.ids import secret_hash
from tenantry.core.principals import PrincipalKind
from tenantry.directory.models import ApiToken
from tests.conftest import administrator, migrate_to

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_migration_0014_keeps_every_token_and_gives_none_an_owner_and_goes_back(blank_engine: sa.Engine) -> None:
    migrate_to(blank_engine, "0013_periodic_work")
    with blank_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :c)"), {"c": T0})
        for scope in ("scim", "admin", "operator"):
            conn.execute(sa.text("INSERT INTO api_tokens (id, tenant_id, scope, name, token_hash, created_at) "
                                 "VALUES (:i, 't', :s, 'old', :h, :c)"),
                         {"i": f"tok-{scope}", "s": scope, "h": secret_hash(f"secret-{scope}-0123456789"), "c": T0})
    migrate_to(blank_engine, "0014_token_principals")
    with blank_engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, user_id FROM api_tokens ORDER BY id")).all()
    assert [(r.id, r.user_id) for r in rows] == [("tok-admin", None), ("tok-operator", None), ("tok-scim", None)]
    migrate_to(blank_engine, "0013_periodic_work", down=True)
    with blank_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar() == 3


def test_an_admin_token_needs_an_active_administrator_and_carries_their_roles(backend: Services,
                                                                              tenant: str) -> None:
    d = backend.directory
    with pytest.raises(Invalid, match="issued to an administrator"):
        d.issue_token(tenant, "admin", "x")
    with pytest.raises(Invalid):
        d.issue_token(tenant, "scim", "x", user_id=administrator(backend, tenant))
    admin = administrator(backend, tenant, roles=["Compliance Administrator"])
    token = d.issue_token(tenant, "admin", "x", user_id=admin)
    principal = d.principal(d.credential(token.secret))
    assert principal.kind is PrincipalKind.ADMIN and principal.id == admin and principal.tenant == tenant
    assert principal.roles == {"Compliance Administrator"} and f"token {token.id}" in principal.actor
    # A role granted applies at once in this process; a deactivated administrator's tokens stop working.
    d.add_role_group_member(tenant, "Organization Management", admin)
    assert "Organization Management" in d.principal(d.credential(token.secret)).roles
    backend.scim.patch(tenant, "User", admin, {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}]})
    d._forget_credentials()   # another process would see it within TOKEN_CACHE_SECONDS
    with pytest.raises(Unauthorized, match="deleted or deactivated"):
        d.principal(d.credential(token.secret))


def test_an_admin_token_from_before_identities_is_refused_until_the_server_gives_it_to_the_first_administrator(
        backend: Services) -> None:
    tenant = f"legacy-{uuid.uuid4().hex[:8]}"
    d = backend.directory
    d.create_tenant(tenant, "Legacy")
    secret = f"legacy-admin-{uuid.uuid4().hex}"
    with backend.db.session() as session:
        session.add(ApiToken(id=str(uuid.uuid4()), tenant_id=tenant, scope="admin", name="old",
                             token_hash=secret_hash(secret), created_at=T0))
    with pytest.raises(Unauthorized, match="before administrators had identities"):
        d.principal(d.credential(secret))
    bootstrap(backend)
    principal = d.principal(d.credential(secret))
    assert principal.name == "tenantry-admin" and "Organization Management" in principal.roles
    assert "Mailbox Import Export" not in principal.roles
    # Once given, nothing more happens at the next start: no second first administrator.
    bootstrap(backend)
    assert len(d.find_users_by_email(tenant, ["tenantry-admin"])["tenantry-admin"]) == 1
