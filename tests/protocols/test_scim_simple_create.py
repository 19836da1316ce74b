"""The simple create (protocols.scim.simple_create) stores what scim2-models' creation validation stores, or steps
aside.

Every body the simple path reads must give, byte for byte (key order included), the document the general path
dumps; every body it does not read must be left to the general path (None), which validates or refuses it.
Thousands of generated bodies cover the attributes, their types, their order, and the shapes set aside.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest
from scim2_models import Context, SCIMException

from tenantry.directory.scim_repositories import dump
from tenantry.directory.scim_store import ScimStore
from tenantry.protocols.scim.normalize import normalize_resource
from tenantry.protocols.scim.resources import ENTERPRISE_USER, GROUPTALK_USER
from tenantry.protocols.scim.simple_create import read_simple_resource

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTRA_LIKE = {
    "schemas": [CORE, ENTERPRISE_USER], "externalId": "e-1001", "userName": "kim.minji@contoso.com",
    "active": True, "displayName": "Minji Kim", "title": "Engineer", "preferredLanguage": "ko-KR",
    "name": {"givenName": "Minji", "familyName": "Kim", "formatted": "Minji Kim"},
    "emails": [{"primary": True, "type": "work", "value": "kim.minji@contoso.com"}],
    "phoneNumbers": [{"type": "mobile", "value": "+82 10-1234-5678"}, {"type": "work", "value": "+82 2-555-0100"}],
    ENTERPRISE_USER: {"employeeNumber": "7", "department": "Sales", "costCenter": "CC-42"},
}


def general(payload: dict[str, Any]) -> dict[str, Any] | None:
    """What the store's general path stores for a new user; None where it refuses the body."""
    try:
        model = ScimStore._validate("User", payload, Context.RESOURCE_CREATION_REQUEST)
    except SCIMException:
        return None
    return dump(model)


