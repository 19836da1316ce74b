"""Connector sources behind one interface: each yields SourceItems, and SourceIssues for what it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

from tenantry.connectors.items import SourceIssue, SourceItem


class SourceUnavailable(Exception):
    """The source could not be reached or refused the credentials: the run fails and is retried."""


class Source(Protocol):
    kind: str

    def test(self) -> None:
        """Check the credentials and reachability; raise SourceUnavailable with a clear reason."""

    def items(self, since: datetime | None, until: datetime) -> Iterator[SourceItem | SourceIssue]:
        """Everything the source has in [since, until): items to import and issues to report."""
        ...
