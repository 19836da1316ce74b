"""The migrations build exactly the schema the models declare, on both backends (a migration that forgets a
column or an index, or a model changed without a migration, fails here rather than on a customer's upgrade)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import tenantry.archive.models
import tenantry.connectors.models
import tenantry.directory.models
import tenantry.jobstore
import tenantry.provisioning.models  # noqa: F401  (the imports register every table)
from tenantry.core.db import Base, make_engine, migrate
from tests.conftest import _pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    gen = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'schema.db'}"
    else:
        gen = _pg_database()
        url = next(gen)
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()
        if gen is not None:
            for _ in gen:
                pass


def test_migrating_to_head_gives_the_schema_the_models_declare(engine: sa.Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
