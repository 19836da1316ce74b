"""Migration 0007_username_key re-keys existing users by the look-alike-proof rule, never failing, never dropping."""

from __future__ import annotations

import logging
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tenantry.core.db import Database
from tenantry.directory.scim_filter import user_name_key
from tenantry.directory.scim_store import ScimStore
from tests.conftest import migrate_to

BEFORE = "0005"
AFTER = "0007_username_key"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture()
def engine(blank_engine: sa.Engine) -> sa.Engine:
    """A new database of either backend, migrated to the revision before this one."""
    migrate_to(blank_engine, BEFORE)
    return blank_engine


def old_key(user_name: str) -> str:
    """The rule before issue #9: NFC and lower case."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", user_name).lower())


def add_users(eng: sa.Engine, tenant: str, names: list[str]) -> dict[str, str]:
    """Users as the old code stored them, oldest first; returns userName → id."""
    ids = {}
    with eng.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES (:t, :t, :c)"), {"t": tenant, "c": T0})
        for i, name in enumerate(names):
            uid = f"{tenant}-u{i}"
            ids[name] = uid
            when = T0 + timedelta(minutes=i)
            conn.execute(sa.text(
                "INSERT INTO users (id, tenant_id, user_name, user_name_key, active, created, last_modified, "
                "version, resource) VALUES (:id, :t, :n, :k, :a, :c, :c, 1, :r)"),
                {"id": uid, "t": tenant, "n": name, "k": old_key(name), "a": True, "c": when,
                 "r": '{"userName": "x"}'})
    return ids


def keys(eng: sa.Engine, tenant: str) -> dict[str, str]:
    with eng.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, user_name_key FROM users WHERE tenant_id = :t"), {"t": tenant})
        return dict(rows.all())


def test_migration_rekeys_lookalikes_and_keeps_every_user_when_they_collide(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    names = [
        "alice@contoso.com",        # older: keeps "alice@contoso.com"
        "ａｌｉｃｅ@contoso.com",    # newer look-alike: keeps its old key, warned about
        "Bob@contoso.com ",         # alone: trimmed key
        "ca\u200brol@contoso.com",  # older, no one holds "carol@…" yet: gets it
        "Carol@contoso.com ",       # newer: keeps its old key
        " dave@contoso.com",        # older, but …
        "dave@contoso.com",         # … the newer already holds the key and keeps it
        "erin\u00ad@contoso.com",   # alone: soft hyphen goes
    ]
    ids = add_users(engine, "t1", names)
    other_tenant = add_users(engine, "t2", ["ａｌｉｃｅ@contoso.com"])
    with caplog.at_level(logging.WARNING, logger="tenantry.migrations"):
        migrate_to(engine, AFTER)

    got = keys(engine, "t1")
    assert len(got) == len(names), "no user may be dropped"
    assert got[ids["alice@contoso.com"]] == "alice@contoso.com"
    assert got[ids["ａｌｉｃｅ@contoso.com"]] == old_key("ａｌｉｃｅ@contoso.com")
    assert got[ids["Bob@contoso.com "]] == "bob@contoso.com"
    assert got[ids["ca\u200brol@contoso.com"]] == "carol@contoso.com"
    assert got[ids["Carol@contoso.com "]] == "carol@contoso.com "
    assert got[ids["dave@contoso.com"]] == "dave@contoso.com"
    assert got[ids[" dave@contoso.com"]] == " dave@contoso.com"
    assert got[ids["erin\u00ad@contoso.com"]] == "erin@contoso.com"
    # Tenants are apart: t2's only user gets the plain key although t1 has an alice.
    assert keys(engine, "t2") == {other_tenant["ａｌｉｃｅ@contoso.com"]: "alice@contoso.com"}
    # The new keys are what the application computes.
    for name in ("alice@contoso.com", "Bob@contoso.com ", "erin\u00ad@contoso.com"):
        assert got[ids[name]] == user_name_key(name)

    warned = " ".join(r.getMessage() for r in caplog.records)
    for loser in ("ａｌｉｃｅ@contoso.com", "Carol@contoso.com ", " dave@contoso.com"):
        assert ids[loser] in warned, warned
    assert len(caplog.records) == 3
    with engine.connect() as conn:
        names_after = set(conn.execute(sa.text("SELECT user_name FROM users WHERE tenant_id = 't1'")).scalars())
    assert names_after == set(names), "userNames themselves are never changed by the migration"


def test_after_the_migration_a_lookalike_lookup_finds_the_existing_user(engine: sa.Engine) -> None:
    ids = add_users(engine, "t1", ["Bob@contoso.com ", "ca\u200brol@contoso.com"])
    migrate_to(engine, AFTER)
    db = Database(engine.url.render_as_string(hide_password=False))
    try:
        store = ScimStore(db)
        for flt, who in (('userName eq "bob@contoso.com"', "Bob@contoso.com "),
                         ('userName eq "ＣＡＲＯＬ@contoso.com"', "ca\u200brol@contoso.com")):
            page = store.search("t1", "User", filter_text=flt)
            assert [d["id"] for d in page.resources] == [ids[who]], flt
    finally:
        db.dispose()