def same_bytes(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return orjson.dumps(a) == orjson.dumps(b)


def test_an_entra_shaped_user_gives_the_document_scim2_models_gives_key_order_included() -> None:
    simple = read_simple_resource("User", normalize_resource(ENTRA_LIKE))
    assert simple is not None
    slow = general(ENTRA_LIKE)
    assert slow is not None and same_bytes(simple, slow)
    assert list(simple) != list(ENTRA_LIKE)   # the order is the schema's, not the body's


def test_schemas_are_the_core_urn_then_each_extension_the_body_fills() -> None:
    body = {"schemas": [ENTERPRISE_USER, GROUPTALK_USER, CORE], "userName": "a",
            ENTERPRISE_USER: {"department": "x"}}
    simple = read_simple_resource("User", normalize_resource(body))
    assert simple is not None and simple["schemas"] == [CORE, ENTERPRISE_USER]
    assert same_bytes(simple, general(body) or {})


@pytest.mark.parametrize("body", [
    {"schemas": [CORE], "userName": "a", "displayName": None},                       # null
    {"schemas": [CORE], "userName": "a", "emails": []},                              # empty list
    {"schemas": [CORE], "userName": "a", "name": {}},                                # empty object
    {"schemas": [CORE], "userName": "a", "active": "True"},                          # Entra's string boolean
    {"schemas": [CORE], "username": "a"},                                            # another spelling
    {"schemas": [CORE], "userName": "a", "emails": [{"value": "x", "type": "Work"}]},   # canonical, other case
    {"schemas": [CORE], "userName": "a", "emails": [{"value": "x", "primary": True}, {"value": "y", "primary": True}]},
    {"schemas": [CORE], "userName": "a", "password": "secret"},                      # write-only
    {"schemas": [CORE], "userName": "a", "id": "mine"},                              # read-only
    {"schemas": [CORE], "userName": "a", "groups": [{"value": "g"}]},                # read-only
    {"schemas": [CORE], "userName": "a", "photos": [{"value": "https://x/p.jpg"}]},  # a reference
    {"schemas": [CORE], "userName": "a", ENTERPRISE_USER: {"manager": {"value": "m"}}},   # a reference inside
    {"schemas": [CORE], "userName": "a", "nickName": 7},                             # a number for a string
    {"schemas": [CORE], "userName": "a", "emails": [{"value": "x", "primary": "true"}]},
    {"schemas": [CORE], "userName": "a", "emails": [{"value": "x", "extra": "y"}]},    # unknown sub-attribute
    {"schemas": [CORE], "userName": "a", "colour": "blue"},                          # unknown attribute
    {"schemas": [CORE, "urn:example:other"], "userName": "a", "urn:example:other": {"x": "y"}},   # another schema
    {"schemas": [CORE, "urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a"},   # not the User's
    {"userName": "a"},                                                               # no schemas
    {"schemas": [CORE], "userName": 5},
    {"schemas": [CORE]},
    {"schemas": [CORE], "userName": "a", ENTERPRISE_USER: "x"},
    {"schemas": [CORE], "userName": "a", ENTERPRISE_USER: {}},
])
def test_a_body_the_simple_path_does_not_read_is_left_to_the_general_one(body: dict[str, Any]) -> None:
    assert read_simple_resource("User", normalize_resource(body)) is None


def test_groups_always_take_the_general_path() -> None:
    assert read_simple_resource("Group", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                          "displayName": "g"}) is None


_STRINGS = ["", "a", " spaced ", "Kim", "김민지", "x" * 40, "Work", "work", "mobile", "other", "weird", "e@x.local"]
_CORE_STRINGS = ["externalId", "displayName", "nickName", "title", "userType", "preferredLanguage", "locale",
                 "timezone"]
_NAME = ["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"]
_MULTI = {"emails": ["value", "display", "type", "primary"], "phoneNumbers": ["value", "display", "type", "primary"],
          "ims": ["value", "display", "type", "primary"], "entitlements": ["value", "display", "type", "primary"],
          "roles": ["value", "display", "type", "primary"],
          "addresses": ["formatted", "streetAddress", "locality", "region", "postalCode", "country", "type",
                        "primary"]}
_EXTENSIONS = {ENTERPRISE_USER: ["employeeNumber", "costCenter", "organization", "division", "department"],
               GROUPTALK_USER: [f"label{i}" for i in range(1, 6)]}


def _value(rng: random.Random, kind: str) -> Any:
    roll = rng.random()
    if roll < 0.03:
        return None
    if roll < 0.05:
        return rng.choice([1, "True", [], {}])
    return rng.random() < 0.5 if kind == "bool" else rng.choice(_STRINGS)


def _body(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [CORE]}
    keys = ["userName", *rng.sample(_CORE_STRINGS, rng.randrange(len(_CORE_STRINGS) + 1))]
    for key in keys:
        body[key] = _value(rng, "str") if key != "userName" or rng.random() < 0.05 else f"u{rng.random()}"
    if rng.random() < 0.7:
        body["active"] = _value(rng, "bool")
    if rng.random() < 0.7:
        body["name"] = {k: _value(rng, "str") for k in rng.sample(_NAME, rng.randrange(1, len(_NAME) + 1))}
    for attr in rng.sample(sorted(_MULTI), rng.randrange(3)):
        body[attr] = [{k: _value(rng, "bool" if k == "primary" else "str")
                       for k in rng.sample(_MULTI[attr], rng.randrange(1, len(_MULTI[attr]) + 1))}
                      for _ in range(rng.randrange(1, 4))]
    for urn, names in _EXTENSIONS.items():
        if rng.random() < 0.5:
            body[urn] = {k: _value(rng, "str") for k in rng.sample(names, rng.randrange(1, len(names) + 1))}
            if rng.random() < 0.8:
                body["schemas"].append(urn)
    if rng.random() < 0.3:   # the body's own order is not the schema's
        items = list(body.items())
        rng.shuffle(items)
        body = dict(items)
    return body


def test_generated_bodies_give_what_the_general_path_gives_or_are_left_to_it() -> None:
    rng = random.Random(16)
    read = 0
    for _ in range(3000):
        body = _body(rng)
        simple = read_simple_resource("User", normalize_resource(body))
        if simple is None:
            continue
        read += 1
        slow = general(json.loads(json.dumps(body)))
        assert slow is not None, body      # the simple path never accepts what the general one refuses
        assert same_bytes(simple, slow), (body, simple, slow)
    assert read > 1000   # the generator does reach the simple path, not only the shapes set aside
