"""Claims of due work in the database, shared by every part: a claim moves the work's next time ahead in one
conditional UPDATE, so of two scheduler ticks — in one process or in several — only one hands a run out.

Two kinds: rows a domain owns with their own ``next_run_at`` (connectors, provisioning apps: ``claim_due``),
and periodic work with no row of its own (the daily retention and SCIM-log sweep: ``claim_periodic`` keeps
its next time in ``periodic_work``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, String, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from tenantry.core.db import Base, Database


class PeriodicWork(Base):
    """When each periodic work (``core.registry.Periodic``) is next due."""

    __tablename__ = "periodic_work"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def claim_due(db: Database, model: Any, key: InstrumentedAttribute[Any], next_run_at: InstrumentedAttribute[Any],
              *, tenant: InstrumentedAttribute[Any], where: tuple[Any, ...], now: datetime,
              lease: timedelta) -> list[tuple[str, str]]:
    """The (tenant, key) of ``model``'s rows due at ``now`` (``next_run_at <= now`` and ``where``), each claimed:
    its ``next_run_at`` moves ``lease`` ahead under the writer lock, and only the tick whose UPDATE changed the
    row has it. The run itself sets the real next time."""
    with db.session() as session:
        due = session.execute(select(tenant, key).where(*where, next_run_at <= now)).all()
    claimed: list[tuple[str, str]] = []
    for tenant_id, row_key in due:
        with db.writing(), db.session() as session:
            result = session.execute(update(model).where(key == row_key, *where, next_run_at <= now)
                                     .values({next_run_at.key: now + lease}))
            if result.rowcount:  # type: ignore[attr-defined]
                claimed.append((tenant_id, row_key))
    return claimed


def claim_periodic(db: Database, name: str, every: timedelta, now: datetime) -> bool:
    """True for the one caller that takes the periodic work ``name`` due at ``now`` (then due ``every`` later).
    Work never run before is due at once."""
    with db.writing(), db.session() as session:
        result = session.execute(update(PeriodicWork).where(PeriodicWork.name == name, PeriodicWork.next_run_at <= now)
                                 .values(next_run_at=now + every))
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if session.get(PeriodicWork, name) is not None:
            return False
    try:
        with db.writing(), db.session() as session:
            session.execute(insert(PeriodicWork).values(name=name, next_run_at=now + every))
    except IntegrityError:   # another scheduler created it first: it has the claim
        return False
    return True
