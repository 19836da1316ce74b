"""Assertions shared by the identity-provider replays (test_entra.py, test_okta.py)."""

from __future__ import annotations

from typing import Any

SCIM_JSON = "application/scim+json"


def media_type(response: Any) -> str:
    return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def describe(response: Any) -> str:
    req = response.request
    ctype = response.headers.get("content-type")
    return f"{req.method} {req.url} -> {response.status_code} {ctype}: {response.text}"


def expect(response: Any, status: int) -> Any:
    """The response has ``status``; its body, for any status but 204, is SCIM JSON."""
    assert response.status_code == status, describe(response)
    if status == 204:
        assert not response.content, describe(response)
        return None
    assert media_type(response) == SCIM_JSON, describe(response)
    return response.json()


def expect_200_or_204(response: Any) -> Any:
    """A PATCH answered either way RFC 7644 §3.5.2 allows: the body of a 200 (SCIM JSON), None for a 204."""
    assert response.status_code in (200, 204), describe(response)
    if response.status_code == 204:
        assert not response.content, describe(response)
        return None
    assert media_type(response) == SCIM_JSON, describe(response)
    return response.json()
