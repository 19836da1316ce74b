"""What the connectors hand to the API, the CLI, the jobs and other parts: frozen dataclasses (core.results).

Field names and order are the JSON of the admin API; timestamps are ISO 8601 strings, as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantry.connectors.items import ItemKind, SkipReason
from tenantry.connectors.models import ConnectorStatus, RunStatus, RunTrigger


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as the connector list and the runs page show it."""

    id: str
    status: RunStatus
    trigger: RunTrigger
    started_at: str
    finished_at: str | None
    seen: int
    imported: int
    skipped: int
    error: str | None


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """A connector: its wizard state, its settings (never a secret) and its last run."""

    id: str
    name: str
    kind: str                    # a source kind's name: the built-in ones (BuiltinSource) or one registered
    status: ConnectorStatus
    created_by: str
    terms_accepted: bool
    consent_by: str | None
    consent_at: str | None
    source: dict[str, Any]       # dict: the source kind's own settings (its check() says which), secrets removed
    target: str | None           # the target kind's name
    mapping_entries: int
    use_directory_mobiles: bool
    outsider_domain: str
    max_item_bytes: int
    run_at: str
    checkpoint: str | None
    overlap_hours: int | None    # kinds read by time window only
    next_run_at: str | None
    pending_files: int
    last_run: RunSummary | None


@dataclass(frozen=True, slots=True)
class ConnectorReview(ConnectorInfo):
    """The wizard's review page: the connector, and what still keeps it from being enabled."""

    blockers: list[str]
    ready: bool


@dataclass(frozen=True, slots=True)
class MappingUpload:
    """What a mapping CSV upload saved, and what its reader should know (numbers that match by their digits)."""

    entries: int
    notes: list[str]


@dataclass(frozen=True, slots=True)
class ExportAdded:
    """An export file handed in; ``new`` is false when the same file (by SHA-256) was handed in before."""

    id: str
    sha256: str
    new: bool


@dataclass(frozen=True, slots=True)
class ReportedIssue:
    """An item not imported (or imported with a note), as the run report lists it; source text escaped."""

    reason: SkipReason
    detail: str
    source_id: str | None
    location: str | None
    kind: ItemKind | None
    size: int | None


@dataclass(frozen=True, slots=True)
class UnmappedParticipant:
    """A participant no mapping rule found a user for, the messages they sent, and why each rule failed."""

    participant: str             # the label: name, else number, else e-mail
    phone: str | None
    name: str | None
    email: str | None
    messages: int
    rule: str


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run's report: its window, counts, and every item not imported with the reason."""

    id: str
    connector_id: str
    status: RunStatus
    trigger: RunTrigger
    started_at: str
    finished_at: str | None
    duration_seconds: float | None
    window_start: str | None
    window_end: str | None
    seen: int
    imported: int                # items in at least one mailbox (or already there)
    skipped: int
    copies: int                  # mailbox copies written by this run
    duplicates: int              # mailbox copies that were there already
    already_archived: int        # imported items every copy of which was there already
    imported_by_kind: dict[str, int]     # ItemKind value → items
    skipped_by_reason: dict[str, int]    # SkipReason value → items
    error: str | None
    issues: list[ReportedIssue]
    unmapped_participants: list[UnmappedParticipant]
    unmapped_not_listed: int     # messages of unmapped participants past the list's limit
