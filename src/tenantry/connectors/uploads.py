"""Export files handed to a connector whose kind takes files: streamed into the upload folder under their
SHA-256 (never a name the client chose), checked against the export limits before any run, recorded once."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import select

from tenantry.connectors.items import printable
from tenantry.connectors.models import ExportFile
from tenantry.connectors.records import get_connector
from tenantry.connectors.registry import Environment, Kinds
from tenantry.connectors.results import ExportAdded
from tenantry.core.clock import utcnow
from tenantry.core.db import Database
from tenantry.core.errors import Invalid, PayloadTooLarge
from tenantry.directory.service import DirectoryService
from tenantry.protocols.whatsapp import export_refusal, zip_refusal

_CHUNK = 1024 * 1024


@dataclass
class ExportFiles:
    db: Database
    directory: DirectoryService
    kinds: Kinds
    env: Environment
    upload_dir: Path
    max_bytes: int                # TENANTRY_UPLOAD_MAX_BYTES: a larger upload is refused (413), nothing kept

    def add(self, tenant: str, connector_id: str, data: bytes | Path | IO[bytes], filename: str,
            owner_user: str, chat_name: str | None = None, *, move: bool = False) -> ExportAdded:
        """Hand an export file to a whatsapp-export connector; a file already handed in is not added twice.

        ``data`` is the file's bytes, its path, or a binary stream read in chunks: it is copied to the upload
        folder without being held in memory, and refused past ``max_bytes`` (413, nothing kept); with
        ``move`` a path in the upload folder (``incoming_file``) is taken over instead of copied. A
        zip whose headers are over the export limits (too many members, too large uncompressed, a chat
        text compressed like a bomb) is refused here (400), before any run, and so is a file whose first MiB
        of chat text has no line with a date and an author (not an export at all).
        """
        owner_id = self._owner(tenant, owner_user)
        with self.db.session() as session:
            if not self.kinds.source(get_connector(session, tenant, connector_id).kind).takes_files:
                raise Invalid("export files go to a whatsapp-export connector")
        tmp, digest, size = self._take(data) if move and isinstance(data, Path) else self._receive(data)
        try:
            self._check(tmp, filename, size)
            os.replace(tmp, self.upload_dir / digest)
        finally:
            tmp.unlink(missing_ok=True)
        with self.db.writing(), self.db.session() as session:
            # Locked: the same file handed in twice at once is added once (not a unique-key error).
            get_connector(session, tenant, connector_id, lock=True)
            existing = session.scalar(select(ExportFile).where(
                ExportFile.connector_id == connector_id, ExportFile.sha256 == digest))
            if existing is not None:
                return ExportAdded(existing.id, digest, new=False)
            row = ExportFile(id=str(uuid.uuid4()), connector_id=connector_id, sha256=digest, filename=filename,
                             chat_name=chat_name, owner_user_id=owner_id, received_at=utcnow())
            session.add(row)
            return ExportAdded(row.id, digest, new=True)

    def _owner(self, tenant: str, owner_user: str) -> str:
        """The directory user (by e-mail or id) whose phone exported the chat."""
        owner = self.directory.find_users_by_email(tenant, [owner_user]).get(owner_user.strip().lower())
        by_id = self.directory.users_by_id(tenant, [owner_user])
        owner_id = owner[0].id if owner else (by_id[0].id if by_id else None)
        if owner_id is None:
            raise Invalid(f"the owner {owner_user!r} (whose phone exported the chat) is not a directory user")
        return owner_id

    def _check(self, path: Path, filename: str, size: int) -> None:
        if size == 0:
            raise Invalid(f"{filename} is empty")
        with path.open("rb") as fp:
            refusal = zip_refusal(fp, self.env.export_limits)
        if refusal is None:
            # A file with no message in its first MiB (random bytes, prose) is no export: refused here
            # rather than "succeeding" as a run of unparseable lines (issue #10, item 6).
            refusal = export_refusal(lambda: path.open("rb"), filename, self.env.export_limits)
        if refusal is not None:
            raise Invalid(f"{printable(filename)} is refused: {refusal}")

    def incoming_file(self) -> Path:
        """A new empty file in the upload folder for a body being received (the server names it)."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.upload_dir)
        os.close(fd)
        return Path(name)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the upload is over the {self.max_bytes}-byte limit (TENANTRY_UPLOAD_MAX_BYTES)")

    def _take(self, path: Path) -> tuple[Path, str, int]:
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as fp:
            for chunk in iter(lambda: fp.read(_CHUNK), b""):
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_large()
                digest.update(chunk)
        return path, digest.hexdigest(), size

    def _receive(self, data: bytes | Path | IO[bytes]) -> tuple[Path, str, int]:
        """Copy an upload to a new file of the upload folder, hashing it: (path, SHA-256, size)."""
        tmp = self.incoming_file()
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                if isinstance(data, bytes):
                    chunks: Iterator[bytes] = iter([data])
                    source: IO[bytes] | None = None
                else:
                    source = data.open("rb") if isinstance(data, Path) else data
                    chunks = iter(lambda: source.read(_CHUNK), b"")
                try:
                    for chunk in chunks:
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self._too_large()
                        digest.update(chunk)
                        out.write(chunk)
                finally:
                    if isinstance(data, Path) and source is not None:
                        source.close()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size

    def path(self, digest: str) -> Path:
        """The stored export file; one handed in before files were kept on disk is moved out of the database."""
        path = self.upload_dir / digest
        if not path.exists():
            tmp, _, _ = self._receive(self.env.archive.get_blob(digest))
            os.replace(tmp, path)
        return path
