"""userName look-alikes (zero-width, fullwidth, white space at the ends) are one name: 409 and one look-up key."""

from __future__ import annotations

import pytest

from tenantry.directory.scim_filter import user_name_key
from tests.conftest import ScimClient, user_payload

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

LOOKALIKES = [
    "alice@contoso.com ",  # trailing space
    " alice@contoso.com",  # leading space
    "ａｌｉｃｅ@contoso.com",  # fullwidth letters
    "ali\u200bce@contoso.com",  # zero-width space
    "\u200ealice@contoso.com",  # left-to-right mark, as iOS puts before names
    "ALI\u00adCE@CONTOSO.COM",  # soft hyphen and upper case
    "alice\uff20contoso.com",  # fullwidth commercial at
    "ali\u034fce@contoso.com",  # combining grapheme joiner (default-ignorable, not Cf)
    "alice\ufe0f@contoso.com",  # variation selector 16
    "\u3164alice@contoso.com",  # Hangul filler
    "alice@contoso.com\U000e0100",  # variation selector 17
]


@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalike_username_key_equals_the_plain_key(name: str) -> None:
    assert user_name_key(name) == "alice@contoso.com"


def test_distinct_names_keep_distinct_keys() -> None:
    # Diacritics and other scripts are real differences: NFKC does not fold "é" to "e" or Cyrillic "а" to "a".
    keys = {user_name_key(n) for n in ("alice@contoso.com", "alicé@contoso.com", "\u0430lice@contoso.com")}
    assert len(keys) == 3


@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalike_username_is_refused_as_not_unique(scim: ScimClient, name: str) -> None:
    first = scim.post("/Users", json=user_payload("alice@contoso.com"))
    assert first.status_code == 201, first.text
    r = scim.post("/Users", json=user_payload(name))
    assert r.status_code == 409, r.text
    assert r.json()["scimType"] == "uniqueness"
    assert scim.get("/Users").json()["totalResults"] == 1


@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalike_is_refused_on_put_patch_and_bulk_too(scim: ScimClient, name: str) -> None:
    scim.post("/Users", json=user_payload("alice@contoso.com"))
    bob = scim.post("/Users", json=user_payload("bob@contoso.com")).json()
    assert scim.put(f"/Users/{bob['id']}", json=user_payload(name)).status_code == 409
    r = scim.patch(f"/Users/{bob['id']}", json={
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName", "value": name}]})
    assert r.status_code == 409, r.text
    r = scim.post("/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "b1", "data": user_payload(name)}]})
    assert r.json()["Operations"][0]["status"] == "409", r.text
    assert scim.get(f"/Users/{bob['id']}").json()["userName"] == "bob@contoso.com"
    assert scim.get("/Users").json()["totalResults"] == 2


@pytest.mark.parametrize("name", LOOKALIKES)
def test_username_eq_filter_finds_the_user_by_any_lookalike(scim: ScimClient, name: str) -> None:
    alice = scim.post("/Users", json=user_payload(
        "alice@contoso.com", emails=[{"value": "alice@contoso.com", "primary": True}])).json()
    # The fast path (exactly `userName eq "…"`) and the general compiler must agree.
    # The third filter cannot be said in SQL alone: its candidates are checked by scim2-models' evaluator.
    for flt in (f'userName eq "{name}"', f'userName eq "{name}" and active eq true',
                f'userName eq "{name}" and emails[primary eq false or primary pr]'):
        found = scim.get("/Users", params={"filter": flt}).json()
        assert [u["id"] for u in found["Resources"]] == [alice["id"]], (flt, found)
    found = scim.post("/Users/.search", json={"filter": f'userName eq "{name}"'}).json()
    assert [u["id"] for u in found["Resources"]] == [alice["id"]]


def test_username_is_returned_as_sent_but_trimmed(scim: ScimClient) -> None:
    created = scim.post("/Users", json=user_payload("  Ａlice@Contoso.com\t")).json()
    # Width and case are kept as the IdP sent them (it compares what it sent); only white space at the ends goes.
    assert created["userName"] == "Ａlice@Contoso.com"
    assert scim.get(f"/Users/{created['id']}").json()["userName"] == "Ａlice@Contoso.com"


@pytest.mark.parametrize("name", ["   ", "\u200b", " \u200b\u200d "])
def test_username_that_is_only_blank_or_invisible_is_refused(scim: ScimClient, name: str) -> None:
    r = scim.post("/Users", json=user_payload(name))
    assert r.status_code == 400, r.text
    assert r.json()["scimType"] == "invalidValue"
    assert scim.get("/Users").json()["totalResults"] == 0


def test_renaming_a_user_to_its_own_lookalike_is_not_a_clash(scim: ScimClient) -> None:
    alice = scim.post("/Users", json=user_payload("alice@contoso.com")).json()
    r = scim.patch(f"/Users/{alice['id']}", json={
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName", "value": "Alice@contoso.com "}]})
    assert r.status_code == 200, r.text
    assert r.json()["userName"] == "Alice@contoso.com"
