"""A tenant's first administrator: the directory user its first admin token is issued to (issue #12).

A new tenant has no users yet (its identity provider has not pushed any), but somebody must administer it:
first run (``app.bootstrap``), ``POST /api/v1/tenants`` and ``tenantry tenant create`` create the user
``tenantry-admin`` in every built-in role group (not Mailbox Import Export, which seed 000 leaves to an
administrator's decision) and issue its first admin token. docs/security.md: give named administrators their
roles, then deactivate it (``tenantry user deactivate tenantry-admin``); its tokens stop working with it.
"""

from __future__ import annotations

from tenantry.directory.catalogue import DEFAULT_ROLE_GROUPS
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService

FIRST_ADMIN = "tenantry-admin"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def ensure_first_admin(store: ScimStore, directory: DirectoryService, tenant: str) -> str:
    """The id of the tenant's first administrator, created (with the built-in role groups' roles) if missing.

    Idempotent: an existing ``tenantry-admin`` is kept as it is (an administrator may have changed its roles or
    deactivated it), and its admin tokens issued before administrators had identities are given to it.
    """
    directory.ensure_builtin_role_groups(tenant)
    found = directory.find_users_by_email(tenant, [FIRST_ADMIN]).get(FIRST_ADMIN, [])
    existing = next((u for u in found if u.user_name.lower() == FIRST_ADMIN), None)
    if existing is not None:
        user_id = existing.id
    else:
        user_id = str(store.create(tenant, "User", {
            "schemas": [USER_SCHEMA], "userName": FIRST_ADMIN, "displayName": "Tenantry first administrator",
            "active": True})["id"])
        for group in DEFAULT_ROLE_GROUPS:
            directory.add_role_group_member(tenant, group, user_id)
    directory.adopt_admin_tokens(tenant, user_id)
    return user_id
