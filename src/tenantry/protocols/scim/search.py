"""Queries, RFC 7644 §3.4.2–3.4.3 and §3.9: query parameters or a SearchRequest → ``SearchSpec``; ListResponse.

The same parameters arrive as query strings (``GET /Users?startIndex=1&count=10``) and as a SearchRequest's
JSON (``POST /Users/.search``); both are read into one typed ``SearchSpec``, refusing what is not an integer
or a string with 400 invalidValue (never a 500). ``project`` applies ``attributes``/``excludedAttributes``
to a resource, ``sort_resources`` orders resources where no column can, ``list_response`` builds the answer.
Pure: no SQL, no HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    ResponseParameters,
    SearchRequest,
)

from tenantry.protocols.scim.errors import validation_error_to_scim
from tenantry.protocols.scim.limits import check_filter, check_start_index
from tenantry.protocols.scim.resources import RESOURCE_MODELS

LIST_RESPONSE = str(ListResponse.__schema__)
SortOrder = SearchRequest.SortOrder

_ASCII_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class Projection:
    """``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9): which attributes to return."""

    attributes: list[str] | None = None
    excluded_attributes: list[str] | None = None

    @property
    def with_members(self) -> bool:
        """Whether a group's ``members`` are wanted: listing 50,000 of them is most of the cost of a read."""
        return not any(e.lower().endswith("members") for e in self.excluded_attributes or ())


@dataclass(frozen=True)
class SearchSpec:
    """One query, typed and bounded: what the store needs to find a page, and what to return of it."""

    filter: str | None = None
    sort_by: str | None = None
    sort_order: SearchRequest.SortOrder | None = None
    start_index: int = 1
    count: int = 0
    projection: Projection = Projection()

    @property
    def descending(self) -> bool:
        return self.sort_order is SortOrder.descending


def read_projection(params: Mapping[str, Any]) -> Projection:
    """``attributes``/``excludedAttributes``: comma-separated strings (a query) or lists of strings (a body)."""
    return Projection(_str_list("attributes", params.get("attributes")),
                      _str_list("excludedAttributes", params.get("excludedAttributes")))


def read_search(params: Mapping[str, Any], *, default_count: int, max_results: int) -> SearchSpec:
    """A query's parameters (query string or SearchRequest) as a SearchSpec, or 400 with the SCIM error.

    startIndex and count (§3.4.2.4) below 1 and below 0 are read as 1 and 0, as the RFC says; count is at most
    ``max_results`` (the ServiceProviderConfig's filter.maxResults) and ``default_count`` when absent; a
    startIndex past ``limits.MAX_START_INDEX`` is refused. The filter is bounded (``limits.check_filter``)
    before anything parses it.
    """
    projection = read_projection(params)
    start = _int("startIndex", params.get("startIndex"))
    count = _int("count", params.get("count"))
    start = 1 if start is None else max(1, start)
    check_start_index(start)
    count = default_count if count is None else max(0, min(count, max_results))
    filter_text = params.get("filter")
    if filter_text is not None and not isinstance(filter_text, str):
        raise InvalidFilterException(detail="filter must be a string")
    if filter_text:
        check_filter(filter_text)
    sort_by = params.get("sortBy")
    if sort_by is not None and not isinstance(sort_by, str):
        raise InvalidValueException(detail="sortBy must be a string")
    return SearchSpec(filter_text or None, sort_by or None, read_sort_order(params.get("sortOrder")), start, count,
                      projection)


def read_sort_order(value: Any) -> SearchRequest.SortOrder | None:
    """``sortOrder`` (§3.4.2.3): "ascending" or "descending", in any case; absent or empty is None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValueException(detail="sortOrder must be a string")
    if not value:
        return None
    try:
        return SortOrder(value.lower())
    except ValueError:
        raise InvalidValueException(detail="sortOrder must be 'ascending' or 'descending'") from None


def _int(name: str, value: Any) -> int | None:
    """An integer from a query string ("10") or a SearchRequest (10); None when absent; else 400 invalidValue."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():  # JSON numbers past 64 bits arrive as floats
        return int(value)
    # ASCII digits with at most one sign: str.isdigit() also takes "²" and "--1", which int() refuses (a 500).
    if isinstance(value, str) and len(value) <= 40 and _ASCII_INT.fullmatch(value.strip()):
        return int(value)
    raise InvalidValueException(detail=f"{name} must be an integer")


