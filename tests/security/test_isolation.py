"""Tenant isolation, generated from the route table of ``create_app`` (issue #9), on both backends.

Tenant A (the victim) owns one of everything: user, group, domain, licence, role-group membership, mailbox
and item, hold, retention policy, case with custodian, connector and run, provisioning app and assignment.
Tenant B (the attacker) holds an admin token and a SCIM token, and a case, connector and app of its own.
For every APIRoute, ``CASES`` says how B calls it against A:

- ``across(w, ...)``: B's credential on A's tenant path (``{tenant_id}`` = A) with A's ids in the path and
  body. Expected: 403 on the admin API, 401 on SCIM endpoints (docs/security.md).
- ``inside(w, status, ...)``: B's credential on B's own tenant path, with A's ids in the path or the body.
  Expected: the status given (404 not_found mostly; never a 2xx that reaches A). A 2xx is allowed only where
  the route lists B's own data (``check`` then says what must hold, e.g. "found nothing").
- ``Probe(None, ...)``: routes without a tenant (``/api/v1/tenants``, ``/healthz``, SCIM discovery).

After each route's probes, A's objects are read back with A's own credentials (``snapshot``) and must be
exactly as before; and no answer to B may contain A's data (``A_SECRETS``).

A route that has no case fails ``test_every_route_has_an_isolation_case`` ("add an isolation case for
METHOD PATH"). To add one, write a few lines in ``CASES`` keyed by (METHOD, path template as FastAPI prints
it), e.g.::

    ("GET", "/api/v1/tenants/{tenant_id}/exports/{export_id}"): lambda w: [
        across(w, export_id=w.a.export),          # B's token, A's tenant and export → 403
        inside(w, 404, export_id=w.a.export),     # B's tenant, A's export id → 404
    ],

and, if the route reads an object A must own, create it in ``_world`` and read it in ``snapshot``. SCIM
routes are written once in ``SCIM_CASES`` (for ``/tenants/{tenant_id}/scim/v2``); the default-tenant prefix
``/scim/v2`` gets the same cases with B's token on the default tenant (401).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey

from tenantry.app import Services, create_app
from tenantry.archive.service import WHATSAPP_FOLDER, Delivery
from tenantry.protocols.s2s.actor import Recipient, mint_actor_token
from tenantry.protocols.s2s.assertion import CLIENT_ASSERTION_TYPE
from tenantry.protocols.s2s.certificates import certificate_der
from tenantry.trust.service import SERVICE_NAME
from tenantry.voice import tlscheck
from tests.conftest import admin_secret, as_admin, grant_import_role, group_payload, user_payload
from tests.protocols.s2s_support import certificate_now
from tests.security.routes import SCIM_PREFIXES, api_routes, fill, scim_suffix

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

# Values of A's objects that no answer to B may contain (ids are left out: B sends them itself, and an error
# may repeat what the caller sent).
A_SECRETS = ("alice.isolation@a-secret.example", "Alice Isolation Secret", "A Isolation Group",
             "A-ISOLATION-SUBJECT", "A Isolation Matter", "A Isolation Export", "A Isolation App",
             "a-isolation-secret.example", "A Isolation Hold", "A Isolation Policy", "a-iso.invalid",
             "A Isolation Role", "a-isolation-role", "A Isolation Partner", "A Isolation Site", "+14255550199")


@dataclasses.dataclass
class Tenant:
    tenant: str
    admin: dict[str, str]
    scim: dict[str, str]
    ids: dict[str, str]

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["ids"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclasses.dataclass
class World:
    client: TestClient
    backend: Services
    a: Tenant
    b: Tenant
    tmp: Path
    baseline: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Probe:
    """One request with B's credential. ``tenant`` fills ``{tenant_id}`` (None: the route has none)."""

    tenant: str | None
    params: Mapping[str, str]
    expect: frozenset[int] = frozenset()      # empty: refused as another tenant's credential (403 / SCIM 401)
    json: Any = None
    query: Mapping[str, str] | None = None
    content: bytes | None = None
    check: Callable[[Any], bool] | None = None  # what must hold of a 2xx answer (it lists B's own data)
    headers: Mapping[str, str] | None = None   # instead of B's admin token: B's partner's credential


def across(w: World, *, json: Any = None, query: Mapping[str, str] | None = None, content: bytes | None = None,
           **params: str) -> Probe:
    """B's credential on A's tenant path."""
    return Probe(w.a.tenant, params, frozenset(), json, query, content)


def inside(w: World, *status: int, json: Any = None, query: Mapping[str, str] | None = None,
           content: bytes | None = None, check: Callable[[Any], bool] | None = None, **params: str) -> Probe:
    """B's credential on B's own tenant path, carrying A's ids."""
    return Probe(w.b.tenant, params, frozenset(status), json, query, content, check)


def public(w: World, *status: int, **params: str) -> Probe:
    """A route without a credential of any tenant: B reads it on A's path; nothing of A may be in it."""
    return Probe(w.a.tenant, params, frozenset(status or (200,)))


_PROBE_CERTIFICATE = tlscheck.new_root_ca("B probe", days=1)[0].decode()
_PARTNER_MESSAGE = (b"From: b@b.example\r\nSubject: B probe\r\nDate: Mon, 30 Nov 2026 09:00:00 +0000\r\n"
                    b"Message-ID: <b-probe@b.example>\r\n\r\nprobe\r\n")


def _patch(value: str) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": value}]}


def _total_zero(key: str) -> Callable[[Any], bool]:
    return lambda r: r.json()[key] == 0


def _members_unresolved(r: Any) -> bool:
    return all("display" not in m and m["type"] == "User" for m in r.json()["members"])


def _bulk_all_404(r: Any) -> bool:
    return all(str(op["status"]) == "404" for op in r.json()["Operations"])


Case = Callable[[World], list[Probe]]

