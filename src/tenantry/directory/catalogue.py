"""The fixed catalogues: licence SKUs and management roles that other parts of Tenantry check.

Seed 001 needs E5, or E3 plus the Phone System add-on, for hybrid voice; seed 000 needs the
"Mailbox Import Export" role to create a connector; seed 002 needs UserApplication and ArchiveApplication.
"""

from __future__ import annotations

LICENCES: dict[str, str] = {
    "E3": "Office 365 E3",
    "E5": "Office 365 E5 (includes Phone System)",
    "PHONE_SYSTEM": "Phone System add-on",
    "BUSINESS_BASIC": "Microsoft 365 Business Basic",
}

ROLES: dict[str, str] = {
    "Mailbox Import Export": "Create data connectors and import items into mailboxes.",
    "UserApplication": "Partner applications act on behalf of users (server-to-server trust).",
    "ArchiveApplication": "Partner applications deposit archived items into mailboxes.",
    "Organization Management": "Administer the whole tenant.",
    "Compliance Administrator": "Content search, holds, retention and eDiscovery.",
    "eDiscovery Manager": "eDiscovery cases: custodians, searches, holds and exports of the cases.",
    "Voice Administrator": "PSTN sites, gateways, policies and user voice settings.",
    "Application Administrator": "Configure outbound provisioning apps (Entra's Application Administrator).",
}

# Built-in role groups created with every tenant (name → roles). Seed 000: "Mailbox Import Export" is in no
# role group by default — an administrator adds it. (Tenants created before this keep the grant they have.)
DEFAULT_ROLE_GROUPS: dict[str, list[str]] = {
    "Organization Management": ["Organization Management"],
    "Compliance Management": ["Compliance Administrator"],
    "Application Management": ["Application Administrator"],
    "eDiscovery Management": ["eDiscovery Manager"],
}
