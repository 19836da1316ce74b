"""Migration 0016 (trust) up and down, on both backends."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import migrate_to

TABLES = {"trust_partner_apps", "trust_auth_configs", "trust_auth_certificates", "trust_sp_keys"}


def test_migration_0016_adds_the_trust_tables_and_removes_them_going_down(blank_engine: Any) -> None:
    migrate_to(blank_engine, "0016_trust")
    assert set(sa.inspect(blank_engine).get_table_names()) >= TABLES
    migrate_to(blank_engine, "0015_console_sign_in", down=True)
    assert not TABLES & set(sa.inspect(blank_engine).get_table_names())
