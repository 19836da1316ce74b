"""Fuzzing, bounded (issue #9 "Property/fuzz runs in CI"): schemathesis over the admin API's own OpenAPI
document (/api/openapi.json) and over a description of the SCIM endpoints, in-process through the ASGI app,
on both backends, with zero server errors (schemathesis' ``not_a_server_error`` check).

Each operation gets ``TENANTRY_FUZZ_EXAMPLES`` (default 10) schema-conforming and as many schema-violating
requests, derandomized so that CI is reproducible (set ``TENANTRY_FUZZ_RANDOM=1`` to explore new inputs
locally) and without shrinking, so a run stays within a few minutes. Requests are authenticated with
bootstrap tokens (``bootstrap_admin_token``/``bootstrap_scim_token``) of a tenant of their own.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tenantry.app import Services, bootstrap, create_app
from tests.conftest import grant_import_role, group_payload, user_payload

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("TENANTRY_FUZZ_EXAMPLES", "10"))
DERANDOMIZE = not os.environ.get("TENANTRY_FUZZ_RANDOM")

# Admin operations left out of the fuzz, each for a reason: they reach out of the process (a fuzzed
# tenant_url would be contacted), or run long work in background threads the fuzz cannot wait for.
ADMIN_SKIPPED = {
    ("POST", "/api/v1/tenants/{tenant_id}/provisioning/apps"),                       # test connection
    ("POST", "/api/v1/tenants/{tenant_id}/provisioning/apps/{app}/test-connection"),
    ("POST", "/api/v1/tenants/{tenant_id}/provisioning/apps/{app}/run"),             # background thread
    ("POST", "/api/v1/tenants/{tenant_id}/provisioning/apps/{app}/provision-on-demand"),
    ("POST", "/api/v1/tenants/{tenant_id}/cases/{case}/export"),                     # writes a server path
}


@dataclasses.dataclass
class Target:
    app: FastAPI
    tenant: str
    admin: dict[str, str]
    scim: dict[str, str]
    user_id: str
    group_id: str


@pytest.fixture()
def target(backend: Services) -> Iterator[Target]:
    """The app with a tenant of its own as the default tenant, and bootstrap tokens for it."""
    tenant = f"fuzz-{uuid.uuid4().hex[:10]}"
    admin_token, scim_token = f"adm-{uuid.uuid4().hex}", f"scim-{uuid.uuid4().hex}"
    fuzz_settings = backend.settings.model_copy(update={
        "default_tenant": tenant, "bootstrap_admin_token": admin_token, "bootstrap_scim_token": scim_token})
    services = dataclasses.replace(backend, settings=fuzz_settings)
    bootstrap(services)
    # The bootstrap token's first administrator, with the one role no built-in group gives (seed 000), so that
    # every route is fuzzed past the role check.
    first = services.directory.find_users_by_email(tenant, ["tenantry-admin"])["tenantry-admin"][0].id
    grant_import_role(services, tenant, first)
    user = services.scim.create(tenant, "User", user_payload("fuzz@contoso.com"))
    group = services.scim.create(tenant, "Group", group_payload("fuzzers", members=[{"value": user["id"]}]))
    yield Target(create_app(fuzz_settings, services), tenant, {"Authorization": f"Bearer {admin_token}"},
                 {"Authorization": f"Bearer {scim_token}"}, user["id"], group["id"])


@dataclasses.dataclass
class Run:
    examples: int = 0
    operations: int = 0
    seconds: float = 0.0
    server_errors: list[str] = dataclasses.field(default_factory=list)


def fuzz(schema: Any, headers: dict[str, str], fix: Callable[[Any], None],
         skipped: set[tuple[str, str]] = frozenset(), typed: bool = False) -> Run:  # type: ignore[assignment]
    """Every operation of ``schema``, positive and negative, EXAMPLES each; server errors are collected (all of
    them, not only the first) with the request that caused them. ``typed``: a success must also match the
    response model the operation declares (issue #11, typed results at the HTTP edge)."""
    run = Run()
    began = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.full_path) in skipped or (
                operation.method.upper(), operation.path) in skipped:
            continue
        run.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case: Any) -> None:
                run.examples += 1
                fix(case)
                try:
                    response = case.call(headers=headers)
                    case.validate_response(response, checks=[not_a_server_error])
                    if typed and 200 <= response.status_code < 300:
                        case.validate_response(response, checks=[response_schema_conformance])
                except Exception as exc:  # noqa: BLE001 - a server error of any kind is what we collect
                    label = f"{case.method} {case.formatted_path}"
                    run.server_errors.append(f"{label}: {exc.__class__.__name__}: {str(exc)[:300]}\n"
                                             f"  {case.as_curl_command()[:600]}")

            try:
                one()
            except Unsatisfiable:
                # Nothing to violate (no parameters, no body): there is no negative case of this operation.
                assert mode is GenerationMode.NEGATIVE, operation.label
    run.seconds = time.monotonic() - began
    return run


