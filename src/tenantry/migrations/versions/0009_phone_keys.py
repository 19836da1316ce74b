"""Directory phone numbers that are not valid by their plan get a digit key (issue #10, item 3)

Revision ID: 0009_phone_keys
Revises: 0008_feed_overlap
Create Date: 2026-11-30

``user_values.e164`` held the E.164 form of a phone number, or nothing where phonenumbers called the number
impossible ("+1 123 456 789"), so such a user could never be mapped by mobile. The column now holds the
number's look-up key (``protocols.phones.phone_key``): E.164, else its digits with a leading "+" kept. This
fills in the digit key where the column is empty; the rule is copied here, as it was when this was written.
The stored value (``value_key``) is the number as sent, case-folded: folding changes no digit.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_phone_keys'
down_revision: str | None = '0008_feed_overlap'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIGITS_ONLY = re.compile(r"^\+?[\d\s().\-/\u00a0]+$")

_values = sa.table("user_values", sa.column("id", sa.Integer), sa.column("attr", sa.String),
                   sa.column("value_key", sa.String), sa.column("e164", sa.String))


def digit_key(raw: str) -> str | None:
    text = raw.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";", 1)[0]
    if text.startswith("00"):
        text = "+" + text[2:]
    if not _DIGITS_ONLY.match(text):
        return None
    digits = "".join(c for c in text if c.isdigit())
    if not 5 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def upgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_values.c.id, _values.c.value_key).where(
        _values.c.attr == "phonenumbers.value", _values.c.e164.is_(None))).all()
    keyed = [{"row_id": row_id, "key": key} for row_id, value in rows if (key := digit_key(value))]
    if keyed:
        conn.execute(sa.update(_values).where(_values.c.id == sa.bindparam("row_id"))
                     .values(e164=sa.bindparam("key")), keyed)


def downgrade() -> None:
    # Digit keys are the ones that are no E.164 number: E.164 keys start with "+" and are possible numbers,
    # which cannot be told apart here without phonenumbers; leaving them is harmless to the older code (a
    # look-up by E.164 never asks for a digit key that is not also the E.164 form of the same digits).
    pass