# -- SCIM (written for /tenants/{tenant_id}/scim/v2) ---------------------------------------------------------
_DISCOVERY_READS: dict[tuple[str, str], Case] = {
    ("GET", "/ServiceProviderConfig"): lambda w: [public(w)],
    ("GET", "/Schemas"): lambda w: [public(w)],
    ("GET", "/Schemas/{schema_id:path}"): lambda w: [public(w, schema_id="urn:ietf:params:scim:schemas:core:2.0:User")],
    ("GET", "/ResourceTypes"): lambda w: [public(w)],
    ("GET", "/ResourceTypes/{type_id}"): lambda w: [public(w, type_id="User")],
}
_DISCOVERY_WRITES: dict[tuple[str, str], Case] = {
    (method, suffix): (lambda w, p=params: [public(w, 405, **p)])
    for method in ("POST", "PUT", "PATCH", "DELETE")
    for suffix, params in (("/ServiceProviderConfig", {}), ("/Schemas", {}), ("/Schemas/{_id:path}", {"_id": "x"}),
                           ("/ResourceTypes", {}), ("/ResourceTypes/{_id}", {"_id": "User"}))
}
SCIM_CASES: dict[tuple[str, str], Case] = {
    **_DISCOVERY_READS,
    **_DISCOVERY_WRITES,
    ("GET", "/{endpoint:scim_endpoint}"): lambda w: [
        across(w, endpoint="Users"),
        inside(w, 200, endpoint="Users", query={"filter": f'id eq "{w.a.user}"'}, check=_total_zero("totalResults")),
        inside(w, 200, endpoint="Users", query={"filter": f'groups.value eq "{w.a.group}"'},
               check=_total_zero("totalResults")),
        inside(w, 200, endpoint="Groups", query={"filter": f'id eq "{w.a.group}"'},
               check=_total_zero("totalResults")),
    ],
    ("POST", "/{endpoint:scim_endpoint}/.search"): lambda w: [
        across(w, endpoint="Users", json={"schemas": [SEARCH]}),
        inside(w, 200, endpoint="Users", json={"schemas": [SEARCH], "filter": f'id eq "{w.a.user}"'},
               check=_total_zero("totalResults")),
    ],
    ("POST", "/.search"): lambda w: [
        across(w, json={"schemas": [SEARCH]}),
        inside(w, 200, json={"schemas": [SEARCH], "filter": f'id eq "{w.a.user}"'},
               check=_total_zero("totalResults")),
    ],
    ("POST", "/{endpoint:scim_endpoint}"): lambda w: [
        across(w, endpoint="Groups", json=group_payload(members=[{"value": w.a.user}])),
        # Kept as sent (an IdP may send members first), but never resolved to A's user or group.
        inside(w, 201, endpoint="Groups", json=group_payload(
            f"B probe {uuid.uuid4().hex[:6]}", members=[{"value": w.a.user}, {"value": w.a.group}]),
            check=_members_unresolved),
    ],
    ("GET", "/{endpoint:scim_endpoint}/{resource_id}"): lambda w: [
        across(w, endpoint="Users", resource_id=w.a.user),
        inside(w, 404, endpoint="Users", resource_id=w.a.user),
        inside(w, 404, endpoint="Groups", resource_id=w.a.group),
    ],
    ("PUT", "/{endpoint:scim_endpoint}/{resource_id}"): lambda w: [
        across(w, endpoint="Users", resource_id=w.a.user, json=user_payload("owned@b.example")),
        inside(w, 404, endpoint="Users", resource_id=w.a.user, json=user_payload("owned@b.example")),
        inside(w, 404, endpoint="Groups", resource_id=w.a.group, json=group_payload("Owned")),
    ],
    ("PATCH", "/{endpoint:scim_endpoint}/{resource_id}"): lambda w: [
        across(w, endpoint="Users", resource_id=w.a.user, json=_patch("Owned")),
        inside(w, 404, endpoint="Users", resource_id=w.a.user, json=_patch("Owned")),
        inside(w, 404, endpoint="Groups", resource_id=w.a.group, json=_patch("Owned")),
    ],
    ("DELETE", "/{endpoint:scim_endpoint}/{resource_id}"): lambda w: [
        across(w, endpoint="Users", resource_id=w.a.user),
        inside(w, 404, endpoint="Users", resource_id=w.a.user),
        inside(w, 404, endpoint="Groups", resource_id=w.a.group),
    ],
    ("POST", "/Bulk"): lambda w: [
        across(w, json={"schemas": [BULK], "Operations": []}),
        inside(w, 200, json={"schemas": [BULK], "Operations": [
            {"method": "PATCH", "path": f"/Users/{w.a.user}", "data": _patch("Owned")},
            {"method": "PUT", "path": f"/Groups/{w.a.group}", "data": group_payload("Owned")},
            {"method": "DELETE", "path": f"/Users/{w.a.user}"}]}, check=_bulk_all_404),
    ],
}


def _default_prefix(case: Case) -> Case:
    """The same route on ``/scim/v2`` (the default tenant): B's token is not the default tenant's → 401."""
    return lambda w: [dataclasses.replace(p, tenant=None) for p in case(w) if p.tenant != w.b.tenant]


