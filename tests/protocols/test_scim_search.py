"""Query parameters, SearchRequests and ListResponses (protocols.scim.search), on RFC 7644 §3.4's samples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    SearchRequest,
)

from tenantry.protocols.scim.limits import MAX_FILTER_LENGTH, MAX_START_INDEX
from tenantry.protocols.scim.resources import TenantryGroup, TenantryUser
from tenantry.protocols.scim.search import (
    Projection,
    SearchSpec,
    SortOrder,
    list_response,
    project,
    read_projection,
    read_search,
    simple_equality,
    sort_resources,
)
from tests.conftest import SAMPLES

RFC = SAMPLES / "rfc7644"


def read(params: dict[str, Any]) -> SearchSpec:
    return read_search(params, default_count=100, max_results=1000)


def test_rfc_search_request_reads_as_scim2_models_reads_it() -> None:
    payload = json.loads((RFC / "3.4.3-search-request.json").read_text())
    spec = read(payload)
    model = SearchRequest[TenantryUser].model_validate(payload, scim_ctx=Context.SEARCH_REQUEST)
    assert spec == SearchSpec(filter='displayName sw "smith"', start_index=1, count=10,
                              projection=Projection(attributes=["displayName", "userName"]))
    assert (str(model.filter), model.start_index, model.count) == (spec.filter, spec.start_index, spec.count)
    assert [str(a) for a in model.attributes or ()] == spec.projection.attributes


def test_query_string_parameters_read_like_a_search_request() -> None:
    # RFC 7644 §3.4.2: GET /Users?filter=…&sortBy=userName&sortOrder=descending&startIndex=1&count=10
    spec = read({"filter": 'userName eq "bjensen"', "sortBy": "userName", "sortOrder": "Descending",
                 "startIndex": "1", "count": "10", "excludedAttributes": "members, meta"})
    assert spec == SearchSpec('userName eq "bjensen"', "userName", SortOrder.descending, 1, 10,
                              Projection(excluded_attributes=["members", "meta"]))
    assert spec.descending and not spec.projection.with_members
    assert read({}) == SearchSpec(count=100)


@pytest.mark.parametrize(("params", "start", "count"), [
    ({"startIndex": "0", "count": "-5"}, 1, 0),      # §3.4.2.4: below 1 is 1, below 0 is 0
    ({"startIndex": -3}, 1, 100),
    ({"count": 5000}, 1, 1000),                      # at most maxResults
    ({"startIndex": 2.0, "count": " 7 "}, 2, 7),
    ({"startIndex": "", "count": ""}, 1, 100),
])
def test_paging_is_read_as_the_rfc_says(params: dict[str, Any], start: int, count: int) -> None:
    spec = read(params)
    assert (spec.start_index, spec.count) == (start, count)


@pytest.mark.parametrize("params", [
    {"count": "ten"}, {"startIndex": "²"}, {"startIndex": "--1"}, {"count": True}, {"count": 1.5},
    {"startIndex": str(MAX_START_INDEX + 1)}, {"sortBy": 3}, {"sortOrder": "up"}, {"sortOrder": 1},
    {"attributes": 5}, {"excludedAttributes": ["a", 1]},
])
def test_bad_parameters_are_invalid_value(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueException):
        read(params)


@pytest.mark.parametrize("params", [{"filter": 5}, {"filter": "x" * (MAX_FILTER_LENGTH + 1)}])
def test_bad_filters_are_invalid_filter_before_any_parsing(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilterException):
        read(params)


def test_rfc_list_response_is_what_list_response_builds() -> None:
    sample = json.loads((RFC / "3.4.3-list-response.json").read_text())
    built = list_response(sample["Resources"], sample["totalResults"], sample["startIndex"])
    # The RFC shows two of the page's ten resources; itemsPerPage counts the resources the page holds.
    assert built == {**sample, "itemsPerPage": 2}
    parsed = ListResponse[TenantryUser | TenantryGroup].model_validate(built, scim_ctx=Context.SEARCH_RESPONSE)
    assert parsed.total_results == 100 and len(parsed.resources or ()) == 2


@pytest.mark.parametrize(("text", "found"), [
    ('userName eq "bjensen"', ("username", "bjensen")),                       # RFC 7644 §3.4.2.2
    ('  USERNAME Eq "Bjensen"  ', ("username", "Bjensen")),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a\\"b"', ("username", 'a"b')),
    ('externalId eq "x"', ("externalid", "x")),
    ('id eq "\\u00e9"', ("id", "é")),
    ('userName eq "a" and active eq true', None),
    ('userName co "a"', None),
    ('emails eq "a"', None),
    ('userName eq "\\x"', None),                                             # not a JSON string
])
def test_simple_equality_recognises_only_the_plain_look_up(text: str, found: tuple[str, str] | None) -> None:
    assert simple_equality(text) == found


def test_sort_puts_missing_values_last_ascending_and_first_descending() -> None:
    docs = [{"id": "1", "name": {"familyName": "b"}}, {"id": "2"}, {"id": "3", "name": {"familyName": "A"}}]
    assert [d["id"] for d in sort_resources(docs, "name.familyName", False)] == ["3", "1", "2"]
    assert [d["id"] for d in sort_resources(docs, "name.familyName", True)] == ["2", "1", "3"]


def test_sort_on_a_multi_valued_attribute_uses_the_primary_entry() -> None:
    docs = [{"id": "1", "emails": [{"value": "a@x"}, {"value": "z@x", "primary": True}]},
            {"id": "2", "emails": [{"value": "m@x"}]}]
    assert [d["id"] for d in sort_resources(docs, "emails", False)] == ["2", "1"]
    assert [d["id"] for d in sort_resources(docs, "emails.value", True)] == ["1", "2"]


def test_projection_applies_the_schema_returned_rules() -> None:
    doc = {"id": "1", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "u",
           "displayName": "U", "title": "T"}
    assert project("User", doc, Projection()) is doc
    only = project("User", doc, read_projection({"attributes": "displayName"}))
    assert only["displayName"] == "U" and "title" not in only and only["id"] == "1"   # id is returned always
    assert "title" not in project("User", doc, Projection(excluded_attributes=["title"]))
