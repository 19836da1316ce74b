"""Reading connector and run rows the way every part of the connectors does: inside the caller's tenant, and
locked when the caller is about to change the row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tenantry.connectors.models import Connector, Run, RunStatus, RunTrigger
from tenantry.connectors.results import RunSummary
from tenantry.core.clock import as_utc
from tenantry.core.db import FOR_WRITE
from tenantry.core.errors import NotFound


def get_connector(session: Session, tenant: str, connector_id: str, *, lock: bool = False) -> Connector:
    """The connector; with ``lock``, its row is locked until the transaction ends (a session opened under
    ``db.writing()``), so a change computed from it cannot undo a concurrent one."""
    connector = session.get(Connector, connector_id, with_for_update=FOR_WRITE if lock else None)
    if connector is None or connector.tenant_id != tenant:
        raise NotFound(f"no connector {connector_id}")
    return connector


def iso(when: datetime | None) -> str | None:
    return as_utc(when).isoformat() if when else None


def run_summary(run: Run) -> RunSummary:
    return RunSummary(run.id, RunStatus(run.status), RunTrigger(run.trigger), as_utc(run.started_at).isoformat(),
                      iso(run.finished_at), run.seen, run.imported, run.skipped, run.error)
