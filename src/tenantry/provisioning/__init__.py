"""Outbound provisioning (Part B): push the directory into downstream SCIM apps, the way Entra ID does."""
