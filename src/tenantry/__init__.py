"""Tenantry: a self-hosted directory, SCIM provisioning, communications archive and compliance system."""

__version__ = "0.1.0"
