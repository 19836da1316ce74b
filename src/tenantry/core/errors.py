"""The base of every domain error: a message and the HTTP status it maps to."""

from __future__ import annotations


class TenantryError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(TenantryError):
    status_code = 404
    code = "not_found"


class Conflict(TenantryError):
    status_code = 409
    code = "conflict"


class Invalid(TenantryError):
    status_code = 400
    code = "invalid"


class PayloadTooLarge(TenantryError):
    """A request body (an upload) over its configured limit (RFC 9110 §15.5.14)."""

    status_code = 413
    code = "too_large"


class Unauthorized(TenantryError):
    """No credential, or one that is unknown or revoked (RFC 6750 §3.1 invalid_token): who is asking?"""

    status_code = 401
    code = "unauthorized"


class Forbidden(TenantryError):
    """A valid credential that may not do this: another scope, or another tenant (RFC 6750 §3.1
    insufficient_scope)."""

    status_code = 403
    code = "forbidden"