def report(name: str, run: Run) -> None:
    # Printed, not asserted: how long a run takes depends on the machine (shown with pytest -s).
    print(f"\n{name}: {run.operations} operations, {run.examples} requests in {run.seconds:.0f} s, "
          f"{len(run.server_errors)} server errors")
    assert not run.server_errors, "\n".join(run.server_errors[:20])


# -- the admin API --------------------------------------------------------------------------------------

def test_admin_openapi_document_is_valid_and_declares_every_path_parameter(target: Target) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", target.app)
    schema.validate()  # the OpenAPI 3.1 meta-schema
    doc = target.app.openapi()
    operation_ids: list[str] = []
    for path, operations in doc["paths"].items():
        names = set(re.findall(r"{([^}:]+)", path))
        for method, operation in operations.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path} declares {declared}, not {names}"
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids)), "operation ids must be unique"
    assert all(result.ok() for result in schema.get_all_operations())
    assert not any("/scim/v2" in path for path in doc["paths"]), "SCIM is described by RFC 7644, not here"


def test_admin_api_fuzz_finds_no_server_error(target: Target) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", target.app)

    def fix(case: Any) -> None:
        # A fuzzed tenant id is only ever 401; ours lets the request reach the code behind the guard.
        if case.path_parameters and "tenant_id" in case.path_parameters:
            case.path_parameters["tenant_id"] = target.tenant
        for name, known in (("user_id", target.user_id),):
            if case.path_parameters and name in case.path_parameters and len(case.path_parameters[name]) % 2:
                case.path_parameters[name] = known

    report("admin API", fuzz(schema, target.admin, fix, ADMIN_SKIPPED, typed=True))


# -- SCIM -------------------------------------------------------------------------------------------------

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STRING: dict[str, Any] = {"type": "string"}
MULTI = {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
    "value": STRING, "type": STRING, "primary": {"type": "boolean"}, "display": STRING}}}
