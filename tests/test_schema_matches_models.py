"""The migrations build exactly the schema the models declare, on both backends (a migration that forgets a
column or an index, or a model changed without a migration, fails here rather than on a customer's upgrade)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import tenantry.archive.models
import tenantry.auth.models
import tenantry.connectors.models
import tenantry.core.schedule
import tenantry.directory.models
import tenantry.jobstore
import tenantry.provisioning.models
import tenantry.trust.models  # noqa: F401  (the imports register every table)
import tenantry.voice.models  # noqa: F401
from tenantry.core.db import Base, migrate


def test_migrating_to_head_gives_the_schema_the_models_declare(blank_engine: sa.Engine) -> None:
    migrate(blank_engine)
    with blank_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
