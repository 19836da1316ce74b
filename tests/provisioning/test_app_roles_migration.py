"""Migration 0010_app_roles: every role name an existing assignment carries becomes one of its app's roles, so
no assignment loses its role; Default Access and User become the built-in roles."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tenantry.provisioning.roles import DEFAULT_ACCESS_ID, USER_ROLE_ID
from tests.conftest import migrate_to

BEFORE = "0009_phone_keys"
AFTER = "0010_app_roles"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture()
def engine(blank_engine: sa.Engine) -> sa.Engine:
    migrate_to(blank_engine, BEFORE)
    return blank_engine


def _old_world(eng: sa.Engine) -> None:
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :c)"), {"c": T0})
        for app in ("app1", "app2"):
            conn.execute(sa.text(
                "INSERT INTO provisioning_apps (id, tenant_id, name, tenant_url, token_secret, enabled, scope, "
                "skip_default_access, created_at) VALUES (:a, 't', :a, 'https://x.example/scim', 's', :f, "
                "'assigned', :t, :c)"), {"a": app, "f": False, "t": True, "c": T0})
        rows = [("app1", "User", "u1", "User"), ("app1", "User", "u2", "Default Access"),
                ("app1", "Group", "g1", "Dispatcher"), ("app1", "User", "u3", "dispatcher"),
                ("app1", "User", "u4", "Night shift lead"), ("app2", "User", "u1", "Dispatcher")]
        for app, kind, principal, role in rows:
            conn.execute(sa.text("INSERT INTO provisioning_assignments (app_id, principal_type, principal_id, role) "
                                 "VALUES (:a, :k, :p, :r)"), {"a": app, "k": kind, "p": principal, "r": role})


def test_existing_assignment_roles_become_app_roles_and_no_assignment_loses_its_role(
        engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    _old_world(engine)
    with caplog.at_level(logging.WARNING, logger="tenantry.migrations"):
        migrate_to(engine, AFTER)
    with engine.connect() as conn:
        roles = {(r.app_id, r.display_name): r for r in conn.execute(sa.text(
            "SELECT id, app_id, display_name, value, allowed_member_types, enabled FROM provisioning_app_roles"))}
        assigned = {(r.app_id, r.principal_id): r.role_id for r in conn.execute(sa.text(
            "SELECT app_id, principal_id, role_id FROM provisioning_assignments"))}
        held = conn.execute(sa.text("SELECT roles FROM provisioned_objects")).all()
    assert sorted(roles) == [("app1", "Dispatcher"), ("app1", "Night shift lead"), ("app2", "Dispatcher")]
    dispatcher = roles[("app1", "Dispatcher")]
    assert (dispatcher.value, dispatcher.allowed_member_types, bool(dispatcher.enabled)) == (
        None, "User,Group", True)
    assert assigned == {("app1", "u1"): USER_ROLE_ID, ("app1", "u2"): DEFAULT_ACCESS_ID,
                        ("app1", "g1"): dispatcher.id, ("app1", "u3"): dispatcher.id,   # one role, whatever case
                        ("app1", "u4"): roles[("app1", "Night shift lead")].id,
                        ("app2", "u1"): roles[("app2", "Dispatcher")].id}
    assert held == []
    assert "'dispatcher'" in caplog.text and "'Dispatcher'" in caplog.text   # the merge is said, not silent

    migrate_to(engine, BEFORE, down=True)
    with engine.connect() as conn:
        back = {(r.app_id, r.principal_id): r.role for r in conn.execute(sa.text(
            "SELECT app_id, principal_id, role FROM provisioning_assignments"))}
    assert back == {("app1", "u1"): "User", ("app1", "u2"): "Default Access", ("app1", "g1"): "Dispatcher",
                    ("app1", "u3"): "Dispatcher", ("app1", "u4"): "Night shift lead", ("app2", "u1"): "Dispatcher"}
