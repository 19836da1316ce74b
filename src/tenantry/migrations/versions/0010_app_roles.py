"""provisioning app roles (issue #10 item 13)

Revision ID: 0010_app_roles
Revises: 0009_phone_keys
Create Date: 2026-12-01

Apps get roles (``provisioning_app_roles``); an assignment names one by id (``role_id``) instead of carrying a
free-text role name; what each provisioned user's roles were when last sent is kept (``provisioned_objects.
roles``) so a role change is noticed by the next incremental cycle.

Existing assignments keep their role: "Default Access" and "User" (any case) become the built-in roles' ids;
every other name becomes a role of that app (display name as it was, no value, for users and groups,
enabled). Names of one app that differ only in case become one role (the name that sorts first), and a
warning names them: the old code treated them as two roles no app could tell apart. The downgrade writes each
assignment's role name back.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0010_app_roles'
down_revision: str | None = '0009_phone_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tenantry.migrations")

# Copied from provisioning.roles (a migration keeps doing what it did when it was written).
DEFAULT_ACCESS_ID = "00000000-0000-0000-0000-000000000000"
USER_ROLE_ID = "18d14569-c3bd-439b-9a66-3a2aee01d14f"
BUILT_IN = {"default access": DEFAULT_ACCESS_ID, "user": USER_ROLE_ID}
BUILT_IN_NAMES = {DEFAULT_ACCESS_ID: "Default Access", USER_ROLE_ID: "User"}

_roles = sa.table(
    "provisioning_app_roles",
    sa.column("id", sa.String), sa.column("app_id", sa.String), sa.column("display_name", sa.String),
    sa.column("value", sa.String), sa.column("description", sa.Text), sa.column("allowed_member_types", sa.String),
    sa.column("enabled", sa.Boolean), sa.column("created_at", sa.DateTime(timezone=True)),
)
_assignments = sa.table(
    "provisioning_assignments",
    sa.column("app_id", sa.String), sa.column("principal_type", sa.String), sa.column("principal_id", sa.String),
    sa.column("role", sa.String), sa.column("role_id", sa.String),
)


def upgrade() -> None:
    op.create_table('provisioning_app_roles',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=36), nullable=False),
    sa.Column('display_name', sa.String(length=128), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('allowed_member_types', sa.String(length=16), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['app_id'], ['provisioning_apps.id'], name=op.f('fk_provisioning_app_roles_app_id_provisioning_apps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provisioning_app_roles')),
    sa.UniqueConstraint('app_id', 'display_name', name=op.f('uq_provisioning_app_roles_app_id_display_name')),
    sa.UniqueConstraint('app_id', 'value', name=op.f('uq_provisioning_app_roles_app_id_value'))
    )
    with op.batch_alter_table('provisioning_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role_id', sa.String(length=36), nullable=True))
    with op.batch_alter_table('provisioned_objects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('roles', sa.Text(), nullable=True))

    conn = op.get_bind()
    rows = conn.execute(sa.select(_assignments.c.app_id, _assignments.c.role).distinct()).all()
    names: dict[tuple[str, str], list[str]] = {}
    for app_id, role in rows:
        if role.strip().casefold() not in BUILT_IN:
            names.setdefault((app_id, role.strip().casefold()), []).append(role)
    now = datetime.now(UTC)
    ids: dict[tuple[str, str], str] = {}
    for (app_id, _folded), spellings in sorted(names.items()):
        spellings.sort()
        role_id = str(uuid.uuid4())
        conn.execute(_roles.insert().values(id=role_id, app_id=app_id, display_name=spellings[0].strip(), value=None,
                                            description=None, allowed_member_types="User,Group", enabled=True,
                                            created_at=now))
        for spelling in spellings:
            ids[(app_id, spelling)] = role_id
        if len(spellings) > 1:
            log.warning("provisioning app %s: the assignment roles %s differ only in case and are now one role, "
                        "%r", app_id, ", ".join(repr(s) for s in spellings), spellings[0].strip())
    for app_id, role in rows:
        role_id = BUILT_IN.get(role.strip().casefold()) or ids[(app_id, role)]
        conn.execute(_assignments.update().where(_assignments.c.app_id == app_id, _assignments.c.role == role)
                     .values(role_id=role_id))

    with op.batch_alter_table('provisioning_assignments', schema=None) as batch_op:
        batch_op.alter_column('role_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column('role')


def downgrade() -> None:
    with op.batch_alter_table('provisioning_assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=128), nullable=True))
    conn = op.get_bind()
    names = {**BUILT_IN_NAMES, **dict(conn.execute(sa.select(_roles.c.id, _roles.c.display_name)).all())}
    for role_id, name in names.items():
        conn.execute(_assignments.update().where(_assignments.c.role_id == role_id).values(role=name))
    conn.execute(_assignments.update().where(_assignments.c.role.is_(None)).values(role=_assignments.c.role_id))
    with op.batch_alter_table('provisioning_assignments', schema=None) as batch_op:
        batch_op.alter_column('role', existing_type=sa.String(length=128), nullable=False)
        batch_op.drop_column('role_id')
    with op.batch_alter_table('provisioned_objects', schema=None) as batch_op:
        batch_op.drop_column('roles')
    op.drop_table('provisioning_app_roles')
