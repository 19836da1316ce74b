"""The parts of Tenantry, in the order their routes are included. Each names a module with a
``register(registry)`` (``core.registry``); adding a part is adding it here (docs/ARCHITECTURE.md, "How to add
a part")."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from tenantry.core.registry import Registry

DOMAINS = (
    "tenantry.directory.register",
    "tenantry.connectors.register",
    "tenantry.archive.register",
    "tenantry.provisioning.register",
    "tenantry.auth.register",
    "tenantry.trust.register",
    "tenantry.voice.register",
    "tenantry.console.register",
)


@cache
def registry() -> Registry:
    """Every domain's contributions, collected once."""
    reg = Registry()
    for name in DOMAINS:
        import_module(name).register(reg)
    return reg
