"""SCIM 2.0 (RFC 7643 core schema, RFC 7644 protocol) on top of scim2-models.

The wire models, filter grammar and PATCH semantics come from scim2-models; this package adds the resource
types Tenantry serves (with the enterprise and GroupTalk extensions of seed 003), the tolerance policy for
what Entra ID and Okta really send, and the translation of errors into RFC 7644 §3.12 bodies.
"""
