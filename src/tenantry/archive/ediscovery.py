"""eDiscovery cases: custodians, case holds, searches, review, and exports a court can verify.

An export is a folder: ``items/<custodian>/<item id>.eml`` (the exact stored bytes), ``mbox/<custodian>.mbox``,
``loadfile.csv`` (item id, custodian, folder, date, from, to, subject, sha256), ``summary.json`` (the case,
query, counts, errors) and ``manifest.sha256`` (every file's SHA-256, ``sha256sum -c`` compatible).
``verify_export`` re-hashes everything. Every search and export is written to the ledger.
The CLI writes an export to the folder the operator names; over HTTP an export is a job that writes to
``<data_dir>/exports/<tenant>/<export id>/`` and is downloaded as a zip streamed from that folder.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import uuid
import zipfile
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from tenantry import __version__
from tenantry.archive import ledger
from tenantry.archive.compliance import PURGES, ComplianceService
from tenantry.archive.models import Case, CaseCustodian, CaseSearch, CaseStatus, Folder, Item, LedgerAction, Mailbox
from tenantry.archive.results import (
    CaseInfo,
    CaseSearchResult,
    ContentSearchResult,
    ExportInfo,
    ExportReport,
    ExportSummary,
    HoldInfo,
    SavedSearch,
    SearchHit,
)
from tenantry.archive.service import ArchiveService, write_mboxrd
from tenantry.core.batches import chunks
from tenantry.core.clock import as_utc, utcnow
from tenantry.core.db import FOR_WRITE, Database
from tenantry.core.errors import Conflict, Invalid, NotFound
from tenantry.core.results import plain
from tenantry.jobstore import FINISHED, JobInfo, JobState, JobStore, ProgressFn
from tenantry.protocols.query.ast import Node

EXPORT_JOB = "ediscovery.export"


class SearchBackend(Protocol):
    def item_ids(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> set[int]: ...

    def count_by_user(self, tenant: str, node: Node, users: Sequence[str] | None = None) -> dict[str, int]: ...


@dataclass(frozen=True)
class ReviewItem:
    id: int
    custodian: str
    address: str
    folder: str
    kind: str
    sent_at: datetime
    sender: str
    subject: str
    sha256: str
    size: int
    deleted: bool


class EDiscoveryService:
    def __init__(self, db: Database, archive: ArchiveService, compliance: ComplianceService,
                 search: SearchBackend, parse_query: Callable[[str], Node],
                 flush: Callable[[], None] | None = None, *, exports_dir: Path | None = None,
                 jobs: JobStore | None = None) -> None:
        self.flush = flush or (lambda: None)
        # Where exports asked for over HTTP are written: <data_dir>/exports/<tenant>/<export id>/ — the server
        # chooses every path component; only the CLI (the operator, on the machine) names a folder.
        self.exports_dir = exports_dir
        self.jobs = jobs
        self.db = db
        self.archive = archive
        self.compliance = compliance
        self.search = search
        self.parse_query = parse_query

    # -- cases and custodians ---------------------------------------------------------------

    def create_case(self, tenant: str, name: str, actor: str, description: str = "") -> CaseInfo:
        with self.db.session() as session:
            if session.scalar(select(Case.id).where(Case.tenant_id == tenant, Case.name == name)):
                raise Conflict(f"a case named {name!r} exists")
            case = Case(id=str(uuid.uuid4()), tenant_id=tenant, name=name, description=description,
                        status=CaseStatus.OPEN, created_by=actor, created_at=utcnow())
            session.add(case)
            try:
                session.flush()
            except IntegrityError as exc:  # the unique constraint decides a race the check above lost
                raise Conflict(f"a case named {name!r} exists") from exc
            ledger.append(session, tenant, [(actor, LedgerAction.CASE_CREATE, case.id, {"name": name})])
            return CaseInfo(id=case.id, name=name, status=CaseStatus.OPEN)

    def find_case(self, tenant: str, name_or_id: str) -> str:
        with self.db.session() as session:
            found = session.scalar(select(Case.id).where(
                Case.tenant_id == tenant, (Case.id == name_or_id) | (Case.name == name_or_id)))
        if not found:
            raise NotFound(f"no case {name_or_id!r}")
        return found

    def add_custodians(self, tenant: str, case_id: str, user_ids: Sequence[str], actor: str) -> list[str]:
        self.compliance.require_users(tenant, user_ids)  # custodians are users (or mailboxes) of this tenant
        with self.db.writing(), self.db.session() as session:
            # Under the case's lock: two additions naming the same user must not both find it absent, and a
            # case being closed gets no new custodian.
            self._case(session, tenant, case_id, open_only=True, lock=True)
            have = set(session.scalars(select(CaseCustodian.user_id).where(CaseCustodian.case_id == case_id)))
            for user_id in user_ids:
                if user_id not in have:
                    session.add(CaseCustodian(case_id=case_id, user_id=user_id))
                    have.add(user_id)
            ledger.append(session, tenant, [(actor, LedgerAction.CASE_CUSTODIANS_ADD, case_id,
                                             {"users": list(user_ids)})])
            return sorted(have)

    def custodians(self, tenant: str, case_id: str) -> list[str]:
        with self.db.session() as session:
            self._case(session, tenant, case_id)
            return sorted(session.scalars(select(CaseCustodian.user_id).where(CaseCustodian.case_id == case_id)))

    def close_case(self, tenant: str, case_id: str, actor: str) -> None:
        """Closing a case releases its holds (the items become subject to retention again)."""
        for hold in self.compliance.holds(tenant, case_id=case_id):
            self.compliance.release_hold(tenant, hold.id, actor)
        with self.db.writing(), self.db.session() as session:
            case = self._case(session, tenant, case_id, lock=True)
            case.status = CaseStatus.CLOSED
            ledger.append(session, tenant, [(actor, LedgerAction.CASE_CLOSE, case_id, {})])

    def hold(self, tenant: str, case_id: str, actor: str, *, query: str | None = None,
             duration_days: int | None = None, name: str | None = None) -> HoldInfo:
        with self.db.session() as session:
            case = self._case(session, tenant, case_id, open_only=True)
            case_name = case.name
        return self.compliance.place_hold(tenant, name=name or f"{case_name} hold", actor=actor, case_id=case_id,
                                          query=query, duration_days=duration_days)

    @staticmethod
    def _case(session: Any, tenant: str, case_id: str, open_only: bool = False, *, lock: bool = False) -> Case:
        """The case; with ``lock``, its row is locked until the transaction ends (open it under
        ``db.writing()``), so what is checked here still holds when the transaction commits."""
        case: Case | None = session.get(Case, case_id, with_for_update=FOR_WRITE if lock else None)
        if case is None or case.tenant_id != tenant:
            raise NotFound(f"no case {case_id}")
        if open_only and case.status != CaseStatus.OPEN:
            raise Invalid(f"case {case.name!r} is closed")
        return case

    # -- searches and review ------------------------------------------------------------------

    def save_search(self, tenant: str, case_id: str, name: str, query: str, actor: str,
                    include_purges: bool = True) -> SavedSearch:
        self.parse_query(query)
        with self.db.writing(), self.db.session() as session:
            # Locked: saving the same name twice at once replaces it once (not a unique-key error).
            self._case(session, tenant, case_id, lock=True)
            session.execute(delete(CaseSearch).where(CaseSearch.case_id == case_id, CaseSearch.name == name))
            search = CaseSearch(id=str(uuid.uuid4()), case_id=case_id, name=name, query=query,
                                include_purges=include_purges)
            session.add(search)
            ledger.append(session, tenant, [(actor, LedgerAction.CASE_SEARCH_SAVE, case_id,
                                             {"name": name, "query": query})])
            return SavedSearch(id=search.id, name=name, query=query)

    def run_search(self, tenant: str, case_id: str, query: str, actor: str, *, include_purges: bool = True,
                   preview: int = 10) -> CaseSearchResult:
        """Count, per-custodian statistics and a preview of the first results."""
        node = self.parse_query(query)
        users = self.custodians(tenant, case_id)
        if not users:
            raise Invalid("the case has no custodians: add some first")
        ids = self._hits(tenant, node, users, include_purges)
        per_user: dict[str, int] = {u: 0 for u in users}
        items = self.review_items(tenant, sorted(ids))
        for item in items:
            per_user[item.custodian] = per_user.get(item.custodian, 0) + 1
        with self.db.session() as session:
            for s in session.scalars(select(CaseSearch).where(CaseSearch.case_id == case_id,
                                                              CaseSearch.query == query)):
                s.last_run_at, s.last_count = utcnow(), len(ids)
            ledger.append(session, tenant, [(actor, LedgerAction.SEARCH, case_id, {"query": query, "count": len(ids)})])
        items.sort(key=lambda i: i.sent_at, reverse=True)
        return CaseSearchResult(query=query, count=len(ids), by_custodian=per_user,
                                total_size=sum(i.size for i in items), preview=[_hit(i) for i in items[:preview]])

    def content_search(self, tenant: str, query: str, actor: str, *, users: Sequence[str] | None = None,
                       include_purges: bool = False, start: int = 0, count: int = 50) -> ContentSearchResult:
        """Search all mailboxes (or some): the count, per-mailbox statistics, and one page of results, newest
        first. Purges are left out unless asked for (they belong to eDiscovery)."""
        node = self.parse_query(query)
        if users:
            self.compliance.require_users(tenant, users)
        ids = self._hits(tenant, node, users, include_purges)
        items = sorted(self.review_items(tenant, sorted(ids)), key=lambda i: (i.sent_at, i.id), reverse=True)
        per_mailbox: dict[str, int] = {}
        for item in items:
            per_mailbox[item.address] = per_mailbox.get(item.address, 0) + 1
        with self.db.session() as session:
            ledger.append(session, tenant, [(actor, LedgerAction.SEARCH, "", {
                "query": query, "count": len(ids), "users": list(users) if users else "all"})])
        page = items[max(0, start) : max(0, start) + max(0, min(count, 1000))]
        return ContentSearchResult(query=query, count=len(ids), by_mailbox=per_mailbox, start=start,
                                   results=[_hit(i) for i in page])

    def _hits(self, tenant: str, node: Node, users: Sequence[str] | None, include_purges: bool) -> set[int]:
        self.flush()  # everything delivered before this search is in it
        ids = self.search.item_ids(tenant, node, users)
        if include_purges or not ids:
            return ids
        # In chunks: a search may find more items than one statement can bind (65,535 on PostgreSQL).
        deleted: set[int] = set()
        purges = select(Folder.id).where(Folder.name == PURGES)
        with self.db.session() as session:
            for batch in chunks(sorted(ids), 5000):
                # Deleted items, and what a partner deposited straight into Purges (trust.unlocks).
                deleted.update(session.scalars(select(Item.id).where(Item.id.in_(batch), Item.deleted_at.is_not(None)
                                                                     | Item.folder_id.in_(purges))))
        return ids - deleted

    def review_items(self, tenant: str, item_ids: Sequence[int]) -> list[ReviewItem]:
        out: list[ReviewItem] = []
        with self.db.session() as session:
            for chunk in chunks(item_ids, 900):
                rows = session.execute(
                    select(Item, Mailbox.user_id, Mailbox.address, Folder.name)
                    .join(Mailbox, Mailbox.id == Item.mailbox_id).join(Folder, Folder.id == Item.folder_id)
                    .where(Item.tenant_id == tenant, Item.id.in_(chunk)))
                for item, user_id, address, folder in rows:
                    out.append(ReviewItem(item.id, user_id, address, folder, item.kind, as_utc(item.sent_at),
                                          item.sender, item.subject, item.sha256, item.size,
                                          item.deleted_at is not None))
        return out

    # -- export ----------------------------------------------------------------------------------

    def export(self, tenant: str, case_id: str, query: str, dest: Path, actor: str, *,
               include_purges: bool = True, deduplicate: bool = False,
               progress: ProgressFn | None = None) -> ExportSummary:
        """Write what ``query`` finds in the case's custodians' mailboxes to the new folder ``dest``.

        ``dest`` must not exist or be an empty folder: an export is never mixed with other files. The CLI
        names it; over HTTP it is always a new folder under the data folder (``start_export``).
        """
        node = self.parse_query(query)
        users = self.custodians(tenant, case_id)
        if not users:
            raise Invalid("the case has no custodians: add some first")
        if dest.exists() and not dest.is_dir():
            raise Invalid(f"{dest} is a file: an export goes to a new folder")
        if dest.exists() and any(dest.iterdir()):
            raise Invalid(f"{dest} is not empty: an export goes to a new folder")
        ids = sorted(self._hits(tenant, node, users, include_purges))
        items = sorted(self.review_items(tenant, ids), key=lambda i: (i.custodian, i.sent_at, i.id))
        report = progress or (lambda _done, _total: None)
        report(0, len(items))
        try:
            (dest / "items").mkdir(parents=True, exist_ok=True)
            (dest / "mbox").mkdir(exist_ok=True)
        except OSError as exc:
            raise Invalid(f"cannot create {dest}: {exc.strerror or exc}") from exc
        errors: list[str] = []
        seen_digests: set[str] = set()
        exported = duplicates = 0
        mbox_handles: dict[str, Any] = {}
        parser = BytesHeaderParser(policy=default_policy)
        with (dest / "loadfile.csv").open("w", newline="", encoding="utf-8") as load:
            writer = csv.writer(load)
            writer.writerow(["item_id", "custodian", "mailbox", "folder", "date", "from", "to", "subject",
                             "kind", "deleted", "sha256", "file"])
            try:
                for number, item in enumerate(items, 1):
                    report(number - 1, len(items))
                    if deduplicate and item.sha256 in seen_digests:
                        duplicates += 1
                        continue
                    seen_digests.add(item.sha256)
                    try:
                        raw = self.archive.read(tenant, item.id)
                    except Exception as exc:  # noqa: BLE001 - an unreadable item is reported, the export goes on
                        errors.append(f"item {item.id}: {exc}")
                        continue
                    headers = parser.parsebytes(raw)
                    folder = dest / "items" / _safe(item.address)
                    folder.mkdir(exist_ok=True)
                    name = f"items/{_safe(item.address)}/{item.id}.eml"
                    (dest / name).write_bytes(raw)
                    if item.address not in mbox_handles:
                        mbox_handles[item.address] = (dest / "mbox" / f"{_safe(item.address)}.mbox").open("wb")
                    write_mboxrd(mbox_handles[item.address], raw, item.sent_at)
                    writer.writerow([item.id, item.custodian, item.address, item.folder, item.sent_at.isoformat(),
                                     str(headers.get("From", "")), str(headers.get("To", "")),
                                     str(headers.get("Subject", "")), item.kind, "yes" if item.deleted else "no",
                                     item.sha256, name])
                    exported += 1
            finally:
                for handle in mbox_handles.values():
                    handle.close()
        summary = ExportSummary(
            case_id=case_id, query=query, custodians=users, include_purges=include_purges, deduplicate=deduplicate,
            found=len(items), exported=exported, duplicates_skipped=duplicates, errors=errors,
            exported_at=utcnow().isoformat(), exported_by=actor, tool=f"tenantry {__version__}",
        )
        (dest / "summary.json").write_text(json.dumps(plain(summary), indent=2))
        manifest = []
        for path in sorted(p for p in dest.rglob("*") if p.is_file()):
            manifest.append(f"{_sha256_file(path)}  {path.relative_to(dest).as_posix()}")
        (dest / "manifest.sha256").write_text("\n".join(manifest) + "\n")
        with self.db.session() as session:
            ledger.append(session, tenant, [(actor, LedgerAction.EXPORT, case_id, {
                "query": query, "exported": exported, "errors": len(errors),
                "manifest_sha256": _sha256_file(dest / "manifest.sha256")})])
        report(len(items), len(items))
        return summary

    # -- exports over HTTP: jobs, folders under the data folder, streamed downloads ---------------------

    def start_export(self, tenant: str, case_id: str, query: str, actor: str, *, include_purges: bool = True,
                     deduplicate: bool = False) -> JobInfo:
        """Check what can be checked now (the query parses, the case has custodians) and queue the export as
        a job; its id is the export's id. The caller hands the id to the job engine."""
        jobs = self._jobs()
        self.parse_query(query)
        if not self.custodians(tenant, case_id):
            raise Invalid("the case has no custodians: add some first")
        return jobs.create(tenant, EXPORT_JOB, {"case_id": case_id, "query": query, "actor": actor,
                                                "include_purges": include_purges, "deduplicate": deduplicate},
                           actor, subject=case_id)

    def run_export_job(self, job_id: str, tenant: str, params: dict[str, Any],
                       progress: ProgressFn) -> ExportReport:
        """The job: the export written to its own new folder under the data folder."""
        dest = self._export_path(tenant, job_id)
        if dest.exists():
            # A job handed out again after its worker died starts over: a half-written folder is no export.
            shutil.rmtree(dest)
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        dest.mkdir(mode=0o700)
        summary = self.export(tenant, params["case_id"], params["query"], dest, params["actor"],
                              include_purges=params["include_purges"], deduplicate=params["deduplicate"],
                              progress=progress)
        files = sorted(p for p in dest.rglob("*") if p.is_file())
        return ExportReport(export_id=job_id, **plain(summary), files=len(files),
                            bytes=sum(p.stat().st_size for p in files),
                            manifest_sha256=_sha256_file(dest / "manifest.sha256"))

    def exports(self, tenant: str, case_id: str) -> list[ExportInfo]:
        with self.db.session() as session:
            self._case(session, tenant, case_id)
        return [self._export_info(tenant, j) for j in self._jobs().list(tenant, kind=EXPORT_JOB, subject=case_id)]

    def export_info(self, tenant: str, case_id: str, export_id: str) -> ExportInfo:
        """The export, looked up inside the tenant and the case: another tenant's id is NotFound."""
        with self.db.session() as session:
            self._case(session, tenant, case_id)
        return self._export_info(tenant, self._jobs().get(tenant, export_id, kind=EXPORT_JOB, subject=case_id))

    def delete_export(self, tenant: str, case_id: str, export_id: str, actor: str) -> None:
        """Remove a finished export's files from the server (its record and the ledger's entries stay)."""
        info = self.export_info(tenant, case_id, export_id)
        if info.state not in FINISHED:
            raise Conflict(f"export {export_id} is {info.state}: delete it once it finished")
        dest = self._export_path(tenant, export_id)
        if dest.exists():
            shutil.rmtree(dest)
        with self.db.session() as session:
            ledger.append(session, tenant, [(actor, LedgerAction.EXPORT_DELETE, case_id, {"export_id": export_id})])

    def _export_info(self, tenant: str, job: JobInfo) -> ExportInfo:
        """An export job as its export: available while it succeeded and its folder is still on the server."""
        available = (job.state == JobState.SUCCEEDED
                     and (self._export_path(tenant, job.id) / "manifest.sha256").is_file())
        return ExportInfo(id=job.id, case_id=job.subject, state=job.state, progress=job.progress,
                          query=job.params.get("query"), include_purges=job.params.get("include_purges"),
                          deduplicate=job.params.get("deduplicate"), created_by=job.created_by,
                          created_at=job.created_at, finished_at=job.finished_at, error=job.error,
                          summary=job.result, available=available)

    def export_download(self, tenant: str, case_id: str, export_id: str,
                        actor: str = "admin-api") -> tuple[str, Generator[bytes, None, None]]:
        """(file name, zip stream) of a finished export's folder, checked now so errors come before the first
        byte; the bytes are read and zipped as the client takes them."""
        info = self.export_info(tenant, case_id, export_id)
        if info.state != JobState.SUCCEEDED:
            raise Conflict(f"export {export_id} is {info.state}: it can be downloaded once it succeeded")
        dest = self._export_path(tenant, export_id)
        if not info.available:
            raise NotFound(f"export {export_id} was deleted from the server")
        return f"export-{export_id}.zip", self._zip_chunks(tenant, case_id, export_id, dest, actor)

    def export_manifest(self, tenant: str, case_id: str, export_id: str,
                        limit: int = 1000) -> tuple[list[tuple[str, str]], int]:
        """(the first ``limit`` (file, SHA-256) lines of a finished export's ``manifest.sha256``, how many lines
        it has): what the console shows beside the download, for a reader to check the zip's files against."""
        info = self.export_info(tenant, case_id, export_id)
        if not info.available:
            raise NotFound(f"export {export_id} has no files on the server")
        lines: list[tuple[str, str]] = []
        total = 0
        with (self._export_path(tenant, export_id) / "manifest.sha256").open(encoding="utf-8") as manifest:
            for line in manifest:
                digest, _, name = line.rstrip("\n").partition("  ")
                if not name:
                    continue
                total += 1
                if len(lines) < limit:
                    lines.append((name, digest))
        return lines, total

    def _zip_chunks(self, tenant: str, case_id: str, export_id: str, dest: Path,
                    actor: str) -> Generator[bytes, None, None]:
        from tenantry.core.streaming import CHUNK, ChunkBuffer

        sink = ChunkBuffer()
        complete = False
        try:
            # Deflated: the EML, MBOX and CSV files are text. The archive's own layout is kept under one top
            # folder, so `sha256sum -c manifest.sha256` (or `tenantry case verify-export`) runs on the unzipped copy.
            with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(p for p in dest.rglob("*") if p.is_file()):
                    info = zipfile.ZipInfo.from_file(path, f"export-{export_id}/{path.relative_to(dest).as_posix()}")
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with path.open("rb") as source, archive.open(info, "w") as target:
                        for block in iter(lambda: source.read(CHUNK), b""):
                            target.write(block)
                            if sink.pending >= CHUNK:
                                yield sink.take()
                    if sink.pending >= CHUNK:
                        yield sink.take()
            yield sink.take()
            complete = True
        finally:
            with self.db.session() as session:
                ledger.append(session, tenant, [(actor, LedgerAction.EXPORT_DOWNLOAD, case_id, {
                    "export_id": export_id, "complete": complete})])

    def _export_path(self, tenant: str, export_id: str) -> Path:
        if self.exports_dir is None:
            raise Invalid("exports over the API need a data folder")
        return self.exports_dir / tenant / export_id

    def _jobs(self) -> JobStore:
        if self.jobs is None:
            raise Invalid("exports over the API need the job store")
        return self.jobs


