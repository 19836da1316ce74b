"""Migration 0017 (application accounts) up and down on both backends, on a database that has users: existing
users become visible, and neither direction touches what references ``users`` (no table copy)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tests.conftest import migrate_to

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _user_with_values(engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('m', 'm', :c)"), {"c": T0})
        conn.execute(sa.text(
            "INSERT INTO users (id, tenant_id, user_name, user_name_key, active, created, last_modified, version, "
            "resource) VALUES ('u1', 'm', 'a@x.example', 'a@x.example', :a, :c, :c, 1, '{}')"), {"a": True, "c": T0})
        conn.execute(sa.text("INSERT INTO user_values (user_id, tenant_id, attr, value_key) "
                             "VALUES ('u1', 'm', 'emails.value', 'a@x.example')"))


def _count(engine: Any, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() or 0)


def test_migration_0017_adds_the_flag_false_and_the_table_and_keeps_every_users_row(blank_engine: Any) -> None:
    migrate_to(blank_engine, "0016_trust")
    _user_with_values(blank_engine)
    migrate_to(blank_engine, "0017_application_accounts")
    inspector = sa.inspect(blank_engine)
    assert "management_role_assignments" in inspector.get_table_names()
    with blank_engine.connect() as conn:
        hidden = conn.execute(sa.text("SELECT hidden_from_address_lists FROM users WHERE id = 'u1'")).scalar()
    assert not hidden
    assert _count(blank_engine, "user_values") == 1
    migrate_to(blank_engine, "0016_trust", down=True)
    assert "management_role_assignments" not in sa.inspect(blank_engine).get_table_names()
    assert "hidden_from_address_lists" not in {c["name"] for c in sa.inspect(blank_engine).get_columns("users")}
    assert _count(blank_engine, "users") == 1 and _count(blank_engine, "user_values") == 1
