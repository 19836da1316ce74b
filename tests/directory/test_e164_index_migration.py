"""Migration 0022 keeps only phone numbers in the E.164 index: what was stored stays, a number is still found by
its E.164 key through the index, and the downgrade gives the full index back; on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.conftest import migrate_to

BEFORE = "0021_connector_run_heartbeat"
AFTER = "0022_user_values_e164_partial"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture()
def engine(blank_engine: sa.Engine) -> sa.Engine:
    migrate_to(blank_engine, BEFORE)
    with blank_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', :c)"), {"c": T0})
        conn.execute(sa.text(
            "INSERT INTO users (id, tenant_id, user_name, user_name_key, active, created, last_modified, version, "
            "resource) VALUES ('u1', 't', 'a', 'a', :yes, :c, :c, 1, '{}')"), {"c": T0, "yes": True})
        for attr, value, e164 in (("phonenumbers.value", "+49 170 1234567", "+491701234567"),
                                  ("title", "engineer", None), ("displayname", "a", None)):
            conn.execute(sa.text("INSERT INTO user_values (user_id, tenant_id, attr, value_key, e164) "
                                 "VALUES ('u1', 't', :a, :v, :e)"), {"a": attr, "v": value, "e": e164})
    return blank_engine


def index_definition(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'ix_user_values_e164'")).scalar()
        else:
            sql = conn.execute(sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_user_values_e164'"))\
                .scalar()
    return str(sql or "")


def test_the_upgrade_makes_the_index_partial_and_keeps_every_value_findable(engine: sa.Engine) -> None:
    assert "where" not in index_definition(engine).lower()
    migrate_to(engine, AFTER)
    assert "e164 is not null" in index_definition(engine).lower()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM user_values WHERE user_id = 'u1'")).scalar() == 3
        found = conn.execute(sa.text("SELECT user_id FROM user_values WHERE tenant_id = 't' AND "
                                     "attr = 'phonenumbers.value' AND e164 IN ('+491701234567')")).all()
        assert found == [("u1",)]
        if engine.dialect.name == "sqlite":   # the look-up goes through the partial index
            plan = " ".join(str(r[3]) for r in conn.execute(sa.text(
                "EXPLAIN QUERY PLAN SELECT user_id FROM user_values WHERE tenant_id = 't' AND "
                "attr = 'phonenumbers.value' AND e164 IN ('+491701234567')")))
            assert "ix_user_values_e164" in plan


def test_the_downgrade_gives_the_full_index_back(engine: sa.Engine) -> None:
    migrate_to(engine, AFTER)
    migrate_to(engine, BEFORE, down=True)
    assert "where" not in index_definition(engine).lower()
    assert "ix_user_values_e164" in index_definition(engine)