def verify_export(dest: Path) -> list[str]:
    """Problems found re-hashing an export against its manifest (empty: the export is intact)."""
    problems: list[str] = []
    manifest = dest / "manifest.sha256"
    if not manifest.exists():
        return ["manifest.sha256 is missing"]
    listed: set[str] = set()
    for line in manifest.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = dest / name
        if not path.exists():
            problems.append(f"{name} is missing")
        elif _sha256_file(path) != digest:
            problems.append(f"{name} was changed")
    for path in dest.rglob("*"):
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and rel != "manifest.sha256" and rel not in listed:
            problems.append(f"{rel} was added after the export")
    with (dest / "loadfile.csv").open(encoding="utf-8") as load:
        for row in csv.DictReader(load):
            path = dest / row["file"]
            if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() != row["sha256"]:
                problems.append(f"{row['file']} does not match the archive digest in loadfile.csv")
    return problems


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe(address: str) -> str:
    return "".join(c if c.isalnum() or c in "@.-_+" else "_" for c in address)


def _hit(i: ReviewItem) -> SearchHit:
    return SearchHit(id=i.id, custodian=i.custodian, mailbox=i.address, folder=i.folder, kind=i.kind,
                     sent_at=i.sent_at.isoformat(), sender=i.sender, subject=i.subject, size=i.size,
                     deleted=i.deleted)
