"""Regressions found by the independent probe of issue #9 against a real server, kept here so they stay fixed.

Each test names the behaviour the probe broke; the rules are those of docs/security.md ("Bounded input",
"Tenant isolation") and the test brief: bad input is a 4xx with an error body, never a 500, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import SCIM_JSON, ScimClient, user_payload

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def scim_400(r: Any) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert body["schemas"] == [ERROR] and body["scimType"] == "invalidValue", body


# Strings str.isdigit() accepts after stripping signs but int() refuses (doubled signs, superscripts), and
# digits of other scripts: RFC 7644 §3.4.2.4 paging is an ASCII integer.
ODD_INTEGERS = ["+-5", "--1", "-+1", "²", "1²", "١٢"]


@pytest.mark.parametrize("value", ODD_INTEGERS)
@pytest.mark.parametrize("param", ["startIndex", "count"])
def test_scim_paging_that_looks_numeric_but_is_not_an_ascii_integer_is_400(scim: ScimClient, param: str,
                                                                            value: str) -> None:
    stored = scim.post("/Users", json=user_payload()).json()
    scim_400(scim.get("/Users", params={param: value}))
    scim_400(scim.post("/Users/.search", json={"schemas": [SEARCH], param: value}))
    assert scim.get(f"/Users/{stored['id']}").json() == stored
