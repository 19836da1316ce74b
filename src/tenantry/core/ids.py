"""Identifiers and secrets."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def new_id() -> str:
    return str(uuid.uuid4())


def new_secret(prefix: str) -> str:
    """A bearer secret: a readable prefix (for leak scanners) and 256 random bits."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    """Secrets are high-entropy, so one SHA-256 is enough to store them without keeping them."""
    return hashlib.sha256(secret.encode()).hexdigest()
