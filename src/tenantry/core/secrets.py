"""Encryption at rest for credentials Tenantry must replay (a connector's source password, a SCIM app's token).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under one key: ``TENANTRY_SECRET_KEY`` if set,
else ``<data_dir>/secret.key``, created with mode 0600 on first use. Losing the key loses those credentials
(they must be entered again), never archived data. The same key is the root of the installation's other keys
(``derive``: the console's session-cookie signatures), so that there is one secret to keep.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tenantry.core.errors import Invalid


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive(self, purpose: str) -> bytes:
        """A 256-bit key for one purpose (``"console-session"``), derived from this key with HKDF-SHA256
        (RFC 5869): keys of different purposes are independent, and none reveals the sealing key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"tenantry:{purpose}".encode()).derive(self._key)

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        if secret_key:
            return cls(secret_key.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            # Written whole under another name, then linked into place (a link never replaces a file): of several
            # processes starting at once on a fresh data folder, one key wins and none reads a half-written file.
            draft = data_dir / f".secret.key.{os.getpid()}.{os.urandom(4).hex()}"
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key())
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(draft, path)
            finally:
                draft.unlink()
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise Invalid("a stored credential cannot be decrypted with this secret key") from exc
