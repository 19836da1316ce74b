"""What voice hands across its boundary (API and CLI): typed results (``core.results``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckLine:
    """One line of ``tenantry voice check``: what was checked, of what, whether it passed, and the fix."""

    check: str          # a stable name: "trunk-target", "trunk-priority", "dns-edge-a", "tls-gateway", …
    subject: str        # what it is about: a gateway, a site, a user, an FQDN
    ok: bool
    detail: str         # what was found
    fix: str | None     # what to do when not ok (None when ok)
