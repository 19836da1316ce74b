"""Console fixtures: the sign-in suite's ``console`` (a SignIn with cookies for plain http, the app around it, the
directory user admin@contoso.com) and helpers to sign a TestClient in with given roles."""

from __future__ import annotations

from typing import Any

from tests.auth.conftest import ADMIN, PASSWORD, Console, console, sign_in  # noqa: F401 - fixture re-exported
from tests.conftest import user_payload

__all__ = ["ADMIN", "PASSWORD", "Console", "console", "signed_in_as"]


def signed_in_as(services: Any, client: Any, tenant: str, user_name: str, roles: list[str]) -> str:
    """A directory user ``user_name`` of ``tenant`` in the built-in role groups that hold ``roles``, with a console
    password, signed in on ``client``; the user's id."""
    from tenantry.core.access import GRANTED_BY

    found = services.signin.users.find(tenant, "userName", user_name)
    user_id = found or str(services.scim.create(tenant, "User", user_payload(user_name))["id"])
    for role in roles:
        services.directory.add_role_group_member(tenant, GRANTED_BY[role], user_id)
    services.signin.set_password(tenant, user_name, PASSWORD)
    r = sign_in(client, tenant, user_name, PASSWORD)
    assert r.status_code == 303, r.text
    return user_id
