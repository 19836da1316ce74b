"""The bounds Tenantry puts on what a SCIM client sends, checked before anything reaches the database.

RFC 7644 leaves sizes to the service provider (§3.12 lists ``invalidValue``, ``invalidFilter``,
``tooMany``); these are ours, stated in docs/scim.md "Limits". Each exists because without it a request
reached SQL and failed there as a 500 on one backend or the other: PostgreSQL refuses NUL in text and
values longer than a ``varchar(n)`` column; SQLite refuses deep expression trees and ints past 64 bits;
orjson refuses to write JSON nested deeper than 254 levels. Pure: no SQL, no HTTP.
"""

from __future__ import annotations

import re
from typing import Any

from scim2_models import InvalidFilterException, InvalidSyntaxException, InvalidValueException

# JSON bodies: a SCIM resource is at most 4 levels deep (extension → manager → value), a BulkRequest adds 3.
MAX_JSON_DEPTH = 32
# Filters: every IdP look-up is one or two comparisons; 100 is far beyond any we know and far below what
# makes SQLite's expression tree or parameter count overflow.
MAX_FILTER_LENGTH = 8192
MAX_FILTER_TERMS = 100
# Paging: startIndex past a 32-bit int can address nothing (and past 64 bits breaks the OFFSET).
MAX_START_INDEX = 2**31 - 1
# Any string value of a resource, and the lengths of the columns that hold some of them.
MAX_STRING = 65_536
USER_COLUMNS = {"userName": 512, "externalId": 512, "displayName": 512, "name.givenName": 256,
                "name.familyName": 256}
GROUP_COLUMNS = {"displayName": 512, "externalId": 512}
MAX_MEMBER_ID = 36         # group_members.member_id (our ids are UUIDs)
MAX_MEMBER_DISPLAY = 512   # group_members.display
MAX_TYPE = 64              # user_values.type_key: the ``type`` of a multi-valued entry ("work")

_TERM = re.compile(r'"(?:[^"\\]|\\.)*"|\b(?:eq|ne|co|sw|ew|gt|ge|lt|le|pr)\b', re.IGNORECASE)


def check_json(value: Any, depth: int = 0) -> None:
    """Refuse a request body nested deeper than MAX_JSON_DEPTH (400 invalidSyntax), or holding NUL in any
    string (400 invalidValue: PostgreSQL text cannot store it, and no SCIM attribute needs it)."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidSyntaxException(detail=f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidValueException(detail="strings must not contain the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise InvalidValueException(detail="attribute names must not contain the NUL character (\\u0000)")
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)


def check_filter(text: str) -> None:
    """RFC 7644 §3.4.2.2 filters are bounded here: MAX_FILTER_LENGTH characters and MAX_FILTER_TERMS
    attribute expressions (comparisons and ``pr``), counted before parsing (400 invalidFilter)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilterException(detail=f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    if "\x00" in text:
        raise InvalidFilterException(detail="the filter must not contain the NUL character (\\u0000)")
    terms = sum(1 for m in _TERM.finditer(text) if not m.group(0).startswith('"'))
    if terms > MAX_FILTER_TERMS:
        raise InvalidFilterException(
            detail=f"the filter has {terms} attribute expressions; at most {MAX_FILTER_TERMS} are allowed")


def _check_length(attr: str, value: Any, limit: int) -> None:
    if isinstance(value, str) and len(value) > limit:
        raise InvalidValueException(detail=f"{attr} is longer than {limit} characters ({len(value)})")


def check_resource(resource_type: str, doc: dict[str, Any]) -> None:
    """The resource as it is about to be stored: no NUL anywhere, no string over MAX_STRING, the column-held
    attributes within their columns, and each multi-valued entry's ``type`` within MAX_TYPE (400 invalidValue,
    naming the attribute and the limit)."""

    def walk(path: str, value: Any) -> None:
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidValueException(detail=f"{path} must not contain the NUL character (\\u0000)")
            _check_length(path, value, MAX_STRING)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key.lower() == "type" and isinstance(item, str):
                    _check_length(f"{path}.type", item, MAX_TYPE)
                walk(f"{path}.{key}" if path else key, item)
        elif isinstance(value, list):
            for item in value:
                walk(path, item)

    columns = USER_COLUMNS if resource_type == "User" else GROUP_COLUMNS
    for attr, limit in columns.items():
        value: Any = doc
        for part in attr.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        _check_length(attr, value, limit)
    walk("", doc)


def check_member(value: Any, display: Any) -> None:
    """A group member's id and display, which live in columns of ``group_members`` (400 invalidValue)."""
    _check_length("members.value", value, MAX_MEMBER_ID)
    _check_length("members.display", display, MAX_MEMBER_DISPLAY)
    for text in (value, display):
        if isinstance(text, str) and "\x00" in text:
            raise InvalidValueException(detail="members must not contain the NUL character (\\u0000)")


def check_start_index(start: int) -> None:
    if start > MAX_START_INDEX:
        raise InvalidValueException(detail=f"startIndex must be at most {MAX_START_INDEX}")
