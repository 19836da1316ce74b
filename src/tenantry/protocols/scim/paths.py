"""The shapes of the attribute paths (RFC 7644 §3.10) that outbound mappings write and a PATCH diff sends.

Plain (``userName``, ``name.givenName``), URN-qualified
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter``), and the two value selections
Entra's mappings use: ``emails[type eq "work"].value`` and ``roles[primary eq "True"].value``. Pure: shapes
only; reading and building resources by path is ``provisioning.paths``.
"""

from __future__ import annotations

import re

URN_PATH = re.compile(r"^(urn:[^ ]+):([A-Za-z$][\w$-]*(?:\.[A-Za-z$][\w$-]*)?)$")
TYPED_PATH = re.compile(r'^([A-Za-z$][\w$-]*)\[type eq "([^"]*)"\]\.([A-Za-z$][\w$-]*)$', re.IGNORECASE)
PRIMARY_PATH = re.compile(r'^([A-Za-z$][\w$-]*)\[primary eq (?:"true"|true)\]\.([A-Za-z$][\w$-]*)$', re.IGNORECASE)
PLAIN_PATH = re.compile(r"^[A-Za-z$][\w$-]*(?:\.[A-Za-z$][\w$-]*)?$")
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:user"


def split_urn(path: str) -> tuple[str | None, str]:
    """(extension URN, the path inside it); the URN is None for the core schema's attributes."""
    match = URN_PATH.match(path)
    if match and match.group(1).lower() != CORE_USER:
        return match.group(1), match.group(2)
    return None, match.group(2) if match else path


def typed_path(path: str) -> tuple[str, str, str] | None:
    """``emails[type eq "work"].value`` → ("emails", "work", "value"); None for other paths."""
    urn, rest = split_urn(path)
    match = TYPED_PATH.match(rest)
    if urn or not match:
        return None
    return match.group(1), match.group(2), match.group(3)


def primary_path(path: str) -> tuple[str, str] | None:
    """``roles[primary eq "True"].value`` → ("roles", "value"); None for other paths."""
    urn, rest = split_urn(path)
    match = PRIMARY_PATH.match(rest)
    if urn or not match:
        return None
    return match.group(1), match.group(2)


__all__ = ["PLAIN_PATH", "PRIMARY_PATH", "TYPED_PATH", "URN_PATH", "primary_path", "split_urn", "typed_path"]
