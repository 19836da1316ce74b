"""Connector lifecycle (seed 000's wizard) and runs.

The wizard, step by step: create (needs the "Mailbox Import Export" role and the terms accepted; source
credentials are tested before anything is saved), upload the user-mapping CSV, record the organisation's admin
consent, review, enable. An enabled connector runs once a day over what arrived since its checkpoint (the
first run backfills), and can be run now.

A run: every item the source yields is either delivered to the mailbox of each participant who is a user
("WhatsApp Archiver" folder) or written to the run's report with the reason — never dropped. Deliveries are
idempotent by Message-ID and the checkpoint moves only when a run succeeds, so a run that crashed is simply
run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from tenantry.archive.service import WHATSAPP_FOLDER, ArchiveService, Delivery
from tenantry.connectors.convert import index_fields, render_item
from tenantry.connectors.items import Participant, RunCounts, SkipReason, SourceIssue, SourceItem, Unmapped, printable
from tenantry.connectors.mapping import (
    MappingRow,
    MappingUpload,
    Recipient,
    UserMapper,
    mapping_notes,
    parse_mapping_csv,
)
from tenantry.connectors.models import Connector, ExportFile, MappingEntry, Run, RunIssue
from tenantry.connectors.sources import Source, SourceUnavailable
from tenantry.connectors.sources.archiver_feed import ArchiverFeedSource
from tenantry.connectors.sources.whatsapp_export import ExportUpload, WhatsAppExportSource
from tenantry.connectors.targets import (
    ImapTarget,
    StoreTarget,
    Target,
    TargetError,
    check_imap_config,
    imap_settings,
)
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.egress import EgressPolicy, check_url, redact_url
from tenantry.core.errors import Conflict, Invalid, NotFound, PayloadTooLarge, TenantryError
from tenantry.core.schedule import claim_due
from tenantry.core.secrets import SecretBox
from tenantry.directory.service import DirectoryService
from tenantry.protocols.whatsapp import ExportLimits, export_refusal, zip_refusal

KINDS = ("whatsapp-export", "archiver-feed")
IMPORT_ROLE = "Mailbox Import Export"
CONSENT_ROLE = "Organization Management"
# What the errors tell an administrator to do (seed 000: no role group has the import role by default).
GRANT_IMPORT_ROLE_HINT = (
    f'an administrator grants it: tenantry directory role-group-add "Importers" -r "{IMPORT_ROLE}", then '
    'tenantry directory role-group-member "Importers" <user id>')
CONSENT_HINT = ("record it with: tenantry connector consent <connector> --by <admin> "
                f"(a holder of {CONSENT_ROLE!r}; API: POST …/connectors/<connector>/consent)")
# Archiver feeds re-read this much behind the checkpoint; less is refused (issue #10, item 1: archivers sync
# once a day, so a message can reach the feed up to a day after its timestamp, and a run can be a day late).
DEFAULT_OVERLAP_HOURS = 48
MAX_OVERLAP_HOURS = 24 * 90
BATCH = 2000
# A batch is also cut at this many bytes of items: an export's media are up to the item limit (10 MB) each,
# and 2,000 of them must not be in memory together.
BATCH_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


def _printable(text: str | None) -> str | None:
    return None if text is None else printable(text)


class Forbidden(TenantryError):
    status_code = 403
    code = "forbidden"


@dataclass
class RunReport:
    id: str
    connector_id: str
    status: str
    trigger: str
    started_at: datetime
    finished_at: datetime | None
    window_start: datetime | None
    window_end: datetime | None
    counts: RunCounts
    error: str | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "connector_id": self.connector_id, "status": self.status, "trigger": self.trigger,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": round((self.finished_at - self.started_at).total_seconds(), 3)
            if self.finished_at else None,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "seen": self.counts.seen, "imported": self.counts.imported,
            "skipped": sum(self.counts.skipped.values()), "copies": self.counts.copies,
            "duplicates": self.counts.duplicates, "already_archived": self.counts.already_archived,
            "imported_by_kind": self.counts.by_kind,
            "skipped_by_reason": self.counts.skipped, "error": self.error, "issues": self.issues,
            # Names and numbers come from the source: escaped like the issues.
            "unmapped_participants": [{k: printable(v) if isinstance(v, str) else v for k, v in u.as_dict().items()}
                                      for u in self.counts.unmapped.values()],
            "unmapped_not_listed": self.counts.unmapped_not_listed,
        }


Progress = Callable[[int, int | None], None]


class ConnectorService:
    def __init__(self, db: Database, directory: DirectoryService, archive: ArchiveService, secrets: SecretBox,
                 *, default_region: str | None = None,
                 target_factory: Callable[[Connector], Target] | None = None,
                 source_factory: Callable[[Connector], Source] | None = None,
                 egress: EgressPolicy | None = None,
                 upload_dir: Path | None = None, upload_max_bytes: int = 2 * 1024**3,
                 export_limits: ExportLimits | None = None) -> None:
        self.db = db
        self.directory = directory
        self.archive = archive
        self.secrets = secrets
        self.region = default_region
        # Export files are kept here under their SHA-256 (never a name the client chose), streamed in.
        self.upload_dir = upload_dir or Path(tempfile.gettempdir()) / "tenantry-uploads"
        self.upload_max_bytes = upload_max_bytes
        self.export_limits = export_limits or ExportLimits()
        self._target_factory = target_factory
        self._source_factory = source_factory
        self.egress = egress or EgressPolicy()

    # -- the wizard -------------------------------------------------------------------------

    def create(self, tenant: str, *, name: str, kind: str, created_by: str, accept_terms: bool,
               source: dict[str, Any] | None = None, source_password: str | None = None,
               target: dict[str, Any] | None = None, target_secret: dict[str, Any] | None = None,
               use_directory_mobiles: bool = True, outsider_domain: str = "whatsapp.invalid",
               max_item_bytes: int = 10 * 1024 * 1024, run_at: str = "02:00", backfill_days: int = 30,
               overlap_hours: int = DEFAULT_OVERLAP_HOURS, test_source: bool = True) -> dict[str, Any]:
        if kind not in KINDS:
            raise Invalid(f"kind must be one of {', '.join(KINDS)}")
        if not self.directory.has_role(tenant, created_by, IMPORT_ROLE):
            raise Forbidden(f"creating a connector needs the {IMPORT_ROLE!r} role, which {created_by} lacks; "
                            f"no role group has it by default: {GRANT_IMPORT_ROLE_HINT}")
        if not accept_terms:
            raise Invalid("the terms of service must be accepted to create a connector")
        source = dict(source or {})
        _check_run_at(run_at)
        if max_item_bytes <= 0:
            raise Invalid("max_item_bytes must be positive")
        _check_overlap(overlap_hours)
        if kind == "whatsapp-export":
            try:
                ZoneInfo(str(source.get("timezone", "UTC")))
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise Invalid(f"unknown time zone {source.get('timezone')!r}") from exc
        else:
            if not source.get("url") or not source.get("username") or not source_password:
                raise Invalid("an archiver feed needs url, username and password")
            if any(k in source for k in ("password", "source_password")):
                raise Invalid("the feed password goes in source_password (stored sealed), not in the source settings")
            source["url"] = check_url(str(source["url"]), "archiver feed URL", self.egress,
                                      secret_field="the user name and password (username, source_password)")
        target = dict(target or {"kind": "store"})
        if target.get("kind") not in ("store", "imap"):
            raise Invalid("target kind must be store or imap")
        if target["kind"] == "imap":
            check_imap_config(target, self.egress)
        now = utcnow()
        connector = Connector(
            id=str(uuid.uuid4()), tenant_id=tenant, name=name, kind=kind, status="draft", created_by=created_by,
            created_at=now, terms_accepted_at=now, source_config=json.dumps(source),
            source_secret=self.secrets.seal(source_password) if source_password else None,
            target_config=json.dumps(target),
            target_secret=self.secrets.seal(json.dumps(target_secret)) if target_secret else None,
            use_directory_mobiles=use_directory_mobiles, outsider_domain=outsider_domain,
            max_item_bytes=max_item_bytes, run_at=run_at, overlap_hours=overlap_hours,
            backfill_days=backfill_days,
        )
        if test_source:
            # The wizard tests the credentials before saving: a connector that cannot reach its source
            # would fail every night without anyone noticing.
            src = self._source(connector)
            try:
                src.test()
            except SourceUnavailable as exc:
                raise Invalid(f"the source did not accept the connection: {exc}") from exc
            finally:
                _close(src)
        with self.db.session() as session:
            if session.scalar(select(Connector.id).where(Connector.tenant_id == tenant, Connector.name == name)):
                raise Conflict(f"a connector named {name!r} exists")
            session.add(connector)
            try:
                session.flush()
            except IntegrityError as exc:  # the unique constraint decides a race the check above lost
                raise Conflict(f"a connector named {name!r} exists") from exc
        return self.describe(tenant, connector.id)

    def upload_mapping(self, tenant: str, connector_id: str, csv_text: str) -> MappingUpload:
        rows = parse_mapping_csv(csv_text, self.region)
        with self.db.writing(), self.db.session() as session:
            # Under the connector's lock: two uploads at once leave one CSV's rows, never a mix of both.
            self._get(session, tenant, connector_id, lock=True)
            session.execute(delete(MappingEntry).where(MappingEntry.connector_id == connector_id))
            if rows:
                session.execute(insert(MappingEntry), [
                    {"connector_id": connector_id, "e164": r.e164, "name_key": r.name_key, "email": r.email,
                     "line": r.line} for r in rows])
        return MappingUpload(len(rows), mapping_notes(rows))

    def consent(self, tenant: str, connector_id: str, admin_user: str) -> dict[str, Any]:
        if not self.directory.has_role(tenant, admin_user, CONSENT_ROLE):
            raise Forbidden(f"admin consent must come from a holder of {CONSENT_ROLE!r}")
        with self.db.writing(), self.db.session() as session:
            connector = self._get(session, tenant, connector_id, lock=True)
            connector.consent_by = admin_user
            connector.consent_at = utcnow()
        return self.describe(tenant, connector_id)

    def review(self, tenant: str, connector_id: str) -> dict[str, Any]:
        """The wizard's review page: the settings and what still blocks enabling."""
        info = self.describe(tenant, connector_id)
        blockers = _blockers(info["terms_accepted"], info["consent_by"])
        info["blockers"] = blockers
        info["ready"] = not blockers
        return info

    def enable(self, tenant: str, connector_id: str) -> dict[str, Any]:
        with self.db.writing(), self.db.session() as session:
            # Checked under the connector's lock, which consent and mapping uploads take too: what is checked
            # is what is enabled.
            connector = self._get(session, tenant, connector_id, lock=True)
            blockers = _blockers(connector.terms_accepted_at is not None, connector.consent_by)
            if blockers:
                raise Invalid("cannot enable: " + "; ".join(blockers))
            connector.status = "enabled"
            connector.next_run_at = next_daily(utcnow(), connector.run_at)
        return self.describe(tenant, connector_id)

    def configure(self, tenant: str, connector_id: str, *, run_at: str | None = None,
                  overlap_hours: int | None = None) -> dict[str, Any]:
        """Change a connector's schedule settings: its daily run time, and (feeds) the overlap each run re-reads
        behind the checkpoint. Nothing else moves: the checkpoint and the runs stay as they are."""
        if run_at is not None:
            _check_run_at(run_at)
        if overlap_hours is not None:
            _check_overlap(overlap_hours)
        with self.db.writing(), self.db.session() as session:
            connector = self._get(session, tenant, connector_id, lock=True)
            if run_at is not None:
                connector.run_at = run_at
                if connector.status == "enabled":
                    connector.next_run_at = next_daily(utcnow(), run_at)
            if overlap_hours is not None:
                connector.overlap_hours = overlap_hours
        return self.describe(tenant, connector_id)

    def disable(self, tenant: str, connector_id: str) -> dict[str, Any]:
        with self.db.writing(), self.db.session() as session:
            connector = self._get(session, tenant, connector_id, lock=True)
            connector.status = "disabled"
            connector.next_run_at = None
        return self.describe(tenant, connector_id)

    # -- reading ------------------------------------------------------------------------------

    def list_connectors(self, tenant: str) -> list[dict[str, Any]]:
        with self.db.session() as session:
            ids = session.scalars(select(Connector.id).where(Connector.tenant_id == tenant).order_by(Connector.name))
            ids_list = list(ids)
        return [self.describe(tenant, cid) for cid in ids_list]

    def find(self, tenant: str, name_or_id: str) -> str:
        with self.db.session() as session:
            found = session.scalar(select(Connector.id).where(
                Connector.tenant_id == tenant, (Connector.id == name_or_id) | (Connector.name == name_or_id)))
        if not found:
            raise NotFound(f"no connector {name_or_id!r}")
        return found

    def describe(self, tenant: str, connector_id: str) -> dict[str, Any]:
        with self.db.session() as session:
            c = self._get(session, tenant, connector_id)
            mappings = len(session.scalars(
                select(MappingEntry.id).where(MappingEntry.connector_id == connector_id)).all())
            last = session.scalar(select(Run).where(Run.connector_id == connector_id)
                                  .order_by(Run.started_at.desc()).limit(1))
            pending = len(session.scalars(select(ExportFile.id).where(
                ExportFile.connector_id == connector_id, ExportFile.imported_by_run.is_(None))).all())
            target = json.loads(c.target_config)
            return {
                "id": c.id, "name": c.name, "kind": c.kind, "status": c.status, "created_by": c.created_by,
                "terms_accepted": c.terms_accepted_at is not None, "consent_by": c.consent_by,
                "consent_at": _iso(c.consent_at), "source": _shown_source(json.loads(c.source_config)),
                "target": target.get("kind"), "mapping_entries": mappings,
                "use_directory_mobiles": c.use_directory_mobiles, "outsider_domain": c.outsider_domain,
                "max_item_bytes": c.max_item_bytes, "run_at": c.run_at, "checkpoint": _iso(c.checkpoint),
                "overlap_hours": c.overlap_hours if c.kind == "archiver-feed" else None,
                "next_run_at": _iso(c.next_run_at), "pending_files": pending,
                "last_run": _run_summary(last) if last else None,
            }

    @staticmethod
    def _get(session: Any, tenant: str, connector_id: str, *, lock: bool = False) -> Connector:
        """The connector; with ``lock``, its row is locked until the transaction ends (a session opened under
        ``db.writing()``), so a change computed from it cannot undo a concurrent one."""
        connector: Connector | None = session.get(Connector, connector_id, with_for_update=FOR_WRITE if lock else None)
        if connector is None or connector.tenant_id != tenant:
            raise NotFound(f"no connector {connector_id}")
        return connector

    # -- export files --------------------------------------------------------------------------

    def add_export(self, tenant: str, connector_id: str, data: bytes | Path | IO[bytes], filename: str,
                   owner_user: str, chat_name: str | None = None, *, move: bool = False) -> dict[str, Any]:
        """Hand an export file to a whatsapp-export connector; a file already handed in is not added twice.

        ``data`` is the file's bytes, its path, or a binary stream read in chunks: it is copied to the upload
        folder without being held in memory, and refused past ``upload_max_bytes`` (413, nothing kept); with
        ``move`` a path in the upload folder (``incoming_file``) is taken over instead of copied. A
        zip whose headers are over the export limits (too many members, too large uncompressed, a chat
        text compressed like a bomb) is refused here (400), before any run, and so is a file whose first MiB
        of chat text has no line with a date and an author (not an export at all).
        """
        owner = self.directory.find_users_by_email(tenant, [owner_user]).get(owner_user.strip().lower())
        by_id = self.directory.users_by_id(tenant, [owner_user])
        owner_id = owner[0].id if owner else (by_id[0].id if by_id else None)
        if owner_id is None:
            raise Invalid(f"the owner {owner_user!r} (whose phone exported the chat) is not a directory user")
        with self.db.session() as session:
            if self._get(session, tenant, connector_id).kind != "whatsapp-export":
                raise Invalid("export files go to a whatsapp-export connector")
        tmp, digest, size = self._take(data) if move and isinstance(data, Path) else self._receive(data)
        try:
            if size == 0:
                raise Invalid(f"{filename} is empty")
            with tmp.open("rb") as fp:
                refusal = zip_refusal(fp, self.export_limits)
            if refusal is None:
                # A file with no message in its first MiB (random bytes, prose) is no export: refused here
                # rather than "succeeding" as a run of unparseable lines (issue #10, item 6).
                refusal = export_refusal(lambda: tmp.open("rb"), filename, self.export_limits)
            if refusal is not None:
                raise Invalid(f"{printable(filename)} is refused: {refusal}")
            final = self.upload_dir / digest
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        with self.db.writing(), self.db.session() as session:
            # Locked: the same file handed in twice at once is added once (not a unique-key error).
            self._get(session, tenant, connector_id, lock=True)
            existing = session.scalar(select(ExportFile).where(
                ExportFile.connector_id == connector_id, ExportFile.sha256 == digest))
            if existing is not None:
                return {"id": existing.id, "sha256": digest, "new": False}
            row = ExportFile(id=str(uuid.uuid4()), connector_id=connector_id, sha256=digest, filename=filename,
                             chat_name=chat_name, owner_user_id=owner_id, received_at=utcnow())
            session.add(row)
            return {"id": row.id, "sha256": digest, "new": True}

    def incoming_file(self) -> Path:
        """A new empty file in the upload folder for a body being received (the server names it)."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.upload_dir)
        os.close(fd)
        return Path(name)

    def _take(self, path: Path) -> tuple[Path, str, int]:
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as fp:
            for chunk in iter(lambda: fp.read(_CHUNK), b""):
                size += len(chunk)
                if size > self.upload_max_bytes:
                    raise PayloadTooLarge(f"the upload is over the {self.upload_max_bytes}-byte limit "
                                          "(TENANTRY_UPLOAD_MAX_BYTES)")
                digest.update(chunk)
        return path, digest.hexdigest(), size

    def _receive(self, data: bytes | Path | IO[bytes]) -> tuple[Path, str, int]:
        """Copy an upload to a new file of the upload folder, hashing it: (path, SHA-256, size)."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".incoming-", dir=self.upload_dir)
        tmp = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    chunks: Iterator[bytes] = iter([data])
                    source: IO[bytes] | None = None
                else:
                    source = data.open("rb") if isinstance(data, Path) else data
                    chunks = iter(lambda: source.read(_CHUNK), b"")
                try:
                    for chunk in chunks:
                        size += len(chunk)
                        if size > self.upload_max_bytes:
                            raise PayloadTooLarge(f"the upload is over the {self.upload_max_bytes}-byte limit "
                                                  "(TENANTRY_UPLOAD_MAX_BYTES)")
                        digest.update(chunk)
                        out.write(chunk)
                finally:
                    if isinstance(data, Path) and source is not None:
                        source.close()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size

    def export_path(self, digest: str) -> Path:
        """The stored export file; one handed in before files were kept on disk is moved out of the database."""
        path = self.upload_dir / digest
        if not path.exists():
            tmp, _, _ = self._receive(self.archive.get_blob(digest))
            os.replace(tmp, path)
        return path

    # -- runs -------------------------------------------------------------------------------------

    def _source(self, connector: Connector, uploads: list[ExportUpload] | None = None,
                mapper: UserMapper | None = None) -> Source:
        if self._source_factory is not None:
            return self._source_factory(connector)
        config = json.loads(connector.source_config)
        if connector.kind == "whatsapp-export":
            # The connector's item rule (seed 000: 10 MB) also bounds what the reader takes in: a larger media
            # file is not read (its size comes from the zip header), a longer text is not kept.
            limits = replace(self.export_limits, max_media_bytes=connector.max_item_bytes,
                             max_text_chars=connector.max_item_bytes)
            # The run's mapping says who each author is: a message's identity names people, not how one phone
            # wrote them (issue #10, item 5).
            # What the archive holds of a chat tells same-named groups apart (sources/chat_slots.py); an IMAP
            # target cannot be asked, and there a group's subject alone decides (docs/connectors.md).
            history = (_TenantChats(self.archive, connector.tenant_id)
                       if json.loads(connector.target_config).get("kind", "store") == "store" else None)
            return WhatsAppExportSource(uploads or [], str(config.get("timezone", "UTC")), limits,
                                        mapper.person_keys if mapper else None, history)
        password = self.secrets.open(connector.source_secret) if connector.source_secret else ""
        return ArchiverFeedSource(str(config["url"]), str(config["username"]), password, egress=self.egress)

    def _target(self, connector: Connector) -> Target:
        if self._target_factory is not None:
            return self._target_factory(connector)
        config = json.loads(connector.target_config)
        if config.get("kind") == "imap":
            secret = json.loads(self.secrets.open(connector.target_secret)) if connector.target_secret else None
            return ImapTarget(imap_settings(config, secret), self.egress)
        return StoreTarget(self.archive)

    def recover_interrupted(self) -> int:
        """Runs left 'running' by a crash are marked failed; their connectors run again at once."""
        now = utcnow()
        with self.db.session() as session:
            stale = session.scalars(select(Run).where(Run.status == "running")).all()
            for run in stale:
                run.status = "failed"
                run.finished_at = now
                run.error = "interrupted (the process stopped during the run); it is run again"
                session.execute(update(Connector).where(Connector.id == run.connector_id,
                                                        Connector.status == "enabled").values(next_run_at=now))
            return len(stale)

    def run(self, tenant: str, connector_id: str, *, trigger: str = "manual", now: datetime | None = None,
            progress: Progress | None = None) -> RunReport:
        now = now or utcnow()
        with self.db.session() as session:
            connector = self._get(session, tenant, connector_id)
            if connector.status == "draft" and trigger == "schedule":
                raise Invalid("a draft connector is not scheduled")
            # Seed 000: the import needs the organisation's admin consent — for every kind of connector, not
            # only the feed: an export file carries other people's messages just the same.
            if connector.consent_at is None:
                raise Invalid(f"the organisation's admin consent is needed before the first run; {CONSENT_HINT}")
            rows = [MappingRow(m.line, m.e164, m.name_key, m.email) for m in session.scalars(
                select(MappingEntry).where(MappingEntry.connector_id == connector_id))]
            files = list(session.scalars(select(ExportFile).where(
                ExportFile.connector_id == connector_id, ExportFile.imported_by_run.is_(None))
                .order_by(ExportFile.received_at)))
            # A feed item is selected by its own timestamp, and archivers sync once a day: a message sent
            # before the last run that reached the archiver after it would never be read again. Each run
            # therefore re-reads ``overlap_hours`` behind the checkpoint; what it reads twice is already in the
            # mailboxes (Message-IDs) and is counted as already archived (issue #10, item 1).
            window_start = (as_utc(connector.checkpoint) - timedelta(hours=connector.overlap_hours)
                            if connector.checkpoint else now - timedelta(days=connector.backfill_days))
            run = Run(id=str(uuid.uuid4()), connector_id=connector_id, tenant_id=tenant, trigger=trigger,
                      status="running", started_at=utcnow(), window_start=window_start, window_end=now)
            session.add(run)
            session.expunge(connector)
        uploads = [ExportUpload(self.export_path(f.sha256), f.filename, f.owner_user_id, f.chat_name)
                   for f in files]
        counts = RunCounts()
        issues: list[SourceIssue] = []
        error: str | None = None
        mapper = UserMapper(self.directory, tenant, rows, use_directory_mobiles=connector.use_directory_mobiles,
                            default_region=self.region)
        source = self._source(connector, uploads, mapper)
        target = self._target(connector)
        try:
            for batch in _batches(source.items(window_start, now), BATCH):
                self._run_batch(tenant, connector, batch, mapper, target, counts, issues)
                self._flush_issues(run.id, issues)
                self._save_counts(run.id, counts)
                if progress:
                    progress(counts.seen, None)
        except (SourceUnavailable, TargetError, TenantryError) as exc:
            error = str(exc)
        finally:
            _close(source)
            target.close()
        self._flush_issues(run.id, issues)
        return self._finish(tenant, connector_id, run.id, counts, error, [f.id for f in files], now)

    def _run_batch(self, tenant: str, connector: Connector, batch: list[SourceItem | SourceIssue],
                   mapper: UserMapper, target: Target, counts: RunCounts, issues: list[SourceIssue]) -> None:
        items = [b for b in batch if isinstance(b, SourceItem)]
        for b in batch:
            if isinstance(b, SourceIssue):
                if b.reason.skips:
                    counts.seen += 1
                    counts.skip(b.reason)
                issues.append(b)
        people = [p for item in items for p in item.participants] + [i.sender for i in items if i.sender]
        mapper.prefetch([p.phone for p in people if p.phone], [p.email for p in people if p.email])
        owners = self._owner_recipients(tenant, {u for item in items for u in item.owner_user_ids})
        deliveries: list[Delivery] = []
        delivered_items: list[tuple[SourceItem, int]] = []
        for item in items:
            counts.seen += 1
            size = item.approximate_size
            if size > connector.max_item_bytes:
                counts.skip(SkipReason.TOO_LARGE)
                issues.append(SourceIssue(SkipReason.TOO_LARGE,
                                          f"{size} bytes is over the {connector.max_item_bytes}-byte limit",
                                          item.source_id, item.location, size, item.kind.value))
                continue
            recipients = self._recipients(item, mapper)
            for p, r in recipients.items():
                if r.by_digits and p.phone and p.phone not in counts.by_digits:
                    counts.by_digits.add(p.phone)
                    issues.append(SourceIssue(
                        SkipReason.NOTICE, f"{p.label()} is not a valid phone number by its country's plan; mapped "
                        f"to {r.address} ({r.via}) by its digits", item.source_id, item.location))
            for p in dict.fromkeys((*item.participants, *((item.sender,) if item.sender else ()))):
                if p not in recipients:  # reported, not silently absent (issue #10, item 2)
                    counts.note_unmapped(p, p == item.sender, partial(mapper.why_unmapped, p.phone, p.name, p.email))
            users = {r.user_id: r for r in recipients.values()}
            for owner_id in item.owner_user_ids:
                if owner_id in owners:
                    users.setdefault(owner_id, owners[owner_id])
            if not users:
                counts.skip(SkipReason.NO_USER)
                issues.append(SourceIssue(SkipReason.NO_USER, "no participant maps to a user: "
                                          + ", ".join(p.label() for p in item.participants)[:500],
                                          item.source_id, item.location, size, item.kind.value))
                continue
            def resolve(p: Participant, lookup: dict[Participant, Recipient] = recipients) -> str | None:
                r = lookup.get(p)
                return r.address if r else None

            mail, raw = render_item(item, resolve, connector.outsider_domain)
            fields = index_fields(item, mail, resolve, connector.outsider_domain)
            for r in users.values():
                deliveries.append(Delivery(
                    user_id=r.user_id, address=r.address, folder=WHATSAPP_FOLDER, raw=raw,
                    message_id=mail.message_id, kind=item.kind.value, source=item.source, sent_at=item.sent_at,
                    chat_id=item.chat_id, subject=mail.subject, sender=mail.sender.addr, fields=fields,
                    aliases=item.aliases))
            delivered_items.append((item, len(users)))
        results = target.deliver(tenant, deliveries) if deliveries else []
        counts.copies += sum(results)
        counts.duplicates += len(results) - sum(results)
        start = 0
        for item, copies in delivered_items:
            counts.imported += 1
            counts.by_kind[item.kind.value] = counts.by_kind.get(item.kind.value, 0) + 1
            if not any(results[start:start + copies]):
                counts.already_archived += 1
            start += copies

    def _owner_recipients(self, tenant: str, user_ids: set[str]) -> dict[str, Recipient]:
        out: dict[str, Recipient] = {}
        for user in self.directory.users_by_id(tenant, sorted(user_ids)):
            out[user.id] = Recipient(user.id, user.email, user.display_name, "owner")
        return out

    @staticmethod
    def _recipients(item: SourceItem, mapper: UserMapper) -> dict[Participant, Recipient]:
        found: dict[Participant, Recipient] = {}
        everyone = list(item.participants)
        if item.sender and item.sender not in everyone:
            everyone.insert(0, item.sender)
        for p in everyone:
            users = mapper.resolve(p.phone, p.name, p.email)
            if users:
                found[p] = users[0]
        return found

    def _flush_issues(self, run_id: str, issues: list[SourceIssue]) -> None:
        if not issues:
            return
        with self.db.session() as session:
            session.execute(insert(RunIssue), [
                {"run_id": run_id, "reason": i.reason.value, "detail": i.detail[:4000], "source_id": i.source_id,
                 "location": i.location, "kind": i.kind, "size": i.size} for i in issues])
        issues.clear()

    def _save_counts(self, run_id: str, counts: RunCounts) -> None:
        with self.db.session() as session:
            session.execute(update(Run).where(Run.id == run_id).values(
                seen=counts.seen, imported=counts.imported, skipped=sum(counts.skipped.values()),
                copies=counts.copies, duplicates=counts.duplicates,
                counts=json.dumps({"imported": counts.by_kind, "skipped": counts.skipped,
                                   "already_archived": counts.already_archived,
                                   "unmapped": [u.as_dict() for u in counts.unmapped.values()],
                                   "unmapped_not_listed": counts.unmapped_not_listed})))

    def _finish(self, tenant: str, connector_id: str, run_id: str, counts: RunCounts, error: str | None,
                file_ids: list[str], now: datetime) -> RunReport:
        self._save_counts(run_id, counts)
        finished = utcnow()
        with self.db.writing(), self.db.session() as session:
            run = session.get(Run, run_id)
            # Locked: the failure count and the checkpoint are read and written back, and another run of the
            # connector (a manual one beside the scheduled one, in another process) may finish at the same time.
            connector = session.get(Connector, connector_id, with_for_update=FOR_WRITE)
            assert run is not None and connector is not None
            run.finished_at = finished
            if error is None:
                run.status = "succeeded"
                if connector.checkpoint is None or as_utc(connector.checkpoint) < now:
                    connector.checkpoint = now   # never backwards: a run with an earlier window may end later
                connector.failures_in_a_row = 0
                if connector.status == "enabled":
                    connector.next_run_at = next_daily(now, connector.run_at)
                if file_ids:
                    session.execute(update(ExportFile).where(ExportFile.id.in_(file_ids))
                                    .values(imported_by_run=run_id))
            else:
                run.status = "failed"
                run.error = error
                connector.failures_in_a_row += 1
                if connector.status == "enabled":
                    # Retry with back-off: 5 min, 10, 20 … up to 6 hours; nothing moves the checkpoint.
                    delay = min(timedelta(minutes=5) * 2 ** (connector.failures_in_a_row - 1), timedelta(hours=6))
                    connector.next_run_at = finished + delay
        return self.report(tenant, run_id)

    def report(self, tenant: str, run_id: str, *, issue_limit: int = 1000) -> RunReport:
        with self.db.session() as session:
            run = session.get(Run, run_id)
            if run is None or run.tenant_id != tenant:
                raise NotFound(f"no run {run_id}")
            counts_doc = json.loads(run.counts or "{}")
            counts = RunCounts(seen=run.seen, imported=run.imported, copies=run.copies, duplicates=run.duplicates,
                               skipped=counts_doc.get("skipped", {}), by_kind=counts_doc.get("imported", {}),
                               unmapped_not_listed=counts_doc.get("unmapped_not_listed", 0),
                               already_archived=counts_doc.get("already_archived", 0))
            for u in counts_doc.get("unmapped", []):
                p = Participant(phone=u["phone"], name=u["name"], email=u["email"])
                counts.unmapped[p] = Unmapped(p, u["rule"], u["messages"])
            # Details quote the source (a line of a file anyone could hand in): control bytes are escaped.
            issues = [
                {"reason": i.reason, "detail": printable(i.detail), "source_id": _printable(i.source_id),
                 "location": _printable(i.location), "kind": i.kind, "size": i.size}
                for i in session.scalars(select(RunIssue).where(RunIssue.run_id == run_id)
                                         .order_by(RunIssue.id).limit(issue_limit))
            ]
            return RunReport(run.id, run.connector_id, run.status, run.trigger, as_utc(run.started_at),
                             as_utc(run.finished_at) if run.finished_at else None,
                             as_utc(run.window_start) if run.window_start else None,
                             as_utc(run.window_end) if run.window_end else None, counts,
                             _printable(run.error), issues)

    def runs(self, tenant: str, connector_id: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.db.session() as session:
            self._get(session, tenant, connector_id)
            rows = session.scalars(select(Run).where(Run.connector_id == connector_id)
                                   .order_by(Run.started_at.desc()).limit(limit))
            return [_run_summary(r) for r in rows]

    def due(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """(tenant, connector id) of every enabled connector whose next run time has come."""
        now = now or utcnow()
        with self.db.session() as session:
            rows = session.execute(select(Connector.tenant_id, Connector.id).where(
                Connector.status == "enabled", Connector.next_run_at.is_not(None), Connector.next_run_at <= now))
            return [(t, c) for t, c in rows]

    def claim_due(self, now: datetime, lease: timedelta) -> list[tuple[str, str]]:
        """Take the due connectors: their next run moves ``lease`` ahead, so a second scheduler tick (or a
        second scheduler process) does not hand the same run out twice. The run itself sets the real next time.
        """
        return claim_due(self.db, Connector, Connector.id, Connector.next_run_at, tenant=Connector.tenant_id,
                         where=(Connector.status == "enabled",), now=now, lease=lease)


@dataclass(frozen=True)
class _TenantChats:
    """The archive's chats of one tenant, as an export source asks about them (chat_slots.ChatHistory)."""

    archive: ArchiveService
    tenant: str

    def chat_span(self, chat_id: str) -> tuple[datetime, datetime] | None:
        return self.archive.chat_span(self.tenant, chat_id)

    def chat_message_ids(self, chat_id: str, start: datetime, end: datetime, limit: int) -> set[str]:
        return self.archive.chat_message_ids(self.tenant, chat_id, start, end, limit)


def next_daily(after: datetime, run_at: str) -> datetime:
    hour, minute = (int(x) for x in run_at.split(":"))
    candidate = as_utc(after).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate if candidate > as_utc(after) else candidate + timedelta(days=1)


def _blockers(terms_accepted: bool, consent_by: str | None) -> list[str]:
    """What still keeps a connector from being enabled (the wizard's review page)."""
    blockers = []
    if not terms_accepted:
        blockers.append("terms not accepted")
    if not consent_by:
        blockers.append(f"the organisation's admin consent is not recorded; {CONSENT_HINT}")
    # No blocker for the user mapping: the item's own e-mail address (seed 000's second rule) is always
    # consulted, so a connector without a CSV and without directory mobiles still maps by e-mail.
    return blockers


def _check_overlap(hours: int) -> None:
    if not DEFAULT_OVERLAP_HOURS <= hours <= MAX_OVERLAP_HOURS:
        raise Invalid(f"overlap_hours must be between {DEFAULT_OVERLAP_HOURS} and {MAX_OVERLAP_HOURS} (a shorter "
                      f"overlap would miss messages that reach the archiver late), not {hours}")


def _check_run_at(value: str) -> None:
    try:
        hour, minute = (int(x) for x in value.split(":"))
    except ValueError:
        raise Invalid(f"run_at must be HH:MM, not {value!r}") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise Invalid(f"run_at must be HH:MM, not {value!r}")


def _batches(iterator: Iterator[SourceItem | SourceIssue], size: int) -> Iterator[list[SourceItem | SourceIssue]]:
    batch: list[SourceItem | SourceIssue] = []
    held = 0
    for entry in iterator:
        batch.append(entry)
        if isinstance(entry, SourceItem):
            held += entry.approximate_size
        if len(batch) >= size or held >= BATCH_BYTES:
            yield batch
            batch = []
            held = 0
    if batch:
        yield batch


def _close(thing: Any) -> None:
    close = getattr(thing, "close", None)
    if callable(close):
        close()


def _shown_source(source: dict[str, Any]) -> dict[str, Any]:
    """A connector's source settings as shown: the feed URL without credentials or query values (rows saved
    before URLs were checked may hold them); secrets are never among them (they are sealed apart)."""
    if isinstance(source.get("url"), str):
        source["url"] = redact_url(source["url"])
    return {k: v for k, v in source.items() if k not in ("password", "source_password")}


def _iso(when: datetime | None) -> str | None:
    return as_utc(when).isoformat() if when else None


def _run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.id, "status": run.status, "trigger": run.trigger, "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at), "seen": run.seen, "imported": run.imported,
            "skipped": run.skipped, "error": run.error}