USER = {"type": "object", "required": ["schemas", "userName"], "properties": {
    "schemas": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"enum": [CORE_USER, ENTERPRISE]}},
    "userName": STRING, "externalId": STRING, "displayName": STRING, "title": STRING, "nickName": STRING,
    "active": {"type": "boolean"}, "password": STRING,
    "name": {"type": "object", "properties": {"givenName": STRING, "familyName": STRING, "formatted": STRING}},
    "emails": MULTI, "phoneNumbers": MULTI, "addresses": MULTI,
    ENTERPRISE: {"type": "object", "properties": {"department": STRING, "employeeNumber": STRING,
                                                  "manager": {"type": "object", "properties": {"value": STRING}}}},
}}
GROUP = {"type": "object", "required": ["schemas", "displayName"], "properties": {
    "schemas": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"const": CORE_GROUP}},
    "displayName": STRING, "externalId": STRING,
    "members": {"type": "array", "maxItems": 3, "items": {"type": "object", "required": ["value"], "properties": {
        "value": STRING, "display": STRING, "type": {"enum": ["User", "Group"]}}}},
}}
PATCH = {"type": "object", "required": ["schemas", "Operations"], "properties": {
    "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
    "Operations": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "required": ["op"], "properties": {
            "op": {"enum": ["add", "replace", "remove", "Add", "Replace", "Remove"]},
            "path": {"anyOf": [{"enum": ["userName", "displayName", "title", "active", "emails",
                                         'emails[type eq "work"].value', "name.givenName", "members",
                                         'members[value eq "x"]', f"{ENTERPRISE}:manager"]}, STRING]},
            "value": {}}}},
}}
SEARCH = {"type": "object", "properties": {
    "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:SearchRequest"}},
    "filter": {"anyOf": [{"enum": ['userName eq "fuzz@contoso.com"', 'emails[type eq "work"].value co "@"',
                                   'displayName pr and not (title sw "x")', 'meta.lastModified gt "2020-01-01"']},
                         STRING]},
    "startIndex": {"type": "integer"}, "count": {"type": "integer"}, "sortBy": STRING,
    "sortOrder": {"enum": ["ascending", "descending"]},
    "attributes": {"type": "array", "items": STRING}, "excludedAttributes": {"type": "array", "items": STRING},
}}
BULK = {"type": "object", "required": ["schemas", "Operations"], "properties": {
    "schemas": {"type": "array", "items": {"const": "urn:ietf:params:scim:api:messages:2.0:BulkRequest"}},
    "failOnErrors": {"type": "integer"},
    "Operations": {"type": "array", "maxItems": 4, "items": {"type": "object", "properties": {
        "method": {"enum": ["POST", "PUT", "PATCH", "DELETE"]},
        "path": {"anyOf": [{"enum": ["/Users", "/Groups", "/Users/bulkId:a", "/Groups/bulkId:a"]}, STRING]},
        "bulkId": STRING, "version": STRING, "data": {"anyOf": [USER, GROUP, PATCH]}}}},
}}
LIST_PARAMETERS = [
    {"name": "filter", "in": "query", "schema": SEARCH["properties"]["filter"]},
    {"name": "startIndex", "in": "query", "schema": {"type": "integer"}},
    {"name": "count", "in": "query", "schema": {"type": "integer"}},
    {"name": "sortBy", "in": "query", "schema": STRING},
    {"name": "sortOrder", "in": "query", "schema": {"enum": ["ascending", "descending"]}},
    {"name": "attributes", "in": "query", "schema": STRING},
    {"name": "excludedAttributes", "in": "query", "schema": STRING},
]


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok() -> dict[str, Any]:
    return {"responses": {"default": {"description": "a SCIM response or a SCIM error"}}}


def scim_openapi(user_id: str, group_id: str) -> dict[str, Any]:
    """RFC 7644 §3 as OpenAPI 3.1, for the fuzz: every endpoint, its parameters and body shapes. Resource
    ids are ours (so that reads, replaces, patches and deletes reach a stored resource) or, in negative
    mode, anything."""
    paths: dict[str, Any] = {}
    for endpoint, body, rid in (("Users", USER, user_id), ("Groups", GROUP, group_id)):
        id_param = [{"name": "id", "in": "path", "required": True, "schema": {"enum": [rid]}}]
        paths[f"/{endpoint}"] = {"get": {**_ok(), "parameters": LIST_PARAMETERS},
                                 "post": {**_ok(), "requestBody": _body(body)}}
        paths[f"/{endpoint}/{{id}}"] = {
            "get": {**_ok(), "parameters": id_param},
            "put": {**_ok(), "parameters": id_param, "requestBody": _body(body)},
            "patch": {**_ok(), "parameters": id_param, "requestBody": _body(PATCH)},
            "delete": {**_ok(), "parameters": id_param},
        }
        paths[f"/{endpoint}/.search"] = {"post": {**_ok(), "requestBody": _body(SEARCH)}}
    paths["/.search"] = {"post": {**_ok(), "requestBody": _body(SEARCH)}}
    paths["/Bulk"] = {"post": {**_ok(), "requestBody": _body(BULK)}}
    for discovery in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        paths[discovery] = {"get": _ok()}
    paths["/Schemas/{id}"] = {"get": {**_ok(), "parameters": [
        {"name": "id", "in": "path", "required": True, "schema": {"enum": [CORE_USER, ENTERPRISE]}}]}}
    return {"openapi": "3.1.0", "info": {"title": "Tenantry SCIM 2.0 (fuzz)", "version": "1"},
            "servers": [{"url": "/scim/v2"}], "paths": paths}


def test_scim_fuzz_finds_no_server_error(target: Target) -> None:
    schema = schemathesis.openapi.from_dict(scim_openapi(target.user_id, target.group_id))
    schema.app = target.app
    schema.validate()
    report("SCIM", fuzz(schema, target.scim, lambda case: None))
