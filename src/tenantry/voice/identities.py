"""Who a cmdlet's ``-Identity`` names, as the seed's cmdlets read it: a SIP address (``sip:alice@contoso.com`` or
``alice@contoso.com``), a UPN (userName), a display name ("Bob Kelly"), a user id, or a display name with ``*``
wildcards ("*Smith": every user whose display name ends in "Smith").

A wildcard may name several users: a command that shows or lists takes them all (``resolve``), a command that
changes one user refuses the list (``resolve_one``), so that "*Smith" never changes the wrong Smith.
"""

from __future__ import annotations

import re

from tenantry.core.errors import Invalid, NotFound
from tenantry.directory.service import DirectoryService, DirectoryUser

MAX_IDENTITY = 512
_SHOWN = 10   # users named in an "it matches several" refusal


def sip_address(user: DirectoryUser) -> str:
    """A user's SIP address: their primary e-mail address (else their userName), lower case, without "sip:"."""
    return user.email.strip().lower()


def resolve(directory: DirectoryService, tenant: str, identity: str) -> list[DirectoryUser]:
    """Every user ``identity`` names, by userName; NotFound when it names nobody."""
    text = _clean(identity)
    address = text[4:] if text.lower().startswith("sip:") else text
    if "*" not in text:
        if "@" in address:
            found = directory.find_users_by_email(tenant, [address]).get(address.lower())
            if found:
                return found
        by_id = directory.users_by_id(tenant, [text])
        if by_id:
            return by_id
    pattern = _pattern(text)
    everyone = directory.users_by_id(tenant, directory.user_ids(tenant))
    matched = [u for u in everyone if u.display_name and pattern.fullmatch(u.display_name.strip())]
    if not matched and "*" not in text:
        # Get-CsOnlineUser takes a UPN without its domain as well; a user name is matched whole.
        matched = [u for u in everyone if u.user_name.lower() == text.lower()]
    if not matched:
        raise NotFound(f"no user {identity!r}: name a SIP address, a UPN, a display name or a *wildcard")
    return sorted(matched, key=lambda u: u.user_name.lower())


def resolve_one(directory: DirectoryService, tenant: str, identity: str) -> DirectoryUser:
    """The one user ``identity`` names; Invalid, listing them, when it names several."""
    found = resolve(directory, tenant, identity)
    if len(found) > 1:
        names = ", ".join(u.user_name for u in found[:_SHOWN]) + (" …" if len(found) > _SHOWN else "")
        raise Invalid(f"{identity!r} names {len(found)} users ({names}): name one of them (its SIP address or UPN)")
    return found[0]


def _clean(identity: str) -> str:
    text = identity.strip()
    if not text or len(text) > MAX_IDENTITY:
        raise Invalid(f"an identity is 1 to {MAX_IDENTITY} characters")
    return text


def _pattern(text: str) -> re.Pattern[str]:
    """Display names match case-insensitively, whole; ``*`` is any run of characters, nothing else is special."""
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.IGNORECASE | re.DOTALL)
