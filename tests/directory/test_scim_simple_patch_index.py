"""A simple PATCH re-indexes only the attributes it set (UserRepository._reindex_set), and the user's indexed values
afterwards are exactly those of a full re-index of the patched resource, for every simple attribute, on both
databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from tenantry.app import Services
from tenantry.directory.models import UserValue
from tenantry.directory.scim_repositories import index_rows
from tenantry.protocols.scim.normalize import PATCH_OP
from tenantry.protocols.scim.simple_patch import _targets
from tests.protocols.test_scim_simple_patch import STORED


def full_user() -> dict[str, Any]:
    """The simple-PATCH suite's user, holding every simple attribute, under a userName of its own."""
    return {**STORED, "userName": f"kim.{uuid.uuid4().hex[:8]}@contoso.com"}


def stored_rows(services: Services, user_id: str) -> list[tuple[Any, ...]]:
    with services.db.session() as session:
        rows = session.execute(select(UserValue.attr, UserValue.type_key, UserValue.entry, UserValue.value_key,
                                      UserValue.e164).where(UserValue.user_id == user_id)).all()
    return sorted(tuple(r) for r in rows)


def expected_rows(services: Services, doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted((r["attr"], r["type_key"], r["entry"], r["value_key"], r["e164"])
                  for r in index_rows(doc, services.scim.region))


@pytest.mark.parametrize("path", sorted(_targets("User")))
def test_the_indexed_values_after_a_simple_patch_are_a_full_reindex_of_the_result(
        backend: Services, tenant: str, path: str) -> None:
    created = backend.scim.create(tenant, "User", full_user())
    parent, key, kind, _ = _targets("User")[path]
    value: Any = False if kind is bool else f"Ünïcode {path} ＶＡＬＵＥ"   # folded for the index
    if key == "userName":
        value = f"renamed.{uuid.uuid4().hex[:8]}@contoso.com"
    other = "nickName" if path.endswith("title") else "title"   # and a second attribute in the same PATCH
    patched = backend.scim.patch(tenant, "User", created["id"], {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value},
                                              {"op": "replace", "path": other, "value": "Lead"}]})
    holder: Any = patched
    for step in parent:
        holder = holder[step]
    assert holder[key] == value
    doc = {k: v for k, v in patched.items() if k not in ("id", "meta", "groups")}
    assert stored_rows(backend, created["id"]) == expected_rows(backend, doc)
