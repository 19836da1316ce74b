"""RFC 7644 §3.12 errors: every failure becomes an ``Error`` body with ``status`` and, where one fits, ``scimType``.

scim2-models gives one exception class per ``scimType``; this module adds the few statuses it has no class
for and turns pydantic validation errors into the SCIM error they stand for.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Error,
    InvalidSyntaxException,
    InvalidValueException,
    SCIMException,
)


def validation_error_to_scim(exc: ValidationError) -> SCIMException:
    """The first error of a pydantic validation, as the SCIM exception it stands for."""
    first: dict[str, Any] = dict(exc.errors()[0])
    # An attribute no schema defines is a structure problem, not a bad value (RFC 7644 §3.12 invalidSyntax).
    if first.get("type") in {"extra_forbidden", "unknown_extension_schema"}:
        loc = ".".join(str(p) for p in first.get("loc", ()))
        what = f"unknown attribute {loc!r}" if loc else first.get("msg", "unknown attribute")
        return InvalidSyntaxException(detail=f"{what}: no schema of this resource defines it")
    error = Error.from_validation_error(first)
    detail = error.detail or first.get("msg") or "invalid value"
    if error.scim_type == "invalidSyntax":
        return InvalidSyntaxException(detail=detail)
    if error.scim_type in (None, "invalidValue"):
        return InvalidValueException(detail=detail)
    return SCIMException.from_error(error)


def error_body(exc: SCIMException) -> dict[str, Any]:
    body: dict[str, Any] = exc.to_error().model_dump()
    body["status"] = str(exc.status)
    return body


class MethodNotAllowed(SCIMException):
    status = 405
    _default_detail = "Method not allowed on this endpoint"


class NotCommitted(SCIMException):
    """A Bulk operation done in a transaction whose commit failed: it did not happen (``bulk.run_bulk``)."""

    status = 500
    _default_detail = "The operation could not be committed"


class NotModified(SCIMException):
    """Not an error for the client: If-None-Match matched (RFC 7644 §3.14)."""

    status = 304
    _default_detail = "Not modified"
