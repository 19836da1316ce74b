"""userName keys: NFKC, format characters removed, trimmed, case-folded (issue #9)

Revision ID: 0007_username_key
Revises: 0006_jobs
Create Date: 2026-11-29

Recomputes ``users.user_name_key`` with the look-alike-proof rule of ``directory.scim_filter.user_name_key``
(copied here: a migration must keep doing what it did when it was written). userName has no
``user_values`` rows (it lives in its own column), so nothing else is re-keyed.

Two existing users whose names now share a key (say "alice@contoso.com" and "ａｌｉｃｅ@contoso.com") are
never merged, changed otherwise or dropped, and the migration never fails on them: the one that already
holds the key keeps it, else the older one (``created``, then id) gets it; the other keeps its old key, so
both stay reachable as before, and a warning names both for an administrator to rename one.
"""
from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0007_username_key'
down_revision: str | None = '0006_jobs'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tenantry.migrations")

_users = sa.table(
    "users",
    sa.column("id", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("user_name", sa.String),
    sa.column("user_name_key", sa.String),
    sa.column("created", sa.DateTime(timezone=True)),
)


# Default-ignorable code points (Unicode's Default_Ignorable_Code_Point) that are not of category Cf: the
# combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation
# selectors. Like format characters, they draw nothing.
_IGNORABLE = frozenset({0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810),
                        *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)})


def _key(value: str) -> str:
    if value.isascii():
        return value.strip().lower()
    value = unicodedata.normalize("NFKC", value)
    value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf" and ord(ch) not in _IGNORABLE).strip()
    return unicodedata.normalize("NFKC", value.lower())


def plan(rows: Sequence[Any]) -> tuple[dict[str, str], list[tuple[Any, Any]]]:
    """(user id → new key for the users whose key changes, [(holder, left with its old key), …]).

    ``rows`` have ``id, tenant_id, user_name, user_name_key`` and are ordered oldest first.
    """
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.tenant_id, _key(row.user_name) or row.user_name_key), []).append(row)
    changes: dict[str, str] = {}
    clashes: list[tuple[Any, Any]] = []
    for (_tenant, key), members in groups.items():
        holder = next((r for r in members if r.user_name_key == key), members[0])
        if holder.user_name_key != key:
            changes[holder.id] = key
        clashes.extend((holder, other) for other in members if other is not holder)
    # A kept old key can (in theory) be another group's new key: then that group keeps its old keys too.
    while True:
        final: dict[tuple[str, str], list[str]] = {}
        for row in rows:
            final.setdefault((row.tenant_id, changes.get(row.id, row.user_name_key)), []).append(row.id)
        dup = [ids for ids in final.values() if len(ids) > 1]
        undone = [changes.pop(user_id) for ids in dup for user_id in ids if user_id in changes]
        if not dup or not undone:
            return changes, clashes


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_users.c.id, _users.c.tenant_id, _users.c.user_name, _users.c.user_name_key)
        .order_by(_users.c.tenant_id, _users.c.created, _users.c.id)
    ).all()
    changes, clashes = plan(rows)
    for holder, other in clashes:
        log.warning(
            "tenant %s: userName %r (user %s) and %r (user %s) are look-alikes under the new userName rule; "
            "user %s keeps its old key until one of them is renamed",
            holder.tenant_id, holder.user_name, holder.id, other.user_name, other.id, other.id,
        )
    # Two steps, so that no UPDATE meets the unique (tenant_id, user_name_key) constraint half-way through a
    # swap ("A" taking "a" while "a" is still moving away).
    stmt = sa.update(_users).where(_users.c.id == sa.bindparam("uid")).values(user_name_key=sa.bindparam("k"))
    if changes:
        conn.execute(stmt, [{"uid": uid, "k": f"#0007#{uid}"} for uid in changes])
        conn.execute(stmt, [{"uid": uid, "k": key} for uid, key in changes.items()])


def downgrade() -> None:
    # Nothing to undo: the new keys are a coarser form of the old ones, unique as they are, and the older
    # code re-keys a user whenever it writes it.
    pass
