"""Alembic environment: runs on the connection the application hands over (``core.db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import tenantry.archive.models  # noqa: F401  (registers the tables)
import tenantry.auth.models  # noqa: F401
import tenantry.connectors.models  # noqa: F401
import tenantry.core.schedule  # noqa: F401
import tenantry.directory.models  # noqa: F401
import tenantry.jobstore  # noqa: F401
import tenantry.provisioning.models  # noqa: F401
import tenantry.trust.models  # noqa: F401
import tenantry.voice.models  # noqa: F401
from tenantry.core.db import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
