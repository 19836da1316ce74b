"""What the archive's services hand to their API, their CLI and other parts: frozen dataclasses (core.results).

Each is also the response model of its route, so its fields, in order, are the JSON on the wire; timestamps are
ISO 8601 strings, as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from tenantry.archive.models import CaseStatus
from tenantry.jobstore import JobState, Progress

# -- the archive ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    id: str
    user_id: str
    address: str


# -- holds, retention, deletion -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldInfo:
    """A hold on one mailbox (``user_id``) or in one case (``case_id``, optionally narrowed by ``query``)."""

    id: str
    name: str
    user_id: str | None
    case_id: str | None
    query: str | None
    duration_days: int | None     # None: indefinite
    created_by: str
    created_at: str
    released_at: str | None       # None: active


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """A retention policy; an empty scope list means every mailbox, folder or kind."""

    id: str
    name: str
    retain_days: int | None
    delete_after_days: int | None
    users: list[str]
    folders: list[str]
    kinds: list[str]
    enabled: bool


@dataclass(frozen=True, slots=True)
class DeletionCounts:
    """What a delete (of items, or of a mailbox) did: protected items kept in Purges, the rest deleted."""

    moved_to_purges: int
    deleted: int


@dataclass(frozen=True, slots=True)
class RetentionCounts:
    """What a retention run did."""

    deleted: int
    purged_from_purges: int
    kept_by_hold: int


# -- eDiscovery -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseInfo:
    id: str
    name: str
    status: CaseStatus


@dataclass(frozen=True, slots=True)
class SavedSearch:
    id: str
    name: str
    query: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One item a search found, as review shows it."""

    id: int
    custodian: str
    mailbox: str
    folder: str
    kind: str
    sent_at: str
    sender: Annotated[str, Field(alias="from")]   # "from" on the wire, a Python keyword
    subject: str
    size: int
    deleted: bool


@dataclass(frozen=True, slots=True)
class CaseSearchResult:
    """A case search: the count, per-custodian counts (every custodian, 0 included) and the newest hits."""

    query: str
    count: int
    by_custodian: dict[str, int]
    total_size: int
    preview: list[SearchHit]


@dataclass(frozen=True, slots=True)
class ContentSearchResult:
    """A content search: the count, per-mailbox counts and one page of hits, newest first."""

    query: str
    count: int
    by_mailbox: dict[str, int]
    start: int
    results: list[SearchHit]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """An export's ``summary.json``: what was asked, what was found and written, by whom, with which tool."""

    case_id: str
    query: str
    custodians: list[str]
    include_purges: bool
    deduplicate: bool
    found: int
    exported: int
    duplicates_skipped: int
    errors: list[str]
    exported_at: str
    exported_by: str
    tool: str


@dataclass(frozen=True, slots=True)
class ExportReport:
    """The result of an export job (kept in its ``jobs`` row): the summary, and the folder's files and manifest."""

    export_id: str
    case_id: str
    query: str
    custodians: list[str]
    include_purges: bool
    deduplicate: bool
    found: int
    exported: int
    duplicates_skipped: int
    errors: list[str]
    exported_at: str
    exported_by: str
    tool: str
    files: int
    bytes: int
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """An export made over HTTP, read from its job: its state, and whether its folder can be downloaded."""

    id: str
    case_id: str | None
    state: JobState
    progress: Progress
    query: str | None
    include_purges: bool | None
    deduplicate: bool | None
    created_by: str
    created_at: str
    finished_at: str | None
    error: str | None
    # dict: the job's result as its row keeps it (JSON): an ExportReport once it succeeded, whatever an older
    # or a hand-made row holds otherwise; shown as stored.
    summary: dict[str, Any] | None
    available: bool


@dataclass(frozen=True, slots=True)
class JobAccepted:
    """The 202 answer of a route that started a job: its id and state, and where to follow it."""

    job_id: str
    state: JobState
    job: str


@dataclass(frozen=True, slots=True)
class ExportAccepted:
    """The 202 answer of an export: its job, and the export's own id (the job's) and address."""

    job_id: str
    state: JobState
    job: str
    export_id: str
    export: str


# -- the ledger -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One ledger entry as read. ``action`` is text: a row changed outside Tenantry may hold any."""

    number: int
    at: str
    actor: str
    action: str
    target: str
    detail: Any   # the entry's JSON detail, its shape per action (or its text, if changed into something not JSON)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``Ledger.verify`` found: ``ok`` when nothing was changed outside Tenantry."""

    ok: bool
    entries: int
    items_checked: int
    problems: list[str]
