"""Fixtures of the archive tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import _pg_database


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[sa.Engine]:
    """A database of its own on the local PostgreSQL (skips, saying why, where none answers)."""
    gen = _pg_database()
    engine = sa.create_engine(next(gen))
    try:
        yield engine
    finally:
        engine.dispose()
        for _ in gen:
            pass