def _str_list(name: str, value: Any) -> list[str] | None:
    if value is None or isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()] if value else None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()] or None
    raise InvalidValueException(detail=f"{name} must be a string or a list of strings")


# -- the common IdP look-up ------------------------------------------------------------------------

_SIMPLE_EQ = re.compile(
    r'^\s*(?:urn:ietf:params:scim:schemas:core:2\.0:user:)?(username|externalid|id)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$',
    re.IGNORECASE,
)


def simple_equality(text: str) -> tuple[str, str] | None:
    """(attribute, value) when the filter is exactly ``userName|externalId|id eq "<string>"``, else None.

    What every IdP sends before it creates a user, so a store can answer it without the general parser;
    anything else — and any doubt — takes the full path. compValue strings are JSON strings (§3.4.2.2), so
    the value is read as JSON.
    """
    match = _SIMPLE_EQ.match(text)
    if match is None:
        return None
    try:
        value = orjson.loads(f'"{match.group(2)}"')
    except orjson.JSONDecodeError:
        return None
    return (match.group(1).lower(), value) if isinstance(value, str) else None


# -- answers -------------------------------------------------------------------------------------------


def project(resource_type: str, doc: dict[str, Any], projection: Projection) -> dict[str, Any]:
    """Apply ``attributes``/``excludedAttributes`` (RFC 7644 §3.4.2.5) with the schema's ``returned`` rules."""
    if not projection.attributes and not projection.excluded_attributes:
        return doc
    model = RESOURCE_MODELS[resource_type]
    try:
        instance = model.model_validate(doc)
        params: Any = ResponseParameters(attributes=projection.attributes,
                                         excluded_attributes=projection.excluded_attributes)
        out: dict[str, Any] = instance.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=params
        )
    except ValidationError as exc:
        raise validation_error_to_scim(exc) from exc
    return out


def list_response(resources: Sequence[dict[str, Any]], total: int, start_index: int = 1) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2): ``itemsPerPage`` is the number of resources in this page."""
    return {"schemas": [LIST_RESPONSE], "totalResults": total, "itemsPerPage": len(resources),
            "startIndex": start_index, "Resources": list(resources)}


def sort_resources(docs: list[dict[str, Any]], sort_by: str, descending: bool) -> list[dict[str, Any]]:
    """Order resources by ``sortBy`` (§3.4.2.3): a multi-valued attribute by its primary entry (else its
    first), strings without case; "missing values sort last ascending, first descending"."""
    parts = sort_by.split(".")

    def entry(values: list[Any]) -> Any:
        # "sorted by the value of the primary attribute …, if any, or else the first value in the list, if any"
        primary = [c for c in values if isinstance(c, dict) and c.get("primary")]
        return (primary or values or [None])[0]

    def value(doc: dict[str, Any]) -> Any:
        current: Any = doc
        for part in parts:
            if isinstance(current, list):
                current = entry(current)
            if not isinstance(current, dict):
                return None
            current = next((v for k, v in current.items() if k.lower() == part.lower()), None)
        if isinstance(current, list):
            current = entry(current)
        if isinstance(current, dict):
            current = current.get("value")
        return current.lower() if isinstance(current, str) else current

    present = [d for d in docs if value(d) is not None]
    absent = [d for d in docs if value(d) is None]
    present.sort(key=value, reverse=descending)
    return absent + present if descending else present + absent


__all__ = ["LIST_RESPONSE", "Projection", "SearchSpec", "SortOrder", "list_response", "project", "read_projection",
           "read_search", "read_sort_order", "simple_equality", "sort_resources"]
