"""Who a sign-in names, in the directory: the one active user of the tenant whose ``userName`` (or one of whose
e-mail addresses) is the value given. Read through the directory's own services (its SCIM store's indexed
filters, ``DirectoryService.users_by_id``), never its tables."""

from __future__ import annotations

import json
import logging

from scim2_models import SCIMException

from tenantry.core.errors import TenantryError
from tenantry.directory.scim_store import ScimStore
from tenantry.directory.service import DirectoryService

log = logging.getLogger(__name__)

# The directory attribute a sign-in's name is compared with → its SCIM filter path (RFC 7644 §3.4.2.2).
ATTRIBUTES = {"userName": "userName", "emails": "emails.value"}
MAX_NAME = 512


class DirectoryUsers:
    def __init__(self, directory: DirectoryService, scim: ScimStore) -> None:
        self.directory = directory
        self.scim = scim

    def find(self, tenant: str, attribute: str, value: str) -> str | None:
        """The id of the one active user whose ``attribute`` (``userName`` or ``emails``) equals ``value``
        (case-insensitively, as the directory compares them); None for none, an inactive one, or several."""
        path = ATTRIBUTES.get(attribute)
        value = value.strip()
        if path is None or not value or len(value) > MAX_NAME or any(ord(ch) < 0x20 for ch in value):
            return None
        try:
            # A SCIM string literal is a JSON string: json.dumps quotes and escapes it.
            # A look-up, not a listing: a user hidden from address lists is found too.
            page = self.scim.search(tenant, "User", filter_text=f"{path} eq {json.dumps(value)}", count=2,
                                    with_members=False, include_hidden=True)
        except (SCIMException, TenantryError):
            return None
        if page.total > 1:
            log.warning("sign-in refused: %d users of tenant %s have %s %r", page.total, tenant, attribute, value)
            return None
        if page.total == 0 or not page.resources:
            return None
        user_id = str(page.resources[0]["id"])
        return user_id if self.is_active(tenant, user_id) else None

    def is_active(self, tenant: str, user_id: str) -> bool:
        found = self.directory.users_by_id(tenant, [user_id])
        return bool(found) and found[0].active

    def resolve(self, tenant: str, who: str) -> str | None:
        """A user named by the operator: an id, a userName or an e-mail address (active or not)."""
        if self.directory.users_by_id(tenant, [who]):
            return who
        for attribute in ATTRIBUTES.values():
            try:
                page = self.scim.search(tenant, "User", filter_text=f"{attribute} eq {json.dumps(who.strip())}",
                                        count=2, with_members=False, include_hidden=True)
            except (SCIMException, TenantryError):
                return None
            if page.total == 1 and page.resources:
                return str(page.resources[0]["id"])
        return None

    def user_name(self, tenant: str, user_id: str) -> str | None:
        found = self.directory.users_by_id(tenant, [user_id])
        return found[0].user_name if found else None
