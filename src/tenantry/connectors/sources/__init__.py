"""Connector sources behind one interface: each yields SourceItems, and SourceIssues for what it cannot.

A source kind is one module of this package with a ``KIND`` (a ``SourceKind``): it checks the settings a
connector is created with and builds the source for a run; ``connectors.registry`` lists the built-in kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from tenantry.connectors.items import Participant, SourceIssue, SourceItem
from tenantry.connectors.sources.chat_slots import ChatHistory
from tenantry.core.egress import EgressPolicy
from tenantry.protocols.whatsapp import ExportLimits

# Who a participant is, for a message's identity: ``user:<id>`` where the connector's mapping finds a directory
# user, else ``tel:+<E.164>``, ``mail:…`` or ``name:<casefolded name>`` (``UserMapper.person_keys``).
PersonKeys = Callable[[Sequence[Participant]], dict[Participant, str]]


class SourceUnavailable(Exception):
    """The source could not be reached or refused the credentials: the run fails and is retried."""


class Source(Protocol):
    kind: str

    def test(self) -> None:
        """Check the credentials and reachability; raise SourceUnavailable with a clear reason."""

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        """Everything the source has in [since, until): items to import and issues to report."""
        ...

    def close(self) -> None:
        """Let go of connections; called once the run (or the wizard's test) is done with the source."""


@dataclass(frozen=True)
class ExportUpload:
    """One export file as handed to the connector: its bytes, or (as the service keeps them) a file's path."""

    data: bytes | Path
    filename: str
    owner_key: str              # the owner's user id: part of the chat identity, and a copy always goes there
    chat_name: str | None = None


@dataclass(frozen=True)
class SourceSpec:
    """What a source is built from: the connector's saved settings and secret, the operator's limits, and what
    a run hands in (the files not yet imported, the run's mapping of people, what its target already holds)."""

    settings: dict[str, Any]
    password: str                       # the sealed source secret, opened ("" when there is none)
    max_item_bytes: int
    egress: EgressPolicy
    export_limits: ExportLimits
    uploads: Sequence[ExportUpload] = ()
    person_keys: PersonKeys | None = None
    history: ChatHistory | None = None  # what the target holds of each chat, where it can be asked


class SourceKind(Protocol):
    """One kind of source, as the wizard and the runner see it."""

    name: str             # the connector's ``kind``
    takes_files: bool     # export files are handed to it (``add_export``)
    windowed: bool        # it is read by time window, so ``overlap_hours`` applies (and is shown)

    # dict: each kind's own settings (a feed's URL, an export's time zone), saved as JSON with the connector
    def check(self, settings: dict[str, Any], password: str | None, egress: EgressPolicy) -> dict[str, Any]:
        """The settings to save, checked when a connector is created; raises ``Invalid`` with what is wrong."""
        ...

    def build(self, spec: SourceSpec) -> Source:
        """The source for a run (or for the wizard's credentials test)."""
        ...