_ADMIN = "/api/v1/tenants/{tenant_id}"
CASES: dict[tuple[str, str], Case] = {
    **{(m, SCIM_PREFIXES[0] + s): c for (m, s), c in SCIM_CASES.items()},
    **{(m, SCIM_PREFIXES[1] + s): _default_prefix(c) for (m, s), c in SCIM_CASES.items()},
    ("GET", "/healthz"): lambda w: [Probe(None, {}, frozenset({200}))],
    # -- the installation -------------------------------------------------------------------------------------
    ("GET", "/api/v1/catalogue"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/api/v1/tenants"): lambda w: [
        Probe(None, {}, frozenset({200}), check=lambda r: [t["id"] for t in r.json()] == [w.b.tenant])],
    ("POST", "/api/v1/tenants"): lambda w: [Probe(None, {}, frozenset({403}), json={"id": "b-made-this"})],
    # -- directory ------------------------------------------------------------------------------------------
    ("GET", _ADMIN + "/users"): lambda w: [
        across(w), inside(w, 200, query={"filter": f'id eq "{w.a.user}"'}, check=_total_zero("total"))],
    ("GET", _ADMIN + "/users/{user_id}"): lambda w: [across(w, user_id=w.a.user), inside(w, 404, user_id=w.a.user)],
    ("GET", _ADMIN + "/groups"): lambda w: [
        across(w), inside(w, 200, query={"filter": f'id eq "{w.a.group}"'}, check=_total_zero("total"))],
    ("GET", _ADMIN + "/domains"): lambda w: [across(w)],
    ("POST", _ADMIN + "/domains"): lambda w: [across(w, json={"name": "b-probe.example"})],
    ("GET", _ADMIN + "/users/{user_id}/licences"): lambda w: [
        across(w, user_id=w.a.user), inside(w, 404, user_id=w.a.user)],
    ("POST", _ADMIN + "/users/{user_id}/licences"): lambda w: [
        across(w, user_id=w.a.user, json={"sku": "E3"}), inside(w, 404, user_id=w.a.user, json={"sku": "E3"})],
    ("GET", _ADMIN + "/role-groups"): lambda w: [across(w)],
    ("GET", _ADMIN + "/scim-log"): lambda w: [
        across(w), across(w, query={"resource_id": w.a.user}),
        inside(w, 200, query={"resource_id": w.a.user}, check=lambda r: r.json() == []),
        inside(w, 200, query={"name": "Alice Isolation Secret"}, check=lambda r: r.json() == []),
        inside(w, 200, check=lambda r: all(e["resource_id"] != w.a.user for e in r.json()))],
    ("POST", _ADMIN + "/role-groups"): lambda w: [across(w, json={"name": "B probe", "roles": []})],
    ("POST", _ADMIN + "/role-groups/{name}/members"): lambda w: [
        across(w, name="Compliance Management", json={"user_id": w.a.user}),
        inside(w, 404, name="Compliance Management", json={"user_id": w.a.user})],
    # -- application accounts (mail users, roles assigned directly) -------------------------------------------
    ("POST", _ADMIN + "/mail-users"): lambda w: [
        across(w, json={"name": "B probe", "address": "probe@a-isolation-secret.example"}),
        inside(w, 400, json={"name": "B probe", "address": "probe@a-isolation-secret.example"}),  # A's domain
        inside(w, 400, json={"name": "B probe", "address": "alice.isolation@a-secret.example"})],
    ("PATCH", _ADMIN + "/users/{user_id}/hidden"): lambda w: [
        across(w, user_id=w.a.user, json={"hidden": True}), inside(w, 404, user_id=w.a.user, json={"hidden": True})],
    ("GET", _ADMIN + "/role-assignments"): lambda w: [
        across(w), across(w, query={"user_id": w.a.user}), inside(w, 404, query={"user_id": w.a.user}),
        inside(w, 200, check=lambda r: all(x["id"] != w.a.assignment for x in r.json()))],
    ("POST", _ADMIN + "/role-assignments"): lambda w: [
        across(w, json={"user_id": w.a.user, "role": "ArchiveApplication"}),
        inside(w, 404, json={"user_id": w.a.user, "role": "ArchiveApplication"})],
    ("DELETE", _ADMIN + "/role-assignments/{assignment_id}"): lambda w: [
        across(w, assignment_id=w.a.assignment), inside(w, 404, assignment_id=w.a.assignment)],
    # -- connectors and mailboxes ---------------------------------------------------------------------------------
    ("GET", _ADMIN + "/connectors"): lambda w: [across(w)],
    ("POST", _ADMIN + "/connectors"): lambda w: [
        across(w, json=_connector(w.a.user)),
        inside(w, 422, json=_connector(w.a.user))],   # a body may not name who creates it (issue #12)
    ("GET", _ADMIN + "/connectors/{connector}"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector),
        inside(w, 404, connector="A Isolation Export")],
    ("PATCH", _ADMIN + "/connectors/{connector}"): lambda w: [
        across(w, connector=w.a.connector, json={"overlap_hours": 96}),
        inside(w, 404, connector=w.a.connector, json={"overlap_hours": 96})],
    ("PUT", _ADMIN + "/connectors/{connector}/mapping"): lambda w: [
        across(w, connector=w.a.connector, content=b"phone,email\n"),
        inside(w, 404, connector=w.a.connector, content=b"phone,email\n")],
    ("POST", _ADMIN + "/connectors/{connector}/consent"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("GET", _ADMIN + "/connectors/{connector}/review"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("POST", _ADMIN + "/connectors/{connector}/enable"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("POST", _ADMIN + "/connectors/{connector}/disable"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("POST", _ADMIN + "/connectors/{connector}/exports"): lambda w: [
        across(w, connector=w.a.connector, query={"owner": w.a.user, "filename": "x.txt"}, content=b"x"),
        inside(w, 400, 404, connector=w.a.connector, query={"owner": w.a.user, "filename": "x.txt"}, content=b"x"),
        inside(w, 400, connector=w.b.connector, query={"owner": w.a.user, "filename": "x.txt"}, content=b"x")],
    ("POST", _ADMIN + "/connectors/{connector}/runs"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("GET", _ADMIN + "/connectors/{connector}/runs"): lambda w: [
        across(w, connector=w.a.connector), inside(w, 404, connector=w.a.connector)],
    ("GET", _ADMIN + "/runs/{run_id}"): lambda w: [across(w, run_id=w.a.run), inside(w, 404, run_id=w.a.run)],
    ("GET", _ADMIN + "/mailboxes"): lambda w: [across(w)],
    ("GET", _ADMIN + "/mailboxes/{user_id}/items"): lambda w: [
        across(w, user_id=w.a.user), inside(w, 404, user_id=w.a.user)],
    ("GET", _ADMIN + "/items/{item_id}/raw"): lambda w: [across(w, item_id=w.a.item), inside(w, 404, item_id=w.a.item)],
    ("GET", _ADMIN + "/mailboxes/{user_id}/export.mbox"): lambda w: [
        across(w, user_id=w.a.user), inside(w, 404, user_id=w.a.user)],
    # -- compliance --------------------------------------------------------------------------------------------
    ("GET", _ADMIN + "/holds"): lambda w: [across(w)],
    ("POST", _ADMIN + "/holds"): lambda w: [
        across(w, json={"name": "B", "user_id": w.a.user}),
        inside(w, 404, json={"name": "B", "user_id": w.a.user}),
        inside(w, 404, json={"name": "B", "case_id": w.a.case})],
    ("POST", _ADMIN + "/holds/{hold_id}/release"): lambda w: [
        across(w, hold_id=w.a.hold, json={}), inside(w, 404, hold_id=w.a.hold, json={})],
    ("GET", _ADMIN + "/retention-policies"): lambda w: [across(w)],
    ("POST", _ADMIN + "/retention-policies"): lambda w: [
        across(w, json={"name": "B", "delete_after_days": 1}),
        inside(w, 404, json={"name": "B", "delete_after_days": 1, "users": [w.a.user]})],
    ("POST", _ADMIN + "/retention/apply"): lambda w: [across(w)],
    ("POST", _ADMIN + "/items/delete"): lambda w: [
        across(w, json={"item_ids": [int(w.a.item)]}),
        inside(w, 404, json={"item_ids": [int(w.a.item)]})],
    ("POST", _ADMIN + "/cases"): lambda w: [across(w, json={"name": "B"})],
    ("POST", _ADMIN + "/cases/{case}/custodians"): lambda w: [
        across(w, case=w.a.case, json={"users": [w.a.user]}),
        inside(w, 404, case=w.a.case, json={"users": [w.b.user]}),
        inside(w, 404, case=w.b.case, json={"users": [w.a.user]})],
    ("POST", _ADMIN + "/cases/{case}/search"): lambda w: [
        across(w, case=w.a.case, json={"query": "merger"}),
        inside(w, 404, case=w.a.case, json={"query": "merger"}),
        inside(w, 404, case="A Isolation Matter", json={"query": "merger"})],
    ("POST", _ADMIN + "/cases/{case}/export"): lambda w: [
        across(w, case=w.a.case, json={"query": "merger"}),
        inside(w, 404, case=w.a.case, json={"query": "merger"})],
    ("GET", _ADMIN + "/cases/{case}/exports"): lambda w: [
        across(w, case=w.a.case), inside(w, 404, case=w.a.case),
        inside(w, 200, case=w.b.case, check=lambda r: all(e["id"] != w.a.export for e in r.json()))],
    **{(m, _ADMIN + "/cases/{case}/exports/{export_id}" + s): (lambda w: [
        across(w, case=w.a.case, export_id=w.a.export), inside(w, 404, case=w.a.case, export_id=w.a.export),
        inside(w, 404, case=w.b.case, export_id=w.a.export)])
       for m, s in (("GET", ""), ("GET", "/download"), ("DELETE", ""))},
    ("GET", _ADMIN + "/jobs"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(j["id"] != w.a.job for j in r.json()))],
    ("GET", _ADMIN + "/jobs/{job_id}"): lambda w: [across(w, job_id=w.a.job), inside(w, 404, job_id=w.a.job)],
    ("POST", _ADMIN + "/search"): lambda w: [
        across(w, json={"query": "merger"}),
        inside(w, 404, json={"query": "merger", "users": [w.a.user]})],
    ("GET", _ADMIN + "/audit"): lambda w: [across(w)],
    ("GET", _ADMIN + "/verify"): lambda w: [across(w)],
    # -- provisioning ---------------------------------------------------------------------------------------------
    ("GET", _ADMIN + "/provisioning/apps"): lambda w: [across(w)],
    ("POST", _ADMIN + "/provisioning/apps"): lambda w: [
        across(w, json={"name": "B", "tenant_url": "https://b.invalid/scim/v2", "token": "t" * 20})],
    **{(m, _ADMIN + "/provisioning/apps/{app}" + s): (lambda w, b=body: [
        across(w, app=w.a.app, json=b), inside(w, 404, app=w.a.app, json=b),
        inside(w, 404, app="A Isolation App", json=b)])
       for m, s, body in (("GET", "", None), ("PATCH", "", {"notification_email": "b@b.example"}),
                          ("POST", "/test-connection", None), ("GET", "/config", None), ("PATCH", "/config", {}),
                          ("GET", "/scope", None), ("POST", "/start", None), ("POST", "/stop", None),
                          ("POST", "/restart", None), ("POST", "/run", {"allow_deletions": False}))},
    ("POST", _ADMIN + "/provisioning/apps/{app}/assignments"): lambda w: [
        across(w, app=w.a.app, json={"principal_id": w.a.user}),
        inside(w, 404, app=w.a.app, json={"principal_id": w.b.user}),
        inside(w, 404, app=w.b.app, json={"principal_id": w.a.user}),
        inside(w, 404, app=w.b.app, json={"principal_type": "Group", "principal_id": w.a.group})],
    ("DELETE", _ADMIN + "/provisioning/apps/{app}/assignments/{principal_type}/{principal_id}"): lambda w: [
        across(w, app=w.a.app, principal_type="User", principal_id=w.a.user),
        inside(w, 404, app=w.a.app, principal_type="User", principal_id=w.a.user),
        inside(w, 404, app=w.b.app, principal_type="User", principal_id=w.a.user)],
    ("POST", _ADMIN + "/provisioning/apps/{app}/provision-on-demand"): lambda w: [
        across(w, app=w.a.app, json={"user_id": w.a.user}),
        inside(w, 404, app=w.a.app, json={"user_id": w.a.user}),
        inside(w, 404, app=w.b.app, json={"user_id": w.a.user})],
    ("GET", _ADMIN + "/provisioning/apps/{app}/roles"): lambda w: [
        across(w, app=w.a.app), inside(w, 404, app=w.a.app), inside(w, 404, app="A Isolation App"),
        inside(w, 200, app=w.b.app, check=lambda r: all(x["id"] != w.a.role for x in r.json()))],
    ("POST", _ADMIN + "/provisioning/apps/{app}/roles"): lambda w: [
        across(w, app=w.a.app, json={"display_name": "B probe"}),
        inside(w, 404, app=w.a.app, json={"display_name": "B probe"})],
    **{(m, _ADMIN + "/provisioning/apps/{app}/roles/{role}"): (lambda w, b=body: [
        across(w, app=w.a.app, role=w.a.role, json=b), inside(w, 404, app=w.a.app, role=w.a.role, json=b),
        inside(w, 404, app=w.b.app, role=w.a.role, json=b),              # A's role id is no role of B's app
        inside(w, 404, app=w.b.app, role="A Isolation Role", json=b)])
       for m, body in (("PATCH", {"enabled": False}), ("DELETE", None))},
    ("GET", _ADMIN + "/provisioning/apps/{app}/logs"): lambda w: [
        across(w, app=w.a.app), inside(w, 404, app=w.a.app),
        inside(w, 200, app=w.b.app, query={"user": w.a.user}, check=lambda r: r.json() == [])],
    # -- trust (partner applications, authorisation certificates, service principals) ---------------------------
    ("GET", _ADMIN + "/trust/partner-apps"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(p["id"] != w.a.partner for p in r.json()))],
    ("POST", _ADMIN + "/trust/partner-apps"): lambda w: [
        across(w, json={"name": "B probe", "application_id": "33333333-3333-3333-3333-333333333333"}),
        inside(w, 404, json={"name": "B linked", "application_id": "44444444-4444-4444-4444-444444444444",
                             "linked_account": w.a.user})],      # A's user is no account of B's
    **{(m, _ADMIN + "/trust/partner-apps/{partner}" + s): (lambda w, b=body: [
        across(w, partner=w.a.partner, json=b), inside(w, 404, partner=w.a.partner, json=b),
        inside(w, 404, partner="A Isolation Partner", json=b)])
       for m, s, body in (("GET", "", None), ("DELETE", "", None), ("POST", "/enable", None),
                          ("POST", "/disable", None), ("GET", "/service-principal", None),
                          ("POST", "/service-principal/keys", {"value": "AAAA"}))},
    ("DELETE", _ADMIN + "/trust/partner-apps/{partner}/service-principal/keys/{key_id}"): lambda w: [
        across(w, partner=w.a.partner, key_id=w.a.sp_key),
        inside(w, 404, partner=w.a.partner, key_id=w.a.sp_key),
        inside(w, 404, partner=w.b.partner, key_id=w.a.sp_key)],     # A's key is no key of B's partner
    ("GET", _ADMIN + "/trust/auth-config"): lambda w: [
        across(w), inside(w, 200, check=lambda r: r.json()["realm"] != w.a.realm)],
    ("GET", _ADMIN + "/trust/auth-config/certificate"): lambda w: [across(w)],
    ("POST", _ADMIN + "/trust/auth-config/publish-next"): lambda w: [across(w, json={})],
    ("POST", _ADMIN + "/trust/auth-config/switch"): lambda w: [across(w, json={"force": True})],
    ("POST", _ADMIN + "/trust/auth-config/retire-previous"): lambda w: [across(w)],
    ("GET", _ADMIN + "/trust/check"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(p["partner"] != "A Isolation Partner"
                                                       for p in r.json()["partners"]))],
    # -- the partner endpoints: B's partner's tokens at A's realm are nobody's; in B's realm A's users are unknown
    **{(m, "/trust/{realm}" + doc): (lambda w: [public(w, 200, realm=w.a.realm)])
       for m, doc in (("GET", "/metadata/json/1"), ("GET", "/.well-known/oauth-authorization-server"),
                      ("GET", "/jwks"))},
    ("POST", "/trust/{realm}/token"): lambda w: [Probe(
        None, {"realm": w.a.realm}, frozenset({401}), content=urlencode({
            "grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": w.b.assertion_for_a}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})],
    **{(m, "/trust/{realm}/mailboxes/{user}/" + s): (lambda w, m=m, body=body, own=own: [
        *(Probe(None, {"realm": w.a.realm, "user": w.a.user}, frozenset({401}), content=body,
                headers={"Authorization": f"Bearer {t}", "Content-Type": kind})
          for t, kind in ((w.b.partner_access, "message/rfc822" if body else "audio/wav"),
                          (w.b.partner_actor, "audio/wav"))),
        Probe(None, {"realm": w.b.realm, "user": w.a.user}, frozenset({own}), content=body,
              headers={"Authorization": f"Bearer {w.b.partner_access}",
                       "Content-Type": "message/rfc822" if m == "POST" else "audio/wav"})])
       for m, s, body, own in (
           ("POST", "purges", _PARTNER_MESSAGE, 404), ("POST", "conversation-history", _PARTNER_MESSAGE, 404),
           ("PUT", "voicemail-greeting", b"RIFF0000WAVE", 404), ("GET", "voicemail-greeting", None, 404))},
    # -- voice (sites, mediation servers, gateways, trunks, tenant configuration, users' voice settings) ---------
    ("GET", _ADMIN + "/voice/sites"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(s["id"] != w.a.site for s in r.json()))],
    ("POST", _ADMIN + "/voice/sites"): lambda w: [across(w, json={"name": "B probe", "edge_fqdn": "ap.b.example"})],
    ("GET", _ADMIN + "/voice/mediation-servers"): lambda w: [
        across(w), inside(w, 404, query={"site": w.a.site}), inside(w, 404, query={"site": "A Isolation Site"})],
    ("POST", _ADMIN + "/voice/mediation-servers"): lambda w: [
        across(w, json={"fqdn": "ms9.b.example", "site": w.a.site}),
        inside(w, 404, json={"fqdn": "ms9.b.example", "site": w.a.site})],     # A's site is no site of B's
    ("PATCH", _ADMIN + "/voice/mediation-servers/{server}"): lambda w: [
        across(w, server=w.a.server, json={"fqdn": "ms9.b.example"}),
        inside(w, 404, server=w.a.server, json={"fqdn": "ms9.b.example"}),
        inside(w, 404, server=w.a.server_account, json={"access_proxy_external_fqdn": "ap.b.example"})],
    ("GET", _ADMIN + "/voice/gateways"): lambda w: [
        across(w), inside(w, 200, check=lambda r: r.json() == []), inside(w, 404, query={"site": w.a.site})],
    ("POST", _ADMIN + "/voice/gateways"): lambda w: [
        across(w, json={"name": "gw9.b.example", "site": w.a.site}),
        inside(w, 404, json={"name": "gw9.b.example", "site": w.a.site})],
    ("GET", _ADMIN + "/voice/trunks"): lambda w: [
        across(w), inside(w, 404, query={"gateway": w.a.gateway}), inside(w, 404, query={"gateway": w.a.gateway_id})],
    ("POST", _ADMIN + "/voice/trunks"): lambda w: [
        across(w, json={"gateway": w.a.gateway, "target": "ms9.b.example"}),
        inside(w, 404, json={"gateway": w.a.gateway_id, "target": "ms9.b.example"})],
    ("DELETE", _ADMIN + "/voice/gateways/{gateway}/trunks/{target}"): lambda w: [
        across(w, gateway=w.a.gateway, target=w.a.server),
        inside(w, 404, gateway=w.a.gateway, target=w.a.server),
        inside(w, 404, gateway=w.a.gateway_id, target=w.a.trunk)],
    ("GET", _ADMIN + "/voice/hybrid-config"): lambda w: [
        across(w), inside(w, 200, check=lambda r: r.json()["peer_destination"] is None)],
    ("PUT", _ADMIN + "/voice/hybrid-config"): lambda w: [across(w, json={"peer_destination": "ap.b.example"})],
    ("GET", _ADMIN + "/voice/federation"): lambda w: [
        across(w), inside(w, 200, check=lambda r: r.json()["shared_sip_address_space"] is False)],
    ("PUT", _ADMIN + "/voice/federation"): lambda w: [across(w, json={"shared_sip_address_space": False})],
    ("GET", _ADMIN + "/voice/users"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(u["user_id"] != w.a.user for u in r.json())),
        inside(w, 404, query={"identity": w.a.user}), inside(w, 404, query={"identity": "*Isolation Secret"})],
    ("GET", _ADMIN + "/voice/users/{identity}"): lambda w: [
        across(w, identity=w.a.user), inside(w, 404, identity=w.a.user),
        inside(w, 404, identity="sip:alice.isolation@a-secret.example"), inside(w, 404, identity="Alice*")],
    ("PATCH", _ADMIN + "/voice/users/{identity}"): lambda w: [
        across(w, identity=w.a.user, json={"enterprise_voice_enabled": False}),
        inside(w, 404, identity=w.a.user, json={"enterprise_voice_enabled": False})],
    ("PUT", _ADMIN + "/voice/users/{identity}/routing-policy"): lambda w: [
        across(w, identity=w.a.user, json={"policy_name": "InternationalCallsDisallowed"}),
        inside(w, 404, identity=w.a.user, json={"policy_name": "InternationalCallsDisallowed"})],
    ("PUT", _ADMIN + "/voice/users/{identity}/pstn-site"): lambda w: [
        across(w, identity=w.a.user, json={"hybrid_pstn_site": None}),
        inside(w, 404, identity=w.a.user, json={"hybrid_pstn_site": None}),
        inside(w, 404, identity=w.b.user, json={"hybrid_pstn_site": w.a.site})],    # A's site for B's user
    ("GET", _ADMIN + "/voice/route"): lambda w: [
        across(w, query={"caller": "alice.isolation@a-secret.example", "number": "+14255550123"}),
        inside(w, 200, query={"caller": "alice.isolation@a-secret.example", "number": "+14255550123"},
               check=lambda r: r.json()["status"] == 404 and r.json()["contacts"] == [])],
    ("GET", _ADMIN + "/voice/root-ca"): lambda w: [
        across(w), inside(w, 200, check=lambda r: r.json()["thumbprint"] != w.a.root_ca)],
    ("POST", _ADMIN + "/voice/root-ca"): lambda w: [across(w, json={"replace": True})],
    ("POST", _ADMIN + "/voice/gateways/{gateway}/certificate"): lambda w: [
        across(w, gateway=w.a.gateway, json={}), inside(w, 404, gateway=w.a.gateway, json={}),
        inside(w, 404, gateway=w.a.gateway_id, json={})],
    ("PUT", _ADMIN + "/voice/gateways/{gateway}/certificate"): lambda w: [
        across(w, gateway=w.a.gateway, json={"certificate_pem": _PROBE_CERTIFICATE}),
        inside(w, 404, gateway=w.a.gateway, json={"certificate_pem": _PROBE_CERTIFICATE}),
        inside(w, 404, gateway=w.a.gateway_id, json={"certificate_pem": _PROBE_CERTIFICATE})],
    ("GET", _ADMIN + "/voice/check"): lambda w: [
        across(w), inside(w, 200, check=lambda r: all(w.a.server not in line["subject"]
                                                       for line in r.json()["lines"]))],
    # -- console sign-in ----------------------------------------------------------------------------------------
    ("GET", _ADMIN + "/sign-in/oidc"): lambda w: [across(w), inside(w, 404)],
    ("PUT", _ADMIN + "/sign-in/oidc"): lambda w: [
        across(w, json={"issuer": "https://idp.b-probe.invalid", "client_id": "b", "client_secret": "b" * 20})],
    ("DELETE", _ADMIN + "/sign-in/oidc"): lambda w: [across(w), inside(w, 404)],
    # The browser's pages: their credential is the session cookie, and B's admin token is nobody there. Starting
    # A's single sign-on is open to anyone by design (it is A's users' way in); A's provider cannot be reached
    # from the tests (502), and nothing of A's configuration is in the answer.
    ("GET", "/auth/login"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("POST", "/auth/login"): lambda w: [Probe(None, {}, frozenset({403}))],
    ("POST", "/auth/logout"): lambda w: [Probe(None, {}, frozenset({200}))],   # to the sign-in form: nobody to end
    ("GET", "/auth/session"): lambda w: [Probe(None, {}, frozenset({401}))],
    ("GET", "/auth/oidc/{tenant_id}/start"): lambda w: [public(w, 502), inside(w, 404)],
    # The console's pages (console/pages.py): B's admin token is nobody there either, every page leads to the
    # sign-in form (followed: 200) and A's user is neither shown nor changed. B's *session* on A's ids is
    # tests/console/test_pages.py (404).
    ("GET", "/"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console/"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console/users"): lambda w: [Probe(None, {}, frozenset({200}), query={"q": "alice"})],
    ("GET", "/console/users/{user_id}"): lambda w: [Probe(None, {"user_id": w.a.user}, frozenset({200}))],
    ("POST", "/console/users/{user_id}/hidden"): lambda w: [Probe(None, {"user_id": w.a.user}, frozenset({200}))],
    ("GET", "/console/groups"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console/scim-log"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console/static/{name:path}"): lambda w: [Probe(None, {"name": "console.css"}, frozenset({200}))],
    ("GET", "/console/trust"): lambda w: [Probe(None, {}, frozenset({200}),
                                                check=lambda r: "A Isolation Partner" not in r.text)],
    ("GET", "/console/voice"): lambda w: [Probe(None, {}, frozenset({200}), query={
        "identity": w.a.user, "caller": w.a.user, "number": "+14255550123"},
        check=lambda r: w.a.gateway not in r.text and w.a.server not in r.text)],
    ("GET", "/console/search"): lambda w: [Probe(None, {}, frozenset({200}), query={"q": "merger"})],
    ("GET", "/console/search/items/{item_id}"): lambda w: [Probe(None, {"item_id": w.a.item}, frozenset({200}))],
    ("GET", "/console/cases"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("GET", "/console/cases/{case}"): lambda w: [Probe(None, {"case": w.a.case}, frozenset({200}))],
    # The eDiscovery actions (console/case_actions.py): B's token is nobody there, A's case, hold and export stay as
    # they were (snapshot). B's session on A's ids is tests/console/test_case_actions.py (404).
    ("POST", "/console/cases"): lambda w: [Probe(None, {}, frozenset({200}), json={"name": "B probe"})],
    **{("POST", "/console/cases/{case}/" + action): (lambda w: [
        Probe(None, {"case": w.a.case}, frozenset({200}), json={"query": "merger", "users": w.b.user})])
       for action in ("custodians", "holds", "search", "export")},
    ("GET", "/console/cases/{case}/exports/{export_id}"): lambda w: [
        Probe(None, {"case": w.a.case, "export_id": w.a.export}, frozenset({200}))],
    ("GET", "/console/cases/{case}/exports/{export_id}/download"): lambda w: [
        Probe(None, {"case": w.a.case, "export_id": w.a.export}, frozenset({200}),
              check=lambda r: r.headers["content-type"].startswith("text/html"))],
    ("GET", "/console/holds"): lambda w: [Probe(None, {}, frozenset({200}), query={"released": "true"})],
    ("POST", "/console/holds"): lambda w: [Probe(None, {}, frozenset({200}), json={"user": w.a.user})],
    ("POST", "/console/holds/{hold_id}/release"): lambda w: [Probe(None, {"hold_id": w.a.hold}, frozenset({200}))],
    ("GET", "/console/verify"): lambda w: [Probe(None, {}, frozenset({200}), query={"run": "true"})],
    # The data connector pages (console/connector_pages.py): as above; B's session on A's connector is
    # tests/console/test_connector_pages.py (404).
    ("GET", "/console/connectors"): lambda w: [Probe(None, {}, frozenset({200}),
                                                     check=lambda r: "A Isolation Export" not in r.text)],
    ("GET", "/console/connectors/new"): lambda w: [Probe(None, {}, frozenset({200}))],
    ("POST", "/console/connectors/new"): lambda w: [Probe(None, {}, frozenset({200}))],
    **{("GET", f"/console/connectors/new/{{connector}}/{step}"): (lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))]) for step in ("mapping", "consent", "review")},
    ("POST", "/console/connectors/new/{connector}/mapping"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("POST", "/console/connectors/new/{connector}/consent"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("POST", "/console/connectors/new/{connector}/finish"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("GET", "/console/connectors/{connector}"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("GET", "/console/connectors/{connector}/progress"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("POST", "/console/connectors/{connector}/runs"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("POST", "/console/connectors/{connector}/exports"): lambda w: [
        Probe(None, {"connector": w.a.connector}, frozenset({200}))],
    ("GET", "/console/connectors/{connector}/runs/{run_id}"): lambda w: [
        Probe(None, {"connector": w.a.connector, "run_id": w.a.run}, frozenset({200}))],
    ("GET", "/console/provisioning"): lambda w: [Probe(None, {}, frozenset({200}),
                                                       check=lambda r: "A Isolation App" not in r.text)],
    **{(m, "/console/provisioning/{app}" + s): (lambda w: [
        Probe(None, {"app": w.a.app}, frozenset({200}), check=lambda r: "A Isolation App" not in r.text)])
       for m, s in (("GET", ""), ("GET", "/status"), ("GET", "/mappings"), ("GET", "/on-demand"), ("GET", "/logs"),
                    ("POST", "/on-demand"), ("POST", "/test-connection"), ("POST", "/run"), ("POST", "/release"),
                    ("POST", "/scoping"))},
    ("GET", "/auth/oidc/{tenant_id}/callback"): lambda w: [
        public(w, 400), Probe(w.a.tenant, {}, frozenset({400}), query={"state": "guess", "code": "guess"})],
}


def _connector(created_by: str) -> dict[str, Any]:
    return {"name": "B probe", "kind": "whatsapp-export", "created_by": created_by, "accept_terms": True}


# -- the world ------------------------------------------------------------------------------------------------


def _tenant(backend: Services, prefix: str, names: dict[str, str]) -> Tenant:
    tenant = f"{prefix}-{uuid.uuid4().hex[:10]}"
    d = backend.directory
    d.create_tenant(tenant, f"Tenant {prefix}")
    admin = {"Authorization": f"Bearer {admin_secret(backend, tenant, 'iso')}"}
    scim = {"Authorization": f"Bearer {d.issue_token(tenant, 'scim', 'iso').secret}"}
    user = backend.scim.create(tenant, "User", user_payload(names["user"], displayName=names["display"]))["id"]
    group = backend.scim.create(tenant, "Group", group_payload(names["group"], members=[{"value": user}]))["id"]
    d.add_domain(tenant, names["domain"])
    d.assign_licence(tenant, user, "E5")
    d.add_role_group_member(tenant, "Organization Management", user)
    grant_import_role(backend, tenant, user)
    subject = names["subject"]
    backend.archive.deliver(tenant, [Delivery(
        user, names["user"], WHATSAPP_FOLDER,
        f"Message-ID: <{tenant}@t>\r\nSubject: {subject}\r\n\r\nmerger\r\n".encode(), f"{tenant}@t", "chat",
        "test", datetime(2026, 3, 1, tzinfo=UTC))])
    item = backend.archive.items(tenant, user)[0].id
    hold = backend.compliance.place_hold(tenant, name=names["hold"], actor="a", user_id=user).id
    backend.compliance.create_policy(tenant, name=names["policy"], actor="a", retain_days=365, users=[user])
    case = backend.ediscovery.create_case(tenant, names["case"], "counsel").id
    backend.ediscovery.add_custodians(tenant, case, [user], "counsel")
    connector = backend.connectors.create(tenant, name=names["connector"], kind="whatsapp-export",
                                          by=as_admin(backend, tenant, user),
                                          accept_terms=True, test_source=False).id
    backend.connectors.consent(tenant, connector, as_admin(backend, tenant, user))
    run = backend.connectors.run(tenant, connector).id
    app = backend.provisioning.create_app(tenant, name=names["app"], tenant_url=f"https://{names['url']}/scim/v2",
                                          token="t" * 20).id
    role = backend.provisioning.add_role(tenant, app, display_name=names["role"], value=names["role_value"]).id
    backend.provisioning.assign(tenant, app, "User", user, role=role)
    partner = backend.trust.create_partner(tenant, name=names["partner"], application_id=str(uuid.uuid4()),
                                           linked_account=user).id
    sp_key = backend.trust.add_service_principal_key(tenant, partner, backend.trust.export_certificate(tenant)).key_id
    # The partner's own signing certificate: with it, its tokens are valid in its own realm.
    own_key = certificate_der(certificate_now(f"iso-{prefix}").certificate)
    backend.trust.add_service_principal_key(tenant, partner, own_key)
    realm = backend.trust.auth_config(tenant).realm
    assignment = d.assign_role(tenant, user, "UserApplication").id
    d.assign_role(tenant, user, "ArchiveApplication")
    root_ca = backend.voice_certificates.new_root_ca(tenant).thumbprint
    voice = _voice(backend, tenant, names) if "site" in names else {}   # A's voice configuration (B has none)
    if "idp" in names:   # A's single sign-on (B has none: its own reads answer 404)
        backend.signin.oidc.configure(tenant, issuer=f"https://{names['idp']}", client_id=names["app"],
                                      client_secret="s" * 20, display_name=names["app"])
    return Tenant(tenant, admin, scim, {"user": user, "group": group, "item": str(item), "hold": hold,
                                        "case": case, "connector": connector, "run": run, "app": app,
                                        "role": role, "partner": partner, "sp_key": sp_key, "realm": realm,
                                        "assignment": assignment, "root_ca": root_ca, **voice})


def _voice(backend: Services, tenant: str, names: dict[str, str]) -> dict[str, str]:
    """A site with a mediation server (and its account, in a verified SIP domain), a gateway trunked to it, a
    PeerDestination, and the user enabled for voice with a line URI and the site."""
    backend.directory.add_domain(tenant, f"voice.{names['domain']}", verified=True)
    voice = backend.voice
    site = voice.create_site(tenant, name=names["site"], edge_fqdn=f"ap.{names['domain']}")
    server = voice.create_mediation_server(tenant, fqdn=f"ms1.{names['domain']}", site=site.name)
    gateway = voice.create_gateway(tenant, name=f"gw1.{names['domain']}", site=site.name)
    voice.set_hybrid_config(tenant, peer_destination=f"ap.{names['domain']}")
    voice.set_federation(tenant, shared_sip_address_space=True)
    voice.set_user(tenant, names["user"], enterprise_voice=True, line_uri=names["line_uri"],
                   voice_policy="HybridVoice")
    voice.set_pstn_site(tenant, names["user"], site.name)
    backend.voice_certificates.issue(tenant, gateway.name)   # the tenant's root CA is made in _tenant
    return {"site": site.id, "server": server.fqdn, "server_account": server.account_name or "",
            "gateway": gateway.name, "gateway_id": gateway.id, "trunk": gateway.trunks[0].id}


@pytest.fixture(scope="module")
def world(backend: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    a = _tenant(backend, "a", {
        "user": "alice.isolation@a-secret.example", "display": "Alice Isolation Secret", "group": "A Isolation Group",
        "domain": "a-isolation-secret.example", "subject": "A-ISOLATION-SUBJECT", "hold": "A Isolation Hold",
        "policy": "A Isolation Policy", "case": "A Isolation Matter", "connector": "A Isolation Export",
        "app": "A Isolation App", "url": "a-iso.invalid", "role": "A Isolation Role",
        "role_value": "a-isolation-role", "idp": "idp.a-iso.invalid", "partner": "A Isolation Partner",
        "site": "A Isolation Site", "line_uri": "tel:+14255550199"})
    b = _tenant(backend, "b", {
        "user": "bob@b.example", "display": "Bob B", "group": "B Group", "domain": "b.example", "subject": "B mail",
        "hold": "B Hold", "policy": "B Policy", "case": "B Matter", "connector": "B Export", "app": "B App",
        "url": "b.invalid", "role": "B Role", "role_value": "b-role", "partner": "B Partner"})
    with TestClient(create_app(backend.settings, backend)) as client:
        a.ids["export"] = a.ids["job"] = _finished_export(client, a)
        # One SCIM write of A's IdP over HTTP: A's SCIM request log holds a row naming A's user.
        r = client.patch(f"/tenants/{a.tenant}/scim/v2/Users/{a.user}", json=_patch("Alice Isolation Secret"),
                         headers={**a.scim, "Content-Type": "application/scim+json"})
        assert r.status_code == 200, r.text
        _partner_credentials(client, backend, b, a)
        w = World(client, backend, a, b, tmp_path_factory.mktemp("isolation"))
        w.baseline = snapshot(w)
        yield w


def _partner_credentials(client: TestClient, backend: Services, b: Tenant, a: Tenant) -> None:
    """B's partner's credentials, each good in B's realm: an access token from B's token endpoint, an actor token
    naming A's realm (what a partner of B would forge to reach A), and a client assertion for A's token endpoint."""
    signing = certificate_now("iso-b")
    app_id = backend.trust.partner(b.tenant, b.partner).application_id
    now = int(time.time())

    def assertion(realm: str) -> str:
        claims = {"iss": app_id, "sub": app_id, "aud": f"http://testserver/trust/{realm}/token", "iat": now,
                  "exp": now + 300, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "RS256", "kid": signing.descriptor.x5t}, claims,
                          RSAKey.import_key(signing.private_key))

    r = client.post(f"/trust/{b.realm}/token", data={
        "grant_type": "client_credentials", "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion(b.realm)})
    assert r.status_code == 200, r.text
    b.ids["partner_access"] = r.json()["access_token"]
    b.ids["partner_actor"] = mint_actor_token(signing, Recipient(SERVICE_NAME, "testserver", a.realm),
                                              partner_app_id=app_id, now=now)
    b.ids["assertion_for_a"] = assertion(a.realm)


def _finished_export(client: TestClient, a: Tenant) -> str:
    """A's eDiscovery export, made through the API as a job and waited for (its id is also its job's id)."""
    api = f"/api/v1/tenants/{a.tenant}"
    r = client.post(api + f"/cases/{a.case}/export", json={"query": "merger"}, headers=a.admin)
    assert r.status_code == 202, r.text
    export_id: str = r.json()["export_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(api + f"/jobs/{export_id}", headers=a.admin).json()["state"]
        if state in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert state == "succeeded", state
    return export_id


def snapshot(w: World) -> dict[str, Any]:
    """Everything of A, read with A's own credentials."""
    a, c = w.a, w.client
    api = f"/api/v1/tenants/{a.tenant}"
    scim = f"/tenants/{a.tenant}/scim/v2"
    reads = {
        "scim user": (scim + f"/Users/{a.user}", a.scim), "scim group": (scim + f"/Groups/{a.group}", a.scim),
        "scim users": (scim + "/Users", a.scim), "scim groups": (scim + "/Groups", a.scim),
        "user": (api + f"/users/{a.user}", a.admin), "groups": (api + "/groups", a.admin),
        "domains": (api + "/domains", a.admin), "role groups": (api + "/role-groups", a.admin),
        "connector": (api + f"/connectors/{a.connector}", a.admin), "connectors": (api + "/connectors", a.admin),
        "runs": (api + f"/connectors/{a.connector}/runs", a.admin), "run": (api + f"/runs/{a.run}", a.admin),
        "mailboxes": (api + "/mailboxes", a.admin), "items": (api + f"/mailboxes/{a.user}/items", a.admin),
        "raw": (api + f"/items/{a.item}/raw", a.admin), "holds": (api + "/holds?all=true", a.admin),
        "policies": (api + "/retention-policies", a.admin), "apps": (api + "/provisioning/apps", a.admin),
        "app": (api + f"/provisioning/apps/{a.app}", a.admin),
        "config": (api + f"/provisioning/apps/{a.app}/config", a.admin),
        "scope": (api + f"/provisioning/apps/{a.app}/scope", a.admin),
        "roles": (api + f"/provisioning/apps/{a.app}/roles", a.admin),
        "exports": (api + f"/cases/{a.case}/exports", a.admin), "job": (api + f"/jobs/{a.job}", a.admin),
        "app log": (api + f"/provisioning/apps/{a.app}/logs", a.admin), "audit": (api + "/audit?limit=1000", a.admin),
        "scim log": (api + "/scim-log?limit=1000", a.admin), "sign-in": (api + "/sign-in/oidc", a.admin),
        "partners": (api + "/trust/partner-apps", a.admin), "auth config": (api + "/trust/auth-config", a.admin),
        "service principal": (api + f"/trust/partner-apps/{a.partner}/service-principal", a.admin),
        "role assignments": (api + "/role-assignments", a.admin),
        "voice sites": (api + "/voice/sites", a.admin), "voice servers": (api + "/voice/mediation-servers", a.admin),
        "voice gateways": (api + "/voice/gateways", a.admin), "voice users": (api + "/voice/users", a.admin),
        "voice hybrid": (api + "/voice/hybrid-config", a.admin),
        "voice federation": (api + "/voice/federation", a.admin), "voice root ca": (api + "/voice/root-ca", a.admin),
    }
    out: dict[str, Any] = {}
    for name, (path, headers) in reads.items():
        r = c.get(path, headers=headers)
        assert r.status_code == 200, (name, r.status_code, r.text)
        out[name] = r.text if name == "raw" else r.json()
    out["custodians"] = w.backend.ediscovery.custodians(a.tenant, a.case)
    out["tenant"] = [t for t in w.backend.directory.list_tenants() if t.id == a.tenant]
    return out


# -- the suite --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def route_table(backend: Services) -> list[tuple[str, str]]:
    return api_routes(create_app(backend.settings, backend))


def test_every_route_has_an_isolation_case(route_table: list[tuple[str, str]]) -> None:
    missing = [f"add an isolation case for {m} {p}" for m, p in route_table if (m, p) not in CASES]
    stale = [f"{m} {p} has a case but no route" for m, p in CASES if (m, p) not in route_table]
    assert not missing and not stale, "tests/security/test_isolation.py CASES:\n" + "\n".join(missing + stale)


@pytest.mark.parametrize("route", sorted(CASES, key=lambda mp: (mp[1], mp[0])), ids=lambda mp: f"{mp[0]} {mp[1]}")
def test_tenant_b_never_reaches_tenant_a(world: World, route: tuple[str, str]) -> None:
    method, path = route
    is_scim = scim_suffix(path) is not None
    token = world.b.scim if is_scim else world.b.admin
    probes = CASES[route](world)
    assert probes, f"{method} {path}: a case must make at least one request"
    wrong = []
    for probe in probes:
        values = {"tenant_id": probe.tenant or "", **probe.params}
        url = fill(path, values)
        expect = probe.expect or frozenset({401} if is_scim else {403})
        headers = dict(token if probe.headers is None else probe.headers)
        if probe.content is not None and "Content-Type" not in headers:
            headers["Content-Type"] = "application/octet-stream"
        r = world.client.request(method, url, headers=headers, json=probe.json, params=probe.query,
                                 content=probe.content)
        # What B sent itself (a name in the path, say) may come back in an error; anything else of A may not.
        sent = f"{unquote(url)} {probe.json} {probe.query}".lower()
        leaked = [s for s in A_SECRETS if s.lower() in r.text.lower() and s.lower() not in sent]
        if r.status_code not in expect:
            wrong.append(f"{method} {url}: {r.status_code} (expected {sorted(expect)}) {r.text[:200]}")
        elif r.status_code < 300 and probe.check is not None and not probe.check(r):
            wrong.append(f"{method} {url}: {r.status_code} but the check failed: {r.text[:300]}")
        if leaked:
            wrong.append(f"{method} {url}: the answer holds A's data {leaked}: {r.text[:300]}")
    assert not wrong, "\n".join(wrong)
    assert snapshot(world) == world.baseline, f"{method} {path} changed tenant A's data"
