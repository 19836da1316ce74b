"""Versions and conditional requests of RFC 7644 §3.14: the ETag of a resource, If-Match and If-None-Match.

A resource's version is an integer that every change raises; its entity-tag is the weak ``W/"<version>"``
(RFC 7232 §2.3), sent as ``meta.version`` and in the ``ETag`` header. Pure: the caller reads the headers and
the stored version, this module says whether the request may go on.
"""

from __future__ import annotations

from scim2_models import PreconditionFailedException

from tenantry.protocols.scim.errors import NotModified


def etag(version: int) -> str:
    """The weak entity-tag of a resource version: ``W/"3"``."""
    return f'W/"{version}"'


def _opaque(tag: str) -> str:
    """The opaque part of an entity-tag, for the weak comparison of RFC 7232 §2.3.2 (``W/"3"`` and ``"3"``
    compare equal)."""
    tag = tag.strip()
    return tag.removeprefix("W/")


def matches(header: str, current: str) -> bool:
    """Whether an If-Match or If-None-Match header names the current entity-tag ``current``: ``*`` (any
    version), or a comma-separated list holding it under the weak comparison (RFC 7232 §3.1, §3.2)."""
    wanted = _opaque(current)
    return any(tag.strip() == "*" or _opaque(tag) == wanted for tag in header.split(","))


def check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7644 §3.14: "If-Match … the service provider MUST … [reject] the operation (412) if the versions do
    not match". A write whose If-Match names another version fails and changes nothing; no header, no check."""
    if if_match is None:
        return
    if not matches(if_match, etag(version)):
        raise PreconditionFailedException(detail=f"resource is at version {etag(version)}, not {if_match}")


def check_if_none_match(if_none_match: str | None, current: str) -> None:
    """RFC 7644 §3.14: a GET whose If-None-Match names the current version is answered 304 Not Modified
    (raised as ``NotModified``; the HTTP edge renders it without a body)."""
    if if_none_match is not None and matches(if_none_match, current):
        raise NotModified()


__all__ = ["check_if_match", "check_if_none_match", "etag", "matches"]
